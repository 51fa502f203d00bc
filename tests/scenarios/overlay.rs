//! Building a scenario's trees on disk: laying a directory over another
//! (symlinks kept as symlinks, modes kept), and the `tree-patch` commands
//! that break a copy of the generated module tree for bad-input cases.

use std::path::Path;

/// Copy everything under `from` into `to` (created if missing), replacing
/// files and links of the same name.
pub fn lay(from: &Path, to: &Path) -> Result<(), String> {
    let fail = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(to).map_err(|e| fail(to, e))?;
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .map_err(|e| fail(from, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(from, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let kind = e.file_type().map_err(|err| fail(&src, err))?;
        if kind.is_dir() {
            lay(&src, &dst)?;
            continue;
        }
        if dst.symlink_metadata().is_ok() {
            std::fs::remove_file(&dst).map_err(|err| fail(&dst, err))?;
        }
        if kind.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|err| fail(&src, err))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|err| fail(&dst, err))?;
        } else {
            std::fs::copy(&src, &dst).map_err(|err| fail(&src, err))?;
        }
    }
    Ok(())
}

/// Apply a `tree-patch` file to the module directory `moddir`. One command
/// a line (`#` comments and blank lines ignored), PATH relative to
/// `moddir`, TEXT with `\n`, `\t` and `\\` escapes:
///   write PATH TEXT       replace the file's contents
///   append PATH TEXT      add to the end of the file
///   truncate PATH BYTES   keep the first BYTES bytes
///   remove PATH           delete the file
pub fn patch(moddir: &Path, script: &str) -> Result<(), String> {
    for (i, line) in script.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        command(moddir, line).map_err(|e| format!("tree-patch:{}: {e}", i + 1))?;
    }
    Ok(())
}

fn command(moddir: &Path, line: &str) -> Result<(), String> {
    let mut parts = line.splitn(3, ' ');
    let (verb, rel, arg) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
    let rel = rel.ok_or("expected a PATH")?;
    if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
        return Err(format!("'{rel}' leaves the module directory"));
    }
    let path = moddir.join(rel);
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    match verb {
        Some("write") => std::fs::write(&path, unescape(arg)).map_err(io),
        Some("append") => {
            let mut bytes = std::fs::read(&path).map_err(io)?;
            bytes.extend_from_slice(unescape(arg).as_bytes());
            std::fs::write(&path, bytes).map_err(io)
        }
        Some("truncate") => {
            let n: usize = arg.trim().parse().map_err(|_| "expected BYTES")?;
            let bytes = std::fs::read(&path).map_err(io)?;
            std::fs::write(&path, &bytes[..n.min(bytes.len())]).map_err(io)
        }
        Some("remove") => std::fs::remove_file(&path).map_err(io),
        _ => Err(format!("unknown command in '{line}'")),
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_commands() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "0123456789").unwrap();
        std::fs::write(d.path().join("b"), "x").unwrap();
        patch(
            d.path(),
            "# c\nappend a tail\\n\ntruncate a 4\nwrite c one\\ttwo\\n\nremove b\n",
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("a")).unwrap(), "0123");
        assert_eq!(
            std::fs::read_to_string(d.path().join("c")).unwrap(),
            "one\ttwo\n"
        );
        assert!(!d.path().join("b").exists());
        assert!(patch(d.path(), "write ../x y\n").is_err());
        assert!(patch(d.path(), "frobnicate a\n").is_err());
    }
}
