//! `ocil tag DIR:REF NEWTAG` and `ocil untag DIR:TAG`.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result};
use ocil_layout::{Reference, tags};

use crate::Outcome;
use crate::cli::{TagArgs, UntagArgs};
use crate::target::Target;

pub(crate) fn run_tag(a: TagArgs) -> Result<Outcome> {
    let target = Target::parse(&a.source)?;
    let Some(reference) = &target.reference else {
        anyhow::bail!("`ocil tag` needs DIR:TAG or DIR@DIGEST, got `{}`", a.source);
    };
    ocil_layout::reference::validate_tag(&a.tag)?;
    let layout = target.open()?;
    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", target.dir.display()))?;
    let mut index = layout
        .read_index()
        .with_context(|| format!("cannot read `{}/index.json`", target.dir.display()))?;
    let desc = layout.resolve(&index, Some(reference))?;
    if !desc.media_type.kind().is_walkable() {
        anyhow::bail!(
            "`{}` is a `{}`, not a manifest or index: refusing to tag it",
            desc.digest,
            desc.media_type
        );
    }
    let before = index
        .manifests
        .iter()
        .find(|d| d.ref_name() == Some(a.tag.as_str()))
        .map(|d| d.digest.clone())
        .filter(|d| *d != desc.digest);
    tags::set_tag(&mut index, &desc, &a.tag)?;
    layout
        .write_index(&index, &lock)
        .with_context(|| format!("cannot update `{}`", target.dir.display()))?;
    match before {
        Some(old) => {
            println!("{} -> {}", a.tag, desc.digest);
            crate::output::note(&format!("tag `{}` moved from `{old}`", a.tag));
        }
        None => println!("{} -> {}", a.tag, desc.digest),
    }
    Ok(Outcome::Ok)
}

pub(crate) fn run_untag(a: UntagArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let Some(Reference::Tag(tag)) = &target.reference else {
        anyhow::bail!("`ocil untag` needs DIR:TAG, got `{}`", a.target);
    };
    let layout = target.open()?;
    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", target.dir.display()))?;
    let mut index = layout
        .read_index()
        .with_context(|| format!("cannot read `{}/index.json`", target.dir.display()))?;
    let gone = tags::remove_tag(&mut index, tag)
        .with_context(|| format!("cannot untag `{tag}` in `{}`", target.dir.display()))?;
    layout
        .write_index(&index, &lock)
        .with_context(|| format!("cannot update `{}`", target.dir.display()))?;
    for d in gone {
        println!("untagged {tag} ({})", d.digest);
    }
    Ok(Outcome::Ok)
}
