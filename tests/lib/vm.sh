# Sourced by the tests that boot initramfs images in qemu (boot, distro):
# the test-only script in the image (tests/boot/dracut/99rdma-initrd-test/
# rdma-initrd-test.sh) prints `RESULT <check> PASS|FAIL <detail>` lines on
# the serial console.
#
#   vm_accel                        kvm where /dev/kvm works, else tcg
#   vm_boot KERNEL IMAGE CONSOLE TIMEOUT [kernel args...]
#   vm_verdict CONSOLE pass|fail CHECK...
#       pass: every CHECK has RESULT lines, all PASS, and no FAIL anywhere;
#       fail: every CHECK has a FAIL line (the image without rdma-initrd).
#       A CHECK ending in `*` names every check with that prefix.

vm_accel() {
    if [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
        echo kvm
    else
        echo tcg
    fi
}

vm_boot() {
    local kernel=$1 image=$2 console=$3 timeout=$4
    shift 4
    timeout --foreground -k 10 "$timeout" qemu-system-x86_64 -accel "${VM_ACCEL:-$(vm_accel)}" \
        -m 1024 -smp 1 -nographic -no-reboot -kernel "$kernel" -initrd "$image" \
        -append "console=ttyS0 panic=-1 loglevel=4 systemd.show_status=0 $*" \
        -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0 \
        </dev/null >"$console" 2>&1
    local rc=$?
    ((rc == 124)) && echo "RESULT boot FAIL timeout after ${timeout}s" >>"$console"
    return 0
}

vm_verdict() {
    local log=$1 mode=$2 c ok=1
    shift 2
    grep -a '^RESULT ' "$log" | tr -d '\r' | sed 's/^/    /'
    for c; do
        local lines
        if [[ $c == *\* ]]; then
            lines=$(grep -a "^RESULT ${c%\*}" "$log" | tr -d '\r')
        else
            lines=$(grep -a "^RESULT $c " "$log" | tr -d '\r')
        fi
        if [[ -z $lines ]]; then
            echo "    missing RESULT $c"
            ok=0
        elif [[ $mode == pass ]] && grep -q ' FAIL' <<<"$lines"; then
            ok=0
        elif [[ $mode == fail ]] && ! grep -q ' FAIL' <<<"$lines"; then
            echo "    $c passed without rdma-initrd: the test cannot fail"
            ok=0
        fi
    done
    if [[ $mode == pass ]] && grep -aq '^RESULT .* FAIL' "$log"; then
        ok=0
    fi
    ((ok))
}
