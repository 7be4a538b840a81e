//! `ocil gc DIR`.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::GcArgs;
use crate::target::Target;
use crate::{Outcome, output};

/// Parse `now`, `0`, `30s`, `10m`, `2h`, `1d` (a bare number is seconds).
pub(crate) fn parse_age(s: &str) -> Result<Duration> {
    if s == "now" {
        return Ok(Duration::ZERO);
    }
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86400),
        _ => (s, 1),
    };
    let n: u64 =
        num.parse().with_context(|| format!("invalid age `{s}`: use now, 30s, 10m, 2h or 1d"))?;
    Ok(Duration::from_secs(n * mult))
}

#[derive(Serialize)]
struct JsonOut<'a> {
    dry_run: bool,
    plan: &'a ocil_gc::Plan,
    report: Option<&'a ocil_gc::Report>,
}

pub(crate) fn run(a: GcArgs) -> Result<Outcome> {
    let grace = parse_age(&a.prune)?;
    let target = Target::parse(&a.dir)?;
    target.no_reference("gc", "a layout directory")?;
    let layout = target.open()?;
    let dir = target.dir.display();
    let opts = ocil_gc::Options {
        grace,
        tagged_only: a.tagged_only,
        drop_referrers: a.drop_referrers,
        force: a.force,
    };
    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", dir))?;
    let bars = a.report.bars();
    bars.spinner("mark");
    let plan = ocil_gc::plan(&layout, &opts);
    bars.clear();
    let plan = plan.with_context(|| format!("gc of `{}` stopped", dir))?;
    let report = if a.dry_run {
        None
    } else {
        let report = plan.apply_with(&layout, &lock, &bars);
        Some(report.with_context(|| format!("gc of `{}` incomplete", dir))?)
    };
    drop(lock);
    if a.verbose {
        let p = plan.phases;
        let sweep = report.as_ref().map(|r| r.sweep_time).unwrap_or_default();
        output::note(&format!(
            "phases: walk {:.3}s (listing blobs/ beside it: {:.3}s), probe {:.3}s, sweep {:.3}s",
            p.walk.as_secs_f64(),
            p.list.as_secs_f64(),
            p.probe.as_secs_f64(),
            sweep.as_secs_f64()
        ));
    }
    if a.report.json {
        output::json(&JsonOut { dry_run: a.dry_run, plan: &plan, report: report.as_ref() })?;
    } else if a.report.quiet {
        // Nothing on stdout; what is wrong with the layout still goes to stderr.
        for p in &plan.dangling {
            output::warn(&format!("dangling: {} (at {})", p.message, p.path));
        }
        for p in plan.problems.iter().filter(|p| p.severity == "error") {
            output::warn(&format!("problem[{}]: {} (at {})", p.code, p.message, p.path));
        }
    } else {
        let mut out = output::stdout();
        for p in &plan.dangling {
            writeln!(out, "dangling: {}", p.message)?;
            writeln!(out, "  at {}", p.path)?;
        }
        for p in plan.problems.iter().filter(|p| p.severity == "error") {
            writeln!(out, "problem[{}]: {}", p.code, p.message)?;
            writeln!(out, "  at {}", p.path)?;
        }
        for s in &plan.strays {
            writeln!(out, "stray (kept): `{}`: {}", s.path, s.reason)?;
        }
        if a.dry_run {
            for g in &plan.remove {
                writeln!(out, "would remove {}  {}  {}", g.digest, output::size(g.size), g.reason)?;
            }
        }
        writeln!(
            out,
            "reachable: {} blob(s), {}",
            plan.reachable,
            output::size(plan.reachable_bytes)
        )?;
        if !plan.referrers.is_empty() {
            writeln!(out, "referrers kept (subject is live): {}", plan.referrers.len())?;
        }
        match &report {
            None => writeln!(
                out,
                "would remove: {} blob(s), {}; {} stale temp file(s) (dry run: nothing changed)",
                plan.remove.len(),
                output::size(plan.remove_bytes()),
                plan.stale_temps.len()
            )?,
            Some(r) => writeln!(
                out,
                "removed: {} blob(s), {}; {} stale temp file(s)",
                r.removed_blobs,
                output::size(r.removed_bytes),
                r.removed_temps
            )?,
        }
        if !plan.dropped_entries.is_empty() {
            writeln!(
                out,
                "untagged entries dropped from index.json: {}",
                plan.dropped_entries.len()
            )?;
        }
        if !plan.young.is_empty() || plan.young_temps > 0 {
            let bytes: u64 = plan.young.iter().map(|y| y.size).sum();
            writeln!(
                out,
                "kept (younger than --prune={}): {} blob(s), {}; {} temp file(s)",
                a.prune,
                plan.young.len(),
                output::size(bytes),
                plan.young_temps
            )?;
            if !plan.young.is_empty() {
                // A layout just copied or unpacked has only young files: its garbage stays.
                writeln!(
                    out,
                    "hint: a blob's age is its file's mtime, so a layout just copied or extracted keeps its garbage; --prune=now removes it (safe when no other tool is writing to the layout)"
                )?;
            }
        }
        writeln!(out, "dangling: {}; strays: {}", plan.dangling.len(), plan.strays.len())?;
        out.flush()?;
    }
    Ok(if a.strict && !plan.dangling.is_empty() { Outcome::Problems } else { Outcome::Ok })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("now").unwrap(), Duration::ZERO);
        assert_eq!(parse_age("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_age("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_age("45").unwrap(), Duration::from_secs(45));
        assert!(parse_age("soon").is_err());
        assert!(parse_age("-1m").is_err());
    }
}
