//! `cargo xtask`: the project's own tasks, one file each (matklad's xtask pattern).
//!
//! - `ci`: every check CI runs, in order (`ci.rs`; the oracle tests' outside resources in
//!   `oracles.rs`);
//! - `fixtures [--check]`: the golden layouts in `testdata/` (`fixtures.rs`);
//! - `bench [fsck|gc|ship|all] [--quick]`: timings of the release `ocil` against peers (`bench.rs`);
//! - `tidy`: the conventions of STYLE.md as checks (`tidy.rs`);
//! - `man [--out DIR]`: the man pages, written by `ocil man` (`man.rs`).
//!
//! `gen.rs` is the layout generator the fixtures and benchmarks share. It does not use
//! `ocil-layout`, so what it writes checks the library independently. Arguments are parsed
//! by hand; cargo is run through `$CARGO`. Exit codes: 0 ok, 1 a check failed, 2 usage.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod fixtures;
mod r#gen;
mod gen_cmd;
mod hostile;
mod man;
mod oracles;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Errors are boxed: xtask only reports them.
pub(crate) type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci                          fmt, clippy, tests, doc, tidy, fixtures --check, bench --quick
  fixtures [--check]          regenerate testdata/ (or check that it is up to date)
  bench [fsck|gc|ship|all] [...]  time the release ocil against sha256sum, umoci, tar and skopeo (--help for options)
  tidy                        check conventions (module docs, banned macros, library dependencies)
  man [--out DIR]             write the man pages (ocil.1, ocil-<command>.1) into DIR (default target/man)";

/// A usage error: exits 2.
#[derive(Debug)]
pub(crate) struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "usage: {}", self.0)
    }
}

impl std::error::Error for Usage {}

pub(crate) fn usage(text: &str) -> Box<dyn std::error::Error> {
    Box::new(Usage(text.to_owned()))
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent directory")
        .to_path_buf()
}

/// The cargo that runs us, so `cargo +toolchain xtask` stays on that toolchain.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match task.as_str() {
        "ci" => ci::run(rest),
        "fixtures" => fixtures::run(rest),
        "bench" => bench::run(rest),
        "tidy" => tidy::run(rest),
        "gen" => gen_cmd::run(rest),
        "man" => man::run(rest),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("error: unknown task `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Usage>() => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
