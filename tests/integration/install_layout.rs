//! `make install` into a DESTDIR lands where dracut, mkinitcpio,
//! initramfs-tools, modprobe, man and the shells look; `make uninstall` removes it all.

use crate::common::repo;
use std::collections::BTreeSet;
use std::process::Command;

fn make(args: &[&str]) {
    let o = Command::new("make")
        .current_dir(repo())
        .args(args)
        .output()
        .expect("make");
    assert!(
        o.status.success(),
        "make {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn make_install_honours_destdir_and_the_directory_variables() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().to_str().unwrap();
    make(&[
        "install",
        &format!("DESTDIR={d}"),
        "PREFIX=/usr",
        "SYSCONFDIR=/etc",
    ]);
    let files: BTreeSet<String> = walkdir::WalkDir::new(t.path())
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| format!("/{}", e.path().strip_prefix(t.path()).unwrap().display()))
        .collect();
    let want: BTreeSet<String> = [
        "/usr/bin/rdma-initrd",
        "/usr/lib/dracut/modules.d/50rdma-initrd/module-setup.sh",
        "/usr/lib/dracut/dracut.conf.d/50-rdma-initrd.conf",
        "/usr/lib/initcpio/install/rdma-initrd",
        "/usr/lib/initcpio/hooks/rdma-initrd",
        "/usr/share/initramfs-tools/hooks/rdma-initrd",
        "/usr/lib/modprobe.d/rdma-initrd.conf",
        "/usr/lib/kernel/install.d/55-rdma-initrd.install",
        "/usr/share/man/man8/rdma-initrd.8",
        "/usr/share/man/man8/rdma-initrd-detect.8",
        "/usr/share/man/man8/rdma-initrd-plan.8",
        "/usr/share/man/man8/rdma-initrd-modules.8",
        "/usr/share/man/man8/rdma-initrd-files.8",
        "/usr/share/man/man8/rdma-initrd-install.8",
        "/usr/share/man/man8/rdma-initrd-verify.8",
        "/usr/share/man/man8/rdma-initrd-inspect.8",
        "/usr/share/man/man8/rdma-initrd-kernel-install.8",
        "/usr/share/bash-completion/completions/rdma-initrd",
        "/usr/share/zsh/vendor-completions/_rdma-initrd",
        "/usr/share/fish/vendor_completions.d/rdma-initrd.fish",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(files, want);
    // The installed binary runs; the man page and completions come from clap.
    let v = Command::new(t.path().join("usr/bin/rdma-initrd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("rdma-initrd "));
    let man = std::fs::read_to_string(t.path().join("usr/share/man/man8/rdma-initrd.8")).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH rdma-initrd"),
        "{}",
        &man[..200.min(man.len())]
    );
    let bash = std::fs::read_to_string(
        t.path()
            .join("usr/share/bash-completion/completions/rdma-initrd"),
    )
    .unwrap();
    for sub in ["detect", "plan", "modules", "files", "install", "verify"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    // Another layout: custom dracut and mkinitcpio directories.
    let t2 = tempfile::tempdir().unwrap();
    let d2 = t2.path().to_str().unwrap();
    make(&[
        "install",
        &format!("DESTDIR={d2}"),
        "PREFIX=/opt/r",
        "DRACUTMODDIR=/usr/lib/dracut/modules.d",
        "INITCPIODIR=/etc/initcpio",
        "INITRAMFSTOOLSDIR=/etc/initramfs-tools",
    ]);
    assert!(t2.path().join("opt/r/bin/rdma-initrd").is_file());
    assert!(t2
        .path()
        .join("usr/lib/dracut/modules.d/50rdma-initrd/module-setup.sh")
        .is_file());
    assert!(t2.path().join("etc/initcpio/install/rdma-initrd").is_file());
    assert!(t2
        .path()
        .join("etc/initramfs-tools/hooks/rdma-initrd")
        .is_file());
    // Uninstall leaves no file behind.
    make(&[
        "uninstall",
        &format!("DESTDIR={d}"),
        "PREFIX=/usr",
        "SYSCONFDIR=/etc",
    ]);
    let left = walkdir::WalkDir::new(t.path())
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count();
    assert_eq!(left, 0);
}

/// Every command's --help gives an example.
#[test]
fn every_help_has_an_example() {
    for sub in [
        "detect", "plan", "modules", "files", "install", "verify", "inspect",
    ] {
        let o = Command::new(crate::common::bin())
            .args([sub, "--help"])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("Example"),
            "{sub} --help has no example:\n{out}"
        );
    }
    let o = Command::new(crate::common::bin())
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("Examples:"));
}
