#!/bin/bash
# Test and benchmark stand-in (never shipped) for rdma-core's own dracut
# module, kernel-boot/dracut/50rdma (rdma-core v61+, packaged by Fedora, RHEL
# and SUSE), as FIELD-NOTES.md describes it: check() says yes in host-only
# mode where an RDMA device has a uverbs node (RDMA_STANDIN_SYSFS replaces
# /sys, for a fixture) and, like its older releases, in generic mode too;
# whole driver directories; the RDMA rules, unit, target and confs; wants
# for rdma, roce and infiniband without condition.

check() {
    [[ $hostonly ]] && [[ -e ${RDMA_STANDIN_SYSFS:-/sys}/class/infiniband_verbs/uverbs0 ]] && return 0
    [[ $hostonly ]] && return 255
    return 0
}

depends() {
    return 0
}

install() {
    inst_multiple -o /etc/rdma/modules/infiniband.conf /etc/rdma/modules/iwarp.conf \
        /etc/rdma/modules/opa.conf /etc/rdma/modules/rdma.conf /etc/rdma/modules/roce.conf
    inst_rules 60-rdma-persistent-naming.rules 75-rdma-description.rules \
        90-rdma-hw-modules.rules 90-rdma-ulp-modules.rules 90-rdma-umad.rules
    inst_multiple -o "$systemdsystemunitdir"/rdma-hw.target \
        "$systemdsystemunitdir"/rdma-load-modules@.service
    [[ -d $initdir$systemdsystemunitdir ]] || return 0
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
