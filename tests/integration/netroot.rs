//! Roots over RDMA (NFS/RDMA, NVMe-oF on RDMA, iSER): the transports and
//! dracut's boot hooks come from the plan; host-only finds the machine's
//! root from its mount table and sysfs; generators that cannot mount such a
//! root refuse; daemons the rules want are installed.

use crate::common::{inputs, rdma_core_copy, run, run_on};
use crate::rdma_core::{module_names, plan_json};
use serde_json::Value;
use std::os::unix::fs::symlink;
use std::path::Path;

fn plan(root: &Path, extra: &[&str]) -> Value {
    let inp = inputs();
    plan_json(root, &inp.moddir(&inp.kroot), extra)
}

fn netroots(plan: &Value) -> Vec<&str> {
    plan["netroot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["root"].as_str().unwrap())
        .collect()
}

fn hooks(plan: &Value) -> Vec<&str> {
    plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "hook")
        .map(|f| f["dest"].as_str().unwrap())
        .collect()
}

fn reason_kinds<'a>(plan: &'a Value, module: &str) -> Vec<&'a Value> {
    plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == module)
        .unwrap_or_else(|| panic!("{module} not planned"))["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .collect()
}

#[test]
fn a_generic_dracut_image_carries_every_transport_and_the_fabric_wait() {
    let root = &inputs().rdma_core;
    let p = plan(root, &["--generic", "--generator", "dracut"]);
    assert_eq!(netroots(&p), ["nfs", "nvmf", "iscsi"]);
    let mods = module_names(&p);
    // nvme_rdma is in no rdma-core list: only the NVMe-oF root brings it.
    assert!(mods.contains("nvme_rdma"), "{mods:?}");
    assert!(mods.contains("nvme_fabrics"));
    // rpcrdma is asked for as the kernel asks: xprtrdma.
    assert!(reason_kinds(&p, "rpcrdma")
        .iter()
        .any(|r| r["kind"] == "netroot" && r["root"] == "nfs" && r["request"] == "xprtrdma"));
    assert!(reason_kinds(&p, "ib_iser")
        .iter()
        .any(|r| r["kind"] == "netroot" && r["root"] == "iscsi"));
    assert_eq!(
        hooks(&p),
        [
            "cmdline/93-rdma-initrd-cmdline.sh",
            "initqueue/settled/00-rdma-initrd-fabric.sh",
            "netroot/90-rdma-initrd-fabric.sh"
        ]
    );
    // Without NVMe-oF, no cmdline hook; without a root over RDMA, no hooks
    // and no nvme_rdma.
    let nfs = plan(
        root,
        &["--generic", "--generator", "dracut", "--netroot", "nfs"],
    );
    assert_eq!(netroots(&nfs), ["nfs"]);
    assert_eq!(hooks(&nfs).len(), 2);
    assert!(!module_names(&nfs).contains("nvme_rdma"));
    let none = plan(
        root,
        &["--generic", "--generator", "dracut", "--netroot", "none"],
    );
    assert!(netroots(&none).is_empty());
    assert!(hooks(&none).is_empty());
    assert!(!module_names(&none).contains("nvme_rdma"));
}

#[test]
fn initramfs_tools_and_mkinitcpio_carry_none_and_refuse_one() {
    let root = &inputs().rdma_core;
    for gen in ["initramfs-tools", "mkinitcpio"] {
        let p = plan(root, &["--generic", "--generator", gen]);
        assert!(netroots(&p).is_empty(), "{gen}");
        assert!(hooks(&p).is_empty(), "{gen}");
        assert!(!module_names(&p).contains("nvme_rdma"), "{gen}");
    }
    let (code, out, err) = run_on(
        root,
        &["plan", "--generator", "initramfs-tools", "--netroot", "nfs"],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("initramfs-tools cannot mount an NFS root over RDMA")
            && err.contains("klibc's nfsmount"),
        "{err}"
    );
    let (code, _, err) = run_on(
        root,
        &["plan", "--generator", "mkinitcpio", "--netroot", "iscsi"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("mkinitcpio cannot mount an iSCSI root over RDMA"),
        "{err}"
    );
    let (code, _, err) = run_on(root, &["plan", "--netroot", "none", "--netroot", "nfs"]);
    assert_eq!(code, 2);
    assert!(err.contains("--netroot none"), "{err}");
}

/// A root like `rdma_core` with a mount table; an empty sysfs of its own.
fn root_with_mounts(mountinfo: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, root) = rdma_core_copy();
    std::fs::create_dir_all(root.join("proc/self")).unwrap();
    std::fs::write(root.join("proc/self/mountinfo"), mountinfo).unwrap();
    std::fs::create_dir_all(root.join("sys")).unwrap();
    (t, root)
}

#[test]
fn host_only_finds_an_nfs_root_over_rdma_and_initramfs_tools_refuses_it() {
    let (_t, root) = root_with_mounts(
        "1 0 0:20 / / rw,relatime shared:1 - nfs4 10.0.2.1:/ rw,vers=4.2,proto=rdma,port=20049\n",
    );
    let p = plan(&root, &["--hostonly", "--generator", "dracut"]);
    assert_eq!(netroots(&p), ["nfs"]);
    let why = p["netroot"][0]["evidence"].as_str().unwrap();
    assert!(
        why.contains("this machine") && why.contains("10.0.2.1:/"),
        "{why}"
    );
    assert!(module_names(&p).contains("rpcrdma"));
    let (code, _, err) = run_on(
        &root,
        &["plan", "--hostonly", "--generator", "initramfs-tools"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("this machine: / is nfs4 from 10.0.2.1:/"),
        "{err}"
    );
    // detect says so, and --profile carries it to another image.
    let (code, out, _) = run_on(&root, &["detect", "--json"]);
    assert_eq!(code, 0);
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["netroot"]["root"], "nfs");
    let prof = root.join("node.json");
    std::fs::write(&prof, &out).unwrap();
    let other = plan(
        &inputs().rdma_core,
        &["--profile", prof.to_str().unwrap(), "--generator", "dracut"],
    );
    assert_eq!(netroots(&other), ["nfs"]);
    // Over TCP it is no root over RDMA.
    let (_t2, tcp) = root_with_mounts("1 0 0:20 / / rw - nfs4 10.0.2.1:/ rw,proto=tcp\n");
    let p = plan(&tcp, &["--hostonly", "--generator", "dracut"]);
    assert!(netroots(&p).is_empty());
    assert!(hooks(&p).is_empty());
}

/// sysfs as the kernel lays out an NVMe-oF namespace (controller with a
/// `transport`) and an iSCSI disk (under hostN, with scsi_host/proc_name).
fn fake_sysfs(sys: &Path, nvme_transport: &str) {
    let ctl = sys.join("devices/virtual/nvme-fabrics/ctl/nvme0");
    std::fs::create_dir_all(ctl.join("nvme0n1")).unwrap();
    std::fs::write(ctl.join("transport"), format!("{nvme_transport}\n")).unwrap();
    symlink("../../nvme0", ctl.join("nvme0n1/device")).unwrap();
    let host = sys.join("devices/platform/host2");
    let disk = host.join("session1/target2:0:0/2:0:0:0");
    std::fs::create_dir_all(disk.join("block/sda/sda1")).unwrap();
    std::fs::write(disk.join("block/sda/sda1/partition"), "1\n").unwrap();
    symlink("../../../2:0:0:0", disk.join("block/sda/device")).unwrap();
    std::fs::create_dir_all(sys.join("class/scsi_host/host2")).unwrap();
    std::fs::write(sys.join("class/scsi_host/host2/proc_name"), "iscsi_iser\n").unwrap();
    std::fs::create_dir_all(sys.join("dev/block")).unwrap();
    symlink(
        "../../devices/virtual/nvme-fabrics/ctl/nvme0/nvme0n1",
        sys.join("dev/block/259:0"),
    )
    .unwrap();
    symlink(
        "../../devices/platform/host2/session1/target2:0:0/2:0:0:0/block/sda/sda1",
        sys.join("dev/block/8:1"),
    )
    .unwrap();
}

#[test]
fn host_only_finds_nvmf_and_iser_roots_through_sysfs() {
    for (dev, want) in [("259:0", Some("nvmf")), ("8:1", Some("iscsi"))] {
        let (_t, root) =
            root_with_mounts(&format!("1 0 {dev} / / rw,relatime - ext4 /dev/xyz rw\n"));
        fake_sysfs(&root.join("sys"), "rdma");
        let p = plan(&root, &["--hostonly", "--generator", "dracut"]);
        assert_eq!(netroots(&p).first().copied(), want, "{dev}");
    }
    // The same NVMe namespace over TCP is no root over RDMA.
    let (_t, root) = root_with_mounts("1 0 259:0 / / rw - ext4 /dev/nvme0n1 rw\n");
    fake_sysfs(&root.join("sys"), "tcp");
    let p = plan(&root, &["--hostonly", "--generator", "dracut"]);
    assert!(netroots(&p).is_empty());
}

#[test]
fn daemons_the_rules_want_are_installed_with_systemd_only() {
    let root = &inputs().rdma_core;
    let p = plan(root, &["--generic"]);
    let files: Vec<(&str, &str)> = p["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), f["dest"].as_str().unwrap()))
        .collect();
    for want in [
        ("unit", "/lib/systemd/system/iwpmd.service"),
        ("program", "/usr/sbin/iwpmd"),
        ("unit", "/lib/systemd/system/rdma-ndd.service"),
        ("program", "/usr/sbin/rdma-ndd"),
        ("conf", "/etc/rdma/modules/iwpmd.conf"),
        ("conf", "/etc/iwpmd.conf"),
    ] {
        assert!(files.contains(&want), "{want:?} in {files:?}");
    }
    let p = plan(root, &["--generic", "--init", "udev"]);
    assert!(!p["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["dest"] == "/usr/sbin/iwpmd"));
    assert!(p["warnings"].as_array().unwrap().iter().any(|w| w
        .as_str()
        .unwrap()
        .contains("iwpmd.service (wanted by /lib/udev/rules.d/90-iwpmd.rules:1) is not installed: without systemd nothing starts it")));
    // A daemon whose program the root lacks is left out, with why.
    let (_t, bare) = rdma_core_copy();
    std::fs::remove_file(bare.join("usr/sbin/iwpmd")).unwrap();
    let p = plan(&bare, &["--generic"]);
    assert!(!p["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["dest"] == "/lib/systemd/system/iwpmd.service"));
    assert!(p["warnings"].as_array().unwrap().iter().any(|w| w
        .as_str()
        .unwrap()
        .contains("/usr/sbin/iwpmd is not in the root")));
}

#[test]
fn a_standalone_dracut_image_holds_the_hooks_and_verify_checks_their_bytes() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("rdma.img");
    let moddir = inp.moddir(&inp.kroot);
    let common = [
        "--root",
        inp.rdma_core.to_str().unwrap(),
        "--moddir",
        moddir.to_str().unwrap(),
        "--generator",
        "dracut",
        "--netroot",
        "nfs",
    ];
    let mut a = vec!["install", "--output", img.to_str().unwrap(), "-q"];
    a.extend(common);
    let (code, _, err) = run(&a);
    assert_eq!(code, 0, "{err}");
    let mut v = vec!["verify", img.to_str().unwrap()];
    v.extend(common);
    let (code, out, err) = run(&v);
    assert_eq!(code, 0, "{out}{err}");
    // The same image is incomplete for an NVMe-oF root: no nvme_rdma, no
    // cmdline hook.
    let mut v2 = v.clone();
    v2.extend(["--netroot", "nvmf"]);
    let (code, out, _) = run(&v2);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("module nvme_rdma"), "{out}");
    assert!(
        out.contains("hook cmdline/93-rdma-initrd-cmdline.sh"),
        "{out}"
    );
}
