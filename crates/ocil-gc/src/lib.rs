//! `ocil-gc`: garbage collection for OCI image layouts.
//!
//! gc is two functions over data: [`plan`] marks every blob reachable from `index.json`
//! and lists what to remove; [`Plan::apply`] removes it. Both run under the layout's
//! exclusive lock, which every ocil writer also takes, so ocil writers and gc never race.
//!
//! - **Roots**: every `index.json` entry, tagged or not ([`Options::tagged_only`] keeps only
//!   tagged entries and the untagged referrers of live images).
//! - **Mark**: the shared graph walk of `ocil-layout` (indexes, manifest lists, manifests,
//!   configs, layers, subjects), by digest; blobs of unknown type that hold a manifest or
//!   index are followed. Layers are never read. `blobs/` is listed on a second thread while
//!   the walk reads documents, and the leaves are checked against the listing afterwards.
//! - **Probe**: every unmarked blob is opened once, by 16 threads (on a cold page cache each
//!   probe waits on the disk): its size and mtime, and for a small JSON document whether it
//!   has a `subject`.
//! - **Referrers**: a manifest in the store whose `subject` is live is live too (signatures,
//!   SBOMs), found by reading only small unmarked blobs that start with `{`.
//! - **Fail closed**: if a reachable manifest or index cannot be parsed, or `index.json` is
//!   not a valid index, nothing is deleted (unless [`Options::force`]).
//! - **Sweep**: every algorithm directory; strays (non-digest names, directories, other
//!   tools' files) are reported, never deleted; blobs younger than the grace period are kept
//!   for writers that do not take our lock; our own stale temp files are removed.
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tmp = tempfile::tempdir()?;
//! let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
//! let layout = ocil_layout::Layout::create(dir)?;
//! layout.put_bytes(ocil_layout::MediaType::OciEmpty, b"{}")?; // unreferenced
//! let lock = layout.lock()?;
//! let opts = ocil_gc::Options { grace: std::time::Duration::ZERO, ..Default::default() };
//! let plan = ocil_gc::plan(&layout, &opts)?;
//! assert_eq!(plan.remove.len(), 1);
//! let report = plan.apply(&layout, &lock)?;
//! assert_eq!(report.removed_blobs, 1);
//! # Ok(()) }
//! ```

#![warn(missing_docs, clippy::unwrap_used)]

mod mark;
mod sweep;

pub use mark::{Mark, mark};
pub use sweep::{Garbage, Phases, Plan, Report, Young, plan};

use std::time::Duration;

/// gc's errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layout operation failed.
    #[error(transparent)]
    Layout(#[from] ocil_layout::Error),
    /// Marking could not read part of the graph, so nothing was deleted.
    #[error("marking failed, nothing deleted ({} problem(s); --force to collect anyway): {}", problems.len(), problems.first().map(|p| format!("{}: {}", p.path, p.message)).unwrap_or_default())]
    MarkFailed {
        /// What could not be read.
        problems: Vec<ocil_layout::walk::Problem>,
    },
    /// Some removals failed; the others went through.
    #[error("{} removal(s) failed", 1 + more.len())]
    SweepIncomplete {
        /// The first failure: the error's source, so the chain shows its path and OS error.
        #[source]
        first: Box<SweepFailure>,
        /// The other failures.
        more: Vec<SweepFailure>,
        /// What was removed before and after the failures.
        report: Box<Report>,
    },
}

/// A removal the sweep could not do: the blob or temp file, and the layout's error.
#[derive(Debug, thiserror::Error)]
#[error("cannot remove `{path}`")]
pub struct SweepFailure {
    /// The blob or temp file, relative to the layout.
    pub path: String,
    /// Why it could not be removed.
    #[source]
    pub error: ocil_layout::Error,
}

/// Result with gc's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to collect.
#[derive(Debug, Clone)]
pub struct Options {
    /// Unreferenced blobs (and our temp files) younger than this are kept.
    pub grace: Duration,
    /// Roots are only tagged entries (and untagged referrers of live images); other
    /// untagged entries are dropped from `index.json` first.
    pub tagged_only: bool,
    /// Do not keep referrers of live images that `index.json` does not name.
    pub drop_referrers: bool,
    /// Collect even when marking could not read everything (dangerous).
    pub force: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { grace: DEFAULT_GRACE, tagged_only: false, drop_referrers: false, force: false }
    }
}

/// The default grace period: 10 minutes.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(600);
