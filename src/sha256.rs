//! SHA-256 for the content digests of an image's manifest: RustCrypto's
//! `sha2` (the field's standard), behind the few helpers the manifest needs.

use sha2::Digest;
use std::io::Read;

/// An incremental SHA-256.
#[derive(Clone, Default)]
pub struct Sha256(sha2::Sha256);

impl Sha256 {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Lower-case hex.
pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex digest of `data`.
pub fn digest_hex(data: &[u8]) -> String {
    let mut s = Sha256::default();
    s.update(data);
    hex(&s.finish())
}

/// The hex digest of what `r` yields, read in blocks.
pub fn reader_hex(mut r: impl Read) -> std::io::Result<String> {
    let mut s = Sha256::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => s.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex(&s.finish()))
}

/// Whether `s` has the form of a hex SHA-256 digest.
pub fn is_hex_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_vectors() {
        assert_eq!(
            digest_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            digest_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            digest_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            digest_hex(&vec![b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    /// Every length around the block and padding boundaries, fed whole and
    /// in odd pieces, equals `sha256sum` (when installed).
    #[test]
    fn boundaries_and_pieces_equal_sha256sum() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 300] {
            let d = &data[..len];
            let whole = digest_hex(d);
            let mut s = Sha256::default();
            for c in d.chunks(13) {
                s.update(c);
            }
            assert_eq!(hex(&s.finish()), whole, "len {len}");
            assert_eq!(reader_hex(d).unwrap(), whole);
            let Ok(mut child) = std::process::Command::new("sha256sum")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
            else {
                continue;
            };
            use std::io::Write;
            child.stdin.take().unwrap().write_all(d).unwrap();
            let out = child.wait_with_output().unwrap();
            let got = String::from_utf8(out.stdout).unwrap();
            assert_eq!(got.split(' ').next().unwrap(), whole, "len {len}");
        }
    }
}
