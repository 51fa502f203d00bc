//! What identifies a module's build (`kmod::build`): a generator's `strip
//! -g` (dracut 059 strips unsigned modules) keeps it; another build of the
//! same module does not. Checked on real Debian modules with binutils'
//! strip and objcopy, and through `verify` on a real image.

use crate::common::{inputs, run};
use crate::images::{host_args, pack, sh, unpack};
use rdma_initrd::kmod::build::same_build;
use std::path::Path;

/// A copy of a real module of the test kernel, uncompressed, under DIR.
fn real_module(dir: &Path, rel: &str) -> std::path::PathBuf {
    let inp = inputs();
    let src = inp.moddir(&inp.kroot).join(rel);
    let to = dir.join(src.file_name().unwrap());
    std::fs::copy(&src, &to).unwrap();
    to
}

#[test]
fn strip_g_keeps_the_build_and_a_rebuild_changes_it() {
    let t = tempfile::tempdir().unwrap();
    let ko = real_module(t.path(), "kernel/drivers/infiniband/hw/mlx5/mlx5_ib.ko");
    let orig = std::fs::read(&ko).unwrap();
    assert!(same_build(&orig, &orig));

    // dracut 059's strip: debug sections, their symbols and relocations go.
    let stripped = t.path().join("stripped.ko");
    sh(
        &format!("strip -g -o '{}' '{}'", stripped.display(), ko.display()),
        t.path(),
    );
    let stripped = std::fs::read(&stripped).unwrap();
    assert_ne!(
        orig, stripped,
        "strip -g changed nothing: the test cannot tell"
    );
    assert!(same_build(&orig, &stripped));

    // Another build: its .modinfo says another vermagic (as a DKMS or
    // MOFED build of the same module does); or its code differs.
    for (section, what) in [(".modinfo", "vermagic="), (".text", "")] {
        let file = t.path().join("section");
        sh(
            &format!(
                "objcopy -O binary --only-section={section} mlx5_ib.ko '{}'",
                file.display()
            ),
            t.path(),
        );
        let mut bytes = std::fs::read(&file).unwrap();
        let at = if what.is_empty() {
            bytes.len() / 2
        } else {
            let w = what.as_bytes();
            bytes.windows(w.len()).position(|x| x == w).unwrap() + w.len()
        };
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        std::fs::write(&file, &bytes).unwrap();
        sh(
            &format!(
                "objcopy --update-section {section}='{}' mlx5_ib.ko rebuilt.ko",
                file.display()
            ),
            t.path(),
        );
        let rebuilt = std::fs::read(t.path().join("rebuilt.ko")).unwrap();
        assert!(!same_build(&orig, &rebuilt), "{section} changed");
        assert!(!same_build(&stripped, &rebuilt), "{section} changed");
    }

    // Not modules at all.
    assert!(!same_build(b"", b""));
    assert!(!same_build(b"\x7fELF", b"\x7fELF"));
}

/// verify: an image whose module a generator stripped passes; one holding
/// another build of it names the module.
#[test]
fn verify_accepts_a_stripped_module_and_names_another_build() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("a.img");
    let mut args: Vec<String> = vec![
        "install".into(),
        "--output".into(),
        img.display().to_string(),
        "--compress".into(),
        "none".into(),
    ];
    args.extend(host_args(inp));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = run(&a);
    assert_eq!(code, 0, "{err}");

    let x = t.path().join("x");
    unpack(&img, &x, "cat");
    let ko = sh("find . -name mlx5_ib.ko", &x);
    assert_eq!(ko.lines().count(), 1, "{ko}");
    let ko = x.join(ko.trim());
    let repack = |name: &str| {
        let out = t.path().join(name);
        pack(&x, &out);
        out
    };
    let mut verify: Vec<String> = vec!["verify".into()];
    verify.extend(host_args(inp));
    let check = |img: &Path| {
        let mut v = verify.clone();
        v.push(img.display().to_string());
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        run(&v)
    };

    sh(&format!("strip -g '{}'", ko.display()), &x);
    let stripped = repack("stripped.img");
    let (code, out, err) = check(&stripped);
    assert_eq!(code, 0, "a stripped module is the same build: {out}{err}");

    // Another build: one byte of its .modinfo (vermagic) changed.
    sh(
        &format!(
            "objcopy -O binary --only-section=.modinfo '{0}' /dev/stdout | sed 's/vermagic=6/vermagic=0/' > '{1}.mi' && objcopy --update-section .modinfo='{1}.mi' '{0}' && rm '{1}.mi'",
            ko.display(),
            t.path().join("m").display()
        ),
        &x,
    );
    let other = repack("other.img");
    let (code, out, _) = check(&other);
    assert_eq!(code, 1, "another build must not verify: {out}");
    assert!(
        out.contains("module mlx5_ib (kernel/drivers/infiniband/hw/mlx5/mlx5_ib.ko): differs"),
        "{out}"
    );
    assert!(out.contains("missing 1 item(s)"), "only that module: {out}");
}

/// A DKMS (or MOFED) build of an in-tree RDMA module in updates/dkms, which
/// depmod chooses over the kernel's: a rule loading it is an RDMA rule, the
/// plan takes that build, `install` puts that
/// build in the image and verify accepts it; the kernel's own build in its
/// place does not verify. (The VM suites prove the same for dracut 059 and
/// 106 and for initramfs-tools, with an out-of-tree siw as well:
/// tests/netroot/run's dkms-module checks.)
#[test]
fn a_dkms_build_goes_in_as_depmod_chose_it() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    let md = tree.join("lib/modules").join(&inp.kver);
    std::fs::create_dir_all(&md).unwrap();
    let src = inp.moddir(&inp.kroot);
    sh(
        &format!(
            "cp -al '{0}/kernel' '{1}/kernel' && find '{0}' -maxdepth 1 -type f -exec cp {{}} '{1}/' \\;",
            src.display(),
            md.display()
        ),
        t.path(),
    );
    let inbox = "kernel/drivers/infiniband/sw/rxe/rdma_rxe.ko";
    std::fs::create_dir_all(md.join("updates/dkms")).unwrap();
    sh(
        &format!(
            "objcopy -O binary --only-section=.modinfo '{0}' mi && printf 'version=9.9-dkms\\0' >> mi && objcopy --update-section .modinfo=mi '{0}' '{1}'",
            md.join(inbox).display(),
            md.join("updates/dkms/rdma_rxe.ko").display()
        ),
        t.path(),
    );
    sh(
        &format!("depmod -b '{}' '{}'", tree.display(), inp.kver),
        t.path(),
    );
    let (_keep, rdma_core) = crate::common::rdma_core_copy();
    // A NIC's rule that loads the RDMA half, which DKMS replaced: the rule
    // concerns RDMA although the module is outside drivers/infiniband/.
    let rules = rdma_core.join("etc/udev/rules.d");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("91-nic.rules"),
        "SUBSYSTEM==\"net\", ENV{ID_NET_DRIVER}==\"virtio_net\", RUN{builtin}+=\"kmod load rdma_rxe\"\n",
    )
    .unwrap();
    let sel: Vec<String> = [
        "--root",
        rdma_core.to_str().unwrap(),
        "--moddir",
        md.to_str().unwrap(),
        "--kver",
        &inp.kver,
        "--generic",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let with = |first: &[&str], extra: &[&str]| {
        let mut a: Vec<&str> = first.to_vec();
        a.extend(sel.iter().map(String::as_str));
        a.extend(extra);
        run(&a)
    };

    let (code, out, err) = with(&["plan", "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rxe = plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "rdma_rxe")
        .expect("rdma_rxe planned from the NIC's rule");
    assert_eq!(rxe["relpath"], "updates/dkms/rdma_rxe.ko", "{rxe}");

    let img = t.path().join("a.img");
    let (code, _, err) = with(
        &[
            "install",
            "--output",
            img.to_str().unwrap(),
            "--compress",
            "none",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let x = t.path().join("x");
    unpack(&img, &x, "cat");
    let found = sh("find . -name 'rdma_rxe.ko*' | LC_ALL=C sort", &x);
    assert_eq!(
        found.trim(),
        format!("./lib/modules/{}/updates/dkms/rdma_rxe.ko", inp.kver),
        "the image holds the build depmod chose, and only that"
    );
    let (code, out, err) = with(&["verify"], &[img.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");

    // The kernel's own build where depmod chose the DKMS one: named.
    std::fs::copy(
        md.join(inbox),
        x.join(format!("lib/modules/{}/updates/dkms/rdma_rxe.ko", inp.kver)),
    )
    .unwrap();
    let inbox_img = t.path().join("inbox.img");
    pack(&x, &inbox_img);
    let (code, out, _) = with(&["verify"], &[inbox_img.to_str().unwrap()]);
    assert_eq!(
        code, 1,
        "the inbox build must not pass for the DKMS one: {out}"
    );
    assert!(
        out.contains("module rdma_rxe (updates/dkms/rdma_rxe.ko): differs"),
        "{out}"
    );
}
