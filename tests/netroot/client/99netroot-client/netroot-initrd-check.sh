#!/bin/bash
# Test-only: every unit named by netroot.units= (comma-separated) must have
# finished (active, result success) by the time initrd.target is reached:
# initrd-cleanup would otherwise stop it half-way.

result() { printf 'RESULT %s %s %s\n' "$1" "$2" "${*:3}"; }
units=$(sed -n 's/.*\<netroot\.units=\([^ ]*\).*/\1/p' /proc/cmdline)
for u in ${units//,/ }; do
    active= sub= res=
    while IFS='=' read -r k v; do
        case $k in
            ActiveState) active=$v ;;
            SubState) sub=$v ;;
            Result) res=$v ;;
        esac
    done < <(systemctl show -p ActiveState,SubState,Result "$u")
    if [[ $active == active && $res == success ]]; then
        result "unit:$u" PASS "$active ($sub) before switch-root"
    else
        result "unit:$u" FAIL "$active ($sub, result $res) before switch-root"
    fi
done
# netroot.dkms=VERSION: the module tree has a DKMS replacement of rdma_rxe
# in updates/dkms that says it is VERSION; depmod chose it, so the image
# must hold it and udev must have loaded it, not the kernel's own.
dkms=$(sed -n 's/.*\<netroot\.dkms=\([^ ]*\).*/\1/p' /proc/cmdline)
if [[ -n $dkms && -d /sys/module/rdma_rxe ]]; then
    got=$(cat /sys/module/rdma_rxe/version 2>/dev/null)
    if [[ $got == "$dkms" ]]; then
        result dkms-module PASS "rdma_rxe is the updates/dkms build (version $got)"
    else
        result dkms-module FAIL "rdma_rxe has version '${got:-none}', not the updates/dkms build's $dkms"
    fi
fi
printf 'netroot-initrd-check: RDMA modules loaded: %s\n' \
    "$(for m in rdma_rxe siw rdma_cm ib_uverbs rdma_ucm iw_cm rpcrdma nvme_rdma ib_iser; do [[ -d /sys/module/$m ]] && printf '%s ' "$m"; done)"
exit 0
