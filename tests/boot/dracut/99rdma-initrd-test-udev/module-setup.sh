#!/bin/bash
# Test-only dracut module (never shipped) for an image without systemd
# (dracut's own init): the boot test runs from a pre-mount hook,
# after udev's coldplug has settled, then powers the VM off.

check() {
    return 255
}

depends() {
    echo base
    return 0
}

install() {
    inst_multiple bash cat sleep grep sed head tr rdma ip modprobe udevadm
    inst_simple "$moddir/../99rdma-initrd-test/rdma-initrd-test.sh" /usr/bin/rdma-initrd-test
    chmod 0755 "$initdir/usr/bin/rdma-initrd-test"
    # No root file system: tell init that root= is handled.
    inst_hook cmdline 99 "$moddir/rdma-initrd-test-cmdline.sh"
    inst_hook pre-mount 99 "$moddir/rdma-initrd-test-run.sh"
}
