# Sourced by the test scripts. initramfs-tools' mkinitramfs (and dracut
# without --kmoddir) read the kernel from the host: /lib/modules/KVER and
# /boot/config-KVER. host_kernel_setup puts the test kernel there when the
# host lacks it (a hard-linked copy of the fetched tree: copy_file in
# hook-functions turns symlinked sources into symlinks in the image) and
# host_kernel_cleanup removes exactly what it created.

host_kernel_created=()

# host_kernel_setup KROOT KVER
host_kernel_setup() {
    local kroot=$1 kver=$2
    if [[ ! -e /lib/modules/$kver ]]; then
        mkdir -p /lib/modules
        cp -al "$kroot/lib/modules/$kver" "/lib/modules/$kver" 2>/dev/null ||
            cp -a "$kroot/lib/modules/$kver" "/lib/modules/$kver" || return 1
        host_kernel_created+=("/lib/modules/$kver")
    fi
    if [[ ! -e /boot/config-$kver ]]; then
        mkdir -p /boot
        cp "$kroot/boot/config-$kver" "/boot/config-$kver" || return 1
        host_kernel_created+=("/boot/config-$kver")
    fi
}

host_kernel_cleanup() {
    local p
    for p in "${host_kernel_created[@]}"; do
        rm -rf -- "$p"
    done
    host_kernel_created=()
}
