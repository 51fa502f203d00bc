//! Stage 2: the units the rules want, followed through `Wants=`. Targets are
//! installed; services that run `systemd-modules-load` are installed with
//! the lists they load (and a drop-in ordering them before initrd.target
//! where they lack it); other services are daemons, installed with their
//! programs and configuration where systemd can start them. The module
//! lists' names become requests.

use super::warning::NotInstalled;
use super::{FileKind, Init, Mode, PlanFile, Reason, Request, Selection, Warning};
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
        let Some(f) = facts.units.get(&unit) else {
            g.warnings.push(Warning::UnitMissing { unit, why });
            continue;
        };
        let why = if f.source.is_own() {
            format!("{why}; the root has no {file_name}: rdma-initrd's own")
        } else {
            why
        };
        let loaders: Vec<Vec<String>> = f
            .unit
            .exec_lines(instance.as_deref())
            .into_iter()
            .filter(|w| systemd::is_modules_load(&w[0]))
            .collect();
        let follow = if file_name.ends_with(".target") {
            if systemd_init {
                g.files.push(unit_file(f, &why));
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

fn unit_file(f: &UnitFile, why: &str) -> PlanFile {
    PlanFile::new(FileKind::Unit, f.source.clone(), f.inner.clone(), why)
}

/// A service that runs systemd-modules-load: the unit, a drop-in where it
/// lacks `Before=initrd.target`, its program, and the lists it loads.
fn loader(
    g: &mut UnitGraph,
    f: &UnitFile,
    unit: &str,
    why: &str,
    loaders: &[Vec<String>],
    systemd_init: bool,
    confs: &mut BTreeSet<String>,
) {
    if systemd_init {
        g.files.push(unit_file(f, why));
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
    for words in loaders {
        if systemd_init {
            g.programs.push((
                ProgramRef::Command(words[0].clone()),
                format!("ExecStart of {unit}"),
            ));
        }
        for conf in &words[1..] {
            confs.insert(conf.clone());
            g.unit_confs
                .entry(unit.to_string())
                .or_default()
                .push(conf.clone());
        }
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
    g.files.push(unit_file(f, why));
    for e in execs {
        g.programs
            .push((ProgramRef::Command(e), format!("ExecStart of {unit}")));
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
