//! The tree of files an initramfs needs for a plan: modules in their own
//! compression, a module index made by depmod for exactly the image's
//! module set, firmware, rules, units, confs, programs with their libraries,
//! boot hooks; laid over an existing image's tree when given. Written out as
//! a directory here, as an image by `image`.

use super::DRACUT_HOOK_DIRS;
use crate::cpio::{Entry, Node, Tree};
use crate::kmod::name;
use crate::plan::items::{Content, Item, ItemKind, Perm};
use crate::plan::{FileKind, Plan};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;

pub fn file_entry(bytes: Vec<u8>, perm: u32) -> Entry {
    Entry {
        perm: perm & 0o777,
        node: Node::File(bytes),
    }
}

fn host_perm(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o644)
}

/// The tree for `plan`, laid over `base` (an existing image's tree) if given.
pub fn plan_tree(plan: &Plan, base: Option<&Tree>) -> Result<Tree> {
    plan_tree_over(plan, base.cloned().unwrap_or_default(), None)
}

/// The module files of a base image that its tree holds only as empty
/// stand-ins (paths relative to the module directory).
pub struct BaseModules<'a> {
    /// A directory holding those that differ from the host's.
    pub staged: &'a Path,
    /// Those that are the host's files (in the plan's module directory).
    pub same_as_host: &'a BTreeSet<String>,
}

/// The plan laid over `tree`; `base_modules`: the base's module files,
/// indexed with the plan's.
pub fn plan_tree_over(
    plan: &Plan,
    mut tree: Tree,
    base_modules: Option<&BaseModules>,
) -> Result<Tree> {
    for item in plan.items() {
        add_item(&mut tree, &item)?;
    }
    module_index(&mut tree, &plan.kver, Path::new(&plan.moddir), base_modules)?;
    Ok(tree)
}

fn add_item(tree: &mut Tree, item: &Item) -> Result<()> {
    let kept = matches!(
        item.kind,
        ItemKind::File(FileKind::Program | FileKind::Library)
    );
    // A base image's own copy of a program or library stays.
    if kept && tree.contains(&item.dest) {
        return Ok(());
    }
    match item.content {
        Content::Host(path) => insert(
            tree,
            &item.dest,
            Entry {
                perm: perm(item, None),
                node: Node::Host(path.into()),
            },
        ),
        // Programs and libraries are large: copied from the host when the
        // image is written, not held (they are never compared with a base's
        // copy, which stays).
        Content::Source(source) if kept && source.host().is_some() => {
            let host = source.host().expect("a host file");
            insert(
                tree,
                &item.dest,
                Entry {
                    perm: perm(item, Some(host)),
                    node: Node::Host(host.into()),
                },
            )
        }
        Content::Source(source) => {
            let bytes = source.bytes().with_context(|| source.label())?;
            let dest = match item.kind {
                ItemKind::File(FileKind::Hook) => format!("{}/{}", hook_dir(tree), item.dest),
                _ => item.dest.clone(),
            };
            insert(tree, &dest, file_entry(bytes, perm(item, source.host())))
        }
        Content::Link(target) => insert(
            tree,
            &item.dest,
            Entry {
                perm: perm(item, None),
                node: Node::Symlink(target.to_string()),
            },
        ),
        Content::Line(module) => add_line(tree, &item.dest, module),
    }
}

fn perm(item: &Item, host: Option<&Path>) -> u32 {
    match (item.perm, host) {
        (Perm::Fixed(p), _) => p,
        (Perm::OfSource, Some(h)) => host_perm(h),
        (Perm::OfSource, None) => 0o644,
    }
}

/// Where boot hooks go: the base's hook directory, where it has one.
fn hook_dir(tree: &Tree) -> &'static str {
    DRACUT_HOOK_DIRS
        .iter()
        .rev()
        .find(|d| {
            matches!(
                tree.get(d),
                Some(Entry {
                    node: Node::Dir,
                    ..
                })
            )
        })
        .unwrap_or(&DRACUT_HOOK_DIRS[0])
}

/// `--protocol` without systemd: `module` in the list the generator's boot
/// code loads (initramfs-tools' /conf/modules), once.
fn add_line(tree: &mut Tree, list: &str, module: &str) -> Result<()> {
    let mut text = tree
        .file(list)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    if !preload_listed(&text).contains(&name::normalize_modname(module)) {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(module);
        text.push('\n');
    }
    insert(tree, list, file_entry(text.into_bytes(), 0o644))
}

pub fn insert(tree: &mut Tree, path: &str, e: Entry) -> Result<()> {
    match tree.insert(path, e) {
        Some(_) => Ok(()),
        None => bail!("{path}: not a path inside the image"),
    }
}

/// The image's module directory for `kver` (symlinks of the tree followed).
pub fn image_moddir(tree: &Tree, kver: &str) -> Result<String> {
    tree.canonical(&format!("lib/modules/{kver}"))
        .context("lib/modules is not a path inside the image")
}

/// A staging copy of the files of the image's module directory that `keep`
/// accepts (by path relative to it): (the staging root, its
/// lib/modules/KVER, how many files).
pub fn stage_moddir(
    tree: &Tree,
    kver: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<(tempfile::TempDir, std::path::PathBuf, usize)> {
    let prefix = format!("{}/", image_moddir(tree, kver)?);
    let stage = tempfile::tempdir().context("creating a staging directory")?;
    let sdir = stage.path().join("lib/modules").join(kver);
    std::fs::create_dir_all(&sdir)?;
    let mut n = 0;
    for (p, e) in &tree.entries {
        let Some(rel) = p.strip_prefix(&prefix).filter(|r| keep(r)) else {
            continue;
        };
        let dst = sdir.join(rel);
        match &e.node {
            Node::File(b) if !b.is_empty() => {
                std::fs::create_dir_all(dst.parent().expect("has a parent"))?;
                std::fs::write(&dst, b)?;
                n += 1;
            }
            Node::Host(h) => {
                std::fs::create_dir_all(dst.parent().expect("has a parent"))?;
                if std::fs::hard_link(h, &dst).is_err() {
                    std::fs::copy(h, &dst).with_context(|| h.display().to_string())?;
                }
                n += 1;
            }
            _ => {}
        }
    }
    Ok((stage, sdir, n))
}

/// Run depmod over the image's modules so that its index (modules.dep, the
/// .bin indexes, aliases, softdeps) describes exactly what is in it.
fn module_index(
    tree: &mut Tree,
    kver: &str,
    moddir: &Path,
    base_modules: Option<&BaseModules>,
) -> Result<()> {
    let prefix = format!("{}/", image_moddir(tree, kver)?);
    let (stage, sdir, mut n) = stage_moddir(tree, kver, |rel| {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        base.contains(".ko") && !rel.starts_with("modules.")
    })?;
    if let Some(base) = base_modules {
        n += copy_missing(base.staged, &sdir)?;
        for rel in base.same_as_host {
            let dst = sdir.join(rel);
            if dst.metadata().is_ok_and(|m| m.len() > 0) {
                continue;
            }
            let src = moddir.join(rel);
            std::fs::create_dir_all(dst.parent().expect("has a parent"))?;
            let _ = std::fs::remove_file(&dst);
            if std::fs::hard_link(&src, &dst).is_err() {
                std::fs::copy(&src, &dst).with_context(|| src.display().to_string())?;
            }
            n += 1;
        }
    }
    // What the kernel has built in, so lookups of builtin names still work.
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        let src = moddir.join(f);
        if src.is_file() {
            std::fs::copy(&src, sdir.join(f)).with_context(|| src.display().to_string())?;
        } else if let Some(b) = tree.file(&format!("{prefix}{f}")) {
            std::fs::write(sdir.join(f), b)?;
        }
    }
    if n == 0 && !sdir.join("modules.builtin").exists() {
        return Ok(());
    }
    let out = std::process::Command::new("depmod")
        .arg("-b")
        .arg(stage.path())
        .arg(kver)
        .output()
        .context("running depmod (install kmod)")?;
    if !out.status.success() {
        bail!(
            "depmod -b {} {kver} failed: {}",
            stage.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for name in crate::root::list_host_dir(&sdir)? {
        if name.starts_with("modules.") {
            let b = std::fs::read(sdir.join(&name))?;
            insert(tree, &format!("{prefix}{name}"), file_entry(b, 0o644))?;
        }
    }
    Ok(())
}

/// Copy (hard link where it can) every file under `from` to the same place
/// under `to` where `to` has no non-empty file yet; how many.
fn copy_missing(from: &Path, to: &Path) -> Result<usize> {
    let mut n = 0;
    for e in walkdir::WalkDir::new(from).min_depth(1) {
        let e = e?;
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e.path().strip_prefix(from).expect("under from");
        let dst = to.join(rel);
        if dst.metadata().is_ok_and(|m| m.len() > 0) {
            continue;
        }
        std::fs::create_dir_all(dst.parent().expect("has a parent"))?;
        let _ = std::fs::remove_file(&dst);
        if std::fs::hard_link(e.path(), &dst).is_err() {
            std::fs::copy(e.path(), &dst).with_context(|| e.path().display().to_string())?;
        }
        n += 1;
    }
    Ok(n)
}

/// Write `tree` under `dest`, never through a symlink found there.
pub fn write_destdir(tree: &Tree, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).with_context(|| dest.display().to_string())?;
    for (p, e) in &tree.entries {
        let target = dest.join(p);
        // Every directory on the way must be a real directory.
        let mut cur = dest.to_path_buf();
        for c in Path::new(p)
            .parent()
            .into_iter()
            .flat_map(|x| x.components())
        {
            cur.push(c);
            match std::fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    bail!("{}: refusing to write through a symlink", cur.display())
                }
                _ => {}
            }
        }
        if let Ok(m) = std::fs::symlink_metadata(&target) {
            if m.file_type().is_symlink() {
                bail!("{}: refusing to write through a symlink", target.display());
            }
            if m.is_dir() && !matches!(e.node, Node::Dir) {
                bail!(
                    "{}: is a directory; refusing to replace it",
                    target.display()
                );
            }
        }
        use std::os::unix::fs::PermissionsExt;
        match &e.node {
            Node::Dir => {
                std::fs::create_dir_all(&target).with_context(|| target.display().to_string())?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(e.perm & 0o777))?;
            }
            Node::File(b) => {
                std::fs::write(&target, b).with_context(|| target.display().to_string())?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(e.perm & 0o777))?;
            }
            Node::Host(h) => {
                std::fs::copy(h, &target).with_context(|| h.display().to_string())?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(e.perm & 0o777))?;
            }
            Node::Symlink(t) => {
                std::os::unix::fs::symlink(t, &target)
                    .with_context(|| target.display().to_string())?;
            }
        }
    }
    Ok(())
}

/// The modules a `conf/modules` list names (first word of each line, `#`
/// comments skipped), normalised.
pub fn preload_listed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| !w.starts_with('#'))
        .map(name::normalize_modname)
        .collect()
}
