//! The module configuration libkmod reads: modprobe.d files of the root (one
//! overlay of `{/etc,/run,/usr/local/lib,/usr/lib,/lib}/modprobe.d`), the
//! module directory's `modules.softdep`/`modules.weakdep` and rdma-initrd's
//! own modprobe.d file sorted in among them by name, and `--config` files
//! last.

use crate::error::Warning;
use crate::kmod::config::{self, Config};
use crate::overlay;
use crate::root::{read_capped, Root, MAX_CONFIG_FILE};
use crate::source::Source;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A configuration file as read, and what it means for an image.
#[derive(Debug, Clone)]
pub struct ModprobeFile {
    /// How messages and origins name it (its path in the root, the host path
    /// of a `--config` file, or `embedded:NAME`).
    pub label: String,
    pub source: Source,
    /// Where it goes in an image; None for depmod's own files (the image's
    /// depmod writes them).
    pub dest: Option<String>,
    /// Normalised module names its lines name.
    pub names: Vec<String>,
}

struct Pending {
    /// The name libkmod sorts by.
    sort: String,
    label: String,
    source: Source,
    dest: Option<String>,
}

/// Read and parse every configuration file, in libkmod's order; `own`:
/// rdma-initrd's own modprobe.d file sorted in (a root file of the same name
/// wins).
pub fn read(
    root: &Root,
    moddir: &Path,
    extra: &[PathBuf],
    own: Option<&'static crate::units::Embedded>,
    warnings: &mut Vec<Warning>,
) -> Result<(Config, Vec<ModprobeFile>)> {
    let mut files: Vec<Pending> = Vec::new();
    for f in overlay::walk(
        root,
        &overlay::root_dirs(config::MODPROBE_DIRS),
        config::is_config_name,
        warnings,
    )? {
        files.push(Pending {
            sort: f.name,
            label: f.inner.clone(),
            source: f.source,
            dest: Some(f.inner),
        });
    }
    for special in config::MODDIR_FILES {
        let p = moddir.join(special);
        if p.is_file() && !files.iter().any(|f| f.sort == *special) {
            files.push(Pending {
                sort: special.to_string(),
                label: p.display().to_string(),
                source: Source::Host(p),
                dest: None,
            });
        }
    }
    if let Some(own) = own {
        let own_name = own.dest.rsplit('/').next().unwrap_or(own.name);
        if !files.iter().any(|f| f.sort == own_name) {
            files.push(Pending {
                sort: own_name.to_string(),
                label: Source::Own(own).label(),
                source: Source::Own(own),
                dest: Some(own.dest.to_string()),
            });
        }
    }
    files.sort_by(|a, b| a.sort.as_bytes().cmp(b.sort.as_bytes()));
    // --config files go to /etc/modprobe.d under their own name.
    for p in extra {
        let base = p
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("extra.conf");
        files.push(Pending {
            sort: base.to_string(),
            label: p.display().to_string(),
            source: Source::Host(p.clone()),
            dest: Some(format!("/etc/modprobe.d/{base}")),
        });
    }
    let mut cfg = Config::default();
    let mut out = Vec::new();
    for f in files {
        let text = match &f.source {
            Source::Own(e) => e.text.to_string(),
            s => {
                let host = s.host().expect("a file source");
                let bytes = read_capped(host, MAX_CONFIG_FILE)
                    .with_context(|| host.display().to_string())?;
                crate::root::text(bytes)
            }
        };
        let names = cfg.parse_file(&text, &f.label, warnings);
        out.push(ModprobeFile {
            label: f.label,
            source: f.source,
            dest: f.dest,
            names,
        });
    }
    Ok((cfg, out))
}
