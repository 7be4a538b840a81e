//! Writers and gc at the same time: every writer and gc take the layout's lock, so no
//! written tag is lost and no blob of a written image is deleted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::layout::*;

/// How long the writers and gc run side by side.
const RUN_FOR: Duration = Duration::from_secs(5);
const WRITERS: usize = 4;

/// `TAG -> DIGEST` as `ocil new` and `ocil tag` print it.
fn printed_digest(stdout: &[u8], tag: &str) -> String {
    let s = String::from_utf8_lossy(stdout);
    let (t, d) = s.trim().split_once(" -> ").unwrap_or_else(|| panic!("unexpected output `{s}`"));
    assert_eq!(t, tag);
    d.to_owned()
}

/// A `created` timestamp unique to (writer, i), so every image has its own blobs.
fn created(writer: usize, i: usize) -> String {
    format!("2024-01-01T00:00:00.{:09}Z", writer * 100_000_000 + i)
}

/// One writer: `ocil new` in a loop, sometimes `ocil tag` (moving an alias) and `ocil untag`
/// (making garbage for gc). Returns the tags it left in place and their digests.
fn writer(dir: PathBuf, w: usize, deadline: Instant) -> BTreeMap<String, String> {
    let mut written = BTreeMap::new();
    let d = arg(&dir).to_owned();
    let platform = if w % 2 == 0 { "linux/amd64" } else { "linux/arm64/v8" };
    let mut i = 0;
    while Instant::now() < deadline {
        i += 1;
        let tag = format!("w{w}-{i}");
        let out = ocil_ok(&[
            "new",
            "--created",
            &created(w, i),
            "--platform",
            platform,
            &format!("{d}:{tag}"),
        ]);
        written.insert(tag.clone(), printed_digest(&out.stdout, &tag));
        if i % 5 == 0 {
            let alias = format!("w{w}-alias");
            let out = ocil_ok(&["tag", &format!("{d}:{tag}"), &alias]);
            written.insert(alias.clone(), printed_digest(&out.stdout, &alias));
        }
        if i % 7 == 0 {
            let old = format!("w{w}-{}", i - 3);
            ocil_ok(&["untag", &format!("{d}:{old}")]);
            written.remove(&old);
        }
    }
    written
}

/// Every recorded tag is in `index.json` with its digest (and nothing else is), the image's
/// blobs are all there, and fsck is clean.
fn check(dir: &Path, expected: &BTreeMap<String, String>, ctx: &str) {
    assert_fsck_clean(dir, ctx);
    assert_eq!(&tags(dir), expected, "{ctx}: tags and digests");
    for digest in expected.values() {
        assert_image_complete(dir, digest, ctx);
    }
    // Through the CLI as well, for a sample.
    for tag in expected.keys().step_by((expected.len() / 16).max(1)) {
        ocil_ok(&["inspect", &format!("{}:{tag}", arg(dir))]);
    }
}

#[test]
fn writers_and_gc_in_parallel_lose_no_tag_and_no_blob() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("layout");
    ocil_ok(&["init", arg(&dir)]);
    let deadline = Instant::now() + RUN_FOR;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let dir = dir.clone();
            thread::spawn(move || writer(dir, w, deadline))
        })
        .collect();
    let gc = {
        let dir = dir.clone();
        thread::spawn(move || {
            let mut runs = 0;
            while Instant::now() < deadline {
                ocil_ok(&["gc", "--prune=now", arg(&dir)]);
                runs += 1;
            }
            runs
        })
    };
    let mut expected = BTreeMap::new();
    for w in writers {
        expected.extend(w.join().expect("writer thread"));
    }
    let gc_runs = gc.join().expect("gc thread");
    assert!(gc_runs >= 2, "gc ran {gc_runs} time(s)");
    assert!(expected.len() >= WRITERS * 2, "writers wrote only {} tag(s)", expected.len());
    check(&dir, &expected, "after the run");
    // A last gc removes the untagged images and nothing that is tagged.
    ocil_ok(&["gc", "--prune=now", arg(&dir)]);
    check(&dir, &expected, "after a final gc");
    assert!(temp_files(&dir).is_empty(), "temp files left: {:?}", temp_files(&dir));
}

#[test]
fn many_concurrent_tag_processes_lose_no_tag() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let d = arg(dir);
    ocil_ok(&["init", d]);
    let out = ocil_ok(&["new", &format!("{d}:base")]);
    let base = printed_digest(&out.stdout, "base");
    let mut expected = BTreeMap::from([("base".to_owned(), base.clone())]);
    // Start them all, then wait for them all.
    let mut children = Vec::new();
    for i in 0..24 {
        let tag = format!("t{i}");
        let child = Command::new(env!("CARGO_BIN_EXE_ocil"))
            .args(["tag", &format!("{d}:base"), &tag])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ocil tag");
        expected.insert(tag.clone(), base.clone());
        children.push((tag, child));
    }
    for i in 0..8 {
        let tag = format!("n{i}");
        let child = Command::new(env!("CARGO_BIN_EXE_ocil"))
            .args(["new", "--created", &created(9, i), &format!("{d}:{tag}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ocil new");
        children.push((tag, child));
    }
    for (tag, child) in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{tag}: {}", String::from_utf8_lossy(&out.stderr));
        expected.insert(tag.clone(), printed_digest(&out.stdout, &tag));
    }
    assert_eq!(expected.len(), 33);
    check(dir, &expected, "after concurrent tags");
}
