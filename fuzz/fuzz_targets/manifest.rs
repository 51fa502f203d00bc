#![no_main]
use libfuzzer_sys::fuzz_target;

// An image's manifest (usr/lib/rdma-initrd/manifest.json): parsed on its
// own, and read from an image tree by verify and inspect.
fuzz_target!(|data: &[u8]| {
    if let Ok((m, _)) = rdma_initrd::manifest::parse(data) {
        let _ = m.text();
    }
    let mut tree = rdma_initrd::cpio::Tree::default();
    tree.insert(
        rdma_initrd::manifest::DEST,
        rdma_initrd::cpio::Entry {
            perm: 0o644,
            node: rdma_initrd::cpio::Node::File(data.to_vec()),
        },
    );
    if let rdma_initrd::manifest::Found::Read(m, _) =
        rdma_initrd::manifest::from_tree(&tree, std::path::Path::new("fuzz.img"))
    {
        let _ = rdma_initrd::backend::inspect::inspect(&tree, Some(&m));
    }
});
