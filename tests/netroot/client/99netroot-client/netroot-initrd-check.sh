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
printf 'netroot-initrd-check: RDMA modules loaded: %s\n' \
    "$(for m in rdma_rxe siw rdma_cm ib_uverbs rdma_ucm iw_cm rpcrdma nvme_rdma ib_iser; do [[ -d /sys/module/$m ]] && printf '%s ' "$m"; done)"
exit 0
