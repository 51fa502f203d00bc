//! Images, built for real and read back with the system's own tools: the
//! standalone writer (cpio, compressions, reproducibility, --destdir,
//! --base), the dracut module (Debian's dracut-core), the mkinitcpio hook
//! (through a recording harness), and verify.

use crate::common::{inputs, repo, run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The host root (CI installs Debian's rdma-core there) and the test kernel.
pub fn host_args(inp: &crate::common::Inputs) -> Vec<String> {
    vec![
        "--root".into(),
        "/".into(),
        "--moddir".into(),
        inp.moddir(&inp.kroot).display().to_string(),
        "--kver".into(),
        inp.kver.clone(),
        "--generic".into(),
    ]
}

fn rdma(args: &[&str], extra: &[String]) -> (i32, String, String) {
    let mut a: Vec<&str> = args.to_vec();
    a.extend(extra.iter().map(String::as_str));
    run(&a)
}

fn host_plan() -> Value {
    let inp = inputs();
    let (code, out, err) = rdma(&["plan", "--json"], &host_args(inp));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

pub fn sh(cmd: &str, dir: &Path) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Unpack an image (one compressed cpio, or an uncompressed one) with the
/// system's cpio.
pub fn unpack(img: &Path, dir: &Path, decompress: &str) {
    std::fs::create_dir_all(dir).unwrap();
    sh(
        &format!("{decompress} < '{}' | cpio -idm --quiet", img.display()),
        dir,
    );
}

/// Pack an unpacked tree back into an uncompressed cpio image with the
/// system's cpio.
pub fn pack(dir: &Path, img: &Path) {
    sh(
        &format!(
            "find . | LC_ALL=C sort | cpio -o -H newc --quiet > '{}'",
            img.display()
        ),
        dir,
    );
}

fn tree_files(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| format!("/{}", e.path().strip_prefix(dir).unwrap().display()))
        .collect()
}

#[test]
fn standalone_image_equals_the_plan_and_is_reproducible() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let args = host_args(inp);
    let plan = host_plan();
    for (comp, tool) in [
        ("zstd", "zstd -dc"),
        ("xz", "xz -dc"),
        ("gzip", "gzip -dc"),
        ("none", "cat"),
    ] {
        let a = t.path().join(format!("a-{comp}.img"));
        let b = t.path().join(format!("b-{comp}.img"));
        for img in [&a, &b] {
            let out = Command::new(crate::common::bin())
                .args([
                    "install",
                    "--output",
                    img.to_str().unwrap(),
                    "--compress",
                    comp,
                ])
                .args(&args)
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{comp}: two builds differ"
        );
        let dir = t.path().join(format!("x-{comp}"));
        unpack(&a, &dir, tool);
        let files = tree_files(&dir);
        // Every planned module, in its compression, at its place.
        for m in plan["modules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| !m["builtin"].as_bool().unwrap())
        {
            let p = format!(
                "/lib/modules/{}/{}",
                inp.kver,
                m["relpath"].as_str().unwrap()
            );
            assert!(files.contains(&p), "{comp}: {p} missing");
            assert_eq!(
                std::fs::read(dir.join(&p[1..])).unwrap(),
                std::fs::read(m["path"].as_str().unwrap()).unwrap()
            );
        }
        // Every planned file, with its content (embedded ones from units/).
        for f in plan["files"].as_array().unwrap() {
            let dest = f["dest"].as_str().unwrap();
            let got = std::fs::read(dir.join(&dest[1..]))
                .unwrap_or_else(|_| panic!("{comp}: {dest} missing"));
            let src = f["source"].as_str().unwrap();
            let want = match (f["text"].as_str(), src.strip_prefix("embedded:")) {
                // Generated (the manifest): its text is in the plan.
                (Some(text), _) => text.as_bytes().to_vec(),
                (None, Some(name)) => std::fs::read(repo().join("units").join(name)).unwrap(),
                (None, None) => std::fs::read(src).unwrap(),
            };
            assert_eq!(got, want, "{dest}");
        }
        // A module index made for exactly this module set.
        let dep =
            std::fs::read_to_string(dir.join(format!("lib/modules/{}/modules.dep", inp.kver)))
                .unwrap();
        assert_eq!(
            dep.lines().count(),
            plan["modules"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| !m["builtin"].as_bool().unwrap())
                .count()
        );
        assert!(files.contains(&format!("/lib/modules/{}/modules.dep.bin", inp.kver)));
        // Owner 0:0 and the given mtime, from the system's cpio.
        let listing = sh(
            &format!(
                "{tool} < '{}' | cpio -tv --quiet 2>/dev/null | head -5",
                a.display()
            ),
            t.path(),
        );
        assert!(
            listing
                .lines()
                .all(|l| l.contains(" root ") || l.contains(" 0 ")),
            "{listing}"
        );
        if comp == "xz" {
            // The kernel's xz decoder needs CRC32 (or no check).
            let info = sh(&format!("xz --robot -lv '{}'", a.display()), t.path());
            assert!(info.contains("CRC32"), "{info}");
        }
    }
}

#[test]
fn destdir_equals_the_image() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let args = host_args(inp);
    let img = t.path().join("img");
    let dd = t.path().join("dest");
    let (code, _, err) = rdma(
        &[
            "install",
            "--compress",
            "none",
            "--output",
            img.to_str().unwrap(),
        ],
        &args,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = rdma(&["install", "--destdir", dd.to_str().unwrap()], &args);
    assert_eq!(code, 0, "{err}");
    let x = t.path().join("x");
    unpack(&img, &x, "cat");
    let d = Command::new("diff")
        .arg("-r")
        .arg(&x)
        .arg(&dd)
        .output()
        .unwrap();
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stdout));
    // A symlink planted in the destination is never followed.
    let dd2 = t.path().join("dest2");
    std::fs::create_dir_all(dd2.join("etc")).unwrap();
    std::os::unix::fs::symlink(t.path().join("elsewhere"), dd2.join("etc/rdma")).unwrap();
    let (code, _, err) = rdma(&["install", "--destdir", dd2.to_str().unwrap()], &args);
    assert_eq!(code, 2);
    assert!(err.contains("refusing to write through a symlink"), "{err}");
    assert!(!t.path().join("elsewhere").exists());
}

#[test]
fn a_failed_install_leaves_the_old_image() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("initrd.img");
    std::fs::write(&out, b"the old image").unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("etc/rdma/modules")).unwrap();
    std::fs::write(
        root.join("etc/rdma/modules/rdma.conf"),
        "../../etc/shadow\n",
    )
    .unwrap();
    let moddir = inp.moddir(&inp.kroot);
    let (code, _, err) = run(&[
        "install",
        "--output",
        out.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--moddir",
        moddir.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the old image");
    let left: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "no temporary file is left behind: {left:?}");
}

/// Unpack every segment of `img` into `dir` in order (later files replacing
/// earlier, as the kernel does), each with the system's own decompressor and
/// cpio; the segments' formats.
pub fn unpack_segments(img: &Path, dir: &Path) -> Vec<String> {
    let inp = inputs();
    let md = inp.moddir(&inp.kroot);
    let (code, out, err) = run(&[
        "verify",
        "--json",
        img.to_str().unwrap(),
        "--root",
        "/",
        "--driver",
        "rdma_rxe",
        "--kver",
        &inp.kver,
        "--moddir",
        md.to_str().unwrap(),
    ]);
    assert!(code == 0 || code == 1, "verify: {err}");
    unpack_by(img, dir, &serde_json::from_str(&out).unwrap())
}

/// As `unpack_segments`, with the segments `verify --json` gave (`v`).
pub fn unpack_by(img: &Path, dir: &Path, v: &Value) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut formats = Vec::new();
    for seg in v["segments"].as_array().unwrap() {
        let (start, end) = (seg["start"].as_u64().unwrap(), seg["end"].as_u64().unwrap());
        let format = seg["format"].as_str().unwrap().to_string();
        let decompress = match format.as_str() {
            "cpio" => "cat",
            "gzip" => "gzip -dc",
            "xz" => "xz -dc",
            "lzma" => "xz --format=lzma -dc",
            "zstd" => "zstd -dc",
            f => panic!("no decompressor for {f}"),
        };
        sh(
            &format!(
                "tail -c +{} '{}' | head -c {} | {decompress} | cpio -idmu --quiet",
                start + 1,
                img.display(),
                end - start
            ),
            dir,
        );
        formats.push(format);
    }
    formats
}

/// A private copy of the system's dracut with this repo's module beside its own.
pub fn dracut_base(dir: &Path) -> PathBuf {
    let base = dir.join("dracut");
    sh(
        &format!(
            "cp -a /usr/lib/dracut '{}' && cp -r '{}' '{}/modules.d/'",
            base.display(),
            repo().join("dracut/50rdma-initrd").display(),
            base.display()
        ),
        dir,
    );
    base
}

/// Build a dracut image for the test kernel (systemd initrd), with or
/// without `--add rdma-initrd`.
pub fn dracut(dir: &Path, out: &Path, with_module: bool, extra: &[&str]) {
    let o = dracut_cmd(dir, out, with_module, extra)
        .output()
        .expect("run dracut (apt-get install dracut-core)");
    assert!(
        o.status.success(),
        "dracut failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn dracut_cmd(dir: &Path, out: &Path, with_module: bool, extra: &[&str]) -> Command {
    let inp = inputs();
    let base = dracut_base(dir);
    let bindir = crate::common::bin().parent().unwrap().to_path_buf();
    let mut cmd = Command::new("dracut");
    cmd.env("dracutbasedir", &base)
        .env(
            "DRACUT_PATH",
            format!("{} /sbin /bin /usr/sbin /usr/bin", bindir.display()),
        )
        .args([
            "--force",
            "--no-hostonly",
            "--no-early-microcode",
            "--kver",
            &inp.kver,
            "--kmoddir",
        ])
        .arg(inp.moddir(&inp.kroot))
        .args(["-m", "systemd systemd-initrd base"])
        .args(extra);
    if with_module {
        cmd.args(["--add", "rdma-initrd"]);
    }
    cmd.arg(out);
    cmd
}

/// When rdma-initrd cannot plan, dracut stops: no image without RDMA is
/// written in its place.
#[test]
fn dracut_fails_when_the_plan_fails() {
    let t = tempfile::tempdir().unwrap();
    let conf = t.path().join("conf.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("rdma.conf"),
        "rdma_initrd_args=(--config /nonexistent/x.conf)\n",
    )
    .unwrap();
    let img = t.path().join("initrd.img");
    let o = dracut_cmd(
        t.path(),
        &img,
        true,
        &[
            "--conf",
            "/dev/null",
            "--confdir",
            conf.to_str().unwrap(),
            "--no-compress",
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("installkernel failed in module rdma-initrd"),
        "{err}"
    );
    assert!(err.contains("/nonexistent/x.conf"), "{err}");
    assert!(!img.exists());
}

#[test]
fn dracut_module_builds_a_complete_image() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("initrd.img");
    dracut(t.path(), &img, true, &["--no-compress"]);
    let plan = host_plan();
    let listing = sh(&format!("lsinitrd '{}'", img.display()), t.path());
    let names: BTreeSet<&str> = listing
        .lines()
        .filter_map(|l| l.split_ascii_whitespace().nth(8))
        .collect();
    let has = |suffix: &str| names.iter().any(|n| n.ends_with(suffix));
    for m in plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["builtin"].as_bool().unwrap())
    {
        let rel = m["relpath"].as_str().unwrap();
        assert!(has(rel), "lsinitrd does not show {rel}");
    }
    for f in [
        "/90-rdma-hw-modules.rules",
        "/75-rdma-description.rules",
        "/90-rdma-ulp-modules.rules",
        "/rdma-load-modules@.service",
        "/rdma-hw.target",
        "/rdma-load-modules@.service.d/rdma-initrd.conf",
        "etc/rdma/modules/rdma.conf",
        "etc/rdma/modules/roce.conf",
        "/systemd-modules-load",
        "/80-net-setup-link.rules",
    ] {
        assert!(has(f), "lsinitrd does not show {f}");
    }
    // As built: with dracut's boot hooks, which dracut's `hardlink` has made
    // one inode (their data is in the archive once, with the last name).
    let mut args = host_args(inp);
    args.extend(["--generator".into(), "dracut".into()]);
    let (code, out, err) = rdma(&["verify", img.to_str().unwrap()], &args);
    assert_eq!(code, 0, "verify: {out}{err}");
    // With no selection: the image's manifest says generic, dracut,
    // systemd and the kernel.
    let md = inp.moddir(&inp.kroot);
    let (code, out, err) = run(&[
        "verify",
        img.to_str().unwrap(),
        "--root",
        "/",
        "--moddir",
        md.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "verify: {out}{err}");
    assert!(
        out.contains(&format!(
            "checked against the manifest's selection: generic, --generator dracut, --init systemd, kernel {}",
            inp.kver
        )),
        "{out}"
    );
    assert!(
        listing.contains("initqueue/settled/00-rdma-initrd-fabric.sh")
            && listing.contains("netroot/90-rdma-initrd-fabric.sh"),
        "{listing}"
    );
    // Take mlx5_ib.ko out (with the system's cpio) and verify names it.
    let x = t.path().join("x");
    unpack(&img, &x, "cat");
    let ko = sh("find . -name mlx5_ib.ko", &x);
    assert_eq!(ko.lines().count(), 1, "{ko}");
    std::fs::remove_file(x.join(ko.trim())).unwrap();
    let broken = t.path().join("broken.img");
    pack(&x, &broken);
    let (code, out, _) = rdma(&["verify", broken.to_str().unwrap()], &args);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("module mlx5_ib (kernel/drivers/infiniband/hw/mlx5/mlx5_ib.ko)"),
        "{out}"
    );
    // A file of the image that is there but not what the plan has: verify
    // says which.
    let x = t.path().join("y");
    unpack(&img, &x, "cat");
    let rule = sh("find . -name 90-rdma-hw-modules.rules", &x);
    let rule = x.join(rule.trim());
    let mut text = std::fs::read_to_string(&rule).unwrap();
    text.push_str("ENV{ID_NET_DRIVER}==\"x\", RUN{builtin}+=\"kmod load y\"\n");
    std::fs::write(&rule, text).unwrap();
    let changed = t.path().join("changed.img");
    pack(&x, &changed);
    let (code, out, _) = rdma(&["verify", changed.to_str().unwrap()], &args);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("rule /lib/udev/rules.d/90-rdma-hw-modules.rules: differs from /lib/udev/rules.d/90-rdma-hw-modules.rules")
            || out.contains("rule /usr/lib/udev/rules.d/90-rdma-hw-modules.rules: differs from"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("  ")).count(),
        1,
        "only that file: {out}"
    );
}

#[test]
fn base_image_gets_rdma_after_the_fact() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let control = t.path().join("control.img");
    dracut(
        t.path(),
        &control,
        false,
        &["--zstd", "--add-drivers", "virtio_net e1000e"],
    );
    let args = host_args(inp);
    let (code, out, _) = rdma(&["verify", control.to_str().unwrap()], &args);
    assert_eq!(code, 1, "the control image lacks RDMA: {out}");
    // An uncompressed early-microcode segment in front, as initramfs-tools and
    // dracut write it.
    let early_dir = t.path().join("early");
    std::fs::create_dir_all(early_dir.join("kernel/x86/microcode")).unwrap();
    std::fs::write(
        early_dir.join("kernel/x86/microcode/GenuineIntel.bin"),
        b"microcode",
    )
    .unwrap();
    let early = t.path().join("early.cpio");
    sh(
        &format!(
            "find kernel | LC_ALL=C sort | cpio -o -H newc --quiet > '{}'",
            early.display()
        ),
        &early_dir,
    );
    let base = t.path().join("base.img");
    sh(
        &format!(
            "cat '{}' '{}' > '{}'",
            early.display(),
            control.display(),
            base.display()
        ),
        t.path(),
    );
    let new = t.path().join("new.img");
    let (code, _, err) = rdma(
        &[
            "install",
            "--base",
            base.to_str().unwrap(),
            "--output",
            new.to_str().unwrap(),
        ],
        &args,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = rdma(&["verify", new.to_str().unwrap()], &args);
    assert_eq!(code, 0, "{out}{err}");
    // The early segment is kept verbatim, first.
    let early_bytes = std::fs::read(&early).unwrap();
    assert_eq!(
        &std::fs::read(&new).unwrap()[..early_bytes.len()],
        &early_bytes[..]
    );
    // The base's bytes are kept as they are: the plan is one more segment.
    let base_bytes = std::fs::read(&base).unwrap();
    assert_eq!(
        &std::fs::read(&new).unwrap()[..base_bytes.len()],
        &base_bytes[..]
    );
    // The base's own modules still resolve with modprobe against the image
    // unpacked segment by segment, as the kernel does.
    let x = t.path().join("x");
    let segs = unpack_segments(&new, &x);
    assert_eq!(segs, ["cpio", "zstd", "zstd"]);
    let empty = t.path().join("empty.d");
    std::fs::create_dir_all(&empty).unwrap();
    for m in ["virtio_net", "e1000e", "mlx5_ib", "rpcrdma"] {
        let o = Command::new("modprobe")
            .arg("-C")
            .arg(&empty)
            .arg("-d")
            .arg(&x)
            .args(["-S", &inp.kver, "--show-depends", m])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{m}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            let p = l.split_ascii_whitespace().nth(1).unwrap();
            if l.starts_with("insmod") {
                assert!(
                    Path::new(p).exists(),
                    "{m}: {p} listed by modprobe but not in the image"
                );
            }
        }
    }
}
