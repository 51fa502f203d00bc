//! The two things only the module closure says are needed: `.modinfo` of
//! module files (decompressed on all cores) and firmware files. The plan
//! does not read them: it says what it [`Needs`], the caller reads that with
//! [`Readers`] into [`Found`], and plans again (see `plan::step`). Tests put
//! in-memory readers in their place.

use crate::kmod::{compress, modinfo, ModDb, ModKind};
use crate::root::Root;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Module files are refused beyond this size once decompressed.
pub const MAX_MODULE_BYTES: u64 = 256 << 20;

/// What a module file says of itself.
#[derive(Debug, Clone)]
pub struct ModuleFile {
    pub size: u64,
    pub compression: compress::Compression,
    pub info: modinfo::ModInfo,
}

/// What reading a module's `.modinfo` gave: None where there is no file
/// (builtin, missing), the error where it could not be read.
pub type Info = Option<Result<ModuleFile, String>>;

/// What a plan needs read before it can go on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needs {
    /// Modules whose `.modinfo` is not read yet.
    pub modinfo: Vec<String>,
    /// `firmware=` names not searched yet.
    pub firmware: Vec<String>,
}

/// What has been read for the plan so far.
#[derive(Debug, Default)]
pub struct Found {
    pub modinfo: HashMap<String, Info>,
    /// Firmware files by `firmware=` name: (path in the root, host path).
    pub firmware: HashMap<String, Vec<(String, PathBuf)>>,
}

/// The readers of what the plan needs.
pub struct Readers {
    pub modinfo: Box<dyn ModinfoSource>,
    pub firmware: Box<dyn FirmwareSource>,
}

impl Readers {
    /// The module files of `db` and the firmware of `root` for `kver`.
    pub fn of_root(root: &Root, kver: &str) -> Readers {
        Readers {
            modinfo: Box::new(ReadModinfo),
            firmware: Box::new(RootFirmware {
                root: root.clone(),
                kver: kver.to_string(),
            }),
        }
    }

    /// Read what `needs` names into `found`, and the firmware that the
    /// `.modinfo` just read names (what the plan would ask for next).
    pub fn read(&self, db: &ModDb, needs: &Needs, found: &mut Found) -> anyhow::Result<()> {
        let mut firmware = needs.firmware.clone();
        let got = self.modinfo.read(db, &needs.modinfo);
        for (m, info) in needs.modinfo.iter().zip(got) {
            if let Some(Ok(f)) = &info {
                firmware.extend(f.info.get_all("firmware").map(str::to_string));
            }
            found.modinfo.insert(m.clone(), info);
        }
        for name in firmware {
            if let std::collections::hash_map::Entry::Vacant(e) = found.firmware.entry(name) {
                let files = self.firmware.find(e.key())?;
                e.insert(files);
            }
        }
        Ok(())
    }
}

/// `.modinfo` of modules; None where there is no module file.
pub trait ModinfoSource: Send + Sync {
    fn read(&self, db: &ModDb, modules: &[String]) -> Vec<Info>;
}

/// Firmware files for a `firmware=` name: (path in the root, host path).
pub trait FirmwareSource: Send + Sync {
    fn find(&self, name: &str) -> anyhow::Result<Vec<(String, PathBuf)>>;
}

/// Reads each module file's `.modinfo` (its ELF section headers only, after
/// decompression), on all cores.
pub struct ReadModinfo;

impl ModinfoSource for ReadModinfo {
    fn read(&self, db: &ModDb, modules: &[String]) -> Vec<Info> {
        let paths: Vec<Option<PathBuf>> = modules
            .iter()
            .map(|m| match db.kind(m) {
                ModKind::File(rel) => Some(db.file_path(&rel)),
                _ => None,
            })
            .collect();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Info>> =
            paths.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= paths.len() {
                        break;
                    }
                    if let Some(p) = &paths[i] {
                        *results[i].lock().expect("no poisoned lock") = Some(read_module_file(p));
                    }
                });
            }
        });
        results
            .into_iter()
            .map(|m| m.into_inner().expect("no poisoned lock"))
            .collect()
    }
}

/// `.modinfo`, size and compression of one module file.
pub fn read_module_file(p: &Path) -> Result<ModuleFile, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "module file listed in modules.dep is missing".to_string()
        } else {
            e.to_string()
        }
    })?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    let mut magic = [0u8; 6];
    let n = f.read(&mut magic).map_err(|e| e.to_string())?;
    let compression = compress::detect(&magic[..n]);
    if compression == compress::Compression::None {
        // Uncompressed: read only the ELF header, section headers and
        // .modinfo, whatever the file's size.
        let info = modinfo::parse_elf_file(&mut f)?;
        return Ok(ModuleFile {
            size,
            compression,
            info,
        });
    }
    if size > MAX_MODULE_BYTES {
        return Err(format!(
            "{size} bytes compressed is more than a module can be"
        ));
    }
    let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
    let raw = compress::decompress(&bytes, MAX_MODULE_BYTES)
        .map_err(|e| format!("cannot decompress ({compression:?}): {e}"))?;
    Ok(ModuleFile {
        size,
        compression,
        info: modinfo::parse_elf(&raw)?,
    })
}

/// Firmware of a root, searched as the kernel searches.
pub struct RootFirmware {
    pub root: Root,
    pub kver: String,
}

impl FirmwareSource for RootFirmware {
    fn find(&self, name: &str) -> anyhow::Result<Vec<(String, PathBuf)>> {
        crate::firmware::find(&self.root, &self.kver, name)
    }
}
