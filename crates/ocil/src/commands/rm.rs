//! `ocil rm DIR:REF [--gc]`: remove `index.json` entries (a tag's, or every entry with a
//! digest), then, with `--gc`, collect under the same lock.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result, bail};
use ocil_layout::{Reference, reference};

use crate::commands::gc::parse_age;
use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Remove an image from index.json: DIR:TAG removes the entries that tag names, DIR@DIGEST every entry with that digest.
With --gc, blobs nothing reaches any more are then removed, under the same lock (so nothing can re-reference them in between), with `ocil gc`'s rules: every remaining entry is a root, referrers of live images stay, unreferenced blobs younger than --prune (default 10m) are kept for writers that do not take ocil's lock.";

#[derive(Debug, clap::Args)]
pub(crate) struct RmArgs {
    /// DIR:TAG or DIR@DIGEST
    pub(crate) target: String,
    /// Then remove the blobs nothing reaches any more
    #[arg(long)]
    pub(crate) gc: bool,
    /// With --gc: keep unreferenced blobs younger than this (`now`, `30s`, `10m`, `2h`, `1d`)
    #[arg(long, default_value = "10m", value_name = "AGE", requires = "gc")]
    pub(crate) prune: String,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) fn run(a: RmArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let Some(r) = &target.reference else {
        bail!("`ocil rm` needs DIR:TAG or DIR@DIGEST, got `{}`", a.target);
    };
    let grace = parse_age(&a.prune)?;
    let layout = target.open()?;
    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", target.dir.display()))?;
    let mut index = layout
        .read_index()
        .with_context(|| format!("cannot read `{}/index.json`", target.dir.display()))?;
    let positions: Vec<usize> = match r {
        Reference::Tag(t) => {
            let hits = reference::entries_named(&index, t);
            // A bare tag that several full names share names several images: say which.
            let mut names: Vec<&str> =
                hits.iter().filter_map(|(_, d)| ocil_layout::tags::entry_name(d)).collect();
            names.sort_unstable();
            names.dedup();
            if names.len() > 1 {
                bail!(
                    "`{t}` names {} images in `{}`: {} (name one)",
                    names.len(),
                    target.dir.display(),
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                );
            }
            hits.into_iter().map(|(i, _)| i).collect()
        }
        Reference::Digest(d) => index
            .manifests
            .iter()
            .enumerate()
            .filter(|(_, e)| &e.digest == d)
            .map(|(i, _)| i)
            .collect(),
    };
    if positions.is_empty() {
        // The same message as every other command for an unknown tag.
        if let Reference::Tag(_) = r {
            layout.resolve(&index, Some(r))?;
        }
        bail!("no `index.json` entry is `{r}` in `{}`", target.dir.display());
    }
    let mut removed = Vec::new();
    let mut i = 0;
    index.manifests.retain(|e| {
        let gone = positions.contains(&i);
        i += 1;
        if gone {
            removed.push(e.clone());
        }
        !gone
    });
    layout
        .write_index(&index, &lock)
        .with_context(|| format!("cannot update `{}`", target.dir.display()))?;
    let gc = if a.gc {
        let opts = ocil_gc::Options { grace, ..Default::default() };
        let bars = a.report.bars();
        bars.spinner("mark");
        let plan = ocil_gc::plan(&layout, &opts);
        bars.clear();
        let plan = plan.with_context(|| {
            format!("gc of `{}` stopped (the entries are removed)", target.dir.display())
        })?;
        let report = plan
            .apply_with(&layout, &lock, &bars)
            .with_context(|| format!("gc of `{}` incomplete", target.dir.display()))?;
        Some((plan, report))
    } else {
        None
    };
    drop(lock);
    if a.report.json {
        let removed: Vec<serde_json::Value> = removed
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": entry_name(e),
                    "digest": e.digest.to_string(),
                    "media_type": e.media_type.as_str(),
                })
            })
            .collect();
        let gc =
            gc.as_ref().map(|(plan, report)| serde_json::json!({"plan": plan, "report": report}));
        output::json(&serde_json::json!({
            "layout": target.dir.display().to_string(),
            "reference": r.to_string(),
            "removed": removed,
            "gc": gc,
        }))?;
        return Ok(Outcome::Ok);
    }
    if a.report.quiet {
        return Ok(Outcome::Ok);
    }
    for e in &removed {
        let name = entry_name(e).unwrap_or("(untagged)");
        println!("removed {name} {}", e.digest);
    }
    if let Some((plan, report)) = gc {
        println!(
            "gc: removed {} blob(s), {}; kept {} young blob(s) (--prune={})",
            report.removed_blobs,
            output::size(report.removed_bytes),
            plan.young.len(),
            a.prune
        );
    }
    Ok(Outcome::Ok)
}

/// The name an entry is known by: its tag, else its full name.
fn entry_name(e: &ocil_layout::Descriptor) -> Option<&str> {
    e.ref_name().or_else(|| e.annotation(ocil_layout::ANNOTATION_CONTAINERD_NAME))
}
