//! Images: a tree written as one newc cpio archive in the chosen
//! compression (temp file, fsync, rename: never a partial image), and
//! images read back (every segment, as the kernel unpacks them).

use crate::cpio::{Node, Tree};
use crate::kmod::compress::Compression;
use crate::segments::{self, Image};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Decompressed images larger than this are refused.
pub const MAX_IMAGE_BYTES: u64 = 8 << 30;

/// Write `tree` as an image at `output` (temp file + rename: a failed run
/// leaves nothing, and never a partial image). `prefix` (a base image's
/// segments kept as they are) is copied first, verbatim, then the tree as
/// one segment.
pub fn write_image(
    tree: &Tree,
    compression: Compression,
    mtime: u32,
    prefix: &mut dyn std::io::Read,
    output: &Path,
    progress: &mut crate::term::Progress,
) -> Result<()> {
    let mut tmp = temp_for(output)?;
    let n = {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        let n = std::io::copy(prefix, &mut w)?;
        w.flush()?;
        n
    };
    finish_image(tmp, n, tree, compression, mtime, output, progress)
}

/// A temporary file next to `output`, to be completed by `finish_image`.
pub fn temp_for(output: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = parent_dir(output);
    tempfile::Builder::new()
        .prefix(".rdma-initrd-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

fn parent_dir(output: &Path) -> &Path {
    match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Have the kernel start writing the first `len` bytes of `f` back to disk
/// now (they are complete), so that the final fsync waits for less.
pub fn start_writeback(f: &std::fs::File, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain system call on an open descriptor; advisory only,
    // its result is not needed (fsync later is what makes the file safe).
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            0,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// `tmp` holds `prefix_len` bytes (a base's kept segments), its position at
/// their end: append `tree` as one segment, then sync and rename it to
/// `output`.
pub fn finish_image(
    mut tmp: tempfile::NamedTempFile,
    prefix_len: u64,
    tree: &Tree,
    compression: Compression,
    mtime: u32,
    output: &Path,
    progress: &mut crate::term::Progress,
) -> Result<()> {
    let dir = parent_dir(output);
    {
        let n = prefix_len;
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        // The kernel takes an uncompressed archive only at a 4-byte boundary;
        // a compressed stream anywhere (and tools that test the compressed
        // rest as one stream fail on zero padding).
        if compression == Compression::None {
            w.write_all(&[0u8; 3][..((4 - n % 4) % 4) as usize])?;
        }
        if progress.enabled() {
            let what = format!("{compression:?}").to_lowercase();
            progress.stage_of(
                format!("writing {} ({what})", output.display()),
                archive_bytes(tree),
            );
        }
        write_segment(tree, compression, mtime, &mut w, progress)?;
        w.flush()?;
    }
    persist(tmp, output, dir)
}

/// The bytes of the files of `tree` (for the progress line).
fn archive_bytes(tree: &Tree) -> u64 {
    tree.entries
        .values()
        .map(|e| match &e.node {
            Node::File(b) => b.len() as u64,
            Node::Host(h) => std::fs::metadata(h).map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// `tree` as one newc archive in `compression`, counted for the progress
/// line before compression (the percentage is of the archive).
fn write_segment(
    tree: &Tree,
    compression: Compression,
    mtime: u32,
    w: &mut dyn Write,
    progress: &mut crate::term::Progress,
) -> Result<()> {
    use crate::term::Counting as C;
    match compression {
        Compression::None => tree.write_cpio(&mut C::new(w, progress), mtime)?,
        Compression::Gzip => {
            let mut e = flate2::GzBuilder::new()
                .mtime(0)
                .write(w, flate2::Compression::best());
            tree.write_cpio(&mut C::new(&mut e, progress), mtime)?;
            e.finish()?;
        }
        Compression::Xz => {
            // The kernel's xz decoder knows CRC32 (and no check), not CRC64.
            let stream =
                liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)?;
            let mut e = liblzma::write::XzEncoder::new_stream(w, stream);
            tree.write_cpio(&mut C::new(&mut e, progress), mtime)?;
            e.finish()?;
        }
        Compression::Zstd => {
            // zstd's default level, as mkinitcpio and booster use it.
            let mut e = zstd::stream::write::Encoder::new(w, 3)?;
            e.include_checksum(true)?;
            tree.write_cpio(&mut C::new(&mut e, progress), mtime)?;
            e.finish()?;
        }
    }
    Ok(())
}

/// Give the complete temporary file its mode, sync it and rename it over
/// `output`, then sync the directory. An image replaced keeps its mode; a
/// new one is 0644 less the umask, as any file a program creates.
fn persist(tmp: tempfile::NamedTempFile, output: &Path, dir: &Path) -> Result<()> {
    let mode = match std::fs::metadata(output) {
        Ok(m) => m.permissions(),
        Err(_) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::Permissions::from_mode(0o644 & !current_umask())
        }
    };
    tmp.as_file().set_permissions(mode)?;
    tmp.as_file().sync_all()?;
    tmp.persist(output)
        .map_err(|e| anyhow::anyhow!("{}: {}", output.display(), e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The process's umask (read from /proc: setting it to learn it would race
/// with other threads).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// Read an image file.
pub fn read(path: &Path) -> Result<Image> {
    read_reporting(path, &mut crate::term::Progress::new(false))
}

/// As `read`, with a progress line (percentage of the file read).
pub fn read_reporting(path: &Path, progress: &mut crate::term::Progress) -> Result<Image> {
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let len = f
        .metadata()
        .with_context(|| path.display().to_string())?
        .len();
    progress.stage_of(format!("reading {}", path.display()), len);
    segments::read_image(f, MAX_IMAGE_BYTES, &mut |n| progress.bytes(n))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
