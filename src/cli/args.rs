//! The command line as clap parses it (the raw arguments), before they are
//! validated and resolved into a run's inputs (`resolve`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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
    /// The selection when none is given (no --hostonly, --generic,
    /// --profile, --driver or --protocol): what a generator hook passes for
    /// its own mode (dracut --hostonly, initramfs-tools MODULES=dep)
    #[arg(long, global = true, value_enum, value_name = "MODE")]
    pub default_selection: Option<SelectionArg>,
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
    /// The ids of the options given on the command line (not defaulted):
    /// `verify` takes the rest from an image's manifest.
    #[arg(skip)]
    pub given: Vec<String>,
}

impl Global {
    /// Whether the option with this id was given on the command line.
    pub fn was_given(&self, id: &str) -> bool {
        self.given.iter().any(|g| g == id)
    }
}

/// The ids of the options that make up a selection.
pub const SELECTION_IDS: &[&str] = &[
    "hostonly",
    "generic",
    "default_selection",
    "profile",
    "driver",
    "protocol",
];

/// The ids of every option `verify` may take from a manifest instead.
pub const MANIFEST_IDS: &[&str] = &[
    "hostonly",
    "generic",
    "default_selection",
    "profile",
    "driver",
    "protocol",
    "kver",
    "init",
    "netroot",
    "generator",
    "config",
    "rules_dir",
];

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
pub enum SelectionArg {
    Hostonly,
    Generic,
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
    #[command(
        after_help = "Example:\n  rdma-initrd plan --generic --explain\n\n--lines prints what the generator hooks translate, one item per line:\n  module NAME\n  file KIND ORIGIN HOST DEST   (KIND rule|unit|conf|modprobe|program|firmware; ORIGIN root|host)\n  hook HOST HOOKDIR PRIO       (dracut: inst_hook HOOKDIR PRIO HOST)\n  want TARGET UNIT LINK        (systemd: TARGET.wants/UNIT -> LINK)\n  load MODULE CONF LIST        (without systemd: load MODULE at boot, from LIST in the image)"
    )]
    Plan {
        #[arg(long, conflicts_with = "lines")]
        json: bool,
        /// Print the chain that brings in each module
        #[arg(long, conflicts_with = "lines")]
        explain: bool,
        /// Print the plan as lines for a generator hook (needs --extract)
        #[arg(long, requires = "extract")]
        lines: bool,
        /// Write rdma-initrd's own files the plan uses into DIR (their HOST in --lines)
        #[arg(long, value_name = "DIR", requires = "lines")]
        extract: Option<PathBuf>,
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
        /// Compression of the image (default zstd) or, with --base, of the
        /// appended segment (default: the base's)
        #[arg(long, value_enum)]
        compress: Option<CompressArg>,
        /// An existing initramfs to add the plan to: its bytes are copied and
        /// the plan appended as one more segment (replacing one an earlier
        /// run appended)
        #[arg(long, value_name = "IMAGE", requires = "output")]
        base: Option<PathBuf>,
        /// With --base: rewrite the whole image as one segment (early
        /// microcode segments kept), for tools that read only one segment
        #[arg(long, requires = "base")]
        rewrite: bool,
    },
    /// Check an initramfs against the plan; exit 1 with what is missing. With
    /// no selection and no --kver, the plan is made from the image's
    /// manifest (how it was made); options given replace its values
    #[command(
        after_help = "Examples:\n  rdma-initrd verify /boot/initrd.img-6.1.0-56-amd64\n  rdma-initrd verify --generic --kver 6.1.0-56-amd64 /srv/tftp/initrd.img"
    )]
    Verify {
        image: PathBuf,
        /// Print `{"image", "complete", "missing": [...], "selection", "segments"}`
        #[arg(long)]
        json: bool,
    },
    /// Show how an initramfs was made (its manifest) and its RDMA part:
    /// modules with their .modinfo versions, firmware, rules, units, confs,
    /// hooks. Reads the image only
    #[command(
        visible_alias = "lsinitrd",
        after_help = "Examples:\n  rdma-initrd inspect /boot/initrd.img-$(uname -r)\n  rdma-initrd lsinitrd --json /boot/initramfs-linux.img"
    )]
    Inspect {
        image: PathBuf,
        /// Print `{"image", "segments", "manifest", "modules", "files"}`
        #[arg(long)]
        json: bool,
    },
    /// systemd kernel-install plugin (55-rdma-initrd.install): on `add`, add
    /// RDMA to the initrd the generators staged in
    /// $KERNEL_INSTALL_STAGING_AREA (or to the distribution's initrd of that
    /// kernel), unless it already holds the plan
    #[command(
        name = "kernel-install",
        after_help = "Example (what the plugin runs):\n  rdma-initrd kernel-install add 6.12.48-amd64 /boot/ENTRY /boot/vmlinuz-6.12.48-amd64\n\nThe selection comes from ROOT/etc/rdma-initrd/kernel-install.conf (one argument per\nline, # comments; default --default-selection hostonly), then the command line."
    )]
    KernelInstall {
        /// add, remove, ... (only add does anything)
        command: String,
        kernel_version: String,
        #[arg(default_value = "")]
        entry_dir: String,
        #[arg(default_value = "")]
        kernel_image: String,
        /// Initrds given to kernel-install
        initrds: Vec<PathBuf>,
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
