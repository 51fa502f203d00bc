//! Hostile inputs, one directory each under `tests/corpus/`: `overlay/` laid
//! over a small real tree (two Debian modules and rdma-core), `args` (one
//! argument a line; `{ROOT}`, `{IMAGE}` = the case's `image`, `{OUT}`), and
//! `expected` beside them: `exit N`, and `stdout TEXT` / `stderr TEXT` lines
//! that must appear. Never a panic (exit 101).

use crate::bad_input::small_tree;
use crate::common::{repo, run};
use std::path::Path;

fn run_case(dir: &Path) -> Result<(), String> {
    let t = tempfile::tempdir().unwrap();
    let (root, _) = small_tree(t.path());
    let overlay = dir.join("overlay");
    if overlay.is_dir() {
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", overlay.display()))
            .arg(&root)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let image = dir.join("image");
    let out = t.path().join("out.img");
    let fill = |s: &str| {
        s.replace("{ROOT}", root.to_str().unwrap())
            .replace("{IMAGE}", image.to_str().unwrap())
            .replace("{OUT}", out.to_str().unwrap())
    };
    let args: Vec<String> = std::fs::read_to_string(dir.join("args"))
        .unwrap()
        .lines()
        .map(fill)
        .collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = run(&a);
    let expected = std::fs::read_to_string(dir.join("expected")).unwrap();
    let mut problems = Vec::new();
    if code == 101 || stderr.contains("panicked") {
        problems.push("panicked".to_string());
    }
    for line in expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (what, text) = line.split_once(' ').unwrap_or((line, ""));
        let text = fill(text);
        match what {
            "exit" => {
                if code.to_string() != text {
                    problems.push(format!("exit {code}, expected {text}"));
                }
            }
            "stdout" if !stdout.contains(&text) => problems.push(format!("stdout lacks {text:?}")),
            "stderr" if !stderr.contains(&text) => problems.push(format!("stderr lacks {text:?}")),
            "stdout" | "stderr" => {}
            other => panic!("{}: unknown expectation {other}", dir.display()),
        }
    }
    if out.exists() && code != 0 {
        problems.push("an output was written by a failed run".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let short = |s: &str| s.chars().take(2000).collect::<String>();
        Err(format!(
            "{}: {}\n  stderr: {}\n  stdout: {}",
            dir.display(),
            problems.join("; "),
            short(&stderr),
            short(&stdout)
        ))
    }
}

#[test]
fn every_hostile_input_gives_its_expected_outcome() {
    let mut dirs: Vec<_> = std::fs::read_dir(repo().join("tests/corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let failures: Vec<String> = dirs.iter().filter_map(|d| run_case(d).err()).collect();
    assert!(dirs.len() >= 15, "only {} cases", dirs.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
