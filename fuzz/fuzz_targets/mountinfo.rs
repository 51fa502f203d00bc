#![no_main]
use libfuzzer_sys::fuzz_target;

// /proc/self/mountinfo: parsed, then the root's kind decided (with sysfs
// answering nothing, and with every kind of block fact).
fuzz_target!(|data: &[u8]| {
    use rdma_initrd::netroot::{detect, parse_mountinfo, BlockFact};
    let m = parse_mountinfo(&String::from_utf8_lossy(data));
    let _ = detect(&m, |_| Vec::new());
    let _ = detect(&m, |d| {
        vec![
            BlockFact::Nvme { controller: d.to_string(), transport: "rdma".into() },
            BlockFact::Scsi { host: d.to_string(), proc_name: "iscsi_iser".into() },
        ]
    });
});
