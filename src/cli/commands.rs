//! One function per subcommand: read the facts, make the plan, hand it to a
//! backend or a rendering. Each returns the exit code.

use super::args::{Generate, Global};
use crate::backend;
use crate::facts::{Facts, Inputs};
use crate::kmod::compress::Compression;
use crate::plan::{self, Plan};
use crate::term::{paint, Progress, Style};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn detect(inputs: &Inputs, g: &Global, json: bool, check: bool) -> Result<i32> {
    let facts = Facts::read_for_detect(inputs)?;
    let host = facts.host.clone().unwrap_or_default();
    let mut devices = host.devices.clone();
    for (_, p) in &facts.profiles {
        devices.extend(p.devices.iter().cloned());
    }
    let ev = plan::evaluate_devices(&facts, &devices);
    if check {
        return Ok(if crate::output::any_rdma(&ev.reports) {
            0
        } else {
            1
        });
    }
    let mut out = std::io::stdout().lock();
    if json {
        crate::output::detect_json(
            &mut out,
            &facts,
            &devices,
            &ev.reports,
            host.netroot.as_ref(),
        )?;
    } else {
        crate::output::detect_text(&mut out, &ev.reports, host.netroot.as_ref())?;
    }
    let warnings: Vec<String> = host.warnings.iter().map(|w| w.to_string()).collect();
    report_warnings(g, &warnings, &[]);
    Ok(0)
}

/// The plan for `sel`: planned, what it needs read (module files'
/// `.modinfo`, firmware) read from the facts' root, planned again, until it
/// is whole (`plan::step`).
pub fn plan_of(facts: &Facts, sel: &crate::selection::Selection) -> Result<Plan> {
    let readers = crate::facts::Readers::of_root(&facts.root, &facts.kver);
    let mut found = crate::facts::Found::default();
    loop {
        match plan::step(facts, &found, sel)? {
            plan::Step::Done(p) => return Ok(*p),
            plan::Step::Needs(n) => readers.read(&facts.db, &n, &mut found)?,
        }
    }
}

/// The plan for the inputs (reading `.modinfo` unless `modinfo` is false),
/// with the image's manifest among its files (what every image built from
/// it holds).
fn make_plan(inputs: &Inputs, modinfo: bool) -> Result<(Facts, Plan)> {
    let facts = Facts::read(inputs, modinfo)?;
    let mut p = plan_of(&facts, &inputs.selection)?;
    crate::manifest::attach(&mut p, inputs)?;
    Ok((facts, p))
}

pub fn plan(
    inputs: &Inputs,
    g: &Global,
    json: bool,
    explain: bool,
    lines: Option<&Path>,
) -> Result<i32> {
    let (_, p) = make_plan(inputs, true)?;
    let mut out = std::io::stdout().lock();
    if let Some(dir) = lines {
        backend::lines::write(&mut out, &p, dir)?;
    } else if json {
        serde_json::to_writer_pretty(&mut out, &p)?;
        writeln!(out)?;
    } else {
        crate::output::plan_text(&mut out, &p, explain)?;
    }
    report(g, &p);
    Ok(0)
}

pub fn modules(inputs: &Inputs, g: &Global, paths: bool, json: bool) -> Result<i32> {
    let facts = Facts::read(inputs, false)?;
    let p = plan_of(&facts, &inputs.selection)?;
    // One write for the whole list (stdout is line-buffered: a write a line).
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    crate::output::modules(&mut out, &p, paths, json)?;
    out.flush()?;
    drop(out);
    report(g, &p);
    // The process exits right after: freeing the facts and the plan (many
    // small allocations, a tenth of the run) buys nothing. Nothing in them
    // has a Drop with an effect outside the process (mappings, memory).
    std::mem::forget(p);
    std::mem::forget(facts);
    Ok(0)
}

pub fn files(
    inputs: &Inputs,
    g: &Global,
    extract: Option<&Path>,
    kind: bool,
    json: bool,
) -> Result<i32> {
    let (_, p) = make_plan(inputs, true)?;
    crate::output::files(&mut std::io::stdout().lock(), &p, extract, kind, json)?;
    report(g, &p);
    Ok(0)
}

pub struct InstallTo {
    pub destdir: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub compress: Option<Compression>,
    pub base: Option<PathBuf>,
    pub rewrite: bool,
}

pub fn install(inputs: &Inputs, g: &Global, to: InstallTo) -> Result<i32> {
    let mut progress = Progress::new(!g.quiet);
    progress.stage("planning");
    let (_, p) = make_plan(inputs, true)?;
    match (&to.base, &to.output) {
        (Some(base), Some(out)) if !to.rewrite && to.destdir.is_none() => backend::append::append(
            &p,
            base,
            backend::append::Output::Whole(out),
            to.compress,
            source_date_epoch()?,
            &mut progress,
        )?,
        _ => rewrite(&p, &to, &mut progress)?,
    }
    progress.finish();
    report(g, &p);
    Ok(0)
}

/// The plan as a tree (and image), over the whole base read in when given.
fn rewrite(p: &Plan, to: &InstallTo, progress: &mut Progress) -> Result<()> {
    let base_img = match &to.base {
        Some(b) => Some(backend::image::read_reporting(b, progress)?),
        None => None,
    };
    progress.stage(format!(
        "adding {} modules and {} files",
        p.modules.iter().filter(|m| !m.builtin).count(),
        p.files.len()
    ));
    let tree = backend::tree::plan_tree(p, base_img.as_ref().map(|i| &i.tree))?;
    if let Some(d) = &to.destdir {
        backend::tree::write_destdir(&tree, d)?;
    }
    if let Some(o) = &to.output {
        let early = match (&to.base, &base_img) {
            (Some(b), Some(img)) => std::fs::read(b)?[..img.early_len() as usize].to_vec(),
            _ => Vec::new(),
        };
        backend::image::write_image(
            &tree,
            to.compress.unwrap_or(Compression::Zstd),
            source_date_epoch()?,
            &mut &early[..],
            o,
            progress,
        )?;
    }
    Ok(())
}

pub fn verify(g: &Global, image: &Path, json: bool) -> Result<i32> {
    let img = backend::image::read(image)?;
    let (inputs, checked) = super::resolve::for_image(g, image, &img.tree)?;
    if !g.quiet {
        for w in &checked.warnings {
            let c = crate::term::stderr_colour();
            eprintln!("rdma-initrd: {} {w}", paint(c, Style::Warning, "warning:"));
        }
    }
    let facts = Facts::read(&inputs, true)?;
    let p = plan_of(&facts, &inputs.selection)?;
    let gaps = backend::verify::verify(&p, &img.tree)?;
    report(g, &p);
    let code = if gaps.is_empty() { 0 } else { 1 };
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "image": image.display().to_string(),
            "complete": gaps.is_empty(),
            "missing": gaps,
            "selection": {"from": checked.from, "checked": checked.selection},
            "segments": segments_json(&img),
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(code);
    }
    let colour = crate::term::stdout_colour();
    if !g.quiet {
        writeln!(
            out,
            "{}: checked against {}: {}",
            image.display(),
            checked.from_text(),
            checked.selection
        )?;
    }
    if gaps.is_empty() {
        if !g.quiet {
            writeln!(
                out,
                "{}: {} ({} modules, {} firmware, {} files)",
                image.display(),
                paint(colour, Style::Good, "complete"),
                p.modules.iter().filter(|m| !m.builtin).count(),
                p.firmware.iter().map(|f| f.files.len()).sum::<usize>(),
                p.files.len()
            )?;
        }
        return Ok(code);
    }
    writeln!(
        out,
        "{}: {}",
        image.display(),
        paint(
            colour,
            Style::Bad,
            &format!("missing {} item(s):", gaps.len())
        )
    )?;
    for m in &gaps {
        writeln!(out, "  {m}")?;
    }
    Ok(code)
}

fn segments_json(img: &crate::segments::Image) -> Vec<serde_json::Value> {
    img.segments
        .iter()
        .map(|s| serde_json::json!({"format": s.format, "start": s.start, "end": s.end}))
        .collect()
}

/// `inspect IMAGE`: how it was made and its RDMA part, from the image alone.
pub fn inspect(g: &Global, image: &Path, json: bool) -> Result<i32> {
    use crate::manifest::Found;
    let img = backend::image::read(image)?;
    let manifest = match crate::manifest::from_tree(&img.tree, image) {
        Found::Read(m, warnings) => {
            report_warnings(g, &warnings, &[]);
            Some(*m)
        }
        Found::None => None,
        Found::Bad(e) => {
            if !g.quiet {
                let c = crate::term::stderr_colour();
                eprintln!(
                    "rdma-initrd: {} {e}: ignored",
                    paint(c, Style::Warning, "warning:")
                );
            }
            None
        }
    };
    let r = backend::inspect::inspect(&img.tree, manifest.as_ref());
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "image": image.display().to_string(),
            "segments": segments_json(&img),
            "manifest": manifest,
            "modules": r.modules,
            "files": r.files,
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(0);
    }
    crate::output::inspect_text(&mut out, image, &img, manifest.as_ref(), &r)?;
    Ok(0)
}

/// Man pages (section 8: an administrator's command, as dracut(8),
/// mkinitcpio(8) and update-initramfs(8)) or completions for bash, zsh and
/// fish, from the clap definition.
pub fn generate(what: Generate, out: &Path) -> Result<i32> {
    use clap::CommandFactory;
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let cmd = super::args::Cli::command();
    match what {
        Generate::Man => {
            let mut cmd = cmd;
            cmd.build();
            man_pages(&cmd, out)?;
        }
        Generate::Completions => {
            for shell in [
                clap_complete::Shell::Bash,
                clap_complete::Shell::Zsh,
                clap_complete::Shell::Fish,
            ] {
                clap_complete::generate_to(
                    shell,
                    &mut super::args::Cli::command(),
                    "rdma-initrd",
                    out,
                )
                .with_context(|| out.display().to_string())?;
            }
        }
    }
    Ok(0)
}

/// The page of `cmd` and of each of its visible subcommands
/// (`rdma-initrd-plan.8`, ...).
fn man_pages(cmd: &clap::Command, out: &Path) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone()).section("8");
    let path = out.join(man.get_filename());
    let mut buf = Vec::new();
    man.render(&mut buf)?;
    std::fs::write(&path, buf).with_context(|| path.display().to_string())?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        man_pages(sub, out)?;
    }
    Ok(())
}

/// mtime for every entry of an image: SOURCE_DATE_EPOCH, or 0.
pub(crate) fn source_date_epoch() -> Result<u32> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse::<u32>()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v}: not a number of seconds")),
        Err(_) => Ok(0),
    }
}

fn report(g: &Global, p: &Plan) {
    let w: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
    report_warnings(g, &w, &p.not_understood);
}

fn report_warnings(g: &Global, warnings: &[String], not_understood: &[String]) {
    if g.quiet {
        return;
    }
    let c = crate::term::stderr_colour();
    if g.verbose > 0 {
        for w in warnings {
            eprintln!("rdma-initrd: {} {w}", paint(c, Style::Warning, "warning:"));
        }
        for w in not_understood {
            eprintln!("rdma-initrd: note: {w}");
        }
    } else if !warnings.is_empty() {
        eprintln!("rdma-initrd: {} warning(s); -v lists them", warnings.len());
    }
}
