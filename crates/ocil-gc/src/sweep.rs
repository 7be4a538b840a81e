//! Plan and sweep: what is unreachable, what is kept and why, and the removal itself.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use ocil_layout::walk::Problem;
use ocil_layout::{Digest, Layout, LockGuard, Stray};
use serde::Serialize;

use crate::{Error, Options, Result, mark};

/// An unreferenced blob that the sweep will remove.
#[derive(Debug, Clone, Serialize)]
pub struct Garbage {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Why it is unreferenced.
    pub reason: String,
}

/// An unreferenced blob kept because it is younger than the grace period.
#[derive(Debug, Clone, Serialize)]
pub struct Young {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its age in seconds.
    pub age_secs: u64,
}

/// What gc will do. Made by [`plan`]; nothing changes until [`Plan::apply`].
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Blobs reachable from `index.json` (or referrers of those) and present.
    pub reachable: usize,
    /// Their bytes.
    pub reachable_bytes: u64,
    /// Referrers kept because their subject is live.
    pub referrers: Vec<Digest>,
    /// Blobs to remove.
    pub remove: Vec<Garbage>,
    /// Unreferenced blobs kept for the grace period.
    pub young: Vec<Young>,
    /// Our stale temp files to remove.
    pub stale_temps: Vec<String>,
    /// Our temp files kept (younger than the grace period: a writer may be using them).
    pub young_temps: usize,
    /// Things under `blobs/` that are neither blobs nor ours: reported, never removed.
    pub strays: Vec<StrayOut>,
    /// Referenced blobs that are missing (with the path from `index.json`).
    pub dangling: Vec<ProblemOut>,
    /// Other problems the walk reported (warnings, mismatches).
    pub problems: Vec<ProblemOut>,
    /// `index.json` entries dropped by `tagged_only`.
    pub dropped_entries: Vec<Digest>,
    /// The grace period, seconds.
    pub grace_secs: u64,
    #[serde(skip)]
    new_index: Option<ocil_layout::Index>,
}

/// A stray, for output.
#[derive(Debug, Clone, Serialize)]
pub struct StrayOut {
    /// Path relative to the layout.
    pub path: String,
    /// Why it is a stray.
    pub reason: String,
}

/// A problem, for output.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemOut {
    /// `error` or `warning`.
    pub severity: &'static str,
    /// Stable code.
    pub code: &'static str,
    /// The blob.
    pub digest: Option<Digest>,
    /// From `index.json` to it.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl From<&Problem> for ProblemOut {
    fn from(p: &Problem) -> Self {
        ProblemOut {
            severity: match p.severity {
                ocil_layout::walk::Severity::Error => "error",
                ocil_layout::walk::Severity::Warning => "warning",
            },
            code: p.code,
            digest: p.digest.clone(),
            path: p.path.clone(),
            message: p.message.clone(),
        }
    }
}

impl From<&Stray> for StrayOut {
    fn from(s: &Stray) -> Self {
        StrayOut { path: s.path.clone(), reason: s.reason.clone() }
    }
}

/// What the sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Blobs removed.
    pub removed_blobs: usize,
    /// Their bytes.
    pub removed_bytes: u64,
    /// Stale temp files removed.
    pub removed_temps: usize,
    /// Whether `index.json` was rewritten (tagged-only).
    pub index_rewritten: bool,
}

fn age(now: SystemTime, modified: Option<SystemTime>) -> Duration {
    modified.and_then(|m| now.duration_since(m).ok()).unwrap_or(Duration::ZERO)
}

/// Mark and plan. The caller should hold the layout's lock (see [`Plan::apply`]).
pub fn plan(layout: &Layout, opts: &Options) -> Result<Plan> {
    let now = SystemTime::now();
    let index = if opts.force { layout.read_index_lenient()?.0 } else { layout.read_index()? };
    let listing = layout.list_blobs()?;
    let present: HashMap<Digest, u64> =
        listing.blobs.iter().map(|b| (b.digest.clone(), b.size)).collect();
    let m = mark::mark(layout, &index, &present, opts.tagged_only, !opts.drop_referrers);
    let blocking: Vec<Problem> = m.problems.iter().filter(|p| p.blocks_gc()).cloned().collect();
    if !blocking.is_empty() && !opts.force {
        return Err(Error::MarkFailed { problems: blocking });
    }
    let mut plan = Plan {
        reachable: 0,
        reachable_bytes: 0,
        referrers: m.referrers.clone(),
        remove: Vec::new(),
        young: Vec::new(),
        stale_temps: Vec::new(),
        young_temps: 0,
        strays: listing.strays.iter().map(StrayOut::from).collect(),
        dangling: m
            .problems
            .iter()
            .filter(|p| p.code == "BLOB_MISSING")
            .map(ProblemOut::from)
            .collect(),
        problems: m
            .problems
            .iter()
            .filter(|p| p.code != "BLOB_MISSING")
            .map(ProblemOut::from)
            .collect(),
        dropped_entries: m.dropped_entries.iter().map(|d| d.digest.clone()).collect(),
        grace_secs: opts.grace.as_secs(),
        new_index: m.new_index.clone(),
    };
    for b in &listing.blobs {
        if m.live.contains(&b.digest) {
            plan.reachable += 1;
            plan.reachable_bytes += b.size;
            continue;
        }
        let a = age(now, b.modified);
        if a < opts.grace {
            plan.young.push(Young {
                digest: b.digest.clone(),
                size: b.size,
                age_secs: a.as_secs(),
            });
            continue;
        }
        let reason = match m.orphan_referrers.get(&b.digest) {
            Some(s) if opts.drop_referrers => format!("referrer of `{s}` (referrers not kept)"),
            Some(s) => format!("referrer of `{s}`, which is not live"),
            None => "unreachable from index.json".to_owned(),
        };
        plan.remove.push(Garbage { digest: b.digest.clone(), size: b.size, reason });
    }
    for t in &listing.temps {
        if age(now, t.modified) >= opts.grace {
            plan.stale_temps.push(t.path.clone());
        } else {
            plan.young_temps += 1;
        }
    }
    Ok(plan)
}

impl Plan {
    /// Bytes the sweep will free.
    pub fn remove_bytes(&self) -> u64 {
        self.remove.iter().map(|g| g.size).sum()
    }

    /// Remove what the plan lists. The lock guard proves the caller holds the layout's
    /// exclusive lock, taken before [`plan`]. A failed removal does not stop the sweep.
    pub fn apply(&self, layout: &Layout, lock: &LockGuard) -> Result<Report> {
        let mut report = Report::default();
        if let Some(idx) = &self.new_index {
            layout.write_index(idx, lock)?;
            report.index_rewritten = true;
        }
        let mut failures = Vec::new();
        for g in &self.remove {
            match layout.remove_blob(&g.digest) {
                Ok(()) => {
                    report.removed_blobs += 1;
                    report.removed_bytes += g.size;
                }
                Err(e) => failures.push((g.digest.blob_path(), ocil_layout::walk::error_chain(&e))),
            }
        }
        for t in &self.stale_temps {
            match layout.remove_path(t) {
                Ok(()) => report.removed_temps += 1,
                Err(e) => failures.push((t.clone(), ocil_layout::walk::error_chain(&e))),
            }
        }
        if failures.is_empty() {
            Ok(report)
        } else {
            Err(Error::SweepIncomplete { failures, report: Box::new(report) })
        }
    }
}
