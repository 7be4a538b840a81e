//! Importing never extracts an archive first: blobs stream into the destination's store,
//! verified as they land, for plain and compressed archives alike, and a blob the
//! destination holds is not written again.
//!
//! Measured, not assumed: while `ocil import` runs, the bytes under the destination and
//! under its `$TMPDIR` (an empty directory of the test's) are sampled every few hundred
//! microseconds. The peak of the destination may exceed its final size by at most the
//! largest blob (it does not exceed it at all: staged blobs are the blobs to be), nothing
//! ever appears in `$TMPDIR`, and a second import of the same archive stages no blob at all.
//! Sampling can only miss a peak, never invent one, so the bounds are safe to assert.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::crash_harness::ocil_command;
use crate::r#gen::{FsckShape, generate_fsck};
use crate::{ocil, s};

/// Bytes of the regular files under `dir` (and of those whose name starts with `prefix`).
fn bytes_under(dir: &Path, prefix: &str) -> (u64, u64) {
    let mut all = 0;
    let mut matching = 0;
    for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if !e.file_type().is_file() {
            continue;
        }
        // A file may be renamed or removed between the listing and the stat.
        let Ok(meta) = e.metadata() else { continue };
        all += meta.len();
        if e.file_name().to_string_lossy().starts_with(prefix) {
            matching += meta.len();
        }
    }
    (all, matching)
}

/// Peaks observed while `ocil import ARCHIVE DEST` runs with `$TMPDIR` = `tmpdir`:
/// (destination bytes, destination temp-file bytes, `$TMPDIR` bytes).
fn import_peaks(archive: &Path, dest: &Path, tmpdir: &Path) -> (u64, u64, u64) {
    let mut child = ocil_command(["import", s(archive), s(dest)])
        .env("TMPDIR", tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut peaks = (0, 0, 0);
    loop {
        let done = child.try_wait().unwrap();
        let (all, temps) = bytes_under(dest, ".ocil-tmp");
        let (tmp, _) = bytes_under(tmpdir, "");
        peaks = (peaks.0.max(all), peaks.1.max(temps), peaks.2.max(tmp));
        if let Some(status) = done {
            let out = child.wait_with_output().unwrap();
            assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            return peaks;
        }
        std::thread::sleep(Duration::from_micros(300));
    }
}

#[test]
fn import_streams_into_the_layout_without_extracting_first() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    generate_fsck(&src, &FsckShape { seed: 7, ..FsckShape::new(12 << 20) }).unwrap();
    let largest = walkdir::WalkDir::new(src.join("blobs"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap();
    let tmpdir = tmp.path().join("tmpdir");
    fs_err::create_dir(&tmpdir).unwrap();
    for name in ["images.tar", "images.tar.gz", "images.tar.zst"] {
        let archive = tmp.path().join(name);
        let out = ocil(&["export", s(&src), "-o", s(&archive)]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let dest = tmp.path().join(format!("dest-{name}"));
        let (peak, _, in_tmp) = import_peaks(&archive, &dest, &tmpdir);
        let (end, temps) = bytes_under(&dest, ".ocil-tmp");
        assert_eq!(temps, 0, "{name}: temp files left");
        assert!(peak <= end + largest, "{name}: {peak} bytes at the peak, {end} at the end");
        assert_eq!(in_tmp, 0, "{name}: something was written to $TMPDIR");
        // Again: every blob is there, none is staged again.
        let (peak, staged, in_tmp) = import_peaks(&archive, &dest, &tmpdir);
        assert!(
            staged <= 16 << 10,
            "{name}: {staged} bytes staged: a blob the layout holds was written again"
        );
        assert!(peak <= end + 4096, "{name}: grew to {peak} from {end} on a second import");
        assert_eq!(in_tmp, 0);
    }
    assert_eq!(fs_err::read_dir(&tmpdir).unwrap().count(), 0);
}
