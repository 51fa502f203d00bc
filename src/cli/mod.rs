//! The command line: raw arguments (`args`, clap) are validated and resolved
//! into the inputs of a run (`resolve`), then one short function per
//! subcommand runs (`commands`).

pub mod args;
pub mod commands;
pub mod kernel_install;
pub mod resolve;

pub use args::Cli;
use args::Command;
use clap::{CommandFactory, FromArgMatches};

/// Parse, run, and map the outcome to an exit code (0 ok, or the reader of
/// standard output closed it early; 1 verify found gaps or detect --check
/// found nothing; 2 usage or input error).
pub fn main() -> i32 {
    let mut command = Cli::command();
    let parsed = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    // The parser's description of the command line is not dropped: the
    // process ends soon, and freeing its many small parts costs more than
    // some commands' whole work.
    std::mem::forget(command);
    let cli = match parsed {
        Ok((mut c, m)) => {
            c.global.given = given(&m);
            c
        }
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        // The reader of our output went away (`| grep -q`, `| head`): what
        // it wanted it has, as for any Unix filter; no error, no message.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let c = crate::term::stderr_colour();
            eprintln!(
                "rdma-initrd: {} {e:#}",
                crate::term::paint(c, crate::term::Style::Error, "error:")
            );
            2
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The ids of the options `verify` could take from a manifest that the
/// command line gave (global options are seen wherever they were written).
pub fn given(m: &clap::ArgMatches) -> Vec<String> {
    let on_line = |m: &clap::ArgMatches, id: &str| {
        m.try_get_raw(id).is_ok_and(|v| v.is_some())
            && m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
    };
    args::MANIFEST_IDS
        .iter()
        .filter(|id| on_line(m, id) || m.subcommand().is_some_and(|(_, sub)| on_line(sub, id)))
        .map(|id| id.to_string())
        .collect()
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if let Command::Generate { what, out } = &cli.command {
        return commands::generate(*what, out);
    }
    if let Command::KernelInstall { .. } = &cli.command {
        return kernel_install::run(cli);
    }
    // Both read the image first: verify may take its selection from it.
    match &cli.command {
        Command::Verify { image, json } => return commands::verify(&cli.global, image, *json),
        Command::Inspect { image, json } => return commands::inspect(&cli.global, image, *json),
        _ => {}
    }
    let g = &cli.global;
    let inputs = resolve::resolve(g)?;
    match cli.command {
        Command::Detect { json, check } => commands::detect(&inputs, g, json, check),
        Command::Plan {
            json,
            explain,
            lines,
            extract,
        } => commands::plan(
            &inputs,
            g,
            json,
            explain,
            extract.as_deref().filter(|_| lines),
        ),
        Command::Modules { paths, json } => commands::modules(&inputs, g, paths, json),
        Command::Files {
            extract,
            kind,
            json,
        } => commands::files(&inputs, g, extract.as_deref(), kind, json),
        Command::Install {
            destdir,
            output,
            compress,
            base,
            rewrite,
        } => commands::install(
            &inputs,
            g,
            commands::InstallTo {
                destdir,
                output,
                compress: compress.map(Into::into),
                base,
                rewrite,
            },
        ),
        Command::Generate { .. }
        | Command::KernelInstall { .. }
        | Command::Verify { .. }
        | Command::Inspect { .. } => {
            unreachable!("handled before the inputs are read")
        }
    }
}
