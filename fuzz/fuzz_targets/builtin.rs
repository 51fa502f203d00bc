#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rdma_initrd::kmod::builtin::parse_builtin(&String::from_utf8_lossy(data));
    let _ = rdma_initrd::kmod::builtin::parse_builtin_modinfo(data);
});
