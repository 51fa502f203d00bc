//! Finding a unit as systemd does, over a listing of the unit directories
//! (read by `facts`; everything here is a pure function of it):
//!
//! - the unit file: the first directory (highest precedence) holding the
//!   name wins; a symlink into a unit directory is an alias, followed to the
//!   name it points to (`unit_file_build_name_map`, `unit_ids_map_get`); an
//!   instance without a file of its own uses its template's;
//! - a mask: the file found is a symlink to `/dev/null` or empty
//!   (`null_or_empty`): the unit is not loaded;
//! - drop-ins (`unit_file_find_dropin_paths`): for the unit's name and each
//!   alias, the directories `NAME.d` of the name, its template, and its
//!   dash-prefixes (`a-b-c@i.service` -> `a-b-@i.service`, `a-@i.service`,
//!   each with its template), each looked up in every unit directory in
//!   precedence order, then the type-wide `service.d` in every directory;
//!   their `*.conf` files, a name found first (in that order of directories)
//!   shadowing the same name later, applied sorted by file name.

use std::collections::{BTreeMap, BTreeSet};

/// Symlink hops followed from a name to its unit file (systemd's FOLLOW_MAX).
const MAX_HOPS: usize = 64;

/// What a unit directory holds at one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file; `empty`: of size 0, which systemd takes as a mask.
    File { empty: bool },
    /// A symlink: its target as written, and whether it ends at
    /// `/dev/null` or an empty file inside the root (a mask).
    Link { target: String, null: bool },
    /// A directory (or a symlink to one): its `*.conf` entries (what a
    /// drop-in directory holds; other names are left out).
    Dir { confs: BTreeMap<String, Node> },
}

impl Node {
    /// Whether systemd reads this file as a mask (`null_or_empty`).
    pub fn is_null(&self) -> bool {
        matches!(
            self,
            Node::File { empty: true } | Node::Link { null: true, .. }
        )
    }
}

/// One unit directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitDir {
    /// As in the search path (`/lib/systemd/system`).
    pub path: String,
    /// After symlinks inside the root (`/usr/lib/systemd/system` when /lib
    /// links to usr/lib).
    pub resolved: String,
    pub entries: BTreeMap<String, Node>,
}

/// The unit directories of a root, highest precedence first, each once
/// (a directory that is another one through symlinks is left out, as
/// systemd's `lookup_paths_reduce` does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitDirs {
    pub dirs: Vec<UnitDir>,
}

/// Where a unit's name leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Found),
    /// The file found for it (`path`) is a mask.
    Masked {
        path: String,
    },
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The unit file systemd loads (`systemctl cat`'s first `# PATH`).
    pub fragment: String,
    /// The alias symlinks followed from the name to the fragment's name, in
    /// order.
    pub links: Vec<String>,
    /// Every name of the unit: the name asked for, then its aliases (the
    /// names whose symlinks lead to the same file), sorted.
    pub names: Vec<String>,
    /// The drop-ins in the order systemd applies them.
    pub dropins: Vec<Dropin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropin {
    pub path: String,
    /// A symlink to /dev/null or an empty file: it shadows the same name in
    /// lower directories and sets nothing.
    pub null: bool,
}

/// Unit types (`service.d/` is the type-wide drop-in directory).
const TYPES: &[&str] = &[
    "service",
    "mount",
    "swap",
    "socket",
    "target",
    "device",
    "automount",
    "timer",
    "path",
    "slice",
    "scope",
];

/// `name.type` -> ("name", "type") where type is a unit type.
fn split_type(name: &str) -> Option<(&str, &str)> {
    let (stem, ty) = name.rsplit_once('.')?;
    (TYPES.contains(&ty) && !stem.is_empty()).then_some((stem, ty))
}

/// Whether `name` is a unit name systemd accepts in a unit directory
/// (plain, template or instance, of a known type).
pub fn is_unit_name(name: &str) -> bool {
    let Some((stem, _)) = split_type(name) else {
        return false;
    };
    match stem.split_once('@') {
        Some((prefix, _)) => !prefix.is_empty(),
        None => true,
    }
}

/// `a@i.service` -> Some(("a", "i", "service")).
fn split_instance(name: &str) -> Option<(&str, &str, &str)> {
    let (stem, ty) = split_type(name)?;
    let (prefix, inst) = stem.split_once('@')?;
    (!prefix.is_empty() && !inst.is_empty()).then_some((prefix, inst, ty))
}

/// `a@.service` -> Some(("a", "service")).
fn split_template(name: &str) -> Option<(&str, &str)> {
    let (stem, ty) = split_type(name)?;
    let p = stem.strip_suffix('@')?;
    (!p.is_empty() && !p.contains('@')).then_some((p, ty))
}

fn template_of(name: &str) -> Option<String> {
    split_instance(name).map(|(p, _, t)| format!("{p}@.{t}"))
}

/// The names whose `.d` directories systemd reads for a unit named `name`
/// (before the type-wide one), in order: `unit_file_expand_dropin_names`.
pub fn dropin_names(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    expand_dropin_names(name, &mut out);
    out
}

fn expand_dropin_names(name: &str, out: &mut Vec<String>) {
    out.push(name.to_string());
    let instance = split_instance(name).map(|(_, i, _)| i.to_string());
    if let Some(t) = template_of(name) {
        expand_dropin_names(&t, out);
    }
    let Some((stem, ty)) = split_type(name) else {
        return;
    };
    // unit_name_to_prefix: the part before '@' (or the type suffix).
    let mut prefix = stem.split('@').next().unwrap_or(stem).to_string();
    let mut chopped = false;
    loop {
        let Some(n) = prefix.rfind('-') else { return };
        if n == 0 {
            return;
        }
        if prefix.len() > n + 1 || chopped {
            prefix.truncate(n + 1);
            break;
        }
        // A trailing dash: chop it off and try again, once.
        prefix.truncate(n);
        chopped = true;
    }
    let built = match instance {
        Some(i) => format!("{prefix}@{i}.{ty}"),
        None => format!("{prefix}.{ty}"),
    };
    expand_dropin_names(&built, out);
}

/// `dir` joined with a relative `target`, `.` and `..` removed (lexically,
/// as systemd's `chase(CHASE_NOFOLLOW|CHASE_NONEXISTENT)` of a symlink's
/// target does for its last component).
pub fn join_lexically(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let start = if target.starts_with('/') { "" } else { dir };
    for c in start.split('/').chain(target.split('/')) {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// An entry of systemd's name map: a file (or linked file, or mask) path,
/// or the name an alias points to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Id {
    Path(String),
    Name(String),
}

impl UnitDirs {
    /// systemd's `unit_ids_map`: each unit name once, from the first
    /// directory holding it.
    fn ids(&self) -> BTreeMap<&str, Id> {
        let mut ids = BTreeMap::new();
        for d in &self.dirs {
            for (n, node) in &d.entries {
                if !is_unit_name(n) || ids.contains_key(n.as_str()) {
                    continue;
                }
                let path = format!("{}/{n}", d.path);
                let id = match node {
                    Node::Dir { .. } => continue,
                    Node::File { .. } => Id::Path(path),
                    Node::Link { target, .. } => {
                        let t = join_lexically(&d.path, target);
                        let inside = self.dirs.iter().any(|o| {
                            [&o.path, &o.resolved].iter().any(|p| {
                                t.strip_prefix(p.as_str())
                                    .is_some_and(|r| r.starts_with('/'))
                            })
                        });
                        match t.rsplit('/').next() {
                            Some(base) if inside && is_unit_name(base) => {
                                Id::Name(base.to_string())
                            }
                            // A linked unit file or a mask: the link itself.
                            _ => Id::Path(path),
                        }
                    }
                };
                ids.insert(n.as_str(), id);
            }
        }
        ids
    }

    /// The node at a path of a unit directory.
    fn node(&self, path: &str) -> Option<&Node> {
        let (dir, name) = path.rsplit_once('/')?;
        self.dirs
            .iter()
            .find(|d| d.path == dir)
            .and_then(|d| d.entries.get(name))
    }

    /// Follow `name` through aliases: (file path, alias links followed).
    fn follow(&self, ids: &BTreeMap<&str, Id>, name: &str) -> Option<(String, Vec<String>)> {
        let mut cur = name.to_string();
        let mut links = Vec::new();
        for _ in 0..MAX_HOPS {
            match ids.get(cur.as_str())? {
                Id::Path(p) => return Some((p.clone(), links)),
                Id::Name(next) => {
                    links.push(self.first_path(&cur)?);
                    cur = next.clone();
                }
            }
        }
        None
    }

    /// The path of the first directory entry named `name`.
    fn first_path(&self, name: &str) -> Option<String> {
        self.dirs
            .iter()
            .find(|d| d.entries.contains_key(name))
            .map(|d| format!("{}/{name}", d.path))
    }

    /// Where `name` leads: `unit_file_find_fragment`, then the drop-ins.
    pub fn lookup(&self, name: &str) -> Lookup {
        let ids = self.ids();
        let instance = split_instance(name).map(|(_, i, _)| i);
        let (fragment, links, via_template) = match self.follow(&ids, name) {
            Some((f, l)) => (f, l, false),
            None => match template_of(name).and_then(|t| self.follow(&ids, &t)) {
                Some((f, l)) => (f, l, true),
                None => return Lookup::Missing,
            },
        };
        if self.node(&fragment).is_some_and(Node::is_null) {
            return Lookup::Masked { path: fragment };
        }
        // Aliases: every other name leading to the same file (a template's
        // alias standing for the same instance of it).
        let mut aliases = BTreeSet::new();
        for src in ids.keys() {
            if self.follow(&ids, src).map(|(f, _)| f).as_deref() != Some(fragment.as_str()) {
                continue;
            }
            let alias = match (instance, split_template(src)) {
                (Some(i), Some((p, ty))) => format!("{p}@{i}.{ty}"),
                // A plain name cannot stand for one instance of a template.
                (Some(_), None) if via_template => continue,
                _ => src.to_string(),
            };
            if alias != name {
                aliases.insert(alias);
            }
        }
        let mut names = vec![name.to_string()];
        names.extend(aliases);
        Lookup::Found(Found {
            dropins: self.dropins(&names),
            fragment,
            links,
            names,
        })
    }

    /// The drop-ins of a unit with these names, in the order applied.
    fn dropins(&self, names: &[String]) -> Vec<Dropin> {
        let mut dirs: Vec<(&UnitDir, String)> = Vec::new();
        for n in names {
            let cands = dropin_names(n);
            for d in &self.dirs {
                for c in &cands {
                    dirs.push((d, format!("{c}.d")));
                }
            }
        }
        if let Some((_, ty)) = names.first().and_then(|n| split_type(n)) {
            for d in &self.dirs {
                dirs.push((d, format!("{ty}.d")));
            }
        }
        let mut chosen: BTreeMap<&str, Dropin> = BTreeMap::new();
        for (d, sub) in dirs {
            let Some(Node::Dir { confs }) = d.entries.get(&sub) else {
                continue;
            };
            for (f, node) in confs {
                if matches!(node, Node::Dir { .. }) || chosen.contains_key(f.as_str()) {
                    continue;
                }
                chosen.insert(
                    f,
                    Dropin {
                        path: format!("{}/{sub}/{f}", d.path),
                        null: node.is_null(),
                    },
                );
            }
        }
        chosen.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Node {
        Node::File { empty: false }
    }

    fn link(t: &str, null: bool) -> Node {
        Node::Link {
            target: t.into(),
            null,
        }
    }

    fn dir(confs: &[(&str, Node)]) -> Node {
        Node::Dir {
            confs: confs
                .iter()
                .map(|(n, c)| (n.to_string(), c.clone()))
                .collect(),
        }
    }

    fn unit_dir(path: &str, entries: Vec<(&str, Node)>) -> UnitDir {
        UnitDir {
            path: path.into(),
            resolved: path.into(),
            entries: entries
                .into_iter()
                .map(|(n, e)| (n.to_string(), e))
                .collect(),
        }
    }

    #[test]
    fn dropin_names_as_systemd_expands_them() {
        assert_eq!(
            dropin_names("rdma-load-modules@rdma.service"),
            [
                "rdma-load-modules@rdma.service",
                "rdma-load-modules@.service",
                "rdma-load-.service",
                "rdma-.service",
                "rdma-load-@rdma.service",
                "rdma-load-@.service",
                "rdma-.service",
                "rdma-@rdma.service",
                "rdma-@.service",
            ]
        );
        assert_eq!(dropin_names("iwpmd.service"), ["iwpmd.service"]);
        assert_eq!(
            dropin_names("a--b.service"),
            ["a--b.service", "a--.service", "a-.service"]
        );
    }

    #[test]
    fn precedence_shadowing_order_mask_and_alias() {
        let dirs = UnitDirs {
            dirs: vec![
                unit_dir(
                    "/etc/systemd/system",
                    vec![
                        ("iwpmd.service", link("/dev/null", true)),
                        ("empty.service", Node::File { empty: true }),
                        ("ndd.service", link("site-ndd.service", false)),
                        ("site-ndd.service", file()),
                        (
                            "x@.service.d",
                            dir(&[("20-v.conf", file()), ("90-s.conf", file())]),
                        ),
                        ("x@a.service.d", dir(&[("50-i.conf", file())])),
                        (
                            "service.d",
                            dir(&[
                                ("10-t.conf", file()),
                                ("99-m.conf", link("/dev/null", true)),
                            ]),
                        ),
                        ("site-ndd.service.d", dir(&[("1.conf", file())])),
                        ("ndd.service.d", dir(&[("2.conf", file())])),
                    ],
                ),
                unit_dir(
                    "/usr/lib/systemd/system",
                    vec![
                        ("x@.service", file()),
                        ("iwpmd.service", file()),
                        (
                            "x@.service.d",
                            dir(&[("20-v.conf", file()), ("30-u.conf", file())]),
                        ),
                        ("service.d", dir(&[("05-u.conf", file())])),
                    ],
                ),
            ],
        };
        let Lookup::Found(f) = dirs.lookup("x@a.service") else {
            panic!("x@a.service not found")
        };
        assert_eq!(f.fragment, "/usr/lib/systemd/system/x@.service");
        let paths: Vec<&str> = f.dropins.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/usr/lib/systemd/system/service.d/05-u.conf",
                "/etc/systemd/system/service.d/10-t.conf",
                "/etc/systemd/system/x@.service.d/20-v.conf",
                "/usr/lib/systemd/system/x@.service.d/30-u.conf",
                "/etc/systemd/system/x@a.service.d/50-i.conf",
                "/etc/systemd/system/x@.service.d/90-s.conf",
                "/etc/systemd/system/service.d/99-m.conf",
            ]
        );
        assert!(f.dropins[6].null);
        assert_eq!(
            dirs.lookup("iwpmd.service"),
            Lookup::Masked {
                path: "/etc/systemd/system/iwpmd.service".into()
            }
        );
        assert_eq!(
            dirs.lookup("empty.service"),
            Lookup::Masked {
                path: "/etc/systemd/system/empty.service".into()
            }
        );
        assert_eq!(dirs.lookup("nothing.service"), Lookup::Missing);
        let Lookup::Found(a) = dirs.lookup("ndd.service") else {
            panic!("ndd.service not found")
        };
        assert_eq!(a.fragment, "/etc/systemd/system/site-ndd.service");
        assert_eq!(a.links, ["/etc/systemd/system/ndd.service"]);
        assert_eq!(a.names, ["ndd.service", "site-ndd.service"]);
        let paths: Vec<&str> = a.dropins.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/usr/lib/systemd/system/service.d/05-u.conf",
                "/etc/systemd/system/site-ndd.service.d/1.conf",
                "/etc/systemd/system/service.d/10-t.conf",
                "/etc/systemd/system/ndd.service.d/2.conf",
                "/etc/systemd/system/service.d/99-m.conf",
            ]
        );
    }

    #[test]
    fn lexical_join() {
        assert_eq!(
            join_lexically("/lib/systemd/system", "../x/./y"),
            "/lib/systemd/x/y"
        );
        assert_eq!(join_lexically("/etc", "/dev/null"), "/dev/null");
    }
}
