//! Stage 3, for an initramfs without systemd (`--init udev`): the rules
//! file that loads what the units the RDMA rules want would load, and the
//! lists of `--protocol` loaded at boot.

use super::unit_graph::UnitGraph;
use super::{FileKind, Init, PlanFile, Preload, Selection, Warning};
use crate::kmod::config::Origin;
use crate::source::Source;
use crate::udev::no_systemd::{self, WantLoads};
use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct Boot {
    pub rules_file: Option<PlanFile>,
    pub preload: Vec<Preload>,
    pub warnings: Vec<Warning>,
}

pub fn plan(sel: &Selection, wants: &[(String, Origin)], g: &UnitGraph) -> Boot {
    let mut b = Boot::default();
    if sel.init == Init::Systemd {
        return b;
    }
    let roots: BTreeSet<&String> = wants.iter().map(|(u, _)| u).collect();
    let entries: Vec<WantLoads> = roots.into_iter().map(|u| want_loads(g, u)).collect();
    for e in entries.iter().filter(|e| !no_systemd::expressible(e)) {
        b.warnings.push(Warning::NotExpressible {
            unit: e.unit.clone(),
        });
    }
    if let Some(text) = no_systemd::rules(&entries) {
        b.rules_file = Some(PlanFile::new(
            FileKind::Rule,
            Source::Generated {
                name: no_systemd::FILE_NAME,
                text,
            },
            no_systemd::DEST,
            "no systemd in the initramfs: udev loads what the units the RDMA rules want would load",
        ));
    }
    for p in &sel.protocols {
        let (_, list) = follow(g, &crate::systemd::loader_unit(p));
        for c in list {
            for (n, line) in g.conf_names.get(&c).into_iter().flatten() {
                b.preload.push(Preload {
                    module: n.clone(),
                    conf: c.clone(),
                    line: *line,
                    list: sel.generator.preload_list().to_string(),
                });
            }
        }
    }
    b
}

/// A unit's chain (itself, then what it wants, depth first) and the lists
/// those load, each once.
fn follow(g: &UnitGraph, unit: &str) -> (Vec<String>, Vec<String>) {
    let mut chain = Vec::new();
    let mut list: Vec<String> = Vec::new();
    let mut stack = vec![unit.to_string()];
    while let Some(u) = stack.pop() {
        if chain.contains(&u) {
            continue;
        }
        chain.push(u.clone());
        for c in g.unit_confs.get(&u).into_iter().flatten() {
            if !list.contains(c) {
                list.push(c.clone());
            }
        }
        for w in g.unit_wants.get(&u).into_iter().flatten().rev() {
            stack.push(w.clone());
        }
    }
    (chain, list)
}

fn want_loads(g: &UnitGraph, unit: &str) -> WantLoads {
    let (chain, list) = follow(g, unit);
    WantLoads {
        unit: unit.to_string(),
        chain,
        confs: list
            .into_iter()
            .map(|c| {
                let n = g
                    .conf_names
                    .get(&c)
                    .map(|v| v.iter().map(|(n, _)| n.clone()).collect())
                    .unwrap_or_default();
                (c, n)
            })
            .collect(),
    }
}
