# Sourced by the tests that run Debian releases in a chroot (kernel-install,
# distro). mmdebstrap makes a release's root from Debian's packages once and
# keeps it as a tarball in CACHE/chroots (keyed by release and packages).
#
#   chroot_tarball CACHE SUITE PKG...   prints the tarball's path
#   chroot_unpack TARBALL DIR           a fresh root from it
#   chroot_mount DIR / chroot_umount DIR   /proc, /sys, /dev (what dracut needs)

chroot_log() { printf '%s\n' "$*" >&2; }

chroot_tarball() {
    local cache=$1 suite=$2
    shift 2
    local key dir=$cache/chroots
    key=$(printf '%s\n' "$suite" "$@" | sha256sum | cut -c1-12)
    local tar=$dir/$suite-$key.tar
    if [[ ! -s $tar ]]; then
        mkdir -p "$dir"
        local -a opts=()
        # unstable's Release file can be older than its Valid-Until.
        [[ $suite == sid || $suite == unstable ]] && opts+=(--aptopt='Acquire::Check-Valid-Until "false"')
        chroot_log "making a $suite root with mmdebstrap (cached in $dir)"
        local pkgs
        pkgs=$(IFS=,; echo "$*")
        mmdebstrap --quiet --variant=apt --format=tar "${opts[@]}" --include="$pkgs" \
            "$suite" "$tar.tmp" "deb http://deb.debian.org/debian $suite main" >&2 ||
            { rm -rf "$tar.tmp"; return 1; }
        mv "$tar.tmp" "$tar"
    fi
    echo "$tar"
}

chroot_unpack() {
    local tar=$1 dir=$2
    rm -rf "$dir"
    mkdir -p "$dir"
    tar -C "$dir" -xf "$tar"
}

chroot_mount() {
    local dir=$1 d
    for d in proc sys dev; do
        mkdir -p "$dir/$d"
        mount --rbind "/$d" "$dir/$d" && mount --make-rslave "$dir/$d"
    done
}

chroot_umount() {
    local dir=$1 d
    for d in dev sys proc; do
        mountpoint -q "$dir/$d" && umount -R "$dir/$d"
    done
    return 0
}
