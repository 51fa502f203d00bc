//! Programs the RDMA rules, the units they want and modprobe.d install
//! commands run, found in the root as udev and the shell would find them; a
//! script brings its interpreter (`#!` line, `env NAME`), found the same way.

use super::{Rules, Units};
use crate::elfdeps::{candidates, first_existing, PATH_DIRS, UDEV_DIRS};
use crate::kmod::ModDb;
use crate::root::Root;
use crate::source::Source;
use anyhow::Result;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

/// How a program is named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProgramRef {
    /// A command word (ExecStart=, an install command, a `#!` line):
    /// absolute, or searched in [`PATH_DIRS`].
    Command(String),
    /// A word of a rule's PROGRAM, RUN or IMPORT{program}: absolute, or in
    /// [`UDEV_DIRS`].
    Udev(String),
}

impl ProgramRef {
    pub fn word(&self) -> &str {
        match self {
            ProgramRef::Command(w) | ProgramRef::Udev(w) => w,
        }
    }

    fn candidates(&self) -> Vec<String> {
        match self {
            ProgramRef::Command(w) => candidates(w, PATH_DIRS),
            ProgramRef::Udev(w) => candidates(w, UDEV_DIRS),
        }
    }
}

/// A program found in the root.
#[derive(Debug, Clone)]
pub struct Program {
    pub inner: String,
    pub source: Source,
    /// What its `#!` line runs (empty for ELF files).
    pub interpreters: Vec<String>,
    /// What it needs to run, recursively (ELF interpreter and libraries,
    /// `#!` interpreters): (inner path, host path). Read only for plans
    /// that make images (not for `modules` or `detect`).
    pub needs: Vec<(String, std::path::PathBuf)>,
}

#[derive(Debug, Clone, Default)]
pub struct Programs {
    /// Every program named, found or not (None).
    pub found: BTreeMap<ProgramRef, Option<Program>>,
}

impl Programs {
    /// A program that was looked up: Some(None) when the root lacks it.
    pub fn get(&self, r: &ProgramRef) -> Option<&Option<Program>> {
        self.found.get(r)
    }
}

/// The programs the rules, units and install commands run; with
/// `libraries`, what each needs to run (`Program::needs`).
pub fn read(
    root: &Root,
    rules: &Rules,
    units: &Units,
    db: &ModDb,
    libraries: bool,
) -> Result<Programs> {
    let mut queue: VecDeque<ProgramRef> = VecDeque::new();
    for t in rules
        .rdma
        .iter()
        .flat_map(|f| &f.lines)
        .flat_map(|l| &l.tokens)
    {
        if let Some(w) = rule_program(t) {
            queue.push_back(ProgramRef::Udev(w.to_string()));
        }
    }
    for (name, f) in &units.files {
        let (_, instance) = crate::systemd::split_instance(name);
        for words in f.unit.exec_lines(instance.as_deref()) {
            queue.push_back(ProgramRef::Command(words[0].clone()));
        }
    }
    for c in &db.config.install {
        queue.extend(
            command_words(&c.command)
                .into_iter()
                .map(ProgramRef::Command),
        );
    }
    let mut out = Programs::default();
    while let Some(r) = queue.pop_front() {
        if out.found.contains_key(&r) {
            continue;
        }
        let p = find(root, &r, libraries)?;
        if let Some(p) = &p {
            queue.extend(p.interpreters.iter().cloned().map(ProgramRef::Command));
        }
        out.found.insert(r, p);
    }
    Ok(out)
}

/// The program a rules token runs: the first word of PROGRAM,
/// IMPORT{program} and RUN (not RUN{builtin}) values.
pub fn rule_program(t: &crate::udev::rules::Token) -> Option<&str> {
    let cmd = match (t.key.as_str(), t.attr.as_deref()) {
        ("PROGRAM", _) | ("IMPORT", Some("program")) => Some(t.value.as_str()),
        ("RUN", a) if a != Some("builtin") && !t.is_match() => Some(t.value.as_str()),
        _ => None,
    };
    cmd.and_then(|c| c.split_ascii_whitespace().next())
}

fn find(root: &Root, r: &ProgramRef, libraries: bool) -> Result<Option<Program>> {
    let Some((inner, host)) = first_existing(root, &r.candidates())? else {
        return Ok(None);
    };
    let interpreters = crate::elfdeps::script_interpreters(&read_head(&host)).unwrap_or_default();
    let needs = if libraries {
        crate::elfdeps::closure(root, &inner)?
    } else {
        Vec::new()
    };
    Ok(Some(Program {
        source: Source::root(inner.clone(), host),
        inner,
        interpreters,
        needs,
    }))
}

/// The first bytes of a file (enough for a `#!` line); empty when unreadable.
fn read_head(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(512).read_to_end(&mut buf);
    }
    buf
}

/// The words in command position of a shell command line (first word and
/// each word after `;`, `&&`, `||`, `|`), skipping variable assignments.
pub fn command_words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut expect = true;
    for w in cmd.split_ascii_whitespace() {
        if matches!(w, ";" | "&&" | "||" | "|") {
            expect = true;
            continue;
        }
        if expect {
            if w.contains('=') && !w.starts_with('/') {
                continue;
            }
            let w = w.trim_end_matches(';');
            if !w.starts_with('$') && !w.is_empty() {
                out.push(w.to_string());
            }
            expect = false;
        }
        if w.ends_with(';') {
            expect = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_of_install_lines() {
        assert_eq!(
            command_words(
                "modprobe -i ib_qib $CMDLINE_OPTS && /usr/lib/truescale-serdes.cmds start"
            ),
            vec!["modprobe", "/usr/lib/truescale-serdes.cmds"]
        );
        assert_eq!(
            command_words("FOO=1 /sbin/x; /bin/y | z"),
            vec!["/sbin/x", "/bin/y", "z"]
        );
    }
}
