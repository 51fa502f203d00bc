//! The smallest kernel module file readers accept: a little-endian ELF64
//! relocatable object for x86-64 with three sections (the null section,
//! `.modinfo` holding `key=value\0` records, and `.shstrtab` naming them),
//! the section header table last. No code, no symbols: enough for libkmod's
//! `modinfo` and for rdma-initrd's section-header reader.

const EHDR_SIZE: usize = 64;
const SHDR_SIZE: usize = 64;
const SHSTRTAB: &[u8] = b"\0.modinfo\0.shstrtab\0";
/// Offsets of the names in `SHSTRTAB`.
const NAME_MODINFO: u32 = 1;
const NAME_SHSTRTAB: u32 = 10;

const ET_REL: u16 = 1;
const EM_X86_64: u16 = 62;
const SHT_PROGBITS: u32 = 1;
const SHT_STRTAB: u32 = 3;
const SHF_ALLOC: u64 = 2;

/// One section header's fields that vary here.
struct Section {
    name: u32,
    kind: u32,
    flags: u64,
    offset: u64,
    size: u64,
    align: u64,
}

/// A module file whose `.modinfo` holds `records` (`key=value` each).
pub fn module(records: &[String]) -> Vec<u8> {
    let modinfo: Vec<u8> = records.iter().flat_map(|r| r.bytes().chain([0])).collect();
    let modinfo_off = EHDR_SIZE;
    let shstrtab_off = modinfo_off + modinfo.len();
    let shoff = (shstrtab_off + SHSTRTAB.len()).next_multiple_of(8);

    let mut out = header(shoff as u64, 3, 2);
    out.extend_from_slice(&modinfo);
    out.extend_from_slice(SHSTRTAB);
    out.resize(shoff, 0);
    out.extend(std::iter::repeat_n(0u8, SHDR_SIZE)); // the null section
    out.extend(section_header(&Section {
        name: NAME_MODINFO,
        kind: SHT_PROGBITS,
        flags: SHF_ALLOC,
        offset: modinfo_off as u64,
        size: modinfo.len() as u64,
        align: 8,
    }));
    out.extend(section_header(&Section {
        name: NAME_SHSTRTAB,
        kind: SHT_STRTAB,
        flags: 0,
        offset: shstrtab_off as u64,
        size: SHSTRTAB.len() as u64,
        align: 1,
    }));
    out
}

/// The ELF header: 64-bit, little-endian, relocatable, x86-64.
fn header(shoff: u64, shnum: u16, shstrndx: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(EHDR_SIZE);
    h.extend_from_slice(b"\x7fELF");
    h.extend_from_slice(&[2, 1, 1, 0]); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT, SYSV
    h.resize(16, 0);
    h.extend_from_slice(&ET_REL.to_le_bytes());
    h.extend_from_slice(&EM_X86_64.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // e_version
    h.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    h.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    h.extend_from_slice(&shoff.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    h.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
    h.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    h.extend_from_slice(&(SHDR_SIZE as u16).to_le_bytes());
    h.extend_from_slice(&shnum.to_le_bytes());
    h.extend_from_slice(&shstrndx.to_le_bytes());
    h
}

fn section_header(s: &Section) -> Vec<u8> {
    let mut h = Vec::with_capacity(SHDR_SIZE);
    h.extend_from_slice(&s.name.to_le_bytes());
    h.extend_from_slice(&s.kind.to_le_bytes());
    h.extend_from_slice(&s.flags.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes()); // sh_addr
    h.extend_from_slice(&s.offset.to_le_bytes());
    h.extend_from_slice(&s.size.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // sh_link
    h.extend_from_slice(&0u32.to_le_bytes()); // sh_info
    h.extend_from_slice(&s.align.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes()); // sh_entsize
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn layout() {
        let m = super::module(&["license=GPL".into(), "name=x".into()]);
        assert_eq!(&m[..4], b"\x7fELF");
        // 64 header + 19 modinfo + 20 shstrtab = 103, aligned to 104.
        assert_eq!(u64::from_le_bytes(m[0x28..0x30].try_into().unwrap()), 104);
        assert_eq!(m.len(), 104 + 3 * 64);
        assert_eq!(&m[64..83], b"license=GPL\0name=x\0");
        assert_eq!(&m[83..103], b"\0.modinfo\0.shstrtab\0");
    }
}
