//! The planning stages over in-memory facts (`facts::fake`): a small
//! kernel, rules and units in rdma-core's design, and one Mellanox port.

use super::*;
use crate::facts::fake::Fake;
use crate::netroot::NetRoot;
use crate::udev::device::Parent;

const DEP: &str = "\
kernel/drivers/infiniband/core/ib_core.ko:
kernel/drivers/infiniband/core/ib_uverbs.ko: kernel/drivers/infiniband/core/ib_core.ko
kernel/drivers/infiniband/core/rdma_cm.ko: kernel/drivers/infiniband/core/ib_core.ko
kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko:
kernel/drivers/infiniband/hw/mlx5/mlx5_ib.ko: kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko kernel/drivers/infiniband/core/ib_uverbs.ko kernel/drivers/infiniband/core/ib_core.ko
kernel/drivers/infiniband/ulp/iser/ib_iser.ko: kernel/drivers/infiniband/core/rdma_cm.ko kernel/drivers/infiniband/core/ib_core.ko
kernel/net/sunrpc/xprtrdma/rpcrdma.ko: kernel/drivers/infiniband/core/rdma_cm.ko kernel/drivers/infiniband/core/ib_core.ko
kernel/drivers/nvme/host/nvme-rdma.ko: kernel/drivers/infiniband/core/rdma_cm.ko kernel/drivers/infiniband/core/ib_core.ko
kernel/lib/crc32.ko:
";
const ALIAS: &str =
    "alias xprtrdma rpcrdma\nalias svcrdma rpcrdma\nalias auxiliary:mlx5_core.rdma mlx5_ib\n";
const HW: &str = "ACTION==\"remove\", GOTO=\"end\"\nSUBSYSTEM==\"net\", ENV{ID_NET_DRIVER}==\"mlx5_core\", RUN{builtin}+=\"kmod load mlx5_ib\"\nLABEL=\"end\"\n";
const DESC: &str = "SUBSYSTEM==\"infiniband\", DRIVERS==\"mlx5_core\", ENV{ID_RDMA_ROCE}=\"1\"\n";
const ULP: &str = "\
SUBSYSTEM==\"infiniband\", ENV{SYSTEMD_WANTS}+=\"rdma-hw.target\"
SUBSYSTEM==\"infiniband\", ENV{ID_RDMA_ROCE}==\"1\", ENV{SYSTEMD_WANTS}+=\"rdma-load-modules@roce.service\"
SUBSYSTEM==\"infiniband\", ENV{ID_RDMA_IWARP}==\"1\", ENV{SYSTEMD_WANTS}+=\"iwpmd.service rdma-load-modules@iwarp.service\"
";
const LOADER: &str = "[Unit]\nDefaultDependencies=no\n[Service]\nType=oneshot\nExecStart=/lib/systemd/systemd-modules-load /etc/rdma/modules/%I.conf\n";

/// The whole plan from a fake's facts, what it needs read from the fake's
/// readers (as the command line's driver does with the root's).
fn plan_fake(f: &Fake, sel: &Selection) -> Result<Plan> {
    let (facts, readers) = (f.facts(), f.readers());
    let mut found = Found::default();
    loop {
        match step(&facts, &found, sel)? {
            Step::Done(p) => return Ok(*p),
            Step::Needs(n) => readers.read(&facts.db, &n, &mut found)?,
        }
    }
}

fn fake() -> Fake {
    Fake {
        dep: DEP,
        alias: ALIAS,
        builtin: "",
        rules: vec![
            ("75-rdma-description.rules", DESC),
            ("90-rdma-hw-modules.rules", HW),
            ("90-rdma-ulp-modules.rules", ULP),
        ],
        units: vec![
            (
                "rdma-hw.target",
                "[Unit]\nWants=rdma-load-modules@rdma.service\n",
            ),
            ("rdma-load-modules@.service", LOADER),
            (
                "iwpmd.service",
                "[Service]\nExecStart=/usr/sbin/iwpmd --systemd\n",
            ),
        ],
        confs: vec![
            ("/etc/rdma/modules/rdma.conf", "ib_iser\nxprtrdma\n"),
            ("/etc/rdma/modules/roce.conf", "# nothing\n"),
            ("/etc/rdma/modules/iwarp.conf", "# nothing\n"),
        ],
        programs: vec![("/lib/systemd/systemd-modules-load", vec![])],
        ..Default::default()
    }
}

/// One port of a ConnectX card whose RDMA driver is not loaded.
fn mlx5_port() -> Device {
    let mut d = Device {
        subsystem: "net".into(),
        kernel: "ens1f0".into(),
        devpath: "/devices/pci0000:00/0000:00:02.0/net/ens1f0".into(),
        driver: None,
        parents: vec![Parent {
            kernel: "0000:00:02.0".into(),
            subsystem: Some("pci".into()),
            driver: Some("mlx5_core".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    d.properties
        .insert("ID_NET_DRIVER".into(), "mlx5_core".into());
    d
}

fn sel(mode: Mode) -> Selection {
    Selection {
        mode,
        profiles: Vec::new(),
        drivers: Vec::new(),
        protocols: Vec::new(),
        netroot: Some(Vec::new()),
        init: Init::Systemd,
        generator: Generator::None,
    }
}

fn names(p: &Plan) -> Vec<&str> {
    p.modules.iter().map(|m| m.name.as_str()).collect()
}

fn dests(p: &Plan, kind: FileKind) -> Vec<&str> {
    p.files
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.dest.as_str())
        .collect()
}

#[test]
fn generic_asks_for_every_rule_load_provider_and_list() {
    let p = plan_fake(&fake(), &sel(Mode::Generic)).unwrap();
    assert_eq!(
        names(&p),
        [
            "ib_core",
            "ib_uverbs",
            "mlx5_core",
            "mlx5_ib",
            "rdma_cm",
            "ib_iser",
            "rpcrdma"
        ]
    );
    let mlx5_ib = &p.modules[3];
    assert!(mlx5_ib.reasons.contains(&Reason::Generic));
    assert!(mlx5_ib.reasons.iter().any(|r| matches!(
        r,
        Reason::Rule {
            line: 2,
            device: None,
            ..
        }
    )));
    // rpcrdma through the alias the list names.
    assert!(p.modules[6]
        .reasons
        .iter()
        .any(|r| r.request() == Some("xprtrdma")));
    assert_eq!(p.protocols, ["roce"]);
    assert_eq!(
        dests(&p, FileKind::Conf),
        [
            "/etc/rdma/modules/iwarp.conf",
            "/etc/rdma/modules/rdma.conf",
            "/etc/rdma/modules/roce.conf"
        ]
    );
}

#[test]
fn a_port_whose_rdma_driver_is_not_loaded_gets_its_protocols_and_units() {
    let mut f = fake();
    f.devices = Some(vec![mlx5_port()]);
    let p = plan_fake(&f, &sel(Mode::Hostonly)).unwrap();
    assert_eq!(p.protocols, ["roce"]);
    let ib = p
        .devices
        .iter()
        .find(|d| d.device.subsystem == "infiniband")
        .unwrap();
    assert!(ib.device.hypothetical);
    assert_eq!(
        ib.wants,
        ["rdma-hw.target", "rdma-load-modules@roce.service"]
    );
    assert_eq!(
        dests(&p, FileKind::Unit),
        [
            "/usr/lib/systemd/system/rdma-hw.target",
            "/usr/lib/systemd/system/rdma-load-modules@.service",
            "/usr/lib/systemd/system/rdma-load-modules@.service.d/rdma-initrd.conf",
        ]
    );
    // Only the lists the wanted units load; iwarp's is not wanted.
    assert_eq!(
        dests(&p, FileKind::Conf),
        ["/etc/rdma/modules/rdma.conf", "/etc/rdma/modules/roce.conf"]
    );
    assert_eq!(
        dests(&p, FileKind::Program),
        ["/lib/systemd/systemd-modules-load"]
    );
    // The hardware rule matches ID_NET_DRIVER, which no rule of the root sets.
    let nsl = p
        .files
        .iter()
        .find(|f| f.dest.ends_with("80-net-setup-link.rules"))
        .unwrap();
    assert!(nsl.source.is_own());
}

#[test]
fn without_systemd_a_rules_file_loads_what_the_units_would() {
    let mut f = fake();
    f.devices = Some(vec![mlx5_port()]);
    let mut s = sel(Mode::Hostonly);
    s.init = Init::Udev;
    let p = plan_fake(&f, &s).unwrap();
    assert!(dests(&p, FileKind::Unit).is_empty());
    assert!(dests(&p, FileKind::Program).is_empty());
    let g = p
        .files
        .iter()
        .find(|f| f.text.is_some())
        .expect("generated rules");
    let text = g.text.as_deref().unwrap();
    assert!(text.contains("rdma-hw.target"), "{text}");
    assert!(
        text.contains("RUN{builtin}+=\"kmod load ib_iser xprtrdma\""),
        "{text}"
    );
}

#[test]
fn a_daemon_is_installed_with_its_program_or_left_out_with_why() {
    let mut s = sel(Mode::Selected);
    s.protocols = vec!["iwarp".into()];
    let p = plan_fake(&fake(), &s).unwrap();
    assert!(!dests(&p, FileKind::Unit).contains(&"/usr/lib/systemd/system/iwpmd.service"));
    assert!(p.warnings.iter().any(|w| matches!(
        w,
        Warning::NotInstalled { unit, because: warning::NotInstalled::ProgramsMissing(p), .. }
            if unit == "iwpmd.service" && p == &["/usr/sbin/iwpmd"]
    )));
    let mut f = fake();
    f.programs.push(("/usr/sbin/iwpmd", vec![]));
    let p = plan_fake(&f, &s).unwrap();
    assert!(dests(&p, FileKind::Unit).contains(&"/usr/lib/systemd/system/iwpmd.service"));
    assert!(dests(&p, FileKind::Program).contains(&"/usr/sbin/iwpmd"));
    assert_eq!(p.wants, ["rdma-load-modules@iwarp.service"]);
}

/// A program's libraries are in the plan (the whole image), once each,
/// and a script's interpreter that is planned as a program is that program.
#[test]
fn a_programs_libraries_are_planned_once_and_a_program_is_not_a_library() {
    let mut s = sel(Mode::Selected);
    s.protocols = vec!["iwarp".into()];
    let mut f = fake();
    f.programs.push(("/usr/sbin/iwpmd", vec!["/bin/sh"]));
    f.programs.push(("/bin/sh", vec![]));
    f.libraries = vec![
        (
            "/usr/sbin/iwpmd",
            vec![
                "/lib/x86_64-linux-gnu/libnl-3.so.200",
                "/lib64/ld-linux-x86-64.so.2",
            ],
        ),
        ("/bin/sh", vec!["/lib64/ld-linux-x86-64.so.2"]),
    ];
    let p = plan_fake(&f, &s).unwrap();
    assert_eq!(
        dests(&p, FileKind::Library),
        [
            "/lib/x86_64-linux-gnu/libnl-3.so.200",
            "/lib64/ld-linux-x86-64.so.2"
        ]
    );
    assert!(dests(&p, FileKind::Program).contains(&"/bin/sh"));
    let lib = p
        .files
        .iter()
        .find(|f| f.dest == "/lib/x86_64-linux-gnu/libnl-3.so.200")
        .unwrap();
    assert_eq!(lib.reason, "needed by /usr/sbin/iwpmd");
}

#[test]
fn a_blacklisted_module_is_left_out_unless_another_needs_it() {
    let mut f = fake();
    f.modprobe = vec![(
        "/etc/modprobe.d/bl.conf",
        "blacklist ib_iser\nblacklist rdma_cm\n",
    )];
    let p = plan_fake(&f, &sel(Mode::Generic)).unwrap();
    assert!(!names(&p).contains(&"ib_iser"));
    // rdma_cm stays: rpcrdma depends on it.
    assert!(names(&p).contains(&"rdma_cm"));
    assert_eq!(p.excluded.len(), 1);
    assert_eq!(
        (p.excluded[0].name.as_str(), p.excluded[0].line),
        ("ib_iser", 1)
    );
    let m = p
        .files
        .iter()
        .find(|f| f.kind == FileKind::Modprobe)
        .unwrap();
    assert_eq!(m.reason, "names ib_iser, rdma_cm");
}

#[test]
fn modinfo_weakdeps_ship_stale_depends_follow_and_firmware_is_searched() {
    let mut f = fake();
    f.modinfo = vec![(
        "mlx5_ib",
        vec![
            ("weakdep", "crc32"),
            ("depends", "mlx5_core,ib_uverbs,ib_core,nvme-rdma"),
            ("firmware", "mellanox/a.bin"),
            ("firmware", "mellanox/b.bin"),
        ],
    )];
    f.firmware = vec!["/lib/firmware/mellanox/a.bin"];
    let mut s = sel(Mode::Selected);
    s.drivers = vec!["mlx5_ib".into()];
    let p = plan_fake(&f, &s).unwrap();
    let crc = p.modules.iter().find(|m| m.name == "crc32").unwrap();
    assert!(!crc.load, "a weak dependency is shipped, not loaded");
    // depends= that modules.dep lacks (a stale depmod) is followed, loaded.
    assert!(
        p.modules
            .iter()
            .find(|m| m.name == "nvme_rdma")
            .unwrap()
            .load
    );
    assert!(p.warnings.contains(&Warning::StaleDepends {
        module: "mlx5_ib".into(),
        dep: "nvme_rdma".into()
    }));
    assert_eq!(p.firmware.len(), 2);
    assert_eq!(p.firmware[0].files.len(), 1);
    assert!(p.firmware[1].files.is_empty());
    assert!(p.warnings.iter().any(
        |w| matches!(w, Warning::FirmwareMissing { names, .. } if names == &["mellanox/b.bin"])
    ));
}

#[test]
fn roots_over_rdma_bring_their_transport_or_are_refused() {
    let mut s = sel(Mode::Selected);
    s.netroot = Some(vec![NetRoot::Nvmf, NetRoot::Nfs]);
    s.generator = Generator::Dracut;
    let p = plan_fake(&fake(), &s).unwrap();
    assert!(names(&p).contains(&"nvme_rdma"));
    assert!(names(&p).contains(&"rpcrdma"));
    assert_eq!(dests(&p, FileKind::Hook).len(), 3);
    s.generator = Generator::InitramfsTools;
    let e = plan_fake(&fake(), &s).unwrap_err().to_string();
    assert!(
        e.starts_with("initramfs-tools cannot mount an NFS root over RDMA (--netroot nfs)"),
        "{e}"
    );
}

#[test]
fn a_name_the_kernel_lacks_is_reported_with_who_asked() {
    let mut s = sel(Mode::Selected);
    s.drivers = vec!["bnxt_re".into()];
    let p = plan_fake(&fake(), &s).unwrap();
    assert_eq!(p.not_found.len(), 1);
    assert_eq!(p.not_found[0].request, "bnxt_re");
    assert_eq!(p.not_found[0].requested_by.to_string(), "--driver bnxt_re");
}

/// The items are everything the plan puts in an image, once each, in the
/// order hooks add them: modules, files, firmware, wants, boot-time loads.
#[test]
fn the_items_are_the_whole_image_in_the_order_hooks_add_it() {
    use super::items::{Content, ItemKind, Of, Perm};
    let mut s = sel(Mode::Selected);
    s.protocols = vec!["rdma".into()];
    let p = plan_fake(&fake(), &s).unwrap();
    let items = p.items();
    let kinds: Vec<&str> = items.iter().map(|i| i.kind.name()).collect();
    let first_file = kinds.iter().position(|k| *k != "module").unwrap();
    assert!(kinds[..first_file].iter().all(|k| *k == "module"));
    assert_eq!(first_file, p.modules.iter().filter(|m| !m.builtin).count());
    assert_eq!(items.len(), first_file + p.files.len() + p.wants.len());
    let ib_iser = &items[p.modules.iter().position(|m| m.name == "ib_iser").unwrap()];
    assert_eq!(
        ib_iser.dest,
        "lib/modules/6.1.0-test/kernel/drivers/infiniband/ulp/iser/ib_iser.ko"
    );
    assert_eq!(ib_iser.perm, Perm::Fixed(0o644));
    assert!(
        ib_iser.reason().contains("rdma.conf"),
        "{}",
        ib_iser.reason()
    );
    let want = items.last().unwrap();
    assert_eq!(want.kind, ItemKind::Want);
    assert_eq!(
        want.dest,
        "etc/systemd/system/initrd.target.wants/rdma-load-modules@rdma.service"
    );
    assert!(matches!(want.content, Content::Link(t) if Some(t) == p.loader_template()));
    assert_eq!(want.perm, Perm::Fixed(0o777));
    // Without systemd, the same protocol is one line in the boot list.
    s.init = Init::Udev;
    let p = plan_fake(&fake(), &s).unwrap();
    let loads: Vec<(&str, String)> = p
        .items()
        .iter()
        .filter_map(|i| match (i.of, i.content) {
            (Of::Load(_), Content::Line(m)) => Some((m, i.dest.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(loads.len(), p.preload.len());
    assert!(!loads.is_empty());
    assert!(loads.iter().all(|(_, d)| *d == p.preload[0].list));
    assert!(p.items().iter().all(|i| i.kind != ItemKind::Want));
}
