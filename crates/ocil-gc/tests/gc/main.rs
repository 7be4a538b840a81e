//! Library-level tests of `ocil-gc`, on layouts written by an independent generator
//! (`model.rs`: plain serde_json and sha2, never `ocil-layout`'s writers).
//!
//! - `property.rs`: seeded random layouts; gc removes exactly the garbage the generator
//!   computed, keeps everything live, leaves fsck clean, and a second gc removes nothing;
//! - `dangling.rs`: a missing reachable blob is reported with its path, and only it;
//! - `fail_closed.rs`: an unreadable reachable document or a broken `index.json` stops gc
//!   before anything is deleted, and `force` overrides;
//! - `sweep.rs`: strays (directories, other tools' files, symlinks) are reported and never
//!   deleted, the grace period, our stale temp files;
//! - `tagged_only.rs`: untagged entries are dropped unless they are referrers of live images.

mod dangling;
mod fail_closed;
mod model;
mod property;
mod sweep;
mod tagged_only;

use std::path::Path;
use std::time::Duration;

use ocil_layout::Layout;

/// Open the layout at `dir`.
pub(crate) fn open(dir: &Path) -> Layout {
    Layout::open_ambient(dir).expect("open layout")
}

/// gc options with the given grace period.
pub(crate) fn options(grace: Duration) -> ocil_gc::Options {
    ocil_gc::Options { grace, ..Default::default() }
}

/// Lock, plan and apply, as `ocil gc` does.
pub(crate) fn gc(
    dir: &Path,
    opts: &ocil_gc::Options,
) -> Result<(ocil_gc::Plan, ocil_gc::Report), ocil_gc::Error> {
    let layout = open(dir);
    let lock = layout.lock()?;
    let plan = ocil_gc::plan(&layout, opts)?;
    let report = plan.apply(&layout, &lock)?;
    Ok((plan, report))
}

/// fsck's errors (warnings left out), one line each.
pub(crate) fn fsck_errors(dir: &Path) -> Vec<String> {
    let cap = cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority())
        .expect("open layout directory");
    let report = ocil_fsck::check(cap, &ocil_fsck::Options::default()).expect("fsck runs");
    report
        .problems
        .iter()
        .filter(|p| p.severity == ocil_layout::walk::Severity::Error)
        .map(|p| format!("{} {}: {}", p.code, p.path, p.message))
        .collect()
}
