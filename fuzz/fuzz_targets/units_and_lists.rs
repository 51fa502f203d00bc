#![no_main]
use libfuzzer_sys::fuzz_target;

// systemd units and modules-load lists (/etc/rdma/modules/*.conf), the
// `#!` line of programs, and the rules generated from module lists for an
// initramfs without systemd (they must parse back without a warning).
fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let u = rdma_initrd::systemd::Unit::parse(&text);
    let _ = u.wants(Some("roce"));
    let _ = u.exec_lines(Some("roce"));
    let _ = rdma_initrd::systemd::parse_modules_list(&text, "x.conf");
    let _ = rdma_initrd::systemd::split_instance(&text);
    let _ = rdma_initrd::elfdeps::script_interpreters(data);
    if let Ok(list) = rdma_initrd::systemd::parse_modules_list(&text, "x.conf") {
        let names: Vec<String> = list.into_iter().map(|(n, _)| n).collect();
        let e = rdma_initrd::udev::no_systemd::WantLoads {
            unit: "rdma-hw.target".into(),
            chain: vec!["rdma-hw.target".into()],
            confs: vec![("x.conf".into(), names)],
        };
        if let Some(rules) = rdma_initrd::udev::no_systemd::rules(&[e]) {
            let mut w = Vec::new();
            let _ = rdma_initrd::udev::rules::parse(&rules, "gen.rules", &mut w);
            assert!(w.is_empty(), "{w:?}\n{rules}");
        }
    }
});
