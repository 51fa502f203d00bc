#![no_main]
use libfuzzer_sys::fuzz_target;

// Whole initramfs images: segments, compressions, newc archives.
fuzz_target!(|data: &[u8]| {
    if let Ok(img) = rdma_initrd::segments::read_image(data, 16 << 20, &mut |_| {}) {
        let _ = img.tree.get("usr/lib/modules");
        let mut out = Vec::new();
        let _ = img.tree.write_cpio(&mut out, 0);
    }
});
