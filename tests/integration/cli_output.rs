//! Output that fits a terminal and a script: colour only on a terminal and
//! never with NO_COLOR, a progress line only when stderr is a terminal,
//! `--json` that says what the text says.

use crate::common::{bin, inputs, run};
use serde_json::Value;
use std::process::Command;

/// Run a shell command line under a pseudo-terminal (util-linux `script`);
/// what the terminal showed.
fn on_terminal(cmdline: &str, no_color: bool) -> String {
    let mut c = Command::new("script");
    c.args(["-qec", cmdline, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("NO_COLOR");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let o = c.output().expect("script (util-linux)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn args_of(inp: &crate::common::Inputs) -> Vec<String> {
    vec![
        "--root".into(),
        inp.rdma_core.display().to_string(),
        "--moddir".into(),
        inp.moddir(&inp.kroot).display().to_string(),
        "--generic".into(),
    ]
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let b = bin();
    let cmd = format!("{} --root / --kver no-such-kernel modules", b.display());
    let tty = on_terminal(&cmd, false);
    assert!(tty.contains("\x1b[1;31merror:\x1b[0m"), "{tty:?}");
    let tty_nc = on_terminal(&cmd, true);
    assert!(
        tty_nc.contains("rdma-initrd: error: unknown kernel no-such-kernel"),
        "{tty_nc:?}"
    );
    assert!(!tty_nc.contains('\x1b'), "{tty_nc:?}");
    let (code, _, err) = run(&["--root", "/", "--kver", "no-such-kernel", "modules"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("rdma-initrd: error: unknown kernel no-such-kernel"),
        "{err}"
    );
    assert!(!err.contains('\x1b'));
}

#[test]
fn install_shows_progress_only_on_a_terminal() {
    let inp = inputs();
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base.img");
    let out = t.path().join("out.img");
    let a = args_of(inp);
    let mut first = vec![
        "install",
        "--output",
        base.to_str().unwrap(),
        "--driver",
        "mlx5_ib",
    ];
    first.extend(a[..4].iter().map(String::as_str));
    let (code, _, err) = run(&first);
    assert_eq!(code, 0, "{err}");
    let cmdline = format!(
        "{} install --base {} --output {} {}",
        bin().display(),
        base.display(),
        out.display(),
        a.join(" ")
    );
    let tty = on_terminal(&cmdline, false);
    assert!(
        tty.contains(&format!("rdma-initrd: reading {}", base.display())),
        "{tty:?}"
    );
    assert!(tty.contains("rdma-initrd: adding "), "{tty:?}");
    assert!(
        tty.contains(&format!("rdma-initrd: writing {}", out.display())),
        "{tty:?}"
    );
    assert!(out.is_file());
    // Not a terminal: no progress at all.
    let mut piped = vec![
        "install",
        "--base",
        base.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    piped.extend(a.iter().map(String::as_str));
    let (code, _, err) = run(&piped);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains('\r') && !err.contains("reading"), "{err:?}");
    // --quiet on a terminal: none either.
    let quiet = on_terminal(&format!("{cmdline} --quiet"), false);
    assert!(!quiet.contains("reading"), "{quiet:?}");
}

#[test]
fn json_says_what_the_text_says() {
    let inp = inputs();
    let a = args_of(inp);
    let with = |extra: &[&str]| -> String {
        let mut v: Vec<&str> = extra.to_vec();
        v.extend(a.iter().map(String::as_str));
        let (code, out, err) = run(&v);
        assert_eq!(code, 0, "{err}");
        out
    };
    let text: Vec<String> = with(&["modules", "-q"]).lines().map(String::from).collect();
    let j: Value = serde_json::from_str(&with(&["modules", "--json", "-q"])).unwrap();
    let names = crate::common::field(&j["modules"], "name");
    assert_eq!(names, text);
    assert!(!names.is_empty());

    let kinds: Vec<String> = with(&["files", "--kind", "-q"])
        .lines()
        .map(String::from)
        .collect();
    let j: Value = serde_json::from_str(&with(&["files", "--json", "-q"])).unwrap();
    let lines: Vec<String> = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            ["kind", "origin", "source", "dest"]
                .map(|k| f[k].as_str().unwrap().to_string())
                .join(" ")
        })
        .collect();
    assert_eq!(lines, kinds);
    assert!(!lines.is_empty());
}
