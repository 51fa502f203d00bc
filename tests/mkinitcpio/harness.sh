#!/usr/bin/env bash
# Run the mkinitcpio install hook with stand-ins for mkinitcpio's functions
# (mkinitcpio is not packaged by Debian) that do what mkinitcpio's do to the
# image tree, BUILDROOT, and record every call in LOG (`NAME ARG...`):
#   add_file SRC [DEST [MODE]]   copies SRC to BUILDROOT/DEST (DEST default SRC)
#   add_binary SRC [DEST]        the same (libraries are not followed here)
#   add_symlink LINK TARGET      makes BUILDROOT/LINK -> TARGET
#   add_runscript                copies the runtime hook of the same name
#   add_module NAME              recorded only (the test checks the names)
#
#   harness.sh HOOK LOG BUILDROOT KERNELVERSION KMODULEDIR [systemd] [-- RDMA_INITRD_ARGS...]
set -euo pipefail
hook=$1 log=$2 BUILDROOT=$3 KERNELVERSION=$4 _d_kmoduledir=$5
shift 5
with_systemd=0
if [[ ${1-} == systemd ]]; then
    with_systemd=1
    shift
fi
[[ ${1-} == -- ]] && shift
RDMA_INITRD_ARGS=("$@")
: >"$log"
mkdir -p "$BUILDROOT"

record() { printf '%s\n' "$*" >>"$log"; }
put() { # SRC DEST MODE
    [[ -f $1 ]] || { record error "no such file: $1"; return 1; }
    mkdir -p "$BUILDROOT$(dirname "$2")"
    cp "$1" "$BUILDROOT$2"
    [[ -z ${3-} ]] || chmod "$3" "$BUILDROOT$2"
}
add_module() { record add_module "$@"; }
add_file() { record add_file "$@"; put "$1" "${2:-$1}" "${3-}"; }
add_binary() { record add_binary "$@"; put "$1" "${2:-$1}" 755; }
add_symlink() {
    record add_symlink "$@"
    mkdir -p "$BUILDROOT$(dirname "$1")"
    ln -sfn "$2" "$BUILDROOT$1"
}
add_runscript() {
    record add_runscript
    put "$(dirname "$hook")/../hooks/$(basename "$hook")" "/hooks/$(basename "$hook")" 644
}
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
