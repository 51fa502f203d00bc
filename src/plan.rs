//! From a root, a kernel and a selection to a plan: the modules (in load
//! order), firmware and files an initramfs needs, each with why.

use crate::error::{InputError, Warning};
use crate::kmod::config::Origin;
use crate::kmod::{compress, modinfo, name, ModDb, ModKind, SoftdepMode, Via};
use crate::netroot::{self, Generator, NetRoot, NetRootFact};
use crate::root::Root;
use crate::systemd;
use crate::udev::device::{Device, Parent};
use crate::udev::eval::{self, EffectKind, Outcome};
use crate::udev::no_systemd;
use crate::udev::rules::{self, RulesFile};
use crate::units;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Module files are refused beyond this size once decompressed.
pub const MAX_MODULE_BYTES: u64 = 256 << 20;
/// Where RDMA providers live in a module tree.
pub const RDMA_DIR: &str = "kernel/drivers/infiniband/";
pub const RDMA_HW_DIR: &str = "kernel/drivers/infiniband/hw/";
/// Subsystems of RDMA devices as udev sees them.
const RDMA_SUBSYSTEMS: &[&str] = &["infiniband", "infiniband_mad", "infiniband_verbs"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Hostonly,
    Generic,
    /// Only what --profile/--driver/--protocol name.
    Selected,
}

#[derive(Debug, Clone)]
pub struct Selection {
    pub mode: Mode,
    pub profiles: Vec<PathBuf>,
    pub drivers: Vec<String>,
    pub protocols: Vec<String>,
    /// Roots over RDMA the image must mount (`--netroot`); None: decided by
    /// the mode (host-only: this machine's root; generic: every one the
    /// generator can mount; profiles: theirs).
    pub netroot: Option<Vec<NetRoot>>,
}

/// What runs in the initramfs: it decides how the units the rules want are
/// honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// systemd (dracut, mkinitcpio's `systemd` hook): the units and their
    /// confs are installed and systemd starts them.
    #[default]
    Systemd,
    /// udev without systemd (initramfs-tools, mkinitcpio's `udev` hook): a
    /// generated rules file loads what the wanted units would.
    Udev,
}

#[derive(Debug, Clone)]
pub struct Inputs {
    pub root: Root,
    pub kver: String,
    pub moddir: PathBuf,
    pub sysfs: PathBuf,
    pub selection: Selection,
    pub extra_config: Vec<PathBuf>,
    /// Extra udev rules directories, read before the root's (`--rules-dir`).
    pub extra_rules: Vec<PathBuf>,
    pub init: Init,
    /// The generator the plan is for (`--generator`, passed by the hooks).
    pub generator: Generator,
}

/// Why something is in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A `kmod load` in a rule that matched a device (or any rule, generic).
    Rule {
        file: String,
        line: usize,
        request: String,
        device: Option<String>,
    },
    /// Listed in a modules-load conf.
    Conf {
        file: String,
        line: usize,
        request: String,
    },
    /// A device's modalias names an RDMA provider.
    Modalias {
        device: String,
        modalias: String,
    },
    /// An RDMA device exists and this is its driver.
    Loaded {
        device: String,
    },
    /// Every RDMA hardware provider of the kernel (generic images).
    Generic,
    /// `--driver`.
    Requested {
        request: String,
    },
    Dependency {
        of: String,
    },
    Softdep {
        of: String,
        file: String,
        line: usize,
        when: String,
    },
    Weakdep {
        of: String,
        file: String,
        line: usize,
    },
    /// The transport of a root over RDMA the image must mount.
    Netroot {
        root: NetRoot,
        request: String,
    },
}

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
    /// (root-relative path, host path) of each file found.
    pub files: Vec<FwFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FwFile {
    pub path: String,
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Rule,
    Unit,
    Conf,
    Modprobe,
    Program,
    /// A boot hook of the generator (dracut: DEST is HOOK/PRIO-NAME under
    /// its hook directory).
    Hook,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanFile {
    pub kind: FileKind,
    /// Host path to copy from.
    pub source: String,
    /// Path inside the image.
    pub dest: String,
    pub reason: String,
    /// The contents of a file rdma-initrd writes itself (source
    /// `generated:NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl PlanFile {
    /// The file name and contents of a file rdma-initrd provides itself
    /// (generated, or embedded from units/); None for a file of the root.
    pub fn own_content(&self) -> Option<(&str, &str)> {
        match (&self.text, units::by_source(&self.source)) {
            (Some(t), _) => Some((
                self.source.strip_prefix(GENERATED).unwrap_or(&self.source),
                t.as_str(),
            )),
            (None, Some(e)) => Some((e.name, e.text)),
            (None, None) => None,
        }
    }
}

/// A module to load at boot whatever the hardware, without systemd
/// (`--protocol` with `--init udev`).
#[derive(Debug, Clone, Serialize)]
pub struct Preload {
    pub module: String,
    pub conf: String,
    pub line: usize,
}

/// How a generated file is named as a plan source.
pub const GENERATED: &str = "generated:";

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
    pub modules: Vec<PlanModule>,
    pub firmware: Vec<PlanFirmware>,
    pub files: Vec<PlanFile>,
    pub excluded: Vec<Excluded>,
    pub not_found: Vec<NotFound>,
    pub warnings: Vec<String>,
    /// Rule lines with keys this tool does not evaluate (shown with -v).
    pub not_understood: Vec<String>,
}

/// A profile: what `detect --json` printed on another machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub schema: u32,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub kver: Option<String>,
    pub devices: Vec<Device>,
    /// The node's root, when it is mounted over RDMA.
    #[serde(default)]
    pub netroot: Option<NetRootFact>,
}

/// (unit chain, module lists) of a wanted unit.
type WantLoadsOf = (Vec<String>, Vec<String>);

struct Request {
    name: String,
    reason: Reason,
}

/// Everything read once and shared by detect and plan.
pub struct Ctx {
    pub inputs: Inputs,
    pub db: ModDb,
    pub rules: Vec<RulesFile>,
    /// Indices into `rules` of the files that concern RDMA.
    pub rdma_rules: Vec<usize>,
    /// True when the root has no RDMA rules and rdma-initrd's own are used.
    pub embedded_rules: bool,
    pub warnings: Vec<Warning>,
}

impl Ctx {
    pub fn open(inputs: Inputs) -> Result<Self> {
        let db = ModDb::open_with(
            &inputs.root,
            &inputs.moddir,
            &inputs.kver,
            &inputs.extra_config,
            &[&units::MODPROBE],
        )?;
        let mut warnings = Vec::new();
        let rules = rules::load(&inputs.root, &inputs.extra_rules, &mut warnings)?;
        let mut ctx = Ctx {
            inputs,
            db,
            rules,
            rdma_rules: Vec::new(),
            embedded_rules: false,
            warnings,
        };
        ctx.rdma_rules = (0..ctx.rules.len())
            .filter(|&i| ctx.is_rdma_rules_file(&ctx.rules[i]))
            .collect();
        if ctx.rdma_rules.is_empty() {
            // No rdma-core in the root: rdma-initrd's own rules decide.
            for e in units::RULES {
                let name = e.dest.rsplit('/').next().unwrap_or(e.name).to_string();
                let f = RulesFile::from_text(
                    name,
                    e.dest.into(),
                    units::source_of(e).into(),
                    e.text,
                    &mut ctx.warnings,
                );
                ctx.rdma_rules.push(ctx.rules.len());
                ctx.rules.push(f);
            }
            ctx.embedded_rules = true;
        }
        Ok(ctx)
    }

    fn rdma_files(&self) -> Vec<RulesFile> {
        self.rdma_rules
            .iter()
            .map(|&i| self.rules[i].clone())
            .collect()
    }

    /// A rules file concerns RDMA when it loads an RDMA module, reads or sets
    /// an `ID_RDMA_*` property, or matches an RDMA subsystem.
    fn is_rdma_rules_file(&self, f: &RulesFile) -> bool {
        for l in &f.lines {
            for t in &l.tokens {
                if t.attr.as_deref().is_some_and(|a| a.starts_with("ID_RDMA_")) && t.key == "ENV" {
                    return true;
                }
                if matches!(t.key.as_str(), "SUBSYSTEM" | "SUBSYSTEMS")
                    && t.is_match()
                    && t.value.split('|').any(|alt| {
                        RDMA_SUBSYSTEMS.iter().any(|s| name::fnmatch(alt, s))
                            && alt != "*"
                            && !alt.is_empty()
                    })
                {
                    return true;
                }
                if t.key == "RUN"
                    && t.attr.as_deref() == Some("builtin")
                    && eval::kmod_load_args(&t.value)
                        .iter()
                        .any(|m| self.is_rdma_module_request(m))
                {
                    return true;
                }
            }
        }
        false
    }

    fn is_rdma_module_request(&self, req: &str) -> bool {
        if req.contains('$') || req.contains('%') {
            return false;
        }
        match self.db.lookup(req) {
            Ok(found) => found.iter().any(|(m, _)| self.is_rdma_module(m)),
            Err(_) => false,
        }
    }

    pub fn is_rdma_module(&self, m: &str) -> bool {
        matches!(self.db.kind(m), ModKind::File(p) if p.starts_with(RDMA_DIR) || p.contains("/drivers/infiniband/"))
    }

    /// Attribute names the RDMA rules refer to (read from sysfs for each device).
    pub fn referenced_attrs(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for &i in &self.rdma_rules {
            for l in &self.rules[i].lines {
                for t in &l.tokens {
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
            }
        }
        out
    }

    /// Devices of this machine (host-only detection).
    pub fn detect_devices(&self) -> (Vec<Device>, Vec<Warning>) {
        let udev_db = self
            .inputs
            .root
            .resolve("/run/udev/data")
            .ok()
            .filter(|p| p.is_dir());
        let s = crate::sysfs::Sysfs::new(&self.inputs.sysfs, udev_db);
        let d = s.detect(Some(&self.db), &self.referenced_attrs());
        (d.devices, d.warnings)
    }
}

impl Ctx {
    /// This machine's root, when it is mounted over RDMA: its mount table
    /// (ROOT/proc/self/mountinfo) and the block devices under it (sysfs).
    pub fn detect_netroot(&self) -> Result<Option<NetRootFact>> {
        let Some(text) = self.inputs.root.read_opt("/proc/self/mountinfo")? else {
            return Ok(None);
        };
        let mounts = netroot::parse_mountinfo(&String::from_utf8_lossy(&text));
        Ok(netroot::detect(&mounts, |dev| {
            netroot::block_facts(&self.inputs.sysfs, dev)
        }))
    }
}

/// The roots over RDMA a plan is for, each with why: `--netroot`, else by
/// mode. A root the generator cannot mount is an error.
fn choose_netroots(ctx: &Ctx, profiles: &[(String, Profile)]) -> Result<Vec<NetRootFact>> {
    let inputs = &ctx.inputs;
    let sel = &inputs.selection;
    let gen = inputs.generator;
    let mut out: Vec<NetRootFact> = Vec::new();
    let mut add = |root: NetRoot, evidence: String| {
        if !out.iter().any(|f| f.root == root) {
            out.push(NetRootFact { root, evidence });
        }
    };
    match &sel.netroot {
        Some(list) => {
            for r in list {
                add(*r, format!("--netroot {r}"));
            }
        }
        None => {
            if sel.mode == Mode::Hostonly {
                if let Some(f) = ctx.detect_netroot()? {
                    add(f.root, format!("this machine: {}", f.evidence));
                }
            }
            if sel.mode == Mode::Generic {
                for r in gen.generic_netroots() {
                    add(
                        r,
                        format!(
                            "a generic image mounts any root over RDMA that {} can",
                            gen.name()
                        ),
                    );
                }
            }
            for (file, p) in profiles {
                if let Some(f) = &p.netroot {
                    add(f.root, format!("profile {file}: {}", f.evidence));
                }
            }
        }
    }
    out.sort_by_key(|f| f.root);
    for f in &out {
        if let Some(why) = gen.cannot_mount(f.root) {
            anyhow::bail!(
                "{} cannot mount {} over RDMA ({}): {why}; build the image with dracut",
                gen.name(),
                f.root.a_root(),
                f.evidence
            );
        }
    }
    Ok(out)
}

/// The evaluation of a set of devices against the rules.
pub struct Evaluated {
    pub reports: Vec<DeviceReport>,
    requests: Vec<Request>,
    wants: Vec<(String, Origin)>,
}

/// Evaluate devices: hardware rules and modaliases give providers; RDMA
/// devices (real, or hypothetical under hardware whose provider is not loaded
/// yet) give protocols and wanted units.
pub fn evaluate_devices(ctx: &Ctx, devices: &[Device]) -> Evaluated {
    let files = ctx.rdma_files();
    let mut reports = Vec::new();
    let mut requests = Vec::new();
    let mut wants = Vec::new();
    let real_ib_parents: HashSet<String> = devices
        .iter()
        .filter(|d| d.subsystem == "infiniband")
        .flat_map(|d| ancestor_paths(&d.devpath))
        .collect();
    let mut hypothetical: Vec<Device> = Vec::new();
    let mut hyp_keys: HashSet<String> = HashSet::new();
    for dev in devices.iter().filter(|d| d.subsystem != "infiniband") {
        let o = eval::evaluate(&files, dev);
        let mut loads = Vec::new();
        let mut provider = None;
        for (req, origin) in o.kmod_loads() {
            let mods = ctx.db.lookup(req).unwrap_or_default();
            for (m, _) in &mods {
                loads.push(RuleHit {
                    module: m.clone(),
                    request: req.to_string(),
                    via: origin.to_string(),
                });
                if ctx.is_rdma_module(m) {
                    provider.get_or_insert(m.clone());
                }
            }
            if mods.is_empty() {
                loads.push(RuleHit {
                    module: String::new(),
                    request: req.to_string(),
                    via: origin.to_string(),
                });
            }
            requests.push(Request {
                name: req.to_string(),
                reason: Reason::Rule {
                    file: origin.file.clone(),
                    line: origin.line,
                    request: req.to_string(),
                    device: Some(dev.devpath.clone()),
                },
            });
        }
        if matches!(dev.subsystem.as_str(), "pci" | "auxiliary") {
            if let Some(ma) = dev.modalias() {
                for (m, _) in ctx.db.lookup(ma).unwrap_or_default() {
                    if ctx.is_rdma_module(&m) {
                        loads.push(RuleHit {
                            module: m.clone(),
                            request: ma.to_string(),
                            via: "modalias".into(),
                        });
                        provider.get_or_insert(m.clone());
                        requests.push(Request {
                            name: m.clone(),
                            reason: Reason::Modalias {
                                device: dev.devpath.clone(),
                                modalias: ma.to_string(),
                            },
                        });
                    }
                }
            }
        }
        if let Some(p) = provider {
            let n = hypothetical
                .iter()
                .filter(|h| h.kernel.starts_with(&format!("{p}_")))
                .count();
            if let Some(h) = hypothetical_rdma_device(dev, &p, n) {
                let key = hardware_key(&h);
                if !real_ib_parents.contains(&key) && hyp_keys.insert(key) {
                    hypothetical.push(h);
                }
            }
        }
        if !loads.is_empty() || dev.subsystem == "net" {
            reports.push(DeviceReport {
                device: dev.clone(),
                loads,
                protocols: Vec::new(),
                wants: Vec::new(),
            });
        }
    }
    let ib: Vec<Device> = devices
        .iter()
        .filter(|d| d.subsystem == "infiniband")
        .cloned()
        .chain(hypothetical)
        .collect();
    for dev in &ib {
        let o = eval::evaluate(&files, dev);
        let mut loads = Vec::new();
        if !dev.hypothetical {
            // The driver of an existing RDMA device must be in the image too.
            if let Some(m) = dev
                .parents
                .iter()
                .filter_map(|p| p.driver.as_deref())
                .map(name::normalize_modname)
                .find(|m| ctx.is_rdma_module(m))
            {
                loads.push(RuleHit {
                    module: m.clone(),
                    request: m.clone(),
                    via: "bound driver".into(),
                });
                requests.push(Request {
                    name: m,
                    reason: Reason::Loaded {
                        device: dev.devpath.clone(),
                    },
                });
            }
        }
        for (u, origin) in o.wants() {
            wants.push((u.to_string(), origin.clone()));
        }
        reports.push(DeviceReport {
            device: dev.clone(),
            loads,
            protocols: o.protocols(),
            wants: o.wants().map(|(u, _)| u.to_string()).collect(),
        });
    }
    Evaluated {
        reports,
        requests,
        wants,
    }
}

fn ancestor_paths(devpath: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = devpath;
    while let Some(i) = p.rfind('/') {
        p = &p[..i];
        if p.is_empty() {
            break;
        }
        out.push(p.to_string());
    }
    out
}

/// The PCI function (or the device itself) an RDMA device hangs under.
fn hardware_key(ib: &Device) -> String {
    // parents are nearest first; devpaths of parents are prefixes of ours.
    let anc = ancestor_paths(&ib.devpath);
    let pci_depth = ib
        .parents
        .iter()
        .position(|p| p.subsystem.as_deref() == Some("pci"));
    match pci_depth {
        Some(d) => anc
            .get(d + 1)
            .cloned()
            .unwrap_or_else(|| ib.devpath.clone()),
        None => anc.get(1).cloned().unwrap_or_else(|| ib.devpath.clone()),
    }
}

/// An RDMA device as its provider would create it under `dev`'s hardware.
fn hypothetical_rdma_device(dev: &Device, provider: &str, index: usize) -> Option<Device> {
    let (parent_path, parents): (String, Vec<Parent>) = if dev.subsystem == "net" {
        // /devices/.../<pci>/net/<if>: the port's device is the parent.
        let p = dev.devpath.rsplit_once("/net/")?.0.to_string();
        (p, dev.parents.clone())
    } else {
        (
            dev.devpath.clone(),
            std::iter::once(dev.as_parent())
                .chain(dev.parents.iter().cloned())
                .collect(),
        )
    };
    let kernel = format!("{provider}_{index}");
    Some(Device {
        subsystem: "infiniband".into(),
        devpath: format!("{parent_path}/infiniband/{kernel}"),
        kernel,
        driver: None,
        properties: BTreeMap::new(),
        attrs: BTreeMap::new(),
        parents,
        hypothetical: true,
        notes: vec![format!(
            "hypothetical: {provider} is not loaded; evaluated as if its RDMA device existed"
        )],
    })
}

/// A bare RDMA device with the given protocol properties preset (for
/// `--driver`/`--protocol`, where there is no device to evaluate).
fn synthetic_rdma_device(protocols: &[String]) -> Device {
    let mut d = Device {
        subsystem: "infiniband".into(),
        kernel: "rdma_0".into(),
        devpath: "/devices/virtual/infiniband/rdma_0".into(),
        hypothetical: true,
        ..Default::default()
    };
    for p in protocols {
        d.properties
            .insert(format!("ID_RDMA_{}", p.to_ascii_uppercase()), "1".into());
    }
    d.notes
        .push("synthetic: stands for the RDMA devices of --driver/--protocol".into());
    d
}

pub fn read_profile(path: &Path) -> Result<Profile> {
    let bytes = crate::root::read_capped(path, crate::root::MAX_CONFIG_FILE)
        .with_context(|| path.display().to_string())?;
    let text = String::from_utf8_lossy(&bytes);
    let p: Profile = serde_json::from_str(&text).map_err(|e| {
        InputError::at(
            &path.display().to_string(),
            e.line(),
            format!("not a `detect --json` profile: {e}"),
        )
    })?;
    if p.schema != 1 {
        anyhow::bail!(
            "{}: profile schema {} is not supported (expected 1)",
            path.display(),
            p.schema
        );
    }
    Ok(p)
}

/// Build the plan.
pub fn build(ctx: &Ctx) -> Result<Plan> {
    build_with(ctx, true)
}

/// Build the plan; without `modinfo`, module files are not opened (no
/// firmware, sizes, compression, or .modinfo cross-check of depmod's files):
/// what `modules` needs, as fast as reading depmod's files allows.
pub fn build_with(ctx: &Ctx, modinfo: bool) -> Result<Plan> {
    let inputs = &ctx.inputs;
    let sel = &inputs.selection;
    let mut warnings: Vec<String> = ctx.warnings.iter().map(|w| w.to_string()).collect();
    let mut requests: Vec<Request> = Vec::new();
    let mut wants: Vec<(String, Origin)> = Vec::new();
    let mut reports = Vec::new();
    let files = ctx.rdma_files();

    // 1. What hardware.
    let mut devices = Vec::new();
    if sel.mode == Mode::Hostonly {
        let (d, w) = ctx.detect_devices();
        warnings.extend(w.iter().map(|w| w.to_string()));
        devices.extend(d);
    }
    let mut profiles = Vec::new();
    for p in &sel.profiles {
        let prof = read_profile(p)?;
        devices.extend(prof.devices.iter().cloned());
        profiles.push((p.display().to_string(), prof));
    }
    let netroots = choose_netroots(ctx, &profiles)?;
    for f in &netroots {
        let (request, _) = f.root.transport();
        requests.push(Request {
            name: request.to_string(),
            reason: Reason::Netroot {
                root: f.root,
                request: request.to_string(),
            },
        });
    }
    if sel.mode == Mode::Generic {
        for e in eval::all_effects(&files) {
            match e.kind {
                EffectKind::KmodLoad(m) if !m.contains('$') && !m.contains('%') => {
                    requests.push(Request {
                        name: m.clone(),
                        reason: Reason::Rule {
                            file: e.origin.file.clone(),
                            line: e.origin.line,
                            request: m,
                            device: None,
                        },
                    })
                }
                EffectKind::Wants(u) => wants.push((u, e.origin)),
                _ => {}
            }
        }
        for m in ctx.db.modules_under(RDMA_HW_DIR) {
            requests.push(Request {
                name: m,
                reason: Reason::Generic,
            });
        }
    }
    if !devices.is_empty() {
        let ev = evaluate_devices(ctx, &devices);
        requests.extend(ev.requests);
        wants.extend(ev.wants);
        reports = ev.reports;
    }
    for d in &sel.drivers {
        requests.push(Request {
            name: d.clone(),
            reason: Reason::Requested { request: d.clone() },
        });
    }
    if !sel.drivers.is_empty() || !sel.protocols.is_empty() {
        let o: Outcome = eval::evaluate(&files, &synthetic_rdma_device(&sel.protocols));
        wants.extend(o.wants().map(|(u, o)| (u.to_string(), o.clone())));
    }

    // 2. Units the rules want, and the module lists they load.
    let mut plan_files: Vec<PlanFile> = Vec::new();
    let mut confs: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut programs: Vec<(String, String)> = Vec::new(); // (command word, reason)
    let mut unit_queue: Vec<(String, String)> = wants
        .iter()
        .map(|(u, o)| (u.clone(), format!("wanted by {o}")))
        .collect();
    let mut seen_units: HashSet<String> = HashSet::new();
    let systemd_init = inputs.init == Init::Systemd;
    // What each unit pulls in and the lists it loads (for --init udev).
    let mut unit_wants: HashMap<String, Vec<String>> = HashMap::new();
    let mut unit_confs: HashMap<String, Vec<String>> = HashMap::new();
    let mut protocols: BTreeSet<String> = BTreeSet::new();
    if sel.mode == Mode::Generic {
        for e in eval::all_effects(&files) {
            if let EffectKind::Env(k, v) = e.kind {
                if let Some(p) = k.strip_prefix("ID_RDMA_") {
                    if v == "1" {
                        protocols.insert(p.to_ascii_lowercase());
                    }
                }
            }
        }
    }
    for r in &reports {
        protocols.extend(r.protocols.iter().cloned());
    }
    protocols.extend(sel.protocols.iter().cloned());
    while let Some((unit, why)) = unit_queue.pop() {
        if !seen_units.insert(unit.clone()) {
            continue;
        }
        let (file_name, instance) = systemd::split_instance(&unit);
        let found = match systemd::find_unit(&inputs.root, &file_name)? {
            Some((inner, host)) => {
                let text =
                    std::fs::read_to_string(&host).with_context(|| host.display().to_string())?;
                Some((inner, host.display().to_string(), text, false))
            }
            None if ctx.embedded_rules => units::UNITS
                .iter()
                .find(|e| e.dest.rsplit('/').next() == Some(file_name.as_str()))
                .map(|e| {
                    (
                        e.dest.to_string(),
                        units::source_of(e),
                        e.text.to_string(),
                        true,
                    )
                }),
            None => None,
        };
        let Some((inner, source, text, embedded)) = found else {
            warnings.push(format!("unit {unit} ({why}) is not in the root"));
            continue;
        };
        let why = if embedded {
            format!("{why}; the root has no {file_name}: rdma-initrd's own")
        } else {
            why
        };
        let u = systemd::Unit::parse(&text);
        let loader: Vec<Vec<String>> = u
            .exec_lines(instance.as_deref())
            .into_iter()
            .filter(|w| w[0].rsplit('/').next() == Some("systemd-modules-load"))
            .collect();
        if file_name.ends_with(".target") {
            if systemd_init {
                push_file(&mut plan_files, FileKind::Unit, &source, &inner, &why);
            }
            for w in u.wants(instance.as_deref()) {
                unit_wants.entry(unit.clone()).or_default().push(w.clone());
                unit_queue.push((w, format!("wanted by {unit}")));
            }
        } else if !loader.is_empty() {
            if systemd_init {
                push_file(&mut plan_files, FileKind::Unit, &source, &inner, &why);
            }
            let before_initrd = u
                .values("Before")
                .flat_map(|v| v.split_ascii_whitespace())
                .any(|x| x == "initrd.target");
            if !before_initrd && systemd_init {
                push_file(
                    &mut plan_files,
                    FileKind::Unit,
                    &units::source_of(&units::INITRD_DROPIN),
                    &format!("/usr/lib/systemd/system/{file_name}.d/rdma-initrd.conf"),
                    &format!("{inner} lacks Before=initrd.target: initrd-cleanup would stop it before switch-root (rdma-core PR #1481)"),
                );
            }
            for words in &loader {
                if systemd_init {
                    programs.push((words[0].clone(), format!("ExecStart of {unit}")));
                }
                for conf in &words[1..] {
                    let host = inputs.root.resolve(conf)?;
                    confs.insert(conf.clone(), host);
                    unit_confs
                        .entry(unit.clone())
                        .or_default()
                        .push(conf.clone());
                }
            }
        } else {
            // A daemon the rules want (iwpmd for iWARP devices, rdma-ndd):
            // installed with its programs and what it wants, so that systemd
            // starts it in the initrd as on the host.
            let execs: Vec<String> = u
                .exec_lines(instance.as_deref())
                .into_iter()
                .map(|w| w[0].clone())
                .collect();
            let mut absent = Vec::new();
            for e in &execs {
                if systemd::first_existing(&inputs.root, &systemd::path_candidates(e))?.is_none() {
                    absent.push(e.as_str());
                }
            }
            if !systemd_init {
                warnings.push(format!(
                    "{unit} ({why}) is not installed: without systemd nothing starts it"
                ));
            } else if execs.is_empty() {
                warnings.push(format!("{unit} ({why}) is not installed: it runs nothing"));
            } else if !absent.is_empty() {
                warnings.push(format!(
                    "{unit} ({why}) is not installed: {} is not in the root",
                    absent.join(", ")
                ));
            } else {
                push_file(&mut plan_files, FileKind::Unit, &source, &inner, &why);
                for e in execs {
                    programs.push((e, format!("ExecStart of {unit}")));
                }
                // Its configuration, where the unit names it
                // (iwpmd.service: `Documentation=file:/etc/iwpmd.conf`).
                for doc in u
                    .values("Documentation")
                    .flat_map(|v| v.split_ascii_whitespace())
                    .filter_map(|d| d.strip_prefix("file:"))
                    .filter(|p| p.starts_with("/etc/"))
                {
                    let host = inputs.root.resolve(doc)?;
                    if host.is_file() {
                        push_file(
                            &mut plan_files,
                            FileKind::Conf,
                            &host.display().to_string(),
                            doc,
                            &format!("configuration of {unit} (its Documentation= names it)"),
                        );
                    }
                }
                for w in u.wants(instance.as_deref()) {
                    unit_wants.entry(unit.clone()).or_default().push(w.clone());
                    unit_queue.push((w, format!("wanted by {unit}")));
                }
            }
        }
    }
    if sel.mode == Mode::Generic {
        // Every conf, also those no rule wants (an image for any machine).
        for n in inputs.root.list_dir("/etc/rdma/modules")? {
            if n.ends_with(".conf") {
                let p = format!("/etc/rdma/modules/{n}");
                let host = inputs.root.resolve(&p)?;
                confs.entry(p).or_insert(host);
            }
        }
        if ctx.embedded_rules {
            for e in units::CONFS {
                let host = inputs.root.resolve(e.dest)?;
                confs.entry(e.dest.to_string()).or_insert(host);
            }
        }
    }
    let mut conf_names: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    for (conf, host) in &confs {
        let (text, source, why) = match crate::root::read_capped(host, crate::root::MAX_CONFIG_FILE)
        {
            Ok(b) => (
                String::from_utf8_lossy(&b).into_owned(),
                host.display().to_string(),
                "modules-load list of an RDMA unit".to_string(),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match units::CONFS
                    .iter()
                    .find(|e| e.dest == conf)
                    .filter(|_| ctx.embedded_rules)
                {
                    Some(e) => (
                        e.text.to_string(),
                        units::source_of(e),
                        format!("the root has no {conf}: rdma-initrd's own"),
                    ),
                    None => {
                        warnings.push(format!("{conf}: not found in the root"));
                        continue;
                    }
                }
            }
            Err(e) => anyhow::bail!("{}: {e}", host.display()),
        };
        let label = if source.starts_with(units::PREFIX) {
            source.clone()
        } else {
            host.display().to_string()
        };
        let names = systemd::parse_modules_list(&text, &label)?;
        push_file(&mut plan_files, FileKind::Conf, &source, conf, &why);
        conf_names.insert(conf.clone(), names.clone());
        for (n, line) in names {
            requests.push(Request {
                name: n.clone(),
                reason: Reason::Conf {
                    file: conf.clone(),
                    line,
                    request: n,
                },
            });
        }
    }

    // Without systemd: a rules file that loads what the wanted units would,
    // and the lists of --protocol loaded at boot.
    let mut preload = Vec::new();
    if !systemd_init {
        let follow = |unit: &str| -> WantLoadsOf {
            let mut chain = Vec::new();
            let mut list: Vec<String> = Vec::new();
            let mut stack = vec![unit.to_string()];
            while let Some(u) = stack.pop() {
                if chain.contains(&u) {
                    continue;
                }
                chain.push(u.clone());
                for c in unit_confs.get(&u).into_iter().flatten() {
                    if !list.contains(c) {
                        list.push(c.clone());
                    }
                }
                for w in unit_wants.get(&u).into_iter().flatten().rev() {
                    stack.push(w.clone());
                }
            }
            (chain, list)
        };
        let roots: BTreeSet<&String> = wants.iter().map(|(u, _)| u).collect();
        let entries: Vec<no_systemd::WantLoads> = roots
            .into_iter()
            .map(|u| {
                let (chain, list) = follow(u);
                no_systemd::WantLoads {
                    unit: u.clone(),
                    chain,
                    confs: list
                        .into_iter()
                        .map(|c| {
                            let n = conf_names
                                .get(&c)
                                .map(|v| v.iter().map(|(n, _)| n.clone()).collect())
                                .unwrap_or_default();
                            (c, n)
                        })
                        .collect(),
                }
            })
            .collect();
        for e in entries.iter().filter(|e| !no_systemd::expressible(e)) {
            warnings.push(format!(
                "{}: a unit or module name that a udev rules line cannot hold; without systemd nothing loads its lists",
                e.unit
            ));
        }
        if let Some(text) = no_systemd::rules(&entries) {
            plan_files.push(PlanFile {
                kind: FileKind::Rule,
                source: format!("{GENERATED}{}", no_systemd::FILE_NAME),
                dest: no_systemd::DEST.to_string(),
                reason: "no systemd in the initramfs: udev loads what the units the RDMA rules want would load".into(),
                text: Some(text),
            });
        }
        for p in &sel.protocols {
            let (_, list) = follow(&format!("rdma-load-modules@{p}.service"));
            for c in list {
                for (n, line) in conf_names.get(&c).into_iter().flatten() {
                    preload.push(Preload {
                        module: n.clone(),
                        conf: c.clone(),
                        line: *line,
                    });
                }
            }
        }
    }

    // 3. Resolve requests to modules and their closure.
    let mut acc = Acc::default();
    let mut excluded: BTreeMap<String, Excluded> = BTreeMap::new();
    let mut not_found = Vec::new();
    let mut seen_requests: HashSet<(String, String)> = HashSet::new();
    for req in &requests {
        let key = format!("{:?}", req.reason);
        if !seen_requests.insert((req.name.clone(), key)) {
            continue;
        }
        let found = match ctx.db.lookup(&req.name) {
            Ok(f) => f,
            Err(e) => {
                warnings.push(format!("'{}': {e}", req.name));
                continue;
            }
        };
        let found: Vec<String> = found
            .into_iter()
            .map(|(m, _)| m)
            .filter(|m| {
                ctx.db.kind(m) != ModKind::Missing || ctx.db.config.install_command(m).is_some()
            })
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
            if let Some(o) = ctx.db.config.blacklisted(&m) {
                let e = excluded.entry(m.clone()).or_insert_with(|| Excluded {
                    name: m.clone(),
                    file: o.file.clone(),
                    line: o.line,
                    reason: "blacklisted: udev's kmod builtin and systemd-modules-load do not load it by name".into(),
                    requested_by: Vec::new(),
                });
                e.requested_by.push(req.reason.clone());
                continue;
            }
            acc.add_closure(&ctx.db, &m, req.reason.clone(), false);
        }
    }
    // .modinfo of every module file (read on all cores), to a fixpoint: weak
    // dependencies (modprobe.d/modules.weakdep and `weakdep=`) are shipped with
    // their closure but not loaded; `depends=`/`softdep=` that depmod's files
    // lack (a stale depmod) are followed too, with a warning.
    let mut infos: HashMap<String, InfoResult> = HashMap::new();
    loop {
        let todo: Vec<String> = acc
            .order
            .iter()
            .filter(|m| !infos.contains_key(*m))
            .cloned()
            .collect();
        if todo.is_empty() {
            break;
        }
        let got = if modinfo {
            read_modinfos(ctx, &todo)
        } else {
            todo.iter().map(|_| None).collect()
        };
        for (m, r) in todo.iter().zip(got) {
            for (w, o) in ctx.db.weakdeps(m) {
                if !acc.reasons.contains_key(&w) {
                    let why = Reason::Weakdep {
                        of: m.clone(),
                        file: o.file.clone(),
                        line: o.line,
                    };
                    acc.add_closure(&ctx.db, &w, why, true);
                }
            }
            if let Some(Ok((_, _, mi))) = &r {
                let label = format!("modinfo of {m}");
                let shipped_only = !acc.load.get(m).copied().unwrap_or(true);
                for d in mi
                    .get("depends")
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.is_empty())
                {
                    let d = name::normalize_modname(d);
                    if !acc.reasons.contains_key(&d) {
                        warnings.push(format!("{m}: .modinfo depends on {d}, which modules.dep does not list (stale depmod?)"));
                        acc.add_closure(
                            &ctx.db,
                            &d,
                            Reason::Dependency { of: m.clone() },
                            shipped_only,
                        );
                    }
                }
                let mut extra: Vec<(String, Reason, bool)> = Vec::new();
                for sd in mi.get_all("softdep") {
                    let mut when = "";
                    for tok in sd.split_ascii_whitespace() {
                        match tok {
                            "pre:" => when = "pre",
                            "post:" => when = "post",
                            t if !when.is_empty() => {
                                for (x, _) in ctx.db.lookup(t).unwrap_or_default() {
                                    let why = Reason::Softdep {
                                        of: m.clone(),
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
                for wd in mi.get_all("weakdep") {
                    for t in wd.split_ascii_whitespace() {
                        for (x, _) in ctx.db.lookup(t).unwrap_or_default() {
                            let why = Reason::Weakdep {
                                of: m.clone(),
                                file: label.clone(),
                                line: 0,
                            };
                            extra.push((x, why, true));
                        }
                    }
                }
                for (x, why, ship) in extra {
                    if !acc.reasons.contains_key(&x) {
                        acc.add_closure(&ctx.db, &x, why, ship);
                    }
                }
            }
            infos.insert(m.clone(), r);
        }
    }
    // A blacklisted module that another included module needs stays.
    excluded.retain(|name, _| !acc.reasons.contains_key(name));
    let Acc {
        order,
        mut reasons,
        load,
    } = acc;

    // 4. Module files and .modinfo (read in parallel).
    let mut modules = Vec::new();
    let mut fw_map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &order {
        let info = infos.remove(m).flatten();
        let kind = ctx.db.kind(m);
        if kind == ModKind::Missing {
            let why = reasons
                .get(m)
                .and_then(|r| r.first())
                .map(|r| format!("{r:?}"))
                .unwrap_or_default();
            warnings.push(format!("{m} is not in this kernel (needed as {why})"));
            continue;
        }
        let (path, relpath, size, compression, firmware) = match (&kind, info) {
            (ModKind::File(rel), Some(Ok((size, comp, mi)))) => {
                if let Some(vm) = mi.get("vermagic") {
                    if vm.split_ascii_whitespace().next() != Some(inputs.kver.as_str()) {
                        warnings.push(format!(
                            "{m}: vermagic '{vm}' does not match kernel {}",
                            inputs.kver
                        ));
                    }
                }
                let fws: Vec<String> = mi.get_all("firmware").map(str::to_string).collect();
                let host = ctx.db.file_path(rel).display().to_string();
                (Some(host), Some(rel.clone()), Some(size), Some(comp), fws)
            }
            (ModKind::File(rel), Some(Err(e))) => {
                anyhow::bail!("{}: {e}", ctx.db.file_path(rel).display());
            }
            // Not read (`modules`): the path is still known.
            (ModKind::File(rel), None) => {
                let host = ctx.db.file_path(rel).display().to_string();
                (Some(host), Some(rel.clone()), None, None, Vec::new())
            }
            _ => (None, None, None, None, Vec::new()),
        };
        for f in &firmware {
            fw_map.entry(f.clone()).or_default().push(m.clone());
        }
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

    // 5. Firmware.
    let mut firmware = Vec::new();
    for (fw, mods) in fw_map {
        let found = crate::firmware::find(&inputs.root, &inputs.kver, &fw)?;
        if found.is_empty() {
            warnings.push(format!("firmware {fw} (for {}) not found", mods.join(", ")));
        }
        firmware.push(PlanFirmware {
            name: fw,
            modules: mods,
            files: found
                .into_iter()
                .map(|(p, h)| FwFile {
                    path: p,
                    source: h.display().to_string(),
                })
                .collect(),
        });
    }

    // 6. Rules, modprobe.d, programs.
    let included: HashSet<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    for &i in &ctx.rdma_rules {
        let f = &ctx.rules[i];
        push_file(
            &mut plan_files,
            FileKind::Rule,
            &f.host.display().to_string(),
            &f.path,
            if ctx.embedded_rules {
                "the root has no RDMA rules (no rdma-core): rdma-initrd's own"
            } else {
                "rules for RDMA devices"
            },
        );
        for l in &f.lines {
            for t in &l.tokens {
                let cmd = match (t.key.as_str(), t.attr.as_deref()) {
                    ("PROGRAM", _) | ("IMPORT", Some("program")) => Some(t.value.as_str()),
                    ("RUN", a) if a != Some("builtin") && !t.is_match() => Some(t.value.as_str()),
                    _ => None,
                };
                if let Some(word) = cmd.and_then(|c| c.split_ascii_whitespace().next()) {
                    programs.push((
                        format!("udev:{word}"),
                        format!("run by {}:{}", f.path, l.line),
                    ));
                }
            }
        }
    }
    // The net rules match ID_NET_DRIVER, which only the net_setup_link (or
    // net_driver) builtin sets: its rules file must be in the image too.
    if let Some(m) = ctx
        .rdma_rules
        .iter()
        .map(|&i| &ctx.rules[i])
        .find(|f| f.matches_net_driver())
    {
        match ctx.rules.iter().find(|f| f.sets_net_driver() && !f.host.starts_with(units::PREFIX)) {
            Some(f) => push_file(
                &mut plan_files,
                FileKind::Rule,
                &f.host.display().to_string(),
                &f.path,
                &format!("sets ID_NET_DRIVER, which {} matches", m.path),
            ),
            None => push_file(
                &mut plan_files,
                FileKind::Rule,
                &units::source_of(&units::NET_SETUP_LINK),
                units::NET_SETUP_LINK.dest,
                &format!("{} matches ID_NET_DRIVER and no rules file of the root sets it: rdma-initrd's own", m.path),
            ),
        }
    }
    for cf in ctx.db.config.files.iter().filter(|c| c.modprobe_d) {
        let names: Vec<&String> = cf
            .names
            .iter()
            .filter(|n| included.contains(n.as_str()) || excluded.contains_key(n.as_str()))
            .collect();
        if names.is_empty() {
            continue;
        }
        let Some(dest) = &cf.dest else { continue };
        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        push_file(
            &mut plan_files,
            FileKind::Modprobe,
            &cf.host.display().to_string(),
            dest,
            &format!("names {}", names.join(", ")),
        );
    }
    for m in &modules {
        if let Some(c) = ctx.db.config.install_command(&m.name) {
            for w in command_words(&c.command) {
                programs.push((w, format!("install command of {} ({})", m.name, c.origin)));
            }
        }
    }
    // A script brings its interpreter (truescale-serdes.cmds is `#!/bin/bash`):
    // generators copy ELF dependencies, not `#!` lines.
    let mut seen_prog = HashSet::new();
    let mut queue: std::collections::VecDeque<(String, String)> = programs.into();
    while let Some((word, why)) = queue.pop_front() {
        let (cands, label) = match word.strip_prefix("udev:") {
            Some(w) => (systemd::udev_program_candidates(w), w.to_string()),
            None => (systemd::path_candidates(&word), word.clone()),
        };
        if !seen_prog.insert(label.clone()) {
            continue;
        }
        match systemd::first_existing(&inputs.root, &cands)? {
            Some((inner, host)) => {
                let head = read_head(&host);
                for prog in crate::elfdeps::script_interpreters(&head).unwrap_or_default() {
                    queue.push_back((prog, format!("interpreter of {inner}")));
                }
                push_file(
                    &mut plan_files,
                    FileKind::Program,
                    &host.display().to_string(),
                    &inner,
                    &why,
                )
            }
            None => warnings.push(format!("program {label} ({why}) is not in the root")),
        }
    }
    // dracut's boot scripts mount a root over RDMA only once: they must wait
    // for the fabric first (and an NVMe-oF root on RDMA needs the network).
    if inputs.generator == Generator::Dracut && !netroots.is_empty() {
        let names: Vec<&str> = netroots.iter().map(|f| f.root.name()).collect();
        for e in [&units::DRACUT_FABRIC_NETROOT, &units::DRACUT_FABRIC_SETTLED] {
            push_file(
                &mut plan_files,
                FileKind::Hook,
                &units::source_of(e),
                e.dest,
                &format!(
                    "roots over RDMA ({}): wait for a usable RDMA device before mounting (rd.rdma.wait=)",
                    names.join(", ")
                ),
            );
        }
        if netroots.iter().any(|f| f.root == NetRoot::Nvmf) {
            let e = &units::DRACUT_NVMF_CMDLINE;
            push_file(
                &mut plan_files,
                FileKind::Hook,
                &units::source_of(e),
                e.dest,
                "an NVMe-oF root on RDMA needs the network up; dracut's nvmf module asks only for TCP",
            );
        }
    }
    plan_files.sort_by(|a, b| (a.kind, &a.dest).cmp(&(b.kind, &b.dest)));
    plan_files.dedup_by(|a, b| a.dest == b.dest);

    let not_understood = eval::not_understood(&files)
        .into_iter()
        .map(|(o, k)| format!("{o}: key {k} is not evaluated (the line is kept in the image)"))
        .collect();
    let mut w2: Vec<String> = ctx
        .db
        .warnings
        .lock()
        .expect("warnings lock")
        .iter()
        .map(|w| w.to_string())
        .collect();
    warnings.append(&mut w2);
    if ctx.embedded_rules {
        warnings.push("no RDMA udev rules (rdma-core) in the root: rdma-initrd's own rules, units and confs are used".into());
    }
    Ok(Plan {
        schema: 1,
        root: inputs.root.base().display().to_string(),
        kver: inputs.kver.clone(),
        moddir: inputs.moddir.display().to_string(),
        mode: sel.mode,
        profiles: sel
            .profiles
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        rules_source: if ctx.embedded_rules {
            "embedded"
        } else {
            "root"
        }
        .into(),
        init: inputs.init,
        generator: inputs.generator,
        wants: if systemd_init {
            sel.protocols
                .iter()
                .map(|p| format!("rdma-load-modules@{p}.service"))
                .collect()
        } else {
            Vec::new()
        },
        preload,
        devices: reports,
        protocols: protocols.into_iter().collect(),
        netroot: netroots,
        modules,
        firmware,
        files: plan_files,
        excluded: excluded.into_values().collect(),
        not_found,
        warnings,
        not_understood,
    })
}

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
            if !self.reasons.contains_key(&item.name) {
                self.order.push(item.name.clone());
            }
            let rs = self.reasons.entry(item.name.clone()).or_default();
            if !rs.contains(&r) {
                rs.push(r);
            }
            let l = self.load.entry(item.name.clone()).or_insert(false);
            *l |= !shipped_only;
        }
    }
}

/// The first bytes of a file (enough for a `#!` line); empty when unreadable.
fn read_head(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(512).read_to_end(&mut buf);
    }
    buf
}

fn push_file(v: &mut Vec<PlanFile>, kind: FileKind, source: &str, dest: &str, why: &str) {
    if v.iter().any(|f| f.dest == dest) {
        return;
    }
    v.push(PlanFile {
        kind,
        source: source.to_string(),
        dest: dest.to_string(),
        reason: why.to_string(),
        text: None,
    });
}

/// The words in command position of a shell command line (first word and
/// each word after `;`, `&&`, `||`, `|`), skipping variable assignments.
pub fn command_words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut expect = true;
    for w in cmd.split_ascii_whitespace() {
        if matches!(w, ";" | "&&" | "||" | "|") {
            expect = true;
            continue;
        }
        if expect {
            if w.contains('=') && !w.starts_with('/') {
                continue;
            }
            let w = w.trim_end_matches(';');
            if !w.starts_with('$') && !w.is_empty() {
                out.push(w.to_string());
            }
            expect = false;
        }
        if w.ends_with(';') {
            expect = true;
        }
    }
    out
}

type InfoResult = Option<Result<(u64, compress::Compression, modinfo::ModInfo), String>>;

/// `.modinfo` of every file module, decompressing on all cores.
fn read_modinfos(ctx: &Ctx, order: &[String]) -> Vec<InfoResult> {
    let paths: Vec<Option<PathBuf>> = order
        .iter()
        .map(|m| match ctx.db.kind(m) {
            ModKind::File(rel) => Some(ctx.db.file_path(&rel)),
            _ => None,
        })
        .collect();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<InfoResult>> =
        paths.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= paths.len() {
                    break;
                }
                if let Some(p) = &paths[i] {
                    let r = read_one_modinfo(p);
                    *results[i].lock().expect("no poisoned lock") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| m.into_inner().expect("no poisoned lock"))
        .collect()
}

pub fn read_one_modinfo(
    p: &Path,
) -> Result<(u64, compress::Compression, modinfo::ModInfo), String> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "module file listed in modules.dep is missing".to_string()
        } else {
            e.to_string()
        }
    })?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut magic = [0u8; 6];
    let n = f.read(&mut magic).map_err(|e| e.to_string())?;
    let comp = compress::detect(&magic[..n]);
    if comp == compress::Compression::None {
        // Uncompressed: read only the ELF header, section headers and
        // .modinfo, whatever the file's size.
        return Ok((len, comp, modinfo::parse_elf_file(&mut f)?));
    }
    if len > MAX_MODULE_BYTES {
        return Err(format!(
            "{len} bytes compressed is more than a module can be"
        ));
    }
    let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
    let raw = compress::decompress(&bytes, MAX_MODULE_BYTES)
        .map_err(|e| format!("cannot decompress ({comp:?}): {e}"))?;
    let mi = modinfo::parse_elf(&raw)?;
    Ok((len, comp, mi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_of_install_lines() {
        assert_eq!(
            command_words(
                "modprobe -i ib_qib $CMDLINE_OPTS && /usr/lib/truescale-serdes.cmds start"
            ),
            vec!["modprobe", "/usr/lib/truescale-serdes.cmds"]
        );
        assert_eq!(
            command_words("FOO=1 /sbin/x; /bin/y | z"),
            vec!["/sbin/x", "/bin/y", "z"]
        );
    }
}
