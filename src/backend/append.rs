//! `install --base IMAGE --output OUT`: the RDMA part added to an existing
//! image as one more segment, the base's bytes copied, never recompressed.
//! The kernel unpacks segments in order, later files replacing earlier
//! (init/initramfs.c), so the appended segment holds the planned files, a
//! module index made for the union of the base's modules and the plan's
//! (it replaces the base's), and a marker; a run on its own output drops
//! its earlier segment first, so repeated installs do not grow the image.
//!
//! The base is read once, as a stream: its directory structure is kept (to
//! lay the plan over it), the files the plan would replace are kept to
//! compare, its module files go to a staging directory on disk for depmod;
//! nothing else is held. Memory does not grow with the base.

use super::tree::{file_entry, insert, plan_tree_over};
use crate::cpio::{Entry, Node, Tree};
use crate::facts::Facts;
use crate::kmod::compress::Compression;
use crate::plan::Plan;
use crate::segments::{self, Format, Header, Segment};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

/// The file that marks a segment as rdma-initrd's.
pub const MARKER: &str = "usr/lib/rdma-initrd/appended-segment";

/// What a streaming read of the base keeps.
pub struct Base {
    pub segments: Vec<Segment>,
    /// Segments kept (before rdma-initrd's own earlier segment, if any).
    pub kept: usize,
    /// The kept segments' entries, later replacing earlier; files the plan
    /// does not touch are empty stand-ins.
    pub tree: Tree,
    /// The base's module files, staged for depmod.
    pub modules: tempfile::TempDir,
    /// Where the kept segments end in the base file.
    pub cut: u64,
    /// The compression of the last kept segment that is compressed.
    pub compression: Option<Format>,
}

/// Per segment, while reading: its entries and whether it is ours.
#[derive(Default)]
struct SegmentSeen {
    tree: Tree,
    ours: bool,
}

/// Read `path` once: its structure, the files `keep` names (by base name),
/// its module files (to `modules/seg<N>/REL`).
pub fn read_base(
    path: &Path,
    kver: &str,
    keep: &BTreeSet<String>,
    limit: u64,
    report: &mut dyn FnMut(u64),
) -> Result<Base> {
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let stage = tempfile::tempdir().context("creating a staging directory")?;
    let mut seen: Vec<SegmentSeen> = Vec::new();
    let mut visit = |h: &Header, data: &mut dyn Read| -> std::io::Result<()> {
        while seen.len() <= h.segment {
            seen.push(SegmentSeen::default());
        }
        let Some(p) = &h.path else { return Ok(()) };
        let seg = &mut seen[h.segment];
        seg.ours |= p == MARKER;
        let node = match h.mode & 0o170000 {
            0o040000 => Node::Dir,
            0o120000 => {
                let mut t = String::new();
                data.take(4096).read_to_string(&mut t)?;
                Node::Symlink(t)
            }
            0o100000 => Node::File(base_file(p, kver, keep, h.segment, stage.path(), data)?),
            _ => return Ok(()),
        };
        seg.tree.entries.insert(
            p.clone(),
            Entry {
                perm: h.mode & 0o7777,
                node,
            },
        );
        Ok(())
    };
    let segments = segments::scan(f, limit, &mut visit, report)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let kept = seen.iter().position(|s| s.ours).unwrap_or(segments.len());
    let modules = tempfile::tempdir().context("creating a staging directory")?;
    let mut tree = Tree::default();
    for (i, s) in seen.into_iter().enumerate().take(kept) {
        tree.entries.extend(s.tree.entries);
        let dir = stage.path().join(format!("seg{i}"));
        if dir.is_dir() {
            merge_dir(&dir, modules.path())?;
        }
    }
    let cut = if kept == 0 { 0 } else { segments[kept - 1].end };
    let compression = segments[..kept]
        .iter()
        .rev()
        .map(|s| s.format)
        .find(|f| *f != Format::Cpio);
    Ok(Base {
        segments,
        kept,
        tree,
        modules,
        cut,
        compression,
    })
}

/// A base file's bytes when the plan may replace it (kept to compare), a
/// module file staged on disk, anything else an empty stand-in.
fn base_file(
    p: &str,
    kver: &str,
    keep: &BTreeSet<String>,
    segment: usize,
    stage: &Path,
    data: &mut dyn Read,
) -> std::io::Result<Vec<u8>> {
    let name = p.rsplit('/').next().unwrap_or(p);
    if let Some(rel) = module_rel(p, kver).filter(|_| name.contains(".ko")) {
        let dst = stage.join(format!("seg{segment}")).join(rel);
        std::fs::create_dir_all(dst.parent().expect("has a parent"))?;
        std::io::copy(data, &mut std::fs::File::create(&dst)?)?;
        return Ok(Vec::new());
    }
    let mut b = Vec::new();
    if keep.contains(name) {
        data.read_to_end(&mut b)?;
    }
    Ok(b)
}

/// The path of a module file relative to the module directory of `kver`.
fn module_rel<'a>(p: &'a str, kver: &str) -> Option<&'a str> {
    let dir = format!("lib/modules/{kver}/");
    p.strip_prefix(&dir)
        .or_else(|| p.strip_prefix("usr/").and_then(|q| q.strip_prefix(&dir)))
}

/// Move every file of `from` into `to` (later segments replace earlier).
fn merge_dir(from: &Path, to: &Path) -> Result<()> {
    for e in walkdir::WalkDir::new(from).min_depth(1) {
        let e = e?;
        if e.file_type().is_file() {
            let dst = to.join(e.path().strip_prefix(from).expect("under from"));
            std::fs::create_dir_all(dst.parent().expect("has a parent"))?;
            std::fs::rename(e.path(), &dst)?;
        }
    }
    Ok(())
}

/// The base names of everything the plan may put in an image (the base's
/// files of those names are kept, to lay the plan over and compare).
pub fn planned_names(plan: &Plan) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = plan
        .files
        .iter()
        .map(|f| f.dest.rsplit('/').next().unwrap_or(&f.dest).to_string())
        .collect();
    for fw in plan.firmware.iter().flat_map(|f| &f.files) {
        out.insert(fw.path.rsplit('/').next().unwrap_or(&fw.path).to_string());
    }
    for l in &plan.preload {
        out.insert(l.list.rsplit('/').next().unwrap_or(&l.list).to_string());
    }
    out
}

/// The segment to append: the plan laid over the base, minus what the base
/// already holds as it is, plus the directories they are in and the marker.
pub fn addition(facts: &Facts, plan: &Plan, base: &Base) -> Result<Tree> {
    let full = plan_tree_over(facts, plan, base.tree.clone(), Some(base.modules.path()))?;
    let mut out = Tree::default();
    let changed: BTreeMap<&String, &Entry> = full
        .entries
        .iter()
        .filter(|(p, e)| base.tree.entries.get(*p) != Some(*e))
        .filter(|(p, e)| !same_as_staged_module(p, e, &plan.kver, base.modules.path()))
        .collect();
    for (p, e) in changed {
        // The directories it is in, as the base has them (the kernel does
        // not make missing parents).
        let mut dir = p.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if let Some(d) = full.entries.get(parent) {
                out.entries
                    .entry(parent.to_string())
                    .or_insert_with(|| d.clone());
            }
            dir = parent;
        }
        out.entries.insert(p.clone(), e.clone());
    }
    insert(
        &mut out,
        MARKER,
        file_entry(
            b"rdma-initrd: this segment is replaced when rdma-initrd installs again\n".to_vec(),
            0o644,
        ),
    )?;
    Ok(out)
}

/// A planned module file that the base holds with the same bytes.
fn same_as_staged_module(p: &str, e: &Entry, kver: &str, staged: &Path) -> bool {
    let Some(rel) = module_rel(p, kver) else {
        return false;
    };
    let ours = match &e.node {
        Node::File(b) => b.clone(),
        Node::Host(h) => match std::fs::read(h) {
            Ok(b) => b,
            Err(_) => return false,
        },
        _ => return false,
    };
    std::fs::read(staged.join(rel)).is_ok_and(|s| s == ours)
}

/// The base's kept segments, as bytes to copy first.
fn prefix(path: &Path, base: &Base) -> Result<impl Read> {
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    Ok(f.take(base.cut))
}

impl Base {
    /// The appended segment's compression: the one asked for, else the
    /// base's (its last compressed segment), else none.
    pub fn segment_compression(&self, asked: Option<Compression>) -> Compression {
        asked.unwrap_or(match self.compression {
            None => Compression::None,
            Some(Format::Gzip) => Compression::Gzip,
            Some(Format::Xz) => Compression::Xz,
            Some(_) => Compression::Zstd,
        })
    }
}

/// Where the appended segment is written (atomically, either way).
pub enum Output<'a> {
    /// The base's kept segments, then the new one: the image a loader takes
    /// (it may be the base itself).
    Whole(&'a Path),
    /// The new segment alone, for a loader that takes the base and then it.
    SegmentOnly(&'a Path),
}

/// The whole of `install --base`: read the base once, lay the plan over it,
/// write the kept segments and the addition.
pub fn append(
    facts: &Facts,
    plan: &Plan,
    base_path: &Path,
    output: Output,
    compress: Option<Compression>,
    mtime: u32,
    progress: &mut crate::term::Progress,
) -> Result<()> {
    let len = std::fs::metadata(base_path)
        .with_context(|| base_path.display().to_string())?
        .len();
    progress.stage_of(format!("reading {}", base_path.display()), len);
    let base = read_base(
        base_path,
        &plan.kver,
        &planned_names(plan),
        super::image::MAX_IMAGE_BYTES,
        &mut |n| progress.bytes(n),
    )?;
    progress.stage(format!(
        "adding {} modules and {} files",
        plan.modules.iter().filter(|m| !m.builtin).count(),
        plan.files.len()
    ));
    let tree = addition(facts, plan, &base)?;
    let compression = base.segment_compression(compress);
    let (mut prefix, out): (Box<dyn Read>, &Path) = match output {
        Output::Whole(o) => (Box::new(prefix(base_path, &base)?), o),
        Output::SegmentOnly(o) => (Box::new(std::io::empty()), o),
    };
    super::image::write_image(&tree, compression, mtime, &mut prefix, out, progress)
}
