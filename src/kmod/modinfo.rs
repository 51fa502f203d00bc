//! The `.modinfo` section of a module, found through the ELF section headers
//! alone (goblin parses the header and the section header table, nothing else).

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::section_header::SectionHeader;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModInfo {
    /// `key=value` records in section order.
    pub fields: Vec<(String, String)>,
}

impl ModInfo {
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse `.modinfo` from an uncompressed ELF image in memory.
pub fn parse_elf(bytes: &[u8]) -> Result<ModInfo, String> {
    Ok(parse_section(&modinfo_section(
        read_in(bytes),
        bytes.len() as u64,
    )?))
}

/// Parse `.modinfo` from an uncompressed ELF file without reading all of it:
/// the header, the section header table, the section names and `.modinfo`.
pub fn parse_elf_file(f: &mut std::fs::File) -> Result<ModInfo, String> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let f = std::cell::RefCell::new(f);
    let read_at = |off: u64, n: usize| -> Result<Vec<u8>, String> {
        let end = off.checked_add(n as u64).ok_or("range overflows")?;
        if end > len {
            return Err(format!(
                "range {off}..{end} lies outside the file ({len} bytes)"
            ));
        }
        let mut buf = vec![0u8; n];
        let mut f = f.borrow_mut();
        f.seek(SeekFrom::Start(off)).map_err(|e| e.to_string())?;
        f.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(buf)
    };
    Ok(parse_section(&modinfo_section(read_at, len)?))
}

/// NUL-separated `key=value` strings; records without `=` are skipped.
pub fn parse_section(section: &[u8]) -> ModInfo {
    let mut fields = Vec::new();
    for rec in section.split(|&b| b == 0) {
        if rec.is_empty() {
            continue;
        }
        let s = String::from_utf8_lossy(rec);
        if let Some((k, v)) = s.split_once('=') {
            fields.push((k.to_string(), v.to_string()));
        }
    }
    ModInfo { fields }
}

/// Sections larger than this are refused (real `.modinfo` and section name
/// tables are a few KiB).
const MAX_SECTION: u64 = 16 << 20;

fn modinfo_section(
    read_at: impl Fn(u64, usize) -> Result<Vec<u8>, String>,
    len: u64,
) -> Result<Vec<u8>, String> {
    let shdrs = section_headers(&read_at, len)?;
    match shdrs.iter().find(|(name, _)| name == ".modinfo") {
        Some((_, sh)) => section(&read_at, sh, len),
        None => Err("no .modinfo section".into()),
    }
}

/// The section headers of an ELF file with their names, in table order.
pub(crate) fn section_headers(
    read_at: &impl Fn(u64, usize) -> Result<Vec<u8>, String>,
    len: u64,
) -> Result<Vec<(String, SectionHeader)>, String> {
    let head =
        read_at(0, 64.min(len as usize)).map_err(|_| "not an ELF file: too short".to_string())?;
    let header =
        goblin::elf::Elf::parse_header(&head).map_err(|e| format!("not an ELF file: {e}"))?;
    let container =
        if header.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64 {
            Container::Big
        } else {
            Container::Little
        };
    let endian = Endian::from(
        header.e_ident[goblin::elf::header::EI_DATA] != goblin::elf::header::ELFDATA2MSB,
    );
    let ctx = Ctx::new(container, endian);
    let shoff = header.e_shoff;
    let shnum = header.e_shnum as usize;
    let entsize = header.e_shentsize as usize;
    if shnum == 0 {
        return Err("ELF file has no section headers".into());
    }
    if entsize != SectionHeader::size(ctx) {
        return Err(format!(
            "section header size {entsize} is not {}",
            SectionHeader::size(ctx)
        ));
    }
    let table_len = shnum * entsize;
    if shoff
        .checked_add(table_len as u64)
        .is_none_or(|end| end > len)
    {
        return Err(format!(
            "section headers ({shnum} at offset {shoff}) lie outside the file ({len} bytes)"
        ));
    }
    let table = read_at(shoff, table_len)?;
    let shdrs = SectionHeader::parse_from(&table, 0, shnum, ctx)
        .map_err(|e| format!("bad section headers: {e}"))?;
    let strtab = shdrs
        .get(header.e_shstrndx as usize)
        .ok_or("section name table index out of range")?;
    let strtab = section(read_at, strtab, len)?;
    Ok(shdrs
        .into_iter()
        .map(|sh| {
            let name = strtab.get(sh.sh_name..).unwrap_or_default();
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            (String::from_utf8_lossy(&name[..end]).into_owned(), sh)
        })
        .collect())
}

/// An in-memory file as `read_at`.
pub(crate) fn read_in(bytes: &[u8]) -> impl Fn(u64, usize) -> Result<Vec<u8>, String> + '_ {
    move |off: u64, len: usize| {
        let start = usize::try_from(off).map_err(|_| "offset overflows")?;
        let end = start.checked_add(len).ok_or("range overflows")?;
        bytes.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| {
            format!(
                "range {start}..{end} lies outside the file ({} bytes)",
                bytes.len()
            )
        })
    }
}

pub(crate) fn section(
    read_at: &impl Fn(u64, usize) -> Result<Vec<u8>, String>,
    sh: &SectionHeader,
    len: u64,
) -> Result<Vec<u8>, String> {
    let end = sh
        .sh_offset
        .checked_add(sh.sh_size)
        .ok_or("section size overflows")?;
    if end > len {
        return Err(format!(
            "section at {}..{end} lies outside the file ({len} bytes)",
            sh.sh_offset
        ));
    }
    if sh.sh_size > MAX_SECTION {
        return Err(format!(
            "section of {} bytes is larger than {MAX_SECTION}",
            sh.sh_size
        ));
    }
    read_at(sh.sh_offset, sh.sh_size as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_records() {
        let m = parse_section(b"firmware=mellanox/a.bin\0softdep=pre: crc32\0\0alias=pci:v*\0depends=mlx5_core,ib_core\0junk\0");
        assert_eq!(m.get("firmware"), Some("mellanox/a.bin"));
        assert_eq!(m.get_all("alias").count(), 1);
        assert_eq!(m.get("depends"), Some("mlx5_core,ib_core"));
        assert!(m.get("junk").is_none());
    }

    #[test]
    fn rejects_non_elf_and_truncation() {
        assert!(parse_elf(b"not elf at all").is_err());
        // A valid-looking 64-bit header whose section table lies past the end.
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2; // 64-bit
        h[5] = 1; // little endian
        h[6] = 1;
        h[0x28..0x30].copy_from_slice(&1_000_000u64.to_le_bytes()); // e_shoff
        h[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        h[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
        let e = parse_elf(&h).unwrap_err();
        assert!(e.contains("outside the file"), "{e}");
    }
}
