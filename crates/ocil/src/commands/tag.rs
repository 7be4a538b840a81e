//! `ocil tag DIR:REF NEWTAG` and `ocil untag DIR:TAG`.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result};
use ocil_layout::{Reference, tags};

use crate::Outcome;
use crate::cli::{TagArgs, UntagArgs};
use crate::progress::ReportArgs;
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
    let before = held_by(&index, &a.tag).filter(|d| *d != desc.digest);
    tags::set_tag(&mut index, &desc, &a.tag)?;
    layout
        .write_index(&index, &lock)
        .with_context(|| format!("cannot update `{}`", target.dir.display()))?;
    tagged(&a.report, &a.tag, &desc.digest, before)
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
    if a.report.json {
        let gone: Vec<String> = gone.iter().map(|d| d.digest.to_string()).collect();
        crate::output::json(&serde_json::json!({"untagged": tag, "digests": gone}))?;
        return Ok(Outcome::Ok);
    }
    if a.report.quiet {
        return Ok(Outcome::Ok);
    }
    for d in gone {
        println!("untagged {tag} ({})", d.digest);
    }
    Ok(Outcome::Ok)
}

/// The digest of the entry known by `name` (a tag or a full name), if any.
pub(crate) fn held_by(index: &ocil_layout::Index, name: &str) -> Option<ocil_layout::Digest> {
    let (tag, full) = tags::split_name(name);
    let key = full.unwrap_or(tag);
    index
        .manifests
        .iter()
        .find(|d| tags::entry_name(d) == Some(key.as_str()))
        .map(|d| d.digest.clone())
}

/// Say that `name` now names `digest`: `NAME -> DIGEST` (a note on stderr when it moved),
/// or JSON, or (`-q`) the digest alone.
pub(crate) fn tagged(
    report: &ReportArgs,
    name: &str,
    digest: &ocil_layout::Digest,
    before: Option<ocil_layout::Digest>,
) -> Result<Outcome> {
    if report.json {
        let before = before.map(|d| d.to_string());
        crate::output::json(&serde_json::json!({
            "tag": name, "digest": digest.to_string(), "moved_from": before
        }))?;
        return Ok(Outcome::Ok);
    }
    if report.quiet {
        println!("{digest}");
        return Ok(Outcome::Ok);
    }
    println!("{name} -> {digest}");
    if let Some(old) = before {
        crate::output::note(&format!("tag `{name}` moved from `{old}`"));
    }
    Ok(Outcome::Ok)
}
