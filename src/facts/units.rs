//! systemd units the RDMA rules can want, what they want in turn, and the
//! module lists (modules-load.d format) they load: found in
//! `{/etc,/run,/usr/local/lib,/usr/lib,/lib}/systemd/system` as systemd finds
//! them (aliases, masks, drop-ins: [`crate::systemd::lookup`]) and read with
//! their drop-ins applied, with rdma-initrd's own units and confs standing in
//! where the root has no RDMA rules at all. Also every
//! `/etc/rdma/modules/*.conf` (generic images take them all).

use super::Rules;
use crate::error::InputError;
use crate::root::{list_host_dir, read_capped, Root, MAX_CONFIG_FILE};
use crate::source::Source;
use crate::systemd::lookup::{self, Lookup, Node, UnitDir, UnitDirs};
use crate::systemd::{self, Unit};
use crate::udev::eval::{self, EffectKind};
use crate::units;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Where the module lists live.
pub const CONF_DIR: &str = "/etc/rdma/modules";

#[derive(Debug, Clone)]
pub struct UnitFile {
    /// Its file name (`rdma-load-modules@.service` for every instance).
    pub name: String,
    /// Its path inside the root (or image).
    pub inner: String,
    pub source: Source,
    /// The unit with its drop-ins applied.
    pub unit: Unit,
    /// The alias symlinks systemd follows from the name wanted to `name`.
    pub links: Vec<(String, Source)>,
    /// Its drop-ins in the order systemd applies them.
    pub dropins: Vec<DropinFile>,
    /// Configuration files under /etc it names (`Documentation=file:...`)
    /// that exist: a daemon's configuration.
    pub doc_confs: Vec<(String, Source)>,
}

/// A drop-in of a unit.
#[derive(Debug, Clone)]
pub struct DropinFile {
    pub inner: String,
    /// None for a mask (a symlink to /dev/null or an empty file): it sets
    /// nothing and hides the same name in lower directories.
    pub source: Option<Source>,
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
    /// By the unit name wanted (an instance has its own: its drop-ins can
    /// differ from another instance's).
    pub files: BTreeMap<String, UnitFile>,
    /// Units wanted whose file is a mask: the mask's path.
    pub masked: BTreeMap<String, String>,
    /// Module lists, by path inside the root: those the units load and those
    /// of /etc/rdma/modules.
    pub confs: BTreeMap<String, ConfFile>,
    /// The lists of /etc/rdma/modules (rdma-initrd's own where it stands in).
    pub conf_dir: Vec<String>,
}

impl Units {
    /// The unit file read for a unit name (an instance's, or else its
    /// template's).
    pub fn get(&self, unit: &str) -> Option<&UnitFile> {
        self.files
            .get(unit)
            .or_else(|| self.files.get(&systemd::split_instance(unit).0))
    }
}

/// Read every unit the RDMA rules (or `--protocol`) can want, transitively.
pub fn read(root: &Root, rules: &Rules, protocols: &[String]) -> Result<Units> {
    let dirs = read_unit_dirs(root)?;
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
    let mut parsed = Parsed::new();
    while let Some(unit) = queue.pop() {
        if !seen.insert(unit.clone()) {
            continue;
        }
        let (_, instance) = systemd::split_instance(&unit);
        let f = match dirs.lookup(&unit) {
            Lookup::Masked { path } => {
                out.masked.insert(unit.clone(), path);
                continue;
            }
            Lookup::Found(found) => read_found(root, &found, &mut parsed)?,
            Lookup::Missing => match own_unit(&unit, rules.own) {
                Some(f) => f,
                None => continue,
            },
        };
        queue.extend(f.unit.wants(instance.as_deref()));
        for words in f.unit.exec_lines(instance.as_deref()) {
            if systemd::is_modules_load(&words[0]) {
                conf_paths.extend(words[1..].iter().cloned());
            }
        }
        out.files.insert(unit.clone(), f);
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

/// The unit directories of the root, listed for [`UnitDirs::lookup`]: each
/// entry's kind, the targets of symlinks and whether they end at /dev/null
/// or an empty file, and the `*.conf` entries of `NAME.d` directories.
pub fn read_unit_dirs(root: &Root) -> Result<UnitDirs> {
    let mut out = UnitDirs::default();
    let mut seen = BTreeSet::new();
    for d in systemd::UNIT_DIRS {
        let host = root
            .resolve(d)
            .with_context(|| root.display(Path::new(d)))?;
        if !host.is_dir() || !seen.insert(host.clone()) {
            continue;
        }
        let mut entries = BTreeMap::new();
        for n in list_host_dir(&host)? {
            if n.starts_with('.') {
                continue;
            }
            let inner = format!("{d}/{n}");
            let node = read_node(root, &host, &inner, n.ends_with(".d"))?;
            entries.insert(n, node);
        }
        out.dirs.push(UnitDir {
            path: d.to_string(),
            resolved: root.inner(&host).display().to_string(),
            entries,
        });
    }
    Ok(out)
}

/// The device number of /dev/null (major 1, minor 3, as Linux encodes it).
const DEV_NULL_RDEV: u64 = (1 << 8) | 3;

/// What is at `inner` (a path inside the root) whose parent directory is
/// `parent` on the host (resolved inside the root already: the caller has
/// it, and resolving it again for every entry is most of the work); `list`:
/// a directory's `*.conf` entries are read too.
fn read_node(root: &Root, parent: &Path, inner: &str, list: bool) -> Result<Node> {
    let (_, name) = inner.rsplit_once('/').expect("an absolute path");
    let host = parent.join(name);
    let md = std::fs::symlink_metadata(&host).with_context(|| host.display().to_string())?;
    let is_link = md.file_type().is_symlink();
    // Not a symlink: it is where it ends, and what it is is known already.
    let (end, end_md) = if is_link {
        let end = root.resolve(inner)?;
        let end_md = std::fs::metadata(&end).ok();
        (end, end_md)
    } else {
        (host.clone(), Some(md))
    };
    let end_is_dir = end_md.as_ref().is_some_and(|m| m.is_dir());
    // systemd's null_or_empty(): an empty regular file, or the character
    // device /dev/null (rdev 1:3) however it is reached (a root of `/`
    // leaves links to the system to follow).
    let is_null = || {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        root.inner(&end) == Path::new("/dev/null")
            || end_md.as_ref().is_some_and(|m| {
                (m.is_file() && m.len() == 0)
                    || (m.file_type().is_char_device() && m.rdev() == DEV_NULL_RDEV)
            })
    };
    if is_link && !end_is_dir {
        let target = std::fs::read_link(&host).with_context(|| host.display().to_string())?;
        return Ok(Node::Link {
            target: target.display().to_string(),
            null: is_null(),
        });
    }
    if end_is_dir {
        let mut confs = BTreeMap::new();
        if list {
            for n in list_host_dir(&end)? {
                if n.starts_with('.') || !n.ends_with(".conf") {
                    continue;
                }
                confs.insert(
                    n.clone(),
                    read_node(root, &end, &format!("{inner}/{n}"), false)?,
                );
            }
        }
        return Ok(Node::Dir { confs });
    }
    Ok(Node::File { empty: is_null() })
}

/// Unit files and drop-ins read in this run, parsed, by path inside the
/// root: every instance of a template (`rdma-load-modules@*.service`) reads
/// the same file.
type Parsed = std::collections::HashMap<String, (Source, Unit)>;

/// A unit file (or drop-in) read and parsed, once a run.
fn read_parsed(root: &Root, inner: &str, parsed: &mut Parsed) -> Result<(Source, Unit)> {
    if let Some(got) = parsed.get(inner) {
        return Ok(got.clone());
    }
    let (source, text) = read_text(root, inner)?;
    let unit = Unit::parse_file(&text, inner);
    parsed.insert(inner.to_string(), (source.clone(), unit.clone()));
    Ok((source, unit))
}

/// A unit's text, read whole (capped).
fn read_text(root: &Root, inner: &str) -> Result<(Source, String)> {
    let host = root.resolve(inner)?;
    let bytes = read_capped(&host, MAX_CONFIG_FILE).with_context(|| host.display().to_string())?;
    Ok((Source::root(inner, host), crate::root::text(bytes)))
}

/// A unit found in the root: its file, the aliases followed to it, and its
/// drop-ins applied in order.
fn read_found(root: &Root, found: &lookup::Found, parsed: &mut Parsed) -> Result<UnitFile> {
    let (source, mut unit) = read_parsed(root, &found.fragment, parsed)?;
    let mut dropins = Vec::new();
    for d in &found.dropins {
        if d.null {
            dropins.push(DropinFile {
                inner: d.path.clone(),
                source: None,
            });
            continue;
        }
        let (source, dropin) = read_parsed(root, &d.path, parsed)?;
        unit.extend(dropin);
        dropins.push(DropinFile {
            inner: d.path.clone(),
            source: Some(source),
        });
    }
    let links = found
        .links
        .iter()
        .map(|l| Ok((l.clone(), Source::root(l.clone(), root.resolve(l)?))))
        .collect::<Result<Vec<_>>>()?;
    let name = found
        .fragment
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(UnitFile {
        doc_confs: doc_confs(root, &unit)?,
        name,
        inner: found.fragment.clone(),
        source,
        unit,
        links,
        dropins,
    })
}

/// rdma-initrd's own unit for `unit` where it stands in.
fn own_unit(unit: &str, own: bool) -> Option<UnitFile> {
    if !own {
        return None;
    }
    let file_name = systemd::split_instance(unit).0;
    let e = units::UNITS
        .iter()
        .find(|e| e.dest.rsplit('/').next() == Some(file_name.as_str()))?;
    Some(UnitFile {
        name: file_name,
        inner: e.dest.to_string(),
        source: Source::Own(e),
        unit: Unit::parse_file(e.text, e.dest),
        links: Vec::new(),
        dropins: Vec::new(),
        doc_confs: Vec::new(),
    })
}

/// Configuration files under /etc a unit names (`Documentation=file:...`)
/// that exist.
fn doc_confs(root: &Root, unit: &Unit) -> Result<Vec<(String, Source)>> {
    let mut out = Vec::new();
    for doc in unit
        .values("Documentation")
        .flat_map(|v| v.split_ascii_whitespace())
        .filter_map(|d| d.strip_prefix("file:"))
        .filter(|p| p.starts_with("/etc/"))
    {
        let host = root.resolve(doc)?;
        if host.is_file() {
            out.push((doc.to_string(), Source::root(doc, host)));
        }
    }
    Ok(out)
}

/// A module list of the root, or rdma-initrd's own where it stands in;
/// None when neither exists.
fn read_conf(root: &Root, inner: &str, own: bool) -> Result<Option<ConfFile>> {
    let host = root.resolve(inner)?;
    let (source, text) = match read_capped(&host, MAX_CONFIG_FILE) {
        Ok(b) => (Source::root(inner, host.clone()), crate::root::text(b)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A mask reached through a root of `/` (rdma-initrd run inside the
    /// image root, as on a host or in a chroot): the link ends at the
    /// system's own /dev/null, which only its device number tells.
    #[test]
    fn a_link_to_dev_null_is_a_mask_in_a_root_of_slash() {
        let t = tempfile::tempdir().unwrap();
        let link = t.path().join("iwpmd.service");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let empty = t.path().join("empty.service");
        std::fs::write(&empty, b"").unwrap();
        let full = t.path().join("full.service");
        std::fs::write(&full, b"[Unit]\n").unwrap();
        let root = Root::new(Path::new("/"));
        let node = |p: &Path| read_node(&root, t.path(), p.to_str().unwrap(), false).unwrap();
        assert!(node(&link).is_null(), "{:?}", node(&link));
        assert!(node(&empty).is_null());
        assert!(!node(&full).is_null());
    }
}
