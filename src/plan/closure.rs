//! Stage 4: requests resolved to modules as libkmod resolves them, each
//! module's probe list (dependencies, softdeps; every matching softdep line
//! counts), blacklists applied as udev's kmod builtin and
//! systemd-modules-load apply them, then `.modinfo` followed to a fixpoint
//! (weak dependencies shipped but not loaded; `depends=`/`softdep=` a stale
//! depmod lost). Then the firmware the modules name. What is not read yet
//! (`Found`) comes back as `Needs` instead of a result.

use super::{
    Excluded, FwFile, NotFound, PlanFirmware, PlanModule, Progress, Reason, Request, Warning,
};
use crate::facts::{Facts, Found, Info, ModuleFile, Needs};
use crate::kmod::{name, ModDb, ModKind, SoftdepMode, Via};
use anyhow::Result;
use std::collections::{BTreeMap, HashMap, HashSet};

pub struct Modules {
    pub modules: Vec<PlanModule>,
    pub excluded: Vec<Excluded>,
    pub not_found: Vec<NotFound>,
    pub warnings: Vec<Warning>,
}

pub fn resolve(facts: &Facts, found: &Found, requests: &[Request]) -> Result<Progress<Modules>> {
    let db = &facts.db;
    let mut acc = Acc::default();
    let mut warnings = Vec::new();
    let mut excluded: BTreeMap<String, Excluded> = BTreeMap::new();
    let mut not_found = Vec::new();
    let mut seen: HashSet<&Request> = HashSet::new();
    for req in requests {
        if !seen.insert(req) {
            continue;
        }
        let found = match db.lookup(&req.name) {
            Ok(f) => f,
            Err(e) => {
                warnings.push(Warning::BadName {
                    request: req.name.clone(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let found: Vec<String> = found
            .into_iter()
            .map(|(m, _)| m)
            .filter(|m| db.kind(m) != ModKind::Missing || db.config.install_command(m).is_some())
            .collect();
        if found.is_empty() {
            not_found.push(NotFound {
                request: req.name.clone(),
                requested_by: req.reason.clone(),
            });
            continue;
        }
        for m in found {
            // udev's kmod builtin and systemd-modules-load apply the blacklist
            // to the module a name resolves to.
            if let Some(o) = db.config.blacklisted(&m) {
                excluded
                    .entry(m.clone())
                    .or_insert_with(|| Excluded {
                        name: m.clone(),
                        file: o.file.clone(),
                        line: o.line,
                        reason: "blacklisted: udev's kmod builtin and systemd-modules-load do not load it by name".into(),
                        requested_by: Vec::new(),
                    })
                    .requested_by
                    .push(req.reason.clone());
                continue;
            }
            acc.add_closure(db, &m, req.reason.clone(), false);
        }
    }
    let mut infos = match modinfo_fixpoint(facts, found, &mut acc, &mut warnings) {
        Progress::Done(infos) => infos,
        Progress::Needs(n) => return Ok(Progress::Needs(n)),
    };
    // A blacklisted module that another included module needs stays.
    excluded.retain(|name, _| !acc.reasons.contains_key(name));
    let modules = records(facts, acc, &mut infos, &mut warnings)?;
    Ok(Progress::Done(Modules {
        modules,
        excluded: excluded.into_values().collect(),
        not_found,
        warnings,
    }))
}

/// `.modinfo` of every module file, followed until nothing new comes in;
/// the modules whose `.modinfo` is not in `found` yet, if any.
fn modinfo_fixpoint(
    facts: &Facts,
    found: &Found,
    acc: &mut Acc,
    warnings: &mut Vec<Warning>,
) -> Progress<HashMap<String, Info>> {
    let db = &facts.db;
    let mut infos: HashMap<String, Info> = HashMap::new();
    loop {
        let todo: Vec<String> = acc
            .order
            .iter()
            .filter(|m| !infos.contains_key(*m))
            .cloned()
            .collect();
        if todo.is_empty() {
            return Progress::Done(infos);
        }
        let unread: Vec<String> = todo
            .iter()
            .filter(|m| facts.reads_modinfo && !found.modinfo.contains_key(*m))
            .cloned()
            .collect();
        if !unread.is_empty() {
            return Progress::Needs(Needs {
                modinfo: unread,
                firmware: Vec::new(),
            });
        }
        let got = todo.iter().map(|m| found.modinfo.get(m).cloned().flatten());
        for (m, r) in todo.iter().zip(got) {
            for (w, o) in db.weakdeps(m) {
                if !acc.reasons.contains_key(&w) {
                    let why = Reason::Weakdep {
                        of: m.clone(),
                        file: o.file.clone(),
                        line: o.line,
                    };
                    acc.add_closure(db, &w, why, true);
                }
            }
            if let Some(Ok(f)) = &r {
                follow_modinfo(db, acc, m, f, warnings);
            }
            infos.insert(m.clone(), r);
        }
    }
}

/// What a module's own `.modinfo` names beyond depmod's files.
fn follow_modinfo(db: &ModDb, acc: &mut Acc, m: &str, f: &ModuleFile, warnings: &mut Vec<Warning>) {
    let label = format!("modinfo of {m}");
    let shipped_only = !acc.load.get(m).copied().unwrap_or(true);
    for d in f
        .info
        .get("depends")
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let d = name::normalize_modname(d);
        if !acc.reasons.contains_key(&d) {
            warnings.push(Warning::StaleDepends {
                module: m.to_string(),
                dep: d.clone(),
            });
            acc.add_closure(
                db,
                &d,
                Reason::Dependency { of: m.to_string() },
                shipped_only,
            );
        }
    }
    let mut extra: Vec<(String, Reason, bool)> = Vec::new();
    for sd in f.info.get_all("softdep") {
        let mut when = "";
        for tok in sd.split_ascii_whitespace() {
            match tok {
                "pre:" => when = "pre",
                "post:" => when = "post",
                t if !when.is_empty() => {
                    for (x, _) in db.lookup(t).unwrap_or_default() {
                        let why = Reason::Softdep {
                            of: m.to_string(),
                            file: label.clone(),
                            line: 0,
                            when: when.to_string(),
                        };
                        extra.push((x, why, shipped_only));
                    }
                }
                _ => {}
            }
        }
    }
    for wd in f.info.get_all("weakdep") {
        for t in wd.split_ascii_whitespace() {
            for (x, _) in db.lookup(t).unwrap_or_default() {
                let why = Reason::Weakdep {
                    of: m.to_string(),
                    file: label.clone(),
                    line: 0,
                };
                extra.push((x, why, true));
            }
        }
    }
    for (x, why, ship) in extra {
        if !acc.reasons.contains_key(&x) {
            acc.add_closure(db, &x, why, ship);
        }
    }
}

/// The plan's module records, in load order.
fn records(
    facts: &Facts,
    acc: Acc,
    infos: &mut HashMap<String, Info>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<PlanModule>> {
    let db = &facts.db;
    let Acc {
        order,
        mut reasons,
        load,
    } = acc;
    let mut modules = Vec::new();
    for m in &order {
        let info = infos.remove(m).flatten();
        let kind = db.kind(m);
        if kind == ModKind::Missing {
            warnings.push(Warning::NotInKernel {
                module: m.clone(),
                needed_as: reasons.get(m).and_then(|r| r.first()).cloned(),
            });
            continue;
        }
        let (path, relpath, size, compression, firmware) = match (&kind, info) {
            (ModKind::File(rel), Some(Ok(f))) => {
                if let Some(vm) = f.info.get("vermagic") {
                    if vm.split_ascii_whitespace().next() != Some(facts.kver.as_str()) {
                        warnings.push(Warning::Vermagic {
                            module: m.clone(),
                            vermagic: vm.to_string(),
                            kver: facts.kver.clone(),
                        });
                    }
                }
                let fws: Vec<String> = f.info.get_all("firmware").map(str::to_string).collect();
                let host = db.file_path(rel).display().to_string();
                (
                    Some(host),
                    Some(rel.clone()),
                    Some(f.size),
                    Some(f.compression),
                    fws,
                )
            }
            (ModKind::File(rel), Some(Err(e))) => {
                anyhow::bail!("{}: {e}", db.file_path(rel).display());
            }
            // Not read (`modules`): the path is still known.
            (ModKind::File(rel), None) => {
                let host = db.file_path(rel).display().to_string();
                (Some(host), Some(rel.clone()), None, None, Vec::new())
            }
            _ => (None, None, None, None, Vec::new()),
        };
        modules.push(PlanModule {
            name: m.clone(),
            path,
            relpath,
            size,
            builtin: kind == ModKind::Builtin,
            compression,
            load: load.get(m).copied().unwrap_or(true),
            firmware,
            reasons: reasons.remove(m).unwrap_or_default(),
        });
    }
    Ok(modules)
}

/// Firmware the modules name, as the kernel's search found it (in `found`).
pub fn firmware(
    found: &Found,
    modules: &[PlanModule],
) -> Progress<(Vec<PlanFirmware>, Vec<Warning>)> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in modules {
        for f in &m.firmware {
            by_name.entry(f.clone()).or_default().push(m.name.clone());
        }
    }
    let unsearched: Vec<String> = by_name
        .keys()
        .filter(|n| !found.firmware.contains_key(*n))
        .cloned()
        .collect();
    if !unsearched.is_empty() {
        return Progress::Needs(Needs {
            modinfo: Vec::new(),
            firmware: unsearched,
        });
    }
    let mut out = Vec::new();
    // Missing files by module: one warning a module, naming them all.
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, modules) in by_name {
        let files = found.firmware.get(&name).cloned().unwrap_or_default();
        if files.is_empty() {
            for m in &modules {
                missing.entry(m.clone()).or_default().push(name.clone());
            }
        }
        out.push(PlanFirmware {
            name,
            modules,
            files: files
                .into_iter()
                .map(|(p, h)| FwFile {
                    path: p,
                    source: h.display().to_string(),
                })
                .collect(),
        });
    }
    let warnings = missing
        .into_iter()
        .map(|(module, names)| Warning::FirmwareMissing { module, names })
        .collect();
    Progress::Done((out, warnings))
}

/// Modules in first-seen order, with every reason and whether any reason
/// loads them (weak dependencies are shipped only).
#[derive(Default)]
struct Acc {
    order: Vec<String>,
    reasons: HashMap<String, Vec<Reason>>,
    load: HashMap<String, bool>,
}

impl Acc {
    /// Add a module's probe list (libkmod's walk, every softdep line counted).
    fn add_closure(&mut self, db: &ModDb, root_mod: &str, root_reason: Reason, shipped_only: bool) {
        let (list, also) = db.probe_list_all(root_mod, SoftdepMode::Union, false);
        for item in list.into_iter().chain(also) {
            let r = match &item.via {
                Via::Requested => root_reason.clone(),
                Via::Dependency(of) => Reason::Dependency { of: of.clone() },
                Via::SoftPre(of, o) => Reason::Softdep {
                    of: of.clone(),
                    file: o.file.clone(),
                    line: o.line,
                    when: "pre".into(),
                },
                Via::SoftPost(of, o) => Reason::Softdep {
                    of: of.clone(),
                    file: o.file.clone(),
                    line: o.line,
                    when: "post".into(),
                },
            };
            // Looked up before inserting: most items are met again.
            match self.reasons.get_mut(&item.name) {
                Some(rs) => {
                    if !rs.contains(&r) {
                        rs.push(r);
                    }
                }
                None => {
                    self.order.push(item.name.clone());
                    self.reasons.insert(item.name.clone(), vec![r]);
                }
            }
            match self.load.get_mut(&item.name) {
                Some(l) => *l |= !shipped_only,
                None => {
                    self.load.insert(item.name, !shipped_only);
                }
            }
        }
    }
}
