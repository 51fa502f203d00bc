#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rdma_initrd::kmod::compress::decompress(data, 16 << 20);
});
