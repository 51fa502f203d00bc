//! Images: a tree written as one newc cpio archive in the chosen
//! compression (temp file, fsync, rename: never a partial image), and
//! images read back (every segment, as the kernel unpacks them).

use crate::cpio::{self, Node, Tree};
use crate::kmod::compress::Compression;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Decompressed images larger than this are refused.
pub const MAX_IMAGE_BYTES: u64 = 8 << 30;

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
