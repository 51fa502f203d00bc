//! A kernel's module database as libkmod sees it: depmod's files in the module
//! directory plus modprobe.d, with libkmod's lookup order and probe-list walk.

pub mod alias;
pub mod build;
pub mod builtin;
pub mod compress;
pub mod config;
pub mod dep;
pub mod index_bin;
pub mod modinfo;
pub mod name;

use crate::error::{InputError, Warning};
use crate::mapped::FileBytes;
use anyhow::Result;
use config::{Config, Origin};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How a name was found, in libkmod's lookup order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupVia {
    ConfigAlias(Origin),
    Name,
    Symbol,
    InstallCommand(Origin),
    Alias(String),
    Builtin,
    BuiltinAlias(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModKind {
    /// A module file, path relative to the module directory (or absolute).
    File(String),
    Builtin,
    /// Named (by an alias or an install command) but neither a file nor builtin.
    Missing,
}

/// Which softdep lines count for a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftdepMode {
    /// libkmod 30: only the first matching softdep line (config order).
    First,
    /// Every matching line: what an image built for any kmod must hold.
    Union,
}

/// Why a module is in a probe list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Requested,
    Dependency(String),
    SoftPre(String, Origin),
    SoftPost(String, Origin),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeItem {
    pub name: String,
    pub via: Via,
}

/// An alias-style index: depmod's binary trie, searched in place as libkmod
/// does, or (where there is no .bin) the text file, parsed.
enum AliasSource {
    Bin(FileBytes),
    Text(alias::AliasFile),
}

impl AliasSource {
    fn lookup(&self, key: &str) -> Vec<String> {
        match self {
            AliasSource::Text(a) => a.lookup(key),
            AliasSource::Bin(b) => {
                let found = index_bin::Index::open(b)
                    .and_then(|i| i.search_wild(key))
                    .unwrap_or_default();
                let mut out: Vec<String> = Vec::new();
                for (_, m) in found {
                    let m = name::normalize_modname(&m);
                    if !out.contains(&m) {
                        out.push(m);
                    }
                }
                out
            }
        }
    }
}

/// The module list: depmod's binary index searched in place, as libkmod
/// does (each answer parsed once), or where there is none the text file,
/// parsed whole.
enum DepSource {
    Bin {
        bytes: FileBytes,
        label: String,
        cache: Mutex<std::collections::HashMap<String, Option<dep::DepEntry>>>,
    },
    Text(dep::ModulesDep),
}

/// Configuration lines (softdep, weakdep) by the module they name, as
/// libkmod matches them: each line's name is an fnmatch pattern. Most name
/// one module plainly: those are found by name, the few patterns are
/// matched one by one; the lines come back in the configuration's order.
#[derive(Default)]
struct LineIndex {
    plain: std::collections::HashMap<String, Vec<usize>>,
    patterns: Vec<usize>,
}

impl LineIndex {
    fn of<'a>(names: impl Iterator<Item = &'a str>) -> Self {
        let mut ix = LineIndex::default();
        for (i, n) in names.enumerate() {
            if n.bytes().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')) {
                ix.patterns.push(i);
            } else {
                ix.plain.entry(n.to_string()).or_default().push(i);
            }
        }
        ix
    }

    /// The lines whose name matches `module`, in order; `name_of` gives a
    /// line's name.
    fn matching<'a>(&self, module: &str, name_of: impl Fn(usize) -> &'a str) -> Vec<usize> {
        let mut v: Vec<usize> = self.plain.get(module).cloned().unwrap_or_default();
        let before = v.len();
        v.extend(
            self.patterns
                .iter()
                .copied()
                .filter(|&i| name::fnmatch(name_of(i), module)),
        );
        if v.len() > before && before > 0 {
            v.sort_unstable();
        }
        v
    }
}

/// Where RDMA hardware providers live in a module tree.
pub const RDMA_HW_DIR: &str = "kernel/drivers/infiniband/hw/";

pub struct ModDb {
    pub dir: PathBuf,
    pub kver: String,
    dep: DepSource,
    builtin: HashSet<String>,
    aliases: AliasSource,
    symbols: AliasSource,
    builtin_aliases: AliasSource,
    pub config: Config,
    /// The configuration's softdep and weakdep lines by the module they name.
    softdep_lines: LineIndex,
    weakdep_lines: LineIndex,
    /// What lookups met in the binary index (a corrupt entry): found only
    /// when a lookup reaches it, remembered with the entry's memo, handed out
    /// by `lookup_warnings`.
    met: Mutex<Vec<Warning>>,
}

impl ModDb {
    /// Open the module directory `dir` (a host path) with the configuration
    /// (modprobe.d, modules.softdep/weakdep) the caller has read: every index
    /// is opened here (the binary ones mapped, searched in place later), and
    /// what was wrong with them is returned beside the database.
    pub fn open(dir: &Path, kver: &str, config: Config) -> Result<(Self, Vec<Warning>)> {
        let dep = match read_bin(&dir.join("modules.dep.bin")) {
            Some(bytes) => DepSource::Bin {
                bytes,
                label: dir.join("modules.dep.bin").display().to_string(),
                cache: Mutex::new(std::collections::HashMap::new()),
            },
            None => DepSource::Text(read_dep_text(dir, kver)?),
        };
        let builtin = match crate::root::read_capped(
            &dir.join("modules.builtin"),
            crate::root::MAX_INDEX_FILE,
        ) {
            Ok(t) => builtin::parse_builtin(&crate::root::text(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
            Err(e) => anyhow::bail!("{}: {e}", dir.join("modules.builtin").display()),
        };
        let mut warnings = Vec::new();
        let db = ModDb {
            dir: dir.to_path_buf(),
            kver: kver.to_string(),
            dep,
            builtin,
            aliases: alias_source(dir, "modules.alias", &mut warnings),
            symbols: alias_source(dir, "modules.symbols", &mut warnings),
            builtin_aliases: builtin_alias_source(dir),
            softdep_lines: LineIndex::of(config.softdeps.iter().map(|s| s.module.as_str())),
            weakdep_lines: LineIndex::of(config.weakdeps.iter().map(|w| w.module.as_str())),
            config,
            met: Mutex::new(Vec::new()),
        };
        Ok((db, warnings))
    }

    /// A database from depmod-format texts held in memory (no module files):
    /// what tests of planning stages build their facts on.
    pub fn from_texts(
        kver: &str,
        dep: &str,
        alias: &str,
        builtin: &str,
        config: Config,
    ) -> Result<(Self, Vec<Warning>)> {
        let mut w = Vec::new();
        let aliases = AliasSource::Text(alias::AliasFile::parse(alias, "modules.alias", &mut w));
        let db = ModDb {
            dir: PathBuf::from("/nonexistent"),
            kver: kver.to_string(),
            dep: DepSource::Text(dep::ModulesDep::parse(dep, "modules.dep")?),
            builtin: builtin::parse_builtin(builtin),
            aliases,
            symbols: AliasSource::Text(alias::AliasFile::default()),
            builtin_aliases: AliasSource::Text(alias::AliasFile::default()),
            softdep_lines: LineIndex::of(config.softdeps.iter().map(|s| s.module.as_str())),
            weakdep_lines: LineIndex::of(config.weakdeps.iter().map(|w| w.module.as_str())),
            config,
            met: Mutex::new(Vec::new()),
        };
        Ok((db, w))
    }

    fn aliases(&self) -> &AliasSource {
        &self.aliases
    }

    fn symbols(&self) -> &AliasSource {
        &self.symbols
    }

    fn builtin_aliases(&self) -> &AliasSource {
        &self.builtin_aliases
    }

    /// `f` of the modules.dep entry of a module (borrowed: the cached
    /// entry is not copied for each question asked of it). `f` must not
    /// look up another entry (the cache is locked while it runs).
    fn with_dep<R>(&self, name: &str, f: impl FnOnce(Option<&dep::DepEntry>) -> R) -> R {
        match &self.dep {
            DepSource::Text(t) => f(t.get(name)),
            DepSource::Bin {
                bytes,
                label,
                cache,
            } => {
                let mut cache = cache.lock().expect("dep cache lock");
                if let Some(e) = cache.get(name) {
                    return f(e.as_ref());
                }
                let e = self.dep_from_bin(bytes, label, name);
                f(cache.entry(name.to_string()).or_insert(e).as_ref())
            }
        }
    }

    fn has_dep(&self, name: &str) -> bool {
        self.with_dep(name, |e| e.is_some())
    }

    fn dep_from_bin(&self, bytes: &[u8], label: &str, name: &str) -> Option<dep::DepEntry> {
        let found = index_bin::Index::open(bytes).and_then(|i| i.search(name));
        let line = match found {
            Ok(v) => v.into_iter().next()?.1,
            Err(e) => {
                self.warn(InputError::new(label, None, e));
                return None;
            }
        };
        match dep::parse_line(&line, label, 0) {
            Ok(e) => e,
            Err(e) => {
                self.warn(e);
                None
            }
        }
    }

    fn warn(&self, w: Warning) {
        self.met.lock().expect("warnings lock").push(w);
    }

    /// What the lookups so far met in the binary index (each corrupt entry
    /// once: lookups are memoised), in the order met.
    pub fn lookup_warnings(&self) -> Vec<Warning> {
        self.met.lock().expect("warnings lock").clone()
    }

    /// Every module name in modules.dep, sorted.
    pub fn module_names(&self) -> Vec<String> {
        let mut v: Vec<String> = match &self.dep {
            DepSource::Text(t) => t.names().map(str::to_string).collect(),
            DepSource::Bin { bytes, label, .. } => match index_bin::dump(bytes) {
                Ok(pairs) => pairs.into_iter().map(|(k, _)| k).collect(),
                Err(e) => {
                    self.warn(InputError::new(label, None, e));
                    Vec::new()
                }
            },
        };
        v.sort();
        v
    }

    /// Module names whose file path has `prefix` (e.g. `kernel/drivers/infiniband/hw/`):
    /// with the binary index, the files under that directory that it lists
    /// there.
    pub fn modules_under(&self, prefix: &str) -> Vec<String> {
        let mut v: Vec<String> = match &self.dep {
            DepSource::Text(t) => t
                .entries
                .iter()
                .filter(|e| e.path.starts_with(prefix))
                .map(|e| name::modname_from_path(&e.path))
                .collect(),
            DepSource::Bin { .. } => walk_module_files(&self.dir.join(prefix))
                .into_iter()
                .map(|f| name::modname_from_path(&f))
                .filter(|m| self.with_dep(m, |e| e.is_some_and(|e| e.path.starts_with(prefix))))
                .collect(),
        };
        v.sort();
        v.dedup();
        v
    }

    pub fn kind(&self, module: &str) -> ModKind {
        if let Some(path) = self.with_dep(module, |e| e.map(|e| e.path.clone())) {
            ModKind::File(path)
        } else if self.builtin.contains(module) {
            ModKind::Builtin
        } else {
            ModKind::Missing
        }
    }

    /// Host path of a module file.
    pub fn file_path(&self, rel: &str) -> PathBuf {
        if rel.starts_with('/') {
            PathBuf::from(rel)
        } else {
            self.dir.join(rel)
        }
    }

    /// libkmod's `kmod_module_new_from_lookup`: the first source in its order
    /// that knows `given` decides; aliases may name several modules.
    pub fn lookup(&self, given: &str) -> Result<Vec<(String, LookupVia)>, name::NameError> {
        let key = name::normalize_alias(given)?;
        let cfg: Vec<_> = self
            .config
            .aliases
            .iter()
            .filter(|(pat, _, _)| name::fnmatch(pat, &key))
            .map(|(_, m, o)| (m.clone(), LookupVia::ConfigAlias(o.clone())))
            .collect();
        if !cfg.is_empty() {
            return Ok(cfg);
        }
        if self.has_dep(&key) {
            return Ok(vec![(key, LookupVia::Name)]);
        }
        if key.starts_with("symbol:") {
            let s = self.symbols().lookup(&key);
            if !s.is_empty() {
                return Ok(s.into_iter().map(|m| (m, LookupVia::Symbol)).collect());
            }
        }
        if let Some(c) = self.config.install_command(&key) {
            return Ok(vec![(key, LookupVia::InstallCommand(c.origin.clone()))]);
        }
        let a = self.aliases().lookup(&key);
        if !a.is_empty() {
            return Ok(a
                .into_iter()
                .map(|m| (m, LookupVia::Alias(key.clone())))
                .collect());
        }
        if self.builtin.contains(&key) {
            return Ok(vec![(key, LookupVia::Builtin)]);
        }
        let b = self.builtin_aliases().lookup(&key);
        Ok(b.into_iter()
            .map(|m| (m, LookupVia::BuiltinAlias(key.clone())))
            .collect())
    }

    /// Dependencies of a module in load order (modules.dep lists them
    /// deepest-last; libkmod prepends, so they load reversed).
    pub fn dependencies(&self, module: &str) -> Vec<String> {
        self.with_dep(module, |e| match e {
            Some(e) => e
                .deps
                .iter()
                .rev()
                .map(|p| name::modname_from_path(p))
                .collect(),
            None => Vec::new(),
        })
    }

    /// Softdep modules (looked up like any name) of `module`, with the line
    /// that named each.
    #[allow(clippy::type_complexity)]
    pub fn softdeps(
        &self,
        module: &str,
        mode: SoftdepMode,
    ) -> (Vec<(String, Origin)>, Vec<(String, Origin)>) {
        let (mut pre, mut post) = (Vec::new(), Vec::new());
        let lines = self
            .softdep_lines
            .matching(module, |i| &self.config.softdeps[i].module);
        for sd in lines.into_iter().map(|i| &self.config.softdeps[i]) {
            for (names, out) in [(&sd.pre, &mut pre), (&sd.post, &mut post)] {
                for n in names {
                    // Names no lookup can take were left out (and said)
                    // where the configuration was parsed.
                    for (m, _) in self.lookup(n).unwrap_or_default() {
                        out.push((m, sd.origin.clone()));
                    }
                }
            }
            if mode == SoftdepMode::First {
                break;
            }
        }
        (pre, post)
    }

    /// Weak dependencies (ship, do not load) from every matching weakdep line.
    pub fn weakdeps(&self, module: &str) -> Vec<(String, Origin)> {
        let mut out = Vec::new();
        let lines = self
            .weakdep_lines
            .matching(module, |i| &self.config.weakdeps[i].module);
        for wd in lines.into_iter().map(|i| &self.config.weakdeps[i]) {
            for n in &wd.deps {
                if let Ok(found) = self.lookup(n) {
                    out.extend(found.into_iter().map(|(m, _)| (m, wd.origin.clone())));
                }
            }
        }
        out
    }

    /// libkmod's probe list for one module (`kmod_module_get_probe_list`),
    /// duplicates removed (the first occurrence is the load position).
    pub fn probe_list(
        &self,
        module: &str,
        mode: SoftdepMode,
        ignore_commands: bool,
    ) -> Vec<ProbeItem> {
        self.probe_list_all(module, mode, ignore_commands).0
    }

    /// The probe list, and the further reasons (softdep lines) that named a
    /// module the walk had already visited.
    pub fn probe_list_all(
        &self,
        module: &str,
        mode: SoftdepMode,
        ignore_commands: bool,
    ) -> (Vec<ProbeItem>, Vec<ProbeItem>) {
        let mut w = Walk {
            db: self,
            mode,
            visited: HashSet::new(),
            list: Vec::new(),
            also: Vec::new(),
        };
        w.get_probe_list(module, Via::Requested, ignore_commands);
        let keep: Vec<bool> = {
            let mut seen = HashSet::new();
            w.list
                .iter()
                .map(|it| seen.insert(it.name.as_str()))
                .collect()
        };
        let mut keep = keep.into_iter();
        w.list.retain(|_| keep.next().unwrap_or(true));
        (w.list, w.also)
    }
}

/// A binary index file when it is there and is one (else None: the text
/// file is read instead, as libkmod falls back).
fn read_bin(path: &Path) -> Option<FileBytes> {
    let b = crate::mapped::map_capped(path, crate::root::MAX_INDEX_FILE).ok()?;
    index_bin::Index::open(&b).is_ok().then_some(b)
}

fn read_dep_text(dir: &Path, kver: &str) -> Result<dep::ModulesDep> {
    let dep_path = dir.join("modules.dep");
    let text = match crate::root::read_capped(&dep_path, crate::root::MAX_INDEX_FILE) {
        Ok(b) => String::from_utf8(b).map_err(|e| {
            InputError::new(
                &dep_path.display().to_string(),
                None,
                format!("not UTF-8 text: {e}"),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!(
                "{}: not found (no module tree for kernel {kver} here; run depmod, or pass --kver/--moddir)",
                dep_path.display()
            )
        }
        Err(e) => anyhow::bail!("{}: {e}", dep_path.display()),
    };
    Ok(dep::ModulesDep::parse(
        &text,
        &dep_path.display().to_string(),
    )?)
}

/// An alias-style index of `dir`: `NAME.bin` mapped when it is a kmod
/// index, else the text file `NAME` parsed (its problems in `warnings`);
/// empty when neither is there.
fn alias_source(dir: &Path, name: &str, warnings: &mut Vec<Warning>) -> AliasSource {
    let bin = dir.join(format!("{name}.bin"));
    if let Ok(b) = crate::mapped::map_capped(&bin, crate::root::MAX_INDEX_FILE) {
        if index_bin::Index::open(&b).is_ok() {
            return AliasSource::Bin(b);
        }
        warnings.push(InputError::new(
            &bin.display().to_string(),
            None,
            "not a kmod index; reading the text file",
        ));
    }
    let p = dir.join(name);
    match crate::root::read_capped(&p, crate::root::MAX_INDEX_FILE) {
        Ok(b) => {
            let t = crate::root::text_ref(&b);
            AliasSource::Text(alias::AliasFile::parse(
                &t,
                &p.display().to_string(),
                warnings,
            ))
        }
        Err(_) => AliasSource::Text(alias::AliasFile::default()),
    }
}

/// Aliases of builtin modules: `modules.builtin.alias.bin` (what libkmod
/// reads), else `modules.builtin.modinfo`.
fn builtin_alias_source(dir: &Path) -> AliasSource {
    if let Some(b) = read_bin(&dir.join("modules.builtin.alias.bin")) {
        return AliasSource::Bin(b);
    }
    let p = dir.join("modules.builtin.modinfo");
    let recs = crate::root::read_capped(&p, crate::root::MAX_INDEX_FILE)
        .map(|b| builtin::parse_builtin_modinfo(&b))
        .unwrap_or_default();
    AliasSource::Text(alias::AliasFile::from_pairs(
        recs.into_iter()
            .filter(|(_, k, _)| k == "alias")
            .map(|(m, _, v)| (v, m)),
    ))
}

/// Module files under `dir` (paths relative to the module directory are
/// not needed: names are what the index is searched by), bounded.
fn walk_module_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let n = e.file_name().to_string_lossy().into_owned();
            if t.is_dir() && todo.len() < 4096 {
                todo.push(e.path());
            } else if n.contains(".ko") {
                out.push(n);
            }
        }
    }
    out
}

struct Walk<'a> {
    db: &'a ModDb,
    mode: SoftdepMode,
    visited: HashSet<String>,
    list: Vec<ProbeItem>,
    also: Vec<ProbeItem>,
}

impl Walk<'_> {
    fn get_probe_list(&mut self, m: &str, via: Via, ignorecmd: bool) {
        if !self.visited.insert(m.to_string()) {
            if matches!(via, Via::SoftPre(..) | Via::SoftPost(..)) {
                self.also.push(ProbeItem {
                    name: m.to_string(),
                    via,
                });
            }
            return;
        }
        for d in self.db.dependencies(m) {
            self.fill_softdep(&d, Via::Dependency(m.to_string()));
        }
        if ignorecmd {
            self.list.push(ProbeItem {
                name: m.to_string(),
                via,
            });
        } else {
            self.fill_softdep(m, via);
        }
    }

    fn fill_softdep(&mut self, m: &str, via: Via) {
        let (pre, post) = self.db.softdeps(m, self.mode);
        for (p, o) in pre {
            self.get_probe_list(&p, Via::SoftPre(m.to_string(), o), false);
        }
        self.list.push(ProbeItem {
            name: m.to_string(),
            via,
        });
        for (p, o) in post {
            self.get_probe_list(&p, Via::SoftPost(m.to_string(), o), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `modules.alias.bin` that is not a kmod index is said when the
    /// database is opened, as a value, and the text file answers instead.
    #[test]
    fn a_bad_alias_index_is_said_at_open_and_the_text_answers() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join("modules.dep"), "kernel/a/mlx5_ib.ko:\n").unwrap();
        std::fs::write(d.join("modules.alias.bin"), b"garbage").unwrap();
        std::fs::write(d.join("modules.alias"), "alias pci:v000015B3d* mlx5_ib\n").unwrap();
        let (db, warnings) = ModDb::open(d, "6.1.0-test", Config::default()).unwrap();
        let said: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("modules.alias.bin") && said[0].contains("not a kmod index"),
            "{said:?}"
        );
        let found = db.lookup("pci:v000015B3d00001017").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "mlx5_ib");
    }

    /// Softdep lines that name a module plainly and those that name it by a
    /// pattern all apply, in the configuration's order (the first alone
    /// for modprobe's own walk).
    #[test]
    fn softdep_lines_by_name_and_by_pattern_come_in_their_order() {
        let mut c = Config::default();
        let text = "softdep mlx5* pre: a\nsoftdep mlx5_ib pre: b\nsoftdep mlx5_i? pre: c post: d\nsoftdep mlx5_ib pre: e\nsoftdep mlx4_ib pre: f\n";
        c.parse_file(text, "x.conf", &mut Vec::new());
        let dep = "kernel/a.ko:\nkernel/b.ko:\nkernel/c.ko:\nkernel/d.ko:\nkernel/e.ko:\nkernel/f.ko:\nkernel/mlx5_ib.ko:\n";
        let (db, _) = ModDb::from_texts("6.1.0-test", dep, "", "", c).unwrap();
        let names = |v: Vec<(String, Origin)>| -> Vec<(String, usize)> {
            v.into_iter().map(|(m, o)| (m, o.line)).collect()
        };
        let (pre, post) = db.softdeps("mlx5_ib", SoftdepMode::Union);
        assert_eq!(
            names(pre),
            [
                ("a".into(), 1),
                ("b".into(), 2),
                ("c".into(), 3),
                ("e".into(), 4)
            ]
        );
        assert_eq!(names(post), [("d".into(), 3)]);
        let (pre, _) = db.softdeps("mlx5_ib", SoftdepMode::First);
        assert_eq!(names(pre), [("a".into(), 1)]);
        let (pre, _) = db.softdeps("mlx5_core", SoftdepMode::Union);
        assert_eq!(names(pre), [("a".into(), 1)]);
    }
}
