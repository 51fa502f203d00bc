//! `modules.builtin` (one `kernel/path/name.ko` a line) and
//! `modules.builtin.modinfo` (NUL-separated `name.key=value` records).

use super::name::{modname_from_path, normalize_modname};
use std::collections::HashSet;

pub fn parse_builtin(text: &str) -> HashSet<String> {
    let mut out = HashSet::with_capacity(text.len() / 32);
    out.extend(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(modname_from_path),
    );
    out
}

/// `(module, key, value)` records of `modules.builtin.modinfo`; records that are
/// not `name.key=value` are skipped.
pub fn parse_builtin_modinfo(bytes: &[u8]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rec in bytes.split(|&b| b == 0) {
        let Ok(rec) = std::str::from_utf8(rec) else {
            continue;
        };
        let Some((lhs, value)) = rec.split_once('=') else {
            continue;
        };
        let Some((module, key)) = lhs.split_once('.') else {
            continue;
        };
        if module.is_empty() || key.is_empty() {
            continue;
        }
        out.push((
            normalize_modname(module),
            key.to_string(),
            value.to_string(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_files() {
        let b = parse_builtin(
            "kernel/lib/crc32.ko\nkernel/drivers/base/firmware_loader/firmware_class.ko\n",
        );
        assert!(b.contains("crc32") && b.contains("firmware_class"));
        let m = parse_builtin_modinfo(
            b"crc32c_generic.alias=crypto-crc32c\0crc32c_generic.license=GPL\0junk\0",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0],
            (
                "crc32c_generic".into(),
                "alias".into(),
                "crypto-crc32c".into()
            )
        );
    }
}
