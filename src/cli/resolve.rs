//! Raw arguments validated and resolved into the inputs of a run: the root,
//! the kernel and its module directory, and the selection (with its
//! defaults, decided here and nowhere else).

use super::args::{GeneratorArg, Global, InitArg, NetRootArg, SelectionArg, SELECTION_IDS};
use crate::facts::Inputs;
use crate::netroot::{Generator, NetRoot};
use crate::root::Root;
use crate::selection::{Init, Mode, Selection};
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

/// What `verify` checked an image against, and where the selection came
/// from.
#[derive(Debug)]
pub struct Checked {
    /// "manifest", "manifest and command line" or "command line".
    pub from: &'static str,
    /// The options of the command line that replaced the manifest's values.
    pub overridden: Vec<String>,
    /// Why the command line's selection alone was used, when the image has
    /// no usable manifest.
    pub no_manifest: Option<&'static str>,
    /// The selection checked, as options (`generic, --generator dracut,
    /// --init systemd, kernel 6.1.0-56-amd64`).
    pub selection: String,
    pub warnings: Vec<String>,
}

impl Checked {
    pub fn from_text(&self) -> String {
        match (self.from, self.no_manifest) {
            ("manifest", _) => "the manifest's selection".into(),
            ("command line", Some(why)) => format!("the command line's selection ({why})"),
            ("command line", None) => "the command line's selection".into(),
            _ => format!(
                "the manifest's selection with the command line's {}",
                self.overridden
                    .iter()
                    .map(|o| format!("--{}", o.replace('_', "-")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The inputs to verify `image` (whose tree is `tree`) with: the options
/// given, the rest from the image's manifest when it has one. A selection
/// option (`--hostonly`, `--generic`, `--profile`, `--driver`, `--protocol`,
/// `--default-selection`) replaces the manifest's whole selection; `--kver`,
/// `--init`, `--generator`, `--netroot`, `--config` and `--rules-dir` each
/// replace their own value.
pub fn for_image(g: &Global, image: &Path, tree: &crate::cpio::Tree) -> Result<(Inputs, Checked)> {
    use crate::manifest::Found;
    let mut checked = Checked {
        from: "command line",
        overridden: Vec::new(),
        no_manifest: None,
        selection: String::new(),
        warnings: Vec::new(),
    };
    let selects = SELECTION_IDS.iter().any(|id| g.was_given(id));
    let g2 = match crate::manifest::from_tree(tree, image) {
        Found::None => {
            checked.no_manifest = Some("the image has no manifest");
            g.clone()
        }
        Found::Bad(e) if selects && g.was_given("kver") => {
            checked.warnings.push(format!(
                "{e}: ignored (the command line gives the selection and the kernel)"
            ));
            checked.no_manifest = Some("its manifest is not readable");
            g.clone()
        }
        Found::Bad(e) => bail!(
            "{e} (to verify without it, give the selection and --kver, e.g. --generic --kver KVER)"
        ),
        Found::Read(m, warnings) => {
            checked.warnings = warnings;
            let (g2, overridden) = apply_manifest(g, &m, image, &mut checked.warnings)?;
            checked.from = if overridden.is_empty() {
                "manifest"
            } else {
                "manifest and command line"
            };
            checked.overridden = overridden;
            g2
        }
    };
    let inputs = resolve(&g2)?;
    checked.selection = describe(&inputs);
    Ok((inputs, checked))
}

/// `g` with the manifest's values where the command line gave none; (it,
/// the ids the command line replaced).
fn apply_manifest(
    g: &Global,
    m: &crate::manifest::Manifest,
    image: &Path,
    warnings: &mut Vec<String>,
) -> Result<(Global, Vec<String>)> {
    let mut g2 = g.clone();
    let mut overridden: Vec<String> = Vec::new();
    let s = &m.selection;
    if SELECTION_IDS.iter().any(|id| g.was_given(id)) {
        overridden.extend(
            SELECTION_IDS
                .iter()
                .filter(|id| g.was_given(id))
                .map(|id| id.to_string()),
        );
    } else {
        g2.hostonly = s.mode == "hostonly";
        g2.generic = s.mode == "generic";
        g2.default_selection = None;
        g2.profile = s.profiles.iter().map(|p| PathBuf::from(&p.path)).collect();
        g2.driver = s.drivers.clone();
        g2.protocol = s.protocols.clone();
        for p in &s.profiles {
            match std::fs::File::open(&p.path).and_then(crate::sha256::reader_hex) {
                Ok(h) if h == p.sha256 => {}
                Ok(_) => warnings.push(format!(
                    "{}: the manifest's profile {} has changed since the image was made",
                    image.display(),
                    p.path
                )),
                Err(e) => bail!(
                    "{}: the manifest's profile {}: {e} (give the selection to verify against another)",
                    image.display(),
                    p.path
                ),
            }
        }
    }
    let mut take = |id: &str, apply: &mut dyn FnMut(&mut Global)| {
        if g.was_given(id) {
            overridden.push(id.to_string());
        } else {
            apply(&mut g2);
        }
    };
    take("kver", &mut |g2| g2.kver = Some(m.kver.clone()));
    take("init", &mut |g2| {
        g2.init = match m.init.as_str() {
            "udev" => InitArg::Udev,
            _ => InitArg::Systemd,
        }
    });
    take("generator", &mut |g2| {
        g2.generator = match m.generator.as_str() {
            "dracut" => GeneratorArg::Dracut,
            "initramfs-tools" => GeneratorArg::InitramfsTools,
            "mkinitcpio" => GeneratorArg::Mkinitcpio,
            _ => GeneratorArg::None,
        }
    });
    take("netroot", &mut |g2| {
        g2.netroot = match &s.netroots {
            None => Vec::new(),
            Some(v) if v.is_empty() => vec![NetRootArg::None],
            Some(v) => v
                .iter()
                .map(|n| match n.as_str() {
                    "nfs" => NetRootArg::Nfs,
                    "nvmf" => NetRootArg::Nvmf,
                    _ => NetRootArg::Iscsi,
                })
                .collect(),
        }
    });
    take("config", &mut |g2| {
        g2.config = s.configs.iter().map(PathBuf::from).collect()
    });
    take("rules_dir", &mut |g2| {
        g2.rules_dir = s.rules_dirs.iter().map(PathBuf::from).collect()
    });
    Ok((g2, overridden))
}

/// A resolved selection as options: `generic, --profile P, --generator
/// dracut, --init systemd, kernel K`.
pub fn describe(inputs: &Inputs) -> String {
    let sel = &inputs.selection;
    let mut v: Vec<String> = vec![match sel.mode {
        Mode::Hostonly => "hostonly".into(),
        Mode::Generic => "generic".into(),
        Mode::Selected => "selected".into(),
    }];
    v.extend(
        sel.profiles
            .iter()
            .map(|p| format!("--profile {}", p.display())),
    );
    v.extend(sel.drivers.iter().map(|d| format!("--driver {d}")));
    v.extend(sel.protocols.iter().map(|d| format!("--protocol {d}")));
    match &sel.netroot {
        None => {}
        Some(n) if n.is_empty() => v.push("--netroot none".into()),
        Some(n) => v.extend(n.iter().map(|r| format!("--netroot {}", r.name()))),
    }
    v.extend(
        inputs
            .extra_config
            .iter()
            .map(|p| format!("--config {}", p.display())),
    );
    v.extend(
        inputs
            .extra_rules
            .iter()
            .map(|p| format!("--rules-dir {}", p.display())),
    );
    v.push(format!("--generator {}", sel.generator.name()));
    v.push(format!(
        "--init {}",
        match sel.init {
            Init::Systemd => "systemd",
            Init::Udev => "udev",
        }
    ));
    v.push(format!("kernel {}", inputs.kver));
    v.join(", ")
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
