#!/bin/sh
# Test-only: run the boot test after the initqueue (udev coldplug settled),
# then power off.
/usr/bin/rdma-initrd-test
echo 1 >/proc/sys/kernel/sysrq
echo o >/proc/sysrq-trigger
sleep 30
