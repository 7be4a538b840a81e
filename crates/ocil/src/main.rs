//! `ocil`: the command-line tool. Parsing, printing and exit codes only; the work is done by
//! the library crates.
//!
//! Exit codes: 0 success, 1 the command ran and found problems (fsck, gc --strict),
//! 2 it could not run (bad arguments, bad input). A broken pipe exits 0.

// The binary's doc comments are clap's help text, written for a terminal: `FILE[:TAG]` and
// `ocil-<command>.1` there are syntax, not intra-doc links or HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod auth;
mod cli;
mod commands;
mod destination;
mod epoch;
mod output;
mod progress;
mod registry;
mod target;

use std::process::ExitCode;

use clap::Parser;

/// What a command concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done, nothing to report.
    Ok,
    /// Ran, found problems.
    Problems,
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json = cli.wants_json();
    match commands::run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                // A script that asked for JSON gets its error as JSON on stdout too.
                output::json_error(&e);
            }
            output::print_error(&e);
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
