# Sourced by the tests that boot initramfs images in qemu (boot, netroot,
# distro); the only place that runs qemu. The test-only scripts in the
# images (tests/boot/dracut/99rdma-initrd-test/rdma-initrd-test.sh,
# tests/netroot/...) print `RESULT <check> PASS|FAIL <detail>` lines on the
# serial console.
#
#   vm_accel                        kvm where /dev/kvm works, else tcg
#   vm_boot [NET] KERNEL IMAGE CONSOLE TIMEOUT [kernel args...]
#       boots until the VM powers off (TIMEOUT: a `RESULT boot FAIL` line)
#   vm_start [NET] KERNEL IMAGE CONSOLE [kernel args... --] [qemu args...]
#       the same in the background (VM_PID, VM_CONSOLE), one at a time
#   vm_ready READY FAILED SECONDS   waits for READY on its console: 1 on
#                                   FAILED, the VM's end or the time's
#   vm_stop                         stops it; its console kept as
#                                   CONSOLE's name with .PID before .console
#   NET: `--net dgram LOCALPORT REMOTEPORT MAC`, a NIC on qemu's UDP
#   datagram netdev on 127.0.0.1 (two VMs joined, as dracut's TEST-60-NFS
#   does); without it a NIC on qemu's user network, restricted.
#   VM_ACCEL: the accelerator (kvm, tcg), vm_accel's unless set before;
#   exported for the runner's subshells.
#
#   vm_verdict CONSOLE pass|fail CHECK...   the one rule of every test:
#       pass: every CHECK has RESULT lines, all PASS, and no RESULT line
#             anywhere on the console says FAIL;
#       fail (a control, built without rdma-initrd): no CHECK has a PASS
#             line, and some RESULT line of the VM's checks says FAIL (a VM
#             that never ran them, e.g. vm_boot's `RESULT boot FAIL
#             timeout` alone, is not the expected failure).
#       No console satisfies both. A CHECK ending in `*` names every check
#       with that prefix.

vm_accel() {
    if [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
        echo kvm
    else
        echo tcg
    fi
}

VM_ACCEL=${VM_ACCEL:-$(vm_accel)}
export VM_ACCEL

# vm_net ARGS...: sets vm_nic (qemu's -netdev and -device) and vm_shift (how
# many of ARGS were NET).
vm_net() {
    if [[ ${1-} == --net && ${2-} == dgram ]]; then
        vm_nic=(-netdev "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$3,remote.type=inet,remote.host=127.0.0.1,remote.port=$4"
            -device "virtio-net-pci,netdev=n0,mac=$5")
        vm_shift=5
    else
        vm_nic=(-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0)
        vm_shift=0
    fi
}

# vm_qemu KERNEL IMAGE APPEND: sets vm_cmd, the qemu command with vm_nic.
vm_qemu() {
    vm_cmd=(qemu-system-x86_64 -accel "$VM_ACCEL" -m 1024 -smp 1 -nographic -no-reboot
        -kernel "$1" -initrd "$2" -append "console=ttyS0 panic=-1 loglevel=4 $3" "${vm_nic[@]}")
}

vm_boot() {
    local vm_nic vm_shift vm_cmd
    vm_net "$@"
    shift "$vm_shift"
    local kernel=$1 image=$2 console=$3 timeout=$4
    shift 4
    vm_qemu "$kernel" "$image" "systemd.show_status=0 $*"
    timeout --foreground -k 10 "$timeout" "${vm_cmd[@]}" </dev/null >"$console" 2>&1
    local rc=$?
    ((rc == 124)) && echo "RESULT boot FAIL timeout after ${timeout}s" >>"$console"
    return 0
}

VM_PID= VM_CONSOLE=
vm_start() {
    local vm_nic vm_shift vm_cmd
    vm_net "$@"
    shift "$vm_shift"
    local kernel=$1 image=$2 console=$3 append=()
    shift 3
    while (($#)) && [[ $1 != -- ]]; do
        append+=("$1")
        shift
    done
    shift
    vm_stop
    : >"$console"
    vm_qemu "$kernel" "$image" "${append[*]}"
    "${vm_cmd[@]}" "$@" -serial "file:$console" -monitor none -display none \
        </dev/null >"${console%.console}.qemu.log" 2>&1 &
    VM_PID=$! VM_CONSOLE=$console
}

vm_ready() {
    local ready=$1 failed=$2 limit=$3 t0=$SECONDS
    while ((SECONDS - t0 < limit)); do
        grep -aq "$ready" "$VM_CONSOLE" && return 0
        if grep -aq "$failed" "$VM_CONSOLE" || ! kill -0 "$VM_PID" 2>/dev/null; then
            return 1
        fi
        sleep 1
    done
    return 1
}

vm_stop() {
    if [[ -n $VM_PID ]]; then
        kill "$VM_PID" 2>/dev/null && wait "$VM_PID" 2>/dev/null
        cp "$VM_CONSOLE" "${VM_CONSOLE%.console}.$VM_PID.console" 2>/dev/null
    fi
    VM_PID=
}

# The RESULT lines of CHECK (a prefix when it ends in `*`).
vm_results() {
    local log=$1 c=$2
    if [[ $c == *\* ]]; then
        grep -a "^RESULT ${c%\*}" "$log" | tr -d '\r'
    else
        grep -a "^RESULT $c " "$log" | tr -d '\r'
    fi
}

vm_verdict() {
    local log=$1 mode=$2 c lines ok=1
    shift 2
    grep -a '^RESULT ' "$log" | tr -d '\r' | sed 's/^/    /'
    for c; do
        lines=$(vm_results "$log" "$c")
        if [[ $mode == pass && -z $lines ]]; then
            echo "    missing RESULT $c"
            ok=0
        elif [[ $mode == pass ]] && grep -q ' FAIL' <<<"$lines"; then
            ok=0
        elif [[ $mode == fail ]] && grep -q ' PASS' <<<"$lines"; then
            echo "    $c passed without rdma-initrd: the test cannot fail"
            ok=0
        fi
    done
    if [[ $mode == pass ]] && grep -aq '^RESULT .* FAIL' "$log"; then
        ok=0
    elif [[ $mode == fail ]] && ! grep -a '^RESULT .* FAIL' "$log" | grep -vq '^RESULT boot '; then
        echo "    no check in the VM said FAIL: the checks did not run"
        ok=0
    fi
    ((ok))
}
