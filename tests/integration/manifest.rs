//! The manifest every image holds (/usr/lib/rdma-initrd/manifest.json):
//! written by `install` and by the generator hooks, read back by `verify`
//! (which then needs no selection) and by `inspect`.

use crate::common::{inputs, repo, run};
use crate::images::{sh, unpack};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const DEST: &str = "usr/lib/rdma-initrd/manifest.json";

/// The manifest text a plan carries.
fn planned_manifest(plan: &Value) -> String {
    plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "manifest")
        .expect("the plan has a manifest")["text"]
        .as_str()
        .unwrap()
        .to_string()
}

fn plan_json(args: &[&str]) -> Value {
    let mut a = vec!["plan", "--json"];
    a.extend(args);
    let (code, out, err) = run(&a);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// What a generator's module function does to a tree that has the plan's
/// other files (the harnesses record module additions only): the plan's
/// module files and firmware at their paths, and a module index by depmod.
/// A generator's TREE, with its modules added, packed into an image that
/// verifies with no selection, saying it checked the manifest's.
fn verifies_flagless(
    tree: &Path,
    plan: &Value,
    md: &Path,
    root: &str,
    generator: &str,
    init: &str,
) {
    add_modules_as_a_generator_would(tree, plan, md);
    let img = tree.with_extension("img");
    pack(tree, &img);
    let (code, out, err) = run(&[
        "verify",
        img.to_str().unwrap(),
        "--root",
        root,
        "--moddir",
        md.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let want = format!(
        "checked against the manifest's selection: generic, --generator {generator}, --init {init}, kernel {}",
        inputs().kver
    );
    assert!(out.contains(&want), "{out}");
}

fn add_modules_as_a_generator_would(tree: &Path, plan: &Value, moddir: &Path) {
    let kver = plan["kver"].as_str().unwrap();
    let dst = tree.join("lib/modules").join(kver);
    for m in plan["modules"].as_array().unwrap() {
        let (Some(rel), Some(path)) = (m["relpath"].as_str(), m["path"].as_str()) else {
            continue;
        };
        let to = dst.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(path, &to).unwrap();
    }
    for f in plan["firmware"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["files"].as_array().unwrap())
    {
        let to = tree.join(f["path"].as_str().unwrap().trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(f["source"].as_str().unwrap(), &to).unwrap();
    }
    for f in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        if moddir.join(f).is_file() {
            std::fs::copy(moddir.join(f), dst.join(f)).unwrap();
        }
    }
    let st = Command::new("depmod")
        .arg("-b")
        .arg(tree)
        .arg(kver)
        .status()
        .expect("depmod");
    assert!(st.success());
}

fn pack(tree: &Path, img: &Path) {
    sh(
        &format!(
            "find . | LC_ALL=C sort | cpio -o -H newc --quiet > '{}'",
            img.display()
        ),
        tree,
    );
}

/// A standalone image records its selection; `verify` with no selection
/// checks against it and says so; an option given replaces its value; an
/// image without a manifest is verified against the command line as before;
/// `inspect` shows the manifest and the modules' versions.
#[test]
fn standalone_images_say_how_they_were_made() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let md = inp.moddir(&inp.kroot);
    let root = inp.rdma_core.to_str().unwrap();
    let sel = [
        "--root",
        root,
        "--moddir",
        md.to_str().unwrap(),
        "--generic",
        "--init",
        "udev",
        "--protocol",
        "infiniband",
        "--generator",
        "initramfs-tools",
    ];
    let img = t.path().join("a.img");
    let mut a = vec![
        "install",
        "--output",
        img.to_str().unwrap(),
        "--compress",
        "xz",
    ];
    a.extend(sel);
    let (code, _, err) = run(&a);
    assert_eq!(code, 0, "{err}");
    let plan = plan_json(&sel);
    let x = t.path().join("x");
    unpack(&img, &x, "xz -dc");
    assert_eq!(
        std::fs::read_to_string(x.join(DEST)).unwrap(),
        planned_manifest(&plan),
        "the image's manifest is not the plan's"
    );

    let at = ["--root", root, "--moddir", md.to_str().unwrap()];
    let verify = |image: &Path, extra: &[&str]| {
        let mut a = vec!["verify", image.to_str().unwrap()];
        a.extend(at);
        a.extend(extra);
        run(&a)
    };
    let (code, out, err) = verify(&img, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let want = format!(
        "checked against the manifest's selection: generic, --protocol infiniband, --generator initramfs-tools, --init udev, kernel {}",
        inp.kver
    );
    assert!(out.contains(&want), "{out}");
    // An option replaces its own value only; a systemd image lacks the units.
    let (code, out, _) = verify(&img, &["--init", "systemd"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the manifest's selection with the command line's --init: generic, --protocol infiniband, --generator initramfs-tools, --init systemd"),
        "{out}"
    );
    let (code, out, _) = verify(&img, &["--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["selection"]["from"], "manifest");

    // Without its manifest the image is what an older rdma-initrd made: the
    // command line's selection, as before.
    std::fs::remove_file(x.join(DEST)).unwrap();
    let old = t.path().join("old.img");
    pack(&x, &old);
    let mut as_before = vec!["--kver", &inp.kver];
    as_before.extend(&sel[4..]);
    let (code, out, err) = verify(&old, &as_before);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "checked against the command line's selection (the image has no manifest): generic"
        ),
        "{out}"
    );

    // inspect: how it was made, and the modules with their versions.
    let (code, out, err) = run(&["inspect", img.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("generator   initramfs-tools"), "{out}");
    assert!(out.contains("init        udev"), "{out}");
    let mlx5 = out
        .lines()
        .find(|l| l.trim_start().starts_with("mlx5_ib "))
        .unwrap_or_else(|| panic!("no mlx5_ib in {out}"));
    assert!(mlx5.contains(&format!("vermagic={} ", inp.kver)), "{mlx5}");
    assert!(!out.contains("MISSING"), "{out}");
    let (code, out, _) = run(&["lsinitrd", "--json", img.to_str().unwrap()]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let m: Value = serde_json::from_str(&planned_manifest(&plan)).unwrap();
    assert_eq!(v["manifest"]["plan"]["sha256"], m["plan"]["sha256"]);
    assert_eq!(
        v["modules"].as_array().unwrap().len(),
        plan["modules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| !m["builtin"].as_bool().unwrap())
            .count()
    );
    assert!(
        v["modules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "same"),
        "{out}"
    );
    // The image without a manifest: found by name, and said so.
    let (code, out, _) = run(&["inspect", old.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("no manifest"), "{out}");
    assert!(out.contains("mlx5_ib "), "{out}");
}

/// `install --base` appends the plan with its manifest; the appended image
/// verifies with no selection.
#[test]
fn an_appended_segment_carries_the_manifest() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let md = inp.moddir(&inp.kroot);
    let root = inp.rdma_core.to_str().unwrap();
    let base = t.path().join("base.img");
    let empty = t.path().join("empty");
    std::fs::create_dir_all(empty.join("etc")).unwrap();
    std::fs::write(empty.join("etc/hostname"), "node\n").unwrap();
    pack(&empty, &base);
    let out = t.path().join("new.img");
    let (code, _, err) = run(&[
        "install",
        "--base",
        base.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--root",
        root,
        "--moddir",
        md.to_str().unwrap(),
        "--driver",
        "mlx5_ib",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, o, err) = run(&[
        "verify",
        out.to_str().unwrap(),
        "--root",
        root,
        "--moddir",
        md.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{o}{err}");
    assert!(
        o.contains("checked against the manifest's selection: selected, --driver mlx5_ib, --generator none, --init systemd"),
        "{o}"
    );
}

/// The mkinitcpio hook installs the manifest through its `file` lines; the
/// image, once its modules are added as mkinitcpio would, verifies with no
/// selection.
#[test]
fn mkinitcpio_image_verifies_from_its_manifest() {
    let inp = inputs();
    let md = inp.moddir(&inp.kroot);
    let root = inp.rdma_core.to_str().unwrap().to_string();
    for systemd in [true, false] {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        let args = ["--root", &root];
        let calls = crate::hooks::mkinitcpio(systemd, &args, &tree);
        let plan = crate::hooks::plan_for(systemd, &args);
        assert_eq!(
            std::fs::read_to_string(tree.join(DEST)).unwrap(),
            planned_manifest(&plan),
            "{calls}"
        );
        let init = if systemd { "systemd" } else { "udev" };
        verifies_flagless(&tree, &plan, &md, &root, "mkinitcpio", init);
    }
}

/// A host-only plan on a machine without RDMA hardware has no modules, and
/// mkinitcpio then adds none and makes no module index (found with real
/// mkinitcpio 41): such an image verifies, with no selection, and holds no
/// `modules.dep.bin`.
#[test]
fn an_image_without_modules_needs_no_module_index() {
    let inp = inputs();
    let md = inp.moddir(&inp.kroot);
    let root = inp.rdma_core.to_str().unwrap().to_string();
    let sysfs = repo().join("tests/fixtures/hostonly/none/root/sys");
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    let args = [
        "--root",
        &root,
        "--hostonly",
        "--sysfs",
        sysfs.to_str().unwrap(),
    ];
    crate::hooks::mkinitcpio(false, &args, &tree);
    let lib_modules = tree.join("lib/modules");
    assert!(
        !lib_modules.exists(),
        "the hook made {}",
        lib_modules.display()
    );
    let img = tree.with_extension("img");
    pack(&tree, &img);
    let (code, out, err) = run(&[
        "verify",
        img.to_str().unwrap(),
        "--root",
        &root,
        "--moddir",
        md.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("checked against the manifest's selection: hostonly")
            && out.contains("complete (0 modules, "),
        "{out}"
    );
}

/// The initramfs-tools hook, run with Debian's own hook-functions into a
/// DESTDIR, installs the manifest with copy_file; with the modules added as
/// manual_add_modules would (it reads the host's /lib/modules, which does
/// not hold the test kernel), the image verifies with no selection.
#[test]
fn initramfs_tools_image_verifies_from_its_manifest() {
    let functions = Path::new("/usr/share/initramfs-tools/hook-functions");
    assert!(
        functions.is_file(),
        "initramfs-tools is not installed (tests/all: the test packages)"
    );
    let inp = inputs();
    let md = inp.moddir(&inp.kroot);
    let root = inp.rdma_core.to_str().unwrap().to_string();
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("dest");
    let conf = t.path().join("conf");
    std::fs::create_dir_all(conf.join("conf.d")).unwrap();
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(
        conf.join("conf.d/rdma-initrd"),
        format!(
            "RDMA_INITRD={}\nRDMA_INITRD_ARGS=\"--root {root} --moddir {}\"\n",
            crate::common::bin().display(),
            md.display()
        ),
    )
    .unwrap();
    let o = Command::new("sh")
        .arg(repo().join("initramfs-tools/hooks/rdma-initrd"))
        .env("DESTDIR", &dest)
        .env("CONFDIR", &conf)
        .env("version", &inp.kver)
        .env("MODULES", "most")
        .env("verbose", "n")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let plan = plan_json(&[
        "--root",
        &root,
        "--moddir",
        md.to_str().unwrap(),
        "--generator",
        "initramfs-tools",
        "--init",
        "udev",
        "--default-selection",
        "generic",
    ]);
    assert_eq!(
        std::fs::read_to_string(dest.join(DEST))
            .unwrap_or_else(|e| panic!("no manifest in DESTDIR: {e}\n{err}")),
        planned_manifest(&plan),
        "{err}"
    );
    verifies_flagless(&dest, &plan, &md, &root, "initramfs-tools", "udev");
}

/// The kernel-install plugin's command appends the plan to the staged
/// initrd with its manifest: the result verifies with no selection.
#[test]
fn kernel_install_stages_an_initrd_with_the_manifest() {
    let inp = inputs();
    let md = inp.moddir(&inp.kroot);
    let (_keep, root) = crate::common::rdma_core_copy();
    std::fs::create_dir_all(root.join("etc/rdma-initrd")).unwrap();
    std::fs::write(
        root.join("etc/rdma-initrd/kernel-install.conf"),
        format!(
            "# as a site writes it\n--generic\n--moddir={}\n",
            md.display()
        ),
    )
    .unwrap();
    let t = tempfile::tempdir().unwrap();
    let staging = t.path().join("staging");
    let base = t.path().join("base");
    std::fs::create_dir_all(base.join("etc")).unwrap();
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(base.join("etc/hostname"), "node\n").unwrap();
    let initrd = staging.join("initrd");
    pack(&base, &initrd);
    let o = Command::new(crate::common::bin())
        .args(["--root", root.to_str().unwrap(), "kernel-install", "add"])
        .arg(&inp.kver)
        .args(["/boot/entry", "/boot/vmlinuz"])
        .env("KERNEL_INSTALL_STAGING_AREA", &staging)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, out, err) = run(&["inspect", "--json", initrd.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["manifest"]["selection"]["mode"], "generic", "{out}");
    assert_eq!(v["manifest"]["kver"], inp.kver.as_str());
    let (code, out, err) = run(&[
        "verify",
        initrd.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--moddir",
        md.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "checked against the manifest's selection: generic, --generator none, --init systemd, kernel {}",
            inp.kver
        )),
        "{out}"
    );
}
