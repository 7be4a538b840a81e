//! The repo's own fixtures (`testdata/`, written by `cargo xtask fixtures` without our
//! library) against the facts the generator recorded in `testdata/expected.json`: fsck's
//! verdict, what it reports, and what gc removes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde_json::Value;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(testdata().join("expected.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap().as_object().unwrap().clone()
}

fn copy(src: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(src).unwrap();
        let dst = tmp.path().join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
        } else {
            std::fs::copy(entry.path(), &dst).unwrap();
            // Keep mtimes: the stale temp file must stay stale.
            let mtime = entry.metadata().unwrap().modified().unwrap();
            std::fs::File::options().write(true).open(&dst).unwrap().set_modified(mtime).unwrap();
        }
    }
    tmp
}

fn strings(v: &Value, key: &str) -> BTreeSet<String> {
    v[key].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect()
}

#[test]
fn fsck_verdicts_match_the_generator() {
    let cases = expected();
    assert!(cases.len() >= 10, "testdata/expected.json lists {} cases", cases.len());
    for (name, facts) in &cases {
        let dir = Dir::open_ambient_dir(testdata().join("layouts").join(name), ambient_authority())
            .unwrap();
        let opts = ocil_fsck::Options { allow_missing: false, deep: true };
        let report = ocil_fsck::check(dir, &opts).unwrap();
        let want_clean = facts["fsck_exit"].as_i64() == Some(0);
        assert_eq!(report.is_clean(), want_clean, "{name}: {:#?}", report.problems);
        assert_eq!(report.stats.blobs as u64, facts["blobs_on_disk"].as_u64().unwrap(), "{name}");
        for d in strings(facts, "missing") {
            assert!(
                report.problems.iter().any(|p| p.code == "BLOB_MISSING"
                    && p.digest.as_ref().map(ToString::to_string) == Some(d.clone())),
                "{name}: missing {d} not reported"
            );
        }
        for d in strings(facts, "corrupt") {
            assert!(
                report.problems.iter().any(|p| p.code == "DIGEST_MISMATCH"
                    && p.digest.as_ref().map(ToString::to_string) == Some(d.clone())),
                "{name}: corrupt {d} not reported"
            );
        }
        let unreferenced: BTreeSet<String> =
            report.unreferenced.iter().map(ToString::to_string).collect();
        assert_eq!(unreferenced, strings(facts, "unreachable"), "{name}: unreferenced blobs");
    }
}

#[test]
fn gc_removes_what_the_generator_calls_garbage() {
    for (name, facts) in expected() {
        let tmp = copy(&testdata().join("layouts").join(&name));
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        let layout = ocil_layout::Layout::open(dir).unwrap();
        let lock = layout.lock().unwrap();
        let opts = ocil_gc::Options { grace: Duration::ZERO, ..Default::default() };
        let plan = ocil_gc::plan(&layout, &opts).unwrap();
        let removed: BTreeSet<String> = plan.remove.iter().map(|g| g.digest.to_string()).collect();
        assert_eq!(removed, strings(&facts, "gc_removes"), "{name}");
        let kept_referrers: BTreeSet<String> =
            plan.referrers.iter().map(ToString::to_string).collect();
        assert!(kept_referrers.is_subset(&strings(&facts, "live_referrers")), "{name}");
        let temps: BTreeSet<String> = plan.stale_temps.iter().cloned().collect();
        assert_eq!(temps, strings(&facts, "temp_files"), "{name}");
        plan.apply(&layout, &lock).unwrap();
        // A second gc finds nothing.
        let again = ocil_gc::plan(&layout, &opts).unwrap();
        assert!(
            again.remove.is_empty() && again.stale_temps.is_empty(),
            "{name}: second gc {again:?}"
        );
        drop(lock);
        let report =
            ocil_fsck::check(layout.dir().try_clone().unwrap(), &ocil_fsck::Options::default())
                .unwrap();
        assert_eq!(
            report.is_clean(),
            facts["fsck_exit"].as_i64() == Some(0),
            "{name} after gc: {:#?}",
            report.problems
        );
        // Referrers of live images are not reachable from index.json, but gc keeps them.
        let left: BTreeSet<String> = report.unreferenced.iter().map(ToString::to_string).collect();
        assert_eq!(left, strings(&facts, "live_referrers"), "{name}: unreferenced after gc");
    }
}
