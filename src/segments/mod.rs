//! An initramfs image as the kernel unpacks it (init/initramfs.c): a run of
//! segments, each an uncompressed newc cpio or one compressed stream
//! (gzip, xz, lzma, zstd, bzip2, lz4, lzo) of newc archives, with zero
//! padding between them; a segment ends where its stream ends, and the next
//! may use another compression. Later entries replace earlier ones.
//!
//! Hard links are resolved as the kernel links them (`links`).
//!
//! Read as a stream: nothing is held whole (but the data of hard-linked
//! files, while their inode may get more names). `scan` hands each entry's data
//! to a visitor as a reader; `read_image` builds a whole tree on top of it.

use crate::cpio::{self, Entry, Node, Tree};
use links::Links;
use std::io::{self, BufRead, BufReader, Read};

/// The formats the kernel recognises by magic (lib/decompress.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Cpio,
    Gzip,
    Xz,
    Lzma,
    Zstd,
    Bzip2,
    Lz4,
    Lzo,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Cpio => "uncompressed",
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Lzma => "lzma",
            Format::Zstd => "zstd",
            Format::Bzip2 => "bzip2",
            Format::Lz4 => "lz4",
            Format::Lzo => "lzo",
        }
    }

    /// The format of data starting with `b`, None when it is none the
    /// kernel knows.
    pub fn detect(b: &[u8]) -> Option<Format> {
        const MAGIC: &[(&[u8], Format)] = &[
            (b"0707", Format::Cpio),
            (&[0x1f, 0x8b], Format::Gzip),
            (&[0x1f, 0x9e], Format::Gzip),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Format::Xz),
            (&[0x5d, 0x00, 0x00], Format::Lzma),
            (&[0x28, 0xb5, 0x2f, 0xfd], Format::Zstd),
            (b"BZh", Format::Bzip2),
            (&[0x02, 0x21, 0x4c, 0x18], Format::Lz4),
            (&[0x89, b'L', b'Z', b'O'], Format::Lzo),
        ];
        MAGIC
            .iter()
            .find(|(m, _)| b.starts_with(m))
            .map(|(_, f)| *f)
    }
}

/// One segment as found: its format and byte range in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub format: Format,
    pub start: u64,
    pub end: u64,
}

/// One entry of an archive, before its data.
#[derive(Debug, Clone)]
pub struct Header {
    /// Index of its segment.
    pub segment: usize,
    /// The path as archived, cleaned (None: it would leave the tree).
    pub path: Option<String>,
    pub mode: u32,
    pub size: u64,
}

/// A decompressor for the stream at the start of `r`, reading exactly
/// that stream from it.
fn decoder<'a>(f: Format, r: &'a mut dyn BufRead) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match f {
        Format::Cpio => Box::new(r),
        Format::Gzip => Box::new(flate2::bufread::GzDecoder::new(r)),
        Format::Xz => Box::new(liblzma::bufread::XzDecoder::new(r)),
        Format::Lzma => Box::new(liblzma::bufread::XzDecoder::new_stream(
            r,
            liblzma::stream::Stream::new_lzma_decoder(u64::MAX).map_err(io::Error::other)?,
        )),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?.single_frame()),
        Format::Bzip2 | Format::Lz4 | Format::Lzo => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{} compression is not supported", f.name()),
            ))
        }
    })
}

/// Counts the bytes read through it (the position in the image).
struct Counted<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Refuses more than `limit` decompressed bytes in all.
struct Limited<'a, R> {
    inner: R,
    left: &'a mut u64,
}

impl<R: Read> Read for Limited<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "decompresses to more than the limit",
            )
        })?;
        Ok(n)
    }
}

/// Walk every segment of an image: `visit` gets each entry's header and a
/// reader of exactly its data (what it does not read is skipped); `report`
/// the position in the image. Returns the segments.
pub fn scan(
    input: impl Read,
    limit: u64,
    visit: &mut dyn FnMut(&Header, &mut dyn Read) -> io::Result<()>,
    report: &mut dyn FnMut(u64),
) -> Result<Vec<Segment>, String> {
    let mut r = BufReader::with_capacity(
        1 << 16,
        Counted {
            inner: input,
            pos: 0,
        },
    );
    let mut segments = Vec::new();
    let mut left = limit;
    loop {
        let pos = r.get_ref().pos - r.buffer().len() as u64;
        let head = r.fill_buf().map_err(|e| format!("at byte {pos}: {e}"))?;
        if head.is_empty() {
            break;
        }
        // Zero padding between segments.
        if head[0] == 0 {
            let n = head.iter().take_while(|&&b| b == 0).count();
            r.consume(n);
            continue;
        }
        let format = Format::detect(head).ok_or_else(|| {
            format!(
                "segment at byte {pos}: neither a cpio archive nor data the kernel decompresses"
            )
        })?;
        let seg = segments.len();
        let what =
            |e: &dyn std::fmt::Display| format!("{} segment at byte {pos}: {e}", format.name());
        {
            let mut d = decoder(format, &mut r).map_err(|e| what(&e))?;
            let mut d = Limited {
                inner: &mut d,
                left: &mut left,
            };
            archives(&mut d, seg, format == Format::Cpio, visit)
                .map_err(|e| what(&truncated(e)))?;
        }
        let end = r.get_ref().pos - r.buffer().len() as u64;
        report(end);
        segments.push(Segment {
            format,
            start: pos,
            end,
        });
    }
    if segments.is_empty() {
        return Err("empty image".into());
    }
    Ok(segments)
}

fn truncated(e: io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        "truncated (the data ends inside it)".to_string()
    } else {
        e.to_string()
    }
}

/// The newc archives of one segment's data: one or more, zero padding
/// between them. An uncompressed segment ends after its last trailer.
fn archives(
    r: &mut dyn Read,
    segment: usize,
    uncompressed: bool,
    visit: &mut dyn FnMut(&Header, &mut dyn Read) -> io::Result<()>,
) -> io::Result<()> {
    let mut first = true;
    loop {
        let mut head = [0u8; 110];
        if uncompressed && !first {
            // The next archive of an uncompressed run starts right away, or
            // the segment is over (what follows is the caller's).
            return Ok(());
        }
        if !read_magic(r, &mut head)? {
            return Ok(());
        }
        first = false;
        let mut links = Links::default();
        cpio::read_archive(r, &mut head, &mut |e, data| {
            let h = Header {
                segment,
                path: e.path.map(str::to_string),
                mode: e.mode,
                size: e.size,
            };
            links.entry(h, e.link, data, visit)
        })?;
        links.finish(visit)?;
        if uncompressed {
            return Ok(());
        }
    }
}

/// Skip zero padding and read the first 6 bytes of a header into `head`;
/// false at the end of the data.
fn read_magic(r: &mut dyn Read, head: &mut [u8; 110]) -> io::Result<bool> {
    let mut b = [0u8; 1];
    loop {
        if r.read(&mut b)? == 0 {
            return Ok(false);
        }
        if b[0] != 0 {
            head[0] = b[0];
            r.read_exact(&mut head[1..6])?;
            return Ok(true);
        }
    }
}

/// A whole image read back: every segment, later entries replacing earlier.
#[derive(Debug, Default)]
pub struct Image {
    pub segments: Vec<Segment>,
    /// Every entry of every segment but the leading early ones.
    pub tree: Tree,
    /// The leading uncompressed segments that hold only early-boot data
    /// (CPU microcode, ACPI tables: `kernel/...`, dracut's `early_cpio`).
    pub early_segments: usize,
    pub early_tree: Tree,
}

impl Image {
    /// Bytes of the leading early segments (kept verbatim on rewrite).
    pub fn early_len(&self) -> u64 {
        match self.early_segments {
            0 => 0,
            n => self.segments[n - 1].end,
        }
    }
}

fn is_early(path: &str) -> bool {
    path == "kernel" || path.starts_with("kernel/") || path == "early_cpio"
}

/// Read a whole image into trees. `limit` bounds the decompressed size.
pub fn read_image(
    input: impl Read,
    limit: u64,
    report: &mut dyn FnMut(u64),
) -> Result<Image, String> {
    // Entries per segment in archive order, and whether each segment is
    // early-only.
    let mut per_seg: Vec<(Vec<(String, Entry)>, bool)> = Vec::new();
    let mut visit = |h: &Header, data: &mut dyn Read| -> io::Result<()> {
        while per_seg.len() <= h.segment {
            per_seg.push((Vec::new(), true));
        }
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes)?;
        let Some(path) = &h.path else { return Ok(()) };
        let node = match h.mode & 0o170000 {
            0o040000 => Node::Dir,
            0o100000 => Node::File(bytes),
            0o120000 => Node::Symlink(String::from_utf8_lossy(&bytes).into_owned()),
            _ => return Ok(()), // device nodes, fifos: not ours to keep
        };
        let (entries, early) = &mut per_seg[h.segment];
        *early &= is_early(path);
        entries.push((
            path.clone(),
            Entry {
                perm: h.mode & 0o7777,
                node,
            },
        ));
        Ok(())
    };
    let segments = scan(input, limit, &mut visit, report)?;
    let mut img = Image {
        segments,
        ..Default::default()
    };
    for (i, (entries, early)) in per_seg.into_iter().enumerate() {
        let leading = i == img.early_segments && early && img.segments[i].format == Format::Cpio;
        let tree = if leading {
            img.early_segments += 1;
            &mut img.early_tree
        } else {
            &mut img.tree
        };
        for (path, e) in entries {
            unpack(tree, &path, e);
        }
    }
    Ok(img)
}

/// One entry unpacked over `tree` as the kernel does (init/initramfs.c):
/// through the links already there, replacing what is at the path, except
/// that a directory with something in it is not replaced by a file or link
/// (the kernel's rmdir fails, and so does the new entry).
fn unpack(tree: &mut Tree, path: &str, e: Entry) {
    let Some(p) = tree.canonical(path) else {
        return;
    };
    if let Some(Entry {
        node: Node::Dir, ..
    }) = tree.entries.get(&p)
    {
        if !matches!(e.node, Node::Dir) {
            let inside = format!("{p}/");
            if tree
                .entries
                .range(inside.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&inside))
            {
                return;
            }
        }
    }
    if let (
        Some(Entry {
            node: Node::Dir, ..
        }),
        Node::Dir,
    ) = (tree.entries.get(&p), &e.node)
    {
        return; // mkdir of an existing directory changes nothing
    }
    tree.entries.insert(p, e);
}

mod links;
#[cfg(test)]
mod tests;
