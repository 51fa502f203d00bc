//! Reliability: reproducible images whatever the environment, and an output
//! that is always either the old image or the complete new one.

use crate::common::{bin, inputs, rdma_core_copy};
use std::path::{Path, PathBuf};
use std::process::Command;

fn install(root: &Path, out: &Path, env: &[(&str, &str)], umask: &str) -> std::process::Output {
    let inp = inputs();
    let moddir = inp.moddir(&inp.kroot);
    let script = format!(
        "umask {umask}; exec '{}' install --generic --root '{}' --moddir '{}' --output '{}' -q",
        bin().display(),
        root.display(),
        moddir.display(),
        out.display()
    );
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(script)
        .env("SOURCE_DATE_EPOCH", "1700000000");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// `rdma-initrd install --generic --output OUT` for `root` (not yet run).
fn install_cmd(root: &Path, out: &Path) -> Command {
    let inp = inputs();
    let mut c = Command::new(bin());
    c.args(["install", "--generic", "-q", "--output"])
        .arg(out)
        .arg("--root")
        .arg(root)
        .arg("--moddir")
        .arg(inp.moddir(&inp.kroot))
        .env("SOURCE_DATE_EPOCH", "1700000000");
    c
}

/// Copy a tree creating entries in reverse name order, so that readdir
/// returns them in another order than in the original.
fn copy_reversed(from: &Path, to: &Path) {
    let mut entries: Vec<PathBuf> = walkdir::WalkDir::new(from)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    entries.sort();
    // Directories first (parents before children), then everything else reversed.
    for e in entries.iter().filter(|e| e.is_dir() && !e.is_symlink()) {
        std::fs::create_dir_all(to.join(e.strip_prefix(from).unwrap())).unwrap();
    }
    for e in entries
        .iter()
        .rev()
        .filter(|e| !e.is_dir() || e.is_symlink())
    {
        let dst = to.join(e.strip_prefix(from).unwrap());
        if e.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e).unwrap(), &dst).unwrap();
        } else {
            std::fs::copy(e, &dst).unwrap();
        }
    }
}

#[test]
fn images_are_byte_identical_across_umask_locale_and_readdir_order() {
    let (_t, root) = rdma_core_copy();
    let t2 = tempfile::tempdir().unwrap();
    let shuffled = t2.path().join("root");
    copy_reversed(&root, &shuffled);
    let out = tempfile::tempdir().unwrap();
    let a = out.path().join("a.img");
    let b = out.path().join("b.img");
    let o = install(&root, &a, &[("LC_ALL", "C")], "022");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = install(
        &shuffled,
        &b,
        &[("LC_ALL", "C.UTF-8"), ("TZ", "Pacific/Kiritimati")],
        "077",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "two builds differ"
    );
}

/// SIGKILL at random points of `install --output` over an existing image:
/// the output is always the old image or the complete new one.
#[test]
fn killed_installs_leave_the_old_or_the_new_image() {
    let (_t, root) = rdma_core_copy();
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.img");
    let o = install(&root, &reference, &[], "022");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let new = std::fs::read(&reference).unwrap();
    let out = dir.path().join("initrd.img");
    let old = b"the old image".to_vec();
    let mut seen_old = 0;
    let mut seen_new = 0;
    // Deterministic pseudo-random delays spread over the run's duration.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..24 {
        std::fs::write(&out, &old).unwrap();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = std::time::Duration::from_millis(x % 700);
        let mut child = install_cmd(&root, &out).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let got = std::fs::read(&out).unwrap();
        if got == old {
            seen_old += 1;
        } else {
            assert_eq!(
                got.len(),
                new.len(),
                "a partial image after SIGKILL at {delay:?}"
            );
            assert!(got == new, "a mixed image after SIGKILL at {delay:?}");
            seen_new += 1;
        }
    }
    assert!(
        seen_old > 0,
        "no kill landed before the rename: the test proves nothing"
    );
    eprintln!("killed installs: {seen_old} left the old image, {seen_new} the new one");
}

/// Two concurrent runs on the same output leave one complete image.
#[test]
fn concurrent_installs_do_not_corrupt_the_output() {
    let (_t, root) = rdma_core_copy();
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.img");
    assert!(install(&root, &reference, &[], "022").status.success());
    let out = dir.path().join("initrd.img");
    let spawn = || install_cmd(&root, &out).spawn().unwrap();
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "temporary files left: {left:?}");
}

/// On an error the staging directory and the temporary output are removed.
#[test]
fn staging_is_removed_on_errors() {
    let (_t, root) = rdma_core_copy();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // depmod fails: PATH without it.
    let o = install_cmd(&root, &dir.path().join("x.img"))
        .env("TMPDIR", tmp.path())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("depmod"));
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "staging left in TMPDIR"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "output or temp file left"
    );
}
