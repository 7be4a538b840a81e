//! Crashes: `ocil gc` and the writers killed (SIGKILL) at seeded random moments never leave
//! a broken layout: fsck finds no error, every tag resolves, and a later gc finishes the job.
//!
//! The kill moments are seeded delays between 0 and the measured duration of an
//! uninterrupted run; the delay is a wait on the child (polling `try_wait`), not a sleep
//! that the checks depend on: whatever the moment, the same properties must hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::crash_harness::{Rng, kill_after, ocil_command};
use crate::layout::*;

const IMAGES: usize = 50;
const UNTAGGED: usize = 10;
const GARBAGE: usize = 3000;
const KILLS: usize = 30;

struct Fixture {
    /// Every index.json entry: 50 tagged images, then untagged ones.
    entries: Vec<Value>,
    tags: BTreeMap<String, String>,
    /// Blobs of the tagged images.
    live: BTreeSet<String>,
    /// Unreferenced blobs (including those of the untagged images, for `--tagged-only`).
    garbage: BTreeSet<String>,
    /// Where a copy of every garbage blob is kept (outside the layout), to link back.
    pristine: PathBuf,
}

fn build(dir: &Path, pristine: &Path, rng: &mut Rng) -> Fixture {
    init(dir);
    let base = put(dir, OCI_LAYER, &rng.bytes(512));
    let mut entries = Vec::new();
    let mut tags = BTreeMap::new();
    for i in 0..IMAGES {
        let own = put(dir, OCI_LAYER, &rng.bytes(256));
        let m = image(dir, i % 3 == 0, "amd64", &[base.clone(), own], &format!("image {i}"));
        let tag = format!("i{i}");
        tags.insert(tag.clone(), m["digest"].as_str().expect("digest").to_owned());
        entries.push(tagged(&m, &tag));
    }
    let live = blobs_on_disk(dir);
    for i in 0..UNTAGGED {
        let own = put(dir, OCI_LAYER, &rng.bytes(256));
        entries.push(image(dir, false, "arm64", &[base.clone(), own], &format!("untagged {i}")));
    }
    write_index(dir, &entries);
    for _ in 0..GARBAGE {
        let n = 16 + rng.below(200) as usize;
        put(dir, "application/octet-stream", &rng.bytes(n));
    }
    let garbage: BTreeSet<String> = blobs_on_disk(dir).difference(&live).cloned().collect();
    std::fs::create_dir_all(pristine).expect("create pristine copy");
    for d in &garbage {
        let name = blob_path(d).replace('/', "_");
        std::fs::hard_link(dir.join(blob_path(d)), pristine.join(name)).expect("link garbage");
    }
    Fixture { entries, tags, live, garbage, pristine: pristine.to_owned() }
}

/// Put back the garbage gc removed (hard links to the pristine copies) and the untagged
/// entries `--tagged-only` dropped. No ocil process runs at this point.
fn restore(dir: &Path, f: &Fixture) {
    let on_disk = blobs_on_disk(dir);
    for d in f.garbage.difference(&on_disk) {
        let name = blob_path(d).replace('/', "_");
        std::fs::hard_link(f.pristine.join(name), dir.join(blob_path(d))).expect("restore garbage");
    }
    write_index(dir, &f.entries);
}

fn check_layout(dir: &Path, f: &Fixture, ctx: &str) {
    assert_fsck_clean(dir, ctx);
    assert_eq!(tags(dir), f.tags, "{ctx}: every tag is there, unchanged");
    let all: Vec<String> =
        f.entries.iter().map(|e| e["digest"].as_str().expect("d").to_owned()).collect();
    let now: Vec<String> = entries(dir).into_iter().map(|(_, d)| d).collect();
    // index.json is the old one or the new one (untagged entries dropped), nothing between.
    assert!(now == all || now == all[..IMAGES], "{ctx}: index.json is half-written: {now:?}");
    for d in f.tags.values() {
        assert_image_complete(dir, d, ctx);
    }
    let on_disk = blobs_on_disk(dir);
    let lost: Vec<&String> = f.live.difference(&on_disk).collect();
    assert!(lost.is_empty(), "{ctx}: live blobs deleted: {lost:?}");
}

#[test]
fn gc_killed_at_random_moments_leaves_a_valid_layout() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = &tmp.path().join("layout");
    let d = arg(dir);
    let mut rng = Rng(0x6763_2d63_7261_7368);
    let f = build(dir, &tmp.path().join("pristine"), &mut rng);

    // The length of an uninterrupted run (the longer of the two kinds).
    let mut full = Duration::ZERO;
    for extra in [&[][..], &["--tagged-only"][..]] {
        restore(dir, &f);
        let mut args = vec!["gc", "--prune=now"];
        args.extend_from_slice(extra);
        args.push(d);
        let start = Instant::now();
        ocil_ok(&args);
        full = full.max(start.elapsed());
    }

    let (mut killed, mut partial) = (0, 0);
    for k in 0..KILLS {
        restore(dir, &f);
        let tagged_only = k % 3 == 2;
        let mut args = vec!["gc", "--prune=now"];
        if tagged_only {
            args.push("--tagged-only");
        }
        args.push(d);
        let delay = full.mul_f64(rng.below(1000) as f64 / 1000.0);
        let ctx = format!("kill {k} after {delay:?} of {full:?} (tagged_only {tagged_only})");
        if kill_after(&mut ocil_command(&args), delay) {
            killed += 1;
        }
        let left = blobs_on_disk(dir).len() - f.live.len();
        if left > 0 && left < f.garbage.len() {
            partial += 1;
        }
        check_layout(dir, &f, &ctx);
    }
    eprintln!(
        "gc: {killed} of {KILLS} runs killed, {partial} in the middle of the sweep (full run {full:?})"
    );
    assert!(killed >= KILLS / 5, "only {killed} of {KILLS} runs were interrupted");
    assert!(partial > 0, "no run was interrupted in the middle of the sweep");

    // A full gc removes the rest.
    ocil_ok(&["gc", "--prune=now", "--tagged-only", d]);
    assert_fsck_clean(dir, "after the final gc");
    assert_eq!(blobs_on_disk(dir), f.live, "only the tagged images remain");
    assert_eq!(tags(dir), f.tags);
    assert!(temp_files(dir).is_empty(), "temp files left: {:?}", temp_files(dir));
}

/// The image `ocil new` wrote with this `created`, if `digest` is one.
fn created_of(dir: &Path, digest: &str) -> Option<String> {
    let m: Value =
        serde_json::from_slice(&std::fs::read(dir.join(blob_path(digest))).ok()?).ok()?;
    let c = m["config"]["digest"].as_str()?;
    let c: Value = serde_json::from_slice(&std::fs::read(dir.join(blob_path(c))).ok()?).ok()?;
    c["created"].as_str().map(str::to_owned)
}

#[test]
fn writers_killed_at_random_moments_leave_old_or_new_images() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let d = arg(dir);
    ocil_ok(&["init", d]);
    let mut rng = Rng(0x7772_6974_6572_7321);
    let stamp = |n: usize| format!("2024-02-01T00:00:00.{n:09}Z");
    let mut n = 0;
    let mut runs = Vec::new();
    for i in 0..8 {
        n += 1;
        let start = Instant::now();
        ocil_ok(&["new", "--created", &stamp(n), &format!("{d}:k{i}")]);
        runs.push(start.elapsed());
    }
    // The median run: a slow first start would make most delays outlast the writer.
    runs.sort();
    let full = runs[runs.len() / 2];
    // Some garbage, so gc has work whenever it runs.
    for _ in 0..200 {
        put(dir, "application/octet-stream", &rng.bytes(64));
    }

    let mut killed = 0;
    for k in 0..KILLS {
        let before = tags(dir);
        let target = format!("k{}", rng.below(8));
        n += 1;
        let (args, new_digest): (Vec<String>, Option<String>) = if k % 3 == 0 {
            let src = format!("k{}", rng.below(8));
            (vec!["tag".into(), format!("{d}:{src}"), target.clone()], Some(before[&src].clone()))
        } else {
            // --force: the writer moves an existing tag to a new image.
            let new = format!("{d}:{target}");
            (vec!["new".into(), "--force".into(), "--created".into(), stamp(n), new], None)
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let delay = full.mul_f64(rng.below(1000) as f64 / 1000.0);
        let ctx = format!("kill {k}: {args:?} after {delay:?} of {full:?}");
        if kill_after(&mut ocil_command(&args), delay) {
            killed += 1;
        }
        assert_fsck_clean(dir, &ctx);
        let after = tags(dir);
        assert_eq!(after.len(), before.len(), "{ctx}: a tag vanished: {after:?}");
        for (tag, old) in &before {
            let now = &after[tag];
            if tag != &target || now == old {
                assert_eq!(now, old, "{ctx}: `{tag}` moved");
                continue;
            }
            match &new_digest {
                Some(new) => assert_eq!(now, new, "{ctx}: `{tag}` points at neither image"),
                None => assert_eq!(created_of(dir, now), Some(stamp(n)), "{ctx}: `{tag}` -> {now}"),
            }
        }
        for digest in after.values() {
            assert_image_complete(dir, digest, &ctx);
        }
        // Now and then a gc in between: it must cope with what the killed writers left.
        if k % 10 == 9 {
            ocil_ok(&["gc", "--prune=now", d]);
            assert_eq!(tags(dir), after, "{ctx}: gc changed tags");
            assert!(temp_files(dir).is_empty(), "{ctx}: stale temp files survive gc");
        }
    }
    eprintln!("writers: {killed} of {KILLS} killed before they finished (median run {full:?})");
    assert!(killed >= KILLS / 5, "only {killed} of {KILLS} writers were interrupted");
    ocil_ok(&["gc", "--prune=now", d]);
    assert_fsck_clean(dir, "after the final gc");
    assert!(temp_files(dir).is_empty(), "temp files left: {:?}", temp_files(dir));
    let out = ocil_ok(&["gc", "--prune=now", "--json", d]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["report"]["removed_blobs"], json!(0), "a second gc removes nothing");
}
