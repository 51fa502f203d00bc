#!/bin/sh
# rdma-initrd (dracut): an NVMe-oF root on RDMA needs the network up (rdma_cm
# resolves the target through the interface's address), but dracut's nvmf
# module asks for it only for TCP (rd.nvmf.discover=tcp,...). Sourced as a
# cmdline hook after that module's parser; an explicit rd.neednet wins.

type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

if ! getarg rd.neednet >/dev/null; then
    for rdma_initrd_d in $(getargs rd.nvmf.discover -d nvmf.discover=); do
        case "$rdma_initrd_d" in
            rdma,*)
                echo "rd.neednet=1" >/etc/cmdline.d/90-rdma-initrd-neednet.conf
                break
                ;;
        esac
    done
    unset rdma_initrd_d
fi
