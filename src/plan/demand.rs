//! Stage 1: what the image must serve. The hardware (this machine's, the
//! profiles', or any for a generic image) is evaluated against the RDMA
//! rules: the modules their `kmod load` lines, modaliases and bound drivers
//! ask for, the units they want, the protocols they tag; plus `--driver`,
//! `--protocol`, and the roots over RDMA to mount.

use super::{DeviceReport, Mode, Reason, Request, RuleHit, Selection, Warning};
use crate::facts::{rules::is_rdma_module, Facts};
use crate::kmod::config::Origin;
use crate::kmod::name;
use crate::netroot::{Generator, NetRoot, NetRootFact};
use crate::udev::device::{Device, Parent};
use crate::udev::eval::{self, EffectKind};
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub struct Demand {
    pub reports: Vec<DeviceReport>,
    pub requests: Vec<Request>,
    /// Units the rules want, with the rule line that wants each.
    pub wants: Vec<(String, Origin)>,
    pub protocols: BTreeSet<String>,
    pub netroots: Vec<NetRootFact>,
    pub warnings: Vec<Warning>,
}

pub fn demand(facts: &Facts, sel: &Selection) -> Result<Demand> {
    let mut d = Demand {
        reports: Vec::new(),
        requests: Vec::new(),
        wants: Vec::new(),
        protocols: BTreeSet::new(),
        netroots: choose_netroots(facts, sel)?,
        warnings: Vec::new(),
    };
    let mut devices = Vec::new();
    if let Some(h) = &facts.host {
        d.warnings
            .extend(h.warnings.iter().cloned().map(Warning::Input));
        devices.extend(h.devices.iter().cloned());
    }
    for (_, p) in &facts.profiles {
        devices.extend(p.devices.iter().cloned());
    }
    for f in &d.netroots {
        let request = f.root.transport().0.to_string();
        d.requests.push(Request {
            name: request.clone(),
            reason: Reason::Netroot {
                root: f.root,
                request,
            },
        });
    }
    if sel.mode == Mode::Generic {
        generic(facts, &mut d);
    }
    if !devices.is_empty() {
        let ev = evaluate_devices(facts, &devices);
        d.requests.extend(ev.requests);
        d.wants.extend(ev.wants);
        d.reports = ev.reports;
    }
    for drv in &sel.drivers {
        d.requests.push(Request {
            name: drv.clone(),
            reason: Reason::Requested {
                request: drv.clone(),
            },
        });
    }
    if !sel.drivers.is_empty() || !sel.protocols.is_empty() {
        let o = eval::evaluate(&facts.rules.rdma, &synthetic_rdma_device(&sel.protocols));
        d.wants
            .extend(o.wants().map(|(u, o)| (u.to_string(), o.clone())));
    }
    for r in &d.reports {
        d.protocols.extend(r.protocols.iter().cloned());
    }
    d.protocols.extend(sel.protocols.iter().cloned());
    Ok(d)
}

/// A generic image: every module any RDMA rule can `kmod load`, every unit
/// it can want, every protocol it can tag, every hardware provider.
fn generic(facts: &Facts, d: &mut Demand) {
    for e in eval::all_effects(&facts.rules.rdma) {
        match e.kind {
            EffectKind::KmodLoad(m) if !m.contains('$') && !m.contains('%') => {
                d.requests.push(Request {
                    name: m.clone(),
                    reason: Reason::Rule {
                        file: e.origin.file.clone(),
                        line: e.origin.line,
                        request: m,
                        device: None,
                    },
                })
            }
            EffectKind::Wants(u) => d.wants.push((u, e.origin)),
            EffectKind::Env(k, v) if v == "1" => {
                if let Some(p) = k.strip_prefix("ID_RDMA_") {
                    d.protocols.insert(p.to_ascii_lowercase());
                }
            }
            _ => {}
        }
    }
    for m in &facts.hw_providers {
        d.requests.push(Request {
            name: m.clone(),
            reason: Reason::Generic,
        });
    }
}

/// The roots over RDMA a plan is for, each with why: `--netroot`, else by
/// mode. A root the generator cannot mount is an error.
fn choose_netroots(facts: &Facts, sel: &Selection) -> Result<Vec<NetRootFact>> {
    let gen = sel.generator;
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
            if let Some(f) = facts.host.as_ref().and_then(|h| h.netroot.as_ref()) {
                add(f.root, format!("this machine: {}", f.evidence));
            }
            if sel.mode == Mode::Generic {
                let why = match gen {
                    Generator::None => "a generic image carries every root's transport".to_string(),
                    g => format!(
                        "a generic image mounts any root over RDMA that {} can",
                        g.name()
                    ),
                };
                for r in gen.generic_netroots() {
                    add(r, why.clone());
                }
            }
            for (file, p) in &facts.profiles {
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
    pub requests: Vec<Request>,
    pub wants: Vec<(String, Origin)>,
}

/// A module a device asks for: what the report shows, and the request the
/// plan resolves.
struct Hit {
    report: RuleHit,
    request: Option<Request>,
}

/// Evaluate devices: hardware rules and modaliases give providers; RDMA
/// devices (real, or hypothetical under hardware whose provider is not
/// loaded yet) give protocols and wanted units.
pub fn evaluate_devices(facts: &Facts, devices: &[Device]) -> Evaluated {
    let mut ev = Evaluated {
        reports: Vec::new(),
        requests: Vec::new(),
        wants: Vec::new(),
    };
    let real_ib_parents: HashSet<String> = devices
        .iter()
        .filter(|d| d.subsystem == "infiniband")
        .flat_map(|d| ancestor_paths(&d.devpath))
        .collect();
    let mut hypothetical: Vec<Device> = Vec::new();
    let mut hyp_keys: HashSet<String> = HashSet::new();
    for dev in devices.iter().filter(|d| d.subsystem != "infiniband") {
        let hits = hardware_hits(facts, dev);
        let provider = hits
            .iter()
            .map(|h| &h.report.module)
            .find(|m| !m.is_empty() && is_rdma_module(&facts.db, m))
            .cloned();
        if let Some(p) = provider {
            let prefix = hypothetical_name_prefix(&p);
            let n = hypothetical
                .iter()
                .filter(|h| h.kernel.starts_with(&prefix))
                .count();
            if let Some(h) = hypothetical_rdma_device(dev, &p, n) {
                let key = hardware_key(&h);
                if !real_ib_parents.contains(&key) && hyp_keys.insert(key) {
                    hypothetical.push(h);
                }
            }
        }
        if !hits.is_empty() || dev.subsystem == "net" {
            ev.reports.push(report(dev, hits, &mut ev.requests));
        }
    }
    let ib: Vec<Device> = devices
        .iter()
        .filter(|d| d.subsystem == "infiniband")
        .cloned()
        .chain(hypothetical)
        .collect();
    for dev in &ib {
        let o = eval::evaluate(&facts.rules.rdma, dev);
        let hits: Vec<Hit> = bound_driver(facts, dev).into_iter().collect();
        ev.wants
            .extend(o.wants().map(|(u, origin)| (u.to_string(), origin.clone())));
        let mut r = report(dev, hits, &mut ev.requests);
        r.protocols = o.protocols();
        r.wants = o.wants().map(|(u, _)| u.to_string()).collect();
        ev.reports.push(r);
    }
    ev
}

/// The report of a device, its hits' requests moved to `requests`.
fn report(dev: &Device, hits: Vec<Hit>, requests: &mut Vec<Request>) -> DeviceReport {
    let mut loads = Vec::new();
    for h in hits {
        loads.push(h.report);
        requests.extend(h.request);
    }
    DeviceReport {
        device: dev.clone(),
        loads,
        protocols: Vec::new(),
        wants: Vec::new(),
    }
}

/// What the rules' `kmod load` lines and (for PCI and auxiliary devices)
/// the modalias ask for on a hardware device.
fn hardware_hits(facts: &Facts, dev: &Device) -> Vec<Hit> {
    let db = &facts.db;
    let mut hits = Vec::new();
    let o = eval::evaluate(&facts.rules.rdma, dev);
    for (req, origin) in o.kmod_loads() {
        let request = Request {
            name: req.to_string(),
            reason: Reason::Rule {
                file: origin.file.clone(),
                line: origin.line,
                request: req.to_string(),
                device: Some(dev.devpath.clone()),
            },
        };
        let mods: Vec<String> = db
            .lookup(req)
            .unwrap_or_default()
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        // A name the kernel lacks is still reported (module empty).
        let shown = if mods.is_empty() {
            vec![String::new()]
        } else {
            mods
        };
        let n = shown.len();
        for (i, m) in shown.into_iter().enumerate() {
            hits.push(Hit {
                report: RuleHit {
                    module: m,
                    request: req.to_string(),
                    via: origin.to_string(),
                },
                // One request per rule line, whatever it resolves to.
                request: (i + 1 == n).then(|| request.clone()),
            });
        }
    }
    if matches!(dev.subsystem.as_str(), "pci" | "auxiliary") {
        if let Some(ma) = dev.modalias() {
            for (m, _) in db.lookup(ma).unwrap_or_default() {
                if is_rdma_module(db, &m) {
                    hits.push(Hit {
                        report: RuleHit {
                            module: m.clone(),
                            request: ma.to_string(),
                            via: "modalias".into(),
                        },
                        request: Some(Request {
                            name: m,
                            reason: Reason::Modalias {
                                device: dev.devpath.clone(),
                                modalias: ma.to_string(),
                            },
                        }),
                    });
                }
            }
        }
    }
    hits
}

/// The driver of an existing RDMA device must be in the image too.
fn bound_driver(facts: &Facts, dev: &Device) -> Option<Hit> {
    if dev.hypothetical {
        return None;
    }
    let m = dev
        .parents
        .iter()
        .filter_map(|p| p.driver.as_deref())
        .map(name::normalize_modname)
        .find(|m| is_rdma_module(&facts.db, m))?;
    Some(Hit {
        report: RuleHit {
            module: m.clone(),
            request: m.clone(),
            via: "bound driver".into(),
        },
        request: Some(Request {
            name: m,
            reason: Reason::Loaded {
                device: dev.devpath.clone(),
            },
        }),
    })
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

/// Software RDMA providers: the kernel makes their RDMA device when an
/// administrator links one to a network interface (`rdma link add rxe0 type
/// rxe netdev eth0`): a virtual device (`/devices/virtual/infiniband/`), not
/// one under the NIC, named after the link type by convention; rxe shows the
/// interface as its `parent` attribute (rdma-core's description rules tag
/// RoCE by `DEVPATH=="*/infiniband/rxe*", ATTR{parent}=="*"`).
struct SoftwareProvider {
    module: &'static str,
    /// The device's name is this and an index.
    prefix: &'static str,
    /// The device has a `parent` attribute naming the interface.
    parent: bool,
}

const SOFTWARE_PROVIDERS: &[SoftwareProvider] = &[
    SoftwareProvider {
        module: "rdma_rxe",
        prefix: "rxe",
        parent: true,
    },
    SoftwareProvider {
        module: "siw",
        prefix: "siw",
        parent: false,
    },
];

fn software_provider(module: &str) -> Option<&'static SoftwareProvider> {
    SOFTWARE_PROVIDERS.iter().find(|s| s.module == module)
}

/// The sysname prefix of `provider`'s hypothetical devices.
fn hypothetical_name_prefix(provider: &str) -> String {
    match software_provider(provider) {
        Some(s) => s.prefix.to_string(),
        None => format!("{provider}_"),
    }
}

/// An RDMA device as its provider would create it: under `dev`'s hardware,
/// or, for a software provider, as a virtual device on `dev`'s interface.
fn hypothetical_rdma_device(dev: &Device, provider: &str, index: usize) -> Option<Device> {
    let note =
        format!("hypothetical: {provider} is not loaded; evaluated as if its RDMA device existed");
    if let Some(sw) = software_provider(provider) {
        let kernel = format!("{}{index}", sw.prefix);
        let mut attrs = BTreeMap::new();
        if sw.parent && dev.subsystem == "net" {
            attrs.insert("parent".to_string(), dev.kernel.clone());
        }
        return Some(Device {
            subsystem: "infiniband".into(),
            devpath: format!("/devices/virtual/infiniband/{kernel}"),
            kernel,
            attrs,
            hypothetical: true,
            notes: vec![format!(
                "{note}, linked to {} (`rdma link add`)",
                dev.kernel
            )],
            ..Default::default()
        });
    }
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
        notes: vec![note],
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
