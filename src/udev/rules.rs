//! udev rules files: `KEY[{attr}]OP"value"` tokens, comma separated, with
//! backslash-newline continuations and `#` comments, and the directories
//! udev reads them from.

use crate::error::{InputError, Warning};
use crate::source::Source;
use std::collections::HashMap;

/// Rules directories, highest precedence first: a file name in an earlier
/// directory hides the same name in later ones.
pub const RULES_DIRS: &[&str] = &[
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/usr/local/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
    "/lib/udev/rules.d",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Match,
    Nomatch,
    Assign,
    Add,
    Remove,
    AssignFinal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub key: String,
    pub attr: Option<String>,
    pub op: Op,
    pub value: String,
}

impl Token {
    pub fn is_match(&self) -> bool {
        matches!(self.op, Op::Match | Op::Nomatch)
    }
}

#[derive(Debug, Clone)]
pub struct RuleLine {
    pub line: usize,
    pub tokens: Vec<Token>,
}

#[derive(Debug, Clone)]
pub struct RulesFile {
    /// Base name (what precedence is decided on).
    pub name: String,
    /// Its path inside the root (or image).
    pub path: String,
    pub source: Source,
    pub lines: Vec<RuleLine>,
    pub labels: HashMap<String, usize>,
}

/// Parse a rules file. Lines udev would reject (unbalanced quotes, a key
/// without operator) are skipped with a warning naming the file and line.
pub fn parse(text: &str, file: &str, warnings: &mut Vec<Warning>) -> Vec<RuleLine> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    let physical: Vec<&str> = text.lines().collect();
    for (i, raw) in physical.iter().enumerate() {
        if cur.is_empty() {
            start = i + 1;
            let t = raw.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
        }
        if let Some(s) = raw.strip_suffix('\\') {
            cur.push_str(s);
            cur.push(' ');
            continue;
        }
        cur.push_str(raw);
        let line = std::mem::take(&mut cur);
        match tokenize(&line) {
            Ok(tokens) if !tokens.is_empty() => out.push(RuleLine {
                line: start,
                tokens,
            }),
            Ok(_) => {}
            Err(e) => warnings.push(InputError::at(
                file,
                start,
                format!("invalid rule, skipped: {e}"),
            )),
        }
    }
    if !cur.trim().is_empty() {
        warnings.push(InputError::at(
            file,
            start,
            "line continuation at end of file",
        ));
    }
    out
}

fn tokenize(line: &str) -> Result<Vec<Token>, String> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut tokens = Vec::new();
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let key_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let key = &line[key_start..i];
        if key.is_empty() {
            return Err(format!("expected a key at column {}", i + 1));
        }
        let mut attr = None;
        if i < b.len() && b[i] == b'{' {
            let close = line[i..].find('}').ok_or("unterminated '{'")? + i;
            attr = Some(line[i + 1..close].to_string());
            i = close + 1;
        }
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let op = match &b[i..] {
            [b'=', b'=', ..] => (Op::Match, 2),
            [b'!', b'=', ..] => (Op::Nomatch, 2),
            [b'+', b'=', ..] => (Op::Add, 2),
            [b'-', b'=', ..] => (Op::Remove, 2),
            [b':', b'=', ..] => (Op::AssignFinal, 2),
            [b'=', ..] => (Op::Assign, 1),
            _ => return Err(format!("key '{key}' has no operator")),
        };
        i += op.1;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        // e"..." strings take C escapes; plain strings only \" and \\.
        let escapes = i < b.len() && b[i] == b'e';
        if escapes {
            i += 1;
        }
        if i >= b.len() || b[i] != b'"' {
            return Err(format!("value of '{key}' is not quoted"));
        }
        i += 1;
        let mut value = String::new();
        let mut closed = false;
        while i < b.len() {
            let c = b[i];
            if c == b'\\' && i + 1 < b.len() && (b[i + 1] == b'"' || b[i + 1] == b'\\') {
                value.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == b'"' {
                closed = true;
                i += 1;
                break;
            }
            // Push the whole UTF-8 character.
            let ch = line[i..].chars().next().unwrap_or('\u{fffd}');
            value.push(ch);
            i += ch.len_utf8();
        }
        if !closed {
            return Err(format!("unbalanced quotes in the value of '{key}'"));
        }
        tokens.push(Token {
            key: key.to_string(),
            attr,
            op: op.0,
            value,
        });
    }
    Ok(tokens)
}

impl RulesFile {
    pub fn from_text(
        name: String,
        path: String,
        source: Source,
        text: &str,
        warnings: &mut Vec<Warning>,
    ) -> Self {
        let lines = parse(text, &path, warnings);
        let mut labels = HashMap::new();
        for (idx, l) in lines.iter().enumerate() {
            for t in &l.tokens {
                if t.key == "LABEL" {
                    labels.entry(t.value.clone()).or_insert(idx);
                }
            }
        }
        RulesFile {
            name,
            path,
            source,
            lines,
            labels,
        }
    }

    /// True when a line imports the builtin that sets ID_NET_DRIVER.
    pub fn sets_net_driver(&self) -> bool {
        self.lines.iter().flat_map(|l| &l.tokens).any(|t| {
            (t.key == "IMPORT"
                && t.attr.as_deref() == Some("builtin")
                && matches!(
                    t.value.split_ascii_whitespace().next(),
                    Some("net_setup_link" | "net_driver")
                ))
                || (t.key == "ENV" && t.attr.as_deref() == Some("ID_NET_DRIVER") && !t.is_match())
        })
    }

    /// True when a line matches on ENV{ID_NET_DRIVER}.
    pub fn matches_net_driver(&self) -> bool {
        self.lines
            .iter()
            .flat_map(|l| &l.tokens)
            .any(|t| t.key == "ENV" && t.attr.as_deref() == Some("ID_NET_DRIVER") && t.is_match())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_rdma_core_lines() {
        let mut w = Vec::new();
        let t = "# comment\nACTION==\"remove\", GOTO=\"end\"\nENV{ID_NET_DRIVER}==\"mlx5_core\", RUN{builtin}+=\"kmod load mlx5_ib\"\nSUBSYSTEM==\"infiniband\", \\\n  PROGRAM=\"rdma_rename %k NAME_FALLBACK\"\nKERNEL==\"a\", ENV{X}=\"unbalanced\nLABEL=\"end\"\n";
        let lines = parse(t, "x.rules", &mut w);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].tokens[0].attr.as_deref(), Some("ID_NET_DRIVER"));
        assert_eq!(lines[1].tokens[1].op, Op::Add);
        assert_eq!(lines[1].tokens[1].value, "kmod load mlx5_ib");
        assert_eq!(lines[2].line, 4);
        assert_eq!(lines[2].tokens[1].value, "rdma_rename %k NAME_FALLBACK");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].line, Some(6));
        assert!(w[0].msg.contains("unbalanced quotes"));
    }
}
