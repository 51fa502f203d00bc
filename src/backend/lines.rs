//! The line protocol the generator hooks read (`plan --lines --extract
//! DIR`): one plan, one call, every line a thing to add to the image with
//! everything the generator's own call needs, so that a hook only
//! translates (no paths rebuilt, no decisions):
//!
//! ```text
//! module NAME                      a module, in load order
//! file KIND ORIGIN HOST DEST       KIND rule|unit|conf|modprobe|program|firmware;
//!                                  ORIGIN root (DEST is also its path inside
//!                                  --root) or host; HOST a host path to copy
//! hook HOST HOOKDIR PRIO           a dracut boot hook (inst_hook HOOKDIR PRIO HOST)
//! want TARGET UNIT LINK            systemd: TARGET.wants/UNIT, a link to LINK
//! load MODULE CONF LIST            without systemd: load MODULE at boot (listed
//!                                  in CONF), from LIST (initramfs-tools:
//!                                  force_load's conf/modules)
//! ```
//!
//! Fields are separated by one space; none holds white space (paths with
//! white space are refused).

use crate::plan::items::{Content, Item, Of};
use crate::plan::{FileKind, Plan};
use crate::source::Source;
use anyhow::{bail, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn write(out: &mut impl Write, plan: &Plan, extract: &Path) -> Result<()> {
    let mut lines: Vec<String> = Vec::new();
    for item in plan.items() {
        if let Some(l) = line(&item, extract)? {
            lines.push(l);
        }
    }
    for l in &lines {
        if l.split(' ').any(str::is_empty) || l.contains(['\t', '\n']) {
            bail!("cannot write '{l}' as a line: a path holds white space");
        }
        writeln!(out, "{l}")?;
    }
    Ok(())
}

/// The line for `item`, or None for what the generator adds by itself: a
/// program's libraries (each generator installs them with the program, by
/// its own resolver: inst_binary, copy_exec, add_binary).
fn line(item: &Item, extract: &Path) -> Result<Option<String>> {
    let l = match (item.of, item.content) {
        (Of::Module(m), _) => format!("module {}", m.name),
        (Of::File(f), _) if f.kind == FileKind::Library => return Ok(None),
        (Of::File(f), _) => {
            let host = host_path(&f.source, extract)?;
            let host = host.display();
            match f.kind {
                FileKind::Hook => {
                    let (dir, file) = f.dest.rsplit_once('/').unwrap_or(("", &f.dest));
                    let prio = file.split('-').next().unwrap_or("50");
                    format!("hook {host} {dir} {prio}")
                }
                k => format!("file {} {} {host} {}", k.name(), origin(&f.source), f.dest),
            }
        }
        (Of::Firmware(_, fw), _) => format!("file firmware root {} {}", fw.source, fw.path),
        (Of::Want(unit), Content::Link(link)) => format!("want initrd.target {unit} {link}"),
        (Of::Want(_), _) => unreachable!("a want is a link"),
        (Of::Load(l), _) => format!("load {} {} {}", l.module, l.conf, l.list),
    };
    Ok(Some(l))
}

/// `root` for files of --root, `host` for the rest.
pub fn origin(s: &Source) -> &'static str {
    match s {
        Source::Root { .. } => "root",
        _ => "host",
    }
}

/// The host path of a source: its file, or (rdma-initrd's own and
/// generated files) a copy written under `extract`.
pub fn host_path(s: &Source, extract: &Path) -> Result<PathBuf> {
    if let Some(h) = s.host() {
        return Ok(h.to_path_buf());
    }
    let (name, text) = s.own_text().expect("own or generated");
    let path = extract.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, text)?;
    Ok(path)
}
