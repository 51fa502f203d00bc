//! Where a program is in a root, and what it needs to run inside an image:
//! for an ELF file its interpreter and DT_NEEDED libraries (searched through
//! RUNPATH/RPATH and the usual library directories of the root), for a
//! script its interpreter.

use crate::root::Root;
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Directories a bare command name is looked up in (inside the root).
pub const PATH_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin"];
/// Directories udev looks up a bare PROGRAM/RUN/IMPORT name in.
pub const UDEV_DIRS: &[&str] = &["/usr/lib/udev", "/lib/udev"];

const LIB_DIRS: &[&str] = &[
    "/lib/{triplet}",
    "/usr/lib/{triplet}",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// Where a word may be: itself when absolute, else in each of `dirs`.
pub fn candidates(word: &str, dirs: &[&str]) -> Vec<String> {
    if word.starts_with('/') {
        vec![word.to_string()]
    } else {
        dirs.iter().map(|d| format!("{d}/{word}")).collect()
    }
}

/// The first candidate that is a file in the root: (inner, host).
pub fn first_existing(root: &Root, candidates: &[String]) -> Result<Option<(String, PathBuf)>> {
    for c in candidates {
        let host = root.resolve(Path::new(c))?;
        if host.is_file() {
            return Ok(Some((c.clone(), host)));
        }
    }
    Ok(None)
}

/// Programs and libraries larger than this are not read.
pub const MAX_PROGRAM_FILE: u64 = 1 << 30;

/// (inner path, host path) of everything `inner` needs, recursively.
pub fn closure(root: &Root, inner: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    let mut todo = vec![inner.to_string()];
    while let Some(p) = todo.pop() {
        let host = root.resolve(&p)?;
        // Mapped: parsing reads the headers and the dynamic section, not
        // the whole of a library.
        let Ok(bytes) = crate::mapped::map_capped(&host, MAX_PROGRAM_FILE) else {
            continue;
        };
        for dep in direct(root, &p, &bytes)? {
            if seen.insert(dep.0.clone()) {
                todo.push(dep.0.clone());
                out.push(dep);
            }
        }
    }
    Ok(out)
}

/// The programs a script's `#!` line runs: the interpreter, and for
/// `#!/usr/bin/env NAME` also NAME (looked up in PATH). None for a file that
/// is not a script.
pub fn script_interpreters(head: &[u8]) -> Option<Vec<String>> {
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_ascii_whitespace();
    let interp = words.next()?.to_string();
    let mut out = vec![interp.clone()];
    if interp.rsplit('/').next() == Some("env") {
        if let Some(prog) = words.find(|w| !w.starts_with('-') && !w.contains('=')) {
            out.push(prog.to_string());
        }
    }
    Some(out)
}

fn direct(root: &Root, inner: &str, bytes: &[u8]) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    if let Some(progs) = script_interpreters(bytes) {
        for p in progs {
            let cands = candidates(&p, PATH_DIRS);
            if let Some((inner, h)) = first_existing(root, &cands)? {
                out.push((inner, h));
            }
        }
        return Ok(out);
    }
    let Ok(elf) = goblin::elf::Elf::parse(bytes) else {
        return Ok(out);
    };
    if let Some(interp) = elf.interpreter {
        let h = root.resolve(interp)?;
        if h.is_file() {
            out.push((interp.to_string(), h));
        }
    }
    let triplet = match elf.header.e_machine {
        goblin::elf::header::EM_X86_64 => "x86_64-linux-gnu",
        goblin::elf::header::EM_AARCH64 => "aarch64-linux-gnu",
        goblin::elf::header::EM_386 => "i386-linux-gnu",
        goblin::elf::header::EM_PPC64 => "powerpc64le-linux-gnu",
        goblin::elf::header::EM_S390 => "s390x-linux-gnu",
        _ => "",
    };
    let origin = inner.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
    let mut dirs: Vec<String> = elf
        .runpaths
        .iter()
        .chain(elf.rpaths.iter())
        .flat_map(|s| s.split(':'))
        .map(|d| d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin))
        .collect();
    dirs.extend(LIB_DIRS.iter().map(|d| d.replace("{triplet}", triplet)));
    for lib in &elf.libraries {
        for d in &dirs {
            let p = format!("{d}/{lib}");
            let h = root.resolve(&p)?;
            if h.is_file() {
                out.push((p, h));
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::script_interpreters;

    #[test]
    fn interpreters_of_scripts() {
        assert_eq!(
            script_interpreters(b"#!/bin/bash\nset -e\n"),
            Some(vec!["/bin/bash".to_string()])
        );
        assert_eq!(
            script_interpreters(b"#! /bin/sh -e\n"),
            Some(vec!["/bin/sh".to_string()])
        );
        assert_eq!(
            script_interpreters(b"#!/usr/bin/env -S LC_ALL=C python3 -u\n"),
            Some(vec!["/usr/bin/env".to_string(), "python3".to_string()])
        );
        assert_eq!(script_interpreters(b"\x7fELF\x02"), None);
        assert_eq!(script_interpreters(b"#!"), None);
    }
}
