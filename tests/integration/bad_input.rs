//! Bad input: a clear error naming the file (and line), exit 2, no panic.

use crate::common::{copy_tree, inputs, run};
use std::path::{Path, PathBuf};

/// A small module tree: real module files copied from the Debian tree, a
/// modules.dep naming them, and an rdma-core root. Returns (root, moddir).
pub fn small_tree(dir: &Path) -> (PathBuf, PathBuf) {
    let inp = inputs();
    let root = dir.join("root");
    copy_tree(&inp.rdma_core, &root);
    std::fs::write(root.join("etc/rdma/modules/rdma.conf"), "ib_uverbs\n").unwrap();
    for f in ["infiniband", "iwarp", "opa", "roce", "iwpmd"] {
        std::fs::write(root.join(format!("etc/rdma/modules/{f}.conf")), "").unwrap();
    }
    let moddir = root.join("lib/modules/9.9.9-test");
    let src = inp.moddir(&inp.kroot);
    for rel in [
        "kernel/drivers/infiniband/core/ib_core.ko",
        "kernel/drivers/infiniband/core/ib_uverbs.ko",
    ] {
        let d = moddir.join(rel);
        std::fs::create_dir_all(d.parent().unwrap()).unwrap();
        std::fs::copy(src.join(rel), d).unwrap();
    }
    std::fs::write(
        moddir.join("modules.dep"),
        "kernel/drivers/infiniband/core/ib_core.ko:\nkernel/drivers/infiniband/core/ib_uverbs.ko: kernel/drivers/infiniband/core/ib_core.ko\n",
    )
    .unwrap();
    (root, moddir)
}

/// The plan's entry for a module.
fn planned(plan: &serde_json::Value, name: &str) -> serde_json::Value {
    plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap()
        .clone()
}

fn plan(root: &Path) -> (i32, String, String) {
    run(&[
        "plan",
        "--root",
        root.to_str().unwrap(),
        "--kver",
        "9.9.9-test",
        "--generic",
    ])
}

fn assert_error(r: (i32, String, String), needle: &str) {
    let (code, out, err) = r;
    assert_eq!(
        code, 2,
        "expected exit 2, got {code}; stdout {out}; stderr {err}"
    );
    assert!(err.starts_with("rdma-initrd: error: "), "{err}");
    assert!(
        err.contains(needle),
        "error should mention {needle:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_small_tree_itself_plans() {
    let t = tempfile::tempdir().unwrap();
    let (root, _) = small_tree(t.path());
    let (code, out, err) = run(&["modules", "--root", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "ib_core\nib_uverbs\n",
        "the one kernel of the root is found without --kver"
    );
}

#[test]
fn malformed_modules_dep_line() {
    let t = tempfile::tempdir().unwrap();
    let (root, moddir) = small_tree(t.path());
    let dep = moddir.join("modules.dep");
    let mut text = std::fs::read_to_string(&dep).unwrap();
    text.push_str("this line has no colon\n");
    std::fs::write(&dep, text).unwrap();
    assert_error(
        plan(&root),
        &format!("{}:3: expected 'path: dependencies'", dep.display()),
    );
}

#[test]
fn missing_module_file() {
    let t = tempfile::tempdir().unwrap();
    let (root, moddir) = small_tree(t.path());
    let f = moddir.join("kernel/drivers/infiniband/core/ib_uverbs.ko");
    std::fs::remove_file(&f).unwrap();
    assert_error(
        plan(&root),
        &format!(
            "{}: module file listed in modules.dep is missing",
            f.display()
        ),
    );
}

#[test]
fn module_name_with_path_in_a_conf() {
    let t = tempfile::tempdir().unwrap();
    let (root, _) = small_tree(t.path());
    let conf = root.join("etc/rdma/modules/rdma.conf");
    std::fs::write(&conf, "ib_uverbs\n../../etc/shadow\n").unwrap();
    assert_error(
        plan(&root),
        &format!(
            "{}:2: '../../etc/shadow' is not a module name",
            conf.display()
        ),
    );
    std::fs::write(&conf, "/lib/modules/x.ko\n").unwrap();
    assert_error(plan(&root), ":1: '/lib/modules/x.ko' is not a module name");
    std::fs::write(&conf, "ib_*\n").unwrap();
    assert_error(plan(&root), ":1: 'ib_*' is a glob, not a module name");
}

#[test]
fn unknown_kver() {
    let t = tempfile::tempdir().unwrap();
    let (root, _) = small_tree(t.path());
    let r = run(&[
        "plan",
        "--root",
        root.to_str().unwrap(),
        "--kver",
        "1.2.3-nope",
    ]);
    assert_error(r, "unknown kernel 1.2.3-nope");
    let r = run(&[
        "plan",
        "--root",
        root.to_str().unwrap(),
        "--kver",
        "../../etc",
    ]);
    assert_error(r, "is not a kernel version");
}

#[test]
fn truncated_and_non_xz_module() {
    let t = tempfile::tempdir().unwrap();
    let (root, moddir) = small_tree(t.path());
    let f = moddir.join("kernel/drivers/infiniband/core/ib_uverbs.ko");
    // xz magic, then garbage: detected by magic, fails to decompress.
    std::fs::write(&f, b"\xfd7zXZ\x00garbage").unwrap();
    assert_error(plan(&root), "cannot decompress (Xz)");
    // Not compressed, not ELF.
    std::fs::write(&f, b"just text").unwrap();
    assert_error(plan(&root), "not an ELF file");
}

#[test]
fn unbalanced_quotes_in_a_rule_are_a_warning_with_line() {
    let t = tempfile::tempdir().unwrap();
    let (root, _) = small_tree(t.path());
    let r = root.join("etc/udev/rules.d");
    std::fs::create_dir_all(&r).unwrap();
    std::fs::write(
        r.join("99-broken.rules"),
        "SUBSYSTEM==\"infiniband\", ENV{X}=\"1\n",
    )
    .unwrap();
    let (code, _, err) = run(&["plan", "-v", "--root", root.to_str().unwrap(), "--generic"]);
    assert_eq!(code, 0, "udev skips invalid lines; so do we: {err}");
    assert!(
        err.contains(
            "/etc/udev/rules.d/99-broken.rules:1: invalid rule, skipped: unbalanced quotes"
        ),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = run(&["plan", "--hostonly", "--generic"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["frobnicate"]);
    assert_eq!(code, 2);
    let (code, _, err) = run(&["plan", "--root", "/nonexistent-root-dir"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent-root-dir: not a directory"));
}

#[test]
fn compression_is_detected_by_magic_not_name() {
    use std::io::Write;
    let t = tempfile::tempdir().unwrap();
    let (root, moddir) = small_tree(t.path());
    let f = moddir.join("kernel/drivers/infiniband/core/ib_uverbs.ko");
    let raw = std::fs::read(&f).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    // Still named .ko: gzip is found by its magic bytes.
    std::fs::write(&f, gz.finish().unwrap()).unwrap();
    let (code, out, err) = run(&[
        "plan",
        "--json",
        "--root",
        root.to_str().unwrap(),
        "--generic",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let m = planned(&v, "ib_uverbs");
    assert_eq!(m["compression"], "gzip");
}

/// A 1 GB module file (a real module with a sparse tail): `.modinfo` is read
/// through the section headers alone, so memory stays small.
#[test]
fn a_huge_module_file_is_read_with_bounded_memory() {
    let t = tempfile::tempdir().unwrap();
    let (root, moddir) = small_tree(t.path());
    let f = moddir.join("kernel/drivers/infiniband/core/ib_uverbs.ko");
    let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
    file.set_len(1 << 30).unwrap();
    drop(file);
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(crate::common::bin())
        .args([
            "plan",
            "--json",
            "--generic",
            "--root",
            root.to_str().unwrap(),
        ])
        .output()
        .expect("GNU time (apt-get install time)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let kb: u64 = err.lines().last().unwrap().trim().parse().unwrap();
    assert!(kb < 64 * 1024, "peak RSS {kb} KiB for a 1 GB module");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = planned(&v, "ib_uverbs");
    assert_eq!(m["size"], 1u64 << 30);
}

/// A modules.dep of a million lines, and one with a single 10 MB line: a clear
/// message naming the file, exit 2, small memory.
#[test]
fn huge_depmod_files_hit_a_clear_limit() {
    let t = tempfile::tempdir().unwrap();
    let (root, moddir) = small_tree(t.path());
    let dep = moddir.join("modules.dep");
    let mut text = String::with_capacity(40 << 20);
    for i in 0..1_000_000 {
        text.push_str(&format!("kernel/drivers/x/m{i:07}.ko:\n"));
    }
    std::fs::write(&dep, &text).unwrap();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(crate::common::bin())
        .args(["plan", "--generic", "--root", root.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}: ", dep.display())) && err.contains("refusing to read it"),
        "{err}"
    );
    let kb: u64 = err.lines().last().unwrap().trim().parse().unwrap();
    assert!(kb < 64 * 1024, "peak RSS {kb} KiB");
    // One 10 MB line: under the cap, and a parse error naming the line.
    let line = format!("kernel/a.ko: {}\n", "x".repeat(10 << 20));
    std::fs::write(&dep, line).unwrap();
    let (code, _, err) =
        crate::common::run(&["plan", "--generic", "--root", root.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{}:1: dependency", dep.display())),
        "{}",
        &err[..err.len().min(300)]
    );
}

/// A reader that closes our output early (`| grep -q`, `| head`) is no
/// error: exit 0 and nothing on stderr, as for any Unix filter (the distro
/// test's `modules ... | grep -qx rdma_rxe` met "Broken pipe" on Debian
/// unstable).
#[test]
fn a_closed_stdout_is_no_error() {
    let inp = inputs();
    let md = inp.moddir(&inp.kroot);
    let mut child = std::process::Command::new(crate::common::bin())
        .args(["plan", "--generic", "--root"])
        .arg(&inp.rdma_core)
        .arg("--moddir")
        .arg(&md)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The read end closes before the tool has started writing.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("error"), "{err}");
}
