//! Differential tests against kmod itself on a real Debian kernel tree:
//! every module's probe list equals `modprobe --show-depends`, and every
//! `.modinfo` field equals `modinfo`, for the tree as shipped and
//! recompressed with xz and zstd.

use crate::common::{inputs, par_map};
use rdma_initrd::kmod::{ModDb, ModKind, SoftdepMode};
use rdma_initrd::root::Root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Insmod(String),
    Builtin(String),
}

fn modprobe_show_depends(empty_conf: &Path, kroot: &Path, kver: &str, name: &str) -> Vec<Step> {
    let out = Command::new("modprobe")
        .arg("-C")
        .arg(empty_conf)
        .arg("-d")
        .arg(kroot)
        .arg("-S")
        .arg(kver)
        .arg("--show-depends")
        .arg(name)
        .output()
        .expect("run modprobe (apt-get install kmod)");
    assert!(
        out.status.success(),
        "modprobe --show-depends {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut steps = Vec::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let mut w = l.split_ascii_whitespace();
        let s = match (w.next(), w.next()) {
            (Some("insmod"), Some(p)) => Step::Insmod(p.to_string()),
            (Some("builtin"), Some(n)) => Step::Builtin(n.to_string()),
            _ => panic!("unexpected modprobe output for {name}: {l}"),
        };
        // --show-depends can print a module twice (after a post softdep).
        if !steps.contains(&s) {
            steps.push(s);
        }
    }
    steps
}

fn ours(db: &ModDb, name: &str, mode: SoftdepMode) -> Vec<Step> {
    db.probe_list(name, mode, false)
        .into_iter()
        .filter_map(|it| match db.kind(&it.name) {
            ModKind::File(rel) => Some(Step::Insmod(db.file_path(&rel).display().to_string())),
            ModKind::Builtin => Some(Step::Builtin(it.name)),
            ModKind::Missing => None,
        })
        .collect()
}

/// The module database of `moddir` with the configuration of `root` (as
/// libkmod reads it; none of rdma-initrd's own).
fn open_db(root: &Root, moddir: &Path, kver: &str) -> ModDb {
    let mut w = Vec::new();
    let (config, _) = rdma_initrd::facts::modprobe::read(root, moddir, &[], None, &mut w).unwrap();
    ModDb::open(moddir, kver, config).unwrap().0
}

fn diff_tree(kroot: &Path) {
    let inp = inputs();
    let empty = tempfile::tempdir().unwrap();
    let conf = empty.path().join("modprobe.d");
    std::fs::create_dir(&conf).unwrap();
    let root = Root::new(empty.path());
    let moddir = inp.moddir(kroot);
    let db = open_db(&root, &moddir, &inp.kver);
    let names = db.module_names();
    assert!(
        names.len() > 3000,
        "a real tree has thousands of modules, got {}",
        names.len()
    );
    let results = par_map(&names, |n| {
        let theirs = modprobe_show_depends(&conf, kroot, &inp.kver, n);
        let first = ours(&db, n, SoftdepMode::First);
        let union = ours(&db, n, SoftdepMode::Union);
        (n.clone(), theirs, first, union)
    });
    let mut mismatches = Vec::new();
    let mut extras: BTreeMap<String, Vec<Step>> = BTreeMap::new();
    for (n, theirs, first, union) in &results {
        if theirs != first {
            mismatches.push(format!(
                "{n}:\n  modprobe: {theirs:?}\n  ours:     {first:?}"
            ));
        }
        let t: BTreeSet<&Step> = theirs.iter().collect();
        let u: BTreeSet<&Step> = union.iter().collect();
        if !t.is_subset(&u) {
            mismatches.push(format!(
                "{n}: union misses {:?}",
                t.difference(&u).collect::<Vec<_>>()
            ));
        }
        let extra: Vec<Step> = u.difference(&t).map(|s| (*s).clone()).collect();
        if !extra.is_empty() {
            extras.insert(n.clone(), extra);
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} modules differ from modprobe --show-depends in {}:\n{}",
        mismatches.len(),
        names.len(),
        kroot.display(),
        mismatches
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every extra module of the union must come from a softdep line that
    // libkmod skips because an earlier line for the same module won.
    for (n, extra) in &extras {
        eprintln!("softdep union adds to {n}: {extra:?}");
        let closure = db.probe_list(n, SoftdepMode::Union, false);
        for e in extra {
            let name = match e {
                Step::Insmod(p) => rdma_initrd::kmod::name::modname_from_path(p),
                Step::Builtin(b) => b.clone(),
            };
            assert!(
                via_softdep(&closure, &name),
                "{n}: extra {name} is not explained by a softdep"
            );
        }
    }
    eprintln!(
        "{}: {} modules equal to modprobe --show-depends; the softdep union adds modules to {}",
        kroot.display(),
        names.len(),
        extras.len()
    );
}

/// Whether `name` is in a probe list because of a softdep line: named by one,
/// or a dependency of a module that is (followed up the chain).
fn via_softdep(closure: &[rdma_initrd::kmod::ProbeItem], name: &str) -> bool {
    use rdma_initrd::kmod::Via;
    let mut cur = name.to_string();
    for _ in 0..closure.len() + 1 {
        match closure.iter().find(|i| i.name == cur).map(|i| &i.via) {
            Some(Via::SoftPre(..) | Via::SoftPost(..)) => return true,
            Some(Via::Dependency(of)) => cur = of.clone(),
            Some(Via::Requested) | None => return false,
        }
    }
    false
}

#[test]
fn via_softdep_follows_dependencies_up() {
    use rdma_initrd::kmod::{ProbeItem, Via};
    let o = rdma_initrd::kmod::config::Origin {
        file: "f".into(),
        line: 1,
    };
    let list = vec![
        ProbeItem {
            name: "d".into(),
            via: Via::Dependency("s".into()),
        },
        ProbeItem {
            name: "s".into(),
            via: Via::SoftPre("m".into(), o),
        },
        ProbeItem {
            name: "x".into(),
            via: Via::Dependency("m".into()),
        },
        ProbeItem {
            name: "m".into(),
            via: Via::Requested,
        },
    ];
    assert!(via_softdep(&list, "d"));
    assert!(via_softdep(&list, "s"));
    assert!(!via_softdep(&list, "x"));
    assert!(!via_softdep(&list, "m"));
    assert!(!via_softdep(&list, "absent"));
}

#[test]
fn probe_lists_equal_modprobe_plain() {
    diff_tree(&inputs().kroot);
}

#[test]
fn probe_lists_equal_modprobe_xz() {
    diff_tree(&inputs().kroot_xz);
}

#[test]
fn probe_lists_equal_modprobe_zstd() {
    diff_tree(&inputs().kroot_zst);
}

/// `modinfo -0 FILE`: `filename:<pad>PATH\0` then `key=value\0` records.
fn modinfo_fields(path: &Path) -> BTreeMap<String, Vec<String>> {
    let out = Command::new("modinfo")
        .arg("-0")
        .arg(path)
        .output()
        .expect("run modinfo");
    assert!(
        out.status.success(),
        "modinfo {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rec in out.stdout.split(|&b| b == 0) {
        let rec = String::from_utf8_lossy(rec);
        if rec.starts_with("filename:") {
            continue;
        }
        let Some((key, value)) = rec.split_once('=') else {
            continue;
        };
        m.entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }
    m
}

const FIELDS: &[&str] = &[
    "firmware", "softdep", "weakdep", "depends", "alias", "vermagic",
];

fn modinfo_tree(kroot: &Path) {
    let inp = inputs();
    let empty = tempfile::tempdir().unwrap();
    let db = open_db(&Root::new(empty.path()), &inp.moddir(kroot), &inp.kver);
    let files: Vec<std::path::PathBuf> = db
        .module_names()
        .into_iter()
        .filter_map(|n| match db.kind(&n) {
            ModKind::File(rel) => Some(db.file_path(&rel)),
            _ => None,
        })
        .collect();
    let bad: Vec<String> = par_map(&files, |p| {
        let theirs = modinfo_fields(p);
        let mi = rdma_initrd::facts::lookups::read_module_file(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .info;
        let mut diffs = Vec::new();
        for f in FIELDS {
            let mut ours: Vec<String> = mi.get_all(f).map(str::to_string).collect();
            let mut t = theirs.get(*f).cloned().unwrap_or_default();
            ours.sort();
            t.sort();
            if ours != t {
                diffs.push(format!(
                    "{}: {f}: modinfo {t:?}, ours {ours:?}",
                    p.display()
                ));
            }
        }
        diffs
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(
        bad.is_empty(),
        "{} field differences:\n{}",
        bad.len(),
        bad.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    eprintln!(
        "{}: .modinfo of {} files equal to modinfo",
        kroot.display(),
        files.len()
    );
}

#[test]
fn modinfo_equals_kmod_plain() {
    modinfo_tree(&inputs().kroot);
}

#[test]
fn modinfo_equals_kmod_xz() {
    modinfo_tree(&inputs().kroot_xz);
}

#[test]
fn modinfo_equals_kmod_zstd() {
    modinfo_tree(&inputs().kroot_zst);
}

/// With a modprobe.d of every command kind, lookups (config aliases first,
/// glob aliases, install commands, modules.alias) and the first-softdep rule
/// agree with modprobe too.
#[test]
fn config_semantics_equal_modprobe() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let conf = t.path().join("etc/modprobe.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("a-test.conf"),
        "alias my-rdma-alias mlx5_ib\nalias my-glob-* ib_umad\nsoftdep mlx5_ib pre: ib_uverbs post: rdma-ucm\nsoftdep mlx5_ib pre: ib_ipoib\nsoftdep rdma_rxe pre: crc32_generic\ninstall ib_qib /bin/true\noptions mlx4_core log_num_mgm_entry_size=-1\n",
    )
    .unwrap();
    // A later file's softdep for the same module loses under libkmod.
    std::fs::write(
        conf.join("z-test.conf"),
        "softdep ib_umad pre: ib_srp\nsoftdep ib_umad post: ib_isert\n",
    )
    .unwrap();
    let db = open_db(&Root::new(t.path()), &inp.moddir(&inp.kroot), &inp.kver);
    let names = [
        "my-rdma-alias",
        "my-glob-x",
        "mlx5_ib",
        "mlx5-ib",
        "ib_umad",
        "rdma_rxe",
        "ib_qib",
        "xprtrdma",
        "i40iw",
        "pci:v000015B3d00001017sv000015B3sd00000020bc02sc00i00",
        "auxiliary:ice.roce",
        "crypto-crc32c",
        "mlx4_core",
    ];
    for n in names {
        let out = Command::new("modprobe")
            .arg("-C")
            .arg(&conf)
            .arg("-d")
            .arg(&inp.kroot)
            .arg("-S")
            .arg(&inp.kver)
            .arg("--show-depends")
            .arg(n)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut theirs: Vec<String> = Vec::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let l = l.trim_end().to_string();
            if !theirs.contains(&l) {
                theirs.push(l);
            }
        }
        let mut ours: Vec<String> = Vec::new();
        for (m, _) in db.lookup(n).unwrap() {
            let list = db.probe_list(&m, SoftdepMode::First, false);
            let with_softdeps: BTreeSet<&str> = list
                .iter()
                .filter_map(|i| match &i.via {
                    rdma_initrd::kmod::Via::SoftPre(of, _)
                    | rdma_initrd::kmod::Via::SoftPost(of, _) => Some(of.as_str()),
                    _ => None,
                })
                .collect();
            for it in &list {
                let opts = db
                    .config
                    .options
                    .iter()
                    .filter(|o| o.module == it.name)
                    .map(|o| o.command.clone())
                    .collect::<Vec<_>>()
                    .join(" ");
                let line = match (db.config.install_command(&it.name), db.kind(&it.name)) {
                    // libkmod ignores the install command of a module with softdeps.
                    (Some(c), _) if !with_softdeps.contains(it.name.as_str()) => {
                        format!("install {} {opts}", c.command)
                    }
                    (_, ModKind::File(rel)) => {
                        format!("insmod {} {opts}", db.file_path(&rel).display())
                    }
                    (_, ModKind::Builtin) => format!("builtin {}", it.name),
                    (_, ModKind::Missing) => continue,
                };
                let line = line.trim_end().to_string();
                if !ours.contains(&line) {
                    ours.push(line);
                }
            }
        }
        assert_eq!(ours, theirs, "lookup and probe list of {n}");
    }
}

/// The binary indexes depmod writes hold exactly what its text files say.
#[test]
fn binary_indexes_equal_the_text_files() {
    let inp = inputs();
    let dir = inp.moddir(&inp.kroot);
    let read_bin =
        |n: &str| rdma_initrd::kmod::index_bin::dump(&std::fs::read(dir.join(n)).unwrap()).unwrap();
    let dep_bin: BTreeSet<String> =
        rdma_initrd::kmod::index_bin::dep_text(&read_bin("modules.dep.bin"))
            .lines()
            .map(str::to_string)
            .collect();
    let dep_txt: BTreeSet<String> = std::fs::read_to_string(dir.join("modules.dep"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(dep_bin, dep_txt);
    let norm = |t: &str| -> BTreeSet<(String, String)> {
        t.lines()
            .filter_map(|l| {
                let mut w = l.split_ascii_whitespace();
                match (w.next(), w.next(), w.next()) {
                    (Some("alias"), Some(a), Some(m)) => Some((
                        rdma_initrd::kmod::name::normalize_alias(a).ok()?,
                        rdma_initrd::kmod::name::normalize_modname(m),
                    )),
                    _ => None,
                }
            })
            .collect()
    };
    let alias_bin = norm(&rdma_initrd::kmod::index_bin::alias_text(&read_bin(
        "modules.alias.bin",
    )));
    let alias_txt = norm(&std::fs::read_to_string(dir.join("modules.alias")).unwrap());
    assert_eq!(alias_bin, alias_txt);
    assert!(alias_bin.len() > 10_000);
}

/// A string a glob pattern matches: `*` empty, `?` any byte, `[..]` its
/// first member.
fn instantiate(pat: &str) -> String {
    let mut out = String::new();
    let mut it = pat.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '*' => {}
            '?' => out.push('X'),
            '[' => {
                if matches!(it.peek(), Some('!') | Some('^')) {
                    it.next();
                    // A negated set: a byte unlikely to be in it.
                    out.push('~');
                    for d in it.by_ref() {
                        if d == ']' {
                            break;
                        }
                    }
                    continue;
                }
                let first = it.next().unwrap_or('x');
                out.push(first);
                for d in it.by_ref() {
                    if d == ']' {
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Searching modules.alias.bin in place (as libkmod does) gives the same
/// modules as matching every pattern of the text modules.alias.
#[test]
fn alias_trie_search_equals_text_matching() {
    let inp = inputs();
    let dir = inp.moddir(&inp.kroot);
    let text = std::fs::read_to_string(dir.join("modules.alias")).unwrap();
    let mut w = Vec::new();
    let file = rdma_initrd::kmod::alias::AliasFile::parse(&text, "modules.alias", &mut w);
    let bin = std::fs::read(dir.join("modules.alias.bin")).unwrap();
    let idx = rdma_initrd::kmod::index_bin::Index::open(&bin).unwrap();
    let mut keys: BTreeSet<String> = file
        .entries
        .iter()
        .step_by(15)
        .map(|(p, _)| instantiate(p))
        .collect();
    keys.extend(
        [
            "i40iw",
            "xprtrdma",
            "svcrdma",
            "crypto_crc32",
            "auxiliary:ice.roce",
            "auxiliary:mlx5_core.rdma",
            "no_such_alias",
        ]
        .map(String::from),
    );
    let mut n = 0;
    for k in &keys {
        let mut from_bin: Vec<String> = Vec::new();
        for (_, m) in idx.search_wild(k).unwrap() {
            let m = rdma_initrd::kmod::name::normalize_modname(&m);
            if !from_bin.contains(&m) {
                from_bin.push(m);
            }
        }
        let from_text = file.lookup(k);
        let (mut a, mut b) = (from_bin.clone(), from_text.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b, "{k}: trie {from_bin:?}, text {from_text:?}");
        n += usize::from(!a.is_empty());
    }
    assert!(n > 1000, "only {n} keys matched anything");
}
