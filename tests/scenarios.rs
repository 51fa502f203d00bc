//! Offline scenario tests: no network, no downloaded kernel. A small
//! synthetic module tree is generated from `tests/scenarios/kernel/`, and
//! every `tests/scenarios/<name>/` holding an `args` file is run against it
//! and compared, whole text, with its expected files
//! (`BLESS=1 cargo test --release --locked --test scenarios` rewrites them).
//! See `tests/scenarios/README.md`.

#[path = "scenarios/case.rs"]
mod case;
#[path = "scenarios/diff.rs"]
mod diff;
#[path = "scenarios/elf.rs"]
mod elf;
#[path = "scenarios/mktree.rs"]
mod mktree;
#[path = "scenarios/overlay.rs"]
mod overlay;
#[path = "scenarios/spec.rs"]
mod spec;
#[path = "scenarios/summary.rs"]
mod summary;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenarios_dir() -> PathBuf {
    repo().join("tests/scenarios")
}

/// The generated tree, kept while the `TempDir` lives.
fn generated_tree() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::Builder::new()
        .prefix("rdma-initrd-ktree")
        .tempdir()
        .expect("a temporary directory");
    let moddir = mktree::write_tree(&scenarios_dir().join("kernel"), t.path())
        .unwrap_or_else(|e| panic!("generating the module tree: {e}"));
    (t, moddir)
}

/// Scenario directories (those holding an `args` file), sorted.
fn scenario_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("tests/scenarios")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.join("args").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Run `f` on every item on all cores; results in item order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers.min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().expect("results")[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

#[test]
fn every_scenario_gives_its_expected_output() {
    let (tree, _) = generated_tree();
    let ctx = case::Context {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_rdma-initrd")),
        repo: repo(),
        dir: scenarios_dir(),
        ktree: tree.path().to_path_buf(),
        bless: std::env::var_os("BLESS").is_some_and(|v| v == "1"),
    };
    let dirs = scenario_dirs();
    assert!(dirs.len() >= 30, "only {} scenarios found", dirs.len());
    let results = par_map(&dirs, |d| case::run(&ctx, d));
    let mut failures: Vec<String> = dirs
        .iter()
        .zip(results)
        .filter_map(|(d, r)| r.err().map(|e| format!("=== scenario {}\n{e}", name(d))))
        .collect();
    // After the runs: with BLESS=1, the files just written are checked.
    failures.extend(hostonly_verdict_mismatches());
    for f in &failures {
        eprintln!("{f}\n");
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed (see above; BLESS=1 rewrites the expected files)",
        failures.len(),
        dirs.len()
    );
}

fn name(dir: &Path) -> String {
    dir.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The host-only machines of `tests/fixtures/hostonly/`, which are also
/// scenarios of the same name.
const MACHINES: &[&str] = &[
    "bnxt",
    "cx3-eth",
    "cx5",
    "cx5-blacklist-iser",
    "cx5-loaded",
    "e810",
    "hfi1",
    "none",
    "x722",
];

/// The `expected.json` of each host-only scenario must agree with the
/// machine's hand-written verdict (`tests/fixtures/hostonly/*/expected`),
/// so that `BLESS=1` cannot make a wrong host-only plan expected.
fn hostonly_verdict_mismatches() -> Vec<String> {
    let read =
        |p: PathBuf| std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()));
    let check = |machine: &str| -> Result<(), String> {
        let json = read(scenarios_dir().join(machine).join("expected.json"))?;
        let plan: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("{machine}/expected.json: {e}"))?;
        let fixture = repo().join("tests/fixtures/hostonly").join(machine);
        let (got, want) = (
            summary::of_plan(&plan),
            summary::of_fixture(&read(fixture.join("expected"))?),
        );
        if got == want {
            return Ok(());
        }
        Err(format!(
            "{machine}/expected.json disagrees with tests/fixtures/hostonly/{machine}/expected:\n{}",
            diff::unified(&want, &got, 3)
        ))
    };
    MACHINES
        .iter()
        .filter_map(|m| check(m).err().map(|e| format!("=== scenario {m}\n{e}")))
        .collect()
}

/// Each generated module, read back through rdma-initrd's own reader
/// (decompression by magic bytes, `.modinfo` through the section headers),
/// holds exactly the records the spec gives it.
#[test]
fn generated_modules_read_back_through_the_crate() {
    use rdma_initrd::kmod::{compress, modinfo};
    let (_t, moddir) = generated_tree();
    let text = std::fs::read_to_string(scenarios_dir().join("kernel/modules.txt")).unwrap();
    let modules = spec::parse_modules(&text).unwrap();
    assert!(
        (40..=80).contains(&modules.len()),
        "{} modules",
        modules.len()
    );
    for m in &modules {
        let bytes = std::fs::read(moddir.join(&m.path)).unwrap();
        let plain = compress::decompress(&bytes, 1 << 20).unwrap();
        let info = modinfo::parse_elf(&plain).unwrap_or_else(|e| panic!("{}: {e}", m.path));
        let got: Vec<String> = info
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(got, mktree::modinfo_records(m), "{}", m.path);
    }
}

/// The spec's PCI and auxiliary aliases each match a device of a host-only
/// fixture (the tree holds only what the machines need).
#[test]
fn every_device_alias_matches_a_fixture_device() {
    let text = std::fs::read_to_string(scenarios_dir().join("kernel/modules.txt")).unwrap();
    let modaliases = fixture_modaliases(&repo().join("tests/fixtures/hostonly"));
    assert!(modaliases.len() > 10, "{modaliases:?}");
    for m in spec::parse_modules(&text).unwrap() {
        for alias in m
            .get_all("alias")
            .filter(|a| a.starts_with("pci:") || a.starts_with("auxiliary:"))
        {
            assert!(
                modaliases.iter().any(|d| glob_match(alias, d)),
                "{}: alias {alias} matches no fixture device",
                m.path
            );
        }
    }
}

/// The `modalias` files under the fixtures' `sys/devices`.
fn fixture_modaliases(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let (p, kind) = (e.path(), e.file_type().unwrap());
        if kind.is_dir() {
            out.extend(fixture_modaliases(&p));
        } else if kind.is_file() && e.file_name() == "modalias" {
            out.push(std::fs::read_to_string(&p).unwrap().trim().to_string());
        }
    }
    out
}

/// `*` matches any run of characters; everything else itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob_match(rest, &tail[i..]))
        }
    }
}
