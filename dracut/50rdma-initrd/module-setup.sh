#!/bin/bash
# rdma-initrd dracut module: RDMA hardware and ULP modules, firmware, udev
# rules, units and confs, so that early boot takes rdma-core's hot-plug path.
# Every decision is made by rdma-initrd; this file only translates its plan
# into dracut calls.
#
# dracut.conf may set rdma_initrd_args (an array or a string), e.g.
#   rdma_initrd_args=(--profile /etc/rdma-initrd/node-a.json --protocol roce)

# The tool, with the root, kernel and selection of this dracut run: host-only
# when dracut is, else generic, unless rdma_initrd_args names a selection
# (--profile, --driver, --protocol, --generic, --hostonly) of its own.
_rdma_initrd() {
    local -a sel=(--generic) extra=()
    [[ $hostonly ]] && sel=(--hostonly)
    if declare -p rdma_initrd_args 2>/dev/null | grep -q '^declare -a'; then
        extra=("${rdma_initrd_args[@]}")
    elif [[ -n ${rdma_initrd_args-} ]]; then
        read -r -a extra <<<"$rdma_initrd_args"
    fi
    local a
    for a in "${extra[@]}"; do
        case $a in
            --profile | --driver | --protocol | --generic | --hostonly) sel=() ;;
        esac
    done
    # Without systemd in the image (dracut's own init), udev alone runs: the
    # plan then replaces the units with a generated rules file.
    local -a init=()
    dracut_module_included systemd || init=(--init udev)
    rdma-initrd --quiet --generator dracut --root "${dracutsysrootdir:-/}" --kver "$kernel" \
        ${srcmods:+--moddir "$srcmods"} "${init[@]}" "${sel[@]}" "${extra[@]}" "$@"
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

# A boot hook of the plan: DEST is HOOK/PRIO-NAME (what inst_hook makes).
_rdma_initrd_hook() {
    local src=$1 dest=$2 file=${2##*/}
    inst_hook "${dest%/*}" "${file%%-*}" "$src"
}

installkernel() {
    local out
    local -a mods
    out=$(_rdma_initrd modules) || {
        derror "rdma-initrd: planning the modules failed"
        return 1
    }
    mapfile -t mods <<<"$out"
    [[ -n $out ]] || return 0
    hostonly='' instmods "${mods[@]}"
}

install() {
    local tmp plan kind origin src dest ret=0
    tmp=$(mktemp -d "${DRACUT_TMPDIR:-/tmp}/rdma-initrd.XXXXXX") || return 1
    plan=$(_rdma_initrd files --kind --extract "$tmp") || {
        derror "rdma-initrd: planning the files failed"
        rm -rf -- "$tmp"
        return 1
    }
    while read -r kind origin src dest; do
        [[ -n $kind ]] || continue
        case $kind:$origin in
            want:*) $SYSTEMCTL -q --root "$initdir" add-wants "$src" "$dest" ;;
            hook:*) _rdma_initrd_hook "$src" "$dest" ;;
            rule:root) inst_rules "${dest##*/}" ;;
            rule:host) inst_rules "$src" ;;
            program:root) inst_multiple "$dest" ;;
            *:root) inst_simple "$dest" ;;
            *:host) inst_simple "$src" "$dest" ;;
        esac || {
            derror "rdma-initrd: could not install $kind $src as $dest"
            ret=1
        }
    done <<<"$plan"
    rm -rf -- "$tmp"
    return $ret
}
