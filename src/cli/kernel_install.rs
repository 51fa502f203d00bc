//! `rdma-initrd kernel-install add KVER ENTRY_DIR KERNEL_IMAGE [INITRD...]`:
//! what systemd's kernel-install runs through the plugin
//! `55-rdma-initrd.install`, after the initrd generators (50-dracut,
//! 50-mkosi) and before 60-ukify and 90-loaderentry, so that both BLS
//! entries and UKIs carry RDMA.
//!
//! Which initrd: the last one the generators staged
//! (`$KERNEL_INSTALL_STAGING_AREA/initrd*`, in name order), extended in
//! place; else the
//! first one given to kernel-install, left as it is, with the RDMA segment
//! staged beside it (`initrd-rdma`; loaders and ukify take the given
//! initrds first, then the staged ones, and the kernel unpacks them in
//! order); else the distribution's initrd of that kernel in the root's
//! /boot, extended in place. An initrd that already holds the plan (built
//! with the dracut module, say) is left alone.

use super::args::{Cli, Command};
use crate::backend;
use crate::facts::Facts;
use crate::plan;
use crate::root::Root;
use anyhow::{Context, Result};
use clap::Parser;
use std::path::{Path, PathBuf};

/// The plugin's configuration: one argument per line, `#` comments.
pub const CONF: &str = "/etc/rdma-initrd/kernel-install.conf";

pub fn run(cli: Cli) -> Result<i32> {
    let Command::KernelInstall {
        command,
        kernel_version,
        initrds,
        ..
    } = &cli.command
    else {
        unreachable!("called for kernel-install only")
    };
    if command != "add" {
        return Ok(0);
    }
    let cli = with_configuration(&cli, kernel_version)?;
    let inputs = super::resolve::resolve(&cli.global)?;
    let staging = std::env::var_os("KERNEL_INSTALL_STAGING_AREA").map(PathBuf::from);
    let (base, out) = choose_initrd(&inputs.root, kernel_version, staging.as_deref(), initrds)?;
    let facts = Facts::read(&inputs, true)?;
    let mut p = super::commands::plan_of(&facts, &inputs.selection)?;
    crate::manifest::attach(&mut p, &inputs)?;
    let handed = handed_over(staging.as_deref(), initrds)?;
    if holds_plan(&p, &handed)? {
        if !cli.global.quiet {
            eprintln!("rdma-initrd: the initrds of kernel {kernel_version} already hold the plan");
        }
        return Ok(0);
    }
    let output = if out == base {
        backend::append::Output::Whole(&out)
    } else {
        backend::append::Output::SegmentOnly(&out)
    };
    backend::append::append(
        &p,
        &base,
        output,
        None,
        super::commands::source_date_epoch()?,
        &mut crate::term::Progress::new(false),
    )?;
    if !cli.global.quiet {
        eprintln!(
            "rdma-initrd: RDMA added to {} ({})",
            base.display(),
            out.display()
        );
    }
    Ok(0)
}

/// The command line again, with the configuration's arguments first, the
/// kernel of the call, and host-only as the default selection.
fn with_configuration(cli: &Cli, kver: &str) -> Result<Cli> {
    let root = Root::new(&cli.global.root);
    let mut argv: Vec<String> = vec!["rdma-initrd".into()];
    if let Some(text) = root.read_opt(CONF)? {
        for l in String::from_utf8_lossy(&text).lines() {
            let l = l.trim();
            if !l.is_empty() && !l.starts_with('#') {
                argv.push(l.to_string());
            }
        }
    }
    if cli.global.kver.is_none() {
        argv.extend(["--kver".into(), kver.to_string()]);
    }
    if cli.global.default_selection.is_none() {
        argv.extend(["--default-selection".into(), "hostonly".into()]);
    }
    argv.extend(std::env::args().skip(1));
    Cli::try_parse_from(&argv).with_context(|| format!("{CONF}: {}", argv[1..].join(" ")))
}

/// The initrds the loader (or ukify) will hand the kernel, in order: those
/// given to kernel-install, then the staged ones by name.
fn handed_over(staging: Option<&Path>, given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = given.to_vec();
    if let Some(s) = staging {
        out.extend(staged_initrds(s)?);
    }
    Ok(out)
}

/// The staged `initrd*` files, in name order (the order loaders and ukify
/// take them in).
fn staged_initrds(staging: &Path) -> Result<Vec<PathBuf>> {
    let mut staged: Vec<String> = crate::root::list_host_dir(staging)?
        .into_iter()
        .filter(|n| n.starts_with("initrd") && staging.join(n).is_file())
        .collect();
    staged.sort();
    Ok(staged.into_iter().map(|n| staging.join(n)).collect())
}

/// Whether the initrds, one after the other as the kernel unpacks them, hold
/// the plan.
fn holds_plan(p: &plan::Plan, initrds: &[PathBuf]) -> Result<bool> {
    if initrds.is_empty() {
        return Ok(false);
    }
    let mut chain: Box<dyn std::io::Read> = Box::new(std::io::empty());
    for i in initrds {
        let f = std::fs::File::open(i).with_context(|| i.display().to_string())?;
        chain = Box::new(std::io::Read::chain(chain, f));
    }
    let img = crate::segments::read_image(chain, backend::image::MAX_IMAGE_BYTES, &mut |_| {})
        .map_err(|e| anyhow::anyhow!("the initrds {initrds:?}: {e}"))?;
    Ok(backend::verify::verify(p, &img.tree)?.is_empty())
}

/// (the initrd to read, where to write): see the module's comment.
fn choose_initrd(
    root: &Root,
    kver: &str,
    staging: Option<&Path>,
    given: &[PathBuf],
) -> Result<(PathBuf, PathBuf)> {
    if let Some(s) = staging {
        // The loader and ukify take staged initrd* in name order and the
        // kernel unpacks them in order: the RDMA part goes after the last
        // (Debian's 55-initrd.install stages a link to /boot's beside
        // dracut's; replacing that link leaves /boot as it is).
        if let Some(last) = staged_initrds(s)?.pop() {
            return Ok((last.clone(), last));
        }
        if let Some(g) = given.first() {
            return Ok((g.clone(), s.join("initrd-rdma")));
        }
    } else if let Some(g) = given.first() {
        return Ok((g.clone(), g.clone()));
    }
    for c in [
        format!("/boot/initrd.img-{kver}"),
        format!("/boot/initramfs-{kver}.img"),
    ] {
        let h = root.resolve(&c)?;
        if h.is_file() {
            return Ok((h.clone(), h));
        }
    }
    anyhow::bail!(
        "no initrd for kernel {kver}: none staged in $KERNEL_INSTALL_STAGING_AREA, none given, none in /boot"
    )
}
