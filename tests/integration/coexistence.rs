//! rdma-initrd beside rdma-core's own dracut module (50rdma, rdma-core v61+
//! on Fedora, RHEL and SUSE). A stand-in that does what 50rdma does
//! (tests/dracut/50rdma: check() yes in host-only mode where a uverbs node
//! exists, whole driver directories) sits in a private dracut tree with
//! rdma-initrd's module and its dracut.conf.d file; the RDMA host is a sysfs
//! fixture (a loaded ConnectX-5). The tree holds only the modules an image
//! needs here (bash, udev-rules, base) so that dracut's own choice, by
//! check(), is what is tested; no systemd: the plan is `--init udev`.

use crate::common::{inputs, repo, run};
use crate::images::sh;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The loaded ConnectX-5 fixture: /sys/class/infiniband_verbs/uverbs0 exists.
fn fixture() -> std::path::PathBuf {
    repo().join("tests/fixtures/hostonly/cx5-loaded/root/sys")
}

/// A private dracut tree: bash, udev-rules and base from the system's
/// dracut, the stand-in 50rdma, and (`with_rdma_initrd`) rdma-initrd's module
/// and dracut.conf.d file as `make install` puts them.
fn dracut_tree(dir: &Path, with_rdma_initrd: bool) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let base = dir.join("dracut");
    sh(
        &format!(
            "cp -a /usr/lib/dracut '{b}' && rm -rf '{b}'/modules.d/* '{b}'/dracut.conf.d/* && \
             cp -a /usr/lib/dracut/modules.d/00bash /usr/lib/dracut/modules.d/95udev-rules \
             /usr/lib/dracut/modules.d/99base '{s}' '{b}/modules.d/'",
            b = base.display(),
            s = repo().join("tests/dracut/50rdma").display(),
        ),
        dir,
    );
    if with_rdma_initrd {
        sh(
            &format!(
                "cp -a '{m}' '{b}/modules.d/' && mkdir -p '{b}/dracut.conf.d' && cp '{c}' '{b}/dracut.conf.d/'",
                m = repo().join("dracut/50rdma-initrd").display(),
                c = repo().join("dracut/50-rdma-initrd.conf").display(),
                b = base.display()
            ),
            dir,
        );
    }
    base
}

/// The .ko files of a dracut image built from `tree`, modules chosen by
/// dracut (no -m), with `args`; the confdir (/etc/dracut.conf.d) points
/// rdma-initrd at the fixture and holds `etc_confs` (name, content).
fn image_modules(
    dir: &Path,
    tree: &Path,
    name: &str,
    args: &[&str],
    etc_confs: &[(&str, &str)],
) -> BTreeSet<String> {
    let inp = inputs();
    let conf = dir.join(format!("conf-{name}"));
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("rdma-initrd-fixture.conf"),
        format!("rdma_initrd_args=(--sysfs '{}')\n", fixture().display()),
    )
    .unwrap();
    for (n, c) in etc_confs {
        std::fs::write(conf.join(n), c).unwrap();
    }
    let img = dir.join(format!("{name}.img"));
    let bindir = crate::common::bin().parent().unwrap().to_path_buf();
    let o = Command::new("dracut")
        .env("dracutbasedir", tree)
        .env("RDMA_STANDIN_SYSFS", fixture())
        .env(
            "DRACUT_PATH",
            format!("{} /sbin /bin /usr/sbin /usr/bin", bindir.display()),
        )
        .args([
            "--force",
            "--no-compress",
            "--no-early-microcode",
            "--conf",
            "/dev/null",
        ])
        .arg("--confdir")
        .arg(&conf)
        .args(["--omit", "systemd", "--kver", &inp.kver, "--kmoddir"])
        .arg(inp.moddir(&inp.kroot))
        .args(args)
        .arg(&img)
        .output()
        .expect("run dracut (apt-get install dracut-core)");
    assert!(
        o.status.success(),
        "dracut {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    sh(&format!("lsinitrd '{}'", img.display()), dir)
        .lines()
        .filter_map(|l| l.split_ascii_whitespace().nth(8))
        .filter(|p| p.contains(".ko"))
        .map(|p| {
            let f = p.rsplit('/').next().unwrap();
            f[..f.find(".ko").unwrap()].replace('-', "_")
        })
        .collect()
}

/// What rdma-initrd plans for the fixture (`--init udev`, as the module
/// plans without systemd).
fn planned(selection: &[&str]) -> BTreeSet<String> {
    let inp = inputs();
    let moddir = inp.moddir(&inp.kroot);
    let fx = fixture();
    let mut args = vec![
        "modules",
        "--init",
        "udev",
        "--root",
        "/",
        "--moddir",
        moddir.to_str().unwrap(),
        "--kver",
        &inp.kver,
        "--sysfs",
        fx.to_str().unwrap(),
        "-q",
    ];
    args.extend(selection);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    out.lines().map(|l| l.replace('-', "_")).collect()
}

/// Modules of 50rdma's whole directories that no plan needs here.
const EXTRAS: &[&str] = &[
    "hfi1",
    "cxgb4",
    "iw_cxgb4",
    "target_core_mod",
    "mlx4_ib",
    "usnic_verbs",
];

#[test]
fn with_rdma_initrd_an_image_does_not_also_carry_50rdma() {
    let t = tempfile::tempdir().unwrap();
    let hostonly_plan = planned(&["--hostonly"]);
    assert!(hostonly_plan.contains("mlx5_ib"), "{hostonly_plan:?}");

    // Without rdma-initrd, host-only on the RDMA host: the stand-in's check()
    // says yes and its whole directories are in (this test can fail).
    let plain = dracut_tree(&t.path().join("plain"), false);
    let got = image_modules(t.path(), &plain, "plain", &["--hostonly"], &[]);
    for m in EXTRAS {
        assert!(
            got.contains(*m),
            "the stand-in 50rdma did not add {m}: {got:?}"
        );
    }

    // With rdma-initrd: host-only (both check()s say yes) and --add
    // rdma-initrd in a generic image (where older 50rdma says yes too).
    let both = dracut_tree(&t.path().join("both"), true);
    let generic_plan = planned(&["--generic"]);
    for (name, args, plan) in [
        ("hostonly", &["--hostonly"][..], &hostonly_plan),
        (
            "generic",
            &["--no-hostonly", "--add", "rdma-initrd"][..],
            &generic_plan,
        ),
    ] {
        let got = image_modules(t.path(), &both, name, args, &[]);
        let missing: Vec<_> = plan.difference(&got).collect();
        assert!(
            missing.is_empty(),
            "{name}: planned, not in the image: {missing:?}"
        );
        let extra: Vec<_> = EXTRAS
            .iter()
            .filter(|m| got.contains(**m) && !plan.contains(**m))
            .collect();
        assert!(
            extra.is_empty(),
            "{name}: 50rdma's whole directories are in: {extra:?}"
        );
        let unplanned: Vec<_> = got.difference(plan).collect();
        assert!(
            unplanned.is_empty(),
            "{name}: modules no plan asked for: {unplanned:?}"
        );
    }

    // An empty /etc/dracut.conf.d/50-rdma-initrd.conf brings 50rdma back,
    // as the file says.
    let got = image_modules(
        t.path(),
        &both,
        "override",
        &["--hostonly"],
        &[("50-rdma-initrd.conf", "")],
    );
    assert!(got.contains("hfi1") && got.contains("mlx5_ib"), "{got:?}");
}
