//! `ocil index DIR:TAG --add DIR2:REF... --rm-platform os/arch[/variant]...`: create or edit
//! a multi-platform index.
#![allow(clippy::print_stdout)]

use std::io::Write as _;

use anyhow::{Context, Result};
use ocil_edit::index::{ChildChange, IndexEdit, IndexSource, edit_index};
use ocil_layout::{Layout, Reference};

use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Create or edit a multi-platform index.

DIR:TAG names the index; it is created when TAG does not exist. --add DIR2:REF adds an image (or every child of an index) from DIR's own layout or from another one (DIR2 may be DIR); its platform comes from its image config (os, architecture, variant, os.version, os.features). The image's blobs that DIR lacks are copied (verified: digest and size). An image whose platform is already in the index replaces that child (and the attestations attached to it).
--rm-platform os/arch[/variant] removes the children of that platform, and the BuildKit attestations that point at them. Removals come before additions.
A new index is a Docker manifest list when every child is a Docker schema2 manifest, an OCI index otherwise; a Docker manifest list that gains an OCI child becomes an OCI index. Other children keep their exact bytes.
Everything happens under DIR's lock: blobs copied, the index written, index.json replaced once.";

#[derive(Debug, clap::Args)]
pub(crate) struct IndexArgs {
    /// DIR:TAG of the index (created when TAG does not exist)
    pub(crate) target: String,
    /// Add an image or an index's children: DIR2:REF or DIR2@DIGEST
    #[arg(long, value_name = "DIR2:REF")]
    pub(crate) add: Vec<String>,
    /// Remove the children of this platform (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) rm_platform: Vec<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) fn run(a: IndexArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let Some(Reference::Tag(tag)) = &target.reference else {
        anyhow::bail!("`ocil index` needs DIR:TAG, got `{}`", a.target);
    };
    if a.add.is_empty() && a.rm_platform.is_empty() {
        anyhow::bail!("nothing to do: give --add DIR2:REF or --rm-platform os/arch");
    }
    let remove = a
        .rm_platform
        .iter()
        .map(|p| {
            p.parse::<ocil_layout::Platform>()
                .with_context(|| format!("invalid --rm-platform `{p}`"))
        })
        .collect::<Result<Vec<_>>>()?;
    let layout = target.open()?;
    let mut sources: Vec<(Layout, Reference)> = Vec::new();
    for s in &a.add {
        let t = Target::parse(s).with_context(|| format!("invalid --add `{s}`"))?;
        let Some(r) = t.reference.clone() else {
            anyhow::bail!("--add needs DIR2:REF or DIR2@DIGEST, got `{s}`");
        };
        sources.push((t.open()?, r));
    }
    let add = sources
        .iter()
        .zip(&a.add)
        .map(|((layout, reference), label)| IndexSource { layout, reference, label })
        .collect();
    let edit = IndexEdit { tag, add, remove };

    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", target.dir.display()))?;
    let report = edit_index(&layout, &lock, &edit)
        .with_context(|| format!("cannot edit index `{}`", a.target))?;
    drop(lock);

    if a.report.json {
        let children = |cs: &[ChildChange]| -> Vec<serde_json::Value> {
            cs.iter()
                .map(
                    |c| serde_json::json!({"platform": c.platform, "digest": c.digest.to_string()}),
                )
                .collect()
        };
        output::json(&serde_json::json!({
            "layout": target.dir.display().to_string(),
            "tag": tag,
            "before": report.before.as_ref().map(ToString::to_string),
            "after": report.entry.digest.to_string(),
            "media_type": report.entry.media_type.as_str(),
            "created": report.created,
            "changed": report.changed,
            "converted": report.converted,
            "added": children(&report.added),
            "replaced": children(&report.replaced),
            "removed": children(&report.removed),
            "unchanged": children(&report.unchanged),
            "copied_blobs": report.copied_blobs,
            "copied_bytes": report.copied_bytes,
        }))?;
        return Ok(Outcome::Ok);
    }
    let mut out = output::stdout();
    if a.report.quiet {
        writeln!(out, "{}", report.entry.digest)?;
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    for c in &report.removed {
        writeln!(out, "removed  {} {}", c.platform, c.digest)?;
    }
    for c in &report.replaced {
        writeln!(out, "replaced {} {} (same platform)", c.platform, c.digest)?;
    }
    for c in &report.unchanged {
        writeln!(out, "kept     {} {} (already in the index)", c.platform, c.digest)?;
    }
    for c in &report.added {
        writeln!(out, "added    {} {}", c.platform, c.digest)?;
    }
    if report.copied_blobs > 0 {
        writeln!(
            out,
            "copied {} blob(s), {}",
            report.copied_blobs,
            output::size(report.copied_bytes)
        )?;
    }
    if report.converted {
        writeln!(
            out,
            "note: the Docker manifest list became an OCI index (it now holds OCI manifests)"
        )?;
    }
    let verb = match (report.created, report.changed) {
        (true, _) => "created",
        (false, true) => "updated",
        (false, false) => "unchanged",
    };
    writeln!(out, "{tag} -> {} ({verb} {})", report.entry.digest, report.entry.media_type)?;
    out.flush()?;
    Ok(Outcome::Ok)
}
