//! Images made of segments in every pair of the compressions the kernel
//! unpacks, in both orders, with zero padding between them.

use super::*;
use std::io::Write;

fn tree(files: &[(&str, &[u8])]) -> Tree {
    let mut t = Tree::default();
    for (p, b) in files {
        t.insert(
            p,
            Entry {
                perm: 0o644,
                node: Node::File(b.to_vec()),
            },
        );
    }
    t
}

fn cpio_bytes(t: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    t.write_cpio(&mut out, 0).unwrap();
    out
}

fn compress(f: Format, raw: &[u8]) -> Vec<u8> {
    match f {
        Format::Cpio => raw.to_vec(),
        Format::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        Format::Xz => {
            let s = liblzma::stream::Stream::new_easy_encoder(1, liblzma::stream::Check::Crc32)
                .unwrap();
            let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), s);
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        Format::Lzma => {
            let opts = liblzma::stream::LzmaOptions::new_preset(1).unwrap();
            let s = liblzma::stream::Stream::new_lzma_encoder(&opts).unwrap();
            let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), s);
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        Format::Zstd => zstd::encode_all(raw, 1).unwrap(),
        _ => unreachable!("no encoder"),
    }
}

const READABLE: [Format; 5] = [
    Format::Cpio,
    Format::Gzip,
    Format::Xz,
    Format::Lzma,
    Format::Zstd,
];

#[test]
fn every_pair_of_compressions_reads_in_both_orders() {
    let a = tree(&[("etc/a", b"first"), ("etc/both", b"from the first")]);
    let b = tree(&[("etc/b", b"second"), ("etc/both", b"from the second")]);
    for fa in READABLE {
        for fb in READABLE {
            for pad in [0usize, 3, 512] {
                let mut img = compress(fa, &cpio_bytes(&a));
                let first_end = img.len() as u64;
                img.extend(std::iter::repeat_n(0u8, pad));
                img.extend(compress(fb, &cpio_bytes(&b)));
                let got = read_image(&img[..], 1 << 20, &mut |_| {})
                    .unwrap_or_else(|e| panic!("{fa:?} then {fb:?} (pad {pad}): {e}"));
                assert_eq!(got.segments.len(), 2, "{fa:?} {fb:?}");
                assert_eq!(got.segments[0].format, fa);
                assert_eq!(got.segments[1].format, fb);
                assert_eq!(
                    got.segments[0].end, first_end,
                    "{fa:?} ends where its stream ends"
                );
                assert_eq!(got.segments[1].start, first_end + pad as u64);
                assert_eq!(got.tree.file("etc/a"), Some(&b"first"[..]));
                assert_eq!(got.tree.file("etc/b"), Some(&b"second"[..]));
                // Later entries replace earlier, as the kernel unpacks.
                assert_eq!(got.tree.file("etc/both"), Some(&b"from the second"[..]));
            }
        }
    }
}

#[test]
fn a_truncated_last_segment_names_its_offset() {
    let a = cpio_bytes(&tree(&[("etc/a", b"first")]));
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    for f in [
        Format::Gzip,
        Format::Xz,
        Format::Zstd,
        Format::Lzma,
        Format::Cpio,
    ] {
        let second = compress(f, &cpio_bytes(&tree(&[("etc/big", &big)])));
        let mut img = a.clone();
        img.extend(&second[..second.len() / 2]);
        let e = read_image(&img[..], 1 << 30, &mut |_| {}).unwrap_err();
        assert!(
            e.starts_with(&format!("{} segment at byte {}:", f.name(), a.len())),
            "{f:?}: {e}"
        );
    }
}

#[test]
fn unsupported_compressions_are_named_with_their_offset() {
    let a = cpio_bytes(&tree(&[("etc/a", b"first")]));
    for (magic, name) in [
        (&b"BZh91AY&SY"[..], "bzip2"),
        (&[0x02, 0x21, 0x4c, 0x18, 0, 0][..], "lz4"),
        (&[0x89, b'L', b'Z', b'O', 0, 0][..], "lzo"),
    ] {
        let mut img = a.clone();
        img.extend(magic);
        let e = read_image(&img[..], 1 << 20, &mut |_| {}).unwrap_err();
        assert_eq!(
            e,
            format!(
                "{name} segment at byte {}: {name} compression is not supported",
                a.len()
            )
        );
    }
    let e = read_image(&b"junk"[..], 100, &mut |_| {}).unwrap_err();
    assert!(e.contains("segment at byte 0"), "{e}");
}

#[test]
fn leading_microcode_is_early_and_the_rest_is_the_image() {
    let early = tree(&[("kernel/x86/microcode/GenuineIntel.bin", &[1, 2, 3])]);
    let main = tree(&[("usr/lib/x", b"x")]);
    let mut img = cpio_bytes(&early);
    let early_len = img.len() as u64;
    img.extend(compress(Format::Zstd, &cpio_bytes(&main)));
    let got = read_image(&img[..], 1 << 20, &mut |_| {}).unwrap();
    assert_eq!(got.early_segments, 1);
    assert_eq!(got.early_len(), early_len);
    assert!(got
        .early_tree
        .contains("kernel/x86/microcode/GenuineIntel.bin"));
    assert!(!got.tree.contains("kernel/x86/microcode/GenuineIntel.bin"));
    assert!(got.tree.contains("usr/lib/x"));
    // A single uncompressed archive of the image proper is not early data.
    let plain = read_image(&cpio_bytes(&main)[..], 1 << 20, &mut |_| {}).unwrap();
    assert_eq!(plain.early_len(), 0);
    assert!(plain.tree.contains("usr/lib/x"));
}

#[test]
fn the_decompressed_size_is_bounded() {
    let big: Vec<u8> = vec![7; 1 << 20];
    let img = compress(Format::Zstd, &cpio_bytes(&tree(&[("big", &big)])));
    let e = read_image(&img[..], 4096, &mut |_| {}).unwrap_err();
    assert!(e.contains("more than the limit"), "{e}");
}

#[test]
fn later_entries_unpack_as_the_kernel_unpacks_them() {
    let mut first = Tree::default();
    first.insert(
        "lib/modules/k/a.ko",
        Entry {
            perm: 0o644,
            node: Node::File(b"a".to_vec()),
        },
    );
    let mut second = Tree::default();
    second.entries.insert(
        "lib".into(),
        Entry {
            perm: 0o777,
            node: Node::Symlink("usr/lib".into()),
        },
    );
    second.entries.insert(
        "usr/lib/modules/k/b.ko".into(),
        Entry {
            perm: 0o644,
            node: Node::File(b"b".to_vec()),
        },
    );
    let mut img = cpio_bytes(&first);
    img.extend(compress(Format::Zstd, &cpio_bytes(&second)));
    let got = read_image(&img[..], 1 << 20, &mut |_| {}).unwrap();
    // The kernel cannot replace a directory holding files with a link.
    assert_eq!(
        got.tree.entries.get("lib").map(|e| &e.node),
        Some(&Node::Dir)
    );
    assert_eq!(got.tree.file("lib/modules/k/a.ko"), Some(&b"a"[..]));
    assert_eq!(got.tree.file("usr/lib/modules/k/b.ko"), Some(&b"b"[..]));
    // The other way round: a directory entry replaces the link (the kernel
    // unlinks it), and a file with no directory entry before it goes
    // through the link.
    let mut img = cpio_bytes(&second);
    img.extend(compress(Format::Gzip, &cpio_bytes(&first)));
    let got = read_image(&img[..], 1 << 20, &mut |_| {}).unwrap();
    assert_eq!(
        got.tree.entries.get("lib").map(|e| &e.node),
        Some(&Node::Dir)
    );
    assert_eq!(got.tree.file("lib/modules/k/a.ko"), Some(&b"a"[..]));
    let mut bare = Tree::default();
    bare.entries.insert(
        "lib/modules/k/c.ko".into(),
        Entry {
            perm: 0o644,
            node: Node::File(b"c".to_vec()),
        },
    );
    let mut img = cpio_bytes(&second);
    img.extend(compress(Format::Xz, &cpio_bytes(&bare)));
    let got = read_image(&img[..], 1 << 20, &mut |_| {}).unwrap();
    assert!(matches!(
        got.tree.entries.get("lib").map(|e| &e.node),
        Some(Node::Symlink(_))
    ));
    assert_eq!(
        got.tree
            .entries
            .get("usr/lib/modules/k/c.ko")
            .map(|e| &e.node),
        Some(&Node::File(b"c".to_vec()))
    );
}

/// A newc entry as a generator writes it: (name, ino, nlink, data).
fn newc(out: &mut Vec<u8>, name: &str, ino: u32, nlink: u32, data: &[u8]) {
    let head = format!(
        "070701{ino:08x}{:08x}{:08x}{:08x}{nlink:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
        0o100644,
        0,
        0,
        0,
        data.len(),
        0,
        0,
        0,
        0,
        name.len() + 1,
        0
    );
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

fn trailer(out: &mut Vec<u8>) {
    newc(out, "TRAILER!!!", 0, 1, b"");
}

fn files(img: &Image) -> Vec<(&str, &[u8])> {
    img.tree
        .entries
        .iter()
        .filter_map(|(p, e)| match &e.node {
            Node::File(b) => Some((p.as_str(), &b[..])),
            _ => None,
        })
        .collect()
}

#[test]
fn hard_links_share_their_inodes_data_as_the_kernel_links_them() {
    let mut a = Vec::new();
    // Data with the last name (GNU cpio), with the first, written twice,
    // never; and a name with nlink 1 that shares an ino with nothing.
    newc(&mut a, "last/1", 10, 2, b"");
    newc(&mut a, "first/1", 11, 2, b"first");
    newc(&mut a, "twice/1", 12, 3, b"old");
    newc(&mut a, "never/1", 13, 2, b"");
    newc(&mut a, "last/2", 10, 2, b"last");
    newc(&mut a, "first/2", 11, 2, b"");
    newc(&mut a, "twice/2", 12, 3, b"");
    newc(&mut a, "twice/3", 12, 3, b"new");
    newc(&mut a, "never/2", 13, 2, b"");
    newc(&mut a, "alone", 10, 1, b"alone");
    trailer(&mut a);
    // The kernel frees its link table at each trailer: ino 10 in the next
    // archive is another inode.
    newc(&mut a, "next/1", 10, 2, b"");
    trailer(&mut a);
    let img = read_image(&compress(Format::Gzip, &a)[..], 1 << 20, &mut |_| {}).unwrap();
    assert_eq!(
        files(&img),
        vec![
            ("alone", &b"alone"[..]),
            ("first/1", b"first"),
            ("first/2", b"first"),
            ("last/1", b"last"),
            ("last/2", b"last"),
            ("never/1", b""),
            ("never/2", b""),
            ("next/1", b""),
            ("twice/1", b"new"),
            ("twice/2", b"new"),
            ("twice/3", b"new"),
        ]
    );
}

/// What GNU cpio writes for a tree with hard links (as dracut's image after
/// `hardlink`): the data only with the last name.
#[test]
fn gnu_cpio_hard_links_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("a")).unwrap();
    std::fs::write(d.join("a/hook.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::hard_link(d.join("a/hook.sh"), d.join("b.sh")).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("printf 'a\\na/hook.sh\\nb.sh\\n' | cpio -o -H newc --quiet")
        .current_dir(d)
        .output()
        .expect("cpio (apt-get install cpio)");
    assert!(out.status.success());
    let raw = &out.stdout;
    let body = &b"#!/bin/sh\necho hi\n"[..];
    assert_eq!(
        raw.windows(body.len()).filter(|w| *w == body).count(),
        1,
        "the data is in the archive once, for two names"
    );
    let img = read_image(&raw[..], 1 << 20, &mut |_| {}).unwrap();
    assert_eq!(img.tree.file("a/hook.sh"), Some(body));
    assert_eq!(img.tree.file("b.sh"), Some(body));
}
