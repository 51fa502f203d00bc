//! systemd unit files (the keys that matter here: `Wants=`, `Requires=`,
//! `ExecStart=`) and `modules-load.d`-format lists, which is what
//! `/etc/rdma/modules/*.conf` are.

use crate::error::InputError;

pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

pub mod lookup;

/// One assignment of a unit file or drop-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub section: String,
    pub key: String,
    pub value: String,
    /// The file it is in (path inside the root) and its line.
    pub file: String,
    pub line: usize,
}

/// A unit as systemd loads it: the unit file's assignments, then each
/// drop-in's, in order.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub entries: Vec<Entry>,
}

/// Keys whose empty assignment does not reset the list: dependencies
/// (systemd's `config_parse_unit_deps` only adds; systemd.unit(5): they
/// "cannot be reset to an empty list").
const DEPENDENCY_KEYS: &[&str] = &[
    "Wants",
    "Requires",
    "Requisite",
    "BindsTo",
    "PartOf",
    "Upholds",
    "Conflicts",
    "Before",
    "After",
    "OnFailure",
    "OnSuccess",
    "PropagatesReloadTo",
    "ReloadPropagatedFrom",
    "PropagatesStopTo",
    "StopPropagatedFrom",
    "JoinsNamespaceOf",
];

/// The `ExecStart=` family the plan reads, in the order systemd runs them.
pub const EXEC_KEYS: &[&str] = &["ExecStartPre", "ExecStart", "ExecStartPost"];

/// A command line of an `Exec*=` key, with where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecLine {
    pub key: String,
    /// Prefixes (`-@:+!|`) removed, specifiers of the instance expanded.
    pub words: Vec<String>,
    pub file: String,
    pub line: usize,
}

impl Unit {
    /// A unit file's text (`file`: its path, for provenance).
    pub fn parse_file(text: &str, file: &str) -> Unit {
        let mut entries = Vec::new();
        let mut section = String::new();
        let mut cont: Option<(String, usize)> = None;
        for (i, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            let (line, lineno) = match cont.take() {
                // Comment lines inside a continuation are skipped (systemd
                // does so too).
                Some((c, n)) if trimmed.starts_with('#') || trimmed.starts_with(';') => {
                    cont = Some((c, n));
                    continue;
                }
                Some((c, n)) => (format!("{c} {trimmed}"), n),
                None => (trimmed.to_string(), i + 1),
            };
            if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
                continue;
            }
            if let Some(s) = line.strip_suffix('\\') {
                cont = Some((s.to_string(), lineno));
                continue;
            }
            if line.starts_with('[') && line.ends_with(']') {
                section = line[1..line.len() - 1].to_string();
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                entries.push(Entry {
                    section: section.clone(),
                    key: k.trim().to_string(),
                    value: v.trim().to_string(),
                    file: file.to_string(),
                    line: lineno,
                });
            }
        }
        if let Some((c, n)) = cont {
            if let Some((k, v)) = c.split_once('=') {
                entries.push(Entry {
                    section,
                    key: k.trim().to_string(),
                    value: v.trim().to_string(),
                    file: file.to_string(),
                    line: n,
                });
            }
        }
        Unit { entries }
    }

    /// A unit's text whose file does not matter (tests, rdma-initrd's own).
    pub fn parse(text: &str) -> Unit {
        Unit::parse_file(text, "")
    }

    /// This unit with `dropin`'s assignments applied after its own.
    pub fn extend(&mut self, dropin: Unit) {
        self.entries.extend(dropin.entries);
    }

    /// The assignments of `key` in effect: for list keys other than
    /// dependencies an empty assignment empties the list (systemd's
    /// `config_parse_exec`, `config_parse_strv`, ...); an empty dependency
    /// assignment adds nothing.
    pub fn effective<'a>(&'a self, key: &str) -> Vec<&'a Entry> {
        let resets = !DEPENDENCY_KEYS.contains(&key);
        let mut out: Vec<&Entry> = Vec::new();
        for e in self.entries.iter().filter(|e| e.key == key) {
            if e.value.is_empty() {
                if resets {
                    out.clear();
                }
                continue;
            }
            out.push(e);
        }
        out
    }

    /// The values of `key` in effect (see [`Unit::effective`]).
    pub fn values<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.effective(key).into_iter().map(|e| e.value.as_str())
    }

    /// Units named by `Wants=`/`Requires=`, instance specifiers expanded.
    pub fn wants(&self, instance: Option<&str>) -> Vec<String> {
        self.values("Wants")
            .chain(self.values("Requires"))
            .flat_map(|v| v.split_ascii_whitespace())
            .map(|u| expand(u, instance))
            .collect()
    }

    /// `ExecStartPre=`, `ExecStart=`, `ExecStartPost=` command lines in
    /// effect, with where each was set.
    pub fn exec(&self, instance: Option<&str>) -> Vec<ExecLine> {
        let mut out = Vec::new();
        for key in EXEC_KEYS {
            for e in self.effective(key) {
                let v = e.value.trim_start_matches(['-', '@', ':', '+', '!', '|']);
                let words: Vec<String> = v
                    .split_ascii_whitespace()
                    .map(|w| expand(w, instance))
                    .collect();
                if !words.is_empty() {
                    out.push(ExecLine {
                        key: key.to_string(),
                        words,
                        file: e.file.clone(),
                        line: e.line,
                    });
                }
            }
        }
        out
    }

    /// The command lines of [`Unit::exec`], words only.
    pub fn exec_lines(&self, instance: Option<&str>) -> Vec<Vec<String>> {
        self.exec(instance).into_iter().map(|l| l.words).collect()
    }

    /// The keys each file sets (in effect or not), for saying what a
    /// drop-in changes: `file` -> keys in order, each once.
    pub fn keys_of(&self, file: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.entries.iter().filter(|e| e.file == file) {
            let k = if e.value.is_empty() && DEPENDENCY_KEYS.contains(&e.key.as_str()) {
                format!("{}= (empty: adds nothing)", e.key)
            } else if e.value.is_empty() {
                format!("{}= (empty: resets)", e.key)
            } else {
                e.key.clone()
            };
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }
}

fn expand(s: &str, instance: Option<&str>) -> String {
    match instance {
        Some(i) => s.replace("%I", i).replace("%i", i),
        None => s.to_string(),
    }
}

/// rdma-core's templated unit that loads `/etc/rdma/modules/PROTO.conf`.
pub const LOADER_TEMPLATE: &str = "rdma-load-modules@.service";

/// The instance of the loader for one protocol's list.
pub fn loader_unit(protocol: &str) -> String {
    format!("rdma-load-modules@{protocol}.service")
}

/// Whether a command runs systemd-modules-load (which loads the lists it is
/// given).
pub fn is_modules_load(command: &str) -> bool {
    command.rsplit('/').next() == Some("systemd-modules-load")
}

/// `name@instance.service` -> (`name@.service`, Some(instance)).
pub fn split_instance(unit: &str) -> (String, Option<String>) {
    if let Some((prefix, rest)) = unit.split_once('@') {
        if let Some(dot) = rest.rfind('.') {
            let inst = &rest[..dot];
            if !inst.is_empty() {
                return (format!("{prefix}@{}", &rest[dot..]), Some(inst.to_string()));
            }
        }
    }
    (unit.to_string(), None)
}

/// A `modules-load.d` list: one module per line, `#`/`;` comments. Names with
/// a path separator, `..`, glob characters or whitespace are refused: they can
/// only be mistakes or attempts to reach outside the module tree.
pub fn parse_modules_list(text: &str, file: &str) -> Result<Vec<(String, usize)>, InputError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if l.contains('/')
            || l.contains("..")
            || l.contains(char::is_whitespace)
            || l.starts_with('-')
        {
            return Err(InputError::at(
                file,
                i + 1,
                format!("'{l}' is not a module name"),
            ));
        }
        if crate::kmod::name::has_glob(l) {
            return Err(InputError::at(
                file,
                i + 1,
                format!("'{l}' is a glob, not a module name"),
            ));
        }
        out.push((l.to_string(), i + 1));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_and_lists() {
        let u = Unit::parse("[Unit]\nWants=rdma-load-modules@rdma.service\n[Service]\nExecStart=-/lib/systemd/systemd-modules-load /etc/rdma/modules/%I.conf\n");
        assert_eq!(u.wants(None), vec!["rdma-load-modules@rdma.service"]);
        assert_eq!(
            u.exec_lines(Some("roce")),
            vec![vec![
                "/lib/systemd/systemd-modules-load".to_string(),
                "/etc/rdma/modules/roce.conf".to_string()
            ]]
        );
        assert_eq!(
            split_instance("rdma-load-modules@roce.service"),
            ("rdma-load-modules@.service".into(), Some("roce".into()))
        );
        assert_eq!(
            split_instance("rdma-hw.target"),
            ("rdma-hw.target".into(), None)
        );
        let l = parse_modules_list("# x\nib_iser\n; y\n  rdma_ucm  \n", "rdma.conf").unwrap();
        assert_eq!(l, vec![("ib_iser".into(), 2), ("rdma_ucm".into(), 4)]);
        let e =
            parse_modules_list("ok\n../../etc/shadow\n", "/etc/rdma/modules/x.conf").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/rdma/modules/x.conf:2: '../../etc/shadow' is not a module name"
        );
        assert!(parse_modules_list("/abs/path\n", "f").is_err());
        assert!(parse_modules_list("mlx*\n", "f").is_err());
    }

    #[test]
    fn dropins_apply_with_systemd_assignment_semantics() {
        let mut u = Unit::parse_file(
            "[Unit]\nWants=a.service\n[Service]\nExecStart=/bin/x %I\nDocumentation=file:/etc/a\n",
            "/u",
        );
        u.extend(Unit::parse_file(
            "[Unit]\nWants=\nWants=b.service\nDocumentation=\n[Service]\nExecStart=\nExecStart=/bin/y %i\nExecStartPost=/bin/z\n",
            "/d.conf",
        ));
        assert_eq!(u.wants(None), ["a.service", "b.service"]);
        assert_eq!(u.values("Documentation").count(), 0);
        let e = u.exec(Some("rdma"));
        let got: Vec<(&str, &str, &str, usize)> = e
            .iter()
            .map(|l| {
                (
                    l.key.as_str(),
                    l.words.join(" ").leak() as &str,
                    l.file.as_str(),
                    l.line,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("ExecStart", "/bin/y rdma", "/d.conf", 7),
                ("ExecStartPost", "/bin/z", "/d.conf", 8)
            ]
        );
        assert_eq!(
            u.keys_of("/d.conf"),
            [
                "Wants= (empty: adds nothing)",
                "Wants",
                "Documentation= (empty: resets)",
                "ExecStart= (empty: resets)",
                "ExecStart",
                "ExecStartPost"
            ]
        );
    }
}
