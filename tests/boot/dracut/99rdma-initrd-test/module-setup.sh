#!/bin/bash
# Test-only dracut module (never shipped): installs the boot test's service
# and the few programs its script uses.

check() {
    return 255
}

depends() {
    echo systemd
    return 0
}

install() {
    inst_multiple bash cat ls sleep grep sed head tr rdma ip modprobe udevadm systemctl
    inst_simple "$moddir/rdma-initrd-test.sh" /usr/bin/rdma-initrd-test
    chmod 0755 "$initdir/usr/bin/rdma-initrd-test"
    inst_simple "$moddir/rdma-initrd-test.service" "$systemdsystemunitdir/rdma-initrd-test.service"
    $SYSTEMCTL -q --root "$initdir" add-wants initrd.target rdma-initrd-test.service
}
