//! Host-only fixture trees: each `tests/fixtures/hostonly/<scenario>/` has a
//! `root/` (a sysfs laid out as the kernel does, and any files the scenario
//! adds) overlaid on Debian's rdma-core, and an `expected` file beside it,
//! written by hand: the RDMA modules and protocols the scenario must give.
//! A `base` file names a scenario whose root is laid down first.

use crate::common::{copy_tree, inputs, rdma_core_copy, repo, run_on};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn fixtures() -> std::path::PathBuf {
    repo().join("tests/fixtures/hostonly")
}

/// The summary compared with `expected`.
fn summary(plan: &Value) -> String {
    let top_kinds = ["rule", "conf", "modalias", "loaded", "requested"];
    let mut hardware = BTreeSet::new();
    let mut modules = BTreeSet::new();
    for m in plan["modules"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        for r in m["reasons"].as_array().unwrap() {
            let k = r["kind"].as_str().unwrap();
            if top_kinds.contains(&k) {
                modules.insert(name.to_string());
            }
            if matches!(k, "rule" | "modalias" | "loaded") {
                hardware.insert(name.to_string());
            }
        }
    }
    let list = |v: &Value, key: &str| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x[key].as_str().unwrap().to_string())
            .collect()
    };
    let protocols: BTreeSet<String> = plan["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let excluded: BTreeSet<String> = plan["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} ({}:{})",
                e["name"].as_str().unwrap(),
                e["file"].as_str().unwrap(),
                e["line"]
            )
        })
        .collect();
    let j = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>().join(" ");
    let text = format!(
        "hardware: {}\nprotocols: {}\nmodules: {}\nnot_found: {}\nexcluded: {}\n",
        j(hardware),
        j(protocols),
        j(modules),
        j(list(&plan["not_found"], "request")),
        j(excluded)
    );
    text.lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

fn read_expected(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("expected"))
        .unwrap_or_else(|e| panic!("{}/expected: {e}", dir.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

fn lay_root(scenario: &Path, dest: &Path) {
    if let Ok(base) = std::fs::read_to_string(scenario.join("base")) {
        lay_root(&fixtures().join(base.trim()), dest);
    }
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", scenario.join("root").display()))
        .arg(dest)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Debian's rdma-core with a scenario's root laid over it.
fn scenario_root(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, root) = rdma_core_copy();
    lay_root(&fixtures().join(name), &root);
    (t, root)
}

fn plan_for(scenario: &Path) -> Value {
    let (_t, root) = rdma_core_copy();
    lay_root(scenario, &root);
    let (code, out, err) = run_on(&root, &["plan", "--json", "--hostonly"]);
    assert_eq!(code, 0, "{}: {err}", scenario.display());
    serde_json::from_str(&out).unwrap()
}

#[test]
fn every_scenario_gives_its_expected_plan() {
    let mut failures = Vec::new();
    let mut n = 0;
    for e in std::fs::read_dir(fixtures()).unwrap() {
        let dir = e.unwrap().path();
        if !dir.join("expected").is_file() {
            continue;
        }
        n += 1;
        let plan = plan_for(&dir);
        let got = summary(&plan);
        let want = read_expected(&dir);
        if got != want {
            failures.push(format!(
                "{}:\n--- expected\n{want}--- got\n{got}",
                dir.display()
            ));
        }
        assert_eq!(plan["mode"], "hostonly");
    }
    assert!(n >= 8, "expected at least 8 scenarios, found {n}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn detect_says_no_rdma_hardware() {
    let (_t, root) = scenario_root("none");
    let (code, out, err) = run_on(&root, &["detect"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "no RDMA hardware found\n");
}

#[test]
fn mlx4_en_is_derived_and_said() {
    let (_t, root) = scenario_root("cx3-eth");
    let (code, out, err) = run_on(&root, &["detect"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("enp4s0 (net, ID_NET_DRIVER mlx4_en)"), "{out}");
    assert!(
        out.contains("bound to mlx4_core, whose module is held by mlx4_en"),
        "{out}"
    );
    assert!(
        out.contains("loads     mlx4_ib by /lib/udev/rules.d/90-rdma-hw-modules.rules:15"),
        "{out}"
    );
}

/// A profile saved by `detect --json` on one machine plans, on another root,
/// exactly what host-only planning gave on the first; profiles add up.
#[test]
fn profiles_reproduce_hostonly_and_union() {
    let inp = inputs();
    let moddir = inp.moddir(&inp.kroot);
    let t = tempfile::tempdir().unwrap();
    let mut profiles = Vec::new();
    let mut union_hw = BTreeSet::new();
    for s in ["cx5", "hfi1"] {
        let root = t.path().join(s);
        copy_tree(&inp.rdma_core, &root);
        lay_root(&fixtures().join(s), &root);
        let (code, out, err) = run_on(&root, &["detect", "--json"]);
        assert_eq!(code, 0, "{err}");
        let prof = t.path().join(format!("{s}.json"));
        std::fs::write(&prof, &out).unwrap();
        let host = plan_for(&fixtures().join(s));
        let from_profile = crate::rdma_core::plan_json(
            &inp.rdma_core,
            &moddir,
            &["--profile", prof.to_str().unwrap()],
        );
        assert_eq!(
            summary(&from_profile),
            summary(&host),
            "{s}: profile plan differs from host-only plan"
        );
        union_hw.extend(crate::rdma_core::module_names(&host));
        profiles.push(prof);
    }
    let both = crate::rdma_core::plan_json(
        &inp.rdma_core,
        &moddir,
        &[
            "--profile",
            profiles[0].to_str().unwrap(),
            "--profile",
            profiles[1].to_str().unwrap(),
        ],
    );
    assert_eq!(both["mode"], "selected");
    assert_eq!(crate::rdma_core::module_names(&both), union_hw);
}

#[test]
fn sysfs_loops_and_junk_are_reported_not_fatal() {
    let (_t, root) = scenario_root("cx5");
    let net = root.join("sys/class/net");
    std::os::unix::fs::symlink("loop-b", net.join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", net.join("loop-b")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", net.join("escape")).unwrap();
    let (code, out, err) = run_on(&root, &["plan", "-v", "--hostonly"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("class/net/loop-a: too many levels of symbolic links"),
        "{err}"
    );
    assert!(
        err.contains("class/net/escape: not a device directory"),
        "{err}"
    );
    assert!(out.contains("mlx5_ib"));
}

#[test]
fn explain_prints_the_chain_from_device_to_module() {
    let (_t, root) = scenario_root("cx5");
    let (code, out, err) = run_on(&root, &["plan", "--explain", "--hostonly"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0 -> rule /lib/udev/rules.d/90-rdma-hw-modules.rules:42 (kmod load mlx5_ib) -> mlx5_ib -> mlx5_core (dependency)"), "{out}");
    assert!(out.contains("/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/mlx5_core.rdma.0 -> modalias auxiliary:mlx5_core.rdma -> mlx5_ib\n"), "{out}");
    assert!(
        out.contains("/etc/rdma/modules/rdma.conf:18 (xprtrdma) -> rpcrdma -> sunrpc (dependency)"),
        "{out}"
    );
}

/// The fixture trees are laid out as the kernel does: relative symlinks that
/// resolve inside each tree, uevent DRIVER/MODALIAS agreeing with the links.
#[test]
fn fixture_trees_are_consistent() {
    let out = std::process::Command::new("bash")
        .arg(fixtures().join("check-trees.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
