//! rdma-initrd: decide which RDMA modules, firmware, rules, units and configs
//! an initramfs needs so that early boot takes rdma-core's hot-plug path.

pub mod backend;
pub mod cli;
pub mod cpio;
pub mod elfdeps;
pub mod error;
pub mod facts;
pub mod firmware;
pub mod kmod;
pub mod manifest;
pub mod mapped;
pub mod netroot;
pub mod output;
pub mod overlay;
pub mod plan;
pub mod root;
pub mod segments;
pub mod selection;
pub mod sha256;
pub mod source;
pub mod sysfs;
pub mod systemd;
pub mod term;
pub mod udev;
pub mod units;
