//! `ocil new DIR:TAG`: an empty image (config with no layers) to build on.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result};
use ocil_layout::{Reference, tags};

use crate::Outcome;
use crate::cli::NewArgs;
use crate::target::Target;

pub(crate) fn run(a: NewArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let Some(Reference::Tag(tag)) = &target.reference else {
        anyhow::bail!("`ocil new` needs DIR:TAG, got `{}`", a.target);
    };
    let created = match &a.created {
        Some(c) => Some(c.clone()),
        None => crate::epoch::source_date_epoch_rfc3339()?,
    };
    let platform = a.platform.parse::<ocil_layout::Platform>()?;
    let layout = target.open()?;
    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", target.dir.display()))?;
    let manifest = ocil_edit::empty_image(&layout, &platform, created.as_deref())?;
    let mut index = layout
        .read_index()
        .with_context(|| format!("cannot read `{}/index.json`", target.dir.display()))?;
    let before = crate::commands::tag::held_by(&index, tag).filter(|d| *d != manifest.digest);
    if let Some(old) = &before
        && !a.force
    {
        anyhow::bail!(
            "tag `{tag}` already names `{old}` in `{}` (use --force to move it)",
            target.dir.display()
        );
    }
    tags::set_tag(&mut index, &manifest, tag)?;
    layout
        .write_index(&index, &lock)
        .with_context(|| format!("cannot update `{}`", target.dir.display()))?;
    crate::commands::tag::tagged(&a.report, tag, &manifest.digest, before)
}
