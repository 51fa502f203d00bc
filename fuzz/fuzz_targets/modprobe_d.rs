#![no_main]
use libfuzzer_sys::fuzz_target;

// modprobe.d files and depmod's modules.softdep / modules.weakdep share this parser.
fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut c = rdma_initrd::kmod::config::Config::default();
    let mut w = Vec::new();
    let _ = c.parse_file(&text, "x.conf", &mut w);
    let _ = c.blacklisted("ib_iser");
    let _ = c.install_command("ib_qib");
});
