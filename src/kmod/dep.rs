//! `modules.dep`: `path: dep-path dep-path ...`, one module a line, written by
//! depmod with each module's full dependency list (deepest last).

use super::name::modname_from_path;
use crate::error::InputError;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct DepEntry {
    /// Path as written (relative to the module directory, or absolute).
    pub path: String,
    /// Dependency paths in file order.
    pub deps: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct ModulesDep {
    pub entries: Vec<DepEntry>,
    by_name: HashMap<String, usize>,
}

/// One line of modules.dep (also a value of modules.dep.bin); None for a
/// blank or comment line.
pub fn parse_line(line: &str, file: &str, lineno: usize) -> Result<Option<DepEntry>, InputError> {
    let line = line.trim_end();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let Some((path, rest)) = line.split_once(':') else {
        return Err(InputError::at(
            file,
            lineno,
            "expected 'path: dependencies'",
        ));
    };
    if path.is_empty() || path.contains(char::is_whitespace) {
        return Err(InputError::at(
            file,
            lineno,
            format!("bad module path '{}'", shown(path)),
        ));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(InputError::at(
            file,
            lineno,
            format!("module path '{}' leaves the module directory", shown(path)),
        ));
    }
    if !is_module_file(path) {
        return Err(InputError::at(
            file,
            lineno,
            format!(
                "'{}' is not a module file (.ko, .ko.xz, .ko.zst, .ko.gz)",
                shown(path)
            ),
        ));
    }
    let mut deps = Vec::new();
    for d in rest.split_ascii_whitespace() {
        if !is_module_file(d) || d.split('/').any(|c| c == "..") {
            return Err(InputError::at(
                file,
                lineno,
                format!("dependency '{}' is not a module file", shown(d)),
            ));
        }
        deps.push(d.to_string());
    }
    Ok(Some(DepEntry {
        path: path.to_string(),
        deps,
    }))
}

impl ModulesDep {
    pub fn parse(text: &str, file: &str) -> Result<Self, InputError> {
        let mut entries = Vec::with_capacity(text.len() / 80);
        let mut by_name = HashMap::with_capacity(text.len() / 80);
        for (i, line) in text.lines().enumerate() {
            let Some(e) = parse_line(line, file, i + 1)? else {
                continue;
            };
            // depmod writes each module once; like libkmod's index, the first wins.
            by_name
                .entry(modname_from_path(&e.path))
                .or_insert(entries.len());
            entries.push(e);
        }
        Ok(ModulesDep { entries, by_name })
    }

    pub fn get(&self, name: &str) -> Option<&DepEntry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(|s| s.as_str())
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// A token as messages show it: at most 80 characters.
fn shown(t: &str) -> String {
    match t.char_indices().nth(80) {
        Some((i, _)) => format!("{}... ({} bytes)", &t[..i], t.len()),
        None => t.to_string(),
    }
}

fn is_module_file(p: &str) -> bool {
    let base = p.rsplit('/').next().unwrap_or(p);
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|ext| base.len() > ext.len() && base.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_names() {
        let t = "kernel/drivers/infiniband/hw/mlx5/mlx5_ib.ko.xz: kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko.xz kernel/drivers/infiniband/core/ib_uverbs.ko.xz\nkernel/a/b-c.ko:\n";
        let d = ModulesDep::parse(t, "modules.dep").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.get("mlx5_ib").unwrap().deps.len(), 2);
        assert_eq!(d.get("b_c").unwrap().path, "kernel/a/b-c.ko");
        assert!(d.get("b-c").is_none());
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let e =
            ModulesDep::parse("kernel/a.ko:\nthis line is broken\n", "/x/modules.dep").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/x/modules.dep:2: expected 'path: dependencies'"
        );
        let e = ModulesDep::parse("kernel/a.ko: ../../etc/shadow\n", "m").unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = ModulesDep::parse("../../x.ko:\n", "m").unwrap_err();
        assert!(e.msg.contains("leaves the module directory"));
    }
}
