//! Module file compression, detected by magic bytes (never by extension).

use std::borrow::Cow;
use std::io::{BufRead, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
}

pub fn detect(bytes: &[u8]) -> Compression {
    if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if bytes.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// Decompress a whole module file, refusing output beyond `limit` bytes.
pub fn decompress(bytes: &[u8], limit: u64) -> std::io::Result<Cow<'_, [u8]>> {
    match detect(bytes) {
        Compression::None => Ok(Cow::Borrowed(bytes)),
        c => decode(c, bytes, limit).map(Cow::Owned),
    }
}

/// As `decompress`, telling `report` how many input bytes were consumed as
/// it goes (a progress line over a large initramfs).
pub fn decompress_reporting<'a>(
    bytes: &'a [u8],
    limit: u64,
    report: &mut dyn FnMut(u64),
) -> std::io::Result<Cow<'a, [u8]>> {
    match detect(bytes) {
        Compression::None => Ok(Cow::Borrowed(bytes)),
        c => decode(
            c,
            Reporting {
                rest: bytes,
                done: 0,
                report,
            },
            limit,
        )
        .map(Cow::Owned),
    }
}

fn decode<R: BufRead>(c: Compression, r: R, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match c {
        Compression::None => {
            r.take(limit + 1).read_to_end(&mut out)?;
        }
        Compression::Xz => {
            let dec = liblzma::read::XzDecoder::new_multi_decoder(r);
            dec.take(limit + 1).read_to_end(&mut out)?;
        }
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::with_buffer(r)?;
            dec.take(limit + 1).read_to_end(&mut out)?;
        }
        Compression::Gzip => {
            let dec = flate2::read::MultiGzDecoder::new(r);
            dec.take(limit + 1).read_to_end(&mut out)?;
        }
    }
    if out.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("decompresses to more than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// A byte slice read through, counting what was consumed.
struct Reporting<'a, 'b> {
    rest: &'a [u8],
    done: u64,
    report: &'b mut dyn FnMut(u64),
}

impl Read for Reporting<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rest.read(buf)?;
        self.done += n as u64;
        (self.report)(self.done);
        Ok(n)
    }
}

impl BufRead for Reporting<'_, '_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        Ok(self.rest)
    }
    fn consume(&mut self, n: usize) {
        self.rest = &self.rest[n..];
        self.done += n as u64;
        (self.report)(self.done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trips_by_magic() {
        let data = b"\x7fELF and some module bytes".repeat(10);
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&data).unwrap();
        let xz = xz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 1).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        for (b, c) in [
            (&xz, Compression::Xz),
            (&zst, Compression::Zstd),
            (&gz, Compression::Gzip),
        ] {
            assert_eq!(detect(b), c);
            assert_eq!(&*decompress(b, 1 << 20).unwrap(), &data[..]);
        }
        assert_eq!(detect(&data), Compression::None);
        assert!(decompress(&xz[..xz.len() / 2], 1 << 20).is_err());
        assert!(decompress(&zst, 10).is_err());
        // Reporting: the same bytes, and every input byte counted.
        for b in [&xz, &zst, &gz] {
            let mut last = 0;
            let out = decompress_reporting(b, 1 << 20, &mut |n| last = n).unwrap();
            assert_eq!(&*out, &data[..]);
            assert_eq!(last, b.len() as u64);
        }
    }
}
