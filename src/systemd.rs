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

#[derive(Debug, Clone, Default)]
pub struct Unit {
    /// `(section, key, value)` in file order.
    pub entries: Vec<(String, String, String)>,
}

impl Unit {
    pub fn parse(text: &str) -> Unit {
        let mut entries = Vec::new();
        let mut section = String::new();
        let mut cont = String::new();
        for raw in text.lines() {
            let mut line = raw.trim().to_string();
            if !cont.is_empty() {
                line = format!("{cont} {line}");
                cont.clear();
            }
            if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
                continue;
            }
            if let Some(s) = line.strip_suffix('\\') {
                cont = s.to_string();
                continue;
            }
            if line.starts_with('[') && line.ends_with(']') {
                section = line[1..line.len() - 1].to_string();
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                entries.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
            }
        }
        Unit { entries }
    }

    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(_, k, _)| k == key)
            .map(|(_, _, v)| v.as_str())
    }

    /// Units named by `Wants=`/`Requires=`, instance specifiers expanded.
    pub fn wants(&self, instance: Option<&str>) -> Vec<String> {
        self.values("Wants")
            .chain(self.values("Requires"))
            .flat_map(|v| v.split_ascii_whitespace())
            .map(|u| expand(u, instance))
            .collect()
    }

    /// `ExecStart=`-family command lines (prefixes `-@:+!` removed), expanded.
    pub fn exec_lines(&self, instance: Option<&str>) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for key in ["ExecStartPre", "ExecStart", "ExecStartPost"] {
            for v in self.values(key) {
                let v = v.trim_start_matches(['-', '@', ':', '+', '!']);
                let words: Vec<String> = v
                    .split_ascii_whitespace()
                    .map(|w| expand(w, instance))
                    .collect();
                if !words.is_empty() {
                    out.push(words);
                }
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
}
