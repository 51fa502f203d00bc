#![no_main]
use libfuzzer_sys::fuzz_target;
use rdma_initrd::udev::device::{Device, Parent};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut w = Vec::new();
    let f = rdma_initrd::udev::rules::RulesFile::from_text(
        "x.rules".into(),
        "/x.rules".into(),
        rdma_initrd::source::Source::Host("x".into()),
        &text,
        &mut w,
    );
    let mut dev = Device {
        subsystem: "infiniband".into(),
        kernel: "mlx5_0".into(),
        devpath: "/devices/pci0000:00/0000:00:02.0/infiniband/mlx5_0".into(),
        parents: vec![Parent {
            kernel: "0000:00:02.0".into(),
            subsystem: Some("pci".into()),
            driver: Some("mlx5_core".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    dev.properties
        .insert("ID_NET_DRIVER".into(), "mlx5_core".into());
    let files = [f];
    let _ = rdma_initrd::udev::eval::evaluate(&files, &dev);
    let _ = rdma_initrd::udev::eval::all_effects(&files);
});
