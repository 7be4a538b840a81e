//! `ocil fsck FILE`: checking an archive. An image archive (OCI, docker-save) is imported
//! into a scratch layout the caller provides, which is then checked like a directory, with
//! the archive's own problems (unsafe or duplicate entries, a bad `manifest.json`, ...) in
//! the same report; a legacy docker-save archive gets a `LEGACY_FORMAT` warning and each
//! layer is checked to be a tar; a plain tar (a layer) is checked to be a readable tar, and
//! its description (kinds of entries, diff_id) comes back with the report.
//!
//! A delta or a volume (`ocil-bundle.json`) is checked on its own: imported without its base
//! ([`ImportOptions::partial`]), the blobs a delta deliberately leaves out are not missing,
//! and the blobs a volume carries for images completed by other volumes are not
//! unreferenced; what the volume's description lists for it must be exactly what it holds.

use std::io::Read;

use cap_std::fs::Dir;
use ocil_archive::{ArchiveKind, ImportOptions, Scan};
use ocil_layout::walk::{Problem, Severity};

use crate::{Error, Options, Stats};

/// What checking an archive found.
#[derive(Debug)]
pub struct ArchiveReport {
    /// Problems of the archive itself, then of the images it holds.
    pub problems: Vec<Problem>,
    /// The image layout's statistics, when the archive held images that could be imported.
    pub stats: Option<Stats>,
    /// What the archive is, when it could be scanned.
    pub scan: Option<Scan>,
    /// A delta or a volume: what its `ocil-bundle.json` says.
    pub bundle: Option<ocil_archive::BundleReport>,
}

fn problem(severity: Severity, code: &'static str, path: &str, message: String) -> Problem {
    Problem { severity, code, digest: None, path: path.to_owned(), message }
}

/// An archive error as a problem: its code, the entry it names, and its whole chain.
fn error_problem(e: &ocil_archive::Error, code: &'static str) -> Problem {
    let at = e.entry().unwrap_or("archive").to_owned();
    let message = std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    problem(Severity::Error, code, &at, message)
}

/// Check an archive. `open` gives its bytes from the start (it is read twice: scanned, then
/// imported); `scratch` is an empty directory the images are imported into and checked in.
pub fn check_archive<R: Read>(
    mut open: impl FnMut() -> std::io::Result<R>,
    scratch: Dir,
    opts: &Options,
    progress: &dyn ocil_layout::progress::Progress,
) -> Result<ArchiveReport, Error> {
    let scan = match ocil_archive::scan(open().map_err(Error::Read)?) {
        Ok(s) => s,
        // Not a tar at all: there is nothing to check in it.
        Err(ocil_archive::Error::NotATar { .. } | ocil_archive::Error::Empty) => {
            return Err(Error::NotAnArchive);
        }
        Err(e) => match e.code() {
            Some(code) => {
                let p = error_problem(&e, code);
                return Ok(ArchiveReport {
                    problems: vec![p],
                    stats: None,
                    scan: None,
                    bundle: None,
                });
            }
            None => return Err(Error::Archive(Box::new(e))),
        },
    };
    let mut problems = Vec::new();
    match scan.kind {
        ArchiveKind::Plain => {
            for u in &scan.unsafe_entries {
                problems.push(problem(
                    Severity::Warning,
                    "UNSAFE_ENTRY",
                    &u.entry,
                    format!(
                        "entry `{}` would land outside the extraction root: {}",
                        u.entry, u.reason
                    ),
                ));
            }
        }
        ArchiveKind::LegacyV1 => {
            problems.push(problem(
                Severity::Warning,
                "LEGACY_FORMAT",
                "repositories",
                "no manifest.json: only the pre-1.10 v1 layout (repositories, <id>/json, <id>/layer.tar); `ocil import` cannot read it".into(),
            ));
            for e in scan.entry_errors() {
                problems.push(error_problem(&e, e.code().unwrap_or("UNSAFE_ENTRY")));
            }
            for l in &scan.v1_layers {
                if let Err(why) = &l.result {
                    problems.push(problem(
                        Severity::Error,
                        "LAYER_NOT_TAR",
                        &l.entry,
                        format!("`{}` is not a readable tar: {why}", l.entry),
                    ));
                }
            }
        }
        ArchiveKind::Oci | ArchiveKind::Docker | ArchiveKind::DockerOci => {
            let errors = scan.entry_errors();
            if !errors.is_empty() {
                for e in errors {
                    problems.push(error_problem(&e, e.code().unwrap_or("UNSAFE_ENTRY")));
                }
                return Ok(ArchiveReport { problems, stats: None, scan: Some(scan), bundle: None });
            }
            let layout = ocil_layout::Layout::create(scratch.try_clone().map_err(Error::Read)?)?;
            let imported = ocil_archive::import(
                open().map_err(Error::Read)?,
                &layout,
                &ImportOptions { partial: true, ..ImportOptions::default() },
            );
            let bundle = match imported {
                Ok(r) => r.bundle,
                Err(e) => match e.code() {
                    Some(code) => {
                        problems.push(error_problem(&e, code));
                        return Ok(ArchiveReport {
                            problems,
                            stats: None,
                            scan: Some(scan),
                            bundle: None,
                        });
                    }
                    None => return Err(Error::Archive(Box::new(e))),
                },
            };
            drop(layout);
            let mut report = crate::check_with_progress(scratch, opts, progress)?;
            if let Some(b) = &bundle {
                expected_by_bundle(b, &mut report);
            }
            problems.append(&mut report.problems);
            return Ok(ArchiveReport {
                problems,
                stats: Some(report.stats),
                scan: Some(scan),
                bundle,
            });
        }
    }
    Ok(ArchiveReport { problems, stats: None, scan: Some(scan), bundle: None })
}

/// What a delta or a volume lacks by design is not a problem: the blobs a delta leaves out
/// (the base holds them) are not missing; a volume's blobs for images that other volumes
/// complete are not unreferenced.
fn expected_by_bundle(b: &ocil_archive::BundleReport, report: &mut crate::Report) {
    let omitted: std::collections::HashSet<&ocil_layout::Digest> = b.omitted.iter().collect();
    let before = report.problems.len();
    report.problems.retain(|p| {
        !(p.code == "BLOB_MISSING" && p.digest.as_ref().is_some_and(|d| omitted.contains(d)))
    });
    report.stats.missing -= before - report.problems.len();
    if b.volume.is_some() {
        report.problems.retain(|p| p.code != "UNREFERENCED_BLOBS");
    }
}
