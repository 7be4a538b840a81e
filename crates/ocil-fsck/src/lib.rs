//! `ocil-fsck`: check an OCI image layout.
//!
//! [`check`] verifies every blob's bytes against its name (in parallel), walks the graph from
//! `index.json` (presence, sizes, digests, media types, polyglots), validates every
//! manifest, index and config against the image spec's structure, counts unreferenced blobs
//! and reports stray files. With [`Options::deep`] it also decompresses every layer, checks
//! that it is a readable tar in the compression its media type says, and compares the
//! config's `rootfs.diff_ids` with the uncompressed digests.
//!
//! Problems carry the path from `index.json` to the blob. A layout is clean when no problem
//! is an error; warnings (Docker media types, unreferenced blobs, extra files) do not count.
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tmp = tempfile::tempdir()?;
//! let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
//! ocil_layout::Layout::create(dir.try_clone()?)?;
//! let report = ocil_fsck::check(dir, &ocil_fsck::Options::default())?;
//! assert!(report.is_clean());
//! # Ok(()) }
//! ```

#![warn(missing_docs, clippy::unwrap_used)]

mod archive;
mod blobs;
mod deep;
mod report;

pub use archive::{ArchiveReport, check_archive};
pub use report::{Report, Stats};

use std::collections::{HashMap, HashSet};

use cap_std::fs::Dir;
use ocil_layout::validate::{self, Schema};
use ocil_layout::walk::{self, DocKind, LeafCheck, Problem, Role, Severity, WalkOptions};
use ocil_layout::{Digest, INDEX_FILE, Kind, LAYOUT_FILE, Layout};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Missing blobs are warnings, not errors (shallow layouts).
    pub allow_missing: bool,
    /// Decompress every layer, check it is a tar, check `rootfs.diff_ids`.
    pub deep: bool,
}

/// Why fsck could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory holds neither `oci-layout` nor `index.json`.
    #[error("not an OCI image layout: no `oci-layout` and no `index.json`")]
    NotALayout,
    /// Listing or reading failed in a way that is not about the layout's content.
    #[error(transparent)]
    Layout(#[from] ocil_layout::Error),
    /// The file is neither a tar nor a compressed tar.
    #[error("neither a layout directory nor an archive")]
    NotAnArchive,
    /// Reading the archive failed in a way that is not about its content.
    #[error("cannot read the archive")]
    Read(#[source] std::io::Error),
    /// The archive could not be read for a reason that is not one of its problems.
    #[error("cannot read the archive")]
    Archive(#[source] Box<ocil_archive::Error>),
}

fn top(severity: Severity, code: &'static str, path: &str, message: String) -> Problem {
    Problem { severity, code, digest: None, path: path.to_owned(), message }
}

/// Check the layout in `dir`.
pub fn check(dir: Dir, opts: &Options) -> Result<Report, Error> {
    check_with_progress(dir, opts, &ocil_layout::progress::Silent)
}

/// [`check`], reporting the bytes hashed (phase `hash`) and, with [`Options::deep`], the
/// layers decompressed (phase `deep`, counted in compressed bytes) to `progress`.
pub fn check_with_progress(
    dir: Dir,
    opts: &Options,
    progress: &dyn ocil_layout::progress::Progress,
) -> Result<Report, Error> {
    let has_layout_file = dir.exists(LAYOUT_FILE);
    let has_index = dir.exists(INDEX_FILE);
    if !has_layout_file && !has_index {
        return Err(Error::NotALayout);
    }
    let layout = Layout::open_unchecked(dir);
    let mut problems = Vec::new();

    // oci-layout
    if !has_layout_file {
        problems.push(top(
            Severity::Error,
            "LAYOUT_FILE_MISSING",
            LAYOUT_FILE,
            "no `oci-layout` file".into(),
        ));
    } else {
        match layout.read_layout_header() {
            Ok(_) => {}
            Err(e) => problems.push(top(
                Severity::Error,
                "LAYOUT_FILE_INVALID",
                LAYOUT_FILE,
                walk::error_chain(&e),
            )),
        }
    }

    // Extra entries at the top.
    let mut extra = Vec::new();
    for entry in layout.dir().entries().map_err(|e| ocil_layout::Error::Io {
        op: "list",
        path: ".".into(),
        source: e,
    })? {
        let entry = entry.map_err(|e| ocil_layout::Error::Io {
            op: "list",
            path: ".".into(),
            source: e,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if ![LAYOUT_FILE, INDEX_FILE, ocil_layout::BLOBS_DIR].contains(&name.as_str())
            && !name.starts_with(ocil_layout::TEMP_PREFIX)
        {
            extra.push(name);
        }
    }
    extra.sort();
    if !extra.is_empty() {
        problems.push(top(
            Severity::Warning,
            "EXTRA_ENTRY",
            ".",
            format!("entries beside oci-layout/index.json/blobs: {}", extra.join(", ")),
        ));
    }

    // The blob store.
    let listing = layout.list_blobs()?;
    for s in &listing.strays {
        problems.push(top(Severity::Warning, "STRAY", &s.path, s.reason.clone()));
    }
    for t in &listing.temps {
        problems.push(top(
            Severity::Warning,
            "TEMP_FILE",
            &t.path,
            "temp file of an interrupted ocil write (gc removes it)".into(),
        ));
    }
    let present: HashMap<Digest, u64> =
        listing.blobs.iter().map(|b| (b.digest.clone(), b.size)).collect();
    progress.begin("hash", Some(listing.blobs.iter().map(|b| b.size).sum()));
    let hashed = blobs::verify_all(&layout, &listing.blobs, progress);
    progress.end();
    problems.extend(hashed.problems);

    // index.json
    let mut entries = 0;
    let mut walked = None;
    match layout.read_index_bytes() {
        Err(e) => {
            problems.push(top(Severity::Error, "INDEX_INVALID", INDEX_FILE, walk::error_chain(&e)))
        }
        Ok(bytes) => {
            let findings = validate::validate_bytes(Schema::Index, &bytes);
            for e in &findings.errors {
                problems.push(top(Severity::Error, "INDEX_INVALID", INDEX_FILE, e.clone()));
            }
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
                && v.get("mediaType").is_none()
            {
                problems.push(top(
                    Severity::Warning,
                    "INDEX_MEDIA_TYPE_MISSING",
                    INDEX_FILE,
                    "index.json has no mediaType (SHOULD be set)".into(),
                ));
            }
            match layout.read_index_lenient() {
                Ok((index, _)) => {
                    entries = index.manifests.len();
                    let wopts = WalkOptions {
                        follow_subject: true,
                        sniff_unknown: true,
                        leaves: LeafCheck::Listing(&present),
                        keep_bytes: true,
                        keep_documents: true,
                    };
                    walked = Some(walk::walk(&layout, &index.manifests, wopts));
                }
                Err(e) => {
                    if findings.errors.is_empty() {
                        problems.push(top(
                            Severity::Error,
                            "INDEX_INVALID",
                            INDEX_FILE,
                            walk::error_chain(&e),
                        ));
                    }
                }
            }
        }
    }

    let mut reachable: HashSet<Digest> = HashSet::new();
    if let Some(w) = &walked {
        reachable.extend(w.digests().cloned());
        for p in &w.problems {
            let mut p = p.clone();
            if p.code == "BLOB_MISSING" && opts.allow_missing {
                p.severity = Severity::Warning;
            }
            problems.push(p);
        }
        problems.extend(structure(&layout, w));
        if opts.deep {
            problems.extend(deep::check_layers(&layout, w, &present, progress));
        }
    }
    // A corrupt blob is reported once, by the hash pass; drop the walk's duplicate.
    dedup(&mut problems);

    let unreferenced: Vec<Digest> = listing
        .blobs
        .iter()
        .filter(|b| !reachable.contains(&b.digest))
        .map(|b| b.digest.clone())
        .collect();
    if !unreferenced.is_empty() {
        // gc marks fail closed: while a reachable document cannot be read, it removes nothing.
        let hint = if problems.iter().any(|p| p.blocks_gc()) {
            "`ocil gc` removes them once the errors above are fixed: it deletes nothing while a reachable document cannot be read"
        } else {
            "`ocil gc` removes them"
        };
        problems.push(top(
            Severity::Warning,
            "UNREFERENCED_BLOBS",
            "blobs",
            format!("{} blob(s) not reachable from index.json ({hint})", unreferenced.len()),
        ));
    }
    let stats = Stats {
        entries,
        blobs: listing.blobs.len(),
        bytes: hashed.bytes,
        reachable: listing.blobs.iter().filter(|b| reachable.contains(&b.digest)).count(),
        unreferenced: unreferenced.len(),
        missing: problems.iter().filter(|p| p.code == "BLOB_MISSING").count(),
        strays: listing.strays.len(),
        documents: walked.as_ref().map_or(0, |w| w.documents.len()),
    };
    Ok(Report { problems, stats, unreferenced })
}

fn dedup(problems: &mut Vec<Problem>) {
    let mut seen = HashSet::new();
    problems.retain(|p| seen.insert((p.code, p.digest.clone(), p.message.clone())));
}

/// Structural validation of every document the walk read, and of the configs it reached.
fn structure(layout: &Layout, w: &walk::Walk) -> Vec<Problem> {
    let mut out = Vec::new();
    for doc in &w.documents {
        let schema = match doc.kind {
            DocKind::Index => Schema::Index,
            DocKind::Manifest
                if doc.media_type.kind() == Kind::Manifest
                    || !doc.children.iter().any(|c| c.0 == Role::Blob) =>
            {
                Schema::Manifest
            }
            _ => continue,
        };
        if let Some(bytes) = &doc.bytes {
            let f = validate::validate_bytes(schema, bytes);
            for e in f.errors {
                out.push(Problem {
                    severity: Severity::Error,
                    code: "INVALID_DOCUMENT",
                    digest: Some(doc.digest.clone()),
                    path: w.path_to(&doc.digest),
                    message: e,
                });
            }
        }
        for (role, child) in &doc.children {
            if *role != Role::Config || child.media_type.kind() != Kind::Config {
                continue;
            }
            if matches!(child.media_type, ocil_layout::MediaType::DockerPluginConfig) {
                continue;
            }
            let bytes = match layout.read_blob(&child.digest, ocil_layout::JSON_LIMIT) {
                Ok(b) => b,
                Err(_) => continue, // Missing or corrupt: reported elsewhere.
            };
            for e in validate::validate_bytes(Schema::Config, &bytes).errors {
                // A config without `os`/`architecture`/`rootfs` is common in artifacts that
                // reuse the image config type (zot, regclient write `{}`): report it, but a
                // wrongly typed field is an error.
                let missing = e.ends_with(": is required");
                out.push(Problem {
                    severity: if missing { Severity::Warning } else { Severity::Error },
                    code: if missing { "CONFIG_INCOMPLETE" } else { "INVALID_CONFIG" },
                    digest: Some(child.digest.clone()),
                    path: w.path_to(&child.digest),
                    message: e,
                });
            }
        }
    }
    out
}
