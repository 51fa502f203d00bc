#![no_main]
use libfuzzer_sys::fuzz_target;

// systemd units and modules-load lists (/etc/rdma/modules/*.conf).
fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let u = rdma_initrd::systemd::Unit::parse(&text);
    let _ = u.wants(Some("roce"));
    let _ = u.exec_lines(Some("roce"));
    let _ = rdma_initrd::systemd::parse_modules_list(&text, "x.conf");
    let _ = rdma_initrd::systemd::split_instance(&text);
});
