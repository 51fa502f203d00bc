#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut w = Vec::new();
    let a = rdma_initrd::kmod::alias::AliasFile::parse(&text, "modules.alias", &mut w);
    for key in [
        "i40iw",
        "pci:v00008086d00001592sv00008086sd00000002bc02sc00i00",
        "",
        "[",
        "a*b?c",
    ] {
        let _ = a.lookup(key);
    }
    if let Some(line) = text.lines().next() {
        let _ = a.lookup(line);
    }
});
