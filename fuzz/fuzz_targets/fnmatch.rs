#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (p, t) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let _ = rdma_initrd::kmod::name::fnmatch_bytes(p, t);
    let s = String::from_utf8_lossy(p);
    let _ = rdma_initrd::kmod::name::normalize_alias(&s);
});
