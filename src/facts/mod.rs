//! Facts: everything a plan is made from, read once from a root and the
//! command line. All the file I/O of planning happens here (and in the
//! [`Readers`] of `.modinfo` and firmware, which read what a plan says it
//! [`Needs`] into [`Found`]); the plan itself is a pure function of these
//! values.
//!
//! Each file carries its [`Source`]: the root's, one named on the command
//! line, rdma-initrd's own (units/), or generated. The fallback to
//! rdma-initrd's own files is decided here, once: where the root has no RDMA
//! rules at all, its rules, units and confs come from units/.

#[cfg(test)]
pub mod fake;
mod host;
pub mod lookups;
pub mod modprobe;
pub mod programs;
pub mod rules;
mod units;

pub use host::Host;
pub use lookups::{
    FirmwareSource, Found, Info, ModinfoSource, ModuleFile, Needs, ReadModinfo, Readers,
    RootFirmware, MAX_MODULE_BYTES,
};
pub use modprobe::ModprobeFile;
pub use programs::{Program, ProgramRef, Programs};
pub use rules::Rules;
pub use units::{ConfFile, DropinFile, UnitFile, Units};

use crate::error::Warning;
use crate::kmod::ModDb;
use crate::root::Root;
use crate::selection::{Mode, Profile};
use anyhow::Result;
use std::path::PathBuf;

/// What a run reads: resolved from the command line (see `cli`).
#[derive(Debug, Clone)]
pub struct Inputs {
    pub root: Root,
    pub kver: String,
    pub moddir: PathBuf,
    pub sysfs: PathBuf,
    pub selection: crate::selection::Selection,
    /// modprobe.d-style files read after the root's (`--config`).
    pub extra_config: Vec<PathBuf>,
    /// udev rules directories read before the root's (`--rules-dir`).
    pub extra_rules: Vec<PathBuf>,
}

/// Everything read for a plan.
pub struct Facts {
    pub root: Root,
    pub kver: String,
    pub moddir: PathBuf,
    /// The module database (depmod's files and the configuration below).
    pub db: ModDb,
    /// modprobe.d-style files in libkmod's order, with the names each names.
    pub modprobe: Vec<ModprobeFile>,
    pub rules: Rules,
    /// Units the RDMA rules can want (and what they want), and the module
    /// lists they load.
    pub units: Units,
    /// Programs that rules, units and install commands run.
    pub programs: Programs,
    /// This machine's devices and root (host-only).
    pub host: Option<Host>,
    /// `--profile` files, as given.
    pub profiles: Vec<(String, Profile)>,
    /// The kernel's RDMA hardware providers (modules under
    /// `kmod::RDMA_HW_DIR`), read for a generic plan only.
    pub hw_providers: Vec<String>,
    /// Whether module files are opened for their `.modinfo` (not for
    /// `modules`: names and paths only, no firmware, sizes or compressions).
    pub reads_modinfo: bool,
    /// Problems met while reading (skipped lines, unreadable files).
    pub warnings: Vec<Warning>,
    /// Problems of the module directory: its modprobe.d-style configuration
    /// and its indexes (reported after the plan's own, with what lookups met).
    pub index_warnings: Vec<Warning>,
}

impl Facts {
    /// Read what `inputs` name. `modinfo: false` opens no module file (what
    /// `modules` needs): no firmware, sizes or compressions in the plan.
    pub fn read(inputs: &Inputs, modinfo: bool) -> Result<Facts> {
        let mut warnings = Vec::new();
        let root = &inputs.root;
        // The module directory's warnings (its configuration's, its
        // indexes') are reported with the ones its lookups add.
        let mut index_warnings = Vec::new();
        let (config, modprobe) = modprobe::read(
            root,
            &inputs.moddir,
            &inputs.extra_config,
            Some(&crate::units::MODPROBE),
            &mut index_warnings,
        )?;
        let (db, opened) = ModDb::open(&inputs.moddir, &inputs.kver, config)?;
        index_warnings.extend(opened);
        let rules = rules::read(root, &inputs.extra_rules, &db, &mut warnings)?;
        let sel = &inputs.selection;
        let units = units::read(root, &rules, &sel.protocols)?;
        let programs = programs::read(root, &rules, &units, &db, modinfo)?;
        let host = match sel.mode {
            Mode::Hostonly => Some(host::read(inputs, &db, &rules)?),
            _ => None,
        };
        let profiles = sel
            .profiles
            .iter()
            .map(|p| Ok((p.display().to_string(), host::read_profile(p)?)))
            .collect::<Result<Vec<_>>>()?;
        let hw_providers = match sel.mode {
            Mode::Generic => db.modules_under(crate::kmod::RDMA_HW_DIR),
            _ => Vec::new(),
        };
        Ok(Facts {
            root: root.clone(),
            kver: inputs.kver.clone(),
            moddir: inputs.moddir.clone(),
            db,
            modprobe,
            rules,
            units,
            programs,
            host,
            profiles,
            hw_providers,
            reads_modinfo: modinfo,
            warnings,
            index_warnings,
        })
    }

    /// Facts for `detect`: this machine's devices (whatever the mode) and the
    /// profiles given.
    pub fn read_for_detect(inputs: &Inputs) -> Result<Facts> {
        let mut i = inputs.clone();
        i.selection.mode = Mode::Hostonly;
        Facts::read(&i, false)
    }
}
