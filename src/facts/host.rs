//! This machine (host-only): its devices from sysfs (`--sysfs`, default
//! ROOT/sys, with the udev database of ROOT/run/udev/data), and its root
//! when it is mounted over RDMA (ROOT/proc/self/mountinfo and sysfs). And the
//! profiles other machines saved with `detect --json`.

use super::{Inputs, Rules};
use crate::error::{InputError, Warning};
use crate::kmod::ModDb;
use crate::netroot::{self, NetRootFact};
use crate::selection::Profile;
use crate::udev::device::Device;
use anyhow::{Context, Result};
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct Host {
    pub devices: Vec<Device>,
    /// sysfs entries that could not be read (loops, junk).
    pub warnings: Vec<Warning>,
    pub netroot: Option<NetRootFact>,
}

pub fn read(inputs: &Inputs, db: &ModDb, rules: &Rules) -> Result<Host> {
    let udev_db = inputs
        .root
        .resolve("/run/udev/data")
        .ok()
        .filter(|p| p.is_dir());
    let d = crate::sysfs::Sysfs::new(&inputs.sysfs, udev_db)
        .detect(Some(db), &rules.referenced_attrs());
    Ok(Host {
        devices: d.devices,
        warnings: d.warnings,
        netroot: read_netroot(inputs)?,
    })
}

/// The root over RDMA this machine runs on, if it does.
fn read_netroot(inputs: &Inputs) -> Result<Option<NetRootFact>> {
    let Some(text) = inputs.root.read_opt("/proc/self/mountinfo")? else {
        return Ok(None);
    };
    let mounts = netroot::parse_mountinfo(&String::from_utf8_lossy(&text));
    Ok(netroot::detect(&mounts, |dev| {
        netroot::block_facts(&inputs.sysfs, dev)
    }))
}

/// A profile: what `detect --json` printed on another machine.
pub fn read_profile(path: &Path) -> Result<Profile> {
    let bytes = crate::root::read_capped(path, crate::root::MAX_CONFIG_FILE)
        .with_context(|| path.display().to_string())?;
    let text = String::from_utf8_lossy(&bytes);
    let p: Profile = serde_json::from_str(&text).map_err(|e| {
        InputError::at(
            &path.display().to_string(),
            e.line(),
            format!("not a `detect --json` profile: {e}"),
        )
    })?;
    if p.schema != 1 {
        anyhow::bail!(
            "{}: profile schema {} is not supported (expected 1)",
            path.display(),
            p.schema
        );
    }
    Ok(p)
}
