//! `ocil init DIR`: DIR is parsed as a destination, so `oci:DIR` works and `DIR:TAG` is
//! refused rather than taken for a directory name.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_layout::Layout;

use crate::Outcome;
use crate::cli::InitArgs;
use crate::target::Target;

pub(crate) fn run(a: InitArgs) -> Result<Outcome> {
    let target = Target::parse_destination(&a.dir)?;
    if target.reference.is_some() {
        anyhow::bail!(
            "`ocil init` takes a directory, not a reference: `{}` (end it with `/` for a directory whose name holds `:`)",
            a.dir
        );
    }
    let path = target.layout_dir("`ocil export` writes archives")?;
    if path.exists() && !path.is_dir() {
        anyhow::bail!("`{}` exists and is not a directory", path.display());
    }
    fs_err::create_dir_all(path)?;
    let dir = Dir::open_ambient_dir(path, ambient_authority())
        .with_context(|| format!("cannot open `{}`", path.display()))?;
    Layout::create(dir)
        .with_context(|| format!("cannot create a layout in `{}`", path.display()))?;
    if a.report.json {
        crate::output::json(&serde_json::json!({"layout": path.display().to_string()}))?;
    } else if !a.report.quiet {
        println!("initialised an empty OCI image layout in `{}`", path.display());
    }
    Ok(Outcome::Ok)
}
