//! Host-only detection: read devices from a sysfs tree (`--sysfs`, default
//! ROOT/sys) into the records udev rules are evaluated on. Symlinks are
//! followed inside the sysfs tree only; loops and unreadable entries become
//! warnings, never failures.

use crate::error::{InputError, Warning};
use crate::kmod::ModDb;
use crate::root::Root;
use crate::udev::device::{Device, Parent};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Attribute files larger than this are not read.
const MAX_ATTR: u64 = 4096;

pub struct Sysfs {
    root: Root,
    /// Optional udev database (`ROOT/run/udev/data`) for ID_NET_DRIVER.
    udev_db: Option<PathBuf>,
}

pub struct Detected {
    pub devices: Vec<Device>,
    pub warnings: Vec<Warning>,
}

impl Sysfs {
    pub fn new(sysfs_dir: &Path, udev_db: Option<PathBuf>) -> Self {
        Sysfs {
            root: Root::new(sysfs_dir),
            udev_db,
        }
    }

    /// Read every net, PCI, auxiliary and infiniband device. `attrs` are the
    /// attribute names the rules refer to (read for each device and parent).
    pub fn detect(&self, db: Option<&ModDb>, attrs: &BTreeSet<String>) -> Detected {
        let mut devices = Vec::new();
        let mut warnings = Vec::new();
        for (dir, subsystem) in [
            ("/bus/pci/devices", "pci"),
            ("/bus/auxiliary/devices", "auxiliary"),
            ("/class/net", "net"),
            ("/class/infiniband", "infiniband"),
        ] {
            let names = match self.root.list_dir(dir) {
                Ok(n) => n,
                Err(e) => {
                    warnings.push(InputError::new(
                        &self.root.display(Path::new(dir)),
                        None,
                        e.to_string(),
                    ));
                    continue;
                }
            };
            for n in names {
                let link = format!("{dir}/{n}");
                match self.read_device(&link, subsystem, attrs, db) {
                    Ok(Some(d)) => devices.push(d),
                    Ok(None) => {}
                    Err(e) => warnings.push(InputError::new(
                        &self.root.display(Path::new(&link)),
                        None,
                        e,
                    )),
                }
            }
        }
        Detected { devices, warnings }
    }

    fn read_device(
        &self,
        link: &str,
        subsystem: &str,
        attrs: &BTreeSet<String>,
        db: Option<&ModDb>,
    ) -> Result<Option<Device>, String> {
        let host = self.root.resolve(link).map_err(|e| e.to_string())?;
        if !host.is_dir() {
            return Err("not a device directory (dangling or unreadable link)".into());
        }
        let devpath = self.root.inner(&host).display().to_string();
        let kernel = host
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let mut properties: BTreeMap<String, String> = BTreeMap::new();
        if let Some(text) = read_small(&host.join("uevent")) {
            for l in text.lines() {
                if let Some((k, v)) = l.split_once('=') {
                    properties.insert(k.to_string(), v.to_string());
                }
            }
        }
        let driver = link_basename(&host.join("driver"));
        if let Some(d) = &driver {
            properties.insert("DRIVER".into(), d.clone());
        }
        if !properties.contains_key("MODALIAS") {
            if let Some(m) = read_small(&host.join("modalias")) {
                properties.insert("MODALIAS".into(), m.trim().to_string());
            }
        }
        let mut dev = Device {
            subsystem: subsystem.to_string(),
            kernel: kernel.clone(),
            devpath,
            driver,
            properties,
            attrs: read_attrs(&host, attrs),
            parents: self.parents(&host, attrs),
            hypothetical: false,
            notes: Vec::new(),
        };
        if subsystem == "net" {
            if dev.devpath.starts_with("/devices/virtual/") {
                return Ok(None);
            }
            self.net_driver(&host, &mut dev, db);
        }
        Ok(Some(dev))
    }

    fn parents(&self, host: &Path, attrs: &BTreeSet<String>) -> Vec<Parent> {
        let mut out = Vec::new();
        let mut cur = host.parent();
        let stop = self.root.base().join("devices");
        while let Some(p) = cur {
            if p == stop || !p.starts_with(&stop) {
                break;
            }
            if p.join("uevent").exists() {
                out.push(Parent {
                    kernel: p
                        .file_name()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default()
                        .to_string(),
                    subsystem: link_basename(&p.join("subsystem")),
                    driver: link_basename(&p.join("driver")),
                    attrs: read_attrs(p, attrs),
                });
            }
            cur = p.parent();
        }
        out
    }

    /// ID_NET_DRIVER is what ethtool reports; sysfs does not show it. Take it
    /// from the udev database when there is one, else from the bound driver;
    /// where that driver's module is held by a network driver module (mlx4_en
    /// holds mlx4_core, whose PCI function carries the port), that holder is
    /// the netdev's driver.
    fn net_driver(&self, host: &Path, dev: &mut Device, db: Option<&ModDb>) {
        if let (Some(dbdir), Some(idx)) = (&self.udev_db, read_small(&host.join("ifindex"))) {
            let f = dbdir.join(format!("n{}", idx.trim()));
            if let Some(text) = read_small(&f) {
                if let Some(v) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("E:ID_NET_DRIVER="))
                {
                    dev.properties.insert("ID_NET_DRIVER".into(), v.to_string());
                    dev.notes.push(format!(
                        "ID_NET_DRIVER={v} from the udev database ({})",
                        f.display()
                    ));
                    return;
                }
            }
        }
        let inner = self.root.inner(host).join("device");
        let Some(parent_dir) = self.root.resolve(&inner).ok().filter(|p| p.is_dir()) else {
            return;
        };
        let Some(bound) = link_basename(&parent_dir.join("driver")) else {
            return;
        };
        let module = link_basename(&parent_dir.join("driver/module"))
            .unwrap_or_else(|| bound.replace('-', "_"));
        let holders = self
            .root
            .list_dir(format!("/module/{module}/holders"))
            .unwrap_or_default();
        let net_holders: Vec<String> = holders
            .into_iter()
            .filter(|h| match db.map(|d| d.kind(h)) {
                Some(crate::kmod::ModKind::File(p)) => p.contains("/drivers/net/"),
                _ => false,
            })
            .collect();
        if net_holders.len() == 1 {
            let h = &net_holders[0];
            dev.properties.insert("ID_NET_DRIVER".into(), h.clone());
            dev.notes.push(format!(
                "ID_NET_DRIVER={h} derived: the port's device is bound to {bound}, whose module is held by {h}, a network driver (drivers/net/)"
            ));
        } else {
            dev.properties.insert("ID_NET_DRIVER".into(), bound.clone());
            dev.notes.push(format!(
                "ID_NET_DRIVER={bound} taken from the driver bound to the port's device"
            ));
        }
    }
}

fn link_basename(p: &Path) -> Option<String> {
    let t = std::fs::read_link(p).ok()?;
    t.file_name().and_then(|s| s.to_str()).map(str::to_string)
}

/// Read a small regular file; symlinks are refused (sysfs attributes are never
/// links, and following one could leave the tree).
fn read_small(p: &Path) -> Option<String> {
    let md = std::fs::symlink_metadata(p).ok()?;
    if !md.is_file() || md.len() > MAX_ATTR {
        return None;
    }
    std::fs::read(p)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn read_attrs(dir: &Path, names: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for n in names {
        if n.contains("..") || n.starts_with('/') {
            continue;
        }
        if let Some(v) = read_small(&dir.join(n)) {
            out.insert(n.clone(), v.trim_end_matches('\n').to_string());
        }
    }
    out
}
