//! The project's own rules, units and confs (`units/` in the repository),
//! embedded in the binary. Used only where the root lacks them; the plan
//! names each use and its reason.

/// (name under units/, destination in an image, contents)
#[derive(Debug, PartialEq, Eq)]
pub struct Embedded {
    pub name: &'static str,
    pub dest: &'static str,
    pub text: &'static str,
}

macro_rules! unit {
    ($name:literal, $dest:literal) => {
        Embedded {
            name: $name,
            dest: $dest,
            text: include_str!(concat!("../units/", $name)),
        }
    };
}

pub const RULES: &[Embedded] = &[
    unit!(
        "75-rdma-initrd-description.rules",
        "/usr/lib/udev/rules.d/75-rdma-initrd-description.rules"
    ),
    unit!(
        "90-rdma-initrd-hw.rules",
        "/usr/lib/udev/rules.d/90-rdma-initrd-hw.rules"
    ),
    unit!(
        "90-rdma-initrd-ulp.rules",
        "/usr/lib/udev/rules.d/90-rdma-initrd-ulp.rules"
    ),
];

pub const NET_SETUP_LINK: Embedded = unit!(
    "80-net-setup-link.rules",
    "/usr/lib/udev/rules.d/80-net-setup-link.rules"
);

pub const UNITS: &[Embedded] = &[
    unit!("rdma-hw.target", "/usr/lib/systemd/system/rdma-hw.target"),
    unit!(
        "rdma-load-modules@.service",
        "/usr/lib/systemd/system/rdma-load-modules@.service"
    ),
];

pub const INITRD_DROPIN: Embedded = unit!(
    "rdma-load-modules@.service.d/rdma-initrd.conf",
    "/usr/lib/systemd/system/rdma-load-modules@.service.d/rdma-initrd.conf"
);

pub const CONFS: &[Embedded] = &[
    unit!("modules/rdma.conf", "/etc/rdma/modules/rdma.conf"),
    unit!(
        "modules/infiniband.conf",
        "/etc/rdma/modules/infiniband.conf"
    ),
    unit!("modules/iwarp.conf", "/etc/rdma/modules/iwarp.conf"),
    unit!("modules/opa.conf", "/etc/rdma/modules/opa.conf"),
    unit!("modules/roce.conf", "/etc/rdma/modules/roce.conf"),
];

/// dracut boot hooks for roots over RDMA; `dest` is HOOK/PRIO-NAME under
/// dracut's hook directory (what `inst_hook HOOK PRIO FILE` makes).
pub const DRACUT_FABRIC_NETROOT: Embedded = unit!(
    "dracut/rdma-initrd-fabric.sh",
    "netroot/90-rdma-initrd-fabric.sh"
);
pub const DRACUT_FABRIC_SETTLED: Embedded = unit!(
    "dracut/rdma-initrd-fabric.sh",
    "initqueue/settled/00-rdma-initrd-fabric.sh"
);
pub const DRACUT_NVMF_CMDLINE: Embedded = unit!(
    "dracut/rdma-initrd-cmdline.sh",
    "cmdline/93-rdma-initrd-cmdline.sh"
);

/// The project's modprobe.d file (undeclared run-time module requests).
pub const MODPROBE: Embedded = unit!(
    "modprobe.d/rdma-initrd.conf",
    "/usr/lib/modprobe.d/rdma-initrd.conf"
);
