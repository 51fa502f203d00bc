//! newc cpio archives (what the kernel unpacks as an initramfs): a writer
//! that emits a tree sorted, owned by 0:0, with one mtime; and a reader for
//! whole images: leading uncompressed segments (early microcode), then a
//! segment compressed with gzip, xz or zstd, each possibly several archives.

use crate::kmod::compress::{self, Compression};
use std::collections::BTreeMap;
use std::io::{self, Write};

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits (0o7777 at most; writers keep only 0o777).
    pub perm: u32,
    pub node: Node,
}

/// A file tree: relative paths ("usr/lib/x", no leading slash) to entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub entries: BTreeMap<String, Entry>,
}

/// Normalise a path for a tree: no leading `/` or `./`, no empty, `.` or
/// `..` components. None when it would leave the tree.
pub fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

impl Tree {
    /// Follow symlinks of the tree in the directory part of `path`, so that a
    /// file added under `lib/` lands in `usr/lib/` when `lib -> usr/lib`.
    pub fn canonical(&self, path: &str) -> Option<String> {
        let mut out: Vec<String> = Vec::new();
        let mut pending: Vec<String> = path.split('/').rev().map(str::to_string).collect();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    out.pop()?;
                    continue;
                }
                _ => {}
            }
            out.push(c);
            if pending.is_empty() {
                break; // the last component itself is not followed
            }
            let cur = out.join("/");
            if let Some(Entry {
                node: Node::Symlink(t),
                ..
            }) = self.entries.get(&cur)
            {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                out.pop();
                if t.starts_with('/') {
                    out.clear();
                }
                pending.extend(t.split('/').rev().map(str::to_string));
            }
        }
        if out.is_empty() {
            None
        } else {
            Some(out.join("/"))
        }
    }

    fn ensure_parents(&mut self, path: &str) {
        let mut acc = String::new();
        let comps: Vec<&str> = path.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(c);
            self.entries.entry(acc.clone()).or_insert(Entry {
                perm: 0o755,
                node: Node::Dir,
            });
        }
    }

    /// Insert (replacing) at the canonical form of `path`.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Option<String> {
        let p = self.canonical(&clean(path)?)?;
        self.ensure_parents(&p);
        self.entries.insert(p.clone(), entry);
        Some(p)
    }

    /// The entry at `path`, following symlinks (also in the last component).
    pub fn get(&self, path: &str) -> Option<&Entry> {
        let mut p = self.canonical(&clean(path)?)?;
        for _ in 0..40 {
            match self.entries.get(&p) {
                Some(Entry {
                    node: Node::Symlink(t),
                    ..
                }) => {
                    let target = if t.starts_with('/') {
                        t.clone()
                    } else {
                        let dir = p.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        format!("{dir}/{t}")
                    };
                    p = self.canonical(&target)?;
                }
                other => return other,
            }
        }
        None
    }

    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match self.get(path) {
            Some(Entry {
                node: Node::File(b),
                ..
            }) => Some(b),
            _ => None,
        }
    }

    /// Write as one newc archive, paths sorted, every entry owned by 0:0 with
    /// mtime `mtime`.
    pub fn write_cpio(&self, out: &mut impl Write, mtime: u32) -> io::Result<()> {
        let mut ino = 0u32;
        for (path, e) in &self.entries {
            ino += 1;
            let (kind, data, nlink): (u32, &[u8], u32) = match &e.node {
                Node::Dir => (0o040000, &[], 2),
                Node::File(b) => (0o100000, b, 1),
                Node::Symlink(t) => (0o120000, t.as_bytes(), 1),
            };
            let perm = if matches!(e.node, Node::Symlink(_)) {
                0o777
            } else {
                e.perm & 0o777
            };
            write_header(out, ino, kind | perm, nlink, mtime, data.len(), path)?;
            out.write_all(data)?;
            pad(out, data.len())?;
        }
        write_header(out, 0, 0, 1, 0, 0, TRAILER)
    }
}

fn write_header(
    out: &mut impl Write,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    size: usize,
    name: &str,
) -> io::Result<()> {
    let size = u32::try_from(size).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name}: larger than 4 GiB"),
        )
    })?;
    let namesize = name.len() + 1;
    write!(
        out,
        "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
        ino, mode, 0, 0, nlink, mtime, size, 0, 0, 0, 0, namesize, 0
    )?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    pad(out, 110 + namesize)
}

fn pad(out: &mut impl Write, len: usize) -> io::Result<()> {
    let n = (4 - len % 4) % 4;
    out.write_all(&[0u8; 3][..n])
}

/// One segment of an image as found.
#[derive(Debug, Clone)]
pub struct Segment {
    pub compression: Compression,
    /// Byte range in the image file.
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Default)]
pub struct Image {
    pub segments: Vec<Segment>,
    /// Every entry of every segment, later ones replacing earlier (as the
    /// kernel unpacks).
    pub tree: Tree,
    /// Length of the leading early-boot segments (kept verbatim on rewrite).
    pub early_len: usize,
    pub early_segments: usize,
    /// What those early segments hold.
    pub early_tree: Tree,
}

/// Read a whole initramfs image. `limit` bounds the decompressed size.
pub fn read_image(bytes: &[u8], limit: u64) -> Result<Image, String> {
    read_image_reporting(bytes, limit, &mut |_| {})
}

/// As `read_image`, telling `report` how far into `bytes` it has read.
pub fn read_image_reporting(
    bytes: &[u8],
    limit: u64,
    report: &mut dyn FnMut(u64),
) -> Result<Image, String> {
    let mut img = Image::default();
    let mut pos = 0usize;
    while pos < bytes.len() {
        // Zero padding between segments.
        if bytes[pos] == 0 {
            pos += 1;
            continue;
        }
        if bytes[pos..].starts_with(b"0707") {
            let mut seg = Tree::default();
            let used = parse_archives(&bytes[pos..], &mut seg)
                .map_err(|e| format!("uncompressed segment at byte {pos}: {e}"))?;
            img.segments.push(Segment {
                compression: Compression::None,
                start: pos,
                end: pos + used,
            });
            // Leading segments that hold only early-boot data (CPU microcode,
            // ACPI tables: `kernel/...`, dracut's `early_cpio` marker) are
            // kept as they are on rewrite; anything else is the image proper.
            let early = img.segments.len() == img.early_segments + 1
                && seg
                    .entries
                    .keys()
                    .all(|k| k == "kernel" || k.starts_with("kernel/") || k == "early_cpio");
            if early {
                img.early_segments += 1;
                img.early_len = pos + used;
                img.early_tree.entries.extend(seg.entries);
            } else {
                img.tree.entries.extend(seg.entries);
            }
            pos += used;
            continue;
        }
        let rest = &bytes[pos..];
        let c = compress::detect(rest);
        if c == Compression::None {
            let what = if rest.starts_with(&[0x02, 0x21, 0x4c, 0x18]) {
                "lz4 (legacy) compression is not supported"
            } else if rest.starts_with(b"BZh") {
                "bzip2 compression is not supported"
            } else {
                "neither a cpio archive nor gzip/xz/zstd data"
            };
            return Err(format!("segment at byte {pos}: {what}"));
        }
        let data = compress::decompress_reporting(rest, limit, &mut |n| report(pos as u64 + n))
            .map_err(|e| format!("{c:?} segment at byte {pos}: {e}"))?;
        parse_archives(&data, &mut img.tree)
            .map_err(|e| format!("{c:?} segment at byte {pos}: {e}"))?;
        img.segments.push(Segment {
            compression: c,
            start: pos,
            end: bytes.len(),
        });
        break;
    }
    if img.segments.is_empty() {
        return Err("empty image".into());
    }
    Ok(img)
}

/// Parse consecutive newc archives (with zero padding between them) into
/// `tree`; returns the bytes consumed.
fn parse_archives(b: &[u8], tree: &mut Tree) -> Result<usize, String> {
    let mut pos = 0;
    loop {
        while pos < b.len() && b[pos] == 0 {
            pos += 1;
        }
        if pos >= b.len() || !b[pos..].starts_with(b"0707") {
            return Ok(pos);
        }
        pos = parse_one(b, pos, tree)?;
    }
}

fn hex(b: &[u8], at: usize) -> Result<u32, String> {
    let s = b.get(at..at + 8).ok_or("truncated header")?;
    let s = std::str::from_utf8(s).map_err(|_| "bad header")?;
    u32::from_str_radix(s, 16).map_err(|_| format!("bad header field '{s}'"))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn parse_one(b: &[u8], mut pos: usize, tree: &mut Tree) -> Result<usize, String> {
    loop {
        let h = b
            .get(pos..pos + 110)
            .ok_or_else(|| format!("truncated header at byte {pos}"))?;
        if &h[..6] != MAGIC && &h[..6] != b"070702" {
            return Err(format!("bad cpio magic at byte {pos}"));
        }
        let mode = hex(h, 14)?;
        let size = hex(h, 54)? as usize;
        let namesize = hex(h, 94)? as usize;
        if namesize == 0 {
            return Err(format!("empty name at byte {pos}"));
        }
        let name_start = pos + 110;
        let name = b
            .get(name_start..name_start + namesize - 1)
            .ok_or_else(|| format!("truncated name at byte {pos}"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let data_start = align4(name_start + namesize);
        let data = b
            .get(data_start..data_start + size)
            .ok_or_else(|| format!("{name}: truncated data"))?;
        pos = align4(data_start + size);
        if name == TRAILER {
            return Ok(pos);
        }
        let node = match mode & 0o170000 {
            0o040000 => Node::Dir,
            0o100000 => Node::File(data.to_vec()),
            0o120000 => Node::Symlink(String::from_utf8_lossy(data).into_owned()),
            _ => continue, // device nodes, fifos: not ours to keep
        };
        let Some(clean) = clean(&name) else { continue };
        // Insert without following the tree's links: the archive says where.
        tree.entries.insert(
            clean,
            Entry {
                perm: mode & 0o7777,
                node,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::default();
        t.insert(
            "usr/lib/modules/k/a.ko",
            Entry {
                perm: 0o644,
                node: Node::File(b"abc".to_vec()),
            },
        );
        t.insert(
            "lib",
            Entry {
                perm: 0o777,
                node: Node::Symlink("usr/lib".into()),
            },
        );
        t.insert(
            "usr/bin/x",
            Entry {
                perm: 0o4755,
                node: Node::File(b"#!/bin/sh\n".to_vec()),
            },
        );
        t
    }

    #[test]
    fn round_trip_and_links() {
        let t = sample();
        let mut out = Vec::new();
        t.write_cpio(&mut out, 0).unwrap();
        assert_eq!(out.len() % 4, 0);
        let img = read_image(&out, 1 << 20).unwrap();
        assert_eq!(img.tree.file("lib/modules/k/a.ko"), Some(&b"abc"[..]));
        // setuid is never written.
        assert_eq!(img.tree.entries["usr/bin/x"].perm, 0o755);
        let mut t2 = img.tree.clone();
        t2.insert(
            "usr/sbin/modprobe",
            Entry {
                perm: 0o777,
                node: Node::Symlink("../bin/y".into()),
            },
        );
        assert!(t2.file("sbin/modprobe").is_none());
        t2.insert(
            "sbin",
            Entry {
                perm: 0o777,
                node: Node::Symlink("usr/sbin".into()),
            },
        );
        assert_eq!(
            t2.file("sbin/modprobe"),
            None,
            "usr/bin/y is not in the tree"
        );
        t2.insert(
            "usr/bin/y",
            Entry {
                perm: 0o755,
                node: Node::File(b"x".to_vec()),
            },
        );
        assert_eq!(t2.file("/sbin/modprobe"), Some(&b"x"[..]));
        let p = t2
            .insert(
                "/lib/udev/rules.d/x.rules",
                Entry {
                    perm: 0o644,
                    node: Node::Dir,
                },
            )
            .unwrap();
        assert_eq!(p, "usr/lib/udev/rules.d/x.rules");
        assert_eq!(clean("../etc/shadow"), None);
        assert_eq!(clean("/a//b/./c"), Some("a/b/c".into()));
    }

    #[test]
    fn early_segment_then_compressed() {
        let mut early = Tree::default();
        early.insert(
            "kernel/x86/microcode/GenuineIntel.bin",
            Entry {
                perm: 0o644,
                node: Node::File(vec![1, 2, 3]),
            },
        );
        let mut bytes = Vec::new();
        early.write_cpio(&mut bytes, 0).unwrap();
        let early_len = bytes.len();
        let mut main = Vec::new();
        sample().write_cpio(&mut main, 0).unwrap();
        bytes.extend(zstd::encode_all(&main[..], 3).unwrap());
        let img = read_image(&bytes, 1 << 20).unwrap();
        assert_eq!(img.segments.len(), 2);
        assert_eq!(img.early_len, early_len);
        assert!(img
            .early_tree
            .contains("kernel/x86/microcode/GenuineIntel.bin"));
        assert!(!img.tree.contains("kernel/x86/microcode/GenuineIntel.bin"));
        // A single uncompressed archive is the image proper, not early data.
        let mut plain = Vec::new();
        sample().write_cpio(&mut plain, 0).unwrap();
        let p = read_image(&plain, 1 << 20).unwrap();
        assert_eq!(p.early_len, 0);
        assert!(p.tree.contains("usr/lib/modules/k/a.ko"));
        assert!(img.tree.contains("usr/lib/modules/k/a.ko"));
        // A corrupt compressed segment is an error, not a panic.
        let n = bytes.len();
        bytes.truncate(n - 10);
        assert!(read_image(&bytes, 1 << 20).is_err());
        assert!(read_image(b"\x02\x21\x4c\x18junk", 100)
            .unwrap_err()
            .contains("lz4"));
    }
}
