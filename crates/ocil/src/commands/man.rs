//! `ocil man --out DIR`: the man pages (`ocil.1`, and `ocil-<command>.1` for each command),
//! rendered by clap_mangen from the clap definition in `cli.rs`. `cargo xtask man` runs this,
//! since xtask cannot depend on the binary's crate.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::Outcome;
use crate::cli::Cli;

pub(crate) const HELP: &str = "Write the man pages into DIR (created if missing): ocil.1, and ocil-<command>.1 for each command, from the same definitions as --help.

Example: ocil man --out ~/.local/share/man/man1 && man ocil-tag
From a checkout, `cargo xtask man` writes them into target/man.";

#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// The directory to write the pages into
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub(crate) out: PathBuf,
}

pub(crate) fn run(a: ManArgs) -> Result<Outcome> {
    if a.out.exists() && !a.out.is_dir() {
        anyhow::bail!("`{}` exists and is not a directory", a.out.display());
    }
    let pages = pages()?;
    fs_err::create_dir_all(&a.out)?;
    for (name, roff) in &pages {
        fs_err::write(a.out.join(name), roff)?;
    }
    println!("wrote {} man page(s) to `{}`", pages.len(), a.out.display());
    Ok(Outcome::Ok)
}

/// Every page as (file name, roff): `ocil.1`, then one per command in `ocil --help`'s order.
fn pages() -> Result<Vec<(String, Vec<u8>)>> {
    // `help` gets no page (ocil.1 lists the commands), and building the command names the
    // subcommands `ocil-<command>` (the page title) and `ocil <command>` (the synopsis).
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let source = format!("ocil {}", cmd.get_version().unwrap_or_default());
    let subcommands = cmd.get_subcommands().filter(|c| !c.is_hide_set()).cloned();
    let top = cmd.clone().subcommand_help_heading("COMMANDS");
    let mut pages = Vec::new();
    for mut c in std::iter::once(top).chain(subcommands) {
        // A line of a long help is a paragraph of its own, as in the terminal; roff would
        // run the lines of a paragraph together.
        if let Some(text) = c.get_long_about().map(|t| paragraphs(&t.to_string())) {
            c = c.long_about(text);
        }
        let man = clap_mangen::Man::new(c).source(source.clone());
        let mut roff = Vec::new();
        man.render(&mut roff).context("cannot render a man page")?;
        pages.push((man.get_filename(), roff));
    }
    Ok(pages)
}

/// `text` with a blank line after each line: clap_mangen starts a paragraph at a blank line.
fn paragraphs(text: &str) -> String {
    text.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n\n")
}
