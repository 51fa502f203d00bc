# Sourced by tests/netroot/run. No Debian kernel builds siw (iWARP in
# software: `# CONFIG_RDMA_SIW is not set` in 6.1, 6.12 and 7.x), so the test
# builds it out of tree from Debian's own linux-source and linux-headers
# packages for the test kernel, and makes a module tree that is the test
# kernel's plus updates/drivers/infiniband/sw/siw/siw.ko, indexed by depmod
# (as DKMS would install it). Cached in CACHE/netroot/KVER-siw.
#
# siw_tree CACHE KROOT KVER: prints the root of that tree (its lib/modules/KVER
# holds the modules).

siw_log() { printf 'tests/netroot: %s\n' "$*" >&2; }

# siw_build CACHE KVER OUT: build siw.ko into OUT.
siw_build() {
    local cache=$1 kver=$2 out=$3 src=$cache/netroot/siw-src
    local abi=${kver%-*}
    local -a pkgs=("linux-headers-$kver" "linux-headers-$abi-common")
    # linux-source-X.Y and linux-kbuild-X.Y, X.Y from the kernel version
    local xy
    xy=$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"$kver")
    pkgs+=("linux-source-$xy" "linux-kbuild-$xy")
    rm -rf "$src.tmp"
    mkdir -p "$src.tmp/deb"
    siw_log "downloading ${pkgs[*]} to build siw"
    (cd "$src.tmp/deb" && apt-get download "${pkgs[@]}" >/dev/null 2>&1) ||
        { siw_log "apt-get download ${pkgs[*]} failed"; return 1; }
    local d
    for d in "$src.tmp"/deb/*.deb; do dpkg -x "$d" "$src.tmp/root" || return 1; done
    local h=$src.tmp/root/usr/src
    # The headers' Makefile includes the common headers by absolute path.
    echo "include $h/linux-headers-$abi-common/Makefile" >"$h/linux-headers-$kver/Makefile"
    tar -xJf "$h/linux-source-$xy.tar.xz" -C "$src.tmp" "linux-source-$xy/drivers/infiniband/sw/siw" ||
        return 1
    local m=$src.tmp/linux-source-$xy/drivers/infiniband/sw/siw
    make -s -C "$h/linux-headers-$kver" M="$m" CONFIG_RDMA_SIW=m modules >"$src.tmp/build.log" 2>&1 ||
        { siw_log "building siw failed:"; tail -20 "$src.tmp/build.log" >&2; return 1; }
    mkdir -p "$(dirname "$out")"
    cp "$m/siw.ko" "$out"
    rm -rf "$src.tmp"
}

# The version a DKMS replacement says it is.
dkms_version=rdma-initrd-test-dkms

# dkms_replacement SRC OUT: SRC (a module, compressed or not) rebuilt as
# another build of itself: its .modinfo with version=$dkms_version added.
dkms_replacement() {
    local src=$1 out=$2 tmp
    tmp=$(mktemp -d) || return 1
    case $src in
        *.xz) xz -dc "$src" >"$tmp/m.ko" ;;
        *.zst) zstd -qdc "$src" >"$tmp/m.ko" ;;
        *) cp "$src" "$tmp/m.ko" ;;
    esac || return 1
    objcopy -O binary --only-section=.modinfo "$tmp/m.ko" "$tmp/modinfo" &&
        printf 'version=%s\0' "$dkms_version" >>"$tmp/modinfo" &&
        mkdir -p "$(dirname "$out")" &&
        objcopy --update-section .modinfo="$tmp/modinfo" "$tmp/m.ko" "$out" || { rm -rf "$tmp"; return 1; }
    rm -rf "$tmp"
}

siw_tree() {
    local cache=$1 kroot=$2 kver=$3
    local tree=$cache/netroot/$kver-dkms ko=$cache/netroot/siw-$kver.ko
    if [[ ! -s $ko ]]; then
        siw_build "$cache" "$kver" "$ko.tmp" && mv "$ko.tmp" "$ko" || return 1
    fi
    if [[ ! -e $tree/.complete ]]; then
        rm -rf "$tree" "$tree.tmp"
        local md=$tree.tmp/lib/modules/$kver
        mkdir -p "$md" "$tree.tmp/boot"
        # The kernel's modules hard-linked (never written: depmod replaces
        # its index files by rename, and those are copied anyway).
        cp -al "$kroot/lib/modules/$kver/kernel" "$md/kernel" || return 1
        find "$kroot/lib/modules/$kver" -maxdepth 1 -type f -exec cp {} "$md/" \;
        cp "$kroot/boot/"* "$tree.tmp/boot/"
        mkdir -p "$md/updates/dkms"
        cp "$ko" "$md/updates/dkms/siw.ko" || return 1
        dkms_replacement "$(find "$md/kernel" -name 'rdma_rxe.ko*' | head -n1)" "$md/updates/dkms/rdma_rxe.ko" ||
            return 1
        depmod -b "$tree.tmp" "$kver" || return 1
        touch "$tree.tmp/.complete"
        mv "$tree.tmp" "$tree"
    fi
    echo "$tree"
}
