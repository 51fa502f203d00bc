//! One scenario directory: lay its system root (the common root, a host-only
//! fixture, its own `root/`), pick its module tree (the generated one, or a
//! copy broken by `tree-patch`), run the binary once per `args` file, and
//! compare stdout, stderr and the exit code with the expected files beside
//! them, after replacing temporary paths with `$ROOT`, `$KTREE`, `$TMP` and
//! `$REPO` (with `BLESS=1`, write the expected files instead).

use crate::diff;
use crate::mktree::KVER;
use crate::overlay;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What every scenario shares.
pub struct Context {
    /// The binary under test.
    pub bin: PathBuf,
    /// The repository (`CARGO_MANIFEST_DIR`).
    pub repo: PathBuf,
    /// `tests/scenarios`.
    pub dir: PathBuf,
    /// The generated tree: it holds `lib/modules/KVER`.
    pub ktree: PathBuf,
    /// Write the expected files instead of comparing.
    pub bless: bool,
}

/// The host paths of one scenario's run, and how outputs name them.
struct Paths {
    root: PathBuf,
    ktree: PathBuf,
    tmp: PathBuf,
    repo: PathBuf,
}

impl Paths {
    fn moddir(&self) -> PathBuf {
        self.ktree.join("lib/modules").join(KVER)
    }

    /// `$ROOT`, `$KTREE`, `$MODDIR`, `$KVER` and `$TMP` in an argument.
    fn fill(&self, arg: &str) -> String {
        arg.replace("$ROOT", &self.root.to_string_lossy())
            .replace("$MODDIR", &self.moddir().to_string_lossy())
            .replace("$KTREE", &self.ktree.to_string_lossy())
            .replace("$KVER", KVER)
            .replace("$TMP", &self.tmp.to_string_lossy())
    }

    /// Host paths in an output replaced by their names, longest first (the
    /// root lies inside the temporary directory).
    fn normalise(&self, text: &str) -> String {
        let mut names = [
            (&self.root, "$ROOT"),
            (&self.ktree, "$KTREE"),
            (&self.tmp, "$TMP"),
            (&self.repo, "$REPO"),
        ];
        names.sort_by_key(|(p, _)| std::cmp::Reverse(p.as_os_str().len()));
        names.iter().fold(text.to_string(), |t, (p, name)| {
            t.replace(p.to_string_lossy().as_ref(), name)
        })
    }
}

/// One `args` file and the expected files it is compared with.
struct Run {
    args: PathBuf,
    stdout: PathBuf,
    exit: PathBuf,
    stderr: PathBuf,
}

/// Run a scenario; the error lists every comparison that failed.
pub fn run(ctx: &Context, dir: &Path) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let paths = Paths {
        root: tmp.path().join("root"),
        ktree: module_tree(ctx, dir, tmp.path())?,
        tmp: tmp.path().to_path_buf(),
        repo: ctx.repo.clone(),
    };
    lay_root(ctx, dir, &paths.root)?;
    let runs = runs(dir)?;
    let mut failures: Vec<String> = runs
        .iter()
        .filter_map(|r| check(ctx, r, &paths).err())
        .collect();
    failures.extend(stale_expectations(ctx, dir, &runs)?);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// The common root (unless `no-common-root`), the host-only fixture named
/// by `fixture` (its `base` first), then the scenario's own `root/`.
fn lay_root(ctx: &Context, dir: &Path, root: &Path) -> Result<(), String> {
    std::fs::create_dir_all(root).map_err(|e| e.to_string())?;
    if !dir.join("no-common-root").exists() {
        overlay::lay(&ctx.dir.join("common-root"), root)?;
    }
    if let Some(name) = read_opt(&dir.join("fixture"))? {
        lay_fixture(&ctx.repo.join("tests/fixtures/hostonly"), name.trim(), root)?;
    }
    if dir.join("root").is_dir() {
        overlay::lay(&dir.join("root"), root)?;
    }
    Ok(())
}

fn lay_fixture(fixtures: &Path, name: &str, root: &Path) -> Result<(), String> {
    let fixture = fixtures.join(name);
    if let Some(base) = read_opt(&fixture.join("base"))? {
        lay_fixture(fixtures, base.trim(), root)?;
    }
    overlay::lay(&fixture.join("root"), root)
}

/// The generated tree, or a patched copy of it when there is a `tree-patch`.
fn module_tree(ctx: &Context, dir: &Path, tmp: &Path) -> Result<PathBuf, String> {
    let Some(script) = read_opt(&dir.join("tree-patch"))? else {
        return Ok(ctx.ktree.clone());
    };
    let copy = tmp.join("ktree");
    overlay::lay(&ctx.ktree, &copy)?;
    overlay::patch(&copy.join("lib/modules").join(KVER), &script)?;
    Ok(copy)
}

/// `args` (stdout in `expected.txt`) and every `args.NAME` (stdout in
/// `expected.NAME`), sorted.
fn runs(dir: &Path) -> Result<Vec<Run>, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n == "args" || n.starts_with("args."))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| {
            let base = format!("expected{}", &n["args".len()..]);
            let stdout = if n == "args" {
                "expected.txt".to_string()
            } else {
                base.clone()
            };
            Run {
                args: dir.join(&n),
                stdout: dir.join(stdout),
                exit: dir.join(format!("{base}.exit")),
                stderr: dir.join(format!("{base}.stderr")),
            }
        })
        .collect())
}

/// `expected*` files no `args` file produces: reported, or removed when
/// blessing.
fn stale_expectations(ctx: &Context, dir: &Path, runs: &[Run]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = e.map_err(|e| e.to_string())?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let known = runs
            .iter()
            .any(|r| [&r.stdout, &r.exit, &r.stderr].contains(&&path));
        if !name.starts_with("expected") || known {
            continue;
        }
        if ctx.bless {
            std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        } else {
            out.push(format!("{}: no args file produces it", display(ctx, &path)));
        }
    }
    Ok(out)
}

/// The command line of an `args` file: one argument a line (`#` comments
/// and blank lines ignored), then `--root`, `--moddir` and `--kver` unless
/// given, or refused with a line `!--OPTION`.
fn command_line(text: &str, paths: &Paths) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut args: Vec<String> = lines
        .iter()
        .filter(|l| !l.starts_with('!'))
        .map(|l| paths.fill(l))
        .collect();
    let defaults = [
        ("--root", paths.root.clone()),
        ("--moddir", paths.moddir()),
        ("--kver", PathBuf::from(KVER)),
    ];
    for (opt, value) in defaults {
        let given = |a: &&str| {
            let a = a.trim_start_matches('!');
            a == opt || a.starts_with(&format!("{opt}="))
        };
        if !lines.iter().any(given) {
            args.push(opt.to_string());
            args.push(value.to_string_lossy().into_owned());
        }
    }
    args
}

/// What one run gave, paths normalised.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn execute(ctx: &Context, args: &[String], paths: &Paths) -> Result<Outcome, String> {
    let out = Command::new(&ctx.bin)
        .args(args)
        .current_dir(&paths.tmp)
        .env("NO_COLOR", "1")
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", ctx.bin.display()))?;
    Ok(Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: paths.normalise(&String::from_utf8_lossy(&out.stdout)),
        stderr: paths.normalise(&String::from_utf8_lossy(&out.stderr)),
    })
}

/// Run one `args` file and compare (or bless) its three outputs.
fn check(ctx: &Context, run: &Run, paths: &Paths) -> Result<(), String> {
    let text = std::fs::read_to_string(&run.args).map_err(|e| e.to_string())?;
    let got = execute(ctx, &command_line(&text, paths), paths)?;
    let label = display(ctx, &run.args);
    let mut problems = Vec::new();
    if got.code == 101 {
        problems.push(format!("{label}: the binary panicked:\n{}", got.stderr));
    }
    let exit = if got.code == 0 {
        String::new()
    } else {
        format!("{}\n", got.code)
    };
    let outputs = [
        (&run.stdout, got.stdout.as_str(), true),
        (&run.stderr, got.stderr.as_str(), false),
        (&run.exit, exit.as_str(), false),
    ];
    for (file, actual, required) in outputs {
        let result = if ctx.bless {
            bless(file, actual, required)
        } else {
            compare(file, actual, required)
        };
        if let Err(e) = result {
            problems.push(format!("{label} -> {}: {e}", display(ctx, file)));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Compare with an expected file; an optional file that is missing
/// expects nothing (stderr empty, exit code 0).
fn compare(file: &Path, actual: &str, required: bool) -> Result<(), String> {
    let expected = match read_opt(file)? {
        Some(t) => t,
        None if required => return Err("missing (BLESS=1 writes it)".into()),
        None => String::new(),
    };
    if expected == actual {
        return Ok(());
    }
    Err(format!(
        "differs (- expected, + actual):\n{}",
        diff::unified(&expected, actual, 3)
    ))
}

/// Write the expected file; an optional one is removed when empty.
fn bless(file: &Path, actual: &str, required: bool) -> Result<(), String> {
    let result = if actual.is_empty() && !required {
        match std::fs::remove_file(file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    } else {
        std::fs::write(file, actual)
    };
    result.map_err(|e| e.to_string())
}

fn read_opt(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A path as reports show it: relative to `tests/scenarios`.
fn display(ctx: &Context, path: &Path) -> String {
    path.strip_prefix(&ctx.dir)
        .unwrap_or(path)
        .display()
        .to_string()
}
