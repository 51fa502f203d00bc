//! Where a file of a plan comes from: the root, a path given on the command
//! line, rdma-initrd's own files (units/, embedded in the binary), or text
//! rdma-initrd writes for this plan.

use crate::units::Embedded;
use serde::{Serialize, Serializer};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file of `--root`: its path inside the root and on the host.
    Root { inner: String, host: PathBuf },
    /// A host file named on the command line (`--rules-dir`, `--config`).
    Host(PathBuf),
    /// rdma-initrd's own file, embedded from units/.
    Own(&'static Embedded),
    /// Written by rdma-initrd for this plan.
    Generated { name: &'static str, text: String },
}

/// How an embedded file is named as a plan source.
pub const OWN_PREFIX: &str = "embedded:";
/// How a generated file is named as a plan source.
pub const GENERATED_PREFIX: &str = "generated:";

impl Source {
    pub fn root(inner: impl Into<String>, host: impl Into<PathBuf>) -> Source {
        Source::Root {
            inner: inner.into(),
            host: host.into(),
        }
    }

    /// The host file to copy, for sources that are files.
    pub fn host(&self) -> Option<&Path> {
        match self {
            Source::Root { host, .. } | Source::Host(host) => Some(host),
            Source::Own(_) | Source::Generated { .. } => None,
        }
    }

    /// The name and text of a file rdma-initrd provides itself (own or
    /// generated); None for files of the root or the command line.
    pub fn own_text(&self) -> Option<(&str, &str)> {
        match self {
            Source::Own(e) => Some((e.name, e.text)),
            Source::Generated { name, text } => Some((name, text)),
            Source::Root { .. } | Source::Host(_) => None,
        }
    }

    pub fn is_own(&self) -> bool {
        matches!(self, Source::Own(_))
    }

    /// How plans and messages name it: a host path, `embedded:NAME` or
    /// `generated:NAME`.
    pub fn label(&self) -> String {
        match self {
            Source::Root { host, .. } | Source::Host(host) => host.display().to_string(),
            Source::Own(e) => format!("{OWN_PREFIX}{}", e.name),
            Source::Generated { name, .. } => format!("{GENERATED_PREFIX}{name}"),
        }
    }

    /// The bytes it holds (read from the host for files).
    pub fn bytes(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Source::Root { host, .. } | Source::Host(host) => std::fs::read(host),
            Source::Own(e) => Ok(e.text.as_bytes().to_vec()),
            Source::Generated { text, .. } => Ok(text.as_bytes().to_vec()),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}
