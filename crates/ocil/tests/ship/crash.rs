//! `ocil copy` (and `ocil convert`) killed (SIGKILL) at seeded random moments: DST stays a
//! valid layout (fsck finds no error), and each of its tags is either absent or names
//! exactly the image SRC tags (no partial tags); a final uninterrupted copy completes the
//! job.
//!
//! The moments are seeded delays between 0 and the measured duration of an uninterrupted
//! run; the wait is polling `try_wait`, not a sleep the checks depend on.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::crash_harness::{Rng, kill_after, ocil_command};
use crate::support::{build, ocil, tags};

const IMAGES: usize = 12;
const KILLS: usize = 20;

/// Run `ocil copy` and kill it after `delay` unless it finished. Whether it was killed.
fn copy_and_kill(src: &Path, dst: &Path, link: bool, delay: Duration) -> bool {
    let mut cmd = ocil_command(["copy"]);
    if link {
        cmd.arg("--link");
    }
    kill_after(cmd.arg(src).arg(dst), delay)
}

fn check(src: &Path, dst: &Path) {
    check_against(&tags(src), dst);
}

/// DST is fsck-clean and each of its tags names what `want` gives that tag.
fn check_against(want: &std::collections::BTreeMap<String, String>, dst: &Path) {
    let fsck = crate::support::run(
        env!("CARGO_BIN_EXE_ocil"),
        ["fsck".as_ref(), "--json".as_ref(), dst.as_os_str()],
    );
    let report: serde_json::Value = serde_json::from_str(&fsck.stdout)
        .unwrap_or_else(|e| panic!("fsck output ({e}): {}{}", fsck.stdout, fsck.stderr));
    assert_eq!(report["errors"], 0, "DST is broken: {report}");
    for (tag, digest) in tags(dst) {
        assert_eq!(want.get(&tag), Some(&digest), "DST tag `{tag}` names something SRC does not");
    }
}

#[test]
fn copy_killed_at_random_moments() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut rng = Rng(0x5eed);
    build(&src, IMAGES, 512 * 1024, &mut rng);
    // The duration of an uninterrupted copy.
    let probe = tmp.path().join("probe");
    let start = Instant::now();
    ocil(["copy".as_ref(), src.as_os_str(), probe.as_os_str()]);
    let full = start.elapsed().max(Duration::from_millis(5));
    let mut killed = 0;
    for round in 0..KILLS {
        let dst = tmp.path().join(format!("dst{round}"));
        // Every other round, DST does not exist yet: the copy creates it, and a kill leaves
        // no DST or a complete layout.
        if round % 4 < 2 {
            ocil(["init".as_ref(), dst.as_os_str()]);
        }
        // Two kills into the same DST (the second finds part of the blobs there), then a
        // full run.
        for _ in 0..2 {
            let delay = Duration::from_micros(rng.below(full.as_micros() as u64 + 1));
            killed += usize::from(copy_and_kill(&src, &dst, round % 2 == 1, delay));
            if dst.exists() {
                check(&src, &dst);
            }
        }
        ocil(["copy".as_ref(), src.as_os_str(), dst.as_os_str()]);
        check(&src, &dst);
        assert_eq!(tags(&dst), tags(&src));
        fs_err::remove_dir_all(&dst).unwrap();
    }
    assert!(killed > 0, "no run was killed: the kill moments are too late");
}

/// `ocil copy` while SRC loses images to `ocil untag` + `ocil gc --prune=now`: each copy
/// either succeeds or fails naming what disappeared, and DST is never broken: fsck finds no
/// error and every tag in DST names the image SRC gave it at the start.
#[test]
fn copy_while_gc_runs_on_src() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src, IMAGES, 256 * 1024, &mut Rng(0x6c));
    let original = tags(&src);
    let gc_src = src.clone();
    let gc = std::thread::spawn(move || {
        for i in 0..IMAGES {
            ocil(["untag", &crate::support::at(&gc_src, &format!("i{i}"))]);
            ocil(["gc".as_ref(), "--prune=now".as_ref(), gc_src.as_os_str()]);
        }
    });
    for round in 0.. {
        let dst = tmp.path().join(format!("dst{round}"));
        let out = crate::support::run(
            env!("CARGO_BIN_EXE_ocil"),
            ["copy".as_ref(), src.as_os_str(), dst.as_os_str()],
        );
        if !out.ok {
            assert!(
                out.stderr.contains("disappeared") || out.stderr.contains("SRC is broken"),
                "an unexpected failure: {}",
                out.stderr
            );
        }
        if dst.exists() {
            check_against(&original, &dst);
        }
        if gc.is_finished() {
            break;
        }
    }
    gc.join().unwrap();
    // Whatever the interleaving, a copy after the gcs is complete.
    let last = tmp.path().join("last");
    ocil(["copy".as_ref(), src.as_os_str(), last.as_os_str()]);
    check(&src, &last);
}

/// `ocil convert --compress zstd` killed at seeded moments: the layout stays fsck-clean
/// and the tag names either the original image or the converted one, never anything else.
#[test]
fn convert_killed_at_random_moments() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut rng = Rng(0xc0);
    build(&src, 2, 2 * 1024 * 1024, &mut rng);
    let original = tags(&src)["i1"].clone();
    let args = |dir: &Path| -> Vec<std::ffi::OsString> {
        vec![
            "convert".into(),
            crate::support::at(dir, "i1").into(),
            "--to".into(),
            "oci".into(),
            "--compress".into(),
            "zstd".into(),
        ]
    };
    // The converted digest, and how long a conversion takes.
    let probe = tmp.path().join("probe");
    ocil(["copy".as_ref(), src.as_os_str(), probe.as_os_str()]);
    let start = Instant::now();
    ocil(args(&probe));
    let full = start.elapsed().max(Duration::from_millis(5));
    let converted = tags(&probe)["i1"].clone();
    let mut killed = 0;
    for round in 0..10 {
        let dir = tmp.path().join(format!("c{round}"));
        ocil(["copy".as_ref(), src.as_os_str(), dir.as_os_str()]);
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 + 1));
        killed += usize::from(kill_after(&mut ocil_command(args(&dir)), delay));
        let now = tags(&dir)["i1"].clone();
        assert!(now == original || now == converted, "tag i1 names {now}");
        let mut want = tags(&src);
        want.insert("i1".into(), now);
        check_against(&want, &dir);
        // A second run finishes the job.
        ocil(args(&dir));
        assert_eq!(tags(&dir)["i1"], converted);
        fs_err::remove_dir_all(&dir).unwrap();
    }
    assert!(killed > 0, "no run was killed");
}
