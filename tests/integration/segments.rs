//! Images of several segments, as the kernel unpacks them: `install --base`
//! appends the RDMA part to a real dracut image and replaces its own
//! segment on the next run; segments of every compression, real ones (a
//! dracut image, recompressed, and the tool's own `--compress` outputs), in
//! both orders with zero padding between, read and unpack segment by segment.

use crate::common::{inputs, run};
use crate::images::{dracut, host_args, sh, unpack_by, unpack_segments};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn rdma(args: &[&str]) -> (i32, String, String) {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.extend(host_args(inputs()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    run(&a)
}

/// The binary with the host's root and the test kernel, and `sel` as the
/// selection (small images for the compression matrix).
fn small(args: &[&str], sel: &[&str]) -> (i32, String, String) {
    let inp = inputs();
    let md = inp.moddir(&inp.kroot);
    let mut a: Vec<&str> = args.to_vec();
    a.extend([
        "--root",
        "/",
        "--moddir",
        md.to_str().unwrap(),
        "--kver",
        &inp.kver,
    ]);
    a.extend(sel);
    run(&a)
}

/// A dracut image without RDMA (zstd), as a base.
fn dracut_base(dir: &Path) -> PathBuf {
    let img = dir.join("dracut.img");
    dracut(dir, &img, false, &["--zstd"]);
    img
}

fn verify_json(img: &Path) -> Value {
    verify_json_with(img, &[])
}

/// verify --json with the host arguments, or `sel` in place of --generic.
fn verify_json_with(img: &Path, sel: &[&str]) -> Value {
    let (code, out, err) = if sel.is_empty() {
        rdma(&["verify", "--json", img.to_str().unwrap()])
    } else {
        small(&["verify", "--json", img.to_str().unwrap()], sel)
    };
    assert!(code == 0 || code == 1, "verify {}: {err}", img.display());
    serde_json::from_str(&out).unwrap()
}

fn formats(v: &Value) -> Vec<&str> {
    v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["format"].as_str().unwrap())
        .collect()
}

#[test]
fn install_appends_once_and_replaces_its_own_segment() {
    let t = tempfile::tempdir().unwrap();
    let base = dracut_base(t.path());
    let once = t.path().join("once.img");
    let twice = t.path().join("twice.img");
    for (from, to) in [(&base, &once), (&once, &twice)] {
        let (code, _, err) = rdma(&[
            "install",
            "--base",
            from.to_str().unwrap(),
            "--output",
            to.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
    }
    let base_bytes = std::fs::read(&base).unwrap();
    let once_bytes = std::fs::read(&once).unwrap();
    assert_eq!(
        &once_bytes[..base_bytes.len()],
        &base_bytes[..],
        "the base is copied, not recompressed"
    );
    assert_eq!(
        std::fs::read(&twice).unwrap(),
        once_bytes,
        "the second run replaced the first segment"
    );
    let v = verify_json(&once);
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(formats(&v), ["zstd", "zstd"]);
    // The base's own programs and libraries stay as they are: the segment
    // holds none of them again (the plan needs libc, for modprobe and
    // systemd-modules-load, and the base has it).
    let seg = &v["segments"][1];
    let (start, end) = (seg["start"].as_u64().unwrap(), seg["end"].as_u64().unwrap());
    let listing = sh(
        &format!(
            "tail -c +{} '{}' | head -c {} | zstd -dc | cpio -it --quiet",
            start + 1,
            once.display(),
            end - start
        ),
        t.path(),
    );
    let base_listing = sh(
        &format!("zstd -dc '{}' | cpio -it --quiet", base.display()),
        t.path(),
    );
    let libc = |l: &str| l.ends_with("/libc.so.6");
    assert!(base_listing.lines().any(libc), "the base has libc");
    assert!(!listing.lines().any(libc), "{listing}");
    assert!(
        listing.lines().any(|l| l.ends_with("/ib_core.ko")),
        "{listing}"
    );
    // --rewrite: one segment, the whole image recompressed.
    let rw = t.path().join("rewrite.img");
    let (code, _, err) = rdma(&[
        "install",
        "--base",
        base.to_str().unwrap(),
        "--output",
        rw.to_str().unwrap(),
        "--rewrite",
    ]);
    assert_eq!(code, 0, "{err}");
    let v = verify_json(&rw);
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(formats(&v), ["zstd"]);
}

/// What the usual tools see of an appended image: segment by segment,
/// everything; lsinitrd and unmkinitramfs, which decompress the rest of the
/// file as one stream and stop at the first archive's end, only the base
/// (docs/reference.md says so: Into the initramfs).
#[test]
fn tools_see_the_appended_segment_segment_by_segment() {
    let t = tempfile::tempdir().unwrap();
    let base = dracut_base(t.path());
    let img = t.path().join("app.img");
    let (code, _, err) = rdma(&[
        "install",
        "--base",
        base.to_str().unwrap(),
        "--output",
        img.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let x = t.path().join("x");
    unpack_segments(&img, &x);
    let found = sh(
        "find . -name mlx5_ib.ko -o -name appended-segment -o -name systemd -type f",
        &x,
    );
    assert!(
        found.contains("mlx5_ib.ko") && found.contains("appended-segment"),
        "{found}"
    );
    assert!(found.contains("/systemd"), "{found}");
    let ls = sh(
        &format!("lsinitrd '{}' 2>/dev/null || true", img.display()),
        t.path(),
    );
    assert!(
        ls.contains("usr/lib/systemd/systemd"),
        "lsinitrd lists the base"
    );
    assert!(
        !ls.contains("mlx5_ib.ko"),
        "lsinitrd now lists appended segments: update docs/reference.md"
    );
    let un = t.path().join("un");
    sh(
        &format!(
            "unmkinitramfs '{}' '{}' 2>&1 || true",
            img.display(),
            un.display()
        ),
        t.path(),
    );
    let found = sh("find . -name mlx5_ib.ko -o -name systemd -type f", &un);
    assert!(
        found.contains("systemd") && !found.contains("mlx5_ib.ko"),
        "{found}"
    );
}

/// A small plan: one soft provider and its closure.
const SEL: &[&str] = &["--driver", "rdma_rxe"];

#[test]
fn every_pair_of_real_segments_reads_in_both_orders() {
    let t = tempfile::tempdir().unwrap();
    let dracut_zst = dracut_base(t.path());
    let dracut_cpio = t.path().join("dracut.cpio");
    sh(
        &format!(
            "zstd -dc '{}' > '{}'",
            dracut_zst.display(),
            dracut_cpio.display()
        ),
        t.path(),
    );
    let mut bases: Vec<(String, PathBuf)> = vec![("zstd".into(), dracut_zst.clone())];
    for (name, cmd) in [
        ("gzip", "gzip -1 -c"),
        ("xz", "xz -1 --check=crc32 -c"),
        ("lzma", "xz -1 --format=lzma -c"),
    ] {
        let p = t.path().join(format!("dracut.{name}"));
        sh(
            &format!("{cmd} '{}' > '{}'", dracut_cpio.display(), p.display()),
            t.path(),
        );
        bases.push((name.into(), p));
    }
    let mut ours: Vec<(String, PathBuf)> = Vec::new();
    for c in ["none", "gzip", "xz", "zstd"] {
        let p = t.path().join(format!("rdma.{c}"));
        let (code, _, err) = small(
            &["install", "--output", p.to_str().unwrap(), "--compress", c],
            SEL,
        );
        assert_eq!(code, 0, "{err}");
        ours.push((if c == "none" { "cpio" } else { c }.into(), p));
    }
    for (bf, b) in &bases {
        for (of, o) in &ours {
            for (first, second, want) in [(b, o, [bf, of]), (o, b, [of, bf])] {
                let img = t.path().join("pair.img");
                // Zero padding between them, as generators write it.
                sh(
                    &format!(
                        "cat '{}' > '{img}' && head -c 512 /dev/zero >> '{img}' && cat '{}' >> '{img}'",
                        first.display(),
                        second.display(),
                        img = img.display()
                    ),
                    t.path(),
                );
                let v = verify_json_with(&img, SEL);
                assert_eq!(formats(&v), want.map(String::as_str), "{bf} and {of}");
                if first == b {
                    // The RDMA image last: its files and its index are the
                    // image's (dracut's /lib is a link, so the standalone
                    // image's lib/ goes to usr/lib).
                    assert_eq!(v["complete"], true, "{bf} then {of}: {}", v["missing"]);
                }
                let x = t.path().join(format!("x-{bf}-{of}-{}", want[0]));
                unpack_by(&img, &x, &v);
                let found = sh("find . -name rdma_rxe.ko -o -name systemd -type f", &x);
                assert!(
                    found.contains("rdma_rxe.ko") && found.contains("systemd"),
                    "{bf} and {of}: {found}"
                );
            }
        }
    }
}
