//! Module and alias names as libkmod treats them, and glibc-compatible
//! `fnmatch(3)` with flags 0 (what libkmod and udev use for patterns).

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    UnmatchedBracket,
    Empty,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameError::UnmatchedBracket => f.write_str("unmatched '[' in name"),
            NameError::Empty => f.write_str("empty name"),
        }
    }
}

/// libkmod's `alias_normalize` / config `underscores`: `-` becomes `_`,
/// except inside `[...]`; an unclosed `[` is an error.
pub fn normalize_alias(s: &str) -> Result<String, NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                out.push('[');
                let mut closed = false;
                for d in chars.by_ref() {
                    out.push(d);
                    if d == ']' {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(NameError::UnmatchedBracket);
                }
            }
            '-' => out.push('_'),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// libkmod's `modname_normalize`: every `-` becomes `_`, the name ends at the
/// first `.` (so `foo-bar.ko.xz` gives `foo_bar`).
pub fn normalize_modname(s: &str) -> String {
    let end = s.find('.').unwrap_or(s.len());
    // Byte for byte (both are ASCII, so the text stays UTF-8): one copy,
    // no searching for the pattern (names are made from every path in the
    // module walk).
    let mut b = s.as_bytes()[..end].to_vec();
    for c in &mut b {
        if *c == b'-' {
            *c = b'_';
        }
    }
    String::from_utf8(b).expect("'-' to '_' keeps UTF-8")
}

/// The module name of a path as depmod names it: its basename, normalised.
pub fn modname_from_path(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    normalize_modname(base)
}

/// True when `s` contains a glob metacharacter fnmatch would interpret.
pub fn has_glob(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// `fnmatch(pattern, text, 0)` as glibc implements it for the bytes kmod and
/// udev feed it: `*` and `?` match any byte including `/`, `[...]` with `!`
/// or `^` negation, ranges and `[:class:]`, and `\` escapes the next byte.
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    fnmatch_bytes(pattern.as_bytes(), text.as_bytes())
}

pub fn fnmatch_bytes(p: &[u8], t: &[u8]) -> bool {
    // A pattern that starts with a plain byte matches only texts that start
    // with it: answered at once (most softdep and weakdep lines name one
    // module, and each module is held against all of them).
    if let Some(&c) = p.first() {
        if !matches!(c, b'*' | b'?' | b'[' | b'\\') && t.first() != Some(&c) {
            return false;
        }
    }
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after star, text index).
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    while pi < p.len() && p[pi] == b'*' {
                        pi += 1;
                    }
                    if pi == p.len() {
                        return true;
                    }
                    star = Some((pi, ti));
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = match_bracket(p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == b'[' {
                        // An unterminated bracket matches a literal '['.
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Match one byte against the bracket expression starting at `p[start] == '['`.
/// Returns (matched, index after the closing `]`) or None when unterminated.
fn match_bracket(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && (p[i] == b'!' || p[i] == b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        if i >= p.len() {
            return None;
        }
        let b = p[i];
        if b == b']' && !first {
            i += 1;
            break;
        }
        first = false;
        if b == b'[' && i + 1 < p.len() && p[i + 1] == b':' {
            if let Some(end) = find_class_end(p, i + 2) {
                let class = &p[i + 2..end];
                if class_matches(class, c) {
                    matched = true;
                }
                i = end + 2;
                continue;
            }
        }
        let lo = if b == b'\\' && i + 1 < p.len() {
            i += 1;
            p[i]
        } else {
            b
        };
        i += 1;
        if i + 1 < p.len() && p[i] == b'-' && p[i + 1] != b']' {
            let mut hi = p[i + 1];
            i += 2;
            if hi == b'\\' && i < p.len() {
                hi = p[i];
                i += 1;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
        } else if lo == c {
            matched = true;
        }
    }
    Some((matched != negate, i))
}

fn find_class_end(p: &[u8], from: usize) -> Option<usize> {
    let mut j = from;
    while j + 1 < p.len() {
        if p[j] == b':' && p[j + 1] == b']' {
            return Some(j);
        }
        if !p[j].is_ascii_alphabetic() {
            return None;
        }
        j += 1;
    }
    None
}

fn class_matches(class: &[u8], c: u8) -> bool {
    match class {
        b"alpha" => c.is_ascii_alphabetic(),
        b"digit" => c.is_ascii_digit(),
        b"alnum" => c.is_ascii_alphanumeric(),
        b"upper" => c.is_ascii_uppercase(),
        b"lower" => c.is_ascii_lowercase(),
        b"space" => c.is_ascii_whitespace() || c == 0x0b,
        b"xdigit" => c.is_ascii_hexdigit(),
        b"punct" => c.is_ascii_punctuation(),
        b"print" => (0x20..0x7f).contains(&c),
        b"graph" => (0x21..0x7f).contains(&c),
        b"cntrl" => c < 0x20 || c == 0x7f,
        b"blank" => c == b' ' || c == b'\t',
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_libkmod() {
        assert_eq!(
            normalize_alias("pci:v000015B3d*sv*sd*bc*sc*i*").unwrap(),
            "pci:v000015B3d*sv*sd*bc*sc*i*"
        );
        assert_eq!(normalize_alias("crypto-crc32c").unwrap(), "crypto_crc32c");
        assert_eq!(normalize_alias("a-[x-y]-b").unwrap(), "a_[x-y]_b");
        assert_eq!(normalize_alias("a[x-y"), Err(NameError::UnmatchedBracket));
        assert_eq!(normalize_modname("ib-ipoib.ko.xz"), "ib_ipoib");
        assert_eq!(
            modname_from_path("kernel/drivers/a/mlx5-ib.ko.zst"),
            "mlx5_ib"
        );
    }

    #[test]
    fn fnmatch_matches_glibc_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "a/b", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[abc]x", "bx", true),
            ("[!abc]x", "bx", false),
            ("[^abc]x", "dx", true),
            ("[a-c]", "b", true),
            ("[a-c]", "d", false),
            ("[]a]", "]", true),
            ("[!]a]", "b", true),
            ("[[:digit:]]z", "7z", true),
            ("[[:digit:]]z", "xz", false),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("[ab", "[ab", true),
            (
                "pci:v000015B3d0000101[3-9]sv*sd*bc*sc*i*",
                "pci:v000015B3d00001017sv000015B3sd00000020bc02sc00i00",
                true,
            ),
            (
                "*/infiniband/rxe*",
                "/devices/virtual/net/eth0/infiniband/rxe0",
                true,
            ),
            (
                "*/infiniband/rxe*",
                "/devices/pci0000:00/infiniband/mlx5_0",
                false,
            ),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(fnmatch(p, t), *want, "fnmatch({p:?}, {t:?})");
        }
    }
}
