//! `ocil init DIR`.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_layout::Layout;

use crate::Outcome;
use crate::cli::InitArgs;

pub(crate) fn run(a: InitArgs) -> Result<Outcome> {
    if a.dir.exists() && !a.dir.is_dir() {
        anyhow::bail!("`{}` exists and is not a directory", a.dir.display());
    }
    fs_err::create_dir_all(&a.dir)?;
    let dir = Dir::open_ambient_dir(&a.dir, ambient_authority())
        .with_context(|| format!("cannot open `{}`", a.dir.display()))?;
    Layout::create(dir)
        .with_context(|| format!("cannot create a layout in `{}`", a.dir.display()))?;
    println!("initialised an empty OCI image layout in `{}`", a.dir.display());
    Ok(Outcome::Ok)
}
