//! Writes the synthetic module tree `lib/modules/KVER/` from the committed
//! spec (`kernel/modules.txt`, `kernel/builtin.txt`): one tiny ELF module
//! per line (xz or zstd compressed where its path says so) and the text
//! indexes exactly as depmod writes them from that data (`modules.dep`,
//! `modules.alias`, `modules.softdep`, `modules.weakdep` when any,
//! `modules.symbols`), plus what the kernel build installs beside them
//! (`modules.order`, `modules.builtin`, `modules.builtin.modinfo`).

use crate::elf;
use crate::spec::{self, Builtin, Module};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The synthetic kernel's release.
pub const KVER: &str = "6.1.0-test-amd64";

/// Write `DEST/lib/modules/KVER` from the spec in `spec_dir`; returns the
/// module directory.
pub fn write_tree(spec_dir: &Path, dest: &Path) -> Result<PathBuf, String> {
    let modules = read_spec(&spec_dir.join("modules.txt"), spec::parse_modules)?;
    let builtins = read_spec(&spec_dir.join("builtin.txt"), spec::parse_builtin)?;
    let moddir = dest.join("lib/modules").join(KVER);
    write_moddir(&moddir, &modules, &builtins)?;
    Ok(moddir)
}

fn read_spec<T>(path: &Path, parse: fn(&str) -> Result<T, String>) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every file of the module directory.
pub fn write_moddir(moddir: &Path, modules: &[Module], builtins: &[Builtin]) -> Result<(), String> {
    let dep = modules_dep(modules)?;
    for m in modules {
        write(&moddir.join(&m.path), &module_file(m)?)?;
    }
    let put = |name: &str, bytes: &[u8]| write(&moddir.join(name), bytes);
    put("modules.dep", dep.as_bytes())?;
    put("modules.alias", info_lines(modules, ALIAS).as_bytes())?;
    put("modules.softdep", info_lines(modules, SOFTDEP).as_bytes())?;
    if modules
        .iter()
        .any(|m| m.get_all("weakdep").next().is_some())
    {
        put("modules.weakdep", info_lines(modules, WEAKDEP).as_bytes())?;
    }
    put(
        "modules.symbols",
        b"# Aliases for symbols, used by symbol_request().\n",
    )?;
    put(
        "modules.order",
        &lines(modules.iter().map(|m| m.uncompressed_path())),
    )?;
    put(
        "modules.builtin",
        &lines(builtins.iter().map(|b| b.path.as_str())),
    )?;
    put("modules.builtin.modinfo", &builtin_modinfo(builtins))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    std::fs::create_dir_all(path.parent().expect("a parent")).map_err(fail)?;
    std::fs::write(path, bytes).map_err(fail)
}

fn lines<'a>(items: impl Iterator<Item = &'a str>) -> Vec<u8> {
    items.flat_map(|s| s.bytes().chain([b'\n'])).collect()
}

/// The `.modinfo` records of a module, in section order.
pub fn modinfo_records(m: &Module) -> Vec<String> {
    let mut r = vec!["license=GPL".to_string()];
    r.extend(
        m.fields
            .iter()
            .filter(|(k, _)| k != "depends")
            .map(|(k, v)| format!("{k}={v}")),
    );
    r.push(format!("depends={}", m.depends_field()));
    r.push(format!("name={}", m.name()));
    r.push(format!("vermagic={KVER} SMP mod_unload"));
    r
}

/// The module file, compressed as its path's suffix says and as kbuild
/// compresses modules (xz with a CRC32 check, zstd at its default level).
fn module_file(m: &Module) -> Result<Vec<u8>, String> {
    let plain = elf::module(&modinfo_records(m));
    let fail = |e: std::io::Error| format!("{}: {e}", m.path);
    if m.path.ends_with(".xz") {
        let stream = liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)
            .map_err(|e| fail(e.into()))?;
        let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        enc.write_all(&plain).map_err(fail)?;
        enc.finish().map_err(fail)
    } else if m.path.ends_with(".zst") {
        zstd::encode_all(&plain[..], 0).map_err(fail)
    } else {
        Ok(plain)
    }
}

/// How one `.modinfo` key becomes a line of a depmod index.
struct InfoIndex {
    key: &'static str,
    header: &'static str,
    line: fn(&str, &str) -> String,
}

const ALIAS: InfoIndex = InfoIndex {
    key: "alias",
    header: "# Aliases extracted from modules themselves.\n",
    line: |module, value| format!("alias {value} {module}\n"),
};
const SOFTDEP: InfoIndex = InfoIndex {
    key: "softdep",
    header: "# Soft dependencies extracted from modules themselves.\n",
    line: |module, value| format!("softdep {module} {value}\n"),
};
const WEAKDEP: InfoIndex = InfoIndex {
    key: "weakdep",
    header: "# Weak dependencies extracted from modules themselves.\n",
    line: |module, value| format!("weakdep {module} {value}\n"),
};

/// depmod's `output_aliases`/`output_softdeps`/`output_weakdeps`: modules
/// in `modules.order` order, each one's records in section order.
fn info_lines(modules: &[Module], index: InfoIndex) -> String {
    let mut out = index.header.to_string();
    for m in modules {
        for v in m.get_all(index.key) {
            out.push_str(&(index.line)(&m.name(), v));
        }
    }
    out
}

/// `modules.builtin.modinfo`: `name.key=value\0` records per builtin.
fn builtin_modinfo(builtins: &[Builtin]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in builtins {
        let name = b.name();
        let file = b.path.trim_start_matches("kernel/").trim_end_matches(".ko");
        let mut records = vec![format!("{name}.license=GPL"), format!("{name}.file={file}")];
        records.extend(b.aliases.iter().map(|a| format!("{name}.alias={a}")));
        for r in records {
            out.extend_from_slice(r.as_bytes());
            out.push(0);
        }
    }
    out
}

/// `modules.dep` as depmod writes it: one line per module in
/// `modules.order` order, `path:` then every direct and indirect
/// dependency, sorted by depmod's topological order (users before what
/// they use: the deepest dependency last).
pub fn modules_dep(modules: &[Module]) -> Result<String, String> {
    let deps = direct_deps(modules)?;
    let rank = topological_rank(&deps)?;
    let mut out = String::new();
    for (i, m) in modules.iter().enumerate() {
        out.push_str(&m.path);
        out.push(':');
        let mut all = Vec::new();
        collect_unique(&deps, i, &mut all);
        all.sort_by_key(|&d| rank[d]);
        for d in all {
            out.push(' ');
            out.push_str(&modules[d].path);
        }
        out.push('\n');
    }
    Ok(out)
}

/// Each module's `depends=` as indices; every name must be in the tree.
fn direct_deps(modules: &[Module]) -> Result<Vec<Vec<usize>>, String> {
    let index: HashMap<String, usize> = modules
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name(), i))
        .collect();
    modules
        .iter()
        .map(|m| {
            m.depends()
                .iter()
                .map(|d| {
                    index
                        .get(d)
                        .copied()
                        .ok_or_else(|| format!("{}: depends on {d}, not in the tree", m.path))
                })
                .collect()
        })
        .collect()
}

/// depmod's `depmod_calculate_dependencies`: Kahn's algorithm over the
/// modules in array order, the ready set kept as a stack, modules without
/// users first. Returns each module's position.
fn topological_rank(deps: &[Vec<usize>]) -> Result<Vec<usize>, String> {
    let mut users = vec![0usize; deps.len()];
    for &d in deps.iter().flatten() {
        users[d] += 1;
    }
    let mut ready: Vec<usize> = (0..deps.len()).filter(|&i| users[i] == 0).collect();
    let mut rank = vec![usize::MAX; deps.len()];
    let mut next = 0;
    while let Some(m) = ready.pop() {
        rank[m] = next;
        next += 1;
        for &d in &deps[m] {
            users[d] -= 1;
            if users[d] == 0 {
                ready.push(d);
            }
        }
    }
    if next < deps.len() {
        return Err("the modules' depends= form a cycle".into());
    }
    Ok(rank)
}

/// Every dependency of `m`, direct and indirect, once.
fn collect_unique(deps: &[Vec<usize>], m: usize, out: &mut Vec<usize>) {
    for &d in &deps[m] {
        if !out.contains(&d) {
            out.push(d);
            collect_unique(deps, d, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Vec<Module> {
        spec::parse_modules(text).unwrap()
    }

    #[test]
    fn dependencies_deepest_last() {
        let m = spec(
            "k/top.ko depends=mid,leaf2\nk/mid.ko depends=leaf\nk/leaf.ko\nk/leaf2.ko depends=leaf\n",
        );
        assert_eq!(
            modules_dep(&m).unwrap(),
            "k/top.ko: k/leaf2.ko k/mid.ko k/leaf.ko\nk/mid.ko: k/leaf.ko\nk/leaf.ko:\nk/leaf2.ko: k/leaf.ko\n"
        );
        assert!(modules_dep(&spec("k/a.ko depends=b\nk/b.ko depends=a\n")).is_err());
        assert!(modules_dep(&spec("k/a.ko depends=nothere\n")).is_err());
    }

    #[test]
    fn indexes_in_module_order() {
        let d = tempfile::tempdir().unwrap();
        let m = spec("k/a-b.ko.xz alias=x alias=y weakdep=c\nk/c.ko.zst softdep=\"pre: a\"\n");
        let b = spec::parse_builtin("kernel/lib/crc32.ko alias=crc32-builtin\n").unwrap();
        write_moddir(d.path(), &m, &b).unwrap();
        let read = |n: &str| std::fs::read_to_string(d.path().join(n)).unwrap();
        assert_eq!(
            read("modules.alias"),
            "# Aliases extracted from modules themselves.\nalias x a_b\nalias y a_b\n"
        );
        assert!(read("modules.softdep").ends_with("\nsoftdep c pre: a\n"));
        assert!(read("modules.weakdep").ends_with("\nweakdep a_b c\n"));
        assert_eq!(read("modules.order"), "k/a-b.ko\nk/c.ko\n");
        assert_eq!(
            read("modules.builtin.modinfo"),
            "crc32.license=GPL\0crc32.file=lib/crc32\0crc32.alias=crc32-builtin\0"
        );
        assert!(d.path().join("k/a-b.ko.xz").is_file());
    }
}
