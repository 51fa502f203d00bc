#![no_main]
use libfuzzer_sys::fuzz_target;

// ELF header and section headers, then .modinfo.
fuzz_target!(|data: &[u8]| {
    let _ = rdma_initrd::kmod::modinfo::parse_elf(data);
});
