//! systemd units the RDMA rules can want, what they want in turn, and the
//! module lists (modules-load.d format) they load: read from one overlay of
//! `{/etc,/run,/usr/local/lib,/usr/lib,/lib}/systemd/system`, with
//! rdma-initrd's own units and confs standing in where the root has no RDMA
//! rules at all. Also every `/etc/rdma/modules/*.conf` (generic images take
//! them all).

use super::Rules;
use crate::error::{InputError, Warning};
use crate::overlay;
use crate::root::{read_capped, Root, MAX_CONFIG_FILE};
use crate::source::Source;
use crate::systemd::{self, Unit};
use crate::udev::eval::{self, EffectKind};
use crate::units;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};

/// Where the module lists live.
pub const CONF_DIR: &str = "/etc/rdma/modules";

#[derive(Debug, Clone)]
pub struct UnitFile {
    /// Its file name (`rdma-load-modules@.service` for every instance).
    pub name: String,
    /// Its path inside the root (or image).
    pub inner: String,
    pub source: Source,
    pub unit: Unit,
    /// Configuration files under /etc it names (`Documentation=file:...`)
    /// that exist: a daemon's configuration.
    pub doc_confs: Vec<(String, Source)>,
}

/// A module list.
#[derive(Debug, Clone)]
pub struct ConfFile {
    pub inner: String,
    pub source: Source,
    /// The names in file order with their lines, or why the file is unusable.
    pub names: Result<Vec<(String, usize)>, InputError>,
}

#[derive(Debug, Clone, Default)]
pub struct Units {
    /// By file name.
    pub files: BTreeMap<String, UnitFile>,
    /// Module lists, by path inside the root: those the units load and those
    /// of /etc/rdma/modules.
    pub confs: BTreeMap<String, ConfFile>,
    /// The lists of /etc/rdma/modules (rdma-initrd's own where it stands in).
    pub conf_dir: Vec<String>,
}

impl Units {
    /// The file of a unit (an instance `a@b.service` is `a@.service`).
    pub fn get(&self, unit: &str) -> Option<&UnitFile> {
        self.files.get(&systemd::split_instance(unit).0)
    }
}

/// Read every unit the RDMA rules (or `--protocol`) can want, transitively.
pub fn read(
    root: &Root,
    rules: &Rules,
    protocols: &[String],
    warnings: &mut Vec<Warning>,
) -> Result<Units> {
    let dirs = overlay::root_dirs(systemd::UNIT_DIRS);
    let found: BTreeMap<String, overlay::File> = overlay::walk(root, &dirs, |_| true, warnings)?
        .into_iter()
        .map(|f| (f.name.clone(), f))
        .collect();
    let mut out = Units::default();
    let mut queue: Vec<String> = eval::all_effects(&rules.rdma)
        .into_iter()
        .filter_map(|e| match e.kind {
            EffectKind::Wants(u) => Some(u),
            _ => None,
        })
        .collect();
    queue.extend(protocols.iter().map(|p| systemd::loader_unit(p)));
    let mut seen = BTreeSet::new();
    let mut conf_paths = BTreeSet::new();
    while let Some(unit) = queue.pop() {
        if !seen.insert(unit.clone()) {
            continue;
        }
        let (file_name, instance) = systemd::split_instance(&unit);
        if !out.files.contains_key(&file_name) {
            let Some(f) = read_unit(root, &found, &file_name, rules.own)? else {
                continue;
            };
            out.files.insert(file_name.clone(), f);
        }
        let f = &out.files[&file_name];
        queue.extend(f.unit.wants(instance.as_deref()));
        for words in f.unit.exec_lines(instance.as_deref()) {
            if systemd::is_modules_load(&words[0]) {
                conf_paths.extend(words[1..].iter().cloned());
            }
        }
    }
    for n in root.list_dir(CONF_DIR)? {
        if n.ends_with(".conf") {
            out.conf_dir.push(format!("{CONF_DIR}/{n}"));
        }
    }
    if rules.own {
        for e in units::CONFS {
            if !out.conf_dir.iter().any(|c| c == e.dest) {
                out.conf_dir.push(e.dest.to_string());
            }
        }
        out.conf_dir.sort();
    }
    for c in conf_paths.iter().chain(out.conf_dir.clone().iter()) {
        if !out.confs.contains_key(c) {
            if let Some(cf) = read_conf(root, c, rules.own)? {
                out.confs.insert(c.clone(), cf);
            }
        }
    }
    Ok(out)
}

/// A unit file from the overlay, or rdma-initrd's own when it stands in.
fn read_unit(
    root: &Root,
    found: &BTreeMap<String, overlay::File>,
    file_name: &str,
    own: bool,
) -> Result<Option<UnitFile>> {
    let (inner, source, text) = match found.get(file_name) {
        Some(f) => {
            let host = f.source.host().expect("a file");
            let text = std::fs::read_to_string(host).with_context(|| host.display().to_string())?;
            (f.inner.clone(), f.source.clone(), text)
        }
        None if own => match units::UNITS
            .iter()
            .find(|e| e.dest.rsplit('/').next() == Some(file_name))
        {
            Some(e) => (e.dest.to_string(), Source::Own(e), e.text.to_string()),
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    let unit = Unit::parse(&text);
    let mut doc_confs = Vec::new();
    for doc in unit
        .values("Documentation")
        .flat_map(|v| v.split_ascii_whitespace())
        .filter_map(|d| d.strip_prefix("file:"))
        .filter(|p| p.starts_with("/etc/"))
    {
        let host = root.resolve(doc)?;
        if host.is_file() {
            doc_confs.push((doc.to_string(), Source::root(doc, host)));
        }
    }
    Ok(Some(UnitFile {
        name: file_name.to_string(),
        inner,
        source,
        unit,
        doc_confs,
    }))
}

/// A module list of the root, or rdma-initrd's own where it stands in;
/// None when neither exists.
fn read_conf(root: &Root, inner: &str, own: bool) -> Result<Option<ConfFile>> {
    let host = root.resolve(inner)?;
    let (source, text) = match read_capped(&host, MAX_CONFIG_FILE) {
        Ok(b) => (
            Source::root(inner, host.clone()),
            String::from_utf8_lossy(&b).into_owned(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match units::CONFS
                .iter()
                .find(|e| e.dest == inner)
                .filter(|_| own)
            {
                Some(e) => (Source::Own(e), e.text.to_string()),
                None => return Ok(None),
            }
        }
        Err(e) => {
            return Ok(Some(ConfFile {
                inner: inner.to_string(),
                source: Source::root(inner, host.clone()),
                names: Err(InputError::new(
                    &host.display().to_string(),
                    None,
                    e.to_string(),
                )),
            }))
        }
    };
    let label = match &source {
        Source::Own(_) => source.label(),
        _ => host.display().to_string(),
    };
    Ok(Some(ConfFile {
        inner: inner.to_string(),
        names: systemd::parse_modules_list(&text, &label),
        source,
    }))
}
