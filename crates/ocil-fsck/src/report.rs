//! The fsck report.

use ocil_layout::Digest;
use ocil_layout::walk::{Problem, Severity};

/// Counts.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// `index.json` entries.
    pub entries: usize,
    /// Blobs in the store.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs reachable from `index.json`.
    pub reachable: usize,
    /// Blobs not reachable.
    pub unreferenced: usize,
    /// Referenced blobs that are missing.
    pub missing: usize,
    /// Stray files under `blobs/`.
    pub strays: usize,
    /// Manifests and indexes read.
    pub documents: usize,
}

/// What fsck found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every problem, errors and warnings.
    pub problems: Vec<Problem>,
    /// Counts.
    pub stats: Stats,
    /// The unreferenced blobs.
    pub unreferenced: Vec<Digest>,
}

impl Report {
    /// No errors (warnings allowed).
    pub fn is_clean(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Warning)
    }

    /// Whether a problem with this code was reported.
    pub fn has(&self, code: &str) -> bool {
        self.problems.iter().any(|p| p.code == code)
    }
}
