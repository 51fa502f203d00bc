//! Stage 2: the units the rules want, followed through `Wants=`. Targets are
//! installed; services that run `systemd-modules-load` are installed with
//! the lists they load (and a drop-in ordering them before initrd.target
//! where they lack it); other services are daemons, installed with their
//! programs and configuration where systemd can start them. The module
//! lists' names become requests. A unit is read with its drop-ins applied
//! (they are installed at their own paths, each with what it sets); a
//! masked unit is not followed: its want is dropped, as systemd drops it.

use super::warning::NotInstalled;
use super::{
    FileKind, Init, Mode, PlanFile, PlanUnit, Reason, Request, Selection, UnitState, Warning,
};
use crate::facts::{programs::ProgramRef, Facts, UnitFile};
use crate::kmod::config::Origin;
use crate::source::Source;
use crate::systemd;
use crate::units;
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

#[derive(Debug, Default)]
pub struct UnitGraph {
    pub files: Vec<PlanFile>,
    /// Programs the installed units run, with why.
    pub programs: Vec<(ProgramRef, String)>,
    /// What each unit pulls in, and the lists it loads (for `--init udev`).
    pub unit_wants: HashMap<String, Vec<String>>,
    pub unit_confs: HashMap<String, Vec<String>>,
    /// Every list used: its names with their lines.
    pub conf_names: BTreeMap<String, Vec<(String, usize)>>,
    pub requests: Vec<Request>,
    pub warnings: Vec<Warning>,
    /// Every unit wanted, with the files read for it.
    pub units: Vec<PlanUnit>,
    /// Lists a drop-in's Exec line names: the line.
    pub conf_via: BTreeMap<String, String>,
}

pub fn walk(facts: &Facts, sel: &Selection, wants: &[(String, Origin)]) -> Result<UnitGraph> {
    let mut g = UnitGraph::default();
    let systemd_init = sel.init == Init::Systemd;
    let mut confs: BTreeSet<String> = BTreeSet::new();
    let mut queue: Vec<(String, String)> = wants
        .iter()
        .map(|(u, o)| (u.clone(), format!("wanted by {o}")))
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some((unit, why)) = queue.pop() {
        if !seen.insert(unit.clone()) {
            continue;
        }
        let (file_name, instance) = systemd::split_instance(&unit);
        if let Some(mask) = facts.units.masked.get(&unit) {
            g.units.push(PlanUnit {
                name: unit.clone(),
                wanted: why,
                state: UnitState::Masked,
                files: Vec::new(),
                links: Vec::new(),
                mask: Some(mask.clone()),
                changes: Vec::new(),
            });
            continue;
        }
        let Some(f) = facts.units.get(&unit) else {
            g.units.push(PlanUnit {
                name: unit.clone(),
                wanted: why.clone(),
                state: UnitState::Missing,
                files: Vec::new(),
                links: Vec::new(),
                mask: None,
                changes: Vec::new(),
            });
            g.warnings.push(Warning::UnitMissing { unit, why });
            continue;
        };
        g.units.push(PlanUnit {
            name: unit.clone(),
            wanted: why.clone(),
            state: if f.source.is_own() {
                UnitState::Embedded
            } else {
                UnitState::Root
            },
            files: std::iter::once(f.inner.clone())
                .chain(f.dropins.iter().map(|d| d.inner.clone()))
                .collect(),
            links: f.links.iter().map(|(l, _)| l.clone()).collect(),
            mask: None,
            changes: f
                .dropins
                .iter()
                .map(|d| match &d.source {
                    None => format!("{}: a mask, sets nothing", d.inner),
                    Some(_) => format!("{}: {}", d.inner, f.unit.keys_of(&d.inner).join(", ")),
                })
                .collect(),
        });
        let why = if f.source.is_own() {
            format!("{why}; the root has no {file_name}: rdma-initrd's own")
        } else {
            why
        };
        let loaders: Vec<systemd::ExecLine> = f
            .unit
            .exec(instance.as_deref())
            .into_iter()
            .filter(|l| systemd::is_modules_load(&l.words[0]))
            .collect();
        let follow = if file_name.ends_with(".target") {
            if systemd_init {
                g.files.extend(unit_files(f, &unit, &why));
            }
            true
        } else if !loaders.is_empty() {
            loader(&mut g, f, &unit, &why, &loaders, systemd_init, &mut confs);
            false
        } else {
            daemon(
                &mut g,
                facts,
                f,
                &unit,
                &why,
                instance.as_deref(),
                systemd_init,
            )
        };
        if follow {
            for w in f.unit.wants(instance.as_deref()) {
                g.unit_wants
                    .entry(unit.clone())
                    .or_default()
                    .push(w.clone());
                queue.push((w, format!("wanted by {unit}")));
            }
        }
    }
    if sel.mode == Mode::Generic {
        // Every list, also those no rule wants (an image for any machine).
        confs.extend(facts.units.conf_dir.iter().cloned());
    }
    lists(&mut g, facts, &confs)?;
    Ok(g)
}

/// A unit's files in the image: the unit file, the alias links systemd
/// follows to it (copied as the link resolves: generators that keep
/// symlinks, such as dracut's, keep it a link), and its drop-ins at their
/// own paths, each with what it sets.
fn unit_files(f: &UnitFile, unit: &str, why: &str) -> Vec<PlanFile> {
    let mut out = vec![PlanFile::new(
        FileKind::Unit,
        f.source.clone(),
        f.inner.clone(),
        why,
    )];
    for (l, source) in &f.links {
        out.push(PlanFile::new(
            FileKind::Unit,
            source.clone(),
            l.clone(),
            format!("{unit} is an alias of {} ({why})", f.inner),
        ));
    }
    for d in &f.dropins {
        let Some(source) = &d.source else { continue };
        out.push(PlanFile::new(
            FileKind::Unit,
            source.clone(),
            d.inner.clone(),
            format!(
                "drop-in of {unit} setting {} ({why})",
                f.unit.keys_of(&d.inner).join(", ")
            ),
        ));
    }
    out
}

/// A service that runs systemd-modules-load: the unit, a drop-in where it
/// lacks `Before=initrd.target`, its program, and the lists it loads.
fn loader(
    g: &mut UnitGraph,
    f: &UnitFile,
    unit: &str,
    why: &str,
    loaders: &[systemd::ExecLine],
    systemd_init: bool,
    confs: &mut BTreeSet<String>,
) {
    if systemd_init {
        g.files.extend(unit_files(f, unit, why));
        let before_initrd = f
            .unit
            .values("Before")
            .flat_map(|v| v.split_ascii_whitespace())
            .any(|x| x == "initrd.target");
        if !before_initrd {
            g.files.push(PlanFile::new(
                FileKind::Unit,
                Source::Own(&units::INITRD_DROPIN),
                format!("/usr/lib/systemd/system/{}.d/rdma-initrd.conf", f.name),
                format!("{} lacks Before=initrd.target: initrd-cleanup would stop it before switch-root (rdma-core PR #1481)", f.inner),
            ));
        }
    }
    if systemd_init {
        for l in f.unit.exec(systemd::split_instance(unit).1.as_deref()) {
            g.programs.push((
                ProgramRef::Command(l.words[0].clone()),
                exec_why(f, unit, &l),
            ));
        }
    }
    for l in loaders {
        for conf in &l.words[1..] {
            confs.insert(conf.clone());
            if l.file != f.inner {
                g.conf_via.insert(
                    conf.clone(),
                    format!("{} of {unit} ({}:{})", l.key, l.file, l.line),
                );
            }
            g.unit_confs
                .entry(unit.to_string())
                .or_default()
                .push(conf.clone());
        }
    }
}

/// Why a program of a unit's Exec line is planned: the key and unit, and
/// the drop-in that set it.
fn exec_why(f: &UnitFile, unit: &str, l: &systemd::ExecLine) -> String {
    if l.file == f.inner || l.file.is_empty() {
        format!("{} of {unit}", l.key)
    } else {
        format!("{} of {unit}, set by {}:{}", l.key, l.file, l.line)
    }
}

/// A daemon the rules want (iwpmd for iWARP devices, rdma-ndd): installed
/// with its programs and its configuration, so that systemd starts it in
/// the initrd as on the host. Returns whether its `Wants=` are followed.
fn daemon(
    g: &mut UnitGraph,
    facts: &Facts,
    f: &UnitFile,
    unit: &str,
    why: &str,
    instance: Option<&str>,
    systemd_init: bool,
) -> bool {
    let execs: Vec<String> = f
        .unit
        .exec_lines(instance)
        .into_iter()
        .map(|w| w[0].clone())
        .collect();
    let absent: Vec<String> = execs
        .iter()
        .filter(|e| {
            !matches!(
                facts.programs.get(&ProgramRef::Command((*e).clone())),
                Some(Some(_))
            )
        })
        .cloned()
        .collect();
    let because = if !systemd_init {
        Some(NotInstalled::NoSystemd)
    } else if execs.is_empty() {
        Some(NotInstalled::RunsNothing)
    } else if !absent.is_empty() {
        Some(NotInstalled::ProgramsMissing(absent))
    } else {
        None
    };
    if let Some(because) = because {
        g.warnings.push(Warning::NotInstalled {
            unit: unit.to_string(),
            why: why.to_string(),
            because,
        });
        return false;
    }
    g.files.extend(unit_files(f, unit, why));
    for l in f.unit.exec(instance) {
        g.programs.push((
            ProgramRef::Command(l.words[0].clone()),
            exec_why(f, unit, &l),
        ));
    }
    for (inner, source) in &f.doc_confs {
        g.files.push(PlanFile::new(
            FileKind::Conf,
            source.clone(),
            inner.clone(),
            format!("configuration of {unit} (its Documentation= names it)"),
        ));
    }
    true
}

/// The module lists used: installed, and their names requested.
fn lists(g: &mut UnitGraph, facts: &Facts, confs: &BTreeSet<String>) -> Result<()> {
    for conf in confs {
        let Some(cf) = facts.units.confs.get(conf) else {
            g.warnings.push(Warning::ConfMissing { conf: conf.clone() });
            continue;
        };
        let names = cf.names.clone()?;
        let why = if cf.source.is_own() {
            format!("the root has no {conf}: rdma-initrd's own")
        } else if let Some(via) = g.conf_via.get(conf) {
            format!("modules-load list of {via}")
        } else {
            "modules-load list of an RDMA unit".to_string()
        };
        g.files.push(PlanFile::new(
            FileKind::Conf,
            cf.source.clone(),
            conf.clone(),
            why,
        ));
        for (n, line) in &names {
            g.requests.push(Request {
                name: n.clone(),
                reason: Reason::Conf {
                    file: conf.clone(),
                    line: *line,
                    request: n.clone(),
                },
            });
        }
        g.conf_names.insert(conf.clone(), names);
    }
    Ok(())
}
