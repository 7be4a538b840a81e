//! `ocil append`, and `ocil index` copying from another layout, killed (SIGKILL) at seeded
//! random moments: the layout stays valid (fsck finds no error), the tag names the old image
//! or the new one (known in advance: both are reproducible), and a gc afterwards removes
//! what the killed runs left.
//!
//! The kill moments are seeded delays between 0 and the median uninterrupted run; the delay
//! is a wait on the child (polling `try_wait`), not a sleep the checks depend on.

use std::process::Command;
use std::time::Instant;

use crate::crash_harness::{Rng, kill_after, ocil_command};
use crate::layout::{arg, assert_fsck_clean, assert_image_complete, ocil_ok, tags, temp_files};
use crate::support::src_tree;

const KILLS: usize = 30;

#[test]
fn append_killed_at_random_moments_leaves_the_old_or_the_new_image() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = &tmp.path().join("L");
    let d = arg(dir);
    let src = tmp.path().join("src");
    let mut rng = Rng(0x6170_7065_6e64_2121);
    // Incompressible bytes, so packing and gzip take a while and kills land inside.
    src_tree(&src, &rng.bytes(6 << 20));
    let s = arg(&src);
    ocil_ok(&["init", d]);
    ocil_ok(&["new", "--created", "2024-01-01T00:00:00Z", &format!("{d}:base")]);

    // The new image, known in advance; and the median length of an uninterrupted run.
    let mut runs = Vec::new();
    for i in 0..3 {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_ocil"))
            .args(["append", &format!("{d}:base"), s, "--tag", &format!("expected{i}")])
            .env("SOURCE_DATE_EPOCH", "1704067200")
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        runs.push(start.elapsed());
    }
    runs.sort();
    let full = runs[1];
    let before = tags(dir);
    let old = before["base"].clone();
    let new = before["expected0"].clone();
    assert_eq!(before["expected1"], new, "append is reproducible");

    let (mut killed, mut moved) = (0, 0);
    for k in 0..KILLS {
        ocil_ok(&["tag", &format!("{d}:base"), "v1"]);
        let delay = full.mul_f64(rng.below(1000) as f64 / 1000.0);
        let ctx = format!("kill {k} after {delay:?} of {full:?}");
        let mut cmd = ocil_command(["append", &format!("{d}:v1"), s]);
        if kill_after(cmd.env("SOURCE_DATE_EPOCH", "1704067200"), delay) {
            killed += 1;
        }
        assert_fsck_clean(dir, &ctx);
        let now = tags(dir);
        assert_eq!(now["base"], old, "{ctx}: base moved");
        assert_eq!(now["expected0"], new, "{ctx}: expected0 moved");
        let v1 = &now["v1"];
        assert!(v1 == &old || v1 == &new, "{ctx}: v1 -> {v1}, neither the old nor the new image");
        if v1 == &new {
            moved += 1;
        }
        for digest in now.values() {
            assert_image_complete(dir, digest, &ctx);
        }
        if k % 10 == 9 {
            ocil_ok(&["gc", "--prune=now", d]);
            assert!(temp_files(dir).is_empty(), "{ctx}: temp files survive gc");
            assert_eq!(tags(dir), now, "{ctx}: gc changed tags");
        }
    }
    eprintln!("append: {killed} of {KILLS} killed, v1 moved {moved} times (median run {full:?})");
    assert!(killed >= KILLS / 5, "only {killed} of {KILLS} runs were interrupted");
    ocil_ok(&["gc", "--prune=now", d]);
    let out = ocil_ok(&["fsck", "--deep", d]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("clean: 0 errors"));
    assert!(temp_files(dir).is_empty());
}

#[test]
fn index_killed_while_copying_from_another_layout_leaves_the_old_or_the_new_index() {
    const ROUNDS: usize = 20;
    let tmp = tempfile::tempdir().expect("tmp");
    let (l, o) = (tmp.path().join("L"), tmp.path().join("O"));
    let (dl, dlo) = (arg(&l), arg(&o));
    let src = tmp.path().join("src");
    let mut rng = Rng(0x696e_6465_7821_2121);
    src_tree(&src, &rng.bytes(8 << 20));
    ocil_ok(&["init", dl]);
    ocil_ok(&["new", &format!("{dl}:amd")]);
    ocil_ok(&["index", &format!("{dl}:multi"), "--add", &format!("{dl}:amd")]);
    ocil_ok(&["init", dlo]);
    ocil_ok(&["new", "--platform", "linux/s390x", &format!("{dlo}:s")]);
    ocil_ok(&["append", &format!("{dlo}:s"), arg(&src), "--compress", "none"]);
    let old = tags(&l)["multi"].clone();
    let amd = tags(&l)["amd"].clone();
    let args = ["index", &format!("{dl}:multi"), "--add", &format!("{dlo}:s")].map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let start = Instant::now();
    ocil_ok(&args);
    let full = start.elapsed();
    let new = tags(&l)["multi"].clone();
    assert_ne!(old, new);

    let mut killed = 0;
    for k in 0..ROUNDS {
        // Back to the old index, and the copied blobs collected, so every run copies.
        ocil_ok(&["tag", &format!("{dl}@{old}"), "multi"]);
        ocil_ok(&["gc", "--prune=now", dl]);
        let delay = full.mul_f64(rng.below(1000) as f64 / 1000.0);
        let ctx = format!("kill {k} after {delay:?} of {full:?}");
        if kill_after(ocil_command(&args).env("SOURCE_DATE_EPOCH", "1704067200"), delay) {
            killed += 1;
        }
        assert_fsck_clean(&l, &ctx);
        let now = tags(&l);
        let multi = &now["multi"];
        assert!(multi == &old || multi == &new, "{ctx}: multi -> {multi}");
        assert_eq!(now["amd"], amd, "{ctx}: amd moved");
        assert_image_complete(&l, &amd, &ctx);
    }
    eprintln!("index: {killed} of {ROUNDS} killed (uninterrupted run {full:?})");
    assert!(killed >= ROUNDS / 5, "only {killed} of {ROUNDS} runs were interrupted");
    ocil_ok(&args);
    let out = ocil_ok(&["fsck", "--deep", dl]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("clean: 0 errors"));
    assert_eq!(tags(&l)["multi"], new);
}
