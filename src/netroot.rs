//! Roots mounted over RDMA: NFS over RDMA, NVMe over Fabrics on RDMA, iSCSI
//! over iSER. What each needs in an image beyond the RDMA device (the
//! transport module, as the mount path asks for it), which of them this
//! machine's root uses (from its mount table and sysfs), and which
//! generators can mount them at all.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A kind of root mounted over RDMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetRoot {
    /// NFS with `proto=rdma` (`root=nfs4:SERVER:/PATH:proto=rdma`).
    Nfs,
    /// An NVMe namespace over NVMe-oF on RDMA (`rd.nvmf.discover=rdma,...`).
    Nvmf,
    /// An iSCSI LUN over iSER (`rd.iscsi.param=iface.transport_name=iser`).
    Iscsi,
}

impl NetRoot {
    pub const ALL: [NetRoot; 3] = [NetRoot::Nfs, NetRoot::Nvmf, NetRoot::Iscsi];

    pub fn name(self) -> &'static str {
        match self {
            NetRoot::Nfs => "nfs",
            NetRoot::Nvmf => "nvmf",
            NetRoot::Iscsi => "iscsi",
        }
    }

    /// "an NFS root", for messages.
    pub fn a_root(self) -> &'static str {
        match self {
            NetRoot::Nfs => "an NFS root",
            NetRoot::Nvmf => "an NVMe-oF root",
            NetRoot::Iscsi => "an iSCSI root",
        }
    }

    /// The module name the mount path asks for, exactly as it asks (so that
    /// the image's aliases resolve it as at boot), and who asks.
    pub fn transport(self) -> (&'static str, &'static str) {
        match self {
            // net/sunrpc/xprt.c: request_module("xprt%s", "rdma"); an alias
            // of rpcrdma.
            NetRoot::Nfs => (
                "xprtrdma",
                "the kernel requests it for an NFS mount with proto=rdma",
            ),
            // drivers/nvme/host/fabrics.c: request_module("nvme-%s", "rdma").
            NetRoot::Nvmf => (
                "nvme-rdma",
                "nvme-fabrics requests it for a controller with transport rdma",
            ),
            // open-iscsi loads the transport's module by name.
            NetRoot::Iscsi => ("ib_iser", "iscsid loads it for the iser transport"),
        }
    }
}

impl std::fmt::Display for NetRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The initramfs generator the plan is for (`--generator`, passed by the
/// hooks): what its boot scripts can mount, and where the boot hooks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generator {
    /// No generator: `install`, or the plan read by a person or script.
    #[default]
    None,
    Dracut,
    InitramfsTools,
    Mkinitcpio,
}

impl Generator {
    pub fn name(self) -> &'static str {
        match self {
            Generator::None => "none",
            Generator::Dracut => "dracut",
            Generator::InitramfsTools => "initramfs-tools",
            Generator::Mkinitcpio => "mkinitcpio",
        }
    }

    /// The list its boot code loads modules from whatever the hardware
    /// (`--protocol` without systemd): initramfs-tools' init reads
    /// conf/modules (`force_load`); mkinitcpio's runtime hook rdma-initrd
    /// (mkinitcpio/hooks/rdma-initrd) reads its own list.
    pub fn preload_list(self) -> &'static str {
        match self {
            Generator::Mkinitcpio => "etc/rdma-initrd/preload",
            _ => "conf/modules",
        }
    }

    /// Why this generator's boot scripts cannot mount `root` over RDMA, or
    /// None when they can (or when the generator is not known).
    pub fn cannot_mount(self, root: NetRoot) -> Option<&'static str> {
        match (self, root) {
            (Generator::None | Generator::Dracut, _) => None,
            (Generator::InitramfsTools, NetRoot::Nfs) => Some(
                "its nfs boot script mounts the root with klibc's nfsmount, which has no RDMA transport",
            ),
            (Generator::InitramfsTools, NetRoot::Nvmf) => {
                Some("it has no boot script that connects NVMe over Fabrics")
            }
            (Generator::InitramfsTools, NetRoot::Iscsi) => Some(
                "open-iscsi's boot script logs in with iscsistart over TCP; it has no setting for the iser transport",
            ),
            (Generator::Mkinitcpio, NetRoot::Nfs) => Some(
                "the net hook (mkinitcpio-nfs-utils) mounts the root with klibc's nfsmount, which has no RDMA transport",
            ),
            (Generator::Mkinitcpio, NetRoot::Nvmf | NetRoot::Iscsi) => {
                Some("it has no hook that mounts such a root")
            }
        }
    }

    /// Whether a generic image for this generator carries every RDMA root's
    /// transport by default (those it can mount).
    pub fn generic_netroots(self) -> Vec<NetRoot> {
        NetRoot::ALL
            .into_iter()
            .filter(|r| self.cannot_mount(*r).is_none())
            .collect()
    }
}

/// A root over RDMA and why it is in a plan (or, in `detect --json`, how
/// this machine's root is mounted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRootFact {
    pub root: NetRoot,
    pub evidence: String,
}

/// One line of `/proc/self/mountinfo`, the fields that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `MAJOR:MINOR` of the mounted device.
    pub dev: String,
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
    /// Per-mount and super-block options, comma-separated.
    pub options: String,
}

/// Parse mountinfo (proc(5)): `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS
/// [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`. Lines that do not have that
/// shape are skipped (the kernel writes none).
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|w| *w == "-") else {
            continue;
        };
        if sep < 6 || f.len() < sep + 4 {
            continue;
        }
        out.push(Mount {
            dev: f[2].to_string(),
            mount_point: unescape(f[4]),
            fstype: f[sep + 1].to_string(),
            source: unescape(f[sep + 2]),
            options: format!("{},{}", f[5], f[sep + 3]),
        });
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What sysfs says about the block device a root is on (or one of the
/// devices under it, for device-mapper and md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockFact {
    /// An NVMe controller with this transport (`tcp`, `rdma`, `pcie`, ...).
    Nvme {
        controller: String,
        transport: String,
    },
    /// A SCSI host of this driver (`proc_name`: `iscsi_iser`, `iscsi_tcp`, ...).
    Scsi { host: String, proc_name: String },
}

/// The RDMA root this machine booted from, with the evidence; None when the
/// root is not mounted over RDMA. `block` gives the facts of the block device
/// `MAJOR:MINOR` (see [`block_facts`]).
pub fn detect(mounts: &[Mount], block: impl Fn(&str) -> Vec<BlockFact>) -> Option<NetRootFact> {
    // The root is the last mount on "/" (earlier ones are hidden under it).
    let root = mounts.iter().rev().find(|m| m.mount_point == "/")?;
    if root.fstype == "nfs" || root.fstype == "nfs4" {
        let rdma = root
            .options
            .split(',')
            .any(|o| o == "proto=rdma" || o == "rdma");
        return rdma.then(|| NetRootFact {
            root: NetRoot::Nfs,
            evidence: format!("/ is {} from {} with proto=rdma", root.fstype, root.source),
        });
    }
    for fact in block(&root.dev) {
        match fact {
            BlockFact::Nvme {
                controller,
                transport,
            } if transport == "rdma" => {
                return Some(NetRootFact {
                    root: NetRoot::Nvmf,
                    evidence: format!(
                        "/ is on {} (NVMe controller {controller}, transport rdma)",
                        root.source
                    ),
                })
            }
            BlockFact::Scsi { host, proc_name } if proc_name == "iscsi_iser" => {
                return Some(NetRootFact {
                    root: NetRoot::Iscsi,
                    evidence: format!("/ is on {} (SCSI {host}, driver iscsi_iser)", root.source),
                })
            }
            _ => {}
        }
    }
    None
}

/// Facts about block device `MAJOR:MINOR` from a sysfs tree: the NVMe
/// controllers or SCSI hosts under it, following partitions to their disk
/// and device-mapper/md devices to their slaves. Paths that leave `sysfs`
/// (or loop) are ignored.
pub fn block_facts(sysfs: &Path, dev: &str) -> Vec<BlockFact> {
    let Ok(top) = sysfs.canonicalize() else {
        return Vec::new();
    };
    let inside = |p: &Path| -> Option<PathBuf> {
        let c = p.canonicalize().ok()?;
        c.starts_with(&top).then_some(c)
    };
    let mut out = Vec::new();
    let mut todo: Vec<PathBuf> = inside(&sysfs.join("dev/block").join(dev))
        .into_iter()
        .collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(mut b) = todo.pop() {
        if !seen.insert(b.clone()) || seen.len() > 64 {
            continue;
        }
        if b.join("partition").is_file() {
            if let Some(disk) = b.parent().and_then(inside) {
                b = disk;
            }
        }
        if let Ok(rd) = std::fs::read_dir(b.join("slaves")) {
            for e in rd.flatten() {
                todo.extend(inside(&e.path()));
            }
        }
        let Some(device) = inside(&b.join("device")) else {
            continue;
        };
        // NVMe: the controller itself, or (native multipath) the subsystem
        // with its controllers nvmeN beneath.
        let mut ctrls = vec![device.clone()];
        if let Ok(rd) = std::fs::read_dir(&device) {
            let mut v: Vec<PathBuf> = rd
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("nvme"))
                .filter_map(|e| inside(&e.path()))
                .collect();
            v.sort();
            ctrls.extend(v);
        }
        for c in ctrls {
            if let Ok(t) = std::fs::read_to_string(c.join("transport")) {
                out.push(BlockFact::Nvme {
                    controller: file_name(&c),
                    transport: t.trim().to_string(),
                });
            }
        }
        // SCSI: the hostN component of the device's path.
        if let Some(host) = device
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .rfind(|c| {
                c.len() > 4 && c.starts_with("host") && c[4..].bytes().all(|b| b.is_ascii_digit())
            })
        {
            let pn =
                std::fs::read_to_string(sysfs.join("class/scsi_host").join(host).join("proc_name"))
                    .unwrap_or_default();
            out.push(BlockFact::Scsi {
                host: host.to_string(),
                proc_name: pn.trim().to_string(),
            });
        }
    }
    out
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NFS: &str = "22 1 0:21 / / rw,relatime shared:1 - nfs4 10.0.2.1:/ rw,vers=4.2,rsize=131072,proto=rdma,port=20049,addr=10.0.2.1\n";

    #[test]
    fn an_nfs_root_over_rdma_is_found_and_one_over_tcp_is_not() {
        let m = parse_mountinfo(NFS);
        assert_eq!(m.len(), 1);
        let f = detect(&m, |_| Vec::new()).expect("an RDMA root");
        assert_eq!(f.root, NetRoot::Nfs);
        assert!(f.evidence.contains("10.0.2.1:/"), "{}", f.evidence);
        let tcp = NFS.replace("proto=rdma", "proto=tcp");
        assert_eq!(detect(&parse_mountinfo(&tcp), |_| Vec::new()), None);
        // The short form `rdma` is the same option.
        let short = NFS.replace("proto=rdma", "rdma");
        assert_eq!(
            detect(&parse_mountinfo(&short), |_| Vec::new()).map(|x| x.root),
            Some(NetRoot::Nfs)
        );
    }

    #[test]
    fn the_last_mount_on_root_decides() {
        let text = format!("{NFS}30 22 8:1 / / rw - ext4 /dev/sda1 rw\n");
        let m = parse_mountinfo(&text);
        assert_eq!(detect(&m, |_| Vec::new()), None);
        let iser = |d: &str| {
            assert_eq!(d, "8:1");
            vec![BlockFact::Scsi {
                host: "host2".into(),
                proc_name: "iscsi_iser".into(),
            }]
        };
        assert_eq!(detect(&m, iser).map(|x| x.root), Some(NetRoot::Iscsi));
        let nvme = |_: &str| {
            vec![BlockFact::Nvme {
                controller: "nvme0".into(),
                transport: "rdma".into(),
            }]
        };
        assert_eq!(detect(&m, nvme).map(|x| x.root), Some(NetRoot::Nvmf));
        let pcie = |_: &str| {
            vec![BlockFact::Nvme {
                controller: "nvme0".into(),
                transport: "pcie".into(),
            }]
        };
        assert_eq!(detect(&m, pcie), None);
    }

    #[test]
    fn mountinfo_escapes_and_junk() {
        let m = parse_mountinfo("1 2 0:5 / /a\\040b rw - tmpfs x\\134y rw\nnot a line\n1 2 3\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].mount_point, "/a b");
        assert_eq!(m[0].source, "x\\y");
    }

    #[test]
    fn generators_refuse_what_they_cannot_mount() {
        assert!(Generator::Dracut.cannot_mount(NetRoot::Nfs).is_none());
        assert!(Generator::InitramfsTools
            .cannot_mount(NetRoot::Nfs)
            .is_some_and(|w| w.contains("nfsmount")));
        assert_eq!(Generator::Dracut.generic_netroots(), NetRoot::ALL.to_vec());
        assert!(Generator::InitramfsTools.generic_netroots().is_empty());
        assert!(Generator::Mkinitcpio.generic_netroots().is_empty());
    }
}
