# Sourced by the tests that build dracut images from this checkout (boot,
# netroot): a private dracut tree (the system's modules, this repo's and
# the test's) and dracut run with it and with $bin first on its path.
#
#   dracut_tree DIR MODULE...         /usr/lib/dracut copied to DIR, each
#                                     MODULE directory into DIR/modules.d
#   dracut_private TREE OUT LOG ARG...
#       dracut --force --no-hostonly --zstd --no-early-microcode ARG... OUT
#       with TREE, output to LOG; says how long it took (needs $runner, $bin)

dracut_tree() {
    local dir=$1
    shift
    cp -a /usr/lib/dracut "$dir" && cp -r "$@" "$dir/modules.d/"
}

dracut_private() {
    local tree=$1 out=$2 log=$3 t0=$SECONDS
    shift 3
    DRACUT_PATH="$(dirname "$bin") /sbin /bin /usr/sbin /usr/bin" dracutbasedir=$tree \
        dracut --force --no-hostonly --zstd --no-early-microcode "$@" "$out" >"$log" 2>&1 ||
        { echo "dracut failed for ${out##*/}: see $log" >&2; tail -20 "$log" >&2; return 1; }
    echo "$runner: built ${out##*/} in $((SECONDS - t0)) s ($(du -h "$out" | cut -f1))"
}
