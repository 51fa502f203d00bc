# Sourced by tests/netroot/run: the os-* scenarios. A real Debian 13 root
# (mmdebstrap from Debian's packages, with systemd, udev, kmod, rdma-core,
# nfs-common, nvme-cli, dracut and the kernel) with the project's .deb
# installed; the client's image built INSIDE that root by its own dracut,
# `--add rdma-initrd`, for its own kernel, as an image server builds one.
# The server VM (the same test server, on the root's kernel) serves the root
# from a disk over NFSv4/RDMA and, as an ext4 image of the same tree, as an
# NVMe-oF namespace.
#
# What the test puts into the root (test-only, never shipped), from
# tests/netroot/os:
#   /etc/udev/rules.d/91-rdma-initrd-standin.rules  the NIC's RDMA half
#   /etc/systemd/system/rdma-load-modules@.service.d/90-site.conf
#   /etc/modprobe.d/rdma-site.conf                  a site's overrides
#   netroot-os-check.service (enabled) and /usr/local/sbin/netroot-os-check
#   /usr/lib/systemd/system-shutdown/netroot-os-shutdown
#   the client test module 99netroot-client (stands in for the HCA)
# then builds the images, then adds a module to the root's rdma.conf that
# the image's copy does not list (os-root-confs).
#
# Everything is cached under CACHE/netroot/os-KEY, KEY a digest of the
# chroot's tarball name, the .deb and the test files.

os_pkgs=(systemd systemd-sysv udev kmod rdma-core nfs-common nvme-cli linux-image-amd64 dracut
    dracut-network isc-dhcp-client iproute2 iputils-arping zstd jq e2fsprogs)
os_uuid_nvme=7d1f3b52-0c1e-4a51-9b0e-6e7674726f03
# In the kernel, loadable with rxe, not in Debian's rdma.conf and not taken
# by the plan otherwise: the SCSI RDMA Protocol initiator.
os_conf_module=ib_srp
# The modules the client image's dracut takes besides rdma-initrd: what a
# diskless node needs for an NFS or NVMe-oF root on a virtio NIC.
os_dracut_modules="systemd systemd-initrd dracut-systemd base network-legacy network nfs nvmf rootfs-block shutdown netroot-client"

os_log() { printf 'tests/netroot/run: %s\n' "$*"; }

# os_prepare: sets OS_DIR (cache: client.img, control.img, vmlinuz,
# root.img, nvme.img, kver, the image listings) and OS_KVER.
os_prepare() {
    local deb tar key
    deb=$(ls "$deb_dir"/rdma-initrd_*.deb 2>/dev/null | head -n1)
    [[ -f $deb ]] || { echo "tests/netroot/run: no rdma-initrd .deb in ${deb_dir:-(none)}: give --deb DIR (tests/packages/run --out DIR builds it)" >&2; return 1; }
    . "$repo/tests/lib/chroot.sh"
    tar=$(chroot_tarball "$cache" trixie "${os_pkgs[@]}") || return 1
    key=$( {
        echo "$tar"
        sha256sum <"$deb"
        cat "$here"/os/*.* "$here"/os/netroot-os-* "$here"/os/site/* "$here"/client/99netroot-client/* "$here/lib/os.sh" "$here/lib/siw.sh" \
            "$here"/server/98netroot-server/* "$here/export/init" "$(command -v busybox)"
        dracut --version 2>&1
    } | sha256sum | cut -c1-16)
    OS_DIR=$cache/netroot/os-$key
    if [[ ! -e $OS_DIR/.complete ]]; then
        rm -rf "$OS_DIR" "$OS_DIR.tmp"
        mkdir -p "$OS_DIR.tmp"
        os_build "$tar" "$deb" "$OS_DIR.tmp" >"$work/os-build.log" 2>&1 ||
            { echo "tests/netroot/run: the OS root failed: see $work/os-build.log" >&2; tail -n 20 "$work/os-build.log" >&2; return 1; }
        touch "$OS_DIR.tmp/.complete"
        mv "$OS_DIR.tmp" "$OS_DIR"
        grep '^os:' "$work/os-build.log" | sed 's/^/tests\/netroot\/run: /'
    else
        os_log "OS root and images from the cache ($OS_DIR)"
    fi
    read -r OS_KVER <"$OS_DIR/kver"
}

# os_build TARBALL DEB OUT
os_build() {
    local tar=$1 deb=$2 out=$3 t0=$SECONDS
    local R=$work/os/root
    chroot_unpack "$tar" "$R" || return 1
    local K
    K=$(ls "$R/usr/lib/modules" | head -n1)
    [[ -n $K && -e $R/boot/vmlinuz-$K ]] || { echo "no kernel in the root"; return 1; }
    chroot_mount "$R"
    os_in_root "$R" "$K" "$deb" "$out"
    local rc=$?
    chroot_umount "$R"
    ((rc == 0)) || return 1
    cp "$R/boot/vmlinuz-$K" "$out/vmlinuz"
    os_build_server "$R" "$K" "$out" || return 1
    echo "$K" >"$out/kver"
    # The served disks: the tree as the NFS export, and as an ext4 image of
    # its own for the NVMe namespace.
    mke2fs -q -F -t ext4 -L osroot -d "$R" "$out/root.img" 2G &&
        mke2fs -q -F -t ext4 -L osroot -U "$os_uuid_nvme" -d "$R" "$out/nvme.img" 2G || return 1
    rm -rf "$R"
    echo "os: root, images and disks in $((SECONDS - t0)) s"
}

# os_in_root ROOT KVER DEB OUT: with /proc, /sys, /dev mounted in the root.
os_in_root() {
    local R=$1 K=$2 deb=$3 out=$4
    in_os() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }
    cp "$deb" "$R/tmp/rdma-initrd.deb"
    in_os dpkg -i /tmp/rdma-initrd.deb || return 1
    rm "$R/tmp/rdma-initrd.deb"
    os_place_test_files "$R" || return 1
    # A DKMS build of an in-tree RDMA module (lib/siw.sh): depmod in the
    # root chooses it; the root's dracut must put that one in the image.
    dkms_replacement "$(find "$R/usr/lib/modules/$K/kernel" -name 'rdma_rxe.ko*' | head -n1)" \
        "$R/usr/lib/modules/$K/updates/dkms/rdma_rxe.ko" && in_os depmod "$K" || return 1
    echo "os: $(in_os modinfo -k "$K" -F filename rdma_rxe) (version $(in_os modinfo -k "$K" -F version rdma_rxe))"
    echo "os: Debian $(cat "$R/etc/debian_version") root: kernel $K, $(in_os dracut --version)," \
        "systemd $(in_os dpkg-query -W -f '${Version}' systemd), rdma-core $(in_os dpkg-query -W -f '${Version}' rdma-core)," \
        "$(in_os rdma-initrd --version)"
    # The images, as an image server builds them: the root's dracut for the
    # root's kernel; the control without rdma-initrd.
    local img with t1
    for img in client control; do
        t1=$SECONDS
        with=(--add rdma-initrd)
        [[ $img == control ]] && with=()
        in_os dracut --force --no-hostonly --no-early-microcode --zstd -m "$os_dracut_modules" "${with[@]}" \
            --add-drivers "virtio_net virtio_pci ext4" "/tmp/$img.img" "$K" >"$out/$img.dracut.log" 2>&1 ||
            { tail -n 20 "$out/$img.dracut.log"; return 1; }
        in_os lsinitrd "/tmp/$img.img" >"$out/$img.list" 2>&1 || return 1
        if [[ $img == client ]]; then
            in_os rdma-initrd verify --kver "$K" --generic "/tmp/$img.img" >"$out/verify.log" 2>&1
            echo "os: rdma-initrd verify of client.img in the root: exit $?"
        fi
        mv "$R/tmp/$img.img" "$out/$img.img"
        echo "os: built $img.img inside the root in $((SECONDS - t1)) s ($(du -h "$out/$img.img" | cut -f1))"
    done
    # os-root-confs: the root's list names a module its image's does not.
    if grep -q "/$os_conf_module\.ko" "$out/client.list"; then
        echo "$os_conf_module is in the image: os-root-confs could not tell"
        return 1
    fi
    grep -q "/updates/dkms/rdma_rxe\.ko" "$out/client.list" ||
        echo "os: the root's dracut did not take updates/dkms/rdma_rxe.ko (the boot's dkms-module check will say)"
    printf '# Added by tests/netroot/run after the image was built (os-root-confs)\n%s\n' \
        "$os_conf_module" >>"$R/etc/rdma/modules/rdma.conf"
}

# os_place_test_files ROOT
os_place_test_files() {
    local R=$1 d=$here/os
    install -D -m644 "$d/91-rdma-initrd-standin.rules" "$R/etc/udev/rules.d/91-rdma-initrd-standin.rules"
    install -D -m644 "$d/site/90-site.conf" "$R/etc/systemd/system/rdma-load-modules@.service.d/90-site.conf"
    install -D -m644 "$d/site/rdma-site.conf" "$R/etc/modprobe.d/rdma-site.conf"
    install -D -m644 "$d/netroot-os-check.service" "$R/etc/systemd/system/netroot-os-check.service"
    install -D -m755 "$d/netroot-os-check" "$R/usr/local/sbin/netroot-os-check"
    install -D -m755 "$d/netroot-os-shutdown" "$R/usr/lib/systemd/system-shutdown/netroot-os-shutdown"
    mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
    ln -sf ../netroot-os-check.service "$R/etc/systemd/system/multi-user.target.wants/netroot-os-check.service"
    cp -r "$here/client/99netroot-client" "$R/usr/lib/dracut/modules.d/"
}

# The server for the os-* scenarios: the test server module on the root's
# kernel (dracut of the host, --kmoddir of the root), with the busybox roots
# of the other scenarios in /srv as well.
os_build_server() {
    local R=$1 K=$2 out=$3
    mkdir -p "$work/conf-empty"
    [[ -n $marker ]] || marker=os
    make_export || return 1
    ktree=$R KVER=$K moddir=$R/usr/lib/modules/$K dracut_build "$out/server.img" "$work/os-server.dracut.log" \
        --conf /dev/null --confdir "$work/conf-empty" -m "base netroot-server" \
        --omit "systemd systemd-initrd dracut-systemd systemd-udevd systemd-modules-load" \
        --include "$work/srv" /srv
}

os_nfs_root="root=nfs4:$server_ip:/os:proto=rdma,port=20049 rw netroot.expect=nfs netroot.conf-module=$os_conf_module"
os_nvmf_root=("root=UUID=$os_uuid_nvme" rw "rd.nvmf.discover=rdma,$server_ip,,4420"
    "rd.nvmf.hostnqn=nqn.2014-08.org.nvmexpress:uuid:$os_uuid_nvme" "rd.nvmf.hostid=$os_uuid_nvme"
    netroot.expect=nvmf "netroot.conf-module=$os_conf_module")
# The checks of a node that booted (tests/netroot/os/netroot-os-check), and
# the initrd's (the stand-in's device, the units before switch-root).
os_checks=(rdma-device dkms-module "${roce[@]/#/unit:}" root-rdma system-state failed-units rdma-hw-target
    loaders-after-switch-root network-pre shutdown-fabric)
# Which boot each scenario reads.
declare -A os_boot_of=([os-nfs-roce]=os-nfs [os-nvmf-roce]=os-nvmf [os-root-confs]=os-nfs
    [os-site-overrides]=os-nfs [os-shutdown]=os-nfs [os-control]=os-control)

# os_boot NAME ARGS...: the root's kernel and an image (client.img; the
# control's for os-control) with the scenario's root. loglevel=6: the NFS
# client's "not responding" notices reach the console.
os_boot() {
    local name=$1 img=$OS_DIR/client.img t0=$SECONDS
    shift
    [[ $name == os-control ]] && img=$OS_DIR/control.img
    local try
    for try in 1 2; do
        vmlinuz=$OS_DIR/vmlinuz timeout=${os_timeout:-600} \
            boot "$name" "$img" "$@" "$(units_arg "${roce[@]}")" loglevel=6 systemd.show_status=1 oops=panic
        # Debian 6.12's rdma_rxe has oopsed under TCG, once in several
        # boots: in its receiver work (net_rx_action, NULL pointer) while
        # the node shut down, and in its task work (do_task) during boot,
        # which left the VM hung until the timeout. A kernel crash in the
        # soft-RoCE stand-in, not in what the image does: oops=panic makes
        # every oops end the VM at once; it is said, kept, and booted once
        # more.
        grep -aq 'Kernel panic - not syncing' "$work/$name.console" && ((try == 1)) || break
        echo "    the kernel panicked (kept as $name.panic.console): $(grep -a -m1 -E 'BUG:|RIP:' "$work/$name.console" | tr -d '\r'); booting once more"
        mv "$work/$name.console" "$work/$name.panic.console"
    done
    echo $((SECONDS - t0)) >"$work/$name.seconds"
    grep -a '^netroot-os: ' "$work/$name.console" | tr -d '\r' | sed 's/^/    /'
    return 0
}

# The module os-root-confs expects is not in the client image.
os_conf_not_in_image() {
    if grep -q "/$os_conf_module\.ko" "$OS_DIR/client.list"; then
        echo "    $os_conf_module is in the image"
        return 1
    fi
    echo "    $os_conf_module: in the root's rdma.conf, not in the image ($(grep -c '\.ko' "$OS_DIR/client.list") modules there)"
}

# os_poweroff NAME: the seconds from the test unit's `systemctl poweroff` to
# the kernel's "Power down", by the kernel's own timestamps; at most 90, and
# no NFS "not responding" anywhere.
os_poweroff() {
    local log=$work/$1.console t_req t_off
    t_req=$(tr -d '\r' <"$log" | sed -n 's/^\[ *\([0-9.]*\)\] netroot-os: poweroff requested.*/\1/p' | head -n1)
    t_off=$(tr -d '\r' <"$log" | sed -n 's/^\[ *\([0-9.]*\)\] reboot: Power down.*/\1/p' | tail -n1)
    if [[ -z $t_req || -z $t_off ]]; then
        echo "    no poweroff seen (requested at ${t_req:-?} s, power down at ${t_off:-?} s)"
        return 1
    fi
    local took
    took=$(awk -v a="$t_req" -v b="$t_off" 'BEGIN { printf "%.1f", b - a }')
    echo "    poweroff: requested at $t_req s, power down at $t_off s: $took s"
    if grep -aq 'not responding' "$log"; then
        grep -a 'not responding' "$log" | head -n 3 | sed 's/^/    /'
        return 1
    fi
    awk -v t="$took" 'BEGIN { exit !(t <= 90) }' || { echo "    more than 90 s"; return 1; }
}

# os-control: the image without rdma-initrd cannot mount the root over
# RDMA: no RDMA device (udev had no rule and no provider to load), so no
# root. The reason is printed.
os_control_verdict() {
    local log=$work/os-control.console
    grep -a '^RESULT rdma-device FAIL' "$log" | tr -d '\r' | sed 's/^/    reason: /'
    grep -aq '^RESULT rdma-device FAIL' "$log" || { echo "    the control had an RDMA device"; return 1; }
    if grep -aq '^RESULT root-rdma PASS' "$log"; then
        echo "    the control mounted its root over RDMA: the test cannot fail"
        return 1
    fi
    grep -aq 'NETROOT-OS CHECKED' "$log" && { echo "    the control reached multi-user.target"; return 1; }
    echo "    no root: $(grep -a -v 'Kernel command line' "$log" | grep -a -m1 -E 'Could not boot|Failed to mount|Protocol error' | tr -d '\r')"
}
