#!/bin/bash
# Test-only dracut module (never shipped): the netroot test's server VM. Its
# pre-udev hook brings up a soft RDMA device on the NIC and serves the test
# root over NFSv4/RDMA, NVMe-oF/RDMA and iSER, then never returns.

check() {
    return 255
}

depends() {
    echo base
    return 0
}

installkernel() {
    hostonly='' instmods virtio_pci virtio_net rdma_rxe siw crc32_generic \
        nfsd rpcrdma nvmet nvmet-rdma target_core_mod target_core_file \
        iscsi_target_mod ib_isert tmpfs virtio_blk ext4
}

install() {
    inst_multiple bash cat sleep ip rdma modprobe mount mkdir ln cp stat tr ls \
        exportfs rpc.mountd poweroff mountpoint modinfo
    inst_dir /var/lib/nfs
    inst_hook cmdline 99 "$moddir/netroot-server-cmdline.sh"
    inst_hook pre-udev 99 "$moddir/netroot-server.sh"
}
