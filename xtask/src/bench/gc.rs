//! `cargo xtask bench gc`: `ocil gc --prune=now DIR` against `umoci gc --layout DIR`, and
//! the floor under both.
//!
//! Each shape (tiny-layer layouts of `--images` images, then `--large-images` images of
//! 1 MiB layers) is generated once, untimed, in the work directory; every run then times
//! three commands, interleaved (ocil, umoci, floor), each on a fresh `cp -a` copy of it on
//! each filesystem of `--fs`:
//! `disk` (the work directory's filesystem) and `tmpfs` (a directory under `/dev/shm`, when
//! that is a tmpfs with room for three times the layout). Every copy and every removal is
//! followed by a `sync` (untimed), see [`copy_layout`]. Before each filesystem's table a
//! probe line gives that filesystem's unlink cost ([`probe_unlink`]).
//!
//! The **floor** is `xargs -0 -P 64 -n 256 rm -f -- < LIST`: removing exactly the garbage
//! blob files, up to 64 `rm`s at once, with no marking and no bookkeeping. Every gc has to
//! remove those files, so on a filesystem where an unlink is dear (on this project's VM's
//! `discard`-mounted ext4 a file with a data block costs ~85-250 µs and a sleep) the
//! floor, not the marking, bounds any gc's time: `floor/umoci` is the best ratio any gc
//! could reach there, and `ocil-floor s` is what ocil spends above it (its marking and
//! bookkeeping). The floor also pays for starting `sh`, `xargs` and one `rm` per 256
//! files (about a millisecond each), so on small layouts it can be slower than ocil
//! (`ocil-floor s` below 0): it means something on layouts with thousands of garbage blobs.
//! LIST (NUL-separated layout-relative paths, written before the timing, outside the
//! layout) is worked out without our library: after a shape's first `ocil gc`, whose
//! removed count is checked against the generator's garbage, it is the blob files of the
//! generated layout minus those left in the run copy ([`blob_files`]). After each floor run
//! exactly the blob files the gc left must be left.
//!
//! After every `ocil gc` the number of blobs removed must equal the garbage the generator
//! wrote; after the first, `ocil fsck` must pass and a second gc must remove nothing.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use super::{FsChoice, MIB, Options, Stats, Timer, describe, ensure_success, round, sync};
use crate::Result;
use crate::r#gen::{self, Counts, GcShape, LayerSize};

/// Files of each kind the unlink probe creates and removes.
const PROBE_FILES: usize = 2_000;

/// The floor: removes the NUL-separated layout-relative paths of the list file `$2` in the
/// layout `$1`, `$3` ([`FLOOR_JOBS`]) `rm`s at a time, `$4` ([`FLOOR_BATCH`]) paths each.
const FLOOR_SCRIPT: &str = r#"cd "$1" && exec xargs -0 -P "$3" -n "$4" rm -f -- < "$2""#;

/// The floor's parallel `rm`s (`xargs -P`).
const FLOOR_JOBS: usize = 64;

/// Paths per `rm` of the floor (`xargs -n`). Not made smaller for small lists to keep all
/// [`FLOOR_JOBS`] busy: on 2 cores starting 64 `rm`s costs more than 1,600 unlinks.
const FLOOR_BATCH: usize = 256;

/// One filesystem the runs happen on.
struct Target {
    /// `disk` or `tmpfs`.
    name: &'static str,
    /// Directory the run copies go in.
    root: PathBuf,
    /// Filesystem type and device from `/proc/mounts`.
    fstype: String,
    device: String,
    probe: Probe,
    /// The tmpfs directory, removed when this is dropped (also on an error).
    _owned: Option<tempfile::TempDir>,
}

/// Microseconds per unlink, measured by [`probe_unlink`].
#[derive(Debug, Clone, Copy)]
struct Probe {
    empty_us: f64,
    data_us: f64,
}

pub(super) fn bench(
    opts: &Options,
    ocil: &Path,
    timer: &Timer,
    umoci: bool,
    work: &Path,
) -> Result<Value> {
    let shapes = shapes(opts);
    let mut fs_json = Vec::new();
    let mut targets = Vec::new();
    if matches!(opts.fs, FsChoice::Disk | FsChoice::Both) {
        targets.push(target("disk", work.to_path_buf(), None)?);
    }
    if matches!(opts.fs, FsChoice::Tmpfs | FsChoice::Both) {
        match tmpfs_dir() {
            Ok(dir) => targets.push(target("tmpfs", dir.path().to_path_buf(), Some(dir))?),
            Err(why) if opts.fs == FsChoice::Tmpfs => {
                return Err(format!("--fs tmpfs: {why}").into());
            }
            Err(why) => {
                println!("note: skipping the tmpfs runs: {why}");
                fs_json.push(json!({ "fs": "tmpfs", "skipped": why }));
            }
        }
    }
    let mut rows: Vec<Vec<(String, GcRow)>> = targets.iter().map(|_| Vec::new()).collect();
    for (label, shape) in &shapes {
        let base = work.join("gc-base");
        let started = Instant::now();
        let counts = r#gen::generate_gc(&base, shape)?;
        let allocated = allocated_bytes(&base)?;
        println!(
            "\n## gc {label}: {}, generated in {:.1}s",
            describe(&counts),
            started.elapsed().as_secs_f64()
        );
        for (t, target) in targets.iter().enumerate() {
            if target.name == "tmpfs" {
                let avail = available_bytes(&target.root)?;
                if avail < 3 * allocated {
                    let why = format!(
                        "{} has {:.0} MiB free, less than 3x the {:.0} MiB the layout `{label}` takes",
                        target.root.display(),
                        avail as f64 / MIB as f64,
                        allocated as f64 / MIB as f64
                    );
                    if opts.fs == FsChoice::Tmpfs {
                        return Err(format!("--fs tmpfs: {why}").into());
                    }
                    println!("note: skipping `{label}` on tmpfs: {why}");
                    continue;
                }
            }
            let run_dir = target.root.join("gc-run");
            let row = bench_gc_one(label, &base, &counts, &run_dir, opts.runs, ocil, timer, umoci)?;
            rows[t].push((label.clone(), row));
        }
        fs_err::remove_dir_all(&base)?;
        sync()?;
    }
    let mut rows_json = Vec::new();
    for (target, rows) in targets.iter().zip(&rows) {
        println!(
            "\n## gc on {}: medians of {} run(s) each, on fresh copies, synced (ratio = ocil / umoci; \
             floor = xargs -P 64 rm of just the garbage files, the least any gc must spend)",
            target.name, opts.runs
        );
        println!(
            "fs {} ({}, {} on {}): unlink {:.1} µs (empty file), {:.1} µs (file with a data block)",
            target.name,
            target.root.display(),
            target.fstype,
            target.device,
            target.probe.empty_us,
            target.probe.data_us
        );
        fs_json.push(json!({
            "fs": target.name,
            "path": target.root.display().to_string(),
            "fstype": target.fstype,
            "device": target.device,
            "unlink_empty_us": round(target.probe.empty_us, 2),
            "unlink_data_us": round(target.probe.data_us, 2),
        }));
        print!("{}", table(target.name, rows, &shapes, &mut rows_json));
    }
    Ok(json!({ "fs": fs_json, "rows": rows_json }))
}

/// The tiny-layer shapes of `--images`, then the 1 MiB-layer one.
fn shapes(opts: &Options) -> Vec<(String, GcShape)> {
    let mut shapes: Vec<(String, GcShape)> = opts
        .images
        .iter()
        .map(|&n| {
            let shape = GcShape {
                layers: opts.layers,
                shared: opts.layers / 2,
                garbage: opts.garbage.unwrap_or(n * opts.layers),
                seed: opts.seed,
                ..GcShape::new(n)
            };
            (format!("{n} images"), shape)
        })
        .collect();
    if opts.large_images > 0 {
        let n = opts.large_images;
        let shape = GcShape {
            layers: 8,
            shared: 4,
            garbage: n * 2,
            layer_size: LayerSize::Bytes(MIB as usize),
            seed: opts.seed,
            ..GcShape::new(n)
        };
        shapes.push((format!("{n} images, 1 MiB layers"), shape));
    }
    shapes
}

/// One filesystem's table; appends its JSON rows to `json_rows`.
fn table(
    fs: &str,
    rows: &[(String, GcRow)],
    shapes: &[(String, GcShape)],
    json_rows: &mut Vec<Value>,
) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<26} {:<5} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>11} {:>12} {:>9} {:>9}",
        "layout",
        "fs",
        "blobs",
        "garbage",
        "MiB",
        "ocil s",
        "ocil MiB",
        "umoci s",
        "umoci MiB",
        "ratio",
        "floor s",
        "floor/umoci",
        "ocil-floor s",
        "ocil us/b",
        "umoci us/b"
    );
    for (label, row) in rows {
        let (o, u, f) = (&row.ocil, &row.umoci, &row.floor);
        let per_blob = |s: &Stats| s.median / row.counts.blobs as f64 * 1e6;
        let _ = writeln!(
            table,
            "{:<26} {:<5} {:>8} {:>8} {:>9.1} {:>9.3} {:>9} {:>9} {:>9} {:>7} {:>9.3} {:>11} {:>12.3} {:>9.2} {:>9}",
            label,
            fs,
            row.counts.blobs,
            row.counts.garbage,
            row.counts.bytes as f64 / MIB as f64,
            o.median,
            o.rss(),
            u.map_or("n/a".into(), |u| format!("{:.3}", u.median)),
            u.map_or("n/a".into(), |u| u.rss()),
            u.map_or("n/a".into(), |u| format!("{:.2}", o.median / u.median)),
            f.median,
            u.map_or("n/a".into(), |u| format!("{:.2}", f.median / u.median)),
            o.median - f.median,
            per_blob(o),
            u.map_or("n/a".into(), |u| format!("{:.2}", per_blob(&u))),
        );
        let shape = shapes.iter().find(|(l, _)| l == label).map(|(_, s)| s);
        json_rows.push(json!({
            "layout": label,
            "fs": fs,
            "images": shape.map(|s| s.images),
            "layers_per_image": shape.map(|s| s.layers),
            "index_blobs": row.counts.indexes,
            "blobs": row.counts.blobs,
            "reachable": row.counts.reachable,
            "garbage": row.counts.garbage,
            "bytes": row.counts.bytes,
            "ocil": o.json(),
            "umoci": u.map(|u| u.json()),
            "umoci_removed": row.umoci_removed,
            "ratio": u.map(|u| round(o.median / u.median, 3)),
            "floor": f.json(),
            "floor_ratio_vs_umoci": u.map(|u| round(f.median / u.median, 3)),
            "ocil_minus_floor": round(o.median - f.median, 4),
            "ocil_us_per_blob": round(per_blob(o), 3),
            "umoci_us_per_blob": u.map(|u| round(per_blob(&u), 3)),
        }));
    }
    table
}

struct GcRow {
    counts: Counts,
    ocil: Stats,
    umoci: Option<Stats>,
    umoci_removed: Option<usize>,
    /// The floor: removing just the garbage files, see the module doc.
    floor: Stats,
}

/// `runs` interleaved runs of ocil, umoci and the floor, each on a fresh copy of `base` at
/// `run_dir`.
#[allow(clippy::too_many_arguments)]
fn bench_gc_one(
    label: &str,
    base: &Path,
    counts: &Counts,
    run_dir: &Path,
    runs: usize,
    ocil: &Path,
    timer: &Timer,
    umoci: bool,
) -> Result<GcRow> {
    let (mut ours, mut theirs, mut floors) = (Vec::new(), Vec::new(), Vec::new());
    let mut umoci_removed = None;
    // Written next to the run copy, never inside it; the blobs the gc left, for the floor.
    let list = run_dir.with_file_name("gc-floor-list");
    let mut kept: Option<BTreeSet<PathBuf>> = None;
    for r in 0..runs {
        copy_layout(base, run_dir)?;
        let (s, out) =
            timer.run(ocil, &[OsStr::new("gc"), OsStr::new("--prune=now"), run_dir.as_os_str()])?;
        ensure_success(&format!("ocil gc --prune=now {}", run_dir.display()), &out)?;
        ours.push(s);
        let left = count_blobs(run_dir)?;
        let removed = counts.blobs - left.min(counts.blobs);
        if left > counts.blobs || removed != counts.garbage {
            return Err(format!(
                "ocil gc on `{label}` left {left} of {} blobs (removed {removed}); the generator wrote {} garbage",
                counts.blobs, counts.garbage
            )
            .into());
        }
        if r == 0 {
            kept = Some(write_garbage_list(base, run_dir, &list, counts.garbage)?);
            check_after_gc(ocil, run_dir, counts.reachable)?;
        }
        remove_synced(run_dir)?;
        if umoci {
            copy_layout(base, run_dir)?;
            let (s, out) = timer
                .run("umoci", &[OsStr::new("gc"), OsStr::new("--layout"), run_dir.as_os_str()])?;
            ensure_success(&format!("umoci gc --layout {}", run_dir.display()), &out)?;
            theirs.push(s);
            let removed = counts.blobs.saturating_sub(count_blobs(run_dir)?);
            if removed != counts.garbage {
                println!(
                    "warning: umoci gc removed {removed} blobs, the generator wrote {} garbage",
                    counts.garbage
                );
            }
            umoci_removed = Some(removed);
            remove_synced(run_dir)?;
        }
        copy_layout(base, run_dir)?;
        let (s, out) = timer.run(
            "sh",
            &[
                OsStr::new("-c"),
                OsStr::new(FLOOR_SCRIPT),
                OsStr::new("sh"),
                run_dir.as_os_str(),
                list.as_os_str(),
                OsStr::new(&FLOOR_JOBS.to_string()),
                OsStr::new(&FLOOR_BATCH.to_string()),
            ],
        )?;
        ensure_success(
            &format!("xargs -0 -P {FLOOR_JOBS} -n {FLOOR_BATCH} rm -f -- < {}", list.display()),
            &out,
        )?;
        floors.push(s);
        let left = blob_files(run_dir)?;
        if Some(&left) != kept.as_ref() {
            return Err(format!(
                "the floor on `{label}` left {} blob files, the gc left {}",
                left.len(),
                kept.as_ref().map_or(0, BTreeSet::len)
            )
            .into());
        }
        remove_synced(run_dir)?;
    }
    fs_err::remove_file(&list)?;
    let theirs = (!theirs.is_empty()).then(|| Stats::of(&theirs));
    Ok(GcRow {
        counts: *counts,
        ocil: Stats::of(&ours),
        umoci: theirs,
        umoci_removed,
        floor: Stats::of(&floors),
    })
}

/// Writes the floor's list to `list`: the blob files of `base` that the gc removed from
/// `run_dir` (there must be `garbage` of them), as NUL-separated layout-relative paths.
/// Returns the blob files the gc left, which the floor must leave too.
fn write_garbage_list(
    base: &Path,
    run_dir: &Path,
    list: &Path,
    garbage: usize,
) -> Result<BTreeSet<PathBuf>> {
    let all = blob_files(base)?;
    let kept = blob_files(run_dir)?;
    if !kept.is_subset(&all) {
        return Err(
            format!("{} holds blob files the generated layout lacks", run_dir.display()).into()
        );
    }
    let gone: Vec<&PathBuf> = all.difference(&kept).collect();
    if gone.len() != garbage {
        return Err(format!(
            "the gc removed {} blob files, the generator wrote {garbage} garbage",
            gone.len()
        )
        .into());
    }
    let mut bytes = Vec::new();
    for path in gone {
        bytes.extend_from_slice(path.as_os_str().as_bytes());
        bytes.push(0);
    }
    fs_err::write(list, bytes)?;
    Ok(kept)
}

/// The files in `dir/blobs/*/`, as paths relative to `dir` (`blobs/ALG/HEX`).
fn blob_files(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut files = BTreeSet::new();
    for alg in fs_err::read_dir(dir.join("blobs"))? {
        let alg = alg?;
        if !alg.file_type()?.is_dir() {
            continue;
        }
        for blob in fs_err::read_dir(alg.path())? {
            let blob = blob?;
            if blob.file_type()?.is_file() {
                files.insert(Path::new("blobs").join(alg.file_name()).join(blob.file_name()));
            }
        }
    }
    Ok(files)
}

/// After a gc: `ocil fsck` passes, and a second `ocil gc --json` removes nothing.
fn check_after_gc(ocil: &Path, dir: &Path, reachable: usize) -> Result<()> {
    let out = Command::new(ocil).arg("fsck").arg(dir).stdin(Stdio::null()).output()?;
    ensure_success(&format!("ocil fsck {} (after gc)", dir.display()), &out)?;
    let out = Command::new(ocil)
        .args(["gc", "--prune=now", "--json"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()?;
    ensure_success(&format!("ocil gc --prune=now --json {} (second gc)", dir.display()), &out)?;
    let left = count_blobs(dir)?;
    if left != reachable {
        return Err(
            format!("a second ocil gc changed the blob count from {reachable} to {left}").into()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parses = serde_json::from_str::<Value>(&stdout).is_ok()
        || (!stdout.trim().is_empty()
            && stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .all(|l| serde_json::from_str::<Value>(l).is_ok()));
    if !parses {
        println!("warning: `ocil gc --json` did not print JSON: {}", stdout.trim());
    }
    Ok(())
}

/// Files under `dir/blobs`.
fn count_blobs(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in walkdir::WalkDir::new(dir.join("blobs")) {
        if entry?.file_type().is_file() {
            n += 1;
        }
    }
    Ok(n)
}

/// `cp -a` (the generator writes no hard links, so the copy shares nothing with the source),
/// then `sync`.
///
/// The sync makes every run start from a layout that is on disk, as a layout written
/// earlier would be. Without it, whether the copy's data had been written back when the
/// timing started depended on the layout's size (writeback starts at
/// `dirty_background_ratio`): on ext4 a file whose data is still only in the page cache
/// (delayed allocation) unlinks in a few µs, one whose block is on disk can cost 30x that
/// (on this project's VM, mounted with `discard`, ~200 µs and a sleep), so small layouts
/// got cheap unlinks and large ones dear, and per-blob times were not comparable.
fn copy_layout(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        remove_synced(to)?;
    }
    let output = Command::new("cp").arg("-a").arg(from).arg(to).output()?;
    ensure_success(&format!("cp -a {} {}", from.display(), to.display()), &output)?;
    sync()
}

/// Removes a run directory, then `sync`s, so the removal's writeback (and discards) are
/// not billed to the next timed command.
fn remove_synced(dir: &Path) -> Result<()> {
    fs_err::remove_dir_all(dir)?;
    sync()
}

/// Disk space the files under `dir` take (their allocated blocks, at least their length).
fn allocated_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let meta = entry?.metadata()?;
        total += (meta.blocks() * 512).max(meta.len());
    }
    Ok(total)
}

/// Free bytes on the filesystem of `dir` (`df -B1 --output=avail`).
fn available_bytes(dir: &Path) -> Result<u64> {
    let out = Command::new("df").args(["-B1", "--output=avail"]).arg(dir).output()?;
    ensure_success(&format!("df -B1 --output=avail {}", dir.display()), &out)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("`df` printed no free space for {}: {stdout}", dir.display()).into())
}

/// A temporary directory under `/dev/shm`, if that is a tmpfs; otherwise why not.
fn tmpfs_dir() -> std::result::Result<tempfile::TempDir, String> {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        return Err("/dev/shm does not exist".into());
    }
    let (fstype, _) = mount_of(shm).map_err(|e| format!("cannot read /proc/mounts: {e}"))?;
    if fstype != "tmpfs" {
        return Err(format!("/dev/shm is {fstype}, not tmpfs"));
    }
    tempfile::Builder::new()
        .prefix("ocil-bench-")
        .tempdir_in(shm)
        .map_err(|e| format!("cannot create a directory in /dev/shm: {e}"))
}

/// Filesystem type and device of the mount holding `path`, from `/proc/mounts` (the
/// longest mount point that is a prefix of it; the last such line wins, as the kernel
/// stacks later mounts on top).
fn mount_of(path: &Path) -> Result<(String, String)> {
    let path = fs_err::canonicalize(path)?;
    let mounts = fs_err::read_to_string("/proc/mounts")?;
    let mut best: Option<(usize, String, String)> = None;
    for line in mounts.lines() {
        let mut f = line.split(' ');
        let (Some(device), Some(point), Some(fstype)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let point = unescape_mount(point);
        let len = Path::new(&point).components().count();
        if path.starts_with(&point) && best.as_ref().is_none_or(|(l, _, _)| len >= *l) {
            best = Some((len, fstype.to_owned(), unescape_mount(device)));
        }
    }
    best.map(|(_, t, d)| (t, d))
        .ok_or_else(|| format!("no line of /proc/mounts holds {}", path.display()).into())
}

/// Undoes `/proc/mounts`' octal escapes (`\040` for a space and so on).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .map_err(|_| ())
                .and_then(|d| u8::from_str_radix(d, 8).map_err(|_| ()))
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn target(name: &'static str, root: PathBuf, owned: Option<tempfile::TempDir>) -> Result<Target> {
    let (fstype, device) = mount_of(&root)?;
    let probe = probe_unlink(&root)?;
    Ok(Target { name, root, fstype, device, probe, _owned: owned })
}

/// Microseconds per serial unlink of [`PROBE_FILES`] files of 0 bytes and of as many of
/// 130 bytes (one data block, like the generator's tiny blobs), created in a fresh
/// directory under `dir` and `sync`ed first, measured in this process.
///
/// Removing a file that holds a data block is the floor of any gc's sweep, and what it
/// costs differs about 20x between filesystems (on this project's VM: ~200 µs and a sleep
/// on the `discard`-mounted root ext4, ~10-20 µs on a tmpfs or a loop-mounted ext4),
/// while an empty file costs a few µs everywhere. So this line explains most of the
/// ocil/umoci ratios and the per-blob times in the table under it.
fn probe_unlink(dir: &Path) -> Result<Probe> {
    let probe = dir.join("unlink-probe");
    if probe.exists() {
        fs_err::remove_dir_all(&probe)?;
    }
    fs_err::create_dir(&probe)?;
    let data = [0x5a_u8; 130];
    let mut empty = Vec::with_capacity(PROBE_FILES);
    let mut full = Vec::with_capacity(PROBE_FILES);
    for i in 0..PROBE_FILES {
        let (e, f) = (probe.join(format!("e{i}")), probe.join(format!("d{i}")));
        fs_err::write(&e, b"")?;
        fs_err::write(&f, data)?;
        empty.push(e);
        full.push(f);
    }
    sync()?;
    let per_unlink = |files: &[PathBuf]| -> Result<f64> {
        let started = Instant::now();
        for f in files {
            std::fs::remove_file(f).map_err(|e| format!("{}: {e}", f.display()))?;
        }
        Ok(started.elapsed().as_secs_f64() * 1e6 / files.len() as f64)
    };
    let empty_us = per_unlink(&empty)?;
    let data_us = per_unlink(&full)?;
    fs_err::remove_dir(&probe)?;
    sync()?;
    Ok(Probe { empty_us, data_us })
}
