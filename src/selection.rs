//! What to plan for: the selection the command line (or an image's
//! manifest) gives, and the node profiles `detect --json` writes. Facts and
//! plan both take these; neither owns them.

use crate::netroot::{NetRoot, NetRootFact};
use crate::udev::device::Device;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use crate::netroot::Generator;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Hostonly,
    Generic,
    /// Only what --profile/--driver/--protocol name.
    Selected,
}

/// What runs in the initramfs: it decides how the units the rules want are
/// honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// systemd (dracut, mkinitcpio's `systemd` hook): the units and their
    /// confs are installed and systemd starts them.
    #[default]
    Systemd,
    /// udev without systemd (initramfs-tools, mkinitcpio's `udev` hook): a
    /// generated rules file loads what the wanted units would.
    Udev,
}

/// What to plan for.
#[derive(Debug, Clone)]
pub struct Selection {
    pub mode: Mode,
    pub profiles: Vec<PathBuf>,
    pub drivers: Vec<String>,
    pub protocols: Vec<String>,
    /// Roots over RDMA the image must mount (`--netroot`); None: decided by
    /// the mode (host-only: this machine's root; generic: every one the
    /// generator can mount; profiles: theirs).
    pub netroot: Option<Vec<NetRoot>>,
    pub init: Init,
    /// The generator the plan is for (`--generator`, passed by the hooks).
    pub generator: Generator,
}

/// A profile: what `detect --json` printed on another machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub schema: u32,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub kver: Option<String>,
    pub devices: Vec<Device>,
    /// The node's root, when it is mounted over RDMA.
    #[serde(default)]
    pub netroot: Option<NetRootFact>,
}
