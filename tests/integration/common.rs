use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The real inputs: a Debian kernel tree (plain, xz and zstd) and rdma-core.
pub struct Inputs {
    pub kver: String,
    pub kroot: PathBuf,
    pub kroot_xz: PathBuf,
    pub kroot_zst: PathBuf,
    pub rdma_core: PathBuf,
}

impl Inputs {
    pub fn moddir(&self, kroot: &Path) -> PathBuf {
        kroot.join("lib/modules").join(&self.kver)
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Download (once, cached) and return the real inputs. Fails loudly: these
/// tests do not skip.
pub fn inputs() -> &'static Inputs {
    static INPUTS: OnceLock<Inputs> = OnceLock::new();
    INPUTS.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("tests/fetch-inputs.sh"))
            .output()
            .expect("run tests/fetch-inputs.sh");
        assert!(
            out.status.success(),
            "tests/fetch-inputs.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kv: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let get = |k: &str| {
            kv.get(k)
                .unwrap_or_else(|| panic!("fetch-inputs.sh printed no {k}"))
                .clone()
        };
        Inputs {
            kver: get("KVER"),
            kroot: get("KROOT").into(),
            kroot_xz: get("KROOT_XZ").into(),
            kroot_zst: get("KROOT_ZST").into(),
            rdma_core: get("RDMA_CORE_ROOT").into(),
        }
    })
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rdma-initrd"))
}

/// Run the binary; (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("run rdma-initrd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Copy a directory tree (symlinks kept as symlinks).
pub fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success());
}

/// Run `f` over `items` on all cores, collecting results in order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(2);
    let chunk = items.len().div_ceil(n).max(1);
    std::thread::scope(|s| {
        let hs: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    })
}

/// A scratch copy of Debian's rdma-core files (kept while the TempDir lives).
pub fn rdma_core_copy() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    copy_tree(&inputs().rdma_core, &root);
    (t, root)
}

/// Run the binary on `root` with the plain Debian module tree.
pub fn run_on(root: &Path, args: &[&str]) -> (i32, String, String) {
    let inp = inputs();
    let moddir = inp.moddir(&inp.kroot);
    let mut a: Vec<&str> = args.to_vec();
    a.extend([
        "--root",
        root.to_str().unwrap(),
        "--moddir",
        moddir.to_str().unwrap(),
    ]);
    run(&a)
}

/// One string field of every element of a JSON array.
pub fn field<'a>(array: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    array
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| e[key].as_str().expect("a string field"))
        .collect()
}
