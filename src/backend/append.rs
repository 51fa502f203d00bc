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
//! compare; each of its module files is compared, as it streams by, with
//! the host's file at the same place in the module directory (a generator
//! copies them as they are) and only one that differs is written to a
//! staging directory on disk for depmod, which is given the host's file for
//! the others. Nothing else is held. Memory does not grow with the base.

use super::tree::{file_entry, insert, plan_tree_over, BaseModules};
use crate::cpio::{Entry, Node, Tree};
use crate::kmod::compress::Compression;
use crate::plan::items::ItemKind;
use crate::plan::{FileKind, Plan};
use crate::segments::{self, Format, Header, Segment};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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
    /// The base's module files that differ from the host's, staged for
    /// depmod.
    pub modules: tempfile::TempDir,
    /// The base's module files (relative to the module directory) that are
    /// the host's, byte for byte, in `host_moddir`.
    pub same_as_host: BTreeSet<String>,
    /// The host module directory they were compared with.
    pub host_moddir: Option<PathBuf>,
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
    /// Module files (relative) that are the host's.
    same: BTreeSet<String>,
}

/// Read `path` once: its structure, the files `keep` names (by base name),
/// its module files: those the same as `host_moddir`'s by name, the others
/// to `modules/seg<N>/REL`.
pub fn read_base(
    path: &Path,
    kver: &str,
    keep: &BTreeSet<String>,
    host_moddir: Option<&Path>,
    limit: u64,
    report: &mut dyn FnMut(u64),
) -> Result<Base> {
    read_base_copying(path, kver, keep, host_moddir, limit, None, report)
}

/// As `read_base`, also writing the base's bytes as read to `copy` (the
/// caller cuts it at `Base::cut`): the base is read from disk once.
pub fn read_base_copying(
    path: &Path,
    kver: &str,
    keep: &BTreeSet<String>,
    host_moddir: Option<&Path>,
    limit: u64,
    copy: Option<&mut std::fs::File>,
    report: &mut dyn FnMut(u64),
) -> Result<Base> {
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let f = Tee { inner: f, copy };
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
            0o100000 => Node::File(base_file(
                p,
                kver,
                keep,
                host_moddir,
                (h.segment, h.size),
                stage.path(),
                &mut seg.same,
                data,
            )?),
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
    let mut same_as_host = BTreeSet::new();
    for (i, s) in seen.into_iter().enumerate().take(kept) {
        tree.entries.extend(s.tree.entries);
        // Later segments replace earlier: a file the same as the host's
        // replaces one staged before, and the other way round.
        for rel in &s.same {
            let _ = std::fs::remove_file(modules.path().join(rel));
        }
        same_as_host.extend(s.same);
        let dir = stage.path().join(format!("seg{i}"));
        if dir.is_dir() {
            for rel in merge_dir(&dir, modules.path())? {
                same_as_host.remove(&rel);
            }
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
        same_as_host,
        host_moddir: host_moddir.map(Path::to_path_buf),
        cut,
        compression,
    })
}

/// A base file's bytes when the plan may replace it (kept to compare), a
/// module file noted as the host's (in `same`) or staged on disk, anything
/// else an empty stand-in.
#[allow(clippy::too_many_arguments)]
fn base_file(
    p: &str,
    kver: &str,
    keep: &BTreeSet<String>,
    host_moddir: Option<&Path>,
    (segment, size): (usize, u64),
    stage: &Path,
    same: &mut BTreeSet<String>,
    data: &mut dyn Read,
) -> std::io::Result<Vec<u8>> {
    let name = p.rsplit('/').next().unwrap_or(p);
    if let Some(rel) = module_rel(p, kver).filter(|_| name.contains(".ko")) {
        let dst = stage.join(format!("seg{segment}")).join(rel);
        let host = host_moddir.map(|d| d.join(rel));
        if stage_unless_same(data, size, host.as_deref(), &dst)? {
            // An earlier entry of this segment at the same path is replaced.
            let _ = std::fs::remove_file(&dst);
            same.insert(rel.to_string());
        } else {
            same.remove(rel);
        }
        return Ok(Vec::new());
    }
    let mut b = Vec::new();
    if keep.contains(name) {
        data.read_to_end(&mut b)?;
    }
    Ok(b)
}

/// Compare `data` (`size` bytes) with the file `host` as it streams by:
/// true when they are the same bytes (nothing written), else the data is
/// written to `dst` (what matched taken from `host`).
fn stage_unless_same(
    data: &mut dyn Read,
    size: u64,
    host: Option<&Path>,
    dst: &Path,
) -> std::io::Result<bool> {
    let mut matched = 0u64;
    let mut buf = Vec::new();
    if let Some(host) = host {
        if let Ok(mut hf) = std::fs::File::open(host) {
            if hf.metadata().is_ok_and(|m| m.is_file() && m.len() == size) {
                let mut a = vec![0u8; 1 << 16];
                let mut b = vec![0u8; 1 << 16];
                loop {
                    let n = read_full(data, &mut a)?;
                    if n == 0 {
                        return Ok(true);
                    }
                    if hf.read_exact(&mut b[..n]).is_err() || a[..n] != b[..n] {
                        a.truncate(n);
                        buf = a;
                        break;
                    }
                    matched += n as u64;
                }
            }
        }
    }
    std::fs::create_dir_all(dst.parent().expect("has a parent"))?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dst)?);
    if matched > 0 {
        let host = host.expect("matched only against a host file");
        let copied = std::io::copy(&mut std::fs::File::open(host)?.take(matched), &mut out)?;
        if copied != matched {
            return Err(std::io::Error::other(format!(
                "{}: changed while being read",
                host.display()
            )));
        }
    }
    out.write_all(&buf)?;
    std::io::copy(data, &mut out)?;
    out.flush()?;
    Ok(false)
}

/// Fill `buf` from `r` as far as it goes; how many bytes (less only at the
/// end).
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The path of a module file relative to the module directory of `kver`.
fn module_rel<'a>(p: &'a str, kver: &str) -> Option<&'a str> {
    let dir = format!("lib/modules/{kver}/");
    p.strip_prefix(&dir)
        .or_else(|| p.strip_prefix("usr/").and_then(|q| q.strip_prefix(&dir)))
}

/// Move every file of `from` into `to` (later segments replace earlier);
/// the paths moved, relative.
fn merge_dir(from: &Path, to: &Path) -> Result<Vec<String>> {
    let mut moved = Vec::new();
    for e in walkdir::WalkDir::new(from).min_depth(1) {
        let e = e?;
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(from).expect("under from");
            let dst = to.join(rel);
            std::fs::create_dir_all(dst.parent().expect("has a parent"))?;
            std::fs::rename(e.path(), &dst)?;
            moved.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(moved)
}

/// The base names of everything the plan may put in an image (the base's
/// files of those names are kept, to lay the plan over and compare).
pub fn planned_names(plan: &Plan) -> BTreeSet<String> {
    // A base's own program or library stays as it is (`tree`): whether it
    // is there is all the plan asks of it, and a stand-in answers that.
    let compared = |k: ItemKind| {
        !matches!(
            k,
            ItemKind::Module
                | ItemKind::Want
                | ItemKind::File(FileKind::Program | FileKind::Library)
        )
    };
    plan.items()
        .iter()
        .filter(|i| compared(i.kind))
        .map(|i| i.dest.rsplit('/').next().unwrap_or(&i.dest).to_string())
        .collect()
}

/// The segment to append: the plan laid over the base, minus what the base
/// already holds as it is, plus the directories they are in and the marker.
pub fn addition(plan: &Plan, base: &Base) -> Result<Tree> {
    let modules = BaseModules {
        staged: base.modules.path(),
        same_as_host: &base.same_as_host,
    };
    let full = plan_tree_over(plan, base.tree.clone(), Some(&modules))?;
    let mut out = Tree::default();
    let changed: BTreeMap<&String, &Entry> = full
        .entries
        .iter()
        .filter(|(p, e)| base.tree.entries.get(*p) != Some(*e))
        .filter(|(p, e)| !same_as_base_module(p, e, &plan.kver, base))
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

/// Reads through, writing what it read to `copy`.
struct Tee<'a, R> {
    inner: R,
    copy: Option<&'a mut std::fs::File>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = &mut self.copy {
            c.write_all(&buf[..n]).map_err(|e| {
                std::io::Error::new(e.kind(), format!("writing the new image: {e}"))
            })?;
        }
        Ok(n)
    }
}

/// A planned module file that the base holds with the same bytes: the
/// host's own file where the base's was found the same as it, else compared
/// with the staged copy.
fn same_as_base_module(p: &str, e: &Entry, kver: &str, base: &Base) -> bool {
    let Some(rel) = module_rel(p, kver) else {
        return false;
    };
    let host_copy = base
        .host_moddir
        .as_ref()
        .filter(|_| base.same_as_host.contains(rel))
        .map(|d| d.join(rel));
    let staged = match host_copy {
        Some(h) if matches!(&e.node, Node::Host(p) if *p == h) => return true,
        Some(h) => h,
        None => base.modules.path().join(rel),
    };
    let ours = match &e.node {
        Node::File(b) => b.clone(),
        Node::Host(h) => match std::fs::read(h) {
            Ok(b) => b,
            Err(_) => return false,
        },
        _ => return false,
    };
    std::fs::read(staged).is_ok_and(|s| s == ours)
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
    let out = match output {
        Output::Whole(o) | Output::SegmentOnly(o) => o,
    };
    // The whole image: the base's bytes go to the new file as they are
    // read, and from disk the kernel starts writing them back while the
    // addition is made.
    let mut tmp = super::image::temp_for(out)?;
    let whole = matches!(output, Output::Whole(_));
    let base = read_base_copying(
        base_path,
        &plan.kver,
        &planned_names(plan),
        Some(Path::new(&plan.moddir)),
        super::image::MAX_IMAGE_BYTES,
        whole.then(|| tmp.as_file_mut()),
        &mut |n| progress.bytes(n),
    )?;
    let prefix_len = if whole { base.cut } else { 0 };
    {
        use std::io::Seek;
        let f = tmp.as_file_mut();
        f.set_len(prefix_len)
            .and_then(|_| f.seek(std::io::SeekFrom::Start(prefix_len)))
            .with_context(|| format!("writing {}", out.display()))?;
        super::image::start_writeback(f, prefix_len);
    }
    progress.stage(format!(
        "adding {} modules and {} files",
        plan.modules.iter().filter(|m| !m.builtin).count(),
        plan.files.len()
    ));
    let tree = addition(plan, &base)?;
    let compression = base.segment_compression(compress);
    super::image::finish_image(tmp, prefix_len, &tree, compression, mtime, out, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A base image (one uncompressed segment) of `files`.
    fn image(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut t = Tree::default();
        for (p, b) in files {
            insert(&mut t, p, file_entry(b.to_vec(), 0o644)).unwrap();
        }
        let mut out = Vec::new();
        t.write_cpio(&mut out, 0).unwrap();
        out
    }

    #[test]
    fn base_modules_the_same_as_the_hosts_are_noted_the_others_staged() {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("host");
        std::fs::create_dir_all(host.join("kernel")).unwrap();
        // Longer than one comparison buffer, differing only at the end.
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut big_other = big.clone();
        *big_other.last_mut().unwrap() ^= 1;
        std::fs::write(host.join("kernel/same.ko"), &big).unwrap();
        std::fs::write(host.join("kernel/late.ko"), &big).unwrap();
        std::fs::write(host.join("kernel/short.ko"), b"host").unwrap();
        let img = image(&[
            ("usr/lib/modules/6.1/kernel/same.ko", &big),
            ("usr/lib/modules/6.1/kernel/late.ko", &big_other),
            (
                "usr/lib/modules/6.1/kernel/short.ko",
                b"longer than the host's",
            ),
            ("usr/lib/modules/6.1/kernel/only.ko", b"not on the host"),
        ]);
        let path = d.path().join("base.img");
        std::fs::write(&path, &img).unwrap();
        let mut copy = tempfile::tempfile().unwrap();
        let base = read_base_copying(
            &path,
            "6.1",
            &BTreeSet::new(),
            Some(&host),
            1 << 30,
            Some(&mut copy),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(
            base.same_as_host.iter().collect::<Vec<_>>(),
            ["kernel/same.ko"]
        );
        let staged = |rel: &str| std::fs::read(base.modules.path().join(rel)).ok();
        assert_eq!(staged("kernel/same.ko"), None);
        assert_eq!(staged("kernel/late.ko"), Some(big_other));
        assert_eq!(
            staged("kernel/short.ko").as_deref(),
            Some(&b"longer than the host's"[..])
        );
        assert_eq!(
            staged("kernel/only.ko").as_deref(),
            Some(&b"not on the host"[..])
        );
        // The copy holds the base's bytes as read.
        use std::io::Seek;
        copy.rewind().unwrap();
        let mut copied = Vec::new();
        copy.read_to_end(&mut copied).unwrap();
        assert_eq!(copied, img);
        assert_eq!(base.cut, img.len() as u64);
    }

    #[test]
    fn a_later_segment_replaces_a_module_either_way() {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("host");
        std::fs::create_dir_all(host.join("kernel")).unwrap();
        std::fs::write(host.join("kernel/a.ko"), b"host a").unwrap();
        std::fs::write(host.join("kernel/b.ko"), b"host b").unwrap();
        let mut img = image(&[
            ("lib/modules/6.1/kernel/a.ko", b"host a"),
            ("lib/modules/6.1/kernel/b.ko", b"base b"),
        ]);
        while img.len() % 4 != 0 {
            img.push(0);
        }
        img.extend(image(&[
            ("lib/modules/6.1/kernel/a.ko", b"later a"),
            ("lib/modules/6.1/kernel/b.ko", b"host b"),
        ]));
        let path = d.path().join("base.img");
        std::fs::write(&path, &img).unwrap();
        let base = read_base(
            &path,
            "6.1",
            &BTreeSet::new(),
            Some(&host),
            1 << 30,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(
            base.same_as_host.iter().collect::<Vec<_>>(),
            ["kernel/b.ko"]
        );
        assert_eq!(
            std::fs::read(base.modules.path().join("kernel/a.ko")).unwrap(),
            b"later a"
        );
        assert!(!base.modules.path().join("kernel/b.ko").exists());
    }
}
