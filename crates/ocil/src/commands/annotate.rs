//! `ocil annotate DIR:REF key=value... [--rm key] [--on manifest|index|entry]`: set and
//! remove annotations on an image's manifest, an index, or the `index.json` entry.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result, bail};
use ocil_edit::{EditTarget, JsonDoc, Platforms, edit_entry_index, edit_images};
use ocil_layout::{ANNOTATION_REF_NAME, Kind, Reference, reference};

use crate::commands::config::PlatformArgs;
use crate::commands::edited::{edited_json, print_edited};
use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Set and remove annotations.

--on manifest (the default for an image, and for an index with --platform or --all-platforms): the image manifest's annotations; a new manifest is written, and enclosing indexes are rewritten as `ocil config` does.
--on index (the default for an index): the annotations of the index (or manifest list) the entry points at; its children are left alone.
--on entry: the descriptor in index.json itself; no blob is written. `org.opencontainers.image.ref.name` cannot be set or removed there: use `ocil tag` and `ocil untag`.
The tag moves to the new manifest or index unless --tag NEW is given (then the old one stays). Removals run before settings; removing an annotation that is not there is not an error.";

/// Where annotations go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum On {
    /// The image manifest
    Manifest,
    /// The index or manifest list the entry points at
    Index,
    /// The descriptor in index.json
    Entry,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AnnotateArgs {
    /// DIR:TAG or DIR@DIGEST
    pub(crate) target: String,
    /// Annotations to set
    #[arg(value_name = "KEY=VALUE")]
    pub(crate) annotations: Vec<String>,
    /// Remove an annotation
    #[arg(long = "rm", value_name = "KEY")]
    pub(crate) remove: Vec<String>,
    /// What to annotate (default: manifest for an image, index for an index)
    #[arg(long, value_enum)]
    pub(crate) on: Option<On>,
    /// Give the result this tag and leave the old one (not with --on entry)
    #[arg(long, value_name = "NEW")]
    pub(crate) tag: Option<String>,
    #[command(flatten)]
    pub(crate) platforms: PlatformArgs,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// Apply removals then settings to an `annotations` member; an emptied member goes.
fn annotate_doc(
    doc: &mut JsonDoc,
    set: &[(String, String)],
    rm: &[String],
) -> ocil_edit::Result<()> {
    let ann = doc.object_mut("annotations")?;
    for k in rm {
        ann.remove(k);
    }
    for (k, v) in set {
        ann.set(k, v)?;
    }
    if ann.keys().next().is_none() && (ann.is_changed()) {
        doc.remove("annotations");
    }
    Ok(())
}

pub(crate) fn run(a: AnnotateArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let Some(r) = &target.reference else {
        bail!("`ocil annotate` needs DIR:TAG or DIR@DIGEST, got `{}`", a.target);
    };
    let set = a
        .annotations
        .iter()
        .map(|s| ocil_edit::config::parse_key_value("annotation", s))
        .collect::<ocil_edit::Result<Vec<_>>>()?;
    if set.is_empty() && a.remove.is_empty() {
        bail!("nothing to change: give KEY=VALUE annotations or --rm KEY");
    }
    if let Some(t) = &a.tag {
        ocil_layout::reference::validate_tag(t)?;
    }
    let platforms = a.platforms.to_platforms()?;
    let layout = target.open()?;
    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", target.dir.display()))?;
    let mut index = layout
        .read_index()
        .with_context(|| format!("cannot read `{}/index.json`", target.dir.display()))?;
    let entry = layout.resolve(&index, Some(r))?;
    let on = match a.on {
        Some(on) => on,
        None if entry.media_type.kind() == Kind::Index && platforms == Platforms::Unspecified => {
            On::Index
        }
        None => On::Manifest,
    };
    let context = || format!("cannot annotate `{r}` in `{}`", target.dir.display());
    match on {
        On::Entry => {
            if a.tag.is_some() {
                bail!("--tag does not go with --on entry (it writes no new image)");
            }
            if platforms != Platforms::Unspecified {
                bail!("--platform and --all-platforms do not go with --on entry");
            }
            if set.iter().any(|(k, _)| k == ANNOTATION_REF_NAME)
                || a.remove.iter().any(|k| k == ANNOTATION_REF_NAME)
            {
                bail!(
                    "`{ANNOTATION_REF_NAME}` is the tag: use `ocil tag` or `ocil untag` to change it"
                );
            }
            let positions: Vec<usize> = match r {
                Reference::Tag(t) => reference::entries_named(&index, t)
                    .into_iter()
                    .filter(|(_, d)| d.digest == entry.digest)
                    .map(|(i, _)| i)
                    .collect(),
                Reference::Digest(d) => {
                    index.manifests.iter().position(|e| &e.digest == d).into_iter().collect()
                }
            };
            if positions.is_empty() {
                bail!("`{r}` is not an `index.json` entry (--on entry edits entries only)");
            }
            let old = index.clone();
            for i in &positions {
                let e = &mut index.manifests[*i];
                let mut ann = e.annotations.take().unwrap_or_default();
                for k in &a.remove {
                    ann.remove(k);
                }
                for (k, v) in &set {
                    ann.insert(k.clone(), v.clone());
                }
                e.annotations = if ann.is_empty() { None } else { Some(ann) };
            }
            let changed = index != old;
            if changed {
                layout.write_index(&index, &lock).with_context(context)?;
            }
            drop(lock);
            if a.report.json {
                output::json(&serde_json::json!({
                    "layout": target.dir.display().to_string(),
                    "reference": r.to_string(),
                    "digest": entry.digest.to_string(),
                    "entries": positions.len(),
                    "changed": changed,
                    "on": "entry",
                }))?;
                return Ok(Outcome::Ok);
            }
            if a.report.quiet {
                println!("{}", entry.digest);
                return Ok(Outcome::Ok);
            }
            println!(
                "annotated {} index.json entr{} ({})",
                positions.len(),
                if positions.len() == 1 { "y" } else { "ies" },
                entry.digest
            );
        }
        On::Index => {
            if platforms != Platforms::Unspecified {
                bail!("--platform and --all-platforms choose images: use them with --on manifest");
            }
            let edited = edit_entry_index(&layout, &lock, r, a.tag.as_deref(), |doc| {
                annotate_doc(doc, &set, &a.remove)
            })
            .with_context(context)?;
            drop(lock);
            report(&a, &target.dir, &edited, r, "index")?;
        }
        On::Manifest => {
            let edit = EditTarget { reference: r, platforms, new_tag: a.tag.as_deref() };
            let edited = edit_images(&layout, &lock, &edit, |image| {
                annotate_doc(&mut image.manifest, &set, &a.remove)
            })
            .with_context(context)?;
            drop(lock);
            report(&a, &target.dir, &edited, r, "manifest")?;
        }
    }
    Ok(Outcome::Ok)
}

/// What a new manifest or index says: text, or JSON with `on`.
fn report(
    a: &AnnotateArgs,
    dir: &std::path::Path,
    edited: &ocil_edit::Edited,
    r: &Reference,
    on: &str,
) -> Result<()> {
    if a.report.json {
        let mut v = edited_json(dir, edited, r, a.tag.as_deref());
        v.insert("on".into(), on.into());
        return output::json(&v);
    }
    print_edited(edited, r, a.tag.as_deref(), a.report.quiet);
    Ok(())
}
