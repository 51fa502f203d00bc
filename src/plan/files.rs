//! Stage 5: the files besides modules, units and lists: the RDMA rules (and
//! the rules file that sets `ID_NET_DRIVER` where they match it), the
//! modprobe.d files that name a planned or excluded module, the programs
//! rules, units and install commands run (scripts with their interpreters),
//! and the generator's boot hooks for roots over RDMA.

use super::closure::Modules;
use super::demand::Demand;
use super::unit_graph::UnitGraph;
use super::{FileKind, PlanFile, Selection, Warning};
use crate::facts::programs::{command_words, rule_program, ProgramRef};
use crate::facts::Facts;
use crate::netroot::{Generator, NetRoot};
use crate::source::Source;
use crate::units;
use anyhow::Result;
use std::collections::{HashSet, VecDeque};

pub struct Files {
    pub files: Vec<PlanFile>,
    pub warnings: Vec<Warning>,
}

pub fn plan_files(
    facts: &Facts,
    sel: &Selection,
    demand: &Demand,
    units: &UnitGraph,
    modules: &Modules,
) -> Result<Files> {
    let mut out = Files {
        files: units.files.clone(),
        warnings: Vec::new(),
    };
    let mut programs = units.programs.clone();
    rules(facts, &mut out.files, &mut programs);
    modprobe(facts, modules, &mut out.files, &mut programs);
    resolve_programs(facts, programs, &mut out);
    hooks(sel, demand, &mut out.files);
    Ok(out)
}

/// The RDMA rules, the programs they run, and the rules file that sets
/// ID_NET_DRIVER where they match it.
fn rules(facts: &Facts, files: &mut Vec<PlanFile>, programs: &mut Vec<(ProgramRef, String)>) {
    let why = if facts.rules.own {
        "the root has no RDMA rules (no rdma-core): rdma-initrd's own"
    } else {
        "rules for RDMA devices"
    };
    for f in &facts.rules.rdma {
        files.push(PlanFile::new(
            FileKind::Rule,
            f.source.clone(),
            f.path.clone(),
            why,
        ));
        for l in &f.lines {
            for t in &l.tokens {
                if let Some(w) = rule_program(t) {
                    programs.push((
                        ProgramRef::Udev(w.to_string()),
                        format!("run by {}:{}", f.path, l.line),
                    ));
                }
            }
        }
    }
    // The net rules match ID_NET_DRIVER, which only the net_setup_link (or
    // net_driver) builtin sets: its rules file must be in the image too.
    if let Some(m) = facts.rules.rdma.iter().find(|f| f.matches_net_driver()) {
        files.push(match facts.rules.all.iter().find(|f| f.sets_net_driver()) {
            Some(f) => PlanFile::new(
                FileKind::Rule,
                f.source.clone(),
                f.path.clone(),
                format!("sets ID_NET_DRIVER, which {} matches", m.path),
            ),
            None => PlanFile::new(
                FileKind::Rule,
                Source::Own(&units::NET_SETUP_LINK),
                units::NET_SETUP_LINK.dest,
                format!("{} matches ID_NET_DRIVER and no rules file of the root sets it: rdma-initrd's own", m.path),
            ),
        });
    }
}

/// modprobe.d files naming a planned or excluded module, and the programs
/// of planned modules' install commands.
fn modprobe(
    facts: &Facts,
    modules: &Modules,
    files: &mut Vec<PlanFile>,
    programs: &mut Vec<(ProgramRef, String)>,
) {
    let included: HashSet<&str> = modules.modules.iter().map(|m| m.name.as_str()).collect();
    let excluded: HashSet<&str> = modules.excluded.iter().map(|e| e.name.as_str()).collect();
    for cf in &facts.modprobe {
        let Some(dest) = &cf.dest else { continue };
        let names: Vec<&str> = cf
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| included.contains(n) || excluded.contains(n))
            .collect();
        if !names.is_empty() {
            files.push(PlanFile::new(
                FileKind::Modprobe,
                cf.source.clone(),
                dest.clone(),
                format!("names {}", names.join(", ")),
            ));
        }
    }
    for m in &modules.modules {
        if let Some(c) = facts.db.config.install_command(&m.name) {
            for w in command_words(&c.command) {
                programs.push((
                    ProgramRef::Command(w),
                    format!("install command of {} ({})", m.name, c.origin),
                ));
            }
        }
    }
}

/// Programs found in the root, each once; a script brings its interpreter
/// (generators copy ELF dependencies, not `#!` lines).
fn resolve_programs(facts: &Facts, programs: Vec<(ProgramRef, String)>, out: &mut Files) {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<(ProgramRef, String)> = programs.into();
    while let Some((r, why)) = queue.pop_front() {
        if !seen.insert(r.word().to_string()) {
            continue;
        }
        match facts.programs.get(&r) {
            Some(Some(p)) => {
                for i in &p.interpreters {
                    queue.push_back((
                        ProgramRef::Command(i.clone()),
                        format!("interpreter of {}", p.inner),
                    ));
                }
                out.files.push(PlanFile::new(
                    FileKind::Program,
                    p.source.clone(),
                    p.inner.clone(),
                    why,
                ));
                for (inner, host) in &p.needs {
                    out.files.push(PlanFile::new(
                        FileKind::Library,
                        Source::root(inner.clone(), host.clone()),
                        inner.clone(),
                        format!("needed by {}", p.inner),
                    ));
                }
            }
            _ => out.warnings.push(Warning::ProgramMissing {
                program: r.word().to_string(),
                why,
            }),
        }
    }
}

/// dracut's boot scripts mount a root over RDMA only once: they must wait
/// for the fabric first (and an NVMe-oF root on RDMA needs the network).
fn hooks(sel: &Selection, demand: &Demand, files: &mut Vec<PlanFile>) {
    if sel.generator != Generator::Dracut || demand.netroots.is_empty() {
        return;
    }
    let names: Vec<&str> = demand.netroots.iter().map(|f| f.root.name()).collect();
    for e in [&units::DRACUT_FABRIC_NETROOT, &units::DRACUT_FABRIC_SETTLED] {
        files.push(PlanFile::new(
            FileKind::Hook,
            Source::Own(e),
            e.dest,
            format!(
                "roots over RDMA ({}): wait for a usable RDMA device before mounting (rd.rdma.wait=)",
                names.join(", ")
            ),
        ));
    }
    if demand.netroots.iter().any(|f| f.root == NetRoot::Nvmf) {
        let e = &units::DRACUT_NVMF_CMDLINE;
        files.push(PlanFile::new(
            FileKind::Hook,
            Source::Own(e),
            e.dest,
            "an NVMe-oF root on RDMA needs the network up; dracut's nvmf module asks only for TCP",
        ));
    }
}
