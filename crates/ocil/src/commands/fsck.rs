//! `ocil fsck DIR`.

use std::io::Write;

use anyhow::{Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_layout::walk::Severity;
use serde::Serialize;

use crate::cli::FsckArgs;
use crate::{Outcome, output};

#[derive(Serialize)]
struct JsonProblem<'a> {
    severity: &'static str,
    code: &'static str,
    digest: Option<String>,
    path: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    clean: bool,
    errors: usize,
    warnings: usize,
    stats: &'a ocil_fsck::Stats,
    problems: Vec<JsonProblem<'a>>,
}

pub(crate) fn run(a: FsckArgs) -> Result<Outcome> {
    if !a.dir.exists() {
        anyhow::bail!("no such directory `{}`", a.dir.display());
    }
    if !a.dir.is_dir() {
        anyhow::bail!("`{}` is not a directory", a.dir.display());
    }
    let dir = Dir::open_ambient_dir(&a.dir, ambient_authority())
        .with_context(|| format!("cannot open `{}`", a.dir.display()))?;
    let opts = ocil_fsck::Options { allow_missing: a.allow_missing, deep: a.deep };
    let report = ocil_fsck::check(dir, &opts)
        .with_context(|| format!("cannot check `{}`", a.dir.display()))?;
    let errors = report.errors().count();
    let warnings = report.warnings().count();
    if a.json {
        output::json(&JsonReport {
            clean: report.is_clean(),
            errors,
            warnings,
            stats: &report.stats,
            problems: report
                .problems
                .iter()
                .map(|p| JsonProblem {
                    severity: if p.severity == Severity::Error { "error" } else { "warning" },
                    code: p.code,
                    digest: p.digest.as_ref().map(ToString::to_string),
                    path: &p.path,
                    message: &p.message,
                })
                .collect(),
        })?;
    } else {
        let mut out = output::stdout();
        let mut sorted: Vec<_> = report.problems.iter().collect();
        sorted.sort_by_key(|p| std::cmp::Reverse(p.severity));
        for p in sorted {
            if a.quiet && p.severity == Severity::Warning {
                continue;
            }
            let sev = if p.severity == Severity::Error { "error" } else { "warning" };
            writeln!(out, "{sev}[{}]: {}", p.code, p.message)?;
            writeln!(out, "  at {}", p.path)?;
        }
        let s = &report.stats;
        writeln!(
            out,
            "checked {} blob(s) ({}), {} entr{} in index.json, {} document(s): {} reachable, {} unreferenced, {} missing",
            s.blobs,
            output::size(s.bytes),
            s.entries,
            if s.entries == 1 { "y" } else { "ies" },
            s.documents,
            s.reachable,
            s.unreferenced,
            s.missing
        )?;
        if errors == 0 {
            writeln!(out, "clean: 0 errors, {warnings} warning(s)")?;
        } else {
            writeln!(out, "{errors} error(s), {warnings} warning(s)")?;
        }
        out.flush()?;
    }
    Ok(if report.is_clean() { Outcome::Ok } else { Outcome::Problems })
}
