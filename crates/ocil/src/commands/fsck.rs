//! `ocil fsck DIR` and `ocil fsck FILE`.
//!
//! A file is read as an archive: an image archive (OCI, docker-save) is imported into a
//! temporary layout, which is then checked like a directory, with the archive's own
//! problems (unsafe or duplicate entries, a bad `manifest.json`, ...) in the same report; a
//! legacy docker-save archive gets a `LEGACY_FORMAT` warning and each layer is checked to be
//! a tar; a plain tar (a layer) is checked to be a readable tar and its diff_id is printed.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_archive::{ArchiveKind, Scan};
use ocil_layout::walk::{Problem, Severity};
use serde::Serialize;

use crate::cli::FsckArgs;
use crate::target::Target;
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
struct JsonArchive {
    kind: &'static str,
    compression: &'static str,
    entries: usize,
    files: usize,
    dirs: usize,
    symlinks: usize,
    hardlinks: usize,
    other: usize,
    diff_id: String,
}

/// A delta or a volume: what its `ocil-bundle.json` says.
#[derive(Serialize)]
struct JsonBundle {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    omitted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volume: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volumes: Option<u32>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    clean: bool,
    errors: usize,
    warnings: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    archive: Option<JsonArchive>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<JsonBundle>,
    stats: &'a ocil_fsck::Stats,
    problems: Vec<JsonProblem<'a>>,
}

/// What was checked: a layout (the stats line), and the archive it came from, if any.
struct Checked<'a> {
    problems: Vec<Problem>,
    stats: Option<ocil_fsck::Stats>,
    archive: Option<&'a Scan>,
    bundle: Option<&'a ocil_archive::BundleReport>,
}

pub(crate) fn run(a: FsckArgs) -> Result<Outcome> {
    let target = Target::parse(&a.dir)?;
    let what = if target.is_archive() { "an archive" } else { "a layout directory" };
    target.no_reference("fsck", what)?;
    if target.is_stdin() {
        let spool = spool_stdin()?;
        return run_archive(&a, spool.path(), "standard input");
    }
    let path = &target.dir;
    if target.is_archive() {
        return run_archive(&a, path, &format!("`{}`", path.display()));
    }
    if !path.is_dir() {
        anyhow::bail!("`{}` is not a directory", path.display());
    }
    let dir = Dir::open_ambient_dir(path, ambient_authority())
        .with_context(|| format!("cannot open `{}`", path.display()))?;
    let (problems, stats) = check_dir(dir, &a, &format!("`{}`", path.display()))?;
    print(&a, Checked { problems, stats: Some(stats), archive: None, bundle: None })
}

/// Check a layout directory, named `shown` in messages.
fn check_dir(dir: Dir, a: &FsckArgs, shown: &str) -> Result<(Vec<Problem>, ocil_fsck::Stats)> {
    let opts = ocil_fsck::Options { allow_missing: a.allow_missing, deep: a.deep };
    let bars = a.report.bars();
    let report = ocil_fsck::check_with_progress(dir, &opts, &bars)
        .with_context(|| format!("cannot check {shown}"))?;
    Ok((report.problems, report.stats))
}

/// Standard input, copied whole into an unnamed-on-exit temporary file: an archive is read
/// twice (scanned, then imported into a scratch layout), which a pipe cannot be.
fn spool_stdin() -> Result<tempfile::NamedTempFile> {
    use std::io::IsTerminal as _;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        anyhow::bail!(
            "`-` reads an archive from standard input, which is a terminal: pipe one in (e.g. `docker save IMAGE | ocil fsck -`)"
        );
    }
    let mut spool = tempfile::Builder::new()
        .prefix(".ocil-fsck-stdin-")
        .tempfile()
        .context("cannot create a temporary file for standard input")?;
    std::io::copy(&mut stdin.lock(), spool.as_file_mut())
        .context("cannot copy standard input to a temporary file")?;
    Ok(spool)
}

/// Check the archive at `path`, named `shown` in messages (a quoted path, or "standard
/// input"), through `ocil_fsck::check_archive` with a scratch directory for its images.
fn run_archive(a: &FsckArgs, path: &Path, shown: &str) -> Result<Outcome> {
    let open = || fs_err::File::open(path).map(std::io::BufReader::new);
    let tmp = tempfile::Builder::new()
        .prefix(".ocil-fsck-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let scratch = Dir::open_ambient_dir(tmp.path(), ambient_authority())
        .with_context(|| format!("cannot open `{}`", tmp.path().display()))?;
    let opts = ocil_fsck::Options { allow_missing: a.allow_missing, deep: a.deep };
    let bars = a.report.bars();
    let report = match ocil_fsck::check_archive(open, scratch, &opts, &bars) {
        Ok(r) => r,
        Err(ocil_fsck::Error::NotAnArchive) => {
            anyhow::bail!("{shown} is neither a layout directory nor an archive");
        }
        Err(e) => return Err(e).with_context(|| format!("cannot check {shown}")),
    };
    print(
        a,
        Checked {
            problems: report.problems,
            stats: report.stats,
            archive: report.scan.as_ref(),
            bundle: report.bundle.as_ref(),
        },
    )
}

fn kinds_line(s: &Scan) -> String {
    let k = &s.kinds;
    let mut parts = Vec::new();
    for (n, what) in [
        (k.files, "file"),
        (k.dirs, "dir"),
        (k.symlinks, "symlink"),
        (k.hardlinks, "hardlink"),
        (k.other, "other"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}{}", if n == 1 { "" } else { "s" }));
        }
    }
    parts.join(", ")
}

fn compression_word(c: ocil_codec::Format) -> String {
    match c {
        ocil_codec::Format::Plain => "uncompressed".into(),
        other => format!("{}-compressed", other.as_str()),
    }
}

/// Places shown for a problem found in several (`--json` has them all).
const PLACES_SHOWN: usize = 3;

fn print(a: &FsckArgs, c: Checked<'_>) -> Result<Outcome> {
    let errors = c.problems.iter().filter(|p| p.severity == Severity::Error).count();
    let warnings = c.problems.len() - errors;
    let clean = errors == 0;
    if a.report.json {
        let stats = c.stats.clone().unwrap_or_default();
        output::json(&JsonReport {
            clean,
            errors,
            warnings,
            archive: c.archive.map(|s| JsonArchive {
                kind: s.kind.as_str(),
                compression: s.compression.as_str(),
                entries: s.entries,
                files: s.kinds.files,
                dirs: s.kinds.dirs,
                symlinks: s.kinds.symlinks,
                hardlinks: s.kinds.hardlinks,
                other: s.kinds.other,
                diff_id: s.diff_id.to_string(),
            }),
            bundle: c.bundle.map(|b| JsonBundle {
                kind: if b.volume.is_some() { "volume" } else { "delta" },
                since: b.since.as_ref().map(|s| s.receipt.to_string()),
                omitted: b.omitted.len(),
                bundle: b.bundle.as_ref().map(ToString::to_string),
                volume: b.volume.map(|(v, _)| v),
                volumes: b.volume.map(|(_, n)| n),
            }),
            stats: &stats,
            problems: c
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
        let mut sorted: Vec<_> = c.problems.iter().collect();
        sorted.sort_by_key(|p| std::cmp::Reverse(p.severity));
        // The same problem in several places (a warning per manifest) is said once, with
        // its places.
        let mut groups: Vec<(&Problem, Vec<&str>)> = Vec::new();
        for p in sorted {
            if a.report.quiet && p.severity == Severity::Warning {
                continue;
            }
            match groups
                .iter_mut()
                .find(|(g, _)| (g.severity, g.code, &g.message) == (p.severity, p.code, &p.message))
            {
                Some((_, places)) => places.push(&p.path),
                None => groups.push((p, vec![&p.path])),
            }
        }
        for (p, places) in groups {
            let sev = if p.severity == Severity::Error { "error" } else { "warning" };
            let times =
                if places.len() > 1 { format!(" ({}x)", places.len()) } else { String::new() };
            writeln!(out, "{sev}[{}]: {}{times}", p.code, p.message)?;
            for place in places.iter().take(PLACES_SHOWN) {
                writeln!(out, "  at {place}")?;
            }
            if places.len() > PLACES_SHOWN {
                writeln!(
                    out,
                    "  and {} more (--json lists them all)",
                    places.len() - PLACES_SHOWN
                )?;
            }
        }
        if a.report.quiet {
            // The errors are the result; the exit code says whether there were any.
            out.flush()?;
            return Ok(if clean { Outcome::Ok } else { Outcome::Problems });
        }
        if let Some(s) = c.archive {
            writeln!(
                out,
                "archive: {}, {}, {} entr{} ({})",
                s.kind.as_str(),
                compression_word(s.compression),
                s.entries,
                if s.entries == 1 { "y" } else { "ies" },
                kinds_line(s),
            )?;
            match s.kind {
                ArchiveKind::Plain => writeln!(out, "diff_id: {}", s.diff_id)?,
                ArchiveKind::LegacyV1 => {
                    let ok = s.v1_layers.iter().filter(|l| l.result.is_ok()).count();
                    writeln!(
                        out,
                        "legacy layers: {ok} of {} `<id>/layer.tar` are readable tars",
                        s.v1_layers.len()
                    )?
                }
                _ => {}
            }
        }
        if let Some(b) = c.bundle {
            if let Some(base) = &b.since {
                writeln!(
                    out,
                    "delta against base receipt {}: {} blob(s) left out (not checked here: the base holds them)",
                    base.receipt,
                    b.omitted.len()
                )?;
            }
            if let (Some((v, n)), Some(id)) = (b.volume, &b.bundle) {
                writeln!(
                    out,
                    "volume {v} of {n} of bundle {id}: its blobs match its description; images it does not hold whole are completed by the other volumes"
                )?;
            }
        }
        if let Some(s) = &c.stats {
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
        }
        if clean {
            writeln!(out, "clean: 0 errors, {warnings} warning(s)")?;
        } else {
            writeln!(out, "{errors} error(s), {warnings} warning(s)")?;
        }
        out.flush()?;
    }
    Ok(if clean { Outcome::Ok } else { Outcome::Problems })
}
