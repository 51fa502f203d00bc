#!/bin/bash
# rdma-initrd dracut module: RDMA hardware and ULP modules, firmware, udev
# rules, units and confs, so that early boot takes rdma-core's hot-plug path,
# and the boot hooks a root over RDMA needs. Every decision is made by
# rdma-initrd (one `plan --lines` per dracut run); this file only translates
# its lines into dracut calls.
#
# dracut.conf may set rdma_initrd_args (an array or a string), e.g.
#   rdma_initrd_args=(--profile /etc/rdma-initrd/node-a.json --protocol roce)

# rdma-initrd with this dracut run's root, kernel and module directory, and
# the administrator's rdma_initrd_args.
_rdma_initrd() {
    local -a extra=()
    if declare -p rdma_initrd_args 2>/dev/null | grep -q '^declare -a'; then
        extra=("${rdma_initrd_args[@]}")
    elif [[ -n ${rdma_initrd_args-} ]]; then
        read -r -a extra <<<"$rdma_initrd_args"
    fi
    rdma-initrd --quiet --generator dracut --root "${dracutsysrootdir:-/}" --kver "$kernel" \
        ${srcmods:+--moddir "$srcmods"} "${extra[@]}" "$@"
}

# The plan's lines, made once per dracut run ($DRACUT_TMPDIR is dracut's
# own), with the facts of this run: host-only or not, and whether systemd
# is in the image.
_rdma_initrd_lines() {
    local dir=${DRACUT_TMPDIR:-/tmp}/rdma-initrd
    if [[ ! -e $dir/lines ]]; then
        local -a init=(--init systemd) def=(--default-selection generic)
        [[ $hostonly ]] && def=(--default-selection hostonly)
        dracut_module_included systemd || init=(--init udev)
        mkdir -p "$dir/files" || return 1
        _rdma_initrd "${init[@]}" "${def[@]}" plan --lines --extract "$dir/files" >"$dir/lines.tmp" || {
            derror "rdma-initrd: planning failed"
            return 1
        }
        mv "$dir/lines.tmp" "$dir/lines"
    fi
    cat "$dir/lines"
}

# 0: host-only and RDMA hardware is present; 255: only when asked for.
check() {
    require_binaries rdma-initrd || return 1
    [[ $hostonly ]] || return 255
    _rdma_initrd detect --check && return 0
    return 255
}

# A systemd initrd (dracut's default where systemd is installed): udev (its
# 80-net-setup-link.rules sets ID_NET_DRIVER, which the hardware rules match)
# and systemd-modules-load, which rdma-load-modules@ runs. Without systemd
# (not installed, or --omit systemd): udev rules alone.
depends() {
    if [[ " ${omit_dracutmodules-} " != *" systemd "* && -x $dracutsysrootdir$systemdutildir/systemd ]]; then
        echo systemd systemd-udevd systemd-modules-load
    else
        echo udev-rules
    fi
    return 0
}

installkernel() {
    local lines kind name
    local -a mods=()
    lines=$(_rdma_initrd_lines) || return 1
    while read -r kind name _; do
        [[ $kind == module ]] && mods+=("$name")
    done <<<"$lines"
    ((${#mods[@]})) || return 0
    hostonly='' instmods "${mods[@]}"
}

install() {
    local lines kind a b c d ret=0
    local -a same=() wants=()
    lines=$(_rdma_initrd_lines) || return 1
    while read -r kind a b c d; do
        case $kind:$b in
            # A file of the root goes to its own path, as the plan says
            # (dracut reads it under $dracutsysrootdir): all of them in one
            # dracut-install call. The plan already holds the programs the
            # rules run. Wants once the units are in place.
            file:root) same+=("$d") ;;
            file:*) inst_simple "$c" "$d" ;;
            hook:*) inst_hook "$b" "$c" "$a" ;;
            want:*) wants+=("$a" "$b") ;;
        esac || {
            derror "rdma-initrd: could not install: $kind $a $b $c $d"
            ret=1
        }
    done <<<"$lines"
    if ((${#same[@]})) && ! inst_multiple "${same[@]}"; then
        derror "rdma-initrd: could not install: ${same[*]}"
        ret=1
    fi
    set -- "${wants[@]}"
    while (($#)); do
        $SYSTEMCTL -q --root "$initdir" add-wants "$1" "$2" || {
            derror "rdma-initrd: could not install: want $1 $2"
            ret=1
        }
        shift 2
    done
    return $ret
}
