//! `cargo xtask bench unpack`: runtime bundles, against umoci and the floor, in one run.
//!
//! A generated image (here, not with ocil's libraries): 20 gzip layers of about 1 GiB of
//! files in all (`--quick`: 32 MiB), half random bytes, half text; median of `--runs` each,
//! interleaved, a `sync` (untimed) before every timed command, every output removed first:
//!
//! - `ocil unpack` vs `umoci unpack` (target: ocil >= 3x faster) vs the floor, `tar xzf` of
//!   each layer in turn into one directory (target: ocil <= 1.3x the floor);
//! - `ocil repack` vs `umoci repack` of a bundle with 100 MiB of new files (`--quick`:
//!   8 MiB), written before each run (target: ocil >= 3x faster);
//! - peak RSS of `ocil unpack` against the same files with a quarter of the bytes (target:
//!   flat, <= 1.5x; the record grows with the number of paths, not their bytes).
//!
//! umoci is required under `CI=true`; elsewhere its columns are left out when it is missing.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::Path;

use flate2::Compression;
use serde_json::{Value, json};

use super::{MIB, Options, Sample, Stats, Timer, ensure_success, round, sync};
use crate::Result;
use crate::r#gen::{self, AMD64, Alg, Rng, Store, TarEntry, mt};

/// Layers of the image.
const LAYERS: usize = 20;

fn remove(p: &Path) -> Result<()> {
    if p.is_dir() {
        fs_err::remove_dir_all(p)?;
    } else if p.exists() {
        fs_err::remove_file(p)?;
    }
    Ok(())
}

/// The image: `LAYERS` gzip layers of `total` bytes of files, tagged `big`; the layer
/// blobs' paths, for the floor. `shrink` divides every file's size (the same files, fewer
/// bytes: the memory check compares bytes, not paths, since the record holds one entry per
/// path).
fn generate(dir: &Path, total: u64, seed: u64, shrink: u64) -> Result<Vec<String>> {
    let mut store = Store::create(dir, Alg::Sha256)?;
    let mut rng = Rng::for_name(seed, "unpack");
    let words: [&[u8]; 8] =
        [b"alpha ", b"beta ", b"gamma ", b"layer ", b"image ", b"ocil ", b"bundle ", b"rootfs\n"];
    let per_layer = total / LAYERS as u64;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut paths = Vec::new();
    for l in 0..LAYERS {
        let mut entries = vec![TarEntry::dir(&format!("usr/lib/l{l}"))];
        let mut bytes = 0u64;
        let mut f = 0;
        while bytes * shrink < per_layer {
            if f % 32 == 0 {
                entries.push(TarEntry::dir(&format!("usr/lib/l{l}/d{}", f / 32)));
            }
            let size = (rng.log_uniform(512, 256 * 1024) / shrink) as usize;
            let data = if f % 2 == 0 {
                rng.bytes(size)
            } else {
                let mut d = Vec::with_capacity(size + 8);
                while d.len() < size {
                    d.extend_from_slice(words[rng.below(words.len() as u64) as usize]);
                }
                d
            };
            bytes += data.len() as u64;
            entries.push(TarEntry::file(&format!("usr/lib/l{l}/d{}/f{f}", f / 32), 0o644, data));
            f += 1;
        }
        let tar = r#gen::tar(entries)?;
        diff_ids.push(Alg::Sha256.digest(&tar));
        let blob = store.put(&r#gen::gzip(&tar, Compression::default())?)?;
        paths.push(store.path_of(&blob).display().to_string());
        layers.push(blob.descriptor(mt::OCI_LAYER_GZIP));
    }
    let config = store.put_json(&json!({
        "architecture": AMD64.arch,
        "os": AMD64.os,
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))?;
    let manifest = store.put_json(&json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": config.descriptor(mt::OCI_CONFIG),
        "layers": layers,
    }))?;
    store.write_index(vec![r#gen::tagged(manifest.descriptor(mt::OCI_MANIFEST), "big")])?;
    Ok(paths)
}

/// One timed command, after a sync, its outputs removed first; fails unless it succeeded.
fn timed<S: AsRef<OsStr>>(
    timer: &Timer,
    what: &str,
    clean: &[&Path],
    program: impl AsRef<OsStr>,
    args: &[S],
) -> Result<Sample> {
    for p in clean {
        remove(p)?;
    }
    sync()?;
    let (sample, out) = timer.run(program, args)?;
    ensure_success(what, &out)?;
    Ok(sample)
}

/// `bytes` of new files under `root/new-<run>` (half random, so gzip works for it).
fn add_files(root: &Path, run: usize, bytes: u64, rng: &mut Rng) -> Result<()> {
    let dir = root.join(format!("new-{run}"));
    fs_err::create_dir_all(&dir)?;
    let mut written = 0;
    let mut i = 0;
    while written < bytes {
        let data = if i % 2 == 0 { rng.bytes(MIB as usize) } else { vec![b'x'; MIB as usize] };
        fs_err::write(dir.join(format!("f{i}")), &data)?;
        written += MIB;
        i += 1;
    }
    Ok(())
}

pub(crate) fn bench(
    opts: &Options,
    ocil: &Path,
    timer: &Timer,
    umoci: bool,
    work: &Path,
) -> Result<Value> {
    let total = if opts.quick { 32 * MIB } else { 1024 * MIB };
    let change = if opts.quick { 8 * MIB } else { 100 * MIB };
    let dir = work.join("unpack-layout");
    remove(&dir)?;
    let started = std::time::Instant::now();
    let blobs = generate(&dir, total, opts.seed, 1)?;
    println!(
        "\n## unpack: {LAYERS} gzip layers, {} MiB of files, generated in {:.1}s",
        total / MIB,
        started.elapsed().as_secs_f64()
    );
    let image = format!("{}:big", dir.display());
    let (ob, ub, floor) = (work.join("ocil-bundle"), work.join("umoci-bundle"), work.join("floor"));
    let floor_script = r#"dir="$1"; shift; mkdir -p "$dir" && for l in "$@"; do tar xzf "$l" -C "$dir" || exit 1; done"#;
    let mut floor_args: Vec<String> =
        vec!["-c".into(), floor_script.into(), "floor".into(), floor.display().to_string()];
    floor_args.extend(blobs.iter().cloned());
    let mut s: [Vec<Sample>; 5] = Default::default();
    for _ in 0..opts.runs {
        s[0].push(timed(
            timer,
            "ocil unpack",
            &[&ob],
            ocil,
            &[OsStr::new("unpack"), OsStr::new("-q"), OsStr::new(&image), ob.as_os_str()],
        )?);
        if umoci {
            s[1].push(timed(
                timer,
                "umoci unpack",
                &[&ub],
                "umoci",
                &[OsStr::new("unpack"), OsStr::new("--image"), OsStr::new(&image), ub.as_os_str()],
            )?);
        }
        s[2].push(timed(timer, "tar xzf", &[&floor], "sh", &floor_args)?);
    }
    // Repack: a change written before each run (untimed), in both bundles.
    let mut rng = Rng::for_name(opts.seed, "repack");
    for run in 0..opts.runs {
        add_files(&ob.join("rootfs"), run, change, &mut rng)?;
        sync()?;
        let tag = format!("{}:ocil-{run}", dir.display());
        let (sample, out) = timer.run(
            ocil,
            &[OsStr::new("repack"), OsStr::new("-q"), ob.as_os_str(), OsStr::new(&tag)],
        )?;
        ensure_success("ocil repack", &out)?;
        s[3].push(sample);
        if umoci {
            add_files(&ub.join("rootfs"), run, change, &mut rng)?;
            sync()?;
            let tag = format!("{}:umoci-{run}", dir.display());
            let (sample, out) = timer.run(
                "umoci",
                &[OsStr::new("repack"), OsStr::new("--image"), OsStr::new(&tag), ub.as_os_str()],
            )?;
            ensure_success("umoci repack", &out)?;
            s[4].push(sample);
        }
    }
    // Peak memory on the same files with a quarter of the bytes.
    remove(&dir)?;
    generate(&dir, total, opts.seed, 4)?;
    let small = Stats::of(&[timed(
        timer,
        "ocil unpack",
        &[&ob],
        ocil,
        &[OsStr::new("unpack"), OsStr::new("-q"), OsStr::new(&image), ob.as_os_str()],
    )?]);
    for p in [&dir, &ob, &ub, &floor] {
        remove(p)?;
    }

    let st: Vec<Option<Stats>> = s.iter().map(|v| (!v.is_empty()).then(|| Stats::of(v))).collect();
    let ocil_unpack = st[0].unwrap_or(small);
    let floor_ratio = ocil_unpack.median / st[2].map_or(f64::NAN, |f| f.median);
    let umoci_speedup = st[1].map(|u| u.median / ocil_unpack.median);
    let repack_speedup = match (st[3], st[4]) {
        (Some(o), Some(u)) => Some(u.median / o.median),
        _ => None,
    };
    let rss_growth = match (ocil_unpack.rss_kib, small.rss_kib) {
        (Some(a), Some(b)) if b > 0 => a as f64 / b as f64,
        _ => 0.0,
    };
    let mut table = String::new();
    let _ = writeln!(table, "\n## unpack: medians of {} run(s)", opts.runs);
    let _ =
        writeln!(table, "{:<28} {:>9} {:>9} {:>9} {:>12}", "", "median", "min", "max", "peak RSS");
    for (name, stat) in [
        ("ocil unpack", st[0]),
        ("umoci unpack", st[1]),
        ("tar xzf each layer", st[2]),
        (&*format!("ocil repack {} MiB", change / MIB), st[3]),
        (&*format!("umoci repack {} MiB", change / MIB), st[4]),
    ] {
        if let Some(s) = stat {
            let _ = writeln!(
                table,
                "{name:<28} {:>8.2}s {:>8.2}s {:>8.2}s {:>12}",
                s.median,
                s.min,
                s.max,
                s.rss()
            );
        }
    }
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let _ = writeln!(
        table,
        "ocil unpack / floor: {floor_ratio:.2} (target <= 1.30: {})",
        verdict(floor_ratio <= 1.3)
    );
    if let Some(x) = umoci_speedup {
        let _ =
            writeln!(table, "umoci / ocil, unpack: {x:.1}x (target >= 3: {})", verdict(x >= 3.0));
    }
    if let Some(x) = repack_speedup {
        let _ =
            writeln!(table, "umoci / ocil, repack: {x:.1}x (target >= 3: {})", verdict(x >= 3.0));
    }
    let _ = writeln!(
        table,
        "peak RSS of ocil unpack, 4x the bytes in the same files: {rss_growth:.2}x (target <= 1.5: {})",
        verdict(rss_growth <= 1.5)
    );
    print!("{table}");
    let j = |s: Option<Stats>| s.map(|s| s.json());
    Ok(json!({
        "bytes": total,
        "layers": LAYERS,
        "ocil_unpack": j(st[0]),
        "umoci_unpack": j(st[1]),
        "tar_xzf": j(st[2]),
        "ocil_repack": j(st[3]),
        "umoci_repack": j(st[4]),
        "change_bytes": change,
        "floor_ratio": round(floor_ratio, 3),
        "umoci_speedup": umoci_speedup.map(|x| round(x, 2)),
        "repack_speedup": repack_speedup.map(|x| round(x, 2)),
        "rss_growth": round(rss_growth, 3),
        "targets": {"floor_ratio": 1.3, "umoci_speedup": 3.0, "repack_speedup": 3.0, "rss_growth": 1.5},
    }))
}
