#!/usr/bin/env bash
# Download and cache the real inputs the tests run on: a Debian kernel's
# module tree (depmod'ed, plus xz- and zstd-recompressed copies) and the
# files of Debian's rdma-core package. Nothing here is committed.
#
#   tests/fetch-inputs.sh            prints KEY=VALUE lines (KVER, KROOT, ...)
#   RDMA_INITRD_CACHE=DIR            where to cache (default ~/.cache/rdma-initrd)
#   RDMA_INITRD_KPKG=linux-image-6.1.0-NN-amd64   pin the kernel package
set -euo pipefail

cache=${RDMA_INITRD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rdma-initrd}
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

log() { printf 'fetch-inputs: %s\n' "$*" >&2; }

pick_kernel_pkg() {
    if [[ -n ${RDMA_INITRD_KPKG:-} ]]; then
        echo "$RDMA_INITRD_KPKG"
        return
    fi
    # The distribution's current 6.1 kernel (what linux-image-amd64 pulls in),
    # else the newest linux-image-6.1.0-N-amd64 apt knows.
    local dep
    dep=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1)
    if [[ -z $dep ]]; then
        dep=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
            grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -t- -k5,5n | tail -n1)
    fi
    [[ -n $dep ]] || { log "no linux-image-6.1.0-*-amd64 known to apt (run apt-get update)"; exit 1; }
    echo "$dep"
}

download() { # PKG DESTDIR -> extracted root
    local pkg=$1 dest=$2
    if [[ -e $dest/.complete ]]; then return; fi
    rm -rf "$dest" "$dest.tmp"
    mkdir -p "$dest.tmp/deb"
    log "downloading $pkg"
    (cd "$dest.tmp/deb" && apt-get download "$pkg" >/dev/null)
    dpkg -x "$dest.tmp"/deb/*.deb "$dest.tmp/root"
    rm -rf "$dest.tmp/deb"
    touch "$dest.tmp/.complete"
    mv "$dest.tmp" "$dest"
}

recompress() { # SRCROOT DESTROOT KVER xz|zstd
    local src=$1 dest=$2 kver=$3 kind=$4
    if [[ -e $dest/.complete ]]; then return; fi
    rm -rf "$dest" "$dest.tmp"
    mkdir -p "$dest.tmp"
    log "recompressing modules with $kind"
    cp -a "$src/lib" "$dest.tmp/lib"
    local n
    n=$(nproc)
    if [[ $kind == xz ]]; then
        find "$dest.tmp/lib/modules/$kver" -name '*.ko' -print0 |
            xargs -0 -P "$n" -n 64 xz -q --check=crc32 -1
    else
        find "$dest.tmp/lib/modules/$kver" -name '*.ko' -print0 |
            xargs -0 -P "$n" -n 64 zstd -q --rm -1
    fi
    depmod -b "$dest.tmp" "$kver"
    touch "$dest.tmp/.complete"
    mv "$dest.tmp" "$dest"
}

kpkg=$(pick_kernel_pkg)
kver=${kpkg#linux-image-}
kdir=$cache/$kpkg
if [[ ! -e $kdir/.complete ]]; then
    download "$kpkg" "$kdir.dl"
    rm -rf "$kdir"
    mv "$kdir.dl/root" "$kdir.dl/tree"
    depmod -b "$kdir.dl/tree" "$kver"
    mkdir -p "$kdir"
    mv "$kdir.dl/tree" "$kdir/root"
    rm -rf "$kdir.dl"
    touch "$kdir/.complete"
fi
recompress "$kdir/root" "$kdir/xz" "$kver" xz
recompress "$kdir/root" "$kdir/zst" "$kver" zstd

download rdma-core "$cache/rdma-core"

echo "KVER=$kver"
echo "KROOT=$kdir/root"
echo "KROOT_XZ=$kdir/xz"
echo "KROOT_ZST=$kdir/zst"
echo "RDMA_CORE_ROOT=$cache/rdma-core/root"
