#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = rdma_initrd::kmod::dep::ModulesDep::parse(&text, "modules.dep") {
        for e in d.entries.iter().take(16) {
            let _ = d.get(&rdma_initrd::kmod::name::modname_from_path(&e.path));
        }
    }
});
