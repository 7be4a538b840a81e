//! Plan and sweep: what is unreachable, what is kept and why, and the removal itself.

use std::time::{Duration, SystemTime};

use ocil_layout::progress::Progress;
use ocil_layout::walk::Problem;
use ocil_layout::{Digest, Layout, LockGuard, Stray};
use serde::Serialize;

use crate::{Error, Options, Result, SweepFailure, mark};

/// An unreferenced blob that the sweep will remove.
#[derive(Debug, Clone, Serialize)]
pub struct Garbage {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Why it is unreferenced.
    pub reason: std::borrow::Cow<'static, str>,
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
    /// How long each phase of the plan took (not in JSON: it differs on every run).
    #[serde(skip)]
    pub phases: Phases,
    #[serde(skip)]
    new_index: Option<ocil_layout::Index>,
}

/// Time spent in each phase of a gc, for `ocil gc --verbose` and the benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// Reading `index.json`, then listing `blobs/` (on its own thread, during the walk).
    pub list: Duration,
    /// Walking from `index.json` (reading every reachable index and manifest), with the
    /// listing beside it.
    pub walk: Duration,
    /// Probing the unmarked blobs (size, mtime, referrer) and the referrer rounds.
    pub probe: Duration,
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
    /// Temp files kept because a writer still holds them.
    pub busy_temps: usize,
    /// How long the removals took (not in JSON: it differs on every run).
    #[serde(skip)]
    pub sweep_time: Duration,
}

/// Threads for removal. Unlinking is mostly waiting on the filesystem (on a volume mounted
/// with `discard`, every freed block is a synchronous discard), so more threads than cores
/// pay: 160,000 removals took 196 s one at a time, 14.5 s with 16 threads and 4.1 s with
/// 64 (xargs rm) on this machine.
const REMOVE_THREADS: usize = 64;

/// Remove every blob of `garbage`, in parallel, reporting each blob's bytes to `progress`.
/// Returns the failures: position and error.
fn remove_all(
    layout: &Layout,
    garbage: &[Garbage],
    progress: &dyn Progress,
) -> Vec<(usize, ocil_layout::Error)> {
    let remove_part = |offset: usize, part: &[Garbage]| -> Vec<(usize, ocil_layout::Error)> {
        part.iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let result = layout.remove_blob(&g.digest);
                progress.advance(g.size);
                result.err().map(|e| (offset + i, e))
            })
            .collect()
    };
    if garbage.len() < 64 {
        return remove_part(0, garbage);
    }
    let chunk = garbage.len().div_ceil(REMOVE_THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = garbage
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| scope.spawn(move || remove_part(n * chunk, part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(failures) => failures,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

fn age(now: SystemTime, modified: Option<SystemTime>) -> Duration {
    modified.and_then(|m| now.duration_since(m).ok()).unwrap_or(Duration::ZERO)
}

/// Mark and plan. The caller should hold the layout's lock (see [`Plan::apply`]).
pub fn plan(layout: &Layout, opts: &Options) -> Result<Plan> {
    let now = SystemTime::now();
    let started = std::time::Instant::now();
    let index = if opts.force { layout.read_index_lenient()?.0 } else { layout.read_index()? };
    let read_index = started.elapsed();
    let m = mark::mark(layout, &index, opts.tagged_only, !opts.drop_referrers)?;
    let listing = &m.listing;
    let list = read_index + m.list_time;
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
        phases: Phases { list, walk: m.walk_time, probe: m.probe_time },
        new_index: m.new_index.clone(),
    };
    plan.reachable = m.live_present;
    plan.reachable_bytes = m.live_bytes;
    plan.remove.reserve_exact(m.unmarked.len());
    for (digest, b) in m.unmarked.iter().filter(|(d, _)| !m.live.contains_key(d)) {
        let a = age(now, b.modified);
        if a < opts.grace {
            plan.young.push(Young { digest: digest.clone(), size: b.size, age_secs: a.as_secs() });
            continue;
        }
        let reason = match m.orphan_referrers.get(digest) {
            Some(s) if opts.drop_referrers => {
                format!("referrer of `{s}` (referrers not kept)").into()
            }
            Some(s) => format!("referrer of `{s}`, which is not live").into(),
            None => "unreachable from index.json".into(),
        };
        plan.remove.push(Garbage { digest: digest.clone(), size: b.size, reason });
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
        self.apply_with(layout, lock, &ocil_layout::progress::Silent)
    }

    /// [`Plan::apply`], reporting to `progress`: one phase, `remove`, over the bytes of the
    /// blobs to remove.
    pub fn apply_with(
        &self,
        layout: &Layout,
        lock: &LockGuard,
        progress: &dyn Progress,
    ) -> Result<Report> {
        let started = std::time::Instant::now();
        let mut report = Report::default();
        if let Some(idx) = &self.new_index {
            layout.write_index(idx, lock)?;
            report.index_rewritten = true;
        }
        progress.begin("remove", Some(self.remove_bytes()));
        let mut failed = remove_all(layout, &self.remove, progress);
        progress.end();
        failed.sort_by_key(|(i, _)| *i);
        report.removed_blobs = self.remove.len() - failed.len();
        report.removed_bytes =
            self.remove_bytes() - failed.iter().map(|(i, _)| self.remove[*i].size).sum::<u64>();
        let mut failures: Vec<SweepFailure> = failed
            .into_iter()
            .map(|(i, error)| SweepFailure { path: self.remove[i].digest.blob_path(), error })
            .collect();
        for t in &self.stale_temps {
            match layout.remove_temp_if_unused(t) {
                Ok(true) => report.removed_temps += 1,
                // A writer holds it: in use, not stale.
                Ok(false) => report.busy_temps += 1,
                Err(error) => failures.push(SweepFailure { path: t.clone(), error }),
            }
        }
        report.sweep_time = started.elapsed();
        let mut failures = failures.into_iter();
        match failures.next() {
            None => Ok(report),
            Some(first) => Err(Error::SweepIncomplete {
                first: Box::new(first),
                more: failures.collect(),
                report: Box::new(report),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::Duration;

    use cap_std::ambient_authority;
    use cap_std::fs::Dir;
    use ocil_layout::Layout;

    use crate::{Error, Options, plan};

    #[test]
    fn a_temp_file_a_writer_still_holds_is_never_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        let layout = Layout::create(dir).unwrap();
        let mut writer = layout.blob_writer().unwrap();
        writer.write_all(b"in flight").unwrap();
        // An abandoned temp file of a killed writer: nobody holds it.
        let abandoned = tmp.path().join("blobs/sha256/.ocil-tmp-blob-1-0-00000000");
        std::fs::write(&abandoned, b"left behind").unwrap();
        let opts = Options { grace: Duration::ZERO, ..Default::default() };
        let lock = layout.lock().unwrap();
        let p = plan(&layout, &opts).unwrap();
        assert_eq!(p.stale_temps.len(), 2, "{p:?}");
        let report = p.apply(&layout, &lock).unwrap();
        assert_eq!((report.removed_temps, report.busy_temps), (1, 1));
        assert!(!abandoned.exists());
        drop(lock);
        // The writer finishes undisturbed.
        let stored = writer.finish().unwrap();
        assert!(layout.has_blob(&stored.digest).unwrap());
    }

    #[test]
    fn a_failed_removal_keeps_its_error_as_a_value() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        let layout = Layout::create(dir).unwrap();
        let garbage = layout.put_blob(&b"garbage"[..]).unwrap().digest;
        let opts = Options { grace: Duration::ZERO, ..Default::default() };
        let lock = layout.lock().unwrap();
        let p = plan(&layout, &opts).unwrap();
        assert_eq!(p.remove.len(), 1);
        // Between plan and sweep the blob's name becomes a directory, which unlink refuses
        // (even to root).
        let path = tmp.path().join(garbage.blob_path());
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let err = p.apply(&layout, &lock).unwrap_err();
        // The chain the binary prints: the count, the file, the OS error.
        let chain = ocil_layout::walk::error_chain(&err);
        let Error::SweepIncomplete { first, more, report } = err else {
            panic!("the sweep should report the failed removal");
        };
        assert_eq!(report.removed_blobs, 0);
        assert!(more.is_empty());
        assert_eq!(first.path, garbage.blob_path());
        let ocil_layout::Error::Io { op: "remove", source, .. } = &first.error else {
            panic!("{:?}", first.error);
        };
        assert!(source.raw_os_error().is_some(), "the OS error is kept: {source:?}");
        assert!(chain.contains(&garbage.blob_path()), "{chain}");
        assert!(chain.contains(&source.to_string()), "{chain}");
    }
}
