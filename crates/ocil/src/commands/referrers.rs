//! `ocil referrers DIR:REF` (or an archive read in place): the signatures, SBOMs and
//! attestations stored for an image (documents whose `subject` names it), and theirs in
//! turn, as `oras discover` shows them; `--json` gives the tree.

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context, Result};
use ocil_layout::referrer::{Referrers, StoredReferrer};
use ocil_layout::{Digest, Store};
use serde::Serialize;

use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "List the referrers of an image: the documents stored beside it whose `subject` names it (signatures, SBOMs, attestations: what `oras discover` shows), and their referrers in turn, as a tree.

The store is searched once: every JSON manifest or index in it (tagged or not) that has a `subject`. --artifact-type keeps only referrers of that type (their own referrers are still searched). Works on a layout and on an archive read in place.";

#[derive(Debug, clap::Args)]
pub(crate) struct ReferrersArgs {
    /// DIR:TAG or DIR@DIGEST (or FILE[:REF], an archive) of the image
    pub(crate) target: String,
    /// Only referrers with this artifactType
    #[arg(long, value_name = "TYPE")]
    pub(crate) artifact_type: Option<String>,
    /// Print the tree as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

/// One referrer and its own.
#[derive(Serialize)]
struct Node {
    digest: String,
    media_type: String,
    artifact_type: Option<String>,
    size: u64,
    referrers: Vec<Node>,
}

pub(crate) fn run(a: ReferrersArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let (view, layout);
    let store: &dyn Store = if target.is_archive() {
        view = target.open_archive(a.json)?;
        &view
    } else {
        layout = target.open()?;
        &layout
    };
    let index = store.read_index().with_context(|| format!("cannot read `{}`", a.target))?;
    let subject = ocil_layout::store::resolve(store, &index, target.reference.as_ref())
        .with_context(|| format!("cannot resolve `{}`", a.target))?;
    let found = Referrers::scan(store, |_| false)
        .with_context(|| format!("cannot list the blobs of `{}`", a.target))?;
    let mut seen = HashSet::from([subject.digest.clone()]);
    let tree = tree(&found, &subject.digest, a.artifact_type.as_deref(), &mut seen);
    if a.json {
        output::json(&Node {
            digest: subject.digest.to_string(),
            media_type: subject.media_type.to_string(),
            artifact_type: subject.artifact_type.clone(),
            size: subject.size,
            referrers: tree,
        })?;
        return Ok(Outcome::Ok);
    }
    let mut out = output::stdout();
    writeln!(out, "{}", subject.digest)?;
    print(&mut out, &tree, "")?;
    if tree.is_empty() {
        writeln!(out, "(no referrers)")?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}

/// The referrers of `subject`, each with its own; a cycle (a document that is its own
/// ancestor's referrer) is cut where it repeats.
fn tree(
    found: &Referrers,
    subject: &Digest,
    artifact_type: Option<&str>,
    seen: &mut HashSet<Digest>,
) -> Vec<Node> {
    let mut mine: Vec<&StoredReferrer> = found.of(subject).collect();
    mine.sort_by(|a, b| a.descriptor.digest.cmp(&b.descriptor.digest));
    let mut out = Vec::new();
    for r in mine {
        let d = &r.descriptor;
        if !seen.insert(d.digest.clone()) {
            continue;
        }
        let theirs = tree(found, &d.digest, artifact_type, seen);
        let wanted = artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t));
        if wanted {
            out.push(Node {
                digest: d.digest.to_string(),
                media_type: d.media_type.to_string(),
                artifact_type: d.artifact_type.clone(),
                size: d.size,
                referrers: theirs,
            });
        } else {
            out.extend(theirs);
        }
    }
    out
}

fn print(out: &mut impl Write, nodes: &[Node], indent: &str) -> std::io::Result<()> {
    for (i, n) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        let kind = n.artifact_type.as_deref().unwrap_or(&n.media_type);
        writeln!(
            out,
            "{indent}{} {kind} {} ({} B)",
            if last { "└──" } else { "├──" },
            n.digest,
            n.size
        )?;
        let deeper = format!("{indent}{}", if last { "    " } else { "│   " });
        print(out, &n.referrers, &deeper)?;
    }
    Ok(())
}
