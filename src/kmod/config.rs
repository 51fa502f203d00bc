//! modprobe.d configuration (`alias`, `blacklist`, `options`, `install`,
//! `remove`, `softdep`, `weakdep`), parsed as libkmod does. depmod's
//! `modules.softdep` and `modules.weakdep` use the same grammar and are read
//! by the same parser, sorted by file name among the modprobe.d files.

use super::name::{normalize_alias, normalize_modname};
use crate::error::{InputError, Warning};
use serde::Serialize;

/// Where a configuration line came from (root-relative path, 1-based line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone)]
pub struct Softdep {
    /// fnmatch pattern for the module name.
    pub module: String,
    pub pre: Vec<String>,
    pub post: Vec<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Weakdep {
    pub module: String,
    pub deps: Vec<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub module: String,
    pub command: String,
    pub origin: Origin,
}

#[derive(Debug, Default, Clone)]
pub struct Config {
    /// (pattern, module, origin), in parse order.
    pub aliases: Vec<(String, String, Origin)>,
    pub blacklist: Vec<(String, Origin)>,
    pub options: Vec<Command>,
    pub install: Vec<Command>,
    pub remove: Vec<Command>,
    pub softdeps: Vec<Softdep>,
    pub weakdeps: Vec<Weakdep>,
}

/// modprobe.d directories, highest precedence first (a file name found in an
/// earlier directory hides the same name in later ones).
pub const MODPROBE_DIRS: &[&str] = &[
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
];

/// Whether libkmod reads a file of that name from a modprobe.d directory.
pub fn is_config_name(n: &str) -> bool {
    (n.ends_with(".conf") || n.ends_with(".alias")) && n.len() >= 6
}

/// The files libkmod reads from the module directory itself, sorted in among
/// the modprobe.d files by name.
pub const MODDIR_FILES: &[&str] = &["modules.softdep", "modules.weakdep"];

impl Config {
    /// Parse one file's text. Bad lines are skipped with a warning naming the
    /// file and line, as libkmod does.
    pub fn parse_file(
        &mut self,
        text: &str,
        file: &str,
        warnings: &mut Vec<Warning>,
    ) -> Vec<String> {
        let mut named: Vec<String> = Vec::new();
        for (lineno, line) in logical_lines(text) {
            let line: &str = &line;
            let origin = Origin {
                file: file.to_string(),
                line: lineno,
            };
            let mut it = line.split([' ', '\t']).filter(|s| !s.is_empty());
            let Some(cmd) = it.next() else { continue };
            let bad = |w: &mut Vec<Warning>, why: &str| {
                w.push(InputError::at(
                    file,
                    lineno,
                    format!("ignoring bad line starting with '{cmd}': {why}"),
                ))
            };
            match cmd {
                "alias" => {
                    let (Some(a), Some(m)) = (it.next(), it.next()) else {
                        bad(warnings, "expected 'alias PATTERN MODULE'");
                        continue;
                    };
                    match (normalize_alias(a), normalize_alias(m)) {
                        (Ok(a), Ok(m)) => {
                            named.push(m.clone());
                            self.aliases.push((a, m, origin));
                        }
                        _ => bad(warnings, "unmatched '['"),
                    }
                }
                "blacklist" => {
                    let Some(Ok(m)) = it.next().map(normalize_alias) else {
                        bad(warnings, "expected 'blacklist MODULE'");
                        continue;
                    };
                    named.push(m.clone());
                    self.blacklist.push((m, origin));
                }
                "options" | "install" | "remove" => {
                    let Some(Ok(m)) = it.next().map(normalize_alias) else {
                        bad(warnings, "expected a module name");
                        continue;
                    };
                    let rest = rest_after(line, 2);
                    if rest.is_empty() {
                        bad(warnings, "nothing after the module name");
                        continue;
                    }
                    named.push(m.clone());
                    let c = Command {
                        module: m,
                        command: rest.to_string(),
                        origin,
                    };
                    match cmd {
                        "options" => self.options.push(c),
                        "install" => self.install.push(c),
                        _ => self.remove.push(c),
                    }
                }
                "softdep" => {
                    let Some(Ok(m)) = it.next().map(normalize_alias) else {
                        bad(warnings, "expected 'softdep MODULE pre: ... post: ...'");
                        continue;
                    };
                    if rest_after(line, 2).is_empty() {
                        bad(warnings, "nothing after the module name");
                        continue;
                    }
                    // Tokens before the first pre:/post: are ignored, as libkmod does.
                    let (mut pre, mut post) = (Vec::new(), Vec::new());
                    let mut mode = 0u8;
                    for tok in it {
                        match tok {
                            "pre:" => mode = 1,
                            "post:" => mode = 2,
                            // A name no lookup can take (libkmod fails on it
                            // when it loads the module) is said here, once.
                            t if mode != 0 && normalize_alias(t).is_err() => {
                                let e = normalize_alias(t).unwrap_err();
                                bad(warnings, &format!("softdep '{t}': {e}"));
                            }
                            t if mode == 1 => pre.push(t.to_string()),
                            t if mode == 2 => post.push(t.to_string()),
                            _ => {}
                        }
                    }
                    named.push(m.clone());
                    named.extend(pre.iter().chain(post.iter()).map(|s| normalize_modname(s)));
                    self.softdeps.push(Softdep {
                        module: m,
                        pre,
                        post,
                        origin,
                    });
                }
                "weakdep" => {
                    let Some(Ok(m)) = it.next().map(normalize_alias) else {
                        bad(warnings, "expected 'weakdep MODULE DEPS...'");
                        continue;
                    };
                    let deps: Vec<String> = it.map(str::to_string).collect();
                    if deps.is_empty() {
                        bad(warnings, "nothing after the module name");
                        continue;
                    }
                    named.push(m.clone());
                    named.extend(deps.iter().map(|s| normalize_modname(s)));
                    self.weakdeps.push(Weakdep {
                        module: m,
                        deps,
                        origin,
                    });
                }
                "include" | "config" => {
                    warnings.push(InputError::at(
                        file,
                        lineno,
                        format!("command {cmd} is deprecated and not parsed anymore"),
                    ));
                }
                _ => bad(warnings, "unknown command"),
            }
        }
        named.sort();
        named.dedup();
        named
    }

    pub fn blacklisted(&self, module: &str) -> Option<&Origin> {
        self.blacklist
            .iter()
            .find(|(m, _)| m == module)
            .map(|(_, o)| o)
    }

    pub fn install_command(&self, module: &str) -> Option<&Command> {
        self.install.iter().find(|c| c.module == module)
    }
}

/// Lines with backslash-newline continuations joined, each with the number of
/// its first physical line; blank lines and `#` comments dropped.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0usize;
    for (i, raw) in text.lines().enumerate() {
        if cur.is_empty() {
            start = i + 1;
        }
        if let Some(stripped) = raw.strip_suffix('\\') {
            cur.push_str(stripped);
            continue;
        }
        cur.push_str(raw);
        let line = std::mem::take(&mut cur);
        let t = line.trim_start();
        if !t.is_empty() && !t.starts_with('#') {
            out.push((start, line));
        }
    }
    if !cur.trim().is_empty() && !cur.trim_start().starts_with('#') {
        out.push((start, cur));
    }
    out
}

/// The text after the first `n` whitespace-separated tokens, trimmed.
fn rest_after(line: &str, n: usize) -> &str {
    let mut s = line.trim_start_matches([' ', '\t']);
    for _ in 0..n {
        let end = s.find([' ', '\t']).unwrap_or(s.len());
        s = s[end..].trim_start_matches([' ', '\t']);
    }
    s.trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        let t = "# c\nblacklist ib-iser\noptions mlx4_core log_num_mgm_entry_size=-1\ninstall ib_qib modprobe -i ib_qib $CMDLINE_OPTS && /usr/lib/truescale-serdes.cmds start\nsoftdep rdma_rxe pre: crc32 \\\n  post: ib_uverbs\nsoftdep cifs gcm\nalias my-alias mlx5_ib\nweakdep a b c\nfrobnicate x\n";
        let mut c = Config::default();
        let mut w = Vec::new();
        let named = c.parse_file(t, "/etc/modprobe.d/x.conf", &mut w);
        assert_eq!(c.blacklisted("ib_iser").unwrap().line, 2);
        assert_eq!(c.options[0].command, "log_num_mgm_entry_size=-1");
        assert_eq!(
            c.install_command("ib_qib").unwrap().command,
            "modprobe -i ib_qib $CMDLINE_OPTS && /usr/lib/truescale-serdes.cmds start"
        );
        assert_eq!(c.softdeps[0].pre, vec!["crc32"]);
        assert_eq!(c.softdeps[0].post, vec!["ib_uverbs"]);
        assert_eq!(c.softdeps[0].origin.line, 5);
        assert!(c.softdeps[1].pre.is_empty() && c.softdeps[1].post.is_empty());
        assert_eq!(c.aliases[0].0, "my_alias");
        assert_eq!(c.weakdeps[0].deps, vec!["b", "c"]);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].line, Some(10));
        assert!(named.contains(&"ib_qib".to_string()) && named.contains(&"crc32".to_string()));
    }

    /// A softdep name that no lookup can take is said at its line, once,
    /// and left out; the other names stay.
    #[test]
    fn a_softdep_name_no_lookup_can_take_is_said_at_its_line() {
        let mut c = Config::default();
        let mut w = Vec::new();
        c.parse_file(
            "softdep mlx5_ib pre: ib[ ib_uverbs\n",
            "/etc/modprobe.d/s.conf",
            &mut w,
        );
        assert_eq!(c.softdeps[0].pre, vec!["ib_uverbs"]);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].line, Some(1));
        assert!(w[0].to_string().contains("softdep 'ib['"), "{}", w[0]);
    }
}
