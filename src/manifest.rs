//! The manifest an image holds at [`DEST`]: how it was made (the tool's
//! version, the kernel, the generator and init, the selection as given) and
//! what the plan put in, with a digest of it, as dracut records its
//! arguments in `lib/dracut/build-parameter.txt`. It is a generated file of
//! the plan, so every way an image is built installs it like any other.
//!
//! ```text
//! {
//!   "schema": 1,
//!   "version": "0.1.0",                 rdma-initrd's version
//!   "kver": "6.1.0-56-amd64",
//!   "generator": "dracut",              none|dracut|initramfs-tools|mkinitcpio
//!   "init": "systemd",                  systemd|udev
//!   "selection": {
//!     "mode": "generic",                hostonly|generic|selected
//!     "profiles": [{"path", "sha256"}], each --profile (absolute) and its file's digest
//!     "drivers": [], "protocols": [],
//!     "netroots": null | ["nfs", ...],  --netroot as given (null: decided by the mode)
//!     "configs": [], "rules_dirs": []   --config, --rules-dir (absolute)
//!   },
//!   "plan": {
//!     "sha256": "...",                  the plan digest (below)
//!     "items": [{"kind", "dest", "sha256"}]
//!   }
//! }
//! ```
//!
//! The items are everything the plan puts in an image but the manifest and
//! the programs' libraries (each generator installs those by its own
//! resolver, where it finds them): one `module` per module file (dest
//! `lib/modules/KVER/RELPATH`), `firmware`, each planned file by its kind
//! (`rule`, `unit`, `conf`, `modprobe`, `program`, `hook`) at the plan's
//! destination, `want` links
//! (`etc/systemd/system/initrd.target.wants/UNIT`, digest of the link's
//! target) and `load` lists (dest the list, digest of its `MODULE\n` lines);
//! `sha256` is that of the plan's source (a module in its own compression,
//! a program before any stripping). The plan digest is the SHA-256 of the
//! lines `KIND DEST SHA256\n` of the items sorted by kind, then dest (byte
//! order). No time and no host path but the selection's own: two builds of
//! the same plan write the same bytes.

use crate::cpio::Tree;
use crate::plan::items::{Content, ItemKind};
use crate::plan::{FileKind, Plan, PlanFile};
use crate::selection::Mode;
use crate::sha256;
use crate::source::Source;
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where an image holds its manifest.
pub const DEST: &str = "/usr/lib/rdma-initrd/manifest.json";
/// Its name as a generated source (`generated:manifest.json`, and the file
/// `plan --lines --extract DIR` writes).
pub const NAME: &str = "manifest.json";
pub const SCHEMA: u64 = 1;
/// A manifest larger than this is not read.
pub const MAX_BYTES: usize = 4 << 20;

const KINDS: &[&str] = &[
    "conf", "firmware", "hook", "load", "modprobe", "module", "program", "rule", "unit", "want",
];
const MODES: &[&str] = &["hostonly", "generic", "selected"];
const INITS: &[&str] = &["systemd", "udev"];
const GENERATORS: &[&str] = &["none", "dracut", "initramfs-tools", "mkinitcpio"];
const NETROOTS: &[&str] = &["nfs", "nvmf", "iscsi"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub schema: u64,
    pub version: String,
    pub kver: String,
    pub generator: String,
    pub init: String,
    pub selection: Recorded,
    pub plan: PlanDigest,
}

/// The selection as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub mode: String,
    pub profiles: Vec<Digested>,
    pub drivers: Vec<String>,
    pub protocols: Vec<String>,
    pub netroots: Option<Vec<String>>,
    pub configs: Vec<String>,
    pub rules_dirs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digested {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanDigest {
    pub sha256: String,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Item {
    pub kind: String,
    pub dest: String,
    pub sha256: String,
}

/// The plan digest of `items` (sorted by kind, then dest).
pub fn digest(items: &[Item]) -> String {
    let mut s = sha256::Sha256::default();
    for i in items {
        s.update(format!("{} {} {}\n", i.kind, i.dest, i.sha256).as_bytes());
    }
    sha256::hex(&s.finish())
}

fn file_hex(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    sha256::reader_hex(f).with_context(|| path.display().to_string())
}

fn source_hex(s: &Source) -> Result<String> {
    match s.host() {
        Some(h) => file_hex(h),
        None => Ok(sha256::digest_hex(
            s.own_text().map(|(_, t)| t).unwrap_or_default().as_bytes(),
        )),
    }
}

/// The items of `plan` (reading its sources for their digests), sorted:
/// each list of boot-time loads is one item, its text.
pub fn items(plan: &Plan) -> Result<Vec<Item>> {
    let item = |kind: &str, dest: &str, sha256: String| Item {
        kind: kind.to_string(),
        dest: dest.to_string(),
        sha256,
    };
    let mut out = Vec::new();
    let mut lists: BTreeMap<String, String> = BTreeMap::new();
    for i in plan.items() {
        let sha256 = match (i.kind, i.content) {
            (ItemKind::File(FileKind::Manifest | FileKind::Library), _) => continue,
            (_, Content::Host(path)) => file_hex(Path::new(path))?,
            (_, Content::Source(s)) => source_hex(s)?,
            (_, Content::Link(target)) => sha256::digest_hex(target.as_bytes()),
            (_, Content::Line(module)) => {
                let text = lists.entry(i.dest.clone()).or_default();
                text.push_str(module);
                text.push('\n');
                continue;
            }
        };
        out.push(item(i.kind.name(), &i.dest, sha256));
    }
    for (list, text) in lists {
        out.push(item("load", &list, sha256::digest_hex(text.as_bytes())));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The manifest of `plan`, made from `inputs`.
pub fn build(plan: &Plan, inputs: &crate::facts::Inputs) -> Result<Manifest> {
    let sel = &inputs.selection;
    let abs = |p: &Path| -> Result<PathBuf> {
        std::path::absolute(p).with_context(|| p.display().to_string())
    };
    let mut profiles = Vec::new();
    for p in &sel.profiles {
        let a = abs(p)?;
        profiles.push(Digested {
            path: a.display().to_string(),
            sha256: file_hex(&a)?,
        });
    }
    let items = items(plan)?;
    Ok(Manifest {
        schema: SCHEMA,
        version: env!("CARGO_PKG_VERSION").to_string(),
        kver: plan.kver.clone(),
        generator: sel.generator.name().to_string(),
        init: match sel.init {
            crate::selection::Init::Systemd => "systemd",
            crate::selection::Init::Udev => "udev",
        }
        .to_string(),
        selection: Recorded {
            mode: match sel.mode {
                Mode::Hostonly => "hostonly",
                Mode::Generic => "generic",
                Mode::Selected => "selected",
            }
            .to_string(),
            profiles,
            drivers: sel.drivers.clone(),
            protocols: sel.protocols.clone(),
            netroots: sel
                .netroot
                .as_ref()
                .map(|v| v.iter().map(|n| n.name().to_string()).collect()),
            configs: inputs
                .extra_config
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            rules_dirs: inputs
                .extra_rules
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        },
        plan: PlanDigest {
            sha256: digest(&items),
            items,
        },
    })
}

impl Manifest {
    /// The file's bytes: pretty JSON and a newline.
    pub fn text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a manifest serializes");
        s.push('\n');
        s
    }
}

/// Add the manifest of `plan` to its files.
pub fn attach(plan: &mut Plan, inputs: &crate::facts::Inputs) -> Result<()> {
    let m = build(plan, inputs)?;
    plan.files.retain(|f| f.kind != FileKind::Manifest);
    plan.files.push(PlanFile::new(
        FileKind::Manifest,
        Source::Generated {
            name: NAME,
            text: m.text(),
        },
        DEST,
        "how this image was made: read by `inspect` and by `verify` without a selection",
    ));
    Ok(())
}

/// What reading an image's manifest found.
#[derive(Debug)]
pub enum Found {
    /// The image has none (an older rdma-initrd's, or another tool's).
    None,
    /// A manifest, and warnings about what was ignored in it.
    Read(Box<Manifest>, Vec<String>),
    /// A manifest that cannot be used, and why (naming the image and path).
    Bad(String),
}

/// The manifest of the image `image` whose tree is `tree`.
pub fn from_tree(tree: &Tree, image: &Path) -> Found {
    let Some(bytes) = tree.file(DEST) else {
        if tree.contains(DEST) {
            return Found::Bad(format!("{}: {DEST}: not a regular file", image.display()));
        }
        return Found::None;
    };
    match parse(bytes) {
        Ok((m, w)) => Found::Read(
            Box::new(m),
            w.into_iter()
                .map(|w| format!("{}: {DEST}: {w}", image.display()))
                .collect(),
        ),
        Err(e) => Found::Bad(format!("{}: {DEST}: {e}", image.display())),
    }
}

/// Parse a manifest: (it, warnings about what was ignored), or why not.
/// Unknown fields (a newer rdma-initrd's) are ignored with a warning; wrong
/// types, missing fields, hostile paths and names are errors.
pub fn parse(bytes: &[u8]) -> std::result::Result<(Manifest, Vec<String>), String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!(
            "{} bytes, more than a manifest can be ({MAX_BYTES})",
            bytes.len()
        ));
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let mut warnings = Vec::new();
    let top = object(&v, "the manifest")?;
    let schema = top
        .get("schema")
        .ok_or("no field 'schema'")?
        .as_u64()
        .ok_or("'schema' is not a number")?;
    if schema == 0 {
        return Err("'schema' is 0".into());
    }
    if schema > SCHEMA {
        warnings.push(format!(
            "schema {schema}, newer than this rdma-initrd's ({SCHEMA}): only the fields it knows are read"
        ));
    }
    unknown(
        top,
        "",
        &[
            "schema",
            "version",
            "kver",
            "generator",
            "init",
            "selection",
            "plan",
        ],
        &mut warnings,
    );
    let version = string(top, "version", "")?;
    if version.len() > 64 || version.chars().any(char::is_control) {
        return Err("'version' is not a version".into());
    }
    let kver = string(top, "kver", "")?;
    if !valid_kver(&kver) {
        return Err(format!("'kver' {kver:?} is not a kernel version"));
    }
    let generator = one_of(top, "generator", "", GENERATORS)?;
    let init = one_of(top, "init", "", INITS)?;
    let sel = object(
        top.get("selection").ok_or("no field 'selection'")?,
        "'selection'",
    )?;
    let p = "selection.";
    unknown(
        sel,
        p,
        &[
            "mode",
            "profiles",
            "drivers",
            "protocols",
            "netroots",
            "configs",
            "rules_dirs",
        ],
        &mut warnings,
    );
    let mode = one_of(sel, "mode", p, MODES)?;
    let mut profiles = Vec::new();
    for (i, e) in array(sel, "profiles", p)?.iter().enumerate() {
        let at = format!("selection.profiles[{i}]");
        let o = object(e, &format!("'{at}'"))?;
        let q = format!("{at}.");
        unknown(o, &q, &["path", "sha256"], &mut warnings);
        let path = string(o, "path", &q)?;
        host_path(&path, &format!("{q}path"))?;
        let sha = string(o, "sha256", &q)?;
        if !sha256::is_hex_digest(&sha) {
            return Err(format!("'{q}sha256' is not a SHA-256 digest"));
        }
        profiles.push(Digested { path, sha256: sha });
    }
    let names = |key: &str| -> std::result::Result<Vec<String>, String> {
        let v = strings(sel, key, p)?;
        for n in &v {
            if !valid_name(n) {
                return Err(format!(
                    "'{p}{key}': {n:?} is not a module or protocol name"
                ));
            }
        }
        Ok(v)
    };
    let drivers = names("drivers")?;
    let protocols = names("protocols")?;
    let netroots = match sel.get("netroots") {
        None | Some(Value::Null) => None,
        Some(_) => {
            let v = strings(sel, "netroots", p)?;
            for n in &v {
                if !NETROOTS.contains(&n.as_str()) {
                    return Err(format!("'{p}netroots': {n:?} is not one of {NETROOTS:?}"));
                }
            }
            Some(v)
        }
    };
    let paths = |key: &str| -> std::result::Result<Vec<String>, String> {
        let v = strings(sel, key, p)?;
        for (i, s) in v.iter().enumerate() {
            host_path(s, &format!("{p}{key}[{i}]"))?;
        }
        Ok(v)
    };
    let configs = paths("configs")?;
    let rules_dirs = paths("rules_dirs")?;
    if mode == "selected" && profiles.is_empty() && drivers.is_empty() && protocols.is_empty() {
        return Err("'selection.mode' is selected with no profile, driver or protocol".into());
    }
    let plan = object(top.get("plan").ok_or("no field 'plan'")?, "'plan'")?;
    unknown(plan, "plan.", &["sha256", "items"], &mut warnings);
    let plan_sha = string(plan, "sha256", "plan.")?;
    if !sha256::is_hex_digest(&plan_sha) {
        return Err("'plan.sha256' is not a SHA-256 digest".into());
    }
    let mut items = Vec::new();
    for (i, e) in array(plan, "items", "plan.")?.iter().enumerate() {
        let at = format!("plan.items[{i}]");
        let o = object(e, &format!("'{at}'"))?;
        let q = format!("{at}.");
        unknown(o, &q, &["kind", "dest", "sha256"], &mut warnings);
        let kind = string(o, "kind", &q)?;
        if !KINDS.contains(&kind.as_str()) {
            // A newer rdma-initrd's kind of item: kept out, said.
            warnings.push(format!(
                "'{q}kind' {kind:?} is unknown: the item is ignored"
            ));
            continue;
        }
        let dest = string(o, "dest", &q)?;
        if crate::cpio::clean(&dest).is_none()
            || dest.split('/').any(|c| c == "..")
            || dest.chars().any(char::is_control)
            || dest.len() > 4096
        {
            return Err(format!("'{q}dest' {dest:?} is not a path inside an image"));
        }
        let sha = string(o, "sha256", &q)?;
        if !sha256::is_hex_digest(&sha) {
            return Err(format!("'{q}sha256' is not a SHA-256 digest"));
        }
        items.push(Item {
            kind,
            dest,
            sha256: sha,
        });
    }
    let mut sorted = items.clone();
    sorted.sort();
    if schema == SCHEMA && digest(&sorted) != plan_sha {
        warnings.push("'plan.sha256' is not the digest of its items".into());
    }
    Ok((
        Manifest {
            schema,
            version,
            kver,
            generator,
            init,
            selection: Recorded {
                mode,
                profiles,
                drivers,
                protocols,
                netroots,
                configs,
                rules_dirs,
            },
            plan: PlanDigest {
                sha256: plan_sha,
                items,
            },
        },
        warnings,
    ))
}

fn object<'a>(v: &'a Value, what: &str) -> std::result::Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} is not an object"))
}

fn unknown(o: &Map<String, Value>, prefix: &str, known: &[&str], warnings: &mut Vec<String>) {
    for k in o.keys().filter(|k| !known.contains(&k.as_str())) {
        warnings.push(format!(
            "unknown field '{prefix}{}' (a newer rdma-initrd's?): ignored",
            k.escape_debug()
        ));
    }
}

fn string(o: &Map<String, Value>, key: &str, p: &str) -> std::result::Result<String, String> {
    match o.get(key) {
        None => Err(format!("no field '{p}{key}'")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("'{p}{key}' is not a string")),
    }
}

fn one_of(
    o: &Map<String, Value>,
    key: &str,
    p: &str,
    allowed: &[&str],
) -> std::result::Result<String, String> {
    let s = string(o, key, p)?;
    if allowed.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(format!("'{p}{key}' {s:?} is not one of {allowed:?}"))
    }
}

fn array<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    p: &str,
) -> std::result::Result<&'a Vec<Value>, String> {
    match o.get(key) {
        None => Err(format!("no field '{p}{key}'")),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("'{p}{key}' is not an array")),
    }
}

fn strings(o: &Map<String, Value>, key: &str, p: &str) -> std::result::Result<Vec<String>, String> {
    array(o, key, p)?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("'{p}{key}' holds something that is not a string"))
        })
        .collect()
}

/// A host path the selection named: absolute, no `..`, nothing unprintable.
fn host_path(s: &str, what: &str) -> std::result::Result<(), String> {
    if !s.starts_with('/')
        || s.split('/').any(|c| c == "..")
        || s.chars().any(char::is_control)
        || s.len() > 4096
    {
        return Err(format!(
            "'{what}' {s:?} is not an absolute path without '..'"
        ));
    }
    Ok(())
}

fn valid_kver(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 256
        && k != "."
        && k != ".."
        && !k.contains('/')
        && !k.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 256
        && !n.contains('/')
        && !n.contains("..")
        && !n.chars().any(|c| c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod tests;
