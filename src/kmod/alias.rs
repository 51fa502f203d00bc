//! `modules.alias` and `modules.symbols`: `alias PATTERN MODULE` lines.

use super::name::{has_glob, normalize_alias, normalize_modname};
use crate::error::{InputError, Warning};
use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct AliasFile {
    /// Exact (glob-free) aliases: alias -> indices into `entries`, in file order.
    exact: HashMap<String, Vec<usize>>,
    /// Indices of entries whose pattern has glob characters.
    wild: Vec<usize>,
    pub entries: Vec<(String, String)>,
}

impl AliasFile {
    /// Parse; lines that are not `alias PATTERN MODULE` are reported and skipped,
    /// as depmod-generated indexes would never hold them.
    pub fn parse(text: &str, file: &str, warnings: &mut Vec<Warning>) -> Self {
        let mut out = AliasFile::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut it = line.split_ascii_whitespace();
            let (Some("alias"), Some(pat), Some(module), None) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                warnings.push(InputError::at(
                    file,
                    i + 1,
                    "expected 'alias PATTERN MODULE'",
                ));
                continue;
            };
            // depmod normalises aliases when it writes the binary index.
            let Ok(pat) = normalize_alias(pat) else {
                warnings.push(InputError::at(
                    file,
                    i + 1,
                    format!("unmatched '[' in '{pat}'"),
                ));
                continue;
            };
            out.push(pat, normalize_modname(module));
        }
        out
    }

    fn push(&mut self, pat: String, module: String) {
        let idx = self.entries.len();
        if has_glob(&pat) {
            self.wild.push(idx);
        } else {
            self.exact.entry(pat.clone()).or_default().push(idx);
        }
        self.entries.push((pat, module));
    }

    /// Every module whose alias pattern matches `name` (already normalised),
    /// deduplicated, in file order.
    pub fn lookup(&self, name: &str) -> Vec<String> {
        let mut idxs: Vec<usize> = self.exact.get(name).cloned().unwrap_or_default();
        idxs.extend(
            self.wild
                .iter()
                .copied()
                .filter(|&i| super::name::fnmatch(&self.entries[i].0, name)),
        );
        idxs.sort_unstable();
        let mut out: Vec<String> = Vec::new();
        for i in idxs {
            let m = &self.entries[i].1;
            if !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut out = AliasFile::default();
        for (p, m) in pairs {
            if let Ok(p) = normalize_alias(&p) {
                out.push(p, normalize_modname(&m));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wild_in_file_order() {
        let t = "# Aliases extracted from modules themselves.\nalias auxiliary:ice.roce irdma\nalias i40iw irdma\nalias pci:v00008086d00001572sv*sd*bc*sc*i* i40e\nalias xprtrdma rpcrdma\nalias svcrdma rpcrdma\nalias crypto-crc32c crc32c_generic\nalias crypto-crc32c crc32c-intel\n";
        let mut w = Vec::new();
        let a = AliasFile::parse(t, "modules.alias", &mut w);
        assert!(w.is_empty());
        assert_eq!(a.lookup("i40iw"), vec!["irdma"]);
        assert_eq!(
            a.lookup("crypto_crc32c"),
            vec!["crc32c_generic", "crc32c_intel"]
        );
        assert_eq!(
            a.lookup("pci:v00008086d00001572sv00008086sd00000001bc02sc00i00"),
            vec!["i40e"]
        );
        assert!(a.lookup("nothing").is_empty());
        let _ = AliasFile::parse("bogus line\n", "f", &mut w);
        assert_eq!(w[0].to_string(), "f:1: expected 'alias PATTERN MODULE'");
    }
}
