//! Raw arguments validated and resolved into the inputs of a run: the root,
//! the kernel and its module directory, and the selection (with its
//! defaults, decided here and nowhere else).

use super::args::{GeneratorArg, Global, InitArg, NetRootArg, SelectionArg};
use crate::facts::Inputs;
use crate::netroot::{Generator, NetRoot};
use crate::plan::{Init, Mode, Selection};
use crate::root::Root;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Turn validated arguments into the inputs of a run.
pub fn resolve(g: &Global) -> Result<Inputs> {
    if !g.root.is_dir() {
        bail!("--root {}: not a directory", g.root.display());
    }
    let root = Root::new(&g.root);
    for n in g.driver.iter().chain(g.protocol.iter()) {
        if n.is_empty() || n.contains('/') || n.contains("..") || n.contains(char::is_whitespace) {
            bail!("'{n}' is not a module or protocol name");
        }
    }
    let (kver, moddir) = match (&g.kver, &g.moddir) {
        (Some(k), Some(m)) => (k.clone(), m.clone()),
        (None, Some(m)) => {
            let k = m.file_name().and_then(|s| s.to_str()).context(
                "--moddir has no final component to take the kernel version from; pass --kver",
            )?;
            (k.to_string(), m.clone())
        }
        (Some(k), None) => (k.clone(), find_moddir(&root, k)?),
        (None, None) => {
            let k = default_kver(&root)?;
            let m = find_moddir(&root, &k)?;
            (k, m)
        }
    };
    if !moddir.is_dir() {
        bail!(
            "{}: no such module directory (kernel {kver})",
            moddir.display()
        );
    }
    let sysfs = match &g.sysfs {
        Some(s) => s.clone(),
        None => root.resolve("/sys")?,
    };
    let mode = mode(g, &root);
    Ok(Inputs {
        root,
        kver,
        moddir,
        sysfs,
        selection: Selection {
            mode,
            profiles: g.profile.clone(),
            drivers: g.driver.clone(),
            protocols: g.protocol.clone(),
            netroot: netroot_choice(&g.netroot)?,
            init: match g.init {
                InitArg::Systemd => Init::Systemd,
                InitArg::Udev => Init::Udev,
            },
            generator: match g.generator {
                GeneratorArg::None => Generator::None,
                GeneratorArg::Dracut => Generator::Dracut,
                GeneratorArg::InitramfsTools => Generator::InitramfsTools,
                GeneratorArg::Mkinitcpio => Generator::Mkinitcpio,
            },
        },
        extra_config: absolute(&g.config)?,
        extra_rules: absolute(&g.rules_dir)?,
    })
}

/// The selection: as given; else what the generator hook passes for its own
/// mode (`--default-selection`); else host-only for `/`, generic for any
/// other root.
fn mode(g: &Global, root: &Root) -> Mode {
    if g.hostonly {
        Mode::Hostonly
    } else if g.generic {
        Mode::Generic
    } else if !g.profile.is_empty() || !g.driver.is_empty() || !g.protocol.is_empty() {
        Mode::Selected
    } else {
        match g.default_selection {
            Some(SelectionArg::Hostonly) => Mode::Hostonly,
            Some(SelectionArg::Generic) => Mode::Generic,
            None if root.is_slash() => Mode::Hostonly,
            None => Mode::Generic,
        }
    }
}

/// `--netroot` values: None when not given (the mode decides); `none`
/// stands alone.
fn netroot_choice(args: &[NetRootArg]) -> Result<Option<Vec<NetRoot>>> {
    if args.is_empty() {
        return Ok(None);
    }
    if args.contains(&NetRootArg::None) {
        if args.len() > 1 {
            bail!("--netroot none cannot be given with another --netroot");
        }
        return Ok(Some(Vec::new()));
    }
    Ok(Some(
        args.iter()
            .map(|a| match a {
                NetRootArg::Nfs => NetRoot::Nfs,
                NetRootArg::Nvmf => NetRoot::Nvmf,
                NetRootArg::Iscsi => NetRoot::Iscsi,
                NetRootArg::None => unreachable!("handled above"),
            })
            .collect(),
    ))
}

fn absolute(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    paths
        .iter()
        .map(|p| std::path::absolute(p).with_context(|| p.display().to_string()))
        .collect()
}

fn find_moddir(root: &Root, kver: &str) -> Result<PathBuf> {
    if kver.is_empty() || kver.contains('/') || kver == "." || kver == ".." {
        bail!("'{kver}' is not a kernel version");
    }
    let cands = [
        format!("/lib/modules/{kver}"),
        format!("/usr/lib/modules/{kver}"),
    ];
    for c in &cands {
        let h = root.resolve(c)?;
        if h.is_dir() {
            return Ok(h);
        }
    }
    let known = kernels(root)?;
    bail!(
        "unknown kernel {kver}: no {} or {} (kernels here: {})",
        root.display(Path::new(&cands[0])),
        root.display(Path::new(&cands[1])),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

fn kernels(root: &Root) -> Result<Vec<String>> {
    let mut ks = Vec::new();
    for d in ["/lib/modules", "/usr/lib/modules"] {
        for n in root.list_dir(d)? {
            if root.resolve(format!("{d}/{n}/modules.dep"))?.is_file() && !ks.contains(&n) {
                ks.push(n);
            }
        }
    }
    ks.sort();
    Ok(ks)
}

fn default_kver(root: &Root) -> Result<String> {
    if root.is_slash() {
        let r = root.resolve("/proc/sys/kernel/osrelease")?;
        return Ok(std::fs::read_to_string(&r)
            .with_context(|| r.display().to_string())?
            .trim()
            .to_string());
    }
    let ks = kernels(root)?;
    match ks.len() {
        1 => Ok(ks[0].clone()),
        0 => bail!(
            "no kernel with a modules.dep in {} (pass --kver or --moddir)",
            root.base().display()
        ),
        _ => bail!(
            "several kernels in {}: {} (pass --kver)",
            root.base().display(),
            ks.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root whose kernel package put its modules in /usr/lib/modules only
    /// (Debian unstable's kernels), with /lib a directory or merged.
    fn root_with_usr_modules(merged: bool) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("usr/lib/modules/7.2.13+deb14-amd64");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("modules.dep"), "").unwrap();
        if merged {
            std::os::unix::fs::symlink("usr/lib", t.path().join("lib")).unwrap();
        } else {
            std::fs::create_dir_all(t.path().join("lib/firmware")).unwrap();
        }
        t
    }

    #[test]
    fn modules_in_usr_lib_only_are_found() {
        for merged in [false, true] {
            let t = root_with_usr_modules(merged);
            let root = Root::new(t.path());
            let kver = default_kver(&root).unwrap();
            assert_eq!(kver, "7.2.13+deb14-amd64");
            let m = find_moddir(&root, &kver).unwrap();
            assert!(m.join("modules.dep").is_file(), "{}", m.display());
            let e = find_moddir(&root, "6.1.0-56-amd64")
                .unwrap_err()
                .to_string();
            assert!(e.contains("kernels here: 7.2.13+deb14-amd64"), "{e}");
        }
    }
}
