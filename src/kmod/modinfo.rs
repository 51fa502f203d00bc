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

/// Parse `.modinfo` from an uncompressed ELF image.
pub fn parse_elf(bytes: &[u8]) -> Result<ModInfo, String> {
    let section = modinfo_section(bytes)?;
    Ok(parse_section(section))
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

fn modinfo_section(bytes: &[u8]) -> Result<&[u8], String> {
    let header =
        goblin::elf::Elf::parse_header(bytes).map_err(|e| format!("not an ELF file: {e}"))?;
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
    let shoff = header.e_shoff as usize;
    let shnum = header.e_shnum as usize;
    let entsize = header.e_shentsize as usize;
    if shnum == 0 {
        return Err("ELF file has no section headers".into());
    }
    let table_len = shnum
        .checked_mul(entsize.max(1))
        .and_then(|n| n.checked_add(shoff))
        .ok_or("section header table size overflows")?;
    if table_len > bytes.len() || entsize != SectionHeader::size(ctx) {
        return Err(format!(
            "section headers ({shnum} at offset {shoff}) lie outside the file ({} bytes)",
            bytes.len()
        ));
    }
    let shdrs = SectionHeader::parse(bytes, shoff, shnum, ctx)
        .map_err(|e| format!("bad section headers: {e}"))?;
    let strndx = header.e_shstrndx as usize;
    let strtab = shdrs
        .get(strndx)
        .ok_or("section name table index out of range")?;
    let strtab = section_bytes(bytes, strtab)?;
    for sh in &shdrs {
        let name_off = sh.sh_name;
        let Some(name) = strtab.get(name_off..) else {
            continue;
        };
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        if &name[..end] == b".modinfo" {
            return section_bytes(bytes, sh);
        }
    }
    Err("no .modinfo section".into())
}

fn section_bytes<'a>(bytes: &'a [u8], sh: &SectionHeader) -> Result<&'a [u8], String> {
    let start = sh.sh_offset as usize;
    let end = start
        .checked_add(sh.sh_size as usize)
        .ok_or("section size overflows")?;
    bytes.get(start..end).ok_or_else(|| {
        format!(
            "section at {start}..{end} lies outside the file ({} bytes)",
            bytes.len()
        )
    })
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
