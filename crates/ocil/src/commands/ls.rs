//! `ocil ls DIR`.

use std::io::Write;

use anyhow::Result;
use ocil_layout::inspect::summarize_entries;

use crate::cli::LsArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) fn run(a: LsArgs) -> Result<Outcome> {
    let target = Target::parse(&a.dir)?;
    if target.reference.is_some() {
        anyhow::bail!("`ocil ls` takes a layout directory, not a reference: `{}`", a.dir);
    }
    let layout = target.open()?;
    let index = target.read_index_lenient(&layout)?;
    let rows = summarize_entries(&layout, &index);
    if a.json {
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
