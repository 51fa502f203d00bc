//! Make a plan real: the tree of files an initramfs needs (modules in their
//! compression, a module index made by depmod for exactly the image's module
//! set, firmware, rules, units, confs, programs and their libraries), written
//! as a directory or as a newc cpio image; and `verify`, which reads an image
//! back and checks it against a plan.

use crate::cpio::{self, Entry, Node, Tree};
use crate::kmod::compress::Compression;
use crate::kmod::{name, ModDb, ModKind};
use crate::plan::{Ctx, FileKind, Plan, Reason};
use crate::root::Root;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

/// The list initramfs-tools' init loads at boot (`force_load`).
pub const PRELOAD_LIST: &str = "conf/modules";

/// Where dracut keeps its hooks in an image (059: /lib, usually a link to
/// /usr/lib; dracut-ng: /var/lib).
pub const DRACUT_HOOK_DIRS: &[&str] = &[
    "usr/lib/dracut/hooks",
    "lib/dracut/hooks",
    "var/lib/dracut/hooks",
];

/// Decompressed images larger than this are refused.
pub const MAX_IMAGE_BYTES: u64 = 8 << 30;

fn file_entry(bytes: Vec<u8>, perm: u32) -> Entry {
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
pub fn plan_tree(ctx: &Ctx, plan: &Plan, base: Option<&Tree>) -> Result<Tree> {
    let mut tree = base.cloned().unwrap_or_default();
    let kver = &plan.kver;
    for m in &plan.modules {
        let (Some(rel), Some(path)) = (&m.relpath, &m.path) else {
            continue;
        };
        let bytes = std::fs::read(path).with_context(|| path.clone())?;
        insert(
            &mut tree,
            &format!("lib/modules/{kver}/{rel}"),
            file_entry(bytes, 0o644),
        )?;
    }
    for fw in &plan.firmware {
        for f in &fw.files {
            let bytes = std::fs::read(&f.source).with_context(|| f.source.clone())?;
            insert(&mut tree, &f.path, file_entry(bytes, 0o644))?;
        }
    }
    for f in &plan.files {
        let (bytes, perm) = match f.own_content() {
            Some((_, text)) => (text.as_bytes().to_vec(), 0o644),
            None => (
                std::fs::read(&f.source).with_context(|| f.source.clone())?,
                host_perm(Path::new(&f.source)),
            ),
        };
        if f.kind == FileKind::Hook {
            let dir = DRACUT_HOOK_DIRS
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
                .unwrap_or(&DRACUT_HOOK_DIRS[0]);
            insert(
                &mut tree,
                &format!("{dir}/{}", f.dest),
                file_entry(bytes, 0o755),
            )?;
        } else if f.kind == FileKind::Program {
            // A base image's own copy of a program (and its libraries) stays.
            if !tree.contains(&f.dest) {
                insert(&mut tree, &f.dest, file_entry(bytes, perm))?;
            }
            for (inner, host) in crate::elfdeps::closure(&ctx.inputs.root, &f.dest)? {
                if !tree.contains(&inner) {
                    let b = std::fs::read(&host).with_context(|| host.display().to_string())?;
                    insert(&mut tree, &inner, file_entry(b, host_perm(&host)))?;
                }
            }
        } else {
            insert(&mut tree, &f.dest, file_entry(bytes, perm))?;
        }
    }
    if let Some(template) = plan
        .files
        .iter()
        .find(|f| f.kind == FileKind::Unit && f.dest.ends_with("/rdma-load-modules@.service"))
    {
        for w in &plan.wants {
            let link = format!("etc/systemd/system/initrd.target.wants/{w}");
            insert(
                &mut tree,
                &link,
                Entry {
                    perm: 0o777,
                    node: Node::Symlink(template.dest.clone()),
                },
            )?;
        }
    }
    if !plan.preload.is_empty() {
        // Without systemd: initramfs-tools' init loads /conf/modules.
        let mut text = tree
            .file(PRELOAD_LIST)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        for l in &plan.preload {
            if !preload_listed(&text).contains(&name::normalize_modname(&l.module)) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&l.module);
                text.push('\n');
            }
        }
        insert(
            &mut tree,
            PRELOAD_LIST,
            file_entry(text.into_bytes(), 0o644),
        )?;
    }
    module_index(&mut tree, kver, &ctx.db)?;
    Ok(tree)
}

fn insert(tree: &mut Tree, path: &str, e: Entry) -> Result<()> {
    match tree.insert(path, e) {
        Some(_) => Ok(()),
        None => bail!("{path}: not a path inside the image"),
    }
}

/// Run depmod over the image's modules so that its index (modules.dep, the
/// .bin indexes, aliases, softdeps) describes exactly what is in it.
fn module_index(tree: &mut Tree, kver: &str, db: &ModDb) -> Result<()> {
    let dir = tree
        .canonical(&format!("lib/modules/{kver}"))
        .context("lib/modules is not a path inside the image")?;
    let prefix = format!("{dir}/");
    let stage = tempfile::tempdir().context("creating a staging directory")?;
    let sdir = stage.path().join("lib/modules").join(kver);
    std::fs::create_dir_all(&sdir)?;
    let mut n = 0;
    for (p, e) in &tree.entries {
        let Some(rel) = p.strip_prefix(&prefix) else {
            continue;
        };
        if let Node::File(b) = &e.node {
            let base = rel.rsplit('/').next().unwrap_or(rel);
            if base.contains(".ko") && !rel.starts_with("modules.") {
                let dst = sdir.join(rel);
                std::fs::create_dir_all(dst.parent().expect("has a parent"))?;
                std::fs::write(&dst, b)?;
                n += 1;
            }
        }
    }
    // What the kernel has built in, so lookups of builtin names still work.
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        let src = db.dir.join(f);
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

/// Write `tree` as an image at `output` (temp file + rename: a failed run
/// leaves nothing, and never a partial image). `early` bytes (uncompressed
/// segments of a base image) are written first, verbatim.
pub fn write_image(
    tree: &Tree,
    compression: Compression,
    mtime: u32,
    early: &[u8],
    output: &Path,
    progress: &mut crate::term::Progress,
) -> Result<()> {
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".rdma-initrd-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    {
        let f = tmp.as_file_mut();
        let mut w = std::io::BufWriter::new(f);
        w.write_all(early)?;
        if progress.enabled() {
            let total: u64 = tree
                .entries
                .values()
                .map(|e| match &e.node {
                    Node::File(b) => b.len() as u64,
                    _ => 0,
                })
                .sum();
            progress.stage_of(
                format!(
                    "writing {} ({})",
                    output.display(),
                    format!("{compression:?}").to_lowercase()
                ),
                total,
            );
        }
        // Counted before compression: the percentage is of the archive.
        use crate::term::Counting as C;
        match compression {
            Compression::None => tree.write_cpio(&mut C::new(&mut w, progress), mtime)?,
            Compression::Gzip => {
                let mut e = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(&mut w, flate2::Compression::best());
                tree.write_cpio(&mut C::new(&mut e, progress), mtime)?;
                e.finish()?;
            }
            Compression::Xz => {
                // The kernel's xz decoder knows CRC32 (and no check), not CRC64.
                let stream =
                    liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)?;
                let mut e = liblzma::write::XzEncoder::new_stream(&mut w, stream);
                tree.write_cpio(&mut C::new(&mut e, progress), mtime)?;
                e.finish()?;
            }
            Compression::Zstd => {
                // zstd's default level, as mkinitcpio and booster use it.
                let mut e = zstd::stream::write::Encoder::new(&mut w, 3)?;
                e.include_checksum(true)?;
                tree.write_cpio(&mut C::new(&mut e, progress), mtime)?;
                e.finish()?;
            }
        }
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(output)
        .map_err(|e| anyhow::anyhow!("{}: {}", output.display(), e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
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
            Node::Symlink(t) => {
                std::os::unix::fs::symlink(t, &target)
                    .with_context(|| target.display().to_string())?;
            }
        }
    }
    Ok(())
}

/// What a plan needs that an image lacks; empty when complete.
pub fn verify(plan: &Plan, tree: &Tree) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    let kver = &plan.kver;
    let moddir = tree
        .canonical(&format!("lib/modules/{kver}"))
        .unwrap_or_default();
    // Module files in the image, by module name.
    let mut in_image: BTreeMap<String, String> = BTreeMap::new();
    for (p, e) in &tree.entries {
        if let (Some(rel), Node::File(_)) = (p.strip_prefix(&format!("{moddir}/")), &e.node) {
            let base = rel.rsplit('/').next().unwrap_or(rel);
            if base.contains(".ko") {
                in_image.insert(name::modname_from_path(rel), rel.to_string());
            }
        }
    }
    for m in plan.modules.iter().filter(|m| !m.builtin) {
        if !in_image.contains_key(&m.name) {
            missing.push(format!(
                "module {} ({})",
                m.name,
                m.relpath.as_deref().unwrap_or("?")
            ));
        }
    }
    for fw in &plan.firmware {
        for f in &fw.files {
            let stem = f.path.trim_end_matches(".xz").trim_end_matches(".zst");
            if ![
                stem.to_string(),
                format!("{stem}.xz"),
                format!("{stem}.zst"),
            ]
            .iter()
            .any(|p| tree.contains(p))
            {
                missing.push(format!("firmware {} ({})", fw.name, f.path));
            }
        }
    }
    for f in &plan.files {
        let base = f.dest.rsplit('/').next().unwrap_or(&f.dest);
        let ok = match f.kind {
            // A file rdma-initrd writes must be there with its contents.
            FileKind::Rule if f.text.is_some() => crate::udev::rules::RULES_DIRS.iter().any(|d| {
                tree.file(&format!("{d}/{base}")) == f.text.as_ref().map(|t| t.as_bytes())
            }),
            FileKind::Rule => crate::udev::rules::RULES_DIRS
                .iter()
                .any(|d| tree.contains(&format!("{d}/{base}"))),
            FileKind::Unit => {
                // Units (and drop-ins, X.d/NAME) in any unit directory.
                let mut comps = f.dest.rsplit('/');
                let last = comps.next().unwrap_or_default();
                let tail = match comps.next() {
                    Some(d) if d.ends_with(".d") => format!("{d}/{last}"),
                    _ => last.to_string(),
                };
                crate::systemd::UNIT_DIRS
                    .iter()
                    .any(|d| tree.contains(&format!("{d}/{tail}")))
            }
            FileKind::Program => {
                tree.contains(&f.dest)
                    || [
                        "/usr/bin",
                        "/usr/sbin",
                        "/bin",
                        "/sbin",
                        "/usr/lib/udev",
                        "/lib/udev",
                        "/usr/lib/systemd",
                        "/lib/systemd",
                    ]
                    .iter()
                    .any(|d| tree.contains(&format!("{d}/{base}")))
            }
            FileKind::Conf | FileKind::Modprobe => tree.contains(&f.dest),
            FileKind::Hook => {
                let want = f.own_content().map(|(_, t)| t.as_bytes());
                DRACUT_HOOK_DIRS.iter().any(|d| {
                    let got = tree.file(&format!("{d}/{}", f.dest));
                    got.is_some() && got == want
                })
            }
        };
        if !ok {
            missing.push(format!("{} {}", crate::output::kind_name(f.kind), f.dest));
        }
    }
    if !plan.preload.is_empty() {
        let listed = preload_listed(&String::from_utf8_lossy(
            tree.file(PRELOAD_LIST).unwrap_or_default(),
        ));
        for l in &plan.preload {
            if !listed.contains(&name::normalize_modname(&l.module)) {
                missing.push(format!("boot-time load of {} ({PRELOAD_LIST})", l.module));
            }
        }
    }
    // The image's module index must resolve every planned name and request.
    let stage = tempfile::tempdir()?;
    let sdir = stage.path().join("lib/modules").join(kver);
    std::fs::create_dir_all(&sdir)?;
    let mut has_index = false;
    for (p, e) in &tree.entries {
        if let (Some(rel), Node::File(b)) = (p.strip_prefix(&format!("{moddir}/")), &e.node) {
            if rel.starts_with("modules.") && !rel.contains('/') {
                std::fs::write(sdir.join(rel), b)?;
                has_index |= rel == "modules.dep";
            }
        }
    }
    if !sdir.join("modules.dep.bin").exists() {
        missing.push(format!("module index lib/modules/{kver}/modules.dep.bin"));
        return Ok(missing);
    }
    if !has_index {
        // Some generators (mkinitcpio) keep only the binary indexes: read
        // the text forms back out of them.
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
    }
    let empty = tempfile::tempdir()?;
    let idx = ModDb::open(&Root::new(empty.path()), &sdir, kver, &[])?;
    let mut names: BTreeSet<String> = plan
        .modules
        .iter()
        .filter(|m| !m.builtin)
        .map(|m| m.name.clone())
        .collect();
    for m in &plan.modules {
        for r in &m.reasons {
            if let Reason::Rule { request, .. }
            | Reason::Conf { request, .. }
            | Reason::Netroot { request, .. } = r
            {
                names.insert(request.clone());
            }
        }
    }
    for n in names {
        let found = idx.lookup(&n).unwrap_or_default();
        let ok = found.iter().any(|(m, _)| match idx.kind(m) {
            ModKind::File(rel) => in_image.get(m).is_some_and(|r| *r == rel),
            ModKind::Builtin => true,
            ModKind::Missing => false,
        });
        if !ok {
            missing.push(format!("module index does not resolve {n}"));
        }
    }
    Ok(missing)
}

/// The modules a `conf/modules` list names (first word of each line, `#`
/// comments skipped), normalised.
fn preload_listed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| !w.starts_with('#'))
        .map(name::normalize_modname)
        .collect()
}

/// Read an image file.
pub fn read(path: &Path) -> Result<cpio::Image> {
    read_reporting(path, &mut crate::term::Progress::new(false))
}

/// As `read`, with a progress line (percentage of the file decompressed).
pub fn read_reporting(path: &Path, progress: &mut crate::term::Progress) -> Result<cpio::Image> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    progress.stage_of(format!("reading {}", path.display()), bytes.len() as u64);
    cpio::read_image_reporting(&bytes, MAX_IMAGE_BYTES, &mut |n| progress.bytes(n))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
