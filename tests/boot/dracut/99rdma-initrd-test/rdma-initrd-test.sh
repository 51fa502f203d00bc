#!/bin/bash
# Test-only: the boot test, run in the initrd (dracut's systemd initrd, or
# initramfs-tools' init with udev alone). Prints one line per check,
#   RESULT <name> PASS|FAIL <detail>
# Nothing here loads an RDMA module: udev and systemd must do it.

result() { printf 'RESULT %s %s %s\n' "$1" "$2" "${*:3}"; }
# wait_until SECONDS CMD...: poll CMD every 0.2 s.
wait_until() {
    local i n=$(($1 * 5))
    shift
    for ((i = 0; i < n; i++)); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
loaded() { [[ -d /sys/module/$1 ]]; }
# The first RDMA device (no `ls`: initramfs-tools ships klibc's).
ibdev() {
    local d
    for d in /sys/class/infiniband/*; do
        [[ -e $d ]] && { echo "${d##*/}"; return 0; }
    done
    return 1
}
active() { systemctl is-active --quiet "$1"; }
blacklisted=
[[ $(cat /proc/cmdline) =~ rdmatest.blacklist=([A-Za-z0-9_]+) ]] && blacklisted=${BASH_REMATCH[1]}

printf 'RDMA-INITRD-TEST start\n'
udevadm settle --timeout=120 || true

# 1. Net path: udev sets ID_NET_DRIVER on the virtio NIC, and the rule's
#    `kmod load rdma_rxe` loads the module from the image's index.
nic=
for d in /sys/class/net/*; do
    [[ ${d##*/} == lo ]] && continue
    nic=${d##*/}
    break
done
drv=
[[ -n $nic ]] && drv=$(udevadm info -q property -p "/sys/class/net/$nic" | sed -n 's/^ID_NET_DRIVER=//p')
if [[ -z $nic ]]; then
    result net-path FAIL "no network interface"
elif wait_until 30 loaded rdma_rxe; then
    result net-path PASS "rdma_rxe loaded by udev; $nic has ID_NET_DRIVER=$drv"
else
    result net-path FAIL "rdma_rxe not loaded; $nic has ID_NET_DRIVER=${drv:-unset}"
fi

# 2. RDMA device path: a soft-RoCE device appears; the rules tag it RoCE and
#    want rdma-hw.target and rdma-load-modules@{rdma,roce}.service.
ip link set "${nic:-none}" up 2>/dev/null
if err=$(rdma link add rxe0 type rxe netdev "${nic:-none}" 2>&1) &&
    wait_until 30 ibdev >/dev/null; then
    ibdev=$(ibdev)
    result rdma-link PASS "RDMA device $ibdev on $nic"
    udevadm settle --timeout=60 || true
    if udevadm info -q property -p "/sys/class/infiniband/$ibdev" | grep -qx 'ID_RDMA_ROCE=1'; then
        result roce-tag PASS "$ibdev has ID_RDMA_ROCE=1"
    else
        result roce-tag FAIL "$ibdev lacks ID_RDMA_ROCE=1"
    fi
else
    result rdma-link FAIL "rdma link add: ${err:-no RDMA device appeared}"
    result roce-tag FAIL "no RDMA device"
fi
# Without an RDMA device nothing will start them: look once.
wait=60
ibdev >/dev/null || wait=1
# Without systemd (initramfs-tools) there are no units: udev loads the lists.
units=(rdma-hw.target rdma-load-modules@rdma.service rdma-load-modules@roce.service)
command -v systemctl >/dev/null || units=()
for u in "${units[@]}"; do
    if wait_until "$wait" active "$u"; then
        result "unit:$u" PASS active
    else
        result "unit:$u" FAIL "$(systemctl is-active "$u" 2>&1)"
    fi
done
# Every module of rdma.conf and roce.conf that this kernel has.
for conf in /etc/rdma/modules/rdma.conf /etc/rdma/modules/roce.conf; do
    if [[ ! -f $conf ]]; then
        result "conf:${conf##*/}" FAIL "missing"
        continue
    fi
    while read -r name _; do
        [[ -z $name || $name == [\#\;]* ]] && continue
        if [[ $name == "$blacklisted" ]] && ! modprobe -R "$name" >/dev/null 2>&1; then
            # rdma-initrd leaves a blacklisted module out of the image.
            if loaded "$name"; then
                result "module:$name" FAIL "blacklisted but loaded"
            else
                result "module:$name" PASS "blacklisted, not in the image, not loaded"
            fi
            continue
        fi
        mods=$(modprobe -R "$name" 2>/dev/null) || {
            printf 'note: %s is not in this kernel\n' "$name"
            continue
        }
        for m in $mods; do
            if [[ $m == "$blacklisted" ]]; then
                if loaded "$m"; then
                    result "module:$m" FAIL "blacklisted but loaded"
                else
                    result "module:$m" PASS "blacklisted, not loaded"
                fi
            elif wait_until "$wait" loaded "$m"; then
                result "module:$m" PASS "loaded ($name in ${conf##*/})"
            else
                result "module:$m" FAIL "not loaded ($name in ${conf##*/})"
            fi
        done
    done <"$conf"
done
printf 'RDMA-INITRD-TEST end\n'
exit 0
