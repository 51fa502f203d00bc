//! Why something is in a plan.

use crate::netroot::NetRoot;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A `kmod load` in a rule that matched a device (or any rule, generic).
    Rule {
        file: String,
        line: usize,
        request: String,
        device: Option<String>,
    },
    /// Listed in a modules-load conf.
    Conf {
        file: String,
        line: usize,
        request: String,
    },
    /// A device's modalias names an RDMA provider.
    Modalias {
        device: String,
        modalias: String,
    },
    /// An RDMA device exists and this is its driver.
    Loaded {
        device: String,
    },
    /// Every RDMA hardware provider of the kernel (generic images).
    Generic,
    /// `--driver`.
    Requested {
        request: String,
    },
    Dependency {
        of: String,
    },
    Softdep {
        of: String,
        file: String,
        line: usize,
        when: String,
    },
    Weakdep {
        of: String,
        file: String,
        line: usize,
    },
    /// The transport of a root over RDMA the image must mount.
    Netroot {
        root: NetRoot,
        request: String,
    },
}

impl Reason {
    /// The name asked for, where the reason is a request by name (a rule, a
    /// conf line, a root's transport): what an image's index must resolve.
    pub fn request(&self) -> Option<&str> {
        match self {
            Reason::Rule { request, .. }
            | Reason::Conf { request, .. }
            | Reason::Netroot { request, .. } => Some(request),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Rule {
                file,
                line,
                request,
                device,
            } => match device {
                Some(d) => write!(f, "rule {file}:{line} (kmod load {request}) matched {d}"),
                None => write!(f, "rule {file}:{line} (kmod load {request})"),
            },
            Reason::Conf {
                file,
                line,
                request,
            } => write!(f, "listed in {file}:{line} as {request}"),
            Reason::Modalias { device, modalias } => write!(f, "modalias {modalias} of {device}"),
            Reason::Loaded { device } => write!(f, "driver of {device}"),
            Reason::Generic => f.write_str("RDMA hardware provider (generic image)"),
            Reason::Requested { request } => write!(f, "--driver {request}"),
            Reason::Dependency { of } => write!(f, "dependency of {of}"),
            Reason::Softdep {
                of,
                file,
                line,
                when,
            } => write!(f, "softdep {when} of {of} ({file}:{line})"),
            Reason::Weakdep { of, file, line } => {
                write!(f, "weakdep of {of} ({file}:{line}), shipped, not loaded")
            }
            Reason::Netroot { root, request } => {
                write!(f, "transport of a {root} root over RDMA (as {request})")
            }
        }
    }
}
