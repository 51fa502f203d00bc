//! Plans from Debian's real rdma-core files on a real Debian kernel.

use crate::common::{inputs, rdma_core_copy, run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

pub fn plan_json(root: &Path, moddir: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "plan".to_string(),
        "--json".into(),
        "--root".into(),
        root.display().to_string(),
        "--moddir".into(),
        moddir.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run(&a);
    assert_eq!(code, 0, "rdma-initrd {args:?} failed: {err}");
    serde_json::from_str(&out).expect("plan --json is JSON")
}

/// `plan --json --generic` of `root` on the plain Debian tree.
fn generic(root: &Path) -> Value {
    let inp = inputs();
    plan_json(root, &inp.moddir(&inp.kroot), &["--generic"])
}

/// One field of every planned file.
fn file_field<'a>(plan: &'a Value, field: &str) -> BTreeSet<&'a str> {
    plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[field].as_str().unwrap())
        .collect()
}

pub fn module_names(plan: &Value) -> BTreeSet<String> {
    plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

fn kernel_has(name: &str) -> bool {
    let inp = inputs();
    let dep = std::fs::read_to_string(inp.moddir(&inp.kroot).join("modules.dep")).unwrap();
    dep.lines().any(|l| {
        let p = l.split(':').next().unwrap();
        rdma_initrd::kmod::name::modname_from_path(p) == name
    })
}

/// The module names of `modprobe --show-depends NAME` (kmod's own closure).
fn kmod_closure(name: &str) -> BTreeSet<String> {
    let inp = inputs();
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new("modprobe")
        .arg("-C")
        .arg(empty.path())
        .arg("-d")
        .arg(&inp.kroot)
        .arg("-S")
        .arg(&inp.kver)
        .arg("--show-depends")
        .arg(name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "modprobe {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.strip_prefix("insmod ")
                .map(|r| r.split_ascii_whitespace().next().unwrap().to_string())
        })
        .map(|p| rdma_initrd::kmod::name::modname_from_path(&p))
        .collect()
}

fn reasons_of<'a>(plan: &'a Value, module: &str) -> &'a Vec<Value> {
    plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == module)
        .unwrap_or_else(|| panic!("{module} not planned"))["reasons"]
        .as_array()
        .unwrap()
}

#[test]
fn generic_plans_rdma_core_modules_and_closures() {
    let inp = inputs();
    let plan = generic(&inp.rdma_core);
    assert_eq!(plan["mode"], "generic");
    let mods = module_names(&plan);
    let not_found: BTreeSet<String> = plan["not_found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["request"].as_str().unwrap().to_string())
        .collect();
    // What Debian's 6.1 kernel builds of the names rdma-core's files use. A
    // kernel that builds another set fails here: update the lists.
    let built = [
        "mlx5_ib",
        "mlx4_ib",
        "qedr",
        "irdma",
        "rpcrdma",
        "ib_ipoib",
        "ib_umad",
        "ib_uverbs",
        "rdma_ucm",
        "ib_iser",
    ];
    let not_built = ["opa_vnic", "bnxt_re", "hns_roce"];
    for want in built {
        assert!(kernel_has(want), "{want}: expected in Debian's 6.1 kernel");
        assert!(
            mods.contains(want),
            "{want} is in the kernel but not planned"
        );
        // Its whole kmod closure is planned too.
        let closure = kmod_closure(want);
        assert!(
            closure.is_subset(&mods),
            "{want}: closure {:?} not all planned",
            closure.difference(&mods).collect::<Vec<_>>()
        );
    }
    for want in not_built {
        assert!(
            !kernel_has(want),
            "{want}: not expected in Debian's 6.1 kernel"
        );
        assert!(
            not_found.contains(want),
            "{want} is not in this kernel and must be reported so"
        );
        assert!(!mods.contains(want));
    }
    // hns_roce is never in an x86 Debian kernel: reported, not fatal.
    assert!(not_found.contains("hns_roce"));
    // irdma comes in through the alias i40iw in 90-rdma-hw-modules.rules.
    assert!(reasons_of(&plan, "irdma")
        .iter()
        .any(|r| r["kind"] == "rule"
            && r["request"] == "i40iw"
            && r["file"]
                .as_str()
                .unwrap()
                .ends_with("90-rdma-hw-modules.rules")));
    // rpcrdma through both aliases of rdma.conf.
    let rp: BTreeSet<&str> = reasons_of(&plan, "rpcrdma")
        .iter()
        .filter(|r| r["kind"] == "conf")
        .map(|r| r["request"].as_str().unwrap())
        .collect();
    assert_eq!(rp, BTreeSet::from(["xprtrdma", "svcrdma"]));
    // The dependency order holds: each module after its modules.dep dependencies.
    let order: Vec<&str> = plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
    assert!(
        pos("mlx5_core") < pos("mlx5_ib")
            && pos("ib_core") < pos("ib_uverbs")
            && pos("sunrpc") < pos("rpcrdma")
    );
    // Files: the rules, unit, target, confs, rdma_rename.
    let dests = file_field(&plan, "dest");
    for f in [
        "/lib/udev/rules.d/60-rdma-persistent-naming.rules",
        "/lib/udev/rules.d/75-rdma-description.rules",
        "/lib/udev/rules.d/90-rdma-hw-modules.rules",
        "/lib/udev/rules.d/90-rdma-ulp-modules.rules",
        "/lib/udev/rules.d/90-rdma-umad.rules",
        "/lib/systemd/system/rdma-load-modules@.service",
        "/lib/systemd/system/rdma-hw.target",
        "/etc/rdma/modules/rdma.conf",
        "/etc/rdma/modules/infiniband.conf",
        "/etc/rdma/modules/roce.conf",
        "/etc/rdma/modules/iwarp.conf",
        "/etc/rdma/modules/opa.conf",
        "/lib/udev/rdma_rename",
        "/etc/modprobe.d/truescale.conf",
        "/usr/lib/truescale-serdes.cmds",
    ] {
        assert!(dests.contains(f), "{f} not in the plan's files: {dests:?}");
    }
    let protos: Vec<&str> = plan["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for p in ["infiniband", "iwarp", "opa", "roce"] {
        assert!(protos.contains(&p), "protocol {p} missing: {protos:?}");
    }
}

#[test]
fn compressed_trees_plan_the_same_modules() {
    let inp = inputs();
    let plain = module_names(&generic(&inp.rdma_core));
    for kroot in [&inp.kroot_xz, &inp.kroot_zst] {
        let p = plan_json(&inp.rdma_core, &inp.moddir(kroot), &["--generic"]);
        assert_eq!(module_names(&p), plain, "{}", kroot.display());
        let comp = if kroot == &inp.kroot_xz { "xz" } else { "zstd" };
        assert!(p["modules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| !m["builtin"].as_bool().unwrap())
            .all(|m| m["compression"] == comp));
    }
}

#[test]
fn blacklist_removes_module_and_says_why() {
    let inp = inputs();
    let (_t, root) = rdma_core_copy();
    std::fs::write(
        root.join("etc/modprobe.d/no-iser.conf"),
        "# site policy\nblacklist ib_iser\n",
    )
    .unwrap();
    let before = module_names(&generic(&inp.rdma_core));
    let plan = generic(&root);
    let after = module_names(&plan);
    assert!(!after.contains("ib_iser"));
    let ex = plan["excluded"].as_array().unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0]["name"], "ib_iser");
    assert_eq!(ex[0]["file"], "/etc/modprobe.d/no-iser.conf");
    assert_eq!(ex[0]["line"], 2);
    // Only ib_iser and what nothing else needs (its iSCSI stack) went away.
    let gone: BTreeSet<&String> = before.difference(&after).collect();
    for g in &gone {
        assert!(
            kmod_closure("ib_iser").contains(g.as_str()),
            "{g} removed but not part of ib_iser's closure"
        );
    }
    assert!(after.contains("rdma_cm") && after.contains("ib_uverbs"));
    // The blacklist itself goes into the image so the policy holds there too.
    assert!(plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["dest"] == "/etc/modprobe.d/no-iser.conf"));
}

#[test]
fn blacklisted_module_stays_when_another_needs_it() {
    let (_t, root) = rdma_core_copy();
    // rdma_cm is blacklisted, but rdma_ucm and ib_iser depend on it.
    std::fs::write(
        root.join("etc/rdma/modules/rdma.conf"),
        "rdma_cm\nrdma_ucm\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/modprobe.d/no-cm.conf"),
        "blacklist rdma_cm\n",
    )
    .unwrap();
    let plan = generic(&root);
    assert!(module_names(&plan).contains("rdma_cm"));
    assert!(plan["excluded"].as_array().unwrap().is_empty());
    assert!(reasons_of(&plan, "rdma_cm")
        .iter()
        .any(|r| r["kind"] == "dependency" && r["of"] == "rdma_ucm"));
}

#[test]
fn a_new_rule_line_changes_the_answer() {
    let (_t, root) = rdma_core_copy();
    let before = module_names(&generic(&root));
    assert!(!before.contains("rdma_rxe"));
    let rules = root.join("lib/udev/rules.d/90-rdma-hw-modules.rules");
    let text = std::fs::read_to_string(&rules).unwrap();
    let text = text.replace(
        "LABEL=\"rdma_hw_modules_net_end\"",
        "ENV{ID_NET_DRIVER}==\"virtio_net\", RUN{builtin}+=\"kmod load rdma_rxe\"\nLABEL=\"rdma_hw_modules_net_end\"",
    );
    std::fs::write(&rules, text).unwrap();
    let plan = generic(&root);
    assert!(module_names(&plan).contains("rdma_rxe"));
    // An /etc rules file of the same name overrides /lib's.
    std::fs::create_dir_all(root.join("etc/udev/rules.d")).unwrap();
    std::fs::write(
        root.join("etc/udev/rules.d/90-rdma-hw-modules.rules"),
        "# disabled by the admin\n",
    )
    .unwrap();
    let plan = generic(&root);
    let mods = module_names(&plan);
    assert!(!mods.contains("rdma_rxe"));
    assert!(plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["reasons"].as_array().unwrap())
        .all(|r| r["kind"] != "rule"));
}

#[test]
fn modules_and_files_commands_agree_with_plan() {
    let inp = inputs();
    let moddir = inp.moddir(&inp.kroot);
    let base = [
        "--root",
        inp.rdma_core.to_str().unwrap(),
        "--moddir",
        moddir.to_str().unwrap(),
    ];
    let (code, names, _) = run(&[&["modules"][..], &base].concat());
    assert_eq!(code, 0);
    let plan = plan_json(&inp.rdma_core, &moddir, &[]);
    assert_eq!(plan["mode"], "generic", "a non-/ root defaults to generic");
    let planned: Vec<&str> = plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["builtin"].as_bool().unwrap())
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.lines().collect::<Vec<_>>(), planned);
    let (code, paths, _) = run(&[&["modules", "--paths"][..], &base].concat());
    assert_eq!(code, 0);
    for p in paths.lines() {
        assert!(Path::new(p).is_file(), "{p}");
        assert!(p.starts_with(moddir.to_str().unwrap()));
    }
    let ex = tempfile::tempdir().unwrap();
    let (code, files, _) = run(&[
        &["files", "--extract", ex.path().to_str().unwrap()][..],
        &base,
    ]
    .concat());
    assert_eq!(code, 0);
    for l in files.lines() {
        let (src, dest) = l.split_once(' ').unwrap();
        assert!(Path::new(src).is_file(), "{src}");
        assert!(dest.starts_with('/'));
    }
    assert!(files.contains("/lib/udev/rules.d/90-rdma-hw-modules.rules"));
}

#[test]
fn weakdeps_are_shipped_not_loaded() {
    let (_t, root) = rdma_core_copy();
    std::fs::write(
        root.join("etc/modprobe.d/weak.conf"),
        "weakdep rdma_ucm ib_srp\n",
    )
    .unwrap();
    let plan = generic(&root);
    let m = |n: &str| {
        plan["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .cloned()
    };
    let srp = m("ib_srp").expect("weakdep planned");
    assert_eq!(srp["load"], false);
    assert!(srp["reasons"][0]["kind"] == "weakdep" && srp["reasons"][0]["of"] == "rdma_ucm");
    // Its own dependencies ship with it; modules also needed otherwise still load.
    assert_eq!(
        m("scsi_transport_srp").expect("closure of the weakdep")["load"],
        false
    );
    assert_eq!(m("rdma_cm").unwrap()["load"], true);
}

#[test]
fn firmware_is_found_as_the_kernel_searches() {
    let inp = inputs();
    let (_t, root) = rdma_core_copy();
    let fw = root.join("lib/firmware");
    std::fs::create_dir_all(fw.join("updates")).unwrap();
    std::fs::create_dir_all(fw.join("qlogic")).unwrap();
    std::fs::create_dir_all(root.join("usr/lib/firmware/cxgb4")).unwrap();
    std::fs::write(fw.join("hfi1_dc8051.fw"), "old").unwrap();
    std::fs::write(fw.join("updates/hfi1_dc8051.fw.xz"), "new").unwrap();
    std::fs::write(fw.join("qlogic/sd7220.fw.zst"), "z").unwrap();
    std::fs::write(root.join("usr/lib/firmware/cxgb4/t6fw.bin"), "c").unwrap();
    let plan = generic(&root);
    let f = |n: &str| -> Vec<String> {
        plan["firmware"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .unwrap_or_else(|| panic!("{n}"))["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        f("hfi1_dc8051.fw"),
        vec!["/lib/firmware/updates/hfi1_dc8051.fw.xz"]
    );
    assert_eq!(
        f("qlogic/sd7220.fw"),
        vec!["/lib/firmware/qlogic/sd7220.fw.zst"]
    );
    assert_eq!(
        f("cxgb4/t6fw.bin"),
        vec!["/usr/lib/firmware/cxgb4/t6fw.bin"]
    );
    assert!(f("hfi1_pcie.fw").is_empty());
    // One warning for the module, naming what is missing and only that.
    let hfi1: Vec<&str> = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str()?.strip_prefix("firmware for hfi1 not found: "))
        .collect();
    assert_eq!(hfi1.len(), 1, "{hfi1:?}");
    assert!(hfi1[0].split(", ").any(|n| n == "hfi1_pcie.fw"), "{hfi1:?}");
    assert!(
        !hfi1[0].contains("hfi1_dc8051.fw"),
        "found, yet named: {hfi1:?}"
    );
    let (code, files, _) = run(&[
        "files",
        "--root",
        root.to_str().unwrap(),
        "--moddir",
        inp.moddir(&inp.kroot).to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(files
        .lines()
        .any(|l| l.ends_with(" /lib/firmware/updates/hfi1_dc8051.fw.xz")));
}

#[test]
fn driver_and_protocol_by_hand() {
    let inp = inputs();
    let plan = plan_json(
        &inp.rdma_core,
        &inp.moddir(&inp.kroot),
        &[
            "--driver",
            "mlx5_ib",
            "--protocol",
            "roce",
            "--driver",
            "i40iw",
        ],
    );
    assert_eq!(plan["mode"], "selected");
    let mods = module_names(&plan);
    assert!(mods.contains("mlx5_ib") && mods.contains("irdma"));
    assert!(
        !mods.contains("mlx4_ib") && !mods.contains("ib_ipoib"),
        "only what was named: {mods:?}"
    );
    assert!(
        mods.contains("rpcrdma"),
        "rdma.conf comes with any RDMA device (rdma-hw.target)"
    );
    let protos: Vec<&str> = plan["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(protos, vec!["roce"]);
    let dests = file_field(&plan, "dest");
    assert!(
        dests.contains("/etc/rdma/modules/roce.conf")
            && dests.contains("/etc/rdma/modules/rdma.conf")
    );
    assert!(!dests.contains("/etc/rdma/modules/infiniband.conf"));
}

#[test]
fn extra_config_is_read_and_shipped() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let conf = t.path().join("rxe-crc.conf");
    std::fs::write(&conf, "# rdma_rxe asks the crypto API for crc32 at run time\nsoftdep rdma_rxe pre: crc32_generic\n").unwrap();
    let plan = plan_json(
        &inp.rdma_core,
        &inp.moddir(&inp.kroot),
        &["--driver", "rdma_rxe", "--config", conf.to_str().unwrap()],
    );
    let crc = plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "crc32_generic")
        .expect("softdep planned");
    let reasons = crc["reasons"].as_array().unwrap();
    let from = |file: &str, line: u64| {
        reasons.iter().any(|r| {
            r["kind"] == "softdep"
                && r["of"] == "rdma_rxe"
                && r["file"] == file
                && r["line"] == line
        })
    };
    assert!(from(conf.to_str().unwrap(), 2), "{reasons:?}");
    // The project's own softdep file says the same, read like any other.
    assert!(
        reasons
            .iter()
            .any(|r| r["file"] == "embedded:modprobe.d/rdma-initrd.conf"),
        "{reasons:?}"
    );
    let f = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["dest"] == "/etc/modprobe.d/rxe-crc.conf")
        .expect("shipped");
    assert_eq!(f["source"], conf.to_str().unwrap());
}

#[test]
fn initrd_essentials_are_added_where_the_root_lacks_them() {
    let plan = generic(&inputs().rdma_core);
    assert_eq!(plan["rules_source"], "root");
    let file = |dest: &str| {
        plan["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["dest"] == dest)
            .cloned()
    };
    // Debian 44's unit lacks Before=initrd.target: a drop-in adds it.
    let d = file("/usr/lib/systemd/system/rdma-load-modules@.service.d/rdma-initrd.conf")
        .expect("drop-in");
    assert_eq!(
        d["source"],
        "embedded:rdma-load-modules@.service.d/rdma-initrd.conf"
    );
    assert!(d["reason"]
        .as_str()
        .unwrap()
        .contains("lacks Before=initrd.target"));
    // The rdma-core root has no udev of its own: net_setup_link comes from units/.
    let n = file("/usr/lib/udev/rules.d/80-net-setup-link.rules").expect("net_setup_link rule");
    assert_eq!(n["source"], "embedded:80-net-setup-link.rules");
    // With the root's own 80-net-setup-link.rules, that one is taken.
    let (_t, root) = rdma_core_copy();
    std::fs::write(
        root.join("lib/udev/rules.d/80-net-setup-link.rules"),
        "SUBSYSTEM!=\"net\", GOTO=\"end\"\nIMPORT{builtin}=\"net_setup_link\"\nLABEL=\"end\"\n",
    )
    .unwrap();
    let p2 = generic(&root);
    let n2 = p2["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["dest"]
                .as_str()
                .unwrap()
                .ends_with("80-net-setup-link.rules")
        })
        .unwrap();
    assert_eq!(n2["dest"], "/lib/udev/rules.d/80-net-setup-link.rules");
    assert!(n2["source"]
        .as_str()
        .unwrap()
        .starts_with(root.to_str().unwrap()));
}

#[test]
fn a_root_without_rdma_core_uses_the_embedded_set() {
    let t = tempfile::tempdir().unwrap();
    let plan = generic(t.path());
    assert_eq!(plan["rules_source"], "embedded");
    let mods = module_names(&plan);
    for m in [
        "mlx5_ib", "mlx4_ib", "irdma", "rpcrdma", "ib_ipoib", "ib_iser",
    ] {
        assert!(mods.contains(m), "{m}");
    }
    let srcs = file_field(&plan, "source");
    for s in [
        "embedded:90-rdma-initrd-hw.rules",
        "embedded:rdma-load-modules@.service",
        "embedded:rdma-hw.target",
        "embedded:modules/rdma.conf",
    ] {
        assert!(srcs.contains(s), "{s}: {srcs:?}");
    }
    // Our own unit is already initrd-ready: no drop-in.
    assert!(!srcs.contains("embedded:rdma-load-modules@.service.d/rdma-initrd.conf"));
    assert!(plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("rdma-initrd's own rules")));
}

/// Without systemd (`--init udev`), the units the rules want are not
/// installed; the generated rules file, evaluated after Debian's own rules on
/// an RDMA device of each protocol, loads exactly what systemd would start:
/// rdma-hw.target -> rdma-load-modules@rdma.service (rdma.conf) and
/// rdma-load-modules@<proto>.service (<proto>.conf).
#[test]
fn without_systemd_the_generated_rules_load_what_the_units_would() {
    use rdma_initrd::udev::{device::Device, eval, rules};
    let inp = inputs();
    let root = &inp.rdma_core;
    let plan = plan_json(
        root,
        &inp.moddir(&inp.kroot),
        &["--generic", "--init", "udev"],
    );
    assert_eq!(plan["init"], "udev");
    let kinds = file_field(&plan, "kind");
    assert!(!kinds.contains("unit"), "{kinds:?}");
    assert!(plan["wants"].as_array().unwrap().is_empty());
    let progs = file_field(&plan, "dest");
    assert!(
        !progs.iter().any(|p| p.ends_with("/systemd-modules-load")),
        "{progs:?}"
    );
    let generated: Vec<&Value> = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["text"].is_string() && f["kind"] != "manifest")
        .collect();
    assert_eq!(generated.len(), 1);
    let g = generated[0];
    assert_eq!(g["source"], "generated:99-rdma-initrd-no-systemd.rules");
    assert_eq!(g["kind"], "rule");

    let r = rdma_initrd::root::Root::new(root);
    let mut warnings = Vec::new();
    let mut files = rdma_initrd::facts::rules::read_all(&r, &[], &mut warnings).unwrap();
    files.push(rules::RulesFile::from_text(
        "99-rdma-initrd-no-systemd.rules".into(),
        g["dest"].as_str().unwrap().into(),
        rdma_initrd::source::Source::Host("generated".into()),
        g["text"].as_str().unwrap(),
        &mut warnings,
    ));
    assert!(warnings.is_empty(), "{warnings:?}");
    let conf = |name: &str| -> Vec<String> {
        let p = root.join("etc/rdma/modules").join(format!("{name}.conf"));
        let text = std::fs::read_to_string(&p).unwrap();
        rdma_initrd::systemd::parse_modules_list(&text, &p.display().to_string())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    for proto in ["infiniband", "iwarp", "opa", "roce"] {
        let mut d = Device {
            subsystem: "infiniband".into(),
            kernel: "rdma0".into(),
            devpath: "/devices/virtual/infiniband/rdma0".into(),
            ..Default::default()
        };
        d.properties
            .insert(format!("ID_RDMA_{}", proto.to_uppercase()), "1".into());
        let out = eval::evaluate(&files, &d);
        let loaded: Vec<String> = out
            .kmod_loads()
            .filter(|(_, o)| o.file.ends_with("99-rdma-initrd-no-systemd.rules"))
            .map(|(m, _)| m.to_string())
            .collect();
        let mut want = conf("rdma");
        want.extend(conf(proto));
        assert_eq!(loaded, want, "{proto}");
        assert!(!loaded.is_empty());
    }

    // --protocol: systemd's initrd.target wants rdma-load-modules@P; without
    // systemd the same list is loaded at boot (initramfs-tools' conf/modules).
    let sel = plan_json(
        root,
        &inp.moddir(&inp.kroot),
        &["--protocol", "infiniband", "--init", "udev"],
    );
    let pre = crate::common::field(&sel["preload"], "module");
    assert_eq!(pre, conf("infiniband"));
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("i.img");
    let moddir = inp.moddir(&inp.kroot);
    let common = [
        "--root",
        root.to_str().unwrap(),
        "--moddir",
        moddir.to_str().unwrap(),
        "--protocol",
        "infiniband",
        "--init",
        "udev",
    ];
    let mut a = vec!["install", "--output", img.to_str().unwrap()];
    a.extend(common);
    let (code, _, err) = run(&a);
    assert_eq!(code, 0, "{err}");
    let mut v = vec!["verify", img.to_str().unwrap()];
    v.extend(common);
    let (code, out, err) = run(&v);
    assert_eq!(code, 0, "{out}{err}");
    let image = rdma_initrd::backend::image::read(&img).unwrap();
    let list = String::from_utf8_lossy(image.tree.file("conf/modules").unwrap()).into_owned();
    assert_eq!(list.lines().collect::<Vec<_>>(), conf("infiniband"));
    // The same image is incomplete for a systemd initramfs (no units). Its
    // manifest says udev: the command line says systemd.
    let mut v = vec!["verify", img.to_str().unwrap()];
    v.extend(&common[..6]);
    v.extend(["--init", "systemd"]);
    let (code, out, _) = run(&v);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unit "), "{out}");
}

/// A program that is a script brings its interpreter: Debian's
/// `install ib_qib ... /usr/lib/truescale-serdes.cmds start` runs a
/// `#!/bin/bash` script, and generators copy ELF dependencies, not `#!` lines.
#[test]
fn scripts_bring_their_interpreter() {
    let inp = inputs();
    let plan = plan_json(Path::new("/"), &inp.moddir(&inp.kroot), &["--generic"]);
    let files = plan["files"].as_array().unwrap();
    let script = files
        .iter()
        .find(|f| {
            f["dest"]
                .as_str()
                .unwrap()
                .ends_with("/truescale-serdes.cmds")
        })
        .expect("the host's rdma-core has truescale.conf and its script");
    let head = std::fs::read(script["source"].as_str().unwrap()).unwrap();
    let want = rdma_initrd::elfdeps::script_interpreters(&head).unwrap();
    assert_eq!(want, ["/bin/bash"]);
    let interp = files
        .iter()
        .find(|f| {
            f["reason"].as_str().unwrap()
                == format!("interpreter of {}", script["dest"].as_str().unwrap())
        })
        .expect("the interpreter is planned");
    assert_eq!(interp["kind"], "program");
    assert_eq!(interp["dest"], "/bin/bash");
}

/// On a stock host (this Debian machine: systemd, udev and rdma-core
/// installed by .ci/run, with their `.wants` and `.d` directories), `plan
/// -v` warns of nothing but missing firmware, one line a module.
#[test]
fn a_stock_host_plans_quietly() {
    let inp = inputs();
    assert!(
        Path::new("/lib/udev/rules.d/90-rdma-hw-modules.rules").exists()
            || Path::new("/usr/lib/udev/rules.d/90-rdma-hw-modules.rules").exists(),
        "rdma-core is not installed on this host"
    );
    let moddir = inp.moddir(&inp.kroot);
    let (code, _, err) = run(&[
        "plan",
        "--root",
        "/",
        "--moddir",
        moddir.to_str().unwrap(),
        "--kver",
        &inp.kver,
        "--generic",
        "-v",
    ]);
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("rdma-initrd: warning: "))
        .collect();
    let mut modules = BTreeSet::new();
    for w in &warnings {
        let module = w
            .strip_prefix("firmware for ")
            .and_then(|r| r.split_once(" not found: "))
            .map(|(m, _)| m);
        let Some(module) = module else {
            panic!("a warning that names no missing firmware: {w}\n{err}");
        };
        assert!(modules.insert(module), "two lines for {module}: {err}");
    }
}
