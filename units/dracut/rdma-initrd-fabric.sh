#!/bin/sh
# rdma-initrd (dracut): before a root over RDMA is mounted, wait until an RDMA
# device is usable. A real HCA registers its RDMA device some time after its
# netdev (firmware start-up); NFS over RDMA, NVMe-oF on RDMA and iSER fail at
# once without one, and dracut tries them only once. Sourced by dracut as a
# netroot hook (before nfsroot and iscsiroot run: waits there, the interface
# being up) and as an initqueue/settled job (holds dracut's `nvme
# connect-all` job back until then, without blocking the initqueue).
#
# Waits when the command line names a root over RDMA (root=/netroot=nfs...
# with proto=rdma or rdma among the options, nfsroot=... likewise,
# rd.nvmf.discover=rdma,..., rd.iscsi.param=iface.transport_name=iser), or
# when rd.rdma.wait is given:
#   rd.rdma.wait=SECONDS  how long to wait (default 60); 0: do not wait
# Usable: a port in state ACTIVE; on RoCE also a GID made from an IP address
# (it exists once the interface has its address).

type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

rdma_initrd_root_over_rdma() {
    local a
    for a in $(getargs root=) $(getargs netroot=); do
        case "$a" in
            nfs:* | nfs4:*)
                case ",${a##*:}," in *,proto=rdma,* | *,rdma,*) return 0 ;; esac
                ;;
        esac
    done
    a=$(getarg nfsroot=)
    case ",$a," in *,proto=rdma,* | *,rdma,*) return 0 ;; esac
    for a in $(getargs rd.nvmf.discover -d nvmf.discover=); do
        case "$a" in rdma,*) return 0 ;; esac
    done
    for a in $(getargs rd.iscsi.param -d iscsi_param); do
        [ "$a" = iface.transport_name=iser ] && return 0
    done
    return 1
}

# Prints the first usable port; fails when there is none.
rdma_initrd_usable_port() {
    local p dev state ll nt i gid
    for p in /sys/class/infiniband/*/ports/*; do
        [ -r "$p/state" ] || continue
        read -r state <"$p/state"
        case "$state" in *ACTIVE*) ;; *) continue ;; esac
        dev=${p%/ports/*}
        dev=${dev##*/}
        ll= nt=
        [ -r "$p/link_layer" ] && read -r ll <"$p/link_layer"
        [ -r "/sys/class/infiniband/$dev/node_type" ] && read -r nt <"/sys/class/infiniband/$dev/node_type"
        case "$nt" in
            *RNIC*)
                echo "$dev port ${p##*/} (iWARP) is ACTIVE"
                return 0
                ;;
        esac
        if [ "$ll" != Ethernet ]; then
            echo "$dev port ${p##*/} (${ll:-InfiniBand}) is ACTIVE"
            return 0
        fi
        # RoCE: addresses' GIDs come after the link-local one, low in the table.
        for i in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
            [ -r "$p/gids/$i" ] || break
            gid=
            read -r gid <"$p/gids/$i" 2>/dev/null || continue
            case "$gid" in
                "" | fe80:* | 0000:0000:0000:0000:0000:0000:0000:0000) continue ;;
            esac
            echo "$dev port ${p##*/} (RoCE) is ACTIVE with GID $gid"
            return 0
        done
    done
    return 1
}

# A root over RDMA is wanted: prints how long to wait for the fabric (0: do
# not wait).
rdma_initrd_wait_seconds() {
    local wait
    wait=$(getarg rd.rdma.wait=)
    if [ -z "$wait" ]; then
        rdma_initrd_root_over_rdma || {
            echo 0
            return
        }
        wait=60
    fi
    case "$wait" in
        *[!0-9]*)
            warn "rdma-initrd: rd.rdma.wait=$wait is not a number of seconds; waiting 60 s"
            wait=60
            ;;
    esac
    echo "$wait"
}

rdma_initrd_uptime() {
    local up
    read -r up _ </proc/uptime
    echo "${up%.*}"
}

# netroot hook: dracut calls the handler (nfsroot, iscsiroot) once, right
# after this, with the interface already up: wait here, bounded.
rdma_initrd_wait_netroot() {
    local wait what n=0
    [ -e /tmp/rdma-initrd-fabric.done ] && return 0
    wait=$(rdma_initrd_wait_seconds)
    while ! what=$(rdma_initrd_usable_port); do
        if [ "$n" -ge $((wait * 4)) ]; then
            [ "$wait" -gt 0 ] &&
                warn "rdma-initrd: no usable RDMA device after $wait s (rd.rdma.wait=$wait): the root over RDMA cannot be mounted"
            : >/tmp/rdma-initrd-fabric.done
            return 0
        fi
        [ "$n" -eq 0 ] && info "rdma-initrd: waiting up to $wait s for a usable RDMA device"
        sleep 0.25
        n=$((n + 1))
    done
    info "rdma-initrd: $what after $((n / 4)) s"
    : >/tmp/rdma-initrd-fabric.done
}

# A job that connects NVMe-oF controllers (read with the shell alone: the
# image may have no grep).
rdma_initrd_is_nvmf_job() {
    local l
    while read -r l || [ -n "$l" ]; do
        case "$l" in *"nvme connect"* | *nvmf-autoconnect*) return 0 ;; esac
    done <"$1"
    return 1
}

# initqueue/settled job (before the others of each round): dracut's NVMe-oF
# connect jobs (`nvme connect-all`, run once) are held back until the fabric
# is usable or the wait is over. Never blocks: the initqueue must go on
# running the jobs (ifup) that make the fabric usable.
rdma_initrd_hold_settled() {
    local wait start now j what held=/tmp/rdma-initrd-held
    [ -e /tmp/rdma-initrd-fabric.done ] && return 0
    wait=$(rdma_initrd_wait_seconds)
    now=$(rdma_initrd_uptime)
    [ -e /tmp/rdma-initrd-fabric.start ] || echo "$now" >/tmp/rdma-initrd-fabric.start
    read -r start </tmp/rdma-initrd-fabric.start
    if what=$(rdma_initrd_usable_port); then
        info "rdma-initrd: $what after $((now - start)) s"
    elif [ $((now - start)) -lt "$wait" ]; then
        mkdir -p "$held"
        for j in "$hookdir"/initqueue/settled/*.sh; do
            [ "$j" = "$job" ] && continue
            rdma_initrd_is_nvmf_job "$j" && mv -f "$j" "$held/"
        done
        [ "$start" = "$now" ] && info "rdma-initrd: NVMe-oF connections wait up to $wait s for a usable RDMA device"
        return 0
    elif [ "$wait" -gt 0 ]; then
        warn "rdma-initrd: no usable RDMA device after $wait s (rd.rdma.wait=$wait): the root over RDMA cannot be mounted"
    fi
    for j in "$held"/*.sh; do
        [ -e "$j" ] && mv -f "$j" "$hookdir/initqueue/settled/"
    done
    : >/tmp/rdma-initrd-fabric.done
}

case "${job-}" in
    */initqueue/settled/*) rdma_initrd_hold_settled ;;
    *) rdma_initrd_wait_netroot ;;
esac
