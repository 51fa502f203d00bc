//! Module file compression, detected by magic bytes (never by extension).

use std::borrow::Cow;
use std::io::Read;

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
    let mut out = Vec::new();
    match detect(bytes) {
        Compression::None => return Ok(Cow::Borrowed(bytes)),
        Compression::Xz => {
            let dec = liblzma::read::XzDecoder::new_multi_decoder(bytes);
            dec.take(limit + 1).read_to_end(&mut out)?;
        }
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::with_buffer(bytes)?;
            dec.take(limit + 1).read_to_end(&mut out)?;
        }
        Compression::Gzip => {
            let dec = flate2::read::MultiGzDecoder::new(bytes);
            dec.take(limit + 1).read_to_end(&mut out)?;
        }
    }
    if out.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("decompresses to more than {limit} bytes"),
        ));
    }
    Ok(Cow::Owned(out))
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
    }
}
