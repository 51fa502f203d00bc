#!/usr/bin/env bash
# Run the mkinitcpio install hook with recording stand-ins for mkinitcpio's
# functions (mkinitcpio is not packaged by Debian): every call is written to
# LOG as one line, `NAME ARG...`.
#
#   harness.sh HOOK LOG KERNELVERSION KMODULEDIR [systemd] [-- RDMA_INITRD_ARGS...]
set -euo pipefail
hook=$1 log=$2 KERNELVERSION=$3 _d_kmoduledir=$4
shift 4
with_systemd=0
if [[ ${1-} == systemd ]]; then
    with_systemd=1
    shift
fi
[[ ${1-} == -- ]] && shift
RDMA_INITRD_ARGS=("$@")
: >"$log"

record() { printf '%s\n' "$*" >>"$log"; }
add_module() { record add_module "$@"; }
add_file() {
    [[ -f $1 ]] || { record error "add_file: no such file: $1"; return 1; }
    record add_file "$@"
}
add_udev_rule() {
    [[ -f $1 ]] || { record error "add_udev_rule: no such file: $1"; return 1; }
    record add_udev_rule "$@"
}
add_binary() {
    [[ -f $1 ]] || { record error "add_binary: no such file: $1"; return 1; }
    record add_binary "$@"
}
add_symlink() { record add_symlink "$@"; }
add_firmware() { record add_firmware "$@"; }
if ((with_systemd)); then
    add_systemd_unit() { record add_systemd_unit "$@"; }
fi
# mkinitcpio's map: call $1 on each further argument, fail if any failed.
map() {
    local r=0 f=$1
    shift
    for a; do "$f" "$a" || r=1; done
    return $r
}
warning() { record warning "$*"; }
error() { record error "$*"; }
plain() { :; }
quiet() { :; }

# shellcheck source=/dev/null
source "$hook"
build
