//! newc cpio archives (what the kernel unpacks as an initramfs): a file tree,
//! a writer that emits a tree sorted, owned by 0:0, with one mtime, and a
//! streaming reader of one archive. Images (segments, compression) are
//! `segments`.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    /// A file whose bytes are a host file's, read when written (module
    /// files: an image's bulk is never held in memory).
    Host(std::path::PathBuf),
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
            let perm = if matches!(e.node, Node::Symlink(_)) {
                0o777
            } else {
                e.perm & 0o777
            };
            match &e.node {
                Node::Dir => write_header(out, ino, 0o040000 | perm, 2, mtime, 0, path)?,
                Node::File(b) => write_data(out, ino, 0o100000 | perm, mtime, path, b)?,
                Node::Symlink(t) => {
                    write_data(out, ino, 0o120000 | perm, mtime, path, t.as_bytes())?
                }
                Node::Host(h) => {
                    let f = std::fs::File::open(h)
                        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", h.display())))?;
                    let len = f.metadata()?.len() as usize;
                    write_header(out, ino, 0o100000 | perm, 1, mtime, len, path)?;
                    let n = io::copy(&mut f.take(len as u64), out)?;
                    if n != len as u64 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("{}: shrank while being read", h.display()),
                        ));
                    }
                    pad(out, len)?;
                }
            }
        }
        write_header(out, 0, 0, 1, 0, 0, TRAILER)
    }
}

fn write_data(
    out: &mut impl Write,
    ino: u32,
    mode: u32,
    mtime: u32,
    path: &str,
    data: &[u8],
) -> io::Result<()> {
    write_header(out, ino, mode, 1, mtime, data.len(), path)?;
    out.write_all(data)?;
    pad(out, data.len())
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

/// One entry's header as read.
#[derive(Debug, Clone)]
pub struct EntryHeader<'a> {
    /// The path, cleaned (None when it would leave the tree).
    pub path: Option<&'a str>,
    pub mode: u32,
    pub size: u64,
    /// Set for a regular file with nlink >= 2.
    pub link: Option<HardLink>,
}

/// A name of a regular file with nlink >= 2.
#[derive(Debug, Clone, Copy)]
pub struct HardLink {
    /// (ino, devmajor, devminor): the key by which the kernel makes the
    /// names of one inode hard links (init/initramfs.c, `maybe_link`).
    pub key: (u32, u32, u32),
    pub nlink: u32,
}

/// What `read_archive` calls for each entry: its header and a reader of
/// exactly its data.
pub type EntryVisitor<'a> = dyn FnMut(&EntryHeader<'_>, &mut dyn Read) -> io::Result<()> + 'a;

/// Read one newc archive's entries, up to its trailer, from `r`; `head`
/// holds the first 6 bytes of the first header (already read). `entry` gets
/// each entry's header and a reader of exactly its data; what it leaves
/// unread is skipped.
pub fn read_archive(
    r: &mut dyn Read,
    head: &mut [u8; 110],
    entry: &mut EntryVisitor<'_>,
) -> io::Result<()> {
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let mut offset: u64 = 0;
    loop {
        r.read_exact(&mut head[6..])?;
        if &head[..6] != MAGIC && &head[..6] != b"070702" {
            return Err(bad(format!("bad cpio magic at archive offset {offset}")));
        }
        let field = |at: usize| hex(head, at).map_err(bad);
        let mode = field(14)?;
        let nlink = field(38)?;
        let size = u64::from(field(54)?);
        let namesize = field(94)? as usize;
        let link = (mode & 0o170000 == 0o100000 && nlink >= 2)
            .then(|| {
                Ok::<_, io::Error>(HardLink {
                    key: (field(6)?, field(62)?, field(70)?),
                    nlink,
                })
            })
            .transpose()?;
        if namesize == 0 || namesize > 4096 {
            return Err(bad(format!("bad name size at archive offset {offset}")));
        }
        let mut name = vec![0u8; namesize];
        r.read_exact(&mut name)?;
        name.pop();
        let name = String::from_utf8_lossy(&name).into_owned();
        skip(r, pad_len(110 + namesize))?;
        if name == TRAILER {
            skip(r, size + pad_len(size as usize))?;
            return Ok(());
        }
        let mut data = r.take(size);
        let path = clean(&name);
        let h = EntryHeader {
            path: path.as_deref(),
            mode,
            size,
            link,
        };
        entry(&h, &mut data)?;
        io::copy(&mut data, &mut io::sink())?;
        if data.limit() > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: truncated data"),
            ));
        }
        skip(r, pad_len(size as usize))?;
        offset += 110 + namesize as u64 + size;
        // The next header.
        r.read_exact(&mut head[..6])?;
    }
}

fn skip(r: &mut dyn Read, n: u64) -> io::Result<()> {
    let got = io::copy(&mut r.take(n), &mut io::sink())?;
    if got < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated archive",
        ));
    }
    Ok(())
}

fn pad_len(len: usize) -> u64 {
    ((4 - len % 4) % 4) as u64
}

fn hex(b: &[u8], at: usize) -> Result<u32, String> {
    let s = b.get(at..at + 8).ok_or("truncated header")?;
    let s = std::str::from_utf8(s).map_err(|_| "bad header")?;
    u32::from_str_radix(s, 16).map_err(|_| format!("bad header field '{s}'"))
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
        let img = crate::segments::read_image(&out[..], 1 << 20, &mut |_| {}).unwrap();
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
}
