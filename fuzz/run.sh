#!/usr/bin/env bash
# Fuzz every parser with cargo fuzz (libFuzzer, nightly toolchain), each for
# a set time, seeded from real inputs (tests/fetch-inputs.sh). Prints the
# executions per target and `N passed, M failed` last; exits non-zero when a
# target finds a crash (its input is kept under fuzz/artifacts/).
#
#   fuzz/run.sh [SECONDS]     default 60 per target, random seeds
#   fuzz/run.sh --smoke       what CI runs: 20000 executions of each target
#                             from a fixed seed, so a run is repeatable
set -uo pipefail
secs=${1:-60}
limit=(-max_total_time="$secs")
what="in ${secs}s"
if [[ $secs == --smoke ]]; then
    limit=(-runs=20000 -seed=1)
    what="(smoke, seed 1)"
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/fuzz"
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked || exit 2
fi
cargo +nightly --version >/dev/null || { echo "fuzz/run.sh: needs the nightly toolchain" >&2; exit 2; }
eval "$(bash "$repo/tests/fetch-inputs.sh")" || exit 2
md=$KROOT/lib/modules/$KVER
work=$(mktemp -d "${TMPDIR:-/tmp}/rdma-initrd-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

seed() { mkdir -p "$work/$1"; }
seed modules_dep && head -n 200 "$md/modules.dep" >"$work/modules_dep/dep"
seed modules_alias && head -n 300 "$md/modules.alias" >"$work/modules_alias/alias"
seed modprobe_d && cp "$RDMA_CORE_ROOT"/etc/modprobe.d/*.conf "$repo/units/modprobe.d/rdma-initrd.conf" "$md/modules.softdep" "$work/modprobe_d/"
seed builtin && cp "$md/modules.builtin" "$work/builtin/" && head -c 4096 "$md/modules.builtin.modinfo" >"$work/builtin/modinfo"
seed udev_rules && cp "$RDMA_CORE_ROOT"/lib/udev/rules.d/*.rules "$repo"/units/*.rules "$work/udev_rules/"
seed modinfo && cp "$md/kernel/lib/crc8.ko" "$md/kernel/crypto/crc32_generic.ko" "$work/modinfo/"
seed cpio && (cd "$repo/units" && find . | LC_ALL=C sort | cpio -o -H newc --quiet >"$work/cpio/plain" &&
    zstd -q -c "$work/cpio/plain" >"$work/cpio/zstd" && gzip -c "$work/cpio/plain" >"$work/cpio/gzip" &&
    cat "$work/cpio/plain" "$work/cpio/zstd" >"$work/cpio/early-then-zstd")
seed decompress && for c in "xz --check=crc32" zstd gzip; do $c -c "$repo/units/rdma-hw.target" >"$work/decompress/${c%% *}"; done
seed index_bin && cp "$md/modules.builtin.bin" "$md/modules.softdep" "$work/index_bin/" && head -c 65536 "$md/modules.alias.bin" >"$work/index_bin/alias-head"
seed fnmatch && printf 'pci:v000015B3d*sv*sd*bc*sc*i*\0pci:v000015B3d00001017sv000015B3sd00000020bc02sc00i00' >"$work/fnmatch/pci" &&
    printf '[!a-z][[:digit:]]*\\*\0x9y*' >"$work/fnmatch/classes"
seed mountinfo && printf '%s\n' '22 1 0:21 / / rw,relatime shared:1 - nfs4 10.0.2.1:/ rw,vers=4.2,proto=rdma,port=20049' \
    '30 22 259:1 / /a\040b rw - ext4 /dev/nvme0n1p1 rw' >"$work/mountinfo/nfs-rdma"
seed manifest && for c in "$repo"/tests/corpus/manifest-*/image; do
    (cd "$work/manifest" && cpio -i --quiet --to-stdout usr/lib/rdma-initrd/manifest.json <"$c" >"$(basename "$(dirname "$c")")")
done
seed units_and_lists && cp "$RDMA_CORE_ROOT"/lib/systemd/system/rdma-* "$RDMA_CORE_ROOT"/etc/rdma/modules/*.conf "$work/units_and_lists/"

passed=0 failed=0
for t in $(cargo +nightly fuzz list); do
    log=$work/$t.log
    cargo +nightly fuzz run "$t" "$work/$t" -- "${limit[@]}" -print_final_stats=1 \
        -rss_limit_mb=2048 -max_len=1048576 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if ((rc == 0)); then
        echo "PASS $t: ${execs:-?} executions $what"
        passed=$((passed + 1))
    else
        echo "FAIL $t (exit $rc): see fuzz/artifacts/$t/"
        grep -E 'panicked|ERROR|SUMMARY' "$log" | head -n 5
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
