//! `inspect` (alias `lsinitrd`): the RDMA part of an image, read from the
//! image alone. With a manifest, its items, each found in the image (where a
//! generator may have put it) and compared with the digest it was planned
//! with; without one, what the names say is RDMA's. Modules show their
//! `.modinfo` version fields as the image holds them.

use super::verify::{image_modules, places_of};
use super::DRACUT_HOOK_DIRS;
use crate::cpio::{Node, Tree};
use crate::kmod::{compress, modinfo, name};
use crate::manifest::{Item, Manifest};
use crate::plan::FileKind;
use crate::sha256;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// In the image with the planned bytes.
    Same,
    /// In the image with other bytes (recompressed, stripped or changed).
    Other,
    Missing,
    /// No manifest: found by its name.
    Found,
}

impl State {
    pub fn note(&self) -> &'static str {
        match self {
            State::Same | State::Found => "",
            State::Other => " (other bytes than planned)",
            State::Missing => " (MISSING)",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModuleRow {
    pub name: String,
    /// Its path in the image, when there.
    pub path: Option<String>,
    pub state: State,
    pub version: Option<String>,
    pub vermagic: Option<String>,
    pub srcversion: Option<String>,
    /// Why `.modinfo` could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileRow {
    pub kind: String,
    pub dest: String,
    /// Where the image holds it, when there.
    pub path: Option<String>,
    pub state: State,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub modules: Vec<ModuleRow>,
    pub files: Vec<FileRow>,
}

/// The RDMA part of `tree`: the manifest's items, or (none) what the names
/// say.
pub fn inspect(tree: &Tree, manifest: Option<&Manifest>) -> Report {
    match manifest {
        Some(m) => from_manifest(tree, m),
        None => guessed(tree),
    }
}

fn module_row(tree: &Tree, name: String, path: Option<String>, want: Option<&str>) -> ModuleRow {
    let bytes = path.as_deref().and_then(|p| tree.file(p));
    let state = match (bytes, want) {
        (None, _) => State::Missing,
        (Some(_), None) => State::Found,
        (Some(b), Some(w)) if sha256::digest_hex(b) == w => State::Same,
        (Some(_), Some(_)) => State::Other,
    };
    let mut row = ModuleRow {
        name,
        path: bytes.and(path),
        state,
        version: None,
        vermagic: None,
        srcversion: None,
        error: None,
    };
    if let Some(b) = bytes {
        match compress::decompress(b, crate::facts::MAX_MODULE_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|plain| modinfo::parse_elf(&plain))
        {
            Ok(mi) => {
                let field = |k| mi.get(k).map(|v| v.trim().to_string());
                row.version = field("version");
                row.vermagic = field("vermagic");
                row.srcversion = field("srcversion");
            }
            Err(e) => row.error = Some(e),
        }
    }
    row
}

fn kind_of(k: &str) -> Option<FileKind> {
    Some(match k {
        "rule" => FileKind::Rule,
        "unit" => FileKind::Unit,
        "conf" => FileKind::Conf,
        "modprobe" => FileKind::Modprobe,
        "program" => FileKind::Program,
        "library" => FileKind::Library,
        "hook" => FileKind::Hook,
        _ => return None,
    })
}

fn file_row(tree: &Tree, i: &Item) -> FileRow {
    let places = match kind_of(&i.kind) {
        Some(k) => places_of(k, &i.dest),
        None => {
            // firmware (maybe in another compression), want links, lists.
            let stem = i.dest.trim_end_matches(".xz").trim_end_matches(".zst");
            let mut v = vec![i.dest.clone()];
            if i.kind == "firmware" {
                v.extend([
                    stem.to_string(),
                    format!("{stem}.xz"),
                    format!("{stem}.zst"),
                ]);
            }
            v
        }
    };
    let mut found = None;
    let mut state = State::Missing;
    for p in &places {
        let Some(e) = crate::cpio::clean(p).and_then(|c| tree.get(&c).map(|e| (c, e))) else {
            continue;
        };
        let bytes: Option<Vec<u8>> = match &e.1.node {
            Node::File(b) => Some(b.clone()),
            Node::Symlink(t) => Some(t.as_bytes().to_vec()),
            _ => None,
        };
        let Some(b) = bytes else { continue };
        // A want is a link: its target is what was planned.
        let b = match (&i.kind[..], tree.entries.get(&e.0).map(|x| &x.node)) {
            ("want", Some(Node::Symlink(t))) => t.as_bytes().to_vec(),
            _ => b,
        };
        let same = sha256::digest_hex(&b) == i.sha256;
        if found.is_none() || same {
            found = Some(e.0.clone());
            state = if same { State::Same } else { State::Other };
        }
        if same {
            break;
        }
    }
    FileRow {
        kind: i.kind.clone(),
        dest: i.dest.clone(),
        path: found,
        state,
    }
}

fn from_manifest(tree: &Tree, m: &Manifest) -> Report {
    let in_image = image_modules(tree, &m.kver);
    let mut r = Report {
        modules: Vec::new(),
        files: Vec::new(),
    };
    for i in &m.plan.items {
        if i.kind == "module" {
            let n = name::modname_from_path(&i.dest);
            let path = in_image.get(&n).cloned();
            r.modules.push(module_row(tree, n, path, Some(&i.sha256)));
        } else {
            r.files.push(file_row(tree, i));
        }
    }
    r.modules.sort_by(|a, b| a.name.cmp(&b.name));
    r
}

/// Module paths (under a module directory) that are RDMA's by where they
/// live in the kernel tree.
const RDMA_MODULE_DIRS: &[&str] = &[
    "kernel/drivers/infiniband/",
    "kernel/net/sunrpc/xprtrdma/",
    "kernel/net/rds/",
    "kernel/drivers/nvme/host/nvme-rdma",
    "kernel/drivers/nvme/target/nvmet-rdma",
    "updates/",
    "extra/",
];

fn guessed(tree: &Tree) -> Report {
    let mut r = Report {
        modules: Vec::new(),
        files: Vec::new(),
    };
    for (p, e) in &tree.entries {
        if !matches!(e.node, Node::File(_)) {
            continue;
        }
        let base = p.rsplit('/').next().unwrap_or(p);
        if let Some((_, rel)) = p
            .strip_prefix("usr/lib/modules/")
            .or_else(|| p.strip_prefix("lib/modules/"))
            .and_then(|r| r.split_once('/'))
        {
            if base.contains(".ko")
                && RDMA_MODULE_DIRS.iter().any(|d| rel.starts_with(d))
                && (!rel.starts_with("updates/") && !rel.starts_with("extra/")
                    || rel.contains("infiniband")
                    || rel.contains("rdma"))
            {
                r.modules.push(module_row(
                    tree,
                    name::modname_from_path(rel),
                    Some(p.clone()),
                    None,
                ));
            }
            continue;
        }
        let kind = if base.ends_with(".rules")
            && base.contains("rdma")
            && crate::udev::rules::RULES_DIRS
                .iter()
                .any(|d| p.starts_with(d.trim_start_matches('/')))
        {
            "rule"
        } else if (base.starts_with("rdma") || p.contains("/rdma-"))
            && crate::systemd::UNIT_DIRS
                .iter()
                .any(|d| p.starts_with(d.trim_start_matches('/')))
        {
            "unit"
        } else if p.starts_with("etc/rdma/") {
            "conf"
        } else if base.contains("rdma")
            && DRACUT_HOOK_DIRS
                .iter()
                .any(|d| p.starts_with(&format!("{d}/")))
        {
            "hook"
        } else if p.starts_with("usr/lib/rdma-initrd/") || p.starts_with("etc/rdma-initrd/") {
            "rdma-initrd"
        } else {
            continue;
        };
        r.files.push(FileRow {
            kind: kind.to_string(),
            dest: format!("/{p}"),
            path: Some(p.clone()),
            state: State::Found,
        });
    }
    r.modules.sort_by(|a, b| a.name.cmp(&b.name));
    r
}
