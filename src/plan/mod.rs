//! From facts and a selection to a plan: the modules (in load order),
//! firmware and files an initramfs needs, each with why. `plan` is a pure
//! function of its arguments, a short pipeline of named stages:
//!
//! 1. [`demand`]: the hardware (this machine's, profiles', or any), evaluated
//!    against the RDMA rules: module requests, units wanted, protocols, and
//!    the roots over RDMA to mount;
//! 2. [`unit_graph`]: the units wanted, what they want, their programs and
//!    the module lists they load;
//! 3. [`without_systemd`]: for `--init udev`, the rules file that loads what
//!    the units would, and `--protocol` lists loaded at boot;
//! 4. [`closure`]: every request resolved as libkmod does, its probe list,
//!    `.modinfo` followed to a fixpoint, blacklists applied; firmware;
//! 5. [`files`]: rules, modprobe.d files, programs and boot hooks.

mod closure;
mod demand;
mod files;
pub mod items;
mod reason;
mod unit_graph;
mod warning;
mod without_systemd;

pub use demand::{evaluate_devices, Evaluated};
pub use reason::Reason;
pub use warning::Warning;

use crate::facts::{Facts, Found, Needs};
use crate::kmod::compress;
use crate::netroot::{Generator, NetRootFact};
use crate::selection::{Init, Mode, Selection};
use crate::source::Source;
use crate::udev::device::Device;
use anyhow::Result;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PlanModule {
    pub name: String,
    /// Host path of the module file; None for builtin modules.
    pub path: Option<String>,
    /// Path relative to the module directory.
    pub relpath: Option<String>,
    pub size: Option<u64>,
    pub builtin: bool,
    pub compression: Option<compress::Compression>,
    /// False for weak dependencies: shipped, not loaded.
    pub load: bool,
    pub firmware: Vec<String>,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanFirmware {
    pub name: String,
    pub modules: Vec<String>,
    /// Each file found (none: missing).
    pub files: Vec<FwFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FwFile {
    /// Path in the root (and the image).
    pub path: String,
    /// Host path.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Rule,
    Unit,
    Conf,
    Modprobe,
    Program,
    /// What a program needs to run (its ELF interpreter and libraries, a
    /// script's interpreter): generators install these with the program,
    /// by their own resolvers.
    Library,
    /// A boot hook of the generator (dracut: DEST is HOOK/PRIO-NAME under
    /// its hook directory).
    Hook,
    /// The image's manifest (`manifest::DEST`): how it was made.
    Manifest,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Rule => "rule",
            FileKind::Unit => "unit",
            FileKind::Conf => "conf",
            FileKind::Modprobe => "modprobe",
            FileKind::Program => "program",
            FileKind::Library => "library",
            FileKind::Hook => "hook",
            FileKind::Manifest => "manifest",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanFile {
    pub kind: FileKind,
    pub source: Source,
    /// Path inside the image.
    pub dest: String,
    pub reason: String,
    /// The contents of a file rdma-initrd writes itself (source
    /// `generated:NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl PlanFile {
    pub fn new(
        kind: FileKind,
        source: Source,
        dest: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let text = match &source {
            Source::Generated { text, .. } => Some(text.clone()),
            _ => None,
        };
        PlanFile {
            kind,
            source,
            dest: dest.into(),
            reason: reason.into(),
            text,
        }
    }
}

/// How a unit wanted was found (`systemctl cat` of it lists `files`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitState {
    /// Found in the root.
    Root,
    /// Not in the root: rdma-initrd's own (units/).
    Embedded,
    /// Its file is a mask (a symlink to /dev/null, or empty): the want of it
    /// is dropped, as systemd drops it.
    Masked,
    /// Nowhere.
    Missing,
}

/// A unit the rules (or `--protocol`) want, directly or through another
/// unit, and the files systemd reads for it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanUnit {
    pub name: String,
    pub wanted: String,
    pub state: UnitState,
    /// The unit file, then its drop-ins in the order systemd applies them
    /// (what `systemctl cat` shows), paths inside the root.
    pub files: Vec<String>,
    /// Alias symlinks followed from the name to the unit file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// The mask, for a masked unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// What each drop-in sets: "PATH: KEY, KEY".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

/// A module to load at boot whatever the hardware, without systemd
/// (`--protocol` with `--init udev`).
#[derive(Debug, Clone, Serialize)]
pub struct Preload {
    pub module: String,
    pub conf: String,
    pub line: usize,
    /// The list in the image that the generator's boot code loads.
    pub list: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Excluded {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub reason: String,
    pub requested_by: Vec<Reason>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotFound {
    pub request: String,
    pub requested_by: Reason,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    pub device: Device,
    pub loads: Vec<RuleHit>,
    pub protocols: Vec<String>,
    pub wants: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleHit {
    pub module: String,
    pub request: String,
    pub via: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub schema: u32,
    pub root: String,
    pub kver: String,
    pub moddir: String,
    pub mode: Mode,
    pub init: Init,
    pub generator: Generator,
    pub profiles: Vec<String>,
    /// "root": the root's RDMA rules decide; "embedded": it has none, and
    /// rdma-initrd's own (units/) are used.
    pub rules_source: String,
    /// Units to start in the initrd whatever the hardware (`--protocol`),
    /// wanted by initrd.target.
    pub wants: Vec<String>,
    /// Without systemd, what those units would load (in order).
    pub preload: Vec<Preload>,
    pub devices: Vec<DeviceReport>,
    pub protocols: Vec<String>,
    /// Roots over RDMA the image can mount, each with why.
    pub netroot: Vec<NetRootFact>,
    /// The units wanted, in the order they were followed, with the files
    /// read for each.
    pub units: Vec<PlanUnit>,
    pub modules: Vec<PlanModule>,
    pub firmware: Vec<PlanFirmware>,
    pub files: Vec<PlanFile>,
    pub excluded: Vec<Excluded>,
    pub not_found: Vec<NotFound>,
    pub warnings: Vec<Warning>,
    /// Rule lines with keys this tool does not evaluate (shown with -v).
    pub not_understood: Vec<String>,
}

impl Plan {
    /// Where the loader template (`rdma-load-modules@.service`) is in the
    /// image: what `initrd.target.wants` links for `--protocol` point to.
    pub fn loader_template(&self) -> Option<&str> {
        self.files
            .iter()
            .find(|f| {
                f.kind == FileKind::Unit
                    && f.dest.rsplit('/').next() == Some(crate::systemd::LOADER_TEMPLATE)
            })
            .map(|f| f.dest.as_str())
    }
}

/// A name to resolve to modules, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    pub name: String,
    pub reason: Reason,
}

/// A stage's result, or what must be read (`facts::Readers`, into the
/// `Found`) before it can have one.
pub enum Progress<T> {
    Done(T),
    Needs(Needs),
}

/// A plan, or what must be read first.
pub type Step = Progress<Box<Plan>>;

/// The plan for `sel` from `facts` and what has been `found` for it so far
/// (module files' `.modinfo`, firmware): a pure function. Where the module
/// closure reaches what is not in `found`, it says so instead:
///
/// ```text
/// let mut found = Found::default();
/// let plan = loop {
///     match plan::step(&facts, &found, sel)? {
///         Step::Done(p) => break *p,
///         Step::Needs(n) => readers.read(&facts.db, &n, &mut found)?,
///     }
/// };
/// ```
pub fn step(facts: &Facts, found: &Found, sel: &Selection) -> Result<Step> {
    let mut warnings: Vec<Warning> = facts.warnings.iter().cloned().map(Warning::Input).collect();
    let demand = demand::demand(facts, sel)?;
    warnings.extend(demand.warnings.iter().cloned());
    let units = unit_graph::walk(facts, sel, &demand.wants)?;
    warnings.extend(units.warnings.iter().cloned());
    let boot = without_systemd::plan(sel, &demand.wants, &units);
    warnings.extend(boot.warnings.iter().cloned());
    let requests: Vec<Request> = demand
        .requests
        .iter()
        .chain(units.requests.iter())
        .cloned()
        .collect();
    let modules = match closure::resolve(facts, found, &requests)? {
        Progress::Done(m) => m,
        Progress::Needs(n) => return Ok(Step::Needs(n)),
    };
    warnings.extend(modules.warnings.iter().cloned());
    let firmware = match closure::firmware(found, &modules.modules) {
        Progress::Done(f) => f,
        Progress::Needs(n) => return Ok(Step::Needs(n)),
    };
    warnings.extend(firmware.1.iter().cloned());
    let mut files = files::plan_files(facts, sel, &demand, &units, &modules)?;
    warnings.append(&mut files.warnings);
    if let Some(f) = boot.rules_file {
        files.files.push(f);
    }
    files
        .files
        .sort_by(|a, b| (a.kind, &a.dest).cmp(&(b.kind, &b.dest)));
    files.files.dedup_by(|a, b| a.dest == b.dest);
    // A library that is planned as a program already (a script's
    // interpreter) is that program.
    let others: std::collections::HashSet<String> = files
        .files
        .iter()
        .filter(|f| f.kind != FileKind::Library)
        .map(|f| f.dest.clone())
        .collect();
    files
        .files
        .retain(|f| f.kind != FileKind::Library || !others.contains(&f.dest));
    warnings.extend(facts.index_warnings.iter().cloned().map(Warning::Input));
    warnings.extend(facts.db.lookup_warnings().into_iter().map(Warning::Input));
    if facts.rules.own {
        warnings.push(Warning::OwnRules);
    }
    let not_understood = crate::udev::eval::not_understood(&facts.rules.rdma)
        .into_iter()
        .map(|(o, k)| format!("{o}: key {k} is not evaluated (the line is kept in the image)"))
        .collect();
    Ok(Step::Done(Box::new(Plan {
        schema: 1,
        root: facts.root.base().display().to_string(),
        kver: facts.kver.clone(),
        moddir: facts.moddir.display().to_string(),
        mode: sel.mode,
        init: sel.init,
        generator: sel.generator,
        profiles: facts.profiles.iter().map(|(p, _)| p.clone()).collect(),
        rules_source: if facts.rules.own { "embedded" } else { "root" }.into(),
        wants: match sel.init {
            Init::Systemd => sel
                .protocols
                .iter()
                .map(|p| crate::systemd::loader_unit(p))
                .collect(),
            Init::Udev => Vec::new(),
        },
        preload: boot.preload,
        devices: demand.reports,
        protocols: demand.protocols.into_iter().collect(),
        netroot: demand.netroots,
        units: units.units,
        modules: modules.modules,
        firmware: firmware.0,
        files: files.files,
        excluded: modules.excluded,
        not_found: modules.not_found,
        warnings,
        not_understood,
    })))
}

#[cfg(test)]
mod tests;
