//! The command line: raw arguments (`args`, clap) are validated and resolved
//! into the inputs of a run (`resolve`), then one short function per
//! subcommand runs (`commands`).

pub mod args;
pub mod commands;
pub mod kernel_install;
pub mod resolve;

pub use args::Cli;
use args::Command;
use clap::Parser;

/// Parse, run, and map the outcome to an exit code (0 ok, 1 verify found
/// gaps or detect --check found nothing, 2 usage or input error).
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
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

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if let Command::Generate { what, out } = &cli.command {
        return commands::generate(*what, out);
    }
    if let Command::KernelInstall { .. } = &cli.command {
        return kernel_install::run(cli);
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
        Command::Verify { image, json } => commands::verify(&inputs, g, &image, json),
        Command::Generate { .. } | Command::KernelInstall { .. } => {
            unreachable!("handled before the inputs are read")
        }
    }
}
