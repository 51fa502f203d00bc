use super::*;

fn sample() -> Manifest {
    let items = vec![
        Item {
            kind: "module".into(),
            dest: "lib/modules/6.1.0-test-amd64/kernel/drivers/infiniband/hw/mlx5/mlx5_ib.ko.zst"
                .into(),
            sha256: sha256::digest_hex(b"mlx5_ib"),
        },
        Item {
            kind: "rule".into(),
            dest: "/usr/lib/udev/rules.d/90-rdma-hw-modules.rules".into(),
            sha256: sha256::digest_hex(b"rules"),
        },
    ];
    Manifest {
        schema: SCHEMA,
        version: "0.1.0".into(),
        kver: "6.1.0-test-amd64".into(),
        generator: "dracut".into(),
        init: "systemd".into(),
        selection: Recorded {
            mode: "generic".into(),
            profiles: vec![Digested {
                path: "/srv/profiles/cx5.json".into(),
                sha256: sha256::digest_hex(b"{}"),
            }],
            drivers: vec!["rdma_rxe".into()],
            protocols: vec![],
            netroots: None,
            configs: vec![],
            rules_dirs: vec![],
        },
        plan: PlanDigest {
            sha256: digest(&items),
            items,
        },
    }
}

fn edit(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(&sample().text()).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn round_trip() {
    let m = sample();
    let (back, w) = parse(m.text().as_bytes()).unwrap();
    assert_eq!(back, m);
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn digest_is_of_the_sorted_item_lines() {
    let m = sample();
    let mut text = String::new();
    for i in &m.plan.items {
        text.push_str(&format!("{} {} {}\n", i.kind, i.dest, i.sha256));
    }
    assert_eq!(m.plan.sha256, sha256::digest_hex(text.as_bytes()));
}

#[test]
fn unknown_fields_are_warned_about_and_ignored() {
    let b = edit(|v| {
        v["built_on"] = "tomorrow".into();
        v["selection"]["gpus"] = Value::Array(vec![]);
        v["schema"] = 2.into();
    });
    let (m, w) = parse(&b).unwrap();
    assert_eq!(m.kver, "6.1.0-test-amd64");
    assert!(w.iter().any(|w| w.contains("'built_on'")), "{w:?}");
    assert!(w.iter().any(|w| w.contains("'selection.gpus'")), "{w:?}");
    assert!(w.iter().any(|w| w.contains("schema 2")), "{w:?}");
}

#[test]
fn bad_manifests_are_errors_naming_the_field() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (sample().text().as_bytes()[..40].to_vec(), "not JSON"),
        (b"[]".to_vec(), "not an object"),
        (edit(|v| v["kver"] = 6.into()), "'kver' is not a string"),
        (
            edit(|v| v["kver"] = "../../etc".into()),
            "not a kernel version",
        ),
        (
            edit(|v| v["selection"]["profiles"][0]["path"] = "../../etc/shadow".into()),
            "selection.profiles[0].path",
        ),
        (
            edit(|v| v["selection"]["configs"] = vec!["/etc/../etc/shadow"].into()),
            "selection.configs[0]",
        ),
        (
            edit(|v| v["plan"]["items"][1]["dest"] = "/../../etc/passwd".into()),
            "plan.items[1].dest",
        ),
        (
            edit(|v| v["selection"]["drivers"] = vec!["a b"].into()),
            "not a module or protocol name",
        ),
        (edit(|v| v["generator"] = "booster".into()), "'generator'"),
        (
            edit(|v| v["selection"]["netroots"] = "nfs".into()),
            "not an array",
        ),
        (
            edit(|v| v["plan"]["sha256"] = "xyz".into()),
            "'plan.sha256' is not a SHA-256",
        ),
        (
            edit(|v| {
                v["selection"]["mode"] = "selected".into();
                v["selection"]["profiles"] = Value::Array(vec![]);
                v["selection"]["drivers"] = Value::Array(vec![]);
            }),
            "no profile, driver or protocol",
        ),
        (
            edit(|v| {
                v.as_object_mut().unwrap().remove("selection");
            }),
            "no field 'selection'",
        ),
    ];
    for (b, want) in cases {
        let e = parse(&b).unwrap_err();
        assert!(e.contains(want), "{e} (wanted {want})");
    }
}

#[test]
fn a_changed_item_breaks_the_digest_with_a_warning() {
    let b = edit(|v| v["plan"]["items"][0]["sha256"] = sha256::digest_hex(b"x").into());
    let (_, w) = parse(&b).unwrap();
    assert!(w.iter().any(|w| w.contains("not the digest")), "{w:?}");
}

#[test]
fn an_unknown_item_kind_is_ignored_with_a_warning() {
    let b = edit(|v| v["plan"]["items"][0]["kind"] = "sbom".into());
    let (m, w) = parse(&b).unwrap();
    assert_eq!(m.plan.items.len(), 1);
    assert!(w.iter().any(|w| w.contains("\"sbom\" is unknown")), "{w:?}");
}

#[test]
fn from_tree_names_the_image_and_path() {
    let mut t = Tree::default();
    assert!(matches!(from_tree(&t, Path::new("/x.img")), Found::None));
    t.insert(
        DEST,
        crate::cpio::Entry {
            perm: 0o644,
            node: crate::cpio::Node::File(b"{".to_vec()),
        },
    );
    match from_tree(&t, Path::new("/x.img")) {
        Found::Bad(e) => assert!(
            e.starts_with("/x.img: /usr/lib/rdma-initrd/manifest.json: not JSON"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
}
