//! `verify`: what a plan needs that an image lacks or holds otherwise, read
//! from the image's own contents. Modules, firmware, rules, units, confs,
//! modprobe.d files and hooks must hold the planned bytes (a module may be
//! stored in another compression: then its decompressed bytes are
//! compared; or stripped by the generator: then its loadable sections are,
//! `kmod::build`); programs must be there (generators strip binaries). The
//! image's own module index must resolve every planned name, with the same
//! lookup code as planning.

use super::tree::{preload_listed, stage_moddir};
use super::DRACUT_HOOK_DIRS;
use crate::cpio::{Node, Tree};
use crate::elfdeps::{PATH_DIRS, UDEV_DIRS};
use crate::kmod::{build, compress, config::Config, name, ModDb, ModKind};
use crate::plan::items::{Item, Of};
use crate::plan::{FileKind, FwFile, Plan, PlanFile, PlanModule, Preload};
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};

/// What a plan needs that an image lacks or holds otherwise, one line each
/// (`module mlx5_ib (kernel/...)`, `rule /lib/udev/...: differs from
/// /host/path`); empty when complete.
pub fn verify(plan: &Plan, tree: &Tree) -> Result<Vec<String>> {
    let mut gaps = Vec::new();
    let in_image = image_modules(tree, &plan.kver);
    for item in plan.items() {
        if let Some(g) = item_gap(&item, tree, &in_image)? {
            gaps.push(g);
        }
    }
    index(plan, tree, &in_image, &mut gaps)?;
    Ok(gaps)
}

/// Why the image does not hold `item` as planned, or None.
fn item_gap(
    item: &Item,
    tree: &Tree,
    in_image: &BTreeMap<String, String>,
) -> Result<Option<String>> {
    match item.of {
        Of::Module(m) => module_gap(m, tree, in_image),
        Of::Firmware(fw, file) => firmware_gap(&fw.name, file, tree),
        // The manifest records how an image was made, not what it needs: an
        // image made for another selection (or before manifests) holds the
        // plan all the same. A program's libraries are installed by each
        // generator's own resolver, where it finds them: the program is
        // what is checked.
        Of::File(f) if matches!(f.kind, FileKind::Manifest | FileKind::Library) => Ok(None),
        Of::File(f) => file_gap(f, tree),
        Of::Load(l) => Ok(preload_gap(l, tree)),
        // Generators link wants their own way (dracut's systemctl, a copy):
        // the unit they start is what is checked.
        Of::Want(_) => Ok(None),
    }
}

/// Module files in the image, by module name: their path under the module
/// directory.
pub(crate) fn image_modules(tree: &Tree, kver: &str) -> BTreeMap<String, String> {
    let moddir = tree
        .canonical(&format!("lib/modules/{kver}"))
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for (p, e) in &tree.entries {
        if let (Some(rel), Node::File(_)) = (p.strip_prefix(&format!("{moddir}/")), &e.node) {
            let base = rel.rsplit('/').next().unwrap_or(rel);
            if base.contains(".ko") {
                out.insert(name::modname_from_path(rel), format!("{moddir}/{rel}"));
            }
        }
    }
    out
}

fn module_gap(
    m: &PlanModule,
    tree: &Tree,
    in_image: &BTreeMap<String, String>,
) -> Result<Option<String>> {
    let what = format!(
        "module {} ({})",
        m.name,
        m.relpath.as_deref().unwrap_or("?")
    );
    let Some(got) = in_image.get(&m.name).and_then(|p| tree.file(p)) else {
        return Ok(Some(what));
    };
    let Some(path) = &m.path else { return Ok(None) };
    let want = std::fs::read(path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    if got != want.as_slice() && !same_module(got, &want) {
        return Ok(Some(format!("{what}: differs from {path}")));
    }
    Ok(None)
}

/// The same module: equal once each is decompressed (a generator may store
/// modules in another compression than the tree's), or the same build (a
/// generator may strip them: see `kmod::build`).
fn same_module(a: &[u8], b: &[u8]) -> bool {
    let plain = |x| compress::decompress(x, crate::facts::MAX_MODULE_BYTES).ok();
    matches!((plain(a), plain(b)), (Some(x), Some(y)) if x == y || build::same_build(&x, &y))
}

fn firmware_gap(name: &str, f: &FwFile, tree: &Tree) -> Result<Option<String>> {
    let what = format!("firmware {name} ({})", f.path);
    if let Some(got) = tree.file(&f.path) {
        let want = std::fs::read(&f.source).map_err(|e| anyhow::anyhow!("{}: {e}", f.source))?;
        if got != want.as_slice() {
            return Ok(Some(format!("{what}: differs from {}", f.source)));
        }
        return Ok(None);
    }
    // Stored in another compression: there, not compared.
    let stem = f.path.trim_end_matches(".xz").trim_end_matches(".zst");
    let there = [
        stem.to_string(),
        format!("{stem}.xz"),
        format!("{stem}.zst"),
    ]
    .iter()
    .any(|p| tree.contains(p));
    Ok((!there).then_some(what))
}

/// Where a generator may have put a planned file.
fn places(f: &PlanFile) -> Vec<String> {
    places_of(f.kind, &f.dest)
}

/// Where a generator may have put a file of kind `kind` planned at `dest`.
pub(crate) fn places_of(kind: FileKind, dest: &str) -> Vec<String> {
    let base = dest.rsplit('/').next().unwrap_or(dest);
    let in_dirs = |dirs: &[&str], name: &str| -> Vec<String> {
        dirs.iter().map(|d| format!("{d}/{name}")).collect()
    };
    match kind {
        FileKind::Rule => in_dirs(crate::udev::rules::RULES_DIRS, base),
        FileKind::Unit => {
            // Units (and drop-ins, X.d/NAME) in any unit directory.
            let mut comps = dest.rsplit('/');
            let last = comps.next().unwrap_or_default();
            let tail = match comps.next() {
                Some(d) if d.ends_with(".d") => format!("{d}/{last}"),
                _ => last.to_string(),
            };
            in_dirs(crate::systemd::UNIT_DIRS, &tail)
        }
        FileKind::Conf | FileKind::Modprobe | FileKind::Manifest | FileKind::Library => {
            vec![dest.to_string()]
        }
        FileKind::Hook => in_dirs(DRACUT_HOOK_DIRS, dest),
        FileKind::Program => {
            let mut v = vec![dest.to_string()];
            v.extend(in_dirs(PATH_DIRS, base));
            v.extend(in_dirs(UDEV_DIRS, base));
            v.extend(in_dirs(&["/usr/lib/systemd", "/lib/systemd"], base));
            v
        }
    }
}

/// Why the image does not hold `f` as planned, or None.
fn file_gap(f: &PlanFile, tree: &Tree) -> Result<Option<String>> {
    let what = format!("{} {}", f.kind.name(), f.dest);
    let present: Vec<&[u8]> = places(f).iter().filter_map(|p| tree.file(p)).collect();
    if present.is_empty() {
        return Ok(Some(what));
    }
    if f.kind == FileKind::Program {
        return Ok(None);
    }
    let want = f
        .source
        .bytes()
        .map_err(|e| anyhow::anyhow!("{}: {e}", f.source.label()))?;
    if present.contains(&want.as_slice()) {
        Ok(None)
    } else {
        Ok(Some(format!("{what}: differs from {}", f.source.label())))
    }
}

/// `--protocol` without systemd: the module listed for boot-time loading.
fn preload_gap(l: &Preload, tree: &Tree) -> Option<String> {
    let text = tree.file(&l.list).unwrap_or_default();
    let listed = preload_listed(&String::from_utf8_lossy(text))
        .contains(&name::normalize_modname(&l.module));
    (!listed).then(|| format!("boot-time load of {} ({})", l.module, l.list))
}

/// The image's module index must resolve every planned module and every
/// name asked for, to the module files the image holds.
fn index(
    plan: &Plan,
    tree: &Tree,
    in_image: &BTreeMap<String, String>,
    gaps: &mut Vec<String>,
) -> Result<()> {
    let kver = &plan.kver;
    let mut names: BTreeSet<String> = plan
        .modules
        .iter()
        .filter(|m| !m.builtin)
        .map(|m| m.name.clone())
        .collect();
    for r in plan.modules.iter().flat_map(|m| &m.reasons) {
        if let Some(req) = r.request() {
            names.insert(req.to_string());
        }
    }
    // Nothing to resolve: a plan without modules (--hostonly, no RDMA
    // hardware) needs no index, and mkinitcpio makes none for an image
    // without modules.
    if names.is_empty() {
        return Ok(());
    }
    let (_stage, sdir, _) = stage_moddir(tree, kver, |rel| {
        rel.starts_with("modules.") && !rel.contains('/')
    })?;
    if !sdir.join("modules.dep.bin").exists() {
        gaps.push(format!("module index lib/modules/{kver}/modules.dep.bin"));
        return Ok(());
    }
    if !sdir.join("modules.dep").exists() {
        text_from_bin(&sdir, kver)?;
    }
    let (idx, _) = ModDb::open(&sdir, kver, Config::default())?;
    let moddir = tree
        .canonical(&format!("lib/modules/{kver}"))
        .unwrap_or_default();
    for n in names {
        let found = idx.lookup(&n).unwrap_or_default();
        let ok = found.iter().any(|(m, _)| match idx.kind(m) {
            ModKind::File(rel) => in_image
                .get(m)
                .is_some_and(|p| *p == format!("{moddir}/{rel}")),
            ModKind::Builtin => true,
            ModKind::Missing => false,
        });
        if !ok {
            gaps.push(format!("module index does not resolve {n}"));
        }
    }
    Ok(())
}

/// Some generators (mkinitcpio) keep only the binary indexes: write the text
/// forms back out of them.
fn text_from_bin(sdir: &std::path::Path, kver: &str) -> Result<()> {
    for (bin, text, alias) in [
        ("modules.dep.bin", "modules.dep", false),
        ("modules.alias.bin", "modules.alias", true),
        ("modules.symbols.bin", "modules.symbols", true),
    ] {
        let Ok(b) = std::fs::read(sdir.join(bin)) else {
            continue;
        };
        let pairs = crate::kmod::index_bin::dump(&b)
            .map_err(|e| anyhow::anyhow!("lib/modules/{kver}/{bin}: {e}"))?;
        let t = if alias {
            crate::kmod::index_bin::alias_text(&pairs)
        } else {
            crate::kmod::index_bin::dep_text(&pairs)
        };
        std::fs::write(sdir.join(text), t)?;
    }
    if let Ok(b) = std::fs::read(sdir.join("modules.builtin.bin")) {
        let pairs = crate::kmod::index_bin::dump(&b)
            .map_err(|e| anyhow::anyhow!("modules.builtin.bin: {e}"))?;
        let t: String = pairs.iter().map(|(k, _)| format!("{k}\n")).collect();
        std::fs::write(sdir.join("modules.builtin"), t)?;
    }
    Ok(())
}
