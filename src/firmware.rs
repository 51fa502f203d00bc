//! Firmware lookup as the kernel's loader searches (`fw_path`), plus
//! /usr/lib/firmware, with the compressed forms the kernel accepts.

use crate::root::Root;
use std::path::{Path, PathBuf};

pub fn search_dirs(kver: &str) -> Vec<String> {
    vec![
        format!("/lib/firmware/updates/{kver}"),
        "/lib/firmware/updates".into(),
        format!("/lib/firmware/{kver}"),
        "/lib/firmware".into(),
        format!("/usr/lib/firmware/updates/{kver}"),
        "/usr/lib/firmware/updates".into(),
        format!("/usr/lib/firmware/{kver}"),
        "/usr/lib/firmware".into(),
    ]
}

/// Files for one `firmware=` value: (root-relative path, host path). Globs in
/// the name are expanded; the first directory holding a match wins.
pub fn find(root: &Root, kver: &str, name: &str) -> anyhow::Result<Vec<(String, PathBuf)>> {
    if name.split('/').any(|c| c == "..") || name.starts_with('/') {
        return Ok(Vec::new());
    }
    for dir in search_dirs(kver) {
        let mut hits = Vec::new();
        for suffix in ["", ".xz", ".zst"] {
            let want = format!("{name}{suffix}");
            if crate::kmod::name::has_glob(&want) {
                hits.extend(glob_in(root, &dir, &want)?);
            } else {
                let p = format!("{dir}/{want}");
                let host = root.resolve(Path::new(&p))?;
                if host.is_file() {
                    hits.push((p, host));
                }
            }
        }
        if !hits.is_empty() {
            hits.sort();
            hits.dedup();
            return Ok(hits);
        }
    }
    Ok(Vec::new())
}

fn glob_in(root: &Root, dir: &str, pattern: &str) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut cur: Vec<String> = vec![dir.to_string()];
    let comps: Vec<&str> = pattern.split('/').collect();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for base in &cur {
            if crate::kmod::name::has_glob(comp) {
                for n in root.list_dir(base)? {
                    if crate::kmod::name::fnmatch(comp, &n) {
                        next.push(format!("{base}/{n}"));
                    }
                }
            } else {
                next.push(format!("{base}/{comp}"));
            }
        }
        cur = next
            .into_iter()
            .filter(|p| {
                let h = root.resolve(Path::new(p)).ok();
                h.map(|h| if last { h.is_file() } else { h.is_dir() })
                    .unwrap_or(false)
            })
            .collect();
    }
    let mut out = Vec::new();
    for p in cur {
        let host = root.resolve(Path::new(&p))?;
        out.push((p, host));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order_and_globs() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("lib/firmware/updates/qed")).unwrap();
        std::fs::create_dir_all(r.join("lib/firmware/qed")).unwrap();
        std::fs::create_dir_all(r.join("usr/lib/firmware/mellanox")).unwrap();
        std::fs::write(r.join("lib/firmware/qed/qed_init_values-8.59.1.0.bin"), "a").unwrap();
        std::fs::write(
            r.join("lib/firmware/updates/qed/qed_init_values-8.59.1.0.bin.xz"),
            "b",
        )
        .unwrap();
        std::fs::write(r.join("usr/lib/firmware/mellanox/mlx.bin.zst"), "c").unwrap();
        let root = Root::new(r);
        let f = find(&root, "6.1", "qed/qed_init_values-8.59.1.0.bin").unwrap();
        assert_eq!(
            f[0].0,
            "/lib/firmware/updates/qed/qed_init_values-8.59.1.0.bin.xz"
        );
        let g = find(&root, "6.1", "qed/qed_init_values-*.bin").unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(
            find(&root, "6.1", "mellanox/mlx.bin").unwrap()[0].0,
            "/usr/lib/firmware/mellanox/mlx.bin.zst"
        );
        assert!(find(&root, "6.1", "../../etc/shadow").unwrap().is_empty());
        assert!(find(&root, "6.1", "missing.bin").unwrap().is_empty());
    }
}
