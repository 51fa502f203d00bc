//! Text and JSON renderings of detect and plan results.

use crate::facts::Facts;
use crate::netroot::NetRootFact;
use crate::plan::items::Of;
use crate::plan::{DeviceReport, Plan, Reason};
use crate::udev::device::Device;
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct DetectJson<'a> {
    schema: u32,
    hostname: Option<String>,
    kver: &'a str,
    /// The facts: what `--profile` reads back.
    devices: &'a [Device],
    /// What the rules of this root conclude from them.
    rdma: Vec<&'a DeviceReport>,
    /// The root, when it is mounted over RDMA (read back by `--profile`).
    netroot: Option<&'a NetRootFact>,
}

pub fn detect_json(
    out: &mut impl Write,
    facts: &Facts,
    devices: &[Device],
    reports: &[DeviceReport],
    netroot: Option<&NetRootFact>,
) -> anyhow::Result<()> {
    let hostname = facts
        .root
        .read_opt("/etc/hostname")
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|s| !s.is_empty());
    let j = DetectJson {
        schema: 1,
        hostname,
        kver: &facts.kver,
        devices,
        rdma: reports.iter().filter(|r| is_rdma(r)).collect(),
        netroot,
    };
    serde_json::to_writer_pretty(&mut *out, &j)?;
    writeln!(out)?;
    Ok(())
}

pub fn any_rdma(reports: &[DeviceReport]) -> bool {
    reports.iter().any(is_rdma)
}

fn is_rdma(r: &DeviceReport) -> bool {
    r.device.subsystem == "infiniband" || r.loads.iter().any(|l| !l.module.is_empty())
}

pub fn detect_text(
    out: &mut impl Write,
    reports: &[DeviceReport],
    netroot: Option<&NetRootFact>,
) -> io::Result<()> {
    if let Some(f) = netroot {
        writeln!(out, "root over RDMA: {} ({})", f.root, f.evidence)?;
    }
    let rdma: Vec<&DeviceReport> = reports.iter().filter(|r| is_rdma(r)).collect();
    if rdma.is_empty() {
        writeln!(out, "no RDMA hardware found")?;
        return Ok(());
    }
    for r in rdma {
        let d = &r.device;
        let mut head = format!("{} ({}", d.kernel, d.subsystem);
        if let Some(drv) = &d.driver {
            head.push_str(&format!(", driver {drv}"));
        }
        if let Some(n) = d.properties.get("ID_NET_DRIVER") {
            head.push_str(&format!(", ID_NET_DRIVER {n}"));
        }
        if d.hypothetical {
            head.push_str(", hypothetical");
        }
        head.push(')');
        writeln!(out, "{head}")?;
        writeln!(out, "  devpath   {}", d.devpath)?;
        for l in &r.loads {
            if l.module.is_empty() {
                writeln!(
                    out,
                    "  loads     {} (not in this kernel) by {}",
                    l.request, l.via
                )?;
            } else if l.request == l.module {
                writeln!(out, "  loads     {} by {}", l.module, l.via)?;
            } else {
                writeln!(
                    out,
                    "  loads     {} (as {}) by {}",
                    l.module, l.request, l.via
                )?;
            }
        }
        if d.subsystem == "infiniband" {
            let p = if r.protocols.is_empty() {
                "none from the rules".to_string()
            } else {
                r.protocols.join(" ")
            };
            writeln!(out, "  protocols {p}")?;
            if !r.wants.is_empty() {
                writeln!(out, "  wants     {}", r.wants.join(" "))?;
            }
        }
        for n in &d.notes {
            writeln!(out, "  note      {n}")?;
        }
    }
    Ok(())
}

/// The chain that brings `name` in through `r`, from its origin (a device, a
/// rule line, a conf line) to the module.
pub fn chain(p: &Plan, name: &str, r: &Reason, depth: usize) -> Vec<String> {
    let parent = |of: &str, this: String| -> Vec<String> {
        let first = p
            .modules
            .iter()
            .find(|m| m.name == of)
            .and_then(|m| m.reasons.first());
        let mut v = match first {
            Some(fr) if depth < 32 => chain(p, of, fr, depth + 1),
            _ => vec![of.to_string()],
        };
        v.push(this);
        v
    };
    match r {
        Reason::Rule {
            file,
            line,
            request,
            device,
        } => {
            let mut v: Vec<String> = device.iter().cloned().collect();
            v.push(format!("rule {file}:{line} (kmod load {request})"));
            v.push(name.to_string());
            v
        }
        Reason::Conf {
            file,
            line,
            request,
        } => vec![format!("{file}:{line} ({request})"), name.to_string()],
        Reason::Modalias { device, modalias } => vec![
            device.clone(),
            format!("modalias {modalias}"),
            name.to_string(),
        ],
        Reason::Loaded { device } => vec![device.clone(), format!("{name} (bound driver)")],
        Reason::Generic => vec!["every RDMA hardware provider".into(), name.to_string()],
        Reason::Requested { request } => vec![format!("--driver {request}"), name.to_string()],
        Reason::Dependency { of } => parent(of, format!("{name} (dependency)")),
        Reason::Softdep {
            of,
            file,
            line,
            when,
        } => parent(of, format!("{name} (softdep {when}, {file}:{line})")),
        Reason::Weakdep { of, file, line } => {
            parent(of, format!("{name} (weakdep, {file}:{line}, shipped only)"))
        }
        Reason::Netroot { root, request } => vec![
            format!("{root} root over RDMA"),
            format!("{name} (as {request}: {})", root.transport().1),
        ],
    }
}

pub fn plan_text(out: &mut impl Write, p: &Plan, explain: bool) -> io::Result<()> {
    let mode = match p.mode {
        crate::selection::Mode::Hostonly => "host-only",
        crate::selection::Mode::Generic => "generic",
        crate::selection::Mode::Selected => "selected",
    };
    writeln!(
        out,
        "kernel {} ({}), root {}, {} image",
        p.kver, p.moddir, p.root, mode
    )?;
    if !p.profiles.is_empty() {
        writeln!(out, "profiles: {}", p.profiles.join(", "))?;
    }
    writeln!(
        out,
        "protocols: {}",
        if p.protocols.is_empty() {
            "none".into()
        } else {
            p.protocols.join(" ")
        }
    )?;
    if !p.wants.is_empty() {
        writeln!(out, "wanted by initrd.target: {}", p.wants.join(" "))?;
    }
    if !p.preload.is_empty() {
        let names: Vec<&str> = p.preload.iter().map(|l| l.module.as_str()).collect();
        writeln!(out, "loaded at boot: {}", names.join(" "))?;
    }
    if !p.netroot.is_empty() {
        writeln!(out, "roots over RDMA:")?;
        for f in &p.netroot {
            writeln!(out, "  {:<6} {}", f.root.name(), f.evidence)?;
        }
    }
    writeln!(out, "\nmodules ({}, in load order):", p.modules.len())?;
    for m in &p.modules {
        let what = match (&m.relpath, m.builtin) {
            (_, true) => "builtin".to_string(),
            (Some(rel), _) => format!(
                "{rel} {}",
                m.size.map(|s| format!("{s} B")).unwrap_or_default()
            ),
            _ => String::new(),
        };
        let load = if m.load { "" } else { " [shipped, not loaded]" };
        writeln!(out, "  {:<24} {what}{load}", m.name)?;
        if explain {
            const SHOWN: usize = 4;
            for r in m.reasons.iter().take(SHOWN) {
                writeln!(out, "      {}", chain(p, &m.name, r, 0).join(" -> "))?;
            }
            if m.reasons.len() > SHOWN {
                writeln!(out, "      (+{} more)", m.reasons.len() - SHOWN)?;
            }
        }
    }
    if !p.firmware.is_empty() {
        writeln!(out, "\nfirmware ({}):", p.firmware.len())?;
        for f in &p.firmware {
            let loc = if f.files.is_empty() {
                "MISSING".to_string()
            } else {
                f.files
                    .iter()
                    .map(|x| x.path.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            writeln!(out, "  {:<40} {loc} (for {})", f.name, f.modules.join(", "))?;
        }
    }
    writeln!(out, "\nfiles ({}):", p.files.len())?;
    for f in &p.files {
        let kind = f.kind.name();
        writeln!(out, "  {kind:<9} {:<56} {}", f.dest, f.reason)?;
    }
    if explain {
        units_text(out, p)?;
    }
    if !p.excluded.is_empty() {
        writeln!(out, "\nleft out:")?;
        for e in &p.excluded {
            writeln!(out, "  {:<24} {} ({}:{})", e.name, e.reason, e.file, e.line)?;
        }
    }
    if !p.not_found.is_empty() {
        writeln!(out, "\nnot in this kernel:")?;
        for n in &p.not_found {
            writeln!(out, "  {:<24} {}", n.request, n.requested_by)?;
        }
    }
    if !p.warnings.is_empty() {
        writeln!(
            out,
            "\nwarnings: {} (listed on stderr with -v)",
            p.warnings.len()
        )?;
    }
    Ok(())
}

/// Units not read as plainly as their name says (masked, aliases, drop-ins):
/// what systemd reads for each, in order, and what each drop-in sets.
fn units_text(out: &mut impl Write, p: &Plan) -> io::Result<()> {
    let shown: Vec<&crate::plan::PlanUnit> = p
        .units
        .iter()
        .filter(|u| u.mask.is_some() || !u.links.is_empty() || !u.changes.is_empty())
        .collect();
    if shown.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nunits as systemd reads them:")?;
    for u in shown {
        if let Some(m) = &u.mask {
            writeln!(
                out,
                "  {}: masked by {m}: its want ({}) is dropped",
                u.name, u.wanted
            )?;
            continue;
        }
        writeln!(out, "  {}: {}", u.name, u.files.join(" "))?;
        for l in &u.links {
            writeln!(out, "      alias {l}")?;
        }
        for c in &u.changes {
            writeln!(out, "      {c}")?;
        }
    }
    Ok(())
}

pub fn modules(out: &mut impl Write, p: &Plan, paths: bool, json: bool) -> io::Result<()> {
    if json {
        let v: Vec<serde_json::Value> = p
            .modules
            .iter()
            .filter(|m| !m.builtin)
            .map(|m| serde_json::json!({"name": m.name, "path": m.path, "load": m.load}))
            .collect();
        serde_json::to_writer_pretty(&mut *out, &serde_json::json!({"schema": 1, "modules": v}))?;
        return writeln!(out);
    }
    for m in p.modules.iter().filter(|m| !m.builtin) {
        if paths {
            if let Some(path) = &m.path {
                writeln!(out, "{path}")?;
            }
        } else {
            writeln!(out, "{}", m.name)?;
        }
    }
    Ok(())
}

/// `files`: `SOURCE DEST` pairs, or (`--kind`) `KIND ORIGIN SOURCE DEST`
/// where SOURCE of a root file is its path inside the root, or JSON.
pub fn files(
    out: &mut impl Write,
    p: &Plan,
    extract: Option<&std::path::Path>,
    kind: bool,
    json: bool,
) -> anyhow::Result<()> {
    // (kind, origin, source, dest)
    let mut lines: Vec<(&str, &str, String, String)> = Vec::new();
    for item in p.items() {
        match item.of {
            Of::Module(_) => {}
            Of::File(f) => {
                let origin = crate::backend::lines::origin(&f.source);
                let src = match (&f.source, extract) {
                    (crate::source::Source::Root { inner, .. }, _) if kind || json => inner.clone(),
                    (s, Some(dir)) => crate::backend::lines::host_path(s, dir)?
                        .display()
                        .to_string(),
                    (s, None) => s.label(),
                };
                lines.push((f.kind.name(), origin, src, f.dest.clone()));
            }
            Of::Firmware(_, fw) => {
                let src = if kind || json {
                    fw.path.clone()
                } else {
                    fw.source.clone()
                };
                lines.push(("firmware", "root", src, fw.path.clone()));
            }
            Of::Want(w) if kind || json => {
                lines.push(("want", "unit", "initrd.target".into(), w.to_string()))
            }
            Of::Load(l) if kind || json => {
                lines.push(("load", "conf", l.conf.clone(), l.module.clone()))
            }
            Of::Want(_) | Of::Load(_) => {}
        }
    }
    if json {
        let v: Vec<serde_json::Value> = lines
            .iter()
            .map(|(k, origin, src, dest)| {
                serde_json::json!({"kind": k, "origin": origin, "source": src, "dest": dest})
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &serde_json::json!({"schema": 1, "files": v}))?;
        writeln!(out)?;
        return Ok(());
    }
    for (k, origin, src, dest) in lines {
        if kind {
            writeln!(out, "{k} {origin} {src} {dest}")?;
        } else {
            writeln!(out, "{src} {dest}")?;
        }
    }
    Ok(())
}

/// `inspect`: how the image was made (its manifest) and its RDMA part.
pub fn inspect_text(
    out: &mut impl Write,
    image: &std::path::Path,
    img: &crate::segments::Image,
    manifest: Option<&crate::manifest::Manifest>,
    r: &crate::backend::inspect::Report,
) -> io::Result<()> {
    writeln!(out, "{}", image.display())?;
    let segs: Vec<String> = img
        .segments
        .iter()
        .map(|s| format!("{} {}..{}", s.format.name(), s.start, s.end))
        .collect();
    writeln!(out, "segments: {}", segs.join(", "))?;
    match manifest {
        Some(m) => {
            let s = &m.selection;
            writeln!(out, "\nhow it was made ({}):", crate::manifest::DEST)?;
            writeln!(out, "  rdma-initrd {}", m.version)?;
            writeln!(out, "  kernel      {}", m.kver)?;
            writeln!(out, "  generator   {}", m.generator)?;
            writeln!(out, "  init        {}", m.init)?;
            writeln!(out, "  selection   {}", s.mode)?;
            for p in &s.profiles {
                writeln!(out, "  profile     {} (sha256 {})", p.path, p.sha256)?;
            }
            let lists: [(&str, &[String]); 4] = [
                ("driver", &s.drivers),
                ("protocol", &s.protocols),
                ("config", &s.configs),
                ("rules-dir", &s.rules_dirs),
            ];
            for (what, v) in lists {
                for x in v {
                    writeln!(out, "  {what:<11} {x}")?;
                }
            }
            match &s.netroots {
                None => writeln!(out, "  netroot     by the selection")?,
                Some(v) if v.is_empty() => writeln!(out, "  netroot     none")?,
                Some(v) => writeln!(out, "  netroot     {}", v.join(", "))?,
            }
            writeln!(
                out,
                "  plan        sha256 {} ({} items)",
                m.plan.sha256,
                m.plan.items.len()
            )?;
        }
        None => writeln!(
            out,
            "\nno manifest ({}): not made by this rdma-initrd; the RDMA part below is found by name",
            crate::manifest::DEST
        )?,
    }
    writeln!(out, "\nmodules ({}):", r.modules.len())?;
    for m in &r.modules {
        let mut fields = Vec::new();
        for (k, v) in [
            ("version", &m.version),
            ("srcversion", &m.srcversion),
            ("vermagic", &m.vermagic),
        ] {
            if let Some(v) = v {
                fields.push(format!("{k}={v}"));
            }
        }
        if let Some(e) = &m.error {
            fields.push(format!("(.modinfo: {e})"));
        }
        writeln!(
            out,
            "  {} {}{}{}",
            m.name,
            m.path.as_deref().unwrap_or("-"),
            if fields.is_empty() {
                String::new()
            } else {
                format!("  {}", fields.join("  "))
            },
            m.state.note()
        )?;
    }
    let mut kinds: Vec<&str> = r.files.iter().map(|f| f.kind.as_str()).collect();
    kinds.dedup();
    for k in kinds {
        let rows: Vec<_> = r.files.iter().filter(|f| f.kind == k).collect();
        writeln!(out, "\n{k} ({}):", rows.len())?;
        for f in rows {
            let at = match &f.path {
                Some(p) if p.trim_start_matches('/') != f.dest.trim_start_matches('/') => {
                    format!(" (at /{p})")
                }
                _ => String::new(),
            };
            writeln!(out, "  {}{at}{}", f.dest, f.state.note())?;
        }
    }
    Ok(())
}
