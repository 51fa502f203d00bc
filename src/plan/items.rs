//! The plan as one list: everything it puts in an image, each item with its
//! kind, where its bytes come from, where it goes, its mode and why. Every
//! backend walks this list (the image tree, hook lines, `files`, `verify`,
//! the manifest, `--base`'s kept names), so they agree on what an image
//! holds and in which order. The module index is not an item: depmod makes
//! it for the finished tree (`backend::tree`).

use super::{FileKind, FwFile, Plan, PlanFile, PlanFirmware, PlanModule, Preload};
use crate::source::Source;

/// What an item is, as lines, listings and the manifest name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Module,
    Firmware,
    File(FileKind),
    /// systemd: a link in `initrd.target.wants`.
    Want,
    /// Without systemd: one line of a list of modules loaded at boot.
    Load,
}

impl ItemKind {
    pub fn name(self) -> &'static str {
        match self {
            ItemKind::Module => "module",
            ItemKind::Firmware => "firmware",
            ItemKind::File(k) => k.name(),
            ItemKind::Want => "want",
            ItemKind::Load => "load",
        }
    }
}

/// Where an item's bytes come from.
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    /// A host file, copied as it is (modules, firmware).
    Host(&'a str),
    /// A rule, unit, conf, program, hook...: a root, host, own or generated
    /// source.
    Source(&'a Source),
    /// A symbolic link to this path inside the image.
    Link(&'a str),
    /// One line (a module name) added to a list file.
    Line(&'a str),
}

/// An item's permission bits in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Fixed(u32),
    /// Those of its host file.
    OfSource,
}

/// The plan entry an item comes from, for what a backend needs beyond the
/// common fields (a module's name, a firmware's module, a list's conf).
#[derive(Debug, Clone, Copy)]
pub enum Of<'a> {
    Module(&'a PlanModule),
    Firmware(&'a PlanFirmware, &'a FwFile),
    File(&'a PlanFile),
    /// The unit wanted by initrd.target.
    Want(&'a str),
    Load(&'a Preload),
}

#[derive(Debug, Clone)]
pub struct Item<'a> {
    pub kind: ItemKind,
    pub content: Content<'a>,
    /// Path inside the image (a hook's: HOOKDIR/PRIO-NAME under the
    /// generator's hook directory).
    pub dest: String,
    pub perm: Perm,
    pub of: Of<'a>,
}

impl Item<'_> {
    /// Why the plan has it.
    pub fn reason(&self) -> String {
        match self.of {
            Of::Module(m) => m.reasons.first().map(|r| r.to_string()).unwrap_or_default(),
            Of::Firmware(fw, _) => format!("firmware of {}", fw.modules.join(", ")),
            Of::File(f) => f.reason.clone(),
            Of::Want(unit) => format!("--protocol: initrd.target wants {unit}"),
            Of::Load(l) => format!("--protocol: listed in {}:{}", l.conf, l.line),
        }
    }
}

/// Where systemd links the units initrd.target wants.
pub const WANTS_DIR: &str = "etc/systemd/system/initrd.target.wants";

impl Plan {
    /// Everything the plan puts in an image, in the order hooks add it:
    /// module files (in load order), files, firmware files, wants, then
    /// boot-time loads. Builtin modules are not items.
    pub fn items(&self) -> Vec<Item<'_>> {
        let mut out = Vec::new();
        for m in &self.modules {
            if let (Some(rel), Some(path)) = (&m.relpath, &m.path) {
                out.push(Item {
                    kind: ItemKind::Module,
                    content: Content::Host(path),
                    dest: format!("lib/modules/{}/{rel}", self.kver),
                    perm: Perm::Fixed(0o644),
                    of: Of::Module(m),
                });
            }
        }
        for f in &self.files {
            out.push(Item {
                kind: ItemKind::File(f.kind),
                content: Content::Source(&f.source),
                dest: f.dest.clone(),
                perm: match (f.kind, f.source.host()) {
                    (FileKind::Hook, _) => Perm::Fixed(0o755),
                    (_, Some(_)) => Perm::OfSource,
                    (_, None) => Perm::Fixed(0o644),
                },
                of: Of::File(f),
            });
        }
        for fw in &self.firmware {
            for file in &fw.files {
                out.push(Item {
                    kind: ItemKind::Firmware,
                    content: Content::Host(&file.source),
                    dest: file.path.clone(),
                    perm: Perm::Fixed(0o644),
                    of: Of::Firmware(fw, file),
                });
            }
        }
        if let Some(template) = self.loader_template() {
            for w in &self.wants {
                out.push(Item {
                    kind: ItemKind::Want,
                    content: Content::Link(template),
                    dest: format!("{WANTS_DIR}/{w}"),
                    perm: Perm::Fixed(0o777),
                    of: Of::Want(w),
                });
            }
        }
        for l in &self.preload {
            out.push(Item {
                kind: ItemKind::Load,
                content: Content::Line(&l.module),
                dest: l.list.clone(),
                perm: Perm::Fixed(0o644),
                of: Of::Load(l),
            });
        }
        out
    }
}
