//! `ocil ls DIR` and `ocil ls FILE` (an archive, read in place).

use std::io::Write;

use anyhow::{Context, Result};
use ocil_inspect::{EntrySummary, summarize_entries};

use crate::cli::LsArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) fn run(a: LsArgs) -> Result<Outcome> {
    if let Some(r) = crate::registry::docker_target(&a.dir)? {
        return tags(&a, &r);
    }
    let target = Target::parse(&a.dir)?;
    if target.reference.is_some() {
        let what = if target.is_archive() { "an archive" } else { "a layout directory" };
        anyhow::bail!("`ocil ls` takes {what}, not a reference: `{}`", a.dir);
    }
    let rows = if target.is_archive() {
        let view = target.open_archive(a.report.quiet || a.report.json)?;
        view.verify_documents()
            .with_context(|| format!("cannot read {}", target.archive_name()))?;
        summarize_entries(&view, view.index())
    } else {
        let layout = target.open()?;
        let index = target.read_index_lenient(&layout)?;
        summarize_entries(&layout, &index)
    };
    print(&rows, a.report.json, a.no_trunc, a.report.quiet)
}

/// `ocil ls docker://NAME`: the repository's tags, one a line (every page of the list).
fn tags(a: &LsArgs, r: &ocil_layout::image_ref::RegistryRef) -> Result<Outcome> {
    let last = a.dir.trim_start_matches("docker://").rsplit('/').next().unwrap_or_default();
    if last.contains([':', '@']) {
        anyhow::bail!("`ocil ls` takes a repository (docker://NAME), not a reference: `{}`", a.dir);
    }
    let client = crate::registry::connect(r, &a.registry)?;
    let repo = ocil_registry::Repository::new(client, r.repository());
    let tags =
        repo.tags().with_context(|| format!("cannot list the tags of `docker://{}`", r.name()))?;
    if a.report.json {
        output::json(&serde_json::json!({ "repository": r.name(), "tags": tags }))?;
        return Ok(Outcome::Ok);
    }
    let mut out = output::stdout();
    for t in &tags {
        writeln!(out, "{t}")?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}

/// The table (or JSON) of `ocil ls`, the same for a directory and an archive.
fn print(rows: &[EntrySummary], json: bool, no_trunc: bool, quiet: bool) -> Result<Outcome> {
    if quiet {
        let mut out = output::stdout();
        for r in rows {
            // The name the entry is known by: its full name when it has one (listed last).
            match r.names.last() {
                Some(n) => writeln!(out, "{n}")?,
                None => writeln!(out, "@{}", r.digest)?,
            }
        }
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    if json {
        output::json(&rows)?;
        return Ok(Outcome::Ok);
    }
    let mut out = output::stdout();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let name =
                if r.names.is_empty() { "<untagged>".to_owned() } else { r.names.join(", ") };
            let mut size = output::size(r.size);
            if r.missing > 0 {
                size.push_str(&format!(" ({} missing)", r.missing));
            }
            vec![
                name,
                if no_trunc { r.digest.to_string() } else { r.digest.short() },
                r.media_type_short.clone(),
                platforms_cell(&r.platforms),
                size,
            ]
        })
        .collect();
    output::table(&mut out, &["NAME", "DIGEST", "TYPE", "PLATFORMS", "SIZE"], &table)?;
    out.flush()?;
    Ok(Outcome::Ok)
}

/// Widest PLATFORMS cell before the rest is shown as a count.
const PLATFORMS_WIDTH: usize = 40;

/// The platforms, comma-separated, cut to [`PLATFORMS_WIDTH`] with `+N` for the rest
/// (`--json` has them all).
fn platforms_cell(platforms: &[String]) -> String {
    if platforms.is_empty() {
        return "-".into();
    }
    let all = platforms.join(",");
    if all.len() <= PLATFORMS_WIDTH {
        return all;
    }
    let mut shown = String::new();
    let mut n = 0;
    for p in platforms {
        let rest = platforms.len() - n - 1;
        let tail = if rest > 0 { format!(",+{rest}") } else { String::new() };
        let sep = usize::from(!shown.is_empty());
        if shown.len() + sep + p.len() + tail.len() > PLATFORMS_WIDTH && n > 0 {
            break;
        }
        if sep == 1 {
            shown.push(',');
        }
        shown.push_str(p);
        n += 1;
    }
    if n < platforms.len() {
        shown.push_str(&format!(",+{}", platforms.len() - n));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_past_the_width_are_counted() {
        let p = |v: &[&str]| platforms_cell(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(p(&[]), "-");
        assert_eq!(p(&["linux/amd64", "linux/arm64"]), "linux/amd64,linux/arm64");
        let many: Vec<String> = (0..11).map(|i| format!("linux/arch{i}")).collect();
        let cell = platforms_cell(&many);
        assert!(cell.len() <= PLATFORMS_WIDTH, "{cell}");
        assert_eq!(cell, "linux/arch0,linux/arch1,linux/arch2,+8");
    }
}
