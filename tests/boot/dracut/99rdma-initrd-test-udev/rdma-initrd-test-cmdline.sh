#!/bin/sh
# Test-only: no root file system; the test powers off before one is needed.
root=rdma-initrd-test
rootok=1
