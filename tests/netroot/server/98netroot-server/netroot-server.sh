#!/bin/bash
# Test-only: the netroot test server, run as a pre-udev hook of dracut's own
# init. The exported tree and the two disk images arrive under /srv (dracut
# --include). Prints NETROOT-SERVER READY when every service listens, or
# NETROOT-SERVER FAILED and powers off.

srv_ip=10.0.2.1
nqn=nqn.2026-11.org.rdma-initrd:netroot
iqn=iqn.2026-11.org.rdma-initrd:netroot

say() { echo "netroot-server: $*" >/dev/console; }
die() {
    echo "NETROOT-SERVER FAILED: $*" >/dev/console
    poweroff -f
}
# put TEXT FILE: write TEXT to a configfs/procfs attribute, or die.
put() { echo "$1" >"$2" || die "cannot write '$1' to $2"; }

net_up() {
    modprobe -a virtio_pci virtio_net || die "virtio_net"
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -e /sys/class/net/eth0 ]] && break
        sleep 0.1
    done
    ip link set lo up
    ip addr add "$srv_ip/24" dev eth0 || die "no eth0"
    ip link set eth0 up
}

# A served OS root (tests/netroot/run's os-* scenarios): an ext4 disk with
# the root tree, exported over NFS at /os, and an ext4 disk with the same
# tree, served as NVMe namespace 2. The busybox roots are served either way.
os_disks_up() {
    modprobe -a virtio_pci virtio_blk ext4 || die "virtio_blk"
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -b /dev/vda ]] && break
        sleep 0.1
    done
    [[ -b /dev/vda ]] || return 0
    mkdir -p /os && mount -t ext4 /dev/vda /os || die "mount the OS root disk"
    say "OS root disk: $(cat /os/etc/debian_version 2>/dev/null), $(ls /os/usr/lib/modules)"
}

# Soft RoCE first: the NVMe-oF and iSER listeners bind to the address and
# take the RDMA device that owns it when they start; siw comes last (see
# below).
roce_up() {
    modprobe rdma_rxe || die "rdma_rxe"
    rdma link add rxe0 type rxe netdev eth0 || die "rdma link add rxe0"
}

nvmet_up() {
    local cfs=/sys/kernel/config/nvmet size
    modprobe -a nvmet nvmet-rdma || die "nvmet"
    [[ -d $cfs ]] || mount -t configfs none /sys/kernel/config
    mkdir "$cfs/subsystems/$nqn" || die "nvmet subsystem"
    put 1 "$cfs/subsystems/$nqn/attr_allow_any_host"
    mkdir "$cfs/subsystems/$nqn/namespaces/1"
    put /srv/nvme.img "$cfs/subsystems/$nqn/namespaces/1/device_path"
    put 1 "$cfs/subsystems/$nqn/namespaces/1/buffered_io"
    put 1 "$cfs/subsystems/$nqn/namespaces/1/enable"
    mkdir "$cfs/ports/1"
    put rdma "$cfs/ports/1/addr_trtype"
    put ipv4 "$cfs/ports/1/addr_adrfam"
    put "$srv_ip" "$cfs/ports/1/addr_traddr"
    put 4420 "$cfs/ports/1/addr_trsvcid"
    if [[ -b /dev/vdb ]]; then
        mkdir "$cfs/subsystems/$nqn/namespaces/2"
        put /dev/vdb "$cfs/subsystems/$nqn/namespaces/2/device_path"
        put 1 "$cfs/subsystems/$nqn/namespaces/2/enable"
    fi
    ln -s "$cfs/subsystems/$nqn" "$cfs/ports/1/subsystems/$nqn" || die "nvmet port"
}

# The kernel's LIO target: a file-backed LUN, a TCP portal (discovery) with
# iSER enabled on it, demo mode (no ACLs, no authentication).
iser_up() {
    local t=/sys/kernel/config/target size
    modprobe -a target_core_mod target_core_file iscsi_target_mod ib_isert || die "LIO"
    size=$(stat -c %s /srv/iser.img)
    mkdir -p "$t/core/fileio_0/root" || die "LIO backstore"
    put "fd_dev_name=/srv/iser.img,fd_dev_size=$size" "$t/core/fileio_0/root/control"
    put 1 "$t/core/fileio_0/root/enable"
    local tpg=$t/iscsi/$iqn/tpgt_1
    mkdir -p "$tpg/lun/lun_0" || die "LIO target"
    ln -s "$t/core/fileio_0/root" "$tpg/lun/lun_0/root" || die "LIO lun"
    mkdir "$tpg/np/$srv_ip:3260" || die "LIO portal"
    put 1 "$tpg/np/$srv_ip:3260/iser"
    put 0 "$tpg/attrib/authentication"
    put 1 "$tpg/attrib/generate_node_acls"
    put 1 "$tpg/attrib/cache_dynamic_acls"
    put 0 "$tpg/attrib/demo_mode_write_protect"
    put 1 "$tpg/enable"
}

# Kernel nfsd, NFSv4 only, on RDMA port 20049 (no rpcbind, mountd for the
# export cache only). Short grace and lease times: a client's first OPEN
# would wait out the 90 s grace period otherwise.
nfs_up() {
    modprobe -a nfsd rpcrdma || die "nfsd"
    mkdir -p /export && mount -t tmpfs -o size=64m export /export || die "tmpfs"
    cp -a /srv/root/. /export/ || die "copy the root"
    mount -t nfsd nfsd /proc/fs/nfsd || die "nfsd fs"
    mkdir -p /var/lib/nfs /etc
    echo "/export *(rw,no_root_squash,insecure,no_subtree_check,fsid=0)" >/etc/exports
    if mountpoint -q /os; then
        mkdir -p /export/os && mount --bind /os /export/os || die "bind the OS root"
        echo "/export/os *(rw,no_root_squash,insecure,no_subtree_check,fsid=1)" >>/etc/exports
    fi
    exportfs -r || die "exportfs"
    rpc.mountd -N 2 -N 3 -u || die "rpc.mountd"
    put 10 /proc/fs/nfsd/nfsv4gracetime
    put 10 /proc/fs/nfsd/nfsv4leasetime
    put "-2 -3 +4 +4.1 +4.2" /proc/fs/nfsd/versions
    put "rdma 20049" /proc/fs/nfsd/portlist
    put 8 /proc/fs/nfsd/threads
}

# iWARP last (where the kernel has siw): siw's listeners are TCP sockets, and an iSER portal bound after
# siw0 exists could land on siw and collide with the iSCSI TCP portal
# (rdma_listen() -98). nfsd's wildcard RDMA listener gains siw0 when it
# appears.
iwarp_up() {
    modinfo siw >/dev/null 2>&1 || { say "no siw in this kernel"; return 0; }
    modprobe siw || die "siw"
    rdma link add siw0 type siw netdev eth0 || die "rdma link add siw0"
}

net_up
os_disks_up
roce_up
nvmet_up
iser_up
nfs_up
iwarp_up
say "portlist: $(tr '\n' ' ' </proc/fs/nfsd/portlist)"
say "rdma devices: $(ls /sys/class/infiniband | tr '\n' ' ')"
echo "NETROOT-SERVER READY" >/dev/console
while :; do sleep 3600; done
