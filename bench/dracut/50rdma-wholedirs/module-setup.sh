#!/bin/bash
# Benchmark-only dracut module: what rdma-core's own kernel-boot/dracut/50rdma
# does, as documented (FIELD-NOTES.md): whole driver directories, the RDMA
# rules, unit, target and confs, and unconditional wants for rdma, roce and
# infiniband. Written for this comparison; not shipped.

check() {
    return 255
}

depends() {
    echo systemd
    return 0
}

install() {
    inst_multiple -o /etc/rdma/modules/infiniband.conf /etc/rdma/modules/iwarp.conf \
        /etc/rdma/modules/opa.conf /etc/rdma/modules/rdma.conf /etc/rdma/modules/roce.conf
    inst_rules 60-rdma-persistent-naming.rules 75-rdma-description.rules \
        90-rdma-hw-modules.rules 90-rdma-ulp-modules.rules 90-rdma-umad.rules
    inst_multiple -o "$systemdsystemunitdir"/rdma-hw.target \
        "$systemdsystemunitdir"/rdma-load-modules@.service
    local u
    for u in rdma-load-modules@rdma.service rdma-load-modules@roce.service \
        rdma-load-modules@infiniband.service; do
        $SYSTEMCTL -q --root "$initdir" add-wants initrd.target "$u"
    done
}

installkernel() {
    hostonly='' instmods "=drivers/infiniband" "=drivers/net/ethernet/mellanox" \
        "=drivers/net/ethernet/chelsio" "=drivers/net/ethernet/cisco" \
        "=drivers/net/ethernet/emulex" "=drivers/target"
    hostonly='' instmods crc-t10dif crct10dif_common xprtrdma svcrdma
}
