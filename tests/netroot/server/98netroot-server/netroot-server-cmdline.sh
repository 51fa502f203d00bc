#!/bin/sh
# Test-only: the server has no root file system; its pre-udev hook never
# returns.
root=netroot-server
rootok=1
