//! Configuration directories read as one overlay, the way udev (rules.d),
//! libkmod (modprobe.d) and systemd (unit directories) read theirs: every
//! file name once, taken from the first directory (highest precedence) that
//! holds it, the names sorted bytewise.

use crate::error::{InputError, Warning};
use crate::root::Root;
use crate::source::Source;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A directory of an overlay: inside the root, or a host directory given on
/// the command line whose files stand for `as_dir` inside the image.
#[derive(Debug, Clone)]
pub enum Dir {
    Root(String),
    Host { host: PathBuf, as_dir: String },
}

/// One file the overlay chose.
#[derive(Debug, Clone)]
pub struct File {
    /// Its base name (what precedence is decided on).
    pub name: String,
    /// Its path inside the root (or image).
    pub inner: String,
    pub source: Source,
}

/// The files of `dirs` (highest precedence first) whose name `keep`
/// accepts, sorted by name. Directories among them are skipped with a
/// warning; missing directories are empty.
pub fn walk(
    root: &Root,
    dirs: &[Dir],
    keep: impl Fn(&str) -> bool,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<File>> {
    let mut chosen: BTreeMap<String, File> = BTreeMap::new();
    for d in dirs {
        let (host_dir, inner_dir, in_root) = match d {
            Dir::Root(inner) => (
                root.resolve(inner)
                    .with_context(|| root.display(Path::new(inner)))?,
                inner.clone(),
                true,
            ),
            Dir::Host { host, as_dir } => (host.clone(), as_dir.clone(), false),
        };
        for n in crate::root::list_host_dir(&host_dir)? {
            if n.starts_with('.') || !keep(&n) || chosen.contains_key(&n) {
                continue;
            }
            let host = host_dir.join(&n);
            if host.is_dir() {
                warnings.push(InputError::new(
                    &host.display().to_string(),
                    None,
                    "a directory where a file was expected; skipped",
                ));
                continue;
            }
            let inner = format!("{inner_dir}/{n}");
            let source = if in_root {
                Source::root(inner.clone(), host)
            } else {
                Source::Host(host)
            };
            chosen.insert(
                n.clone(),
                File {
                    name: n,
                    inner,
                    source,
                },
            );
        }
    }
    Ok(chosen.into_values().collect())
}

/// `dirs` as overlay directories inside the root.
pub fn root_dirs(dirs: &[&str]) -> Vec<Dir> {
    dirs.iter().map(|d| Dir::Root(d.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_directory_wins_and_names_sort() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for (d, n, c) in [
            ("etc/x.d", "b.conf", "etc"),
            ("lib/x.d", "b.conf", "lib"),
            ("lib/x.d", "a.conf", "lib"),
            ("lib/x.d", ".hidden.conf", "no"),
            ("lib/x.d", "c.txt", "no"),
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
            std::fs::write(r.join(d).join(n), c).unwrap();
        }
        std::fs::create_dir_all(r.join("lib/x.d/d.conf")).unwrap();
        let mut w = Vec::new();
        let files = walk(
            &Root::new(r),
            &root_dirs(&["/etc/x.d", "/run/x.d", "/lib/x.d"]),
            |n| n.ends_with(".conf"),
            &mut w,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = files
            .iter()
            .map(|f| (f.name.as_str(), f.inner.as_str()))
            .collect();
        assert_eq!(
            got,
            [("a.conf", "/lib/x.d/a.conf"), ("b.conf", "/etc/x.d/b.conf")]
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(files[1].source.bytes().unwrap(), b"etc");
    }
}
