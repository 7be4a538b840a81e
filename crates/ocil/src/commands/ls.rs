//! `ocil ls DIR` and `ocil ls FILE` (an archive, read in place).

use std::io::Write;

use anyhow::{Context, Result};
use ocil_inspect::{EntrySummary, summarize_entries};

use crate::cli::LsArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) fn run(a: LsArgs) -> Result<Outcome> {
    let target = Target::parse(&a.dir)?;
    if target.reference.is_some() {
        let what = if target.is_archive() { "an archive" } else { "a layout directory" };
        anyhow::bail!("`ocil ls` takes {what}, not a reference: `{}`", a.dir);
    }
    let rows = if target.is_archive() {
        let view = target.open_archive()?;
        view.verify_documents()
            .with_context(|| format!("cannot read {}", target.archive_name()))?;
        summarize_entries(&view, view.index())
    } else {
        let layout = target.open()?;
        let index = target.read_index_lenient(&layout)?;
        summarize_entries(&layout, &index)
    };
    print(&rows, a.json)
}

/// The table (or JSON) of `ocil ls`, the same for a directory and an archive.
fn print(rows: &[EntrySummary], json: bool) -> Result<Outcome> {
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
                r.digest.short(),
                r.media_type_short.clone(),
                if r.platforms.is_empty() { "-".into() } else { r.platforms.join(",") },
                size,
            ]
        })
        .collect();
    output::table(&mut out, &["NAME", "DIGEST", "TYPE", "PLATFORMS", "SIZE"], &table)?;
    out.flush()?;
    Ok(Outcome::Ok)
}
