#![no_main]
use libfuzzer_sys::fuzz_target;

// libkmod's binary indexes (modules.dep.bin, modules.alias.bin, ...).
fuzz_target!(|data: &[u8]| {
    let _ = rdma_initrd::kmod::index_bin::dump(data);
    if let Ok(i) = rdma_initrd::kmod::index_bin::Index::open(data) {
        for key in [
            "i40iw",
            "pci:v00008086d00001592sv00008086sd00000002bc02sc00i00",
            "",
        ] {
            let _ = i.search_wild(key);
        }
    }
});
