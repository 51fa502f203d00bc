//! What identifies a module's build: its loadable sections. A generator may
//! rewrite a module without changing what the kernel loads (dracut 059 runs
//! `strip -g` on unsigned modules: debug sections go, and with them symbols
//! and the indices relocations use), so `verify` compares what `strip -g`
//! leaves alone and a rebuild changes: every `SHF_ALLOC` section, by name,
//! type, flags and size, with its bytes (`.text`, `.data`, `.rodata`,
//! `.modinfo` with vermagic and srcversion, `__versions` with the CRCs of
//! the symbols it uses, `.gnu.linkonce.this_module`); `SHT_NOBITS` sections
//! (`.bss`) have no bytes.

use super::modinfo::{read_in, section, section_headers};
use goblin::elf::section_header::{SHF_ALLOC, SHT_NOBITS};

/// One loadable section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loadable {
    pub name: String,
    pub kind: u32,
    pub flags: u64,
    pub size: u64,
    pub bytes: Vec<u8>,
}

/// The loadable sections of an uncompressed module, sorted by name (a
/// rewrite may reorder the section table).
pub fn loadable(bytes: &[u8]) -> Result<Vec<Loadable>, String> {
    let read_at = read_in(bytes);
    let len = bytes.len() as u64;
    let mut out = Vec::new();
    for (name, sh) in section_headers(&read_at, len)? {
        if sh.sh_flags & u64::from(SHF_ALLOC) == 0 {
            continue;
        }
        let content = if sh.sh_type == SHT_NOBITS {
            Vec::new()
        } else {
            section(&read_at, &sh, len)?
        };
        out.push(Loadable {
            name,
            kind: sh.sh_type,
            flags: sh.sh_flags,
            size: sh.sh_size,
            bytes: content,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Whether two uncompressed modules are the same build: equal loadable
/// sections. Unreadable ones are not.
pub fn same_build(a: &[u8], b: &[u8]) -> bool {
    match (loadable(a), loadable(b)) {
        (Ok(x), Ok(y)) => !x.is_empty() && x == y,
        _ => false,
    }
}
