#!/bin/bash
# Test-only dracut module (never shipped) for the netroot test's client:
# a stand-in for RDMA hardware (creates the soft RDMA device once udev has
# loaded its provider) and a check of the RDMA units before switch-root.

check() {
    return 255
}

depends() {
    echo systemd
    return 0
}

install() {
    inst_multiple bash cat sleep rdma ip systemctl tr sed grep
    inst_simple "$moddir/netroot-standin.sh" /usr/bin/netroot-standin
    inst_simple "$moddir/netroot-initrd-check.sh" /usr/bin/netroot-initrd-check
    chmod 0755 "$initdir/usr/bin/netroot-standin" "$initdir/usr/bin/netroot-initrd-check"
    local u
    for u in netroot-standin.service netroot-initrd-check.service; do
        inst_simple "$moddir/$u" "$systemdsystemunitdir/$u"
        $SYSTEMCTL -q --root "$initdir" add-wants initrd.target "$u"
    done
}
