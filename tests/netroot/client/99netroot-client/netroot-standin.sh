#!/bin/bash
# Test-only: a real HCA registers its RDMA device by itself once its provider
# module is loaded (by udev, from the rules rdma-initrd put in the image).
# This waits for the provider the same way, never loading it, then creates
# the soft device on the NIC:
#   netroot.rdma=rxe|siw   the provider (default rxe)
#   netroot.delay=SECONDS  wait that long first (slow HCA firmware)

result() { printf 'RESULT %s %s %s\n' "$1" "$2" "${*:3}"; }
arg() { sed -n "s/.*\\<$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
kind=$(arg netroot.rdma)
kind=${kind:-rxe}
delay=$(arg netroot.delay)
mod=$kind
[[ $kind == rxe ]] && mod=rdma_rxe

for ((i = 0; i < 150; i++)); do
    [[ -e /sys/class/net/eth0 && -d /sys/module/$mod ]] && break
    sleep 0.2
done
if [[ ! -d /sys/module/$mod ]]; then
    result rdma-device FAIL "$mod was not loaded by udev in 30 s: no RDMA device"
    exit 0
fi
if [[ -n $delay ]]; then
    echo "netroot-standin: $mod loaded; the RDMA device appears in $delay s"
    sleep "$delay"
fi
if err=$(rdma link add "${kind}0" type "$kind" netdev eth0 2>&1); then
    result rdma-device PASS "${kind}0 on eth0 (${delay:-0} s after $mod loaded)"
else
    result rdma-device FAIL "rdma link add: $err"
fi
