//! Command line: raw arguments (clap) are validated first, then resolved into
//! the inputs of a run.

use crate::netroot::{Generator, NetRoot};
use crate::plan::{self, Ctx, Inputs, Mode, Selection};
use crate::root::Root;
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "rdma-initrd",
    version,
    about = "Decide which RDMA modules, firmware, udev rules, units and configs an initramfs needs, \
             using the same rules as rdma-core's hot-plug path",
    after_help = "Examples:\n  rdma-initrd detect\n  rdma-initrd plan --generic --root /srv/image --kver 6.1.0-56-amd64\n  rdma-initrd modules --profile node-a.json --profile node-b.json\n\nExit status:\n  0  success\n  1  verify found gaps; detect --check found no RDMA hardware\n  2  usage or input error (the message names the file and line)\n\nEnvironment:\n  NO_COLOR          no colour (colour is used only on a terminal)\n  SOURCE_DATE_EPOCH mtime of every image entry (default 0)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// System root to read everything from (rules, confs, modprobe.d, modules, firmware)
    #[arg(long, global = true, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// Kernel version (default: the running kernel for --root /, else the only kernel in the root)
    #[arg(long, global = true, value_name = "KVER")]
    pub kver: Option<String>,
    /// Module directory (a host path, what dracut's --kmoddir passes); default ROOT/lib/modules/KVER
    #[arg(long, global = true, value_name = "DIR")]
    pub moddir: Option<PathBuf>,
    /// sysfs to detect hardware from (default ROOT/sys)
    #[arg(long, global = true, value_name = "DIR")]
    pub sysfs: Option<PathBuf>,
    /// Plan for the hardware of this machine (default when --root is /)
    #[arg(long, global = true, conflicts_with = "generic")]
    pub hostonly: bool,
    /// Plan for any RDMA machine (default for any other root)
    #[arg(long, global = true)]
    pub generic: bool,
    /// Hardware saved by `detect --json` on another machine (repeatable; the union is planned)
    #[arg(long, global = true, value_name = "FILE")]
    pub profile: Vec<PathBuf>,
    /// Add an RDMA driver (module name or alias) by hand (repeatable)
    #[arg(long, global = true, value_name = "NAME")]
    pub driver: Vec<String>,
    /// Add a protocol's ULP modules (infiniband, iwarp, opa, roce, ...) by hand (repeatable)
    #[arg(long, global = true, value_name = "NAME")]
    pub protocol: Vec<String>,
    /// An extra modprobe.d-style file, read after the root's (repeatable)
    #[arg(long = "config", global = true, value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// An extra udev rules directory, read before the root's (repeatable);
    /// its files go to /etc/udev/rules.d in an image
    #[arg(long = "rules-dir", global = true, value_name = "DIR")]
    pub rules_dir: Vec<PathBuf>,
    /// What runs in the initramfs: systemd (dracut, mkinitcpio's systemd
    /// hook) or udev alone (initramfs-tools, mkinitcpio's udev hook), where a
    /// generated rules file loads what the wanted units would
    #[arg(long, global = true, value_enum, default_value = "systemd")]
    pub init: InitArg,
    /// A root the image must mount over RDMA (repeatable): its transport
    /// module goes in, and dracut's boot waits for the fabric before
    /// mounting it. `none`: no root over RDMA. Default: host-only, the root
    /// this machine runs on; generic, every one the generator can mount;
    /// profiles, theirs
    #[arg(long, global = true, value_enum, value_name = "ROOT")]
    pub netroot: Vec<NetRootArg>,
    /// The initramfs generator the plan is for (the hooks pass it): it
    /// decides which roots over RDMA can be mounted and where boot hooks go
    #[arg(long, global = true, value_enum, default_value = "none")]
    pub generator: GeneratorArg,
    /// More detail on stderr (warnings, rule lines not evaluated)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing on stderr but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum CompressArg {
    Zstd,
    Xz,
    Gzip,
    None,
}

impl From<CompressArg> for crate::kmod::compress::Compression {
    fn from(c: CompressArg) -> Self {
        use crate::kmod::compress::Compression as C;
        match c {
            CompressArg::Zstd => C::Zstd,
            CompressArg::Xz => C::Xz,
            CompressArg::Gzip => C::Gzip,
            CompressArg::None => C::None,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum InitArg {
    Systemd,
    Udev,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetRootArg {
    /// NFS with proto=rdma
    Nfs,
    /// NVMe over Fabrics on RDMA
    Nvmf,
    /// iSCSI over iSER
    Iscsi,
    /// no root over RDMA
    None,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum GeneratorArg {
    None,
    Dracut,
    InitramfsTools,
    Mkinitcpio,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Generate {
    Man,
    Completions,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List RDMA-relevant devices, the rule that matched, the module it loads, their protocols
    #[command(after_help = "Example:\n  rdma-initrd detect --json > $(hostname).json")]
    Detect {
        #[arg(long)]
        json: bool,
        /// Print nothing; exit 0 when RDMA hardware is present, 1 when not
        #[arg(long, conflicts_with = "json")]
        check: bool,
    },
    /// Modules in load order, firmware, and files to install, each with why
    #[command(after_help = "Example:\n  rdma-initrd plan --generic --explain")]
    Plan {
        #[arg(long)]
        json: bool,
        /// Print the chain that brings in each module
        #[arg(long)]
        explain: bool,
    },
    /// Module names (or paths) in load order, one per line
    #[command(after_help = "Example:\n  rdma-initrd modules --paths")]
    Modules {
        #[arg(long)]
        paths: bool,
        /// Print `{"schema": 1, "modules": [{"name", "path", "load"}]}`
        #[arg(long, conflicts_with = "paths")]
        json: bool,
    },
    /// Write the plan as a tree (--destdir) or an initramfs image (--output), optionally over an existing image (--base)
    #[command(
        group(clap::ArgGroup::new("target").required(true).args(["destdir", "output"])),
        after_help = "Examples:\n  rdma-initrd install --output /boot/rdma.img --compress zstd\n  rdma-initrd install --base /boot/initrd.img-$(uname -r) --output /boot/initrd-rdma.img"
    )]
    Install {
        /// Write the files under DIR
        #[arg(long, value_name = "DIR")]
        destdir: Option<PathBuf>,
        /// Write a newc cpio image (temp file + rename; an existing FILE is replaced only when complete)
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "zstd")]
        compress: CompressArg,
        /// An existing initramfs to add the plan to (uncompressed early segments are kept as they are)
        #[arg(long, value_name = "IMAGE", requires = "output")]
        base: Option<PathBuf>,
    },
    /// Check an initramfs against the plan; exit 1 with what is missing
    #[command(
        after_help = "Example:\n  rdma-initrd verify --generic /boot/initrd.img-6.1.0-56-amd64"
    )]
    Verify {
        image: PathBuf,
        /// Print `{"image", "complete", "missing": [...]}`
        #[arg(long)]
        json: bool,
    },
    /// Write the man pages or the shell completions (generated from this
    /// command line's definition) into DIR
    #[command(
        hide = true,
        after_help = "Example:\n  rdma-initrd generate man --out /usr/share/man/man1"
    )]
    Generate {
        #[arg(value_enum)]
        what: Generate,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// `SOURCE DESTINATION` pairs for everything that is not a module
    #[command(
        after_help = "Example:\n  rdma-initrd files --generic --root /srv/image --extract /tmp/rdma-units"
    )]
    Files {
        /// Write rdma-initrd's own (embedded) files the plan uses into DIR and
        /// print their paths there (without it they print as `embedded:NAME`)
        #[arg(long, value_name = "DIR")]
        extract: Option<PathBuf>,
        /// Print `KIND ORIGIN SOURCE DEST`: KIND is rule, unit, conf, modprobe,
        /// program, firmware or want; ORIGIN is `root` (SOURCE is a path inside
        /// --root) or `host` (SOURCE is a host path)
        #[arg(long)]
        kind: bool,
        /// Print `{"schema": 1, "files": [{"kind", "origin", "source", "dest"}]}`
        /// (the fields of --kind)
        #[arg(long, conflicts_with = "kind")]
        json: bool,
    },
}

/// Parse, run, and map the outcome to an exit code (0 ok, 2 usage or input error).
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let c = crate::term::stderr_colour();
            eprintln!(
                "rdma-initrd: {} {e:#}",
                crate::term::paint(c, crate::term::Style::Error, "error:")
            );
            2
        }
    }
}

pub fn run(cli: Cli) -> Result<i32> {
    if let Command::Generate { what, out } = &cli.command {
        generate(*what, out)?;
        return Ok(0);
    }
    let inputs = resolve(&cli.global)?;
    let ctx = Ctx::open(inputs)?;
    let g = &cli.global;
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Detect { json, check } => {
            let (devices, warnings) = ctx.detect_devices();
            let mut devices = devices;
            for p in &g.profile {
                devices.extend(plan::read_profile(p)?.devices);
            }
            let ev = plan::evaluate_devices(&ctx, &devices);
            if check {
                return Ok(if crate::output::any_rdma(&ev.reports) {
                    0
                } else {
                    1
                });
            }
            let netroot = ctx.detect_netroot()?;
            if json {
                crate::output::detect_json(
                    &mut out,
                    &ctx,
                    &devices,
                    &ev.reports,
                    netroot.as_ref(),
                )?;
            } else {
                crate::output::detect_text(&mut out, &ev.reports, netroot.as_ref())?;
            }
            report_warnings(
                g,
                &warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
                &[],
            );
        }
        Command::Plan { json, explain } => {
            let p = plan::build(&ctx)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &p)?;
                use std::io::Write;
                writeln!(out)?;
            } else {
                crate::output::plan_text(&mut out, &p, explain)?;
            }
            report_warnings(g, &p.warnings, &p.not_understood);
        }
        Command::Modules { paths, json } => {
            let p = plan::build_with(&ctx, false)?;
            crate::output::modules(&mut out, &p, paths, json)?;
            report_warnings(g, &p.warnings, &p.not_understood);
        }
        Command::Install {
            destdir,
            output,
            compress,
            base,
        } => {
            let mut progress = crate::term::Progress::new(!g.quiet);
            progress.stage("planning");
            let p = plan::build(&ctx)?;
            let base_img = match &base {
                Some(b) => Some(crate::image::read_reporting(b, &mut progress)?),
                None => None,
            };
            progress.stage(format!(
                "adding {} modules and {} files",
                p.modules.iter().filter(|m| !m.builtin).count(),
                p.files.len()
            ));
            let tree = crate::image::plan_tree(&ctx, &p, base_img.as_ref().map(|i| &i.tree))?;
            if let Some(d) = destdir {
                crate::image::write_destdir(&tree, &d)?;
            }
            if let Some(o) = output {
                let early = match (&base, &base_img) {
                    (Some(b), Some(img)) => std::fs::read(b)?[..img.early_len].to_vec(),
                    _ => Vec::new(),
                };
                crate::image::write_image(
                    &tree,
                    compress.into(),
                    source_date_epoch()?,
                    &early,
                    &o,
                    &mut progress,
                )?;
            }
            progress.finish();
            report_warnings(g, &p.warnings, &p.not_understood);
        }
        Command::Verify { image, json } => {
            let p = plan::build(&ctx)?;
            let img = crate::image::read(&image)?;
            let missing = crate::image::verify(&p, &img.tree)?;
            report_warnings(g, &p.warnings, &p.not_understood);
            use std::io::Write;
            if json {
                let v = serde_json::json!({
                    "image": image.display().to_string(),
                    "complete": missing.is_empty(),
                    "missing": missing,
                });
                serde_json::to_writer_pretty(&mut out, &v)?;
                writeln!(out)?;
                return Ok(if missing.is_empty() { 0 } else { 1 });
            }
            if missing.is_empty() {
                if !g.quiet {
                    writeln!(
                        out,
                        "{}: {} ({} modules, {} firmware, {} files)",
                        image.display(),
                        crate::term::paint(
                            crate::term::stdout_colour(),
                            crate::term::Style::Good,
                            "complete"
                        ),
                        p.modules.iter().filter(|m| !m.builtin).count(),
                        p.firmware.iter().map(|f| f.files.len()).sum::<usize>(),
                        p.files.len()
                    )?;
                }
                return Ok(0);
            }
            writeln!(
                out,
                "{}: {}",
                image.display(),
                crate::term::paint(
                    crate::term::stdout_colour(),
                    crate::term::Style::Bad,
                    &format!("missing {} item(s):", missing.len())
                )
            )?;
            for m in &missing {
                writeln!(out, "  {m}")?;
            }
            return Ok(1);
        }
        Command::Generate { .. } => unreachable!("handled before the inputs are read"),
        Command::Files {
            extract,
            kind,
            json,
        } => {
            let p = plan::build(&ctx)?;
            crate::output::files(&mut out, &p, extract.as_deref(), kind, json)?;
            report_warnings(g, &p.warnings, &p.not_understood);
        }
    }
    Ok(0)
}

/// Man pages (rdma-initrd.1 and rdma-initrd-COMMAND.1) or completions for
/// bash, zsh and fish, from the clap definition.
fn generate(what: Generate, out: &Path) -> Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let cmd = Cli::command();
    match what {
        Generate::Man => {
            clap_mangen::generate_to(cmd, out).with_context(|| out.display().to_string())?;
        }
        Generate::Completions => {
            for shell in [
                clap_complete::Shell::Bash,
                clap_complete::Shell::Zsh,
                clap_complete::Shell::Fish,
            ] {
                clap_complete::generate_to(shell, &mut Cli::command(), "rdma-initrd", out)
                    .with_context(|| out.display().to_string())?;
            }
            let _ = cmd;
        }
    }
    Ok(())
}

/// mtime for every entry of an image: SOURCE_DATE_EPOCH, or 0.
fn source_date_epoch() -> Result<u32> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse::<u32>()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v}: not a number of seconds")),
        Err(_) => Ok(0),
    }
}

fn report_warnings(g: &Global, warnings: &[String], not_understood: &[String]) {
    if g.quiet {
        return;
    }
    use crate::term::{paint, Style};
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
    let mode = if g.hostonly {
        Mode::Hostonly
    } else if g.generic {
        Mode::Generic
    } else if !g.profile.is_empty() || !g.driver.is_empty() || !g.protocol.is_empty() {
        Mode::Selected
    } else if root.is_slash() {
        Mode::Hostonly
    } else {
        Mode::Generic
    };
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
        },
        extra_config: absolute(&g.config)?,
        extra_rules: absolute(&g.rules_dir)?,
        init: match g.init {
            InitArg::Systemd => plan::Init::Systemd,
            InitArg::Udev => plan::Init::Udev,
        },
        generator: match g.generator {
            GeneratorArg::None => Generator::None,
            GeneratorArg::Dracut => Generator::Dracut,
            GeneratorArg::InitramfsTools => Generator::InitramfsTools,
            GeneratorArg::Mkinitcpio => Generator::Mkinitcpio,
        },
    })
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
