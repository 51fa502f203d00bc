# Sourced first by every test runner (tests/*/run): its options, its
# preamble and its result lines. The runner defines usage() before.
#
#   runner_args SPEC "$@"   -h/--help, and the options SPEC lists:
#                           `--keep` (keep=1), `--NAME=` (NAME=VALUE, `-`
#                           in NAME as `_`), `ARGS` (other words into want)
#   runner_root WHY         exit 2 unless root
#   runner_tools TOOL...    exit 2 unless every TOOL is on PATH
#   runner_build            bin: RDMA_INITRD_BIN, else the checkout's release
#                           binary (cargo build --release --locked)
#   runner_inputs           the kernel of tests/fetch-inputs.sh (KROOT, KVER)
#   runner_workdir          work: a new directory, removed at exit unless
#                           keep=1; at_exit() (if defined) runs first
#   result PASS|FAIL LABEL SECONDS [NOTE]   a result line, counted
#   check [--log FILE] LABEL CMD...
#                           CMD's output to FILE (default $work/LABEL.log),
#                           a result line; on FAIL the log's end
#   runner_end [NOTE]       the total time, `N passed, M failed`, and exit
#                           (0 when nothing failed, else 1)
# A setup problem exits 2.

runner=tests/$(basename "$(dirname "$0")")/run
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${RDMA_INITRD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rdma-initrd}
keep=0 want=() passed=0 failed=0

runner_die() { echo "$runner: $*" >&2; exit 2; }

runner_args() {
    local spec=" $1 " o
    shift
    while (($#)); do
        o=$1
        case $o in
            -h | --help) usage; exit 0 ;;
            --keep) [[ $spec == *" --keep "* ]] || runner_usage "$o"; keep=1 ;;
            -*)
                [[ $spec == *" $o= "* && $# -ge 2 ]] || runner_usage "$o"
                o=${o#--}
                printf -v "${o//-/_}" '%s' "$2"
                shift
                ;;
            *) [[ $spec == *" ARGS "* ]] || runner_usage "$o"; want+=("$o") ;;
        esac
        shift
    done
}

runner_usage() {
    echo "$runner: unknown option or argument $1" >&2
    usage >&2
    exit 2
}

runner_root() { [[ $(id -u) == 0 ]] || runner_die "needs root ($1)"; }

runner_tools() {
    local t
    for t; do
        command -v "$t" >/dev/null || runner_die "$t is missing"
    done
}

runner_build() {
    bin=${RDMA_INITRD_BIN:-}
    if [[ -z $bin ]]; then
        (cd "$repo" && cargo build --release --locked -q) || exit 2
        bin=$repo/target/release/rdma-initrd
    fi
}

runner_inputs() { eval "$(bash "$repo/tests/fetch-inputs.sh")" || exit 2; }

runner_workdir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/rdma-initrd-$(basename "$here").XXXXXX") || exit 2
    trap runner_cleanup EXIT
}

runner_cleanup() {
    declare -F at_exit >/dev/null && at_exit
    ((keep)) || rm -rf "$work"
}

result() {
    echo "$1 $2 ($3 s${4:+; $4})"
    if [[ $1 == PASS ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        keep=1
    fi
}

# (check's locals are prefixed: CMD sees them, and may use short names.)
check() {
    local check_log=
    [[ $1 == --log ]] && { check_log=$2; shift 2; }
    local check_label=$1 check_t0=$SECONDS
    check_log=${check_log:-$work/$1.log}
    shift
    if "$@" >"$check_log" 2>&1; then
        result PASS "$check_label" $((SECONDS - check_t0))
    else
        result FAIL "$check_label" $((SECONDS - check_t0)) "see $check_log"
        tail -n 20 "$check_log" | sed 's/^/    /'
    fi
}

runner_end() {
    echo "$runner: total $SECONDS s${1:+ ($1)}"
    echo "$passed passed, $failed failed"
    exit $((failed > 0))
}
