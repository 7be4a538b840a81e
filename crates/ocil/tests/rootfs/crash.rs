//! `ocil unpack` and `ocil repack` killed (SIGKILL) at seeded random moments:
//!
//! - unpack: the bundle is complete (its record there, status clean) or marked incomplete
//!   (no record: status refuses it), nothing beside it changed, and `--force` recovers it;
//! - repack: the layout stays fsck-clean, the new tag is absent or names the image an
//!   uninterrupted repack makes (known in advance: repacks are reproducible), and the
//!   bundle's record is the old one (the changes still listed) or the new one (clean); a
//!   repack run again ends at the same image.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::json;

use crate::crash_harness::{Rng, kill_after, ocil_command};
use crate::support::{Layer, Layout, RawEntry, arg, ocil, ocil_env, ocil_ok, ok, snapshot};

const KILLS: usize = 25;
const EPOCH: &str = "1704067200";

/// An image of three layers of incompressible files, so an unpack takes a while.
fn image(layout: &Layout, rng: &mut Rng) {
    let mut layers = Vec::new();
    for l in 0..3 {
        let mut entries = vec![RawEntry::dir(&format!("d{l}/"), 0o755)];
        for f in 0..40 {
            entries.push(RawEntry::file(&format!("d{l}/f{f}"), &rng.bytes(40 << 10), 0o644));
        }
        if l > 0 {
            entries.push(RawEntry::file(&format!("d{}/.wh.f0", l - 1), b"", 0o644));
        }
        layers.push(Layer::gz(&entries));
    }
    layout.image("v1", &layers, json!({}), false);
}

/// The median time of three runs of `args`.
fn median(args: &[&str], reset: impl Fn()) -> std::time::Duration {
    let mut runs = Vec::new();
    for _ in 0..3 {
        reset();
        let start = Instant::now();
        ok(ocil_env(args, &[("SOURCE_DATE_EPOCH", EPOCH)]), "uninterrupted run");
        runs.push(start.elapsed());
    }
    runs.sort();
    runs[1]
}

/// Whether a bundle is complete and clean, or incomplete and refused.
fn complete(bundle: &Path, ctx: &str) -> bool {
    let out = ocil(&["status", arg(bundle)]);
    match out.status.code() {
        Some(0) => true,
        Some(2) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("not a complete ocil bundle") || stderr.contains("no such bundle"),
                "{ctx}: {stderr}"
            );
            false
        }
        _ => panic!("{ctx}: status of a killed unpack: {out:?}"),
    }
}

#[test]
fn unpack_killed_leaves_a_complete_or_incomplete_bundle() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x756e_7061_636b_2121);
    let layout = Layout::init(&tmp.path().join("l"));
    image(&layout, &mut rng);
    let image = format!("{}:v1", arg(&layout.dir));
    let around = tmp.path().join("around");
    std::fs::create_dir(&around).expect("mkdir");
    std::fs::write(around.join("sentinel"), "x").expect("write");
    let bundle = around.join("b");
    let full = median(&["unpack", "--force", &image, arg(&bundle)], || {});
    let before = snapshot(&around, &bundle);
    let (mut killed, mut done) = (0, 0);
    for k in 0..KILLS {
        let _ = std::fs::remove_dir_all(&bundle);
        // Up to 1.2 runs: some finish, some die in their last steps.
        let delay = full.mul_f64(rng.below(1200) as f64 / 1000.0);
        let ctx = format!("kill {k} after {delay:?} of {full:?}");
        if kill_after(&mut ocil_command(["unpack", &image, arg(&bundle)]), delay) {
            killed += 1;
        }
        if complete(&bundle, &ctx) {
            done += 1;
        }
        assert_eq!(
            snapshot(&around, &bundle),
            before,
            "{ctx}: something beside the bundle changed"
        );
        ocil_ok(&["unpack", "--force", &image, arg(&bundle)]);
        assert!(complete(&bundle, &ctx), "{ctx}: --force did not recover the bundle");
    }
    eprintln!("unpack: {killed} of {KILLS} killed, {done} complete (median run {full:?})");
    assert!(killed >= KILLS / 5, "only {killed} of {KILLS} runs were interrupted");
}

#[test]
fn repack_killed_leaves_the_old_or_the_new_image() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x7265_7061_636b_2121);
    let layout = Layout::init(&tmp.path().join("l"));
    image(&layout, &mut rng);
    let l = arg(&layout.dir).to_owned();
    let bundle = tmp.path().join("b");
    let big = rng.bytes(4 << 20);
    let change = |b: &Path| {
        std::fs::write(b.join("rootfs/d2/big"), &big).expect("write");
        std::fs::remove_file(b.join("rootfs/d2/f3")).expect("rm");
    };
    let fresh = || {
        ocil_ok(&["unpack", "--force", &format!("{l}:v1"), arg(&bundle)]);
        change(&bundle);
    };
    // The image an uninterrupted repack makes, and how long it takes.
    let full = median(&["repack", arg(&bundle), &format!("{l}:expected")], fresh);
    let tags = |dir: &Path| -> serde_json::Map<String, serde_json::Value> {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("read"))
                .expect("JSON");
        index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|d| {
                (
                    d["annotations"]["org.opencontainers.image.ref.name"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    d["digest"].clone(),
                )
            })
            .collect()
    };
    let expected = tags(&layout.dir)["expected"].clone();
    let (mut killed, mut moved) = (0, 0);
    for k in 0..KILLS {
        fresh();
        let _ =
            Command::new(env!("CARGO_BIN_EXE_ocil")).args(["untag", &format!("{l}:v2")]).output();
        // Up to 1.2 runs: some finish, some die in their last steps.
        let delay = full.mul_f64(rng.below(1200) as f64 / 1000.0);
        let ctx = format!("kill {k} after {delay:?} of {full:?}");
        let mut cmd = ocil_command(["repack", arg(&bundle), &format!("{l}:v2")]);
        if kill_after(cmd.env("SOURCE_DATE_EPOCH", EPOCH), delay) {
            killed += 1;
        }
        ok(ocil(&["fsck", &l]), &format!("{ctx}: fsck"));
        let now = tags(&layout.dir);
        match now.get("v2") {
            None => {}
            Some(d) => {
                assert_eq!(*d, expected, "{ctx}: v2 names another image");
                moved += 1;
            }
        }
        // The record is the old one (changes listed) or the new one (clean).
        let status = ocil(&["status", arg(&bundle)]);
        assert!(matches!(status.status.code(), Some(0 | 1)), "{ctx}: {status:?}");
        if status.status.code() == Some(0) {
            assert_eq!(now.get("v2"), Some(&expected), "{ctx}: a clean bundle, and no new image");
        }
        // Run again, it ends where an uninterrupted run does.
        ok(
            ocil_env(
                &["repack", arg(&bundle), &format!("{l}:v2")],
                &[("SOURCE_DATE_EPOCH", EPOCH)],
            ),
            &ctx,
        );
        assert_eq!(tags(&layout.dir)["v2"], expected, "{ctx}: the repack run again");
    }
    eprintln!("repack: {killed} of {KILLS} killed, v2 set {moved} times (median run {full:?})");
    assert!(killed >= KILLS / 5, "only {killed} of {KILLS} runs were interrupted");
    ocil_ok(&["gc", "--prune=now", &l]);
    ocil_ok(&["fsck", "--deep", &l]);
}
