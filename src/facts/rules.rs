//! udev rules of the root: one overlay of `--rules-dir` directories (their
//! files go to /etc/udev/rules.d in an image) and
//! `{/etc,/run,/usr/local/lib,/usr/lib,/lib}/udev/rules.d`, and which of them
//! concern RDMA. Where none does (no rdma-core in the root), rdma-initrd's
//! own rules stand in.

use crate::error::{InputError, Warning};
use crate::kmod::{name, ModDb, ModKind};
use crate::overlay::{self, Dir};
use crate::root::{read_capped, Root, MAX_CONFIG_FILE};
use crate::source::Source;
use crate::udev::eval;
use crate::udev::rules::{RulesFile, RULES_DIRS};
use crate::units;
use anyhow::Result;
use std::path::PathBuf;

/// Where RDMA modules live in a module tree.
pub const RDMA_DIR: &str = "kernel/drivers/infiniband/";
/// Subsystems of RDMA devices as udev sees them.
const RDMA_SUBSYSTEMS: &[&str] = &["infiniband", "infiniband_mad", "infiniband_verbs"];

#[derive(Debug, Clone)]
pub struct Rules {
    /// Every rules file of the root, in udev's order.
    pub all: Vec<RulesFile>,
    /// The files that concern RDMA (the root's, or rdma-initrd's own).
    pub rdma: Vec<RulesFile>,
    /// True when the root has no RDMA rules and rdma-initrd's own are used
    /// (its units and confs then stand in for missing ones too).
    pub own: bool,
}

impl Rules {
    /// Attribute names the RDMA rules refer to (read from sysfs per device).
    pub fn referenced_attrs(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for t in self
            .rdma
            .iter()
            .flat_map(|f| &f.lines)
            .flat_map(|l| &l.tokens)
        {
            if matches!(t.key.as_str(), "ATTR" | "ATTRS") {
                if let Some(a) = &t.attr {
                    out.insert(a.clone());
                }
            }
            for cap in t.value.split("$attr{").skip(1) {
                if let Some(end) = cap.find('}') {
                    out.insert(cap[..end].to_string());
                }
            }
        }
        out
    }
}

pub fn read(
    root: &Root,
    extra_dirs: &[PathBuf],
    db: &ModDb,
    warnings: &mut Vec<Warning>,
) -> Result<Rules> {
    let all = read_all(root, extra_dirs, warnings)?;
    let mut rdma: Vec<RulesFile> = all
        .iter()
        .filter(|f| concerns_rdma(f, db))
        .cloned()
        .collect();
    let own = rdma.is_empty();
    if own {
        for e in units::RULES {
            let name = e.dest.rsplit('/').next().unwrap_or(e.name).to_string();
            rdma.push(RulesFile::from_text(
                name,
                e.dest.into(),
                Source::Own(e),
                e.text,
                warnings,
            ));
        }
    }
    Ok(Rules { all, rdma, own })
}

/// Every rules file of the root (after `--rules-dir` directories), in
/// udev's order, parsed.
pub fn read_all(
    root: &Root,
    extra_dirs: &[PathBuf],
    warnings: &mut Vec<Warning>,
) -> Result<Vec<RulesFile>> {
    let mut dirs: Vec<Dir> = extra_dirs
        .iter()
        .map(|d| Dir::Host {
            host: d.clone(),
            as_dir: "/etc/udev/rules.d".into(),
        })
        .collect();
    dirs.extend(overlay::root_dirs(RULES_DIRS));
    let mut all = Vec::new();
    for f in overlay::walk(root, &dirs, |n| n.ends_with(".rules"), warnings)? {
        let host = f.source.host().expect("a file").to_path_buf();
        match read_capped(&host, MAX_CONFIG_FILE) {
            Ok(b) => {
                let text = crate::root::text_ref(&b);
                all.push(RulesFile::from_text(
                    f.name, f.inner, f.source, &text, warnings,
                ));
            }
            Err(e) => warnings.push(InputError::new(
                &host.display().to_string(),
                None,
                e.to_string(),
            )),
        }
    }
    Ok(all)
}

/// A rules file concerns RDMA when it loads an RDMA module, reads or sets an
/// `ID_RDMA_*` property, or matches an RDMA subsystem.
fn concerns_rdma(f: &RulesFile, db: &ModDb) -> bool {
    f.lines.iter().flat_map(|l| &l.tokens).any(|t| {
        (t.key == "ENV" && t.attr.as_deref().is_some_and(|a| a.starts_with("ID_RDMA_")))
            || (matches!(t.key.as_str(), "SUBSYSTEM" | "SUBSYSTEMS")
                && t.is_match()
                && t.value.split('|').any(|alt| {
                    !alt.is_empty()
                        && alt != "*"
                        && RDMA_SUBSYSTEMS.iter().any(|s| name::fnmatch(alt, s))
                }))
            || (t.key == "RUN"
                && t.attr.as_deref() == Some("builtin")
                && eval::kmod_load_args(&t.value)
                    .iter()
                    .any(|m| is_rdma_request(db, m)))
    })
}

fn is_rdma_request(db: &ModDb, req: &str) -> bool {
    !req.contains('$')
        && !req.contains('%')
        && db
            .lookup(req)
            .map(|found| found.iter().any(|(m, _)| is_rdma_module(db, m)))
            .unwrap_or(false)
}

/// An RDMA module (a provider, the core, or a ULP): one under
/// drivers/infiniband/ (the kernel's, or MOFED's
/// `extra/mlnx-ofa_kernel/drivers/infiniband/`), or, outside the kernel's
/// own tree (`updates/`, `updates/dkms/`, `extra/`, `weak-updates/`: where
/// DKMS and MOFED install their builds), `ib_core` or a module that depends
/// on it (modules.dep lists the whole closure).
pub fn is_rdma_module(db: &ModDb, m: &str) -> bool {
    match db.kind(m) {
        ModKind::File(p) if p.starts_with(RDMA_DIR) || p.contains("/drivers/infiniband/") => true,
        ModKind::File(p) if !p.starts_with("kernel/") => {
            name::normalize_modname(m) == "ib_core"
                || db.dependencies(m).iter().any(|d| d == "ib_core")
        }
        _ => false,
    }
}
