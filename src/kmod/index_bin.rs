//! libkmod's binary indexes (`modules.dep.bin`, `modules.alias.bin`,
//! `modules.symbols.bin`, `modules.builtin.bin`, `modules.builtin.alias.bin`):
//! a trie of NUL-terminated prefixes, child tables and prioritised values.
//! Some generators (mkinitcpio) ship only these in an image; `dump` turns one
//! back into its (key, values) pairs.

const MAGIC: u32 = 0xB007_F457;
const VERSION_MAJOR: u32 = 0x0002;
const PREFIX: u32 = 0x8000_0000;
const VALUES: u32 = 0x4000_0000;
const CHILDS: u32 = 0x2000_0000;
const MASK: u32 = 0x0FFF_FFFF;
/// Deeper than any key depmod writes (PATH_MAX); bounds hostile input.
const MAX_DEPTH: usize = 4096;

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    let s = b
        .get(at..at + 4)
        .ok_or_else(|| format!("offset {at} is past the end"))?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn cstr_at(b: &[u8], at: usize) -> Result<(&[u8], usize), String> {
    let rest = b
        .get(at..)
        .ok_or_else(|| format!("offset {at} is past the end"))?;
    let n = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or("unterminated string")?;
    Ok((&rest[..n], at + n + 1))
}

/// Every key with its values (priority, value), in key order.
pub type Pairs = Vec<(String, Vec<(u32, String)>)>;

pub fn dump(b: &[u8]) -> Result<Pairs, String> {
    if u32_at(b, 0)? != MAGIC {
        return Err("not a kmod index (bad magic)".into());
    }
    let version = u32_at(b, 4)?;
    if version >> 16 != VERSION_MAJOR {
        return Err(format!("unsupported index version {version:#x}"));
    }
    let root = u32_at(b, 8)?;
    let mut out = Vec::new();
    // (node offset word, key so far, depth)
    let mut stack: Vec<(u32, Vec<u8>, usize)> = vec![(root, Vec::new(), 0)];
    let mut visited = 0usize;
    while let Some((word, mut key, depth)) = stack.pop() {
        visited += 1;
        if depth > MAX_DEPTH || visited > b.len() {
            return Err("index nodes nest too deep or loop".into());
        }
        let mut at = (word & MASK) as usize;
        if at < 12 {
            return Err(format!("node offset {at} points into the header"));
        }
        if word & PREFIX != 0 {
            let (p, next) = cstr_at(b, at)?;
            key.extend_from_slice(p);
            at = next;
        }
        let mut children = Vec::new();
        if word & CHILDS != 0 {
            let first = *b.get(at).ok_or("truncated child table")?;
            let last = *b.get(at + 1).ok_or("truncated child table")?;
            if last < first {
                return Err(format!("child table at {at} runs backwards"));
            }
            at += 2;
            for (i, c) in (first..=last).enumerate() {
                let child = u32_at(b, at + 4 * i)?;
                if child != 0 {
                    let mut k = key.clone();
                    k.push(c);
                    children.push((child, k, depth + 1));
                }
            }
            at += 4 * (usize::from(last) - usize::from(first) + 1);
        }
        if word & VALUES != 0 {
            let n = u32_at(b, at)? as usize;
            at += 4;
            let mut vals = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let prio = u32_at(b, at)?;
                let (v, next) = cstr_at(b, at + 4)?;
                vals.push((prio, crate::root::text_ref(v).into_owned()));
                at = next;
            }
            out.push((crate::root::text_ref(&key).into_owned(), vals));
        }
        // Visit children in character order.
        stack.extend(children.into_iter().rev());
    }
    Ok(out)
}

/// `modules.dep` text from `modules.dep.bin` (values are the dep lines).
pub fn dep_text(pairs: &Pairs) -> String {
    let mut s = String::new();
    for (_, vals) in pairs {
        for (_, v) in vals {
            s.push_str(v);
            s.push('\n');
        }
    }
    s
}

/// `alias KEY MODULE` text from an alias-style index.
pub fn alias_text(pairs: &Pairs) -> String {
    let mut s = String::new();
    for (k, vals) in pairs {
        let mut vals = vals.clone();
        vals.sort();
        for (_, v) in vals {
            s.push_str(&format!("alias {k} {v}\n"));
        }
    }
    s
}

/// One node of a binary index, read on demand.
struct Node<'a> {
    prefix: &'a [u8],
    /// (first, last, offset of the child table)
    children: Option<(u8, u8, usize)>,
    /// Offset of the value count.
    values: Option<usize>,
}

/// A binary index searched in place, as libkmod does (no full dump).
pub struct Index<'a> {
    b: &'a [u8],
    root: u32,
}

impl<'a> Index<'a> {
    pub fn open(b: &'a [u8]) -> Result<Self, String> {
        if u32_at(b, 0)? != MAGIC {
            return Err("not a kmod index (bad magic)".into());
        }
        if u32_at(b, 4)? >> 16 != VERSION_MAJOR {
            return Err("unsupported index version".into());
        }
        Ok(Index {
            b,
            root: u32_at(b, 8)?,
        })
    }

    fn node(&self, word: u32) -> Result<Node<'a>, String> {
        let mut at = (word & MASK) as usize;
        if at < 12 {
            return Err(format!("node offset {at} points into the header"));
        }
        let mut prefix: &[u8] = &[];
        if word & PREFIX != 0 {
            let (p, next) = cstr_at(self.b, at)?;
            prefix = p;
            at = next;
        }
        let mut children = None;
        if word & CHILDS != 0 {
            let first = *self.b.get(at).ok_or("truncated child table")?;
            let last = *self.b.get(at + 1).ok_or("truncated child table")?;
            if last < first {
                return Err("child table runs backwards".into());
            }
            children = Some((first, last, at + 2));
            at += 2 + 4 * (usize::from(last) - usize::from(first) + 1);
        }
        let values = (word & VALUES != 0).then_some(at);
        Ok(Node {
            prefix,
            children,
            values,
        })
    }

    fn child(&self, n: &Node, c: u8) -> Result<Option<u32>, String> {
        match n.children {
            Some((first, last, at)) if (first..=last).contains(&c) => {
                let w = u32_at(self.b, at + 4 * (c - first) as usize)?;
                Ok((w != 0).then_some(w))
            }
            _ => Ok(None),
        }
    }

    fn values(&self, n: &Node, out: &mut Vec<(u32, String)>) -> Result<(), String> {
        let Some(mut at) = n.values else {
            return Ok(());
        };
        let count = u32_at(self.b, at)? as usize;
        at += 4;
        for _ in 0..count {
            let prio = u32_at(self.b, at)?;
            let (v, next) = cstr_at(self.b, at + 4)?;
            out.push((prio, crate::root::text_ref(v).into_owned()));
            at = next;
        }
        Ok(())
    }

    /// libkmod's `index_search`: the values of exactly `key` (no patterns),
    /// in priority order.
    pub fn search(&self, key: &str) -> Result<Vec<(u32, String)>, String> {
        let key = key.as_bytes();
        let mut out = Vec::new();
        let mut budget = self.b.len().max(64);
        let mut word = self.root;
        let mut i = 0usize;
        loop {
            budget = budget.checked_sub(1).ok_or("index nodes loop")?;
            let n = self.node(word)?;
            if !key[i.min(key.len())..].starts_with(n.prefix) {
                return Ok(out);
            }
            i += n.prefix.len();
            if i == key.len() {
                self.values(&n, &mut out)?;
                return Ok(sorted(out));
            }
            match self.child(&n, key[i])? {
                Some(c) => {
                    word = c;
                    i += 1;
                }
                None => return Ok(out),
            }
        }
    }

    /// libkmod's `index_searchwild`: the values of the key itself and of
    /// every stored pattern (with `*`, `?` or `[`) that fnmatches it, in
    /// priority order.
    pub fn search_wild(&self, key: &str) -> Result<Vec<(u32, String)>, String> {
        let key = key.as_bytes();
        let mut out = Vec::new();
        let mut budget = self.b.len().max(64);
        let mut word = self.root;
        let mut i = 0usize;
        loop {
            budget = budget.checked_sub(1).ok_or("index nodes loop")?;
            let n = self.node(word)?;
            for (j, &ch) in n.prefix.iter().enumerate() {
                if matches!(ch, b'*' | b'?' | b'[') {
                    let key_rest = &key[(i + j).min(key.len())..];
                    let mut pat = Vec::new();
                    self.all(word, j, &mut pat, key_rest, &mut out, &mut budget)?;
                    return Ok(sorted(out));
                }
                if key.get(i + j) != Some(&ch) {
                    return Ok(sorted(out));
                }
            }
            i += n.prefix.len();
            for wc in [b'*', b'?', b'['] {
                if let Some(c) = self.child(&n, wc)? {
                    let mut pat = vec![wc];
                    self.all(c, 0, &mut pat, &key[i..], &mut out, &mut budget)?;
                }
            }
            if i == key.len() {
                self.values(&n, &mut out)?;
                return Ok(sorted(out));
            }
            match self.child(&n, key[i])? {
                Some(c) => {
                    word = c;
                    i += 1;
                }
                None => return Ok(sorted(out)),
            }
        }
    }

    /// Every key below `word` (from prefix offset `j`), as patterns
    /// starting with `pat`, fnmatched against `subkey`.
    fn all(
        &self,
        word: u32,
        j: usize,
        pat: &mut Vec<u8>,
        subkey: &[u8],
        out: &mut Vec<(u32, String)>,
        budget: &mut usize,
    ) -> Result<(), String> {
        *budget = budget.checked_sub(1).ok_or("index nodes loop")?;
        let n = self.node(word)?;
        let keep = pat.len();
        pat.extend_from_slice(n.prefix.get(j..).unwrap_or_default());
        if let Some((first, last, _)) = n.children {
            for c in first..=last {
                if let Some(child) = self.child(&n, c)? {
                    pat.push(c);
                    self.all(child, 0, pat, subkey, out, budget)?;
                    pat.pop();
                }
            }
        }
        if n.values.is_some() && super::name::fnmatch_bytes(pat, subkey) {
            self.values(&n, out)?;
        }
        pat.truncate(keep);
        Ok(())
    }
}

fn sorted(mut v: Vec<(u32, String)>) -> Vec<(u32, String)> {
    v.sort_by_key(|(p, _)| *p);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_regressions_do_not_panic() {
        // Found by fuzz/run.sh: a child table from 0x00 to 0xff (256
        // entries) overflowed a u8 count.
        let b = include_bytes!("../../tests/fuzz-regressions/index_bin-child-table-0-255");
        // Refused with what is wrong, never a panic.
        assert_eq!(dump(b), Err("truncated child table".to_string()));
        let i = Index::open(b).expect("the header is valid");
        assert_eq!(
            i.search_wild("i40iw"),
            Err("offset 33036 is past the end".to_string())
        );
        let mut full = vec![0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1];
        full.extend((CHILDS | 12).to_be_bytes());
        full.extend([0x00, 0xff]);
        full.extend(std::iter::repeat_n(0u8, 4 * 256));
        assert_eq!(dump(&full).unwrap().len(), 0);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(dump(b"").is_err());
        assert!(dump(&[0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        // A node that is its own child.
        let mut b = vec![0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1];
        b.extend((CHILDS | 12).to_be_bytes());
        b.extend([b'a', b'a']);
        b.extend((CHILDS | 12).to_be_bytes());
        assert!(dump(&b).is_err());
    }
}
