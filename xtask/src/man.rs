//! `cargo xtask man [--out DIR]`: the man pages, written by the release `ocil` itself (`ocil
//! man --out DIR`, clap_mangen over the binary's clap definition). xtask cannot render them
//! from that definition: depending on the `ocil` crate would bring `ocil-layout` into xtask.
//!
//! DIR defaults to `target/man`; `ocil.1` and `ocil-*.1` already there are removed first, so
//! a command that no longer exists leaves no page behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;

const USAGE: &str = "cargo xtask man [--out DIR]";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let out = match args {
        [] => crate::project_root().join("target/man"),
        [flag, dir] if flag == "--out" => std::path::absolute(dir)?,
        _ => return Err(crate::usage(USAGE)),
    };
    remove_old_pages(&out)?;
    let status = Command::new(crate::cargo())
        .args(["run", "--release", "--locked", "--package", "ocil", "--", "man", "--out"])
        .arg(&out)
        .current_dir(crate::project_root())
        .status()?;
    if status.success() { Ok(()) } else { Err(format!("`ocil man` exited with {status}").into()) }
}

/// Remove `ocil.1` and `ocil-*.1` from `dir`, if it exists.
fn remove_old_pages(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs_err::read_dir(dir)? {
        let path: PathBuf = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name == "ocil.1" || (name.starts_with("ocil-") && name.ends_with(".1")) {
            fs_err::remove_file(&path)?;
        }
    }
    Ok(())
}
