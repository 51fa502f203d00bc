//! A system root: every path the tool reads is resolved inside it, following
//! symlinks the way the kernel would under `chroot ROOT` (absolute targets and
//! `..` never leave ROOT).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Symlinks followed in one resolution before giving up (the kernel's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

#[derive(Debug, Clone)]
pub struct Root {
    base: PathBuf,
    is_slash: bool,
    /// Host paths met on the way to others that are no symlink: a root does
    /// not change while the tool reads it, so each is looked at once.
    plain: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Root {
    pub fn new(base: impl Into<PathBuf>) -> Self {
        let base = base.into();
        let is_slash = base == Path::new("/");
        Root {
            base,
            is_slash,
            plain: Arc::default(),
        }
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn is_slash(&self) -> bool {
        self.is_slash
    }

    /// The host path of `p` (absolute inside the root) with every symlink
    /// resolved inside the root. Missing final components are kept as they
    /// are, so the result can be tested with `exists()`.
    pub fn resolve(&self, p: impl AsRef<Path>) -> io::Result<PathBuf> {
        let p = p.as_ref();
        if self.is_slash {
            return Ok(if p.is_absolute() {
                p.to_path_buf()
            } else {
                Path::new("/").join(p)
            });
        }
        let mut parts: Vec<std::ffi::OsString> = Vec::new();
        let mut pending: Vec<std::ffi::OsString> = components_rev(p);
        let mut links = 0usize;
        while let Some(c) = pending.pop() {
            if c == OsStr::new("..") {
                parts.pop();
                continue;
            }
            if c == OsStr::new(".") || c.is_empty() {
                continue;
            }
            let mut host = self.base.clone();
            host.extend(parts.iter());
            host.push(&c);
            let on_the_way = !pending.is_empty();
            if on_the_way && self.plain.lock().expect("root lock").contains(&host) {
                parts.push(c);
                continue;
            }
            match std::fs::symlink_metadata(&host) {
                Ok(md) if md.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::other(format!(
                            "too many levels of symbolic links at {}",
                            host.display()
                        )));
                    }
                    let target = std::fs::read_link(&host)?;
                    if target.is_absolute() {
                        parts.clear();
                    }
                    pending.extend(components_rev(&target));
                }
                Ok(_) => {
                    if on_the_way {
                        self.plain.lock().expect("root lock").insert(host);
                    }
                    parts.push(c)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    parts.push(c);
                    // The rest cannot contain symlinks that exist.
                    while let Some(rest) = pending.pop() {
                        if rest == OsStr::new("..") {
                            parts.pop();
                        } else if rest != OsStr::new(".") && !rest.is_empty() {
                            parts.push(rest);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let mut host = self.base.clone();
        host.extend(parts.iter());
        Ok(host)
    }

    /// The root-relative form of a resolved host path, for messages and plans
    /// (`/etc/x` rather than `/tmp/root/etc/x`).
    pub fn inner(&self, host: &Path) -> PathBuf {
        if self.is_slash {
            return host.to_path_buf();
        }
        match host.strip_prefix(&self.base) {
            Ok(rel) => Path::new("/").join(rel),
            Err(_) => host.to_path_buf(),
        }
    }

    /// Read a file inside the root; `Ok(None)` when it does not exist.
    pub fn read_opt(&self, p: impl AsRef<Path>) -> anyhow::Result<Option<Vec<u8>>> {
        let p = p.as_ref();
        let host = self
            .resolve(p)
            .map_err(|e| anyhow::anyhow!("{}: {}", self.display(p), e))?;
        match std::fs::read(&host) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("{}: {}", host.display(), e)),
        }
    }

    /// How to name a root path in a message: the host path.
    pub fn display(&self, p: &Path) -> String {
        if self.is_slash {
            p.display().to_string()
        } else {
            let rel = p.strip_prefix("/").unwrap_or(p);
            self.base.join(rel).display().to_string()
        }
    }

    /// Names in a directory inside the root (sorted), empty when it is missing.
    pub fn list_dir(&self, p: impl AsRef<Path>) -> anyhow::Result<Vec<String>> {
        let p = p.as_ref();
        let host = self
            .resolve(p)
            .map_err(|e| anyhow::anyhow!("{}: {}", self.display(p), e))?;
        list_host_dir(&host)
    }
}

/// Bytes read as text, invalid UTF-8 replaced (`String::from_utf8_lossy`),
/// without copying or going byte by byte when they are valid, as they
/// nearly always are.
pub fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`text`] of borrowed bytes.
pub fn text_ref(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `path` opened with its length, refusing files over `cap` bytes.
pub fn open_capped(path: &Path, cap: u64) -> io::Result<(std::fs::File, u64)> {
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{len} bytes is more than the {cap} this file can reasonably be; refusing to read it"),
        ));
    }
    Ok((f, len))
}

/// Read a whole host file, refusing one larger than `cap` bytes: inputs
/// that are read whole (depmod's text files, rules, confs) are small in
/// every real system, and a hostile one must not exhaust memory.
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let (f, len) = open_capped(path, cap)?;
    let mut buf = Vec::with_capacity(len as usize);
    f.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("grew past {cap} bytes while being read"),
        ));
    }
    Ok(buf)
}

/// Cap for depmod's text files (a real modules.dep is well under 1 MiB).
pub const MAX_INDEX_FILE: u64 = 16 << 20;
/// Cap for configuration files (rules, modprobe.d, units, confs, profiles).
pub const MAX_CONFIG_FILE: u64 = 4 << 20;

/// Names in a host directory (sorted, bytewise), empty when it is missing or
/// not a directory.
pub fn list_host_dir(host: &Path) -> anyhow::Result<Vec<String>> {
    let rd = match std::fs::read_dir(host) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20) => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(anyhow::anyhow!("{}: {}", host.display(), e)),
    };
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| anyhow::anyhow!("{}: {}", host.display(), e))?;
        if let Some(n) = ent.file_name().to_str() {
            names.push(n.to_string());
        }
    }
    names.sort();
    Ok(names)
}

fn components_rev(p: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/lib/udev")).unwrap();
        std::fs::write(r.join("usr/lib/udev/x"), "inside").unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("/etc/passwd", r.join("abs")).unwrap();
        symlink("../../../../../../etc/passwd", r.join("up")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        let root = Root::new(r);
        assert_eq!(
            root.resolve("/lib/udev/x").unwrap(),
            r.join("usr/lib/udev/x")
        );
        assert_eq!(root.resolve("/abs").unwrap(), r.join("etc/passwd"));
        assert_eq!(root.resolve("/up").unwrap(), r.join("etc/passwd"));
        assert!(root.read_opt("/abs").unwrap().is_none());
        assert!(root.resolve("/loop1").is_err());
        assert_eq!(
            root.inner(&r.join("usr/lib/udev/x")),
            Path::new("/usr/lib/udev/x")
        );
    }
}
