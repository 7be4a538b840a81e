//! `cargo xtask bench [fsck|gc|ship|unpack|all] [--quick] [options]`: timings against the peers.
//!
//! Builds `ocil` in release mode, generates layouts in a temporary directory (`gen.rs`) and
//! times, in the same run and interleaved, median of `--runs` (3) each:
//!
//! - `fsck`: `ocil fsck DIR` vs `sha256sum` over every blob file, on about 1 GiB of blobs of
//!   4 KiB..64 MiB (the target is `ocil fsck` <= 0.6x the time of `sha256sum`);
//! - `gc`: `ocil gc --prune=now DIR` vs `umoci gc --layout DIR` on layouts of 100, 2,000 and
//!   20,000 images (8 layers, half shared, as many garbage blobs as layers, a third of the
//!   images under nested multi-platform indexes), each run on a fresh copy; then a shape of
//!   1 MiB layers (about 1 GiB), where umoci pays for hashing every layer (`bench/gc.rs`).
//!   `--fs disk|tmpfs|both` (default both) picks where the copies go: the work directory's
//!   filesystem, a directory under `/dev/shm` (skipped with a note when that is not a
//!   tmpfs or lacks room for 3x the layout; an error under `--fs tmpfs`), or each in turn,
//!   a table per filesystem, each headed by a probe of what one unlink costs there. A third
//!   timed command, the floor (`xargs -0 -P 64 -n 256 rm -f --` of just the garbage blob
//!   files, no marking), shows how much of any gc's time is the unlinks themselves, so
//!   `floor/umoci` is the best ratio the filesystem allows;
//! - `ship`: `ocil export`/`import` vs `tar cf`/`tar xf` + `sha256sum`, and one image vs
//!   `skopeo copy oci: oci-archive:`, on about 1 GiB (`bench/ship.rs`);
//! - `unpack`: `ocil unpack` vs `umoci unpack` vs `tar xzf` of each layer, and `ocil repack`
//!   vs `umoci repack`, on a 20-layer image of about 1 GiB (`bench/unpack.rs`).
//!
//! In gc and ship every timed command starts after a `sync` (untimed): gc's copies are on
//! disk as a layout written earlier would be, rather than partly in the page cache
//! depending on their size, and no command pays for the previous one's writeback.
//! After every `ocil gc` the number of blobs removed must equal the garbage the generator
//! wrote; after the first, `ocil fsck` must pass and a second gc must remove nothing.
//! Wall time is measured here; peak RSS comes from `/usr/bin/time -f %M` when installed.
//! Output is a table per benchmark and a final line of JSON. `--quick` shrinks every shape
//! (gc still runs on both filesystems when they are there) so CI can smoke-test this in
//! under a minute.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::Result;
use crate::r#gen::{self, Counts, FsckShape};

mod gc;
mod ship;
mod unpack;

const USAGE: &str = "cargo xtask bench [fsck|gc|ship|unpack|all] [--quick] [--images N[,N...]] [--layers N] [--garbage N] \
                     [--seed S] [--runs R] [--fsck-mib M] [--large-images N] [--fs disk|tmpfs|both] [--ocil PATH]";

const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Fsck,
    Gc,
    Ship,
    Unpack,
    All,
}

/// Filesystems the gc benchmark runs on (`--fs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FsChoice {
    /// The work directory's filesystem.
    Disk,
    /// A directory under `/dev/shm`.
    Tmpfs,
    Both,
}

#[derive(Debug, Clone)]
struct Options {
    what: What,
    quick: bool,
    /// Image counts of the tiny-layer gc layouts.
    images: Vec<usize>,
    layers: usize,
    /// Garbage blobs per tiny-layer layout (default: images x layers).
    garbage: Option<usize>,
    seed: u64,
    runs: usize,
    /// Size of the fsck shape.
    fsck_bytes: u64,
    /// Images of the 1 MiB-layer gc layout.
    large_images: usize,
    /// Filesystems of the gc runs.
    fs: FsChoice,
    /// Use this binary instead of building `ocil`.
    ocil: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = Options {
        what: What::All,
        quick,
        images: if quick { vec![20, 200] } else { vec![100, 2_000, 20_000] },
        layers: 8,
        garbage: None,
        seed: 1,
        runs: 3,
        fsck_bytes: if quick { 64 * MIB } else { 1024 * MIB },
        large_images: if quick { 12 } else { 160 },
        fs: FsChoice::Both,
        ocil: None,
    };
    let mut it = args.iter();
    let number = |flag: &str, v: Option<&String>| -> Result<u64> {
        let v = v.ok_or_else(|| crate::usage(&format!("{flag} needs a value\n{USAGE}")))?;
        v.replace('_', "")
            .parse()
            .map_err(|_| crate::usage(&format!("{flag}: `{v}` is not a number\n{USAGE}")))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "fsck" => o.what = What::Fsck,
            "gc" => o.what = What::Gc,
            "ship" => o.what = What::Ship,
            "unpack" => o.what = What::Unpack,
            "all" => o.what = What::All,
            "--quick" => {}
            "--images" => {
                let v = it.next().ok_or_else(|| crate::usage(USAGE))?;
                o.images = v
                    .split(',')
                    .map(|n| n.replace('_', "").parse::<usize>())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| {
                        crate::usage(&format!("--images: `{v}` is not a list of numbers\n{USAGE}"))
                    })?;
            }
            "--layers" => o.layers = number(arg, it.next())? as usize,
            "--garbage" => o.garbage = Some(number(arg, it.next())? as usize),
            "--seed" => o.seed = number(arg, it.next())?,
            "--runs" => o.runs = (number(arg, it.next())? as usize).max(1),
            "--fsck-mib" => o.fsck_bytes = number(arg, it.next())? * MIB,
            "--large-images" => o.large_images = number(arg, it.next())? as usize,
            "--fs" => {
                o.fs = match it.next().map(String::as_str) {
                    Some("disk") => FsChoice::Disk,
                    Some("tmpfs") => FsChoice::Tmpfs,
                    Some("both") => FsChoice::Both,
                    _ => {
                        return Err(crate::usage(&format!(
                            "--fs needs disk, tmpfs or both\n{USAGE}"
                        )));
                    }
                }
            }
            "--ocil" => o.ocil = Some(PathBuf::from(it.next().ok_or_else(|| crate::usage(USAGE))?)),
            "-h" | "--help" => return Err(crate::usage(USAGE)),
            other => return Err(crate::usage(&format!("unknown argument `{other}`\n{USAGE}"))),
        }
    }
    Ok(o)
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let ocil = match &opts.ocil {
        Some(p) => p.clone(),
        None => build_ocil()?,
    };
    let timer = Timer::new()?;
    if timer.time_bin.is_none() {
        println!(
            "note: /usr/bin/time not found (apt-get install time); peak memory is not measured"
        );
    }
    let umoci = umoci_available();
    if !umoci {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err(
                "umoci is not installed (apt-get install umoci); CI=true requires it".into()
            );
        }
        println!("note: umoci not found (apt-get install umoci); skipping the umoci comparison");
    }
    let work = tempfile::Builder::new().prefix("ocil-bench-").tempdir()?;
    let mut report = serde_json::Map::new();
    report.insert("quick".into(), json!(opts.quick));
    report.insert("runs".into(), json!(opts.runs));
    if matches!(opts.what, What::Fsck | What::All) {
        report.insert("fsck".into(), bench_fsck(&opts, &ocil, &timer, work.path())?);
    }
    if matches!(opts.what, What::Gc | What::All) {
        report.insert("gc".into(), gc::bench(&opts, &ocil, &timer, umoci, work.path())?);
    }
    if matches!(opts.what, What::Ship | What::All) {
        report.insert("ship".into(), ship::bench(&opts, &ocil, &timer, work.path())?);
    }
    if matches!(opts.what, What::Unpack | What::All) {
        report.insert("unpack".into(), unpack::bench(&opts, &ocil, &timer, umoci, work.path())?);
    }
    println!("{}", Value::Object(report));
    Ok(())
}

/// `cargo build --release -p ocil`; returns the binary's path.
fn build_ocil() -> Result<PathBuf> {
    println!("building: cargo build --release -p ocil");
    let output = Command::new(crate::cargo())
        .args(["build", "--release", "-p", "ocil", "--message-format=json-render-diagnostics"])
        .current_dir(crate::project_root())
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("`cargo build --release -p ocil` failed ({})", output.status).into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else { continue };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "ocil"
            && let Some(exe) = msg["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    Err("`cargo build` did not report an `ocil` executable".into())
}

fn umoci_available() -> bool {
    Command::new("umoci")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    secs: f64,
    rss_kib: Option<u64>,
}

/// Runs commands, timing wall clock here and peak RSS through `/usr/bin/time`.
struct Timer {
    time_bin: Option<PathBuf>,
    scratch: tempfile::TempDir,
}

impl Timer {
    fn new() -> Result<Timer> {
        let time = Path::new("/usr/bin/time");
        let works = time.exists()
            && Command::new(time)
                .args(["-f", "%M", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        Ok(Timer { time_bin: works.then(|| time.to_path_buf()), scratch: tempfile::tempdir()? })
    }

    fn run<S: AsRef<OsStr>>(
        &self,
        program: impl AsRef<OsStr>,
        args: &[S],
    ) -> Result<(Sample, Output)> {
        let rss_file = self.scratch.path().join("rss");
        let mut cmd = match &self.time_bin {
            Some(time) => {
                let mut c = Command::new(time);
                c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(program.as_ref());
                c
            }
            None => Command::new(program.as_ref()),
        };
        cmd.args(args).stdin(Stdio::null());
        let started = Instant::now();
        let output = cmd.output()?;
        let secs = started.elapsed().as_secs_f64();
        let rss_kib = match &self.time_bin {
            // GNU time writes "Command exited with non-zero status N" first on failure.
            Some(_) => fs_err::read_to_string(&rss_file).ok().and_then(|s| {
                s.lines().rfind(|l| !l.trim().is_empty()).and_then(|l| l.trim().parse().ok())
            }),
            None => None,
        };
        Ok((Sample { secs, rss_kib }, output))
    }
}

/// Median, min, max and peak RSS of some samples.
#[derive(Debug, Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
    rss_kib: Option<u64>,
}

impl Stats {
    fn of(samples: &[Sample]) -> Stats {
        let mut t: Vec<f64> = samples.iter().map(|s| s.secs).collect();
        t.sort_by(f64::total_cmp);
        let n = t.len();
        let median = if n % 2 == 1 { t[n / 2] } else { (t[n / 2 - 1] + t[n / 2]) / 2.0 };
        Stats {
            median,
            min: t[0],
            max: t[n - 1],
            rss_kib: samples.iter().filter_map(|s| s.rss_kib).max(),
        }
    }

    fn json(&self) -> Value {
        json!({ "median_s": round(self.median, 4), "min_s": round(self.min, 4), "max_s": round(self.max, 4), "peak_rss_kib": self.rss_kib })
    }

    fn rss(&self) -> String {
        self.rss_kib.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// `sync`, so the next timing does not pay for the previous writes (and, before a gc,
/// so the layout is on disk, as one written earlier would be: see `bench/gc.rs`).
fn sync() -> Result<()> {
    Command::new("sync").status()?;
    Ok(())
}

/// Fails with the command's output when it did not exit 0.
fn ensure_success(what: &str, output: &Output) -> Result<()> {
    if output.status.success() {
        return Ok(());
    }
    let tail = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    Err(format!(
        "`{what}` failed ({})\n--- stdout (last lines) ---\n{}\n--- stderr (last lines) ---\n{}",
        output.status,
        tail(&output.stdout),
        tail(&output.stderr)
    )
    .into())
}

fn describe(counts: &Counts) -> String {
    format!(
        "{} images, {} index blobs, {} blobs ({} reachable, {} garbage), {:.1} MiB",
        counts.images,
        counts.indexes,
        counts.blobs,
        counts.reachable,
        counts.garbage,
        counts.bytes as f64 / MIB as f64
    )
}

fn bench_fsck(opts: &Options, ocil: &Path, timer: &Timer, work: &Path) -> Result<Value> {
    let dir = work.join("fsck");
    let shape = FsckShape { seed: opts.seed, ..FsckShape::new(opts.fsck_bytes) };
    let started = Instant::now();
    let counts = r#gen::generate_fsck(&dir, &shape)?;
    println!(
        "\n## fsck: {} (blobs {}..{} KiB log-uniform), generated in {:.1}s",
        describe(&counts),
        shape.min >> 10,
        shape.max >> 10,
        started.elapsed().as_secs_f64()
    );
    let sha_script = r#"find "$1/blobs" -type f -print0 | xargs -0 sha256sum > /dev/null"#;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..opts.runs {
        let (s, out) = timer.run(ocil, &[OsStr::new("fsck"), dir.as_os_str()])?;
        ensure_success(&format!("ocil fsck {}", dir.display()), &out)?;
        ours.push(s);
        let (s, out) = timer.run(
            "sh",
            &[OsStr::new("-c"), OsStr::new(sha_script), OsStr::new("sh"), dir.as_os_str()],
        )?;
        ensure_success("find | xargs sha256sum", &out)?;
        theirs.push(s);
    }
    let (o, t) = (Stats::of(&ours), Stats::of(&theirs));
    let ratio = o.median / t.median;
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<22} {:>10} {:>10} {:>10} {:>14}",
        "command", "median s", "min s", "max s", "peak RSS MiB"
    );
    for (name, s) in [("ocil fsck", &o), ("sha256sum (all blobs)", &t)] {
        let _ = writeln!(
            table,
            "{name:<22} {:>10.3} {:>10.3} {:>10.3} {:>14}",
            s.median,
            s.min,
            s.max,
            s.rss()
        );
    }
    print!("{table}");
    let mbps = counts.bytes as f64 / MIB as f64 / o.median;
    println!(
        "ratio ocil/sha256sum: {ratio:.2} (target <= 0.60: {}); ocil reads {mbps:.0} MiB/s",
        if ratio <= 0.6 { "met" } else { "NOT met" }
    );
    fs_err::remove_dir_all(&dir)?;
    Ok(json!({
        "blobs": counts.blobs,
        "bytes": counts.bytes,
        "images": counts.images,
        "ocil": o.json(),
        "sha256sum": t.json(),
        "ratio": round(ratio, 3),
        "target_ratio": 0.6,
        "target_met": ratio <= 0.6,
    }))
}
