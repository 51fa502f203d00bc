//! In-memory facts for tests of the planning stages: depmod-format texts,
//! rules, units, module lists, programs, devices and `.modinfo` records
//! given as values; nothing is read from disk.

use super::*;
use crate::kmod::config::Config;
use crate::kmod::modinfo::ModInfo;
use crate::kmod::{compress, ModDb};
use crate::source::Source;
use crate::systemd::Unit;
use crate::udev::device::Device;
use crate::udev::rules::RulesFile;
use std::collections::BTreeMap;

/// What a fake root holds.
#[derive(Default)]
pub struct Fake {
    /// modules.dep, modules.alias, modules.builtin texts.
    pub dep: &'static str,
    pub alias: &'static str,
    pub builtin: &'static str,
    /// modprobe.d files: (path, text).
    pub modprobe: Vec<(&'static str, &'static str)>,
    /// Rules files: (name, text), all taken as RDMA rules.
    pub rules: Vec<(&'static str, &'static str)>,
    /// Unit files: (file name, text).
    pub units: Vec<(&'static str, &'static str)>,
    /// Module lists: (path, text).
    pub confs: Vec<(&'static str, &'static str)>,
    /// Programs that exist (paths), and the `#!` interpreters of some.
    pub programs: Vec<(&'static str, Vec<&'static str>)>,
    /// The libraries of some programs: (program path, library paths).
    pub libraries: Vec<(&'static str, Vec<&'static str>)>,
    /// This machine's devices (host-only).
    pub devices: Option<Vec<Device>>,
    /// `.modinfo` fields by module name.
    pub modinfo: Vec<(&'static str, Vec<(&'static str, &'static str)>)>,
    /// Firmware files that exist.
    pub firmware: Vec<&'static str>,
}

struct MapModinfo(BTreeMap<String, ModInfo>);

impl ModinfoSource for MapModinfo {
    fn read(&self, _: &ModDb, modules: &[String]) -> Vec<Info> {
        modules
            .iter()
            .map(|m| {
                Some(Ok(ModuleFile {
                    size: 1,
                    compression: compress::Compression::None,
                    info: self.0.get(m).cloned().unwrap_or_default(),
                }))
            })
            .collect()
    }
}

struct ListFirmware(Vec<String>);

impl FirmwareSource for ListFirmware {
    fn find(&self, name: &str) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let p = format!("/lib/firmware/{name}");
        Ok(self
            .0
            .iter()
            .filter(|f| **f == p)
            .map(|f| (f.clone(), PathBuf::from(f)))
            .collect())
    }
}

fn src(inner: &str) -> Source {
    Source::root(inner, format!("/fake{inner}"))
}

impl Fake {
    /// In-memory readers of its `.modinfo` records and firmware files.
    pub fn readers(&self) -> Readers {
        Readers {
            modinfo: Box::new(MapModinfo(
                self.modinfo
                    .iter()
                    .map(|(m, f)| {
                        (
                            m.to_string(),
                            ModInfo {
                                fields: f
                                    .iter()
                                    .map(|(k, v)| (k.to_string(), v.to_string()))
                                    .collect(),
                            },
                        )
                    })
                    .collect(),
            )),
            firmware: Box::new(ListFirmware(
                self.firmware.iter().map(|s| s.to_string()).collect(),
            )),
        }
    }

    pub fn facts(&self) -> Facts {
        let mut warnings = Vec::new();
        let mut config = Config::default();
        let mut modprobe = Vec::new();
        for (path, text) in &self.modprobe {
            let names = config.parse_file(text, path, &mut warnings);
            modprobe.push(ModprobeFile {
                label: path.to_string(),
                source: src(path),
                dest: Some(path.to_string()),
                names,
            });
        }
        let (db, index_warnings) =
            ModDb::from_texts("6.1.0-test", self.dep, self.alias, self.builtin, config)
                .expect("valid modules.dep");
        let rdma: Vec<RulesFile> = self
            .rules
            .iter()
            .map(|(n, t)| {
                let inner = format!("/usr/lib/udev/rules.d/{n}");
                RulesFile::from_text(n.to_string(), inner.clone(), src(&inner), t, &mut warnings)
            })
            .collect();
        let mut units = Units::default();
        for (n, t) in &self.units {
            let inner = format!("/usr/lib/systemd/system/{n}");
            units.files.insert(
                n.to_string(),
                UnitFile {
                    name: n.to_string(),
                    inner: inner.clone(),
                    source: src(&inner),
                    unit: Unit::parse_file(t, &inner),
                    links: Vec::new(),
                    dropins: Vec::new(),
                    doc_confs: Vec::new(),
                },
            );
        }
        for (p, t) in &self.confs {
            units.conf_dir.push(p.to_string());
            units.confs.insert(
                p.to_string(),
                ConfFile {
                    inner: p.to_string(),
                    source: src(p),
                    names: crate::systemd::parse_modules_list(t, p),
                },
            );
        }
        let mut programs = Programs::default();
        for (p, interp) in &self.programs {
            let libs = self.libraries.iter().filter(|(q, _)| q == p);
            let prog = Program {
                inner: p.to_string(),
                source: src(p),
                interpreters: interp.iter().map(|s| s.to_string()).collect(),
                // A script needs its interpreter, as elfdeps finds it.
                needs: interp
                    .iter()
                    .chain(libs.flat_map(|(_, l)| l))
                    .map(|i| (i.to_string(), PathBuf::from(format!("/fake{i}"))))
                    .collect(),
            };
            let name = p.rsplit('/').next().unwrap_or(p);
            for r in [
                ProgramRef::Command(p.to_string()),
                ProgramRef::Command(name.to_string()),
                ProgramRef::Udev(name.to_string()),
                ProgramRef::Udev(p.to_string()),
            ] {
                programs.found.insert(r, Some(prog.clone()));
            }
        }
        let hw_providers = db.modules_under(crate::kmod::RDMA_HW_DIR);
        Facts {
            root: crate::root::Root::new("/fake"),
            kver: "6.1.0-test".into(),
            moddir: "/fake/lib/modules/6.1.0-test".into(),
            db,
            modprobe,
            rules: Rules {
                all: rdma.clone(),
                rdma,
                own: false,
            },
            units,
            programs,
            host: self.devices.clone().map(|devices| Host {
                devices,
                ..Default::default()
            }),
            profiles: Vec::new(),
            hw_providers,
            reads_modinfo: true,
            warnings,
            index_warnings,
        }
    }
}
