//! The generator hooks, run for real (the mkinitcpio one under stand-ins
//! that do to a tree what mkinitcpio's functions do): the image tree they
//! make must hold exactly what the plan says, from the plan's sources, so
//! no check here repeats how a hook routes a line.

use crate::common::{inputs, rdma_core_copy, repo, run};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Run the mkinitcpio hook (systemd hook present or not) with
/// RDMA_INITRD_ARGS `args`; (the calls it made, its tree).
pub fn mkinitcpio(systemd: bool, args: &[&str], buildroot: &Path) -> String {
    let inp = inputs();
    let log = buildroot.with_extension("log");
    let bindir = crate::common::bin().parent().unwrap().to_path_buf();
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("tests/mkinitcpio/harness.sh"))
        .arg(repo().join("mkinitcpio/install/rdma-initrd"))
        .arg(&log)
        .arg(buildroot)
        .arg(&inp.kver)
        .arg(inp.moddir(&inp.kroot));
    if systemd {
        cmd.arg("systemd");
    }
    cmd.arg("--").args(args);
    let path = format!(
        "{}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = cmd.env("PATH", path).output().unwrap();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        o.status.success(),
        "hook failed: {}\n{calls}",
        String::from_utf8_lossy(&o.stderr)
    );
    calls
}

/// The plan the hook should have followed: what the CLI says for the same
/// generator, init and selection.
pub fn plan_for(systemd: bool, args: &[&str]) -> Value {
    let inp = inputs();
    let md = inp.moddir(&inp.kroot);
    let mut a = vec![
        "plan",
        "--json",
        "--generator",
        "mkinitcpio",
        "--default-selection",
        "generic",
        "--kver",
        &inp.kver,
        "--moddir",
        md.to_str().unwrap(),
        "--init",
        if systemd { "systemd" } else { "udev" },
    ];
    a.extend(args);
    let (code, out, err) = run(&a);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// Every planned file is in the tree with the plan source's bytes (but a
/// program's libraries, which mkinitcpio's add_binary installs by its own
/// resolver and the stand-in does not follow); every module was added;
/// wants are links to the template; preloads are listed for the runtime
/// hook.
fn assert_tree_is_the_plan(plan: &Value, calls: &str, tree: &Path) {
    assert!(!calls.contains("error"), "{calls}");
    for m in plan["modules"].as_array().unwrap() {
        if !m["builtin"].as_bool().unwrap() {
            let l = format!("add_module {}", m["name"].as_str().unwrap());
            assert!(calls.lines().any(|c| c == l), "{l} not called:\n{calls}");
        }
    }
    for f in plan["files"].as_array().unwrap() {
        if f["kind"] == "library" {
            continue;
        }
        let dest = f["dest"].as_str().unwrap();
        let got = std::fs::read(tree.join(dest.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("{dest} ({}) not in the tree: {e}\n{calls}", f["kind"]));
        let want = match f["text"].as_str() {
            Some(t) => t.as_bytes().to_vec(),
            None => {
                let src = f["source"].as_str().unwrap();
                match src.strip_prefix("embedded:") {
                    Some(name) => std::fs::read(repo().join("units").join(name)).unwrap(),
                    None => std::fs::read(src).unwrap(),
                }
            }
        };
        assert!(got == want, "{dest}: not the bytes of {}", f["source"]);
    }
    for w in plan["wants"].as_array().unwrap() {
        let link = tree
            .join("etc/systemd/system/initrd.target.wants")
            .join(w.as_str().unwrap());
        let target =
            std::fs::read_link(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
        assert!(
            target.ends_with("rdma-load-modules@.service"),
            "{}",
            target.display()
        );
    }
    for l in plan["preload"].as_array().unwrap() {
        let list = std::fs::read_to_string(tree.join(l["list"].as_str().unwrap())).unwrap();
        assert!(
            list.lines().any(|x| x == l["module"]),
            "{} not in {list}",
            l["module"]
        );
        assert!(
            tree.join("hooks/rdma-initrd").is_file(),
            "runtime hook not added"
        );
    }
}

#[test]
fn mkinitcpio_hook_builds_the_plan_with_or_without_systemd() {
    for systemd in [true, false] {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let args = ["--root", "/"];
        let calls = mkinitcpio(systemd, &args, &root);
        let plan = plan_for(systemd, &args);
        assert_tree_is_the_plan(&plan, &calls, &root);
        // With the udev hook, a rules file loads what the units would.
        let generated = root.join("usr/lib/udev/rules.d/99-rdma-initrd-no-systemd.rules");
        assert_eq!(generated.is_file(), !systemd);
        assert_eq!(
            root.join("lib/systemd/system/rdma-hw.target").exists()
                || root.join("usr/lib/systemd/system/rdma-hw.target").exists(),
            systemd
        );
    }
}

/// The bug this catches: files the plan takes from `--root` were added as
/// the host's paths, so the image got the host's rules, not the root's.
#[test]
fn mkinitcpio_hook_takes_the_files_of_the_root_it_is_given() {
    let (_t, root) = rdma_core_copy();
    let rule = root.join("lib/udev/rules.d/90-rdma-hw-modules.rules");
    let mut text = std::fs::read_to_string(&rule).unwrap();
    text.push_str("# this root's own copy\n");
    std::fs::write(&rule, &text).unwrap();
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    let r = root.to_str().unwrap();
    let calls = mkinitcpio(true, &["--root", r, "--generic"], &tree);
    let plan = plan_for(true, &["--root", r, "--generic"]);
    assert_tree_is_the_plan(&plan, &calls, &tree);
    let got =
        std::fs::read_to_string(tree.join("lib/udev/rules.d/90-rdma-hw-modules.rules")).unwrap();
    assert!(got.ends_with("# this root's own copy\n"));
}

/// The bug this catches: with the udev hook, `--protocol` lists were put in
/// the image but nothing loaded them; and `RDMA_INITRD_ARGS=(--config x)`
/// turned a generic image host-only.
#[test]
fn mkinitcpio_udev_hook_loads_protocol_lists_and_keeps_the_default() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    let r = inputs().rdma_core.to_str().unwrap().to_string();
    let args = ["--root", &r, "--protocol", "infiniband"];
    let calls = mkinitcpio(false, &args, &tree);
    let plan = plan_for(false, &args);
    assert!(!plan["preload"].as_array().unwrap().is_empty());
    assert_tree_is_the_plan(&plan, &calls, &tree);
    assert!(calls.lines().any(|l| l == "add_runscript"), "{calls}");
    let hook = std::fs::read_to_string(tree.join("hooks/rdma-initrd")).unwrap();
    assert!(
        hook.contains(plan["preload"][0]["list"].as_str().unwrap()),
        "the runtime hook reads another list"
    );

    let conf = t.path().join("x.conf");
    std::fs::write(&conf, "options ib_core recv_queue_size=512\n").unwrap();
    let c = conf.to_str().unwrap();
    // On the running system (root /) the tool's own default is host-only.
    let args = ["--root", "/", "--config", c];
    let tree2 = t.path().join("tree2");
    let calls = mkinitcpio(true, &args, &tree2);
    let plan = plan_for(true, &args);
    assert_eq!(plan["mode"], "generic");
    assert_tree_is_the_plan(&plan, &calls, &tree2);
}

/// The bug this catches: the dracut module scanned rdma_initrd_args for
/// selection flags and missed `--profile=F`, so the user got the generic
/// set plus the profile. The default selection is now the tool's decision.
#[test]
fn dracut_module_leaves_the_selection_to_rdma_initrd() {
    use crate::images::{dracut, host_args, sh};
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let fixture = repo().join("tests/fixtures/hostonly/cx5/root/sys");
    let (code, profile, err) = run(&[
        "detect",
        "--json",
        "--sysfs",
        fixture.to_str().unwrap(),
        "--moddir",
        inp.moddir(&inp.kroot).to_str().unwrap(),
        "--kver",
        &inp.kver,
    ]);
    assert_eq!(code, 0, "{err}");
    let prof = t.path().join("cx5.json");
    std::fs::write(&prof, profile).unwrap();
    let conf = t.path().join("conf.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("rdma.conf"),
        format!("rdma_initrd_args=(--profile={})\n", prof.display()),
    )
    .unwrap();
    let img = t.path().join("initrd.img");
    dracut(
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
    );
    let listing = sh(&format!("lsinitrd '{}'", img.display()), t.path());
    assert!(
        listing.contains("mlx5_ib.ko"),
        "the profile's provider is missing"
    );
    assert!(
        !listing.contains("qedr.ko"),
        "a generic image's provider is there"
    );
    let mut a = vec!["verify".to_string(), img.display().to_string()];
    a.extend(host_args(inp).into_iter().filter(|x| x != "--generic"));
    a.extend([
        "--generator".into(),
        "dracut".into(),
        format!("--profile={}", prof.display()),
    ]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, out, err) = run(&a);
    assert_eq!(code, 0, "{out}{err}");
}
