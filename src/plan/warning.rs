//! What a plan could not do as asked, or had to guess, each kind typed; the
//! plan's JSON prints each as its message.

use super::Reason;
use crate::error::InputError;
use serde::{Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A reader skipped a line or a file (the message names it).
    Input(InputError),
    /// A unit the rules want is in neither the root nor rdma-initrd's set.
    UnitMissing {
        unit: String,
        why: String,
    },
    /// A unit the rules want is left out of the image.
    NotInstalled {
        unit: String,
        why: String,
        because: NotInstalled,
    },
    /// A module list a unit loads is not in the root.
    ConfMissing {
        conf: String,
    },
    /// Without systemd, a unit whose names a rules line cannot hold.
    NotExpressible {
        unit: String,
    },
    /// A requested name that is no valid module name or alias.
    BadName {
        request: String,
        error: String,
    },
    /// `.modinfo` depends on a module modules.dep does not list.
    StaleDepends {
        module: String,
        dep: String,
    },
    /// A module the closure names that the kernel does not have.
    NotInKernel {
        module: String,
        needed_as: Option<Reason>,
    },
    Vermagic {
        module: String,
        vermagic: String,
        kver: String,
    },
    /// Firmware files a module names that are nowhere the kernel looks
    /// (one warning a module).
    FirmwareMissing {
        module: String,
        names: Vec<String>,
    },
    ProgramMissing {
        program: String,
        why: String,
    },
    /// The root has no RDMA rules: rdma-initrd's own are used.
    OwnRules,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotInstalled {
    /// `--init udev`: nothing starts units.
    NoSystemd,
    /// No `ExecStart=` at all.
    RunsNothing,
    /// These programs of it are not in the root.
    ProgramsMissing(Vec<String>),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Input(e) => e.fmt(f),
            Warning::UnitMissing { unit, why } => write!(f, "unit {unit} ({why}) is not in the root"),
            Warning::NotInstalled { unit, why, because } => {
                write!(f, "{unit} ({why}) is not installed: ")?;
                match because {
                    NotInstalled::NoSystemd => f.write_str("without systemd nothing starts it"),
                    NotInstalled::RunsNothing => f.write_str("it runs nothing"),
                    NotInstalled::ProgramsMissing(p) => write!(f, "{} is not in the root", p.join(", ")),
                }
            }
            Warning::ConfMissing { conf } => write!(f, "{conf}: not found in the root"),
            Warning::NotExpressible { unit } => write!(
                f,
                "{unit}: a unit or module name that a udev rules line cannot hold; without systemd nothing loads its lists"
            ),
            Warning::BadName { request, error } => write!(f, "'{request}': {error}"),
            Warning::StaleDepends { module, dep } => write!(
                f,
                "{module}: .modinfo depends on {dep}, which modules.dep does not list (stale depmod?)"
            ),
            Warning::NotInKernel { module, needed_as } => {
                write!(f, "{module} is not in this kernel")?;
                match needed_as {
                    Some(r) => write!(f, " (needed as {r})"),
                    None => Ok(()),
                }
            }
            Warning::Vermagic { module, vermagic, kver } => {
                write!(f, "{module}: vermagic '{vermagic}' does not match kernel {kver}")
            }
            Warning::FirmwareMissing { module, names } => {
                write!(f, "firmware for {module} not found: {}", names.join(", "))
            }
            Warning::ProgramMissing { program, why } => {
                write!(f, "program {program} ({why}) is not in the root")
            }
            Warning::OwnRules => f.write_str(
                "no RDMA udev rules (rdma-core) in the root: rdma-initrd's own rules, units and confs are used",
            ),
        }
    }
}

impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
