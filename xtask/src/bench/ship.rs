//! `cargo xtask bench ship`: shipping images, against the plain tools, in one run.
//!
//! On a generated layout (`gen.rs`'s fsck shape: about 1 GiB of layers, 8 to an image,
//! every image tagged; `--quick`: 32 MiB), median of `--runs` each, interleaved, with a
//! `sync` (untimed) before every timed command so one command's dirty pages are not the
//! next one's bill, and every output removed before it is made again:
//!
//! - `ocil export DIR -o FILE` vs `tar cf FILE -C DIR . && sync FILE` (target: <= 1.2x):
//!   ocil fsyncs the archive before it renames it into place (so a power cut cannot leave
//!   a half-written archive under the name), so the baseline is tar with the same
//!   durability; plain `tar cf`, which leaves the bytes in the page cache, is shown too;
//! - `ocil import FILE NEW` vs `tar xf FILE -C NEW` + `sha256sum` of every blob
//!   (target: <= 1.5x);
//! - `ocil export DIR:image-0 -o FILE` vs `skopeo copy oci:DIR:image-0
//!   oci-archive:FILE:image-0` (target: ocil >= 3x faster);
//! - peak RSS of export and import on the layout and on one a quarter of its size
//!   (target: independent of the archive's size: the larger within 1.5x of the smaller).
//!
//! After the first import, `ocil fsck` of the result must pass and hold every image.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use super::{MIB, Options, Sample, Stats, Timer, describe, ensure_success, round, sync};
use crate::Result;
use crate::r#gen::{self, FsckShape};

fn remove(p: &Path) -> Result<()> {
    if p.is_dir() {
        fs_err::remove_dir_all(p)?;
    } else if p.exists() {
        fs_err::remove_file(p)?;
    }
    Ok(())
}

fn skopeo_available() -> bool {
    Command::new("skopeo")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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

/// The measurements on one layout.
struct Size {
    bytes: u64,
    export: Stats,
    tar_cf: Stats,
    tar_cf_sync: Stats,
    import: Stats,
    tar_xf_sha: Stats,
    export_one: Stats,
    skopeo_one: Option<Stats>,
}

fn bench_size(
    opts: &Options,
    ocil: &Path,
    timer: &Timer,
    skopeo: bool,
    work: &Path,
    total: u64,
    runs: usize,
) -> Result<Size> {
    let dir = work.join("ship-src");
    remove(&dir)?;
    let shape = FsckShape { seed: opts.seed, ..FsckShape::new(total) };
    let started = Instant::now();
    let counts = r#gen::generate_fsck(&dir, &shape)?;
    println!(
        "\n## ship: {}, generated in {:.1}s",
        describe(&counts),
        started.elapsed().as_secs_f64()
    );
    let archive = work.join("ship.tar");
    let plain = work.join("ship-plain.tar");
    let imported = work.join("ship-imported");
    let extracted = work.join("ship-extracted");
    let one = work.join("ship-one.tar");
    let one_skopeo = work.join("ship-one-skopeo.tar");
    let sha_script = r#"tar xf "$1" -C "$2" && find "$2/blobs" -type f -print0 | xargs -0 sha256sum > /dev/null"#;
    let image = format!("{}:image-0", dir.display());
    let mut s: [Vec<Sample>; 7] = Default::default();
    let tar_sync = r#"tar cf "$1" -C "$2" . && sync "$1""#;
    for r in 0..runs {
        s[0].push(timed(
            timer,
            "ocil export",
            &[&archive],
            ocil,
            &[
                OsStr::new("export"),
                OsStr::new("-q"),
                dir.as_os_str(),
                OsStr::new("-o"),
                archive.as_os_str(),
            ],
        )?);
        s[1].push(timed(
            timer,
            "tar cf",
            &[&plain],
            "tar",
            &[
                OsStr::new("cf"),
                plain.as_os_str(),
                OsStr::new("-C"),
                dir.as_os_str(),
                OsStr::new("."),
            ],
        )?);
        s[6].push(timed(
            timer,
            "tar cf && sync",
            &[&plain],
            "sh",
            &[
                OsStr::new("-c"),
                OsStr::new(tar_sync),
                OsStr::new("sh"),
                plain.as_os_str(),
                dir.as_os_str(),
            ],
        )?);
        s[2].push(timed(
            timer,
            "ocil import",
            &[&imported],
            ocil,
            &[OsStr::new("import"), OsStr::new("-q"), archive.as_os_str(), imported.as_os_str()],
        )?);
        if r == 0 {
            let out = Command::new(ocil).arg("fsck").arg(&imported).output()?;
            ensure_success("ocil fsck (after import)", &out)?;
            let entries = fs_err::read_to_string(imported.join("index.json"))?;
            let n = serde_json::from_str::<Value>(&entries)?["manifests"]
                .as_array()
                .map_or(0, Vec::len);
            if n != counts.images {
                return Err(format!(
                    "the import holds {n} images, the generator wrote {}",
                    counts.images
                )
                .into());
            }
        }
        remove(&extracted)?;
        fs_err::create_dir(&extracted)?;
        s[3].push(timed(
            timer,
            "tar xf + sha256sum",
            &[],
            "sh",
            &[
                OsStr::new("-c"),
                OsStr::new(sha_script),
                OsStr::new("sh"),
                plain.as_os_str(),
                extracted.as_os_str(),
            ],
        )?);
        s[4].push(timed(
            timer,
            "ocil export (one image)",
            &[&one],
            ocil,
            &[
                OsStr::new("export"),
                OsStr::new("-q"),
                OsStr::new(&image),
                OsStr::new("-o"),
                one.as_os_str(),
            ],
        )?);
        if skopeo {
            let dst = format!("oci-archive:{}:image-0", one_skopeo.display());
            s[5].push(timed(
                timer,
                "skopeo copy",
                &[&one_skopeo],
                "skopeo",
                &[
                    OsStr::new("copy"),
                    OsStr::new("-q"),
                    OsStr::new(&format!("oci:{image}")),
                    OsStr::new(&dst),
                ],
            )?);
        }
        for p in [&imported, &extracted] {
            remove(p)?;
        }
    }
    for p in [&dir, &archive, &plain, &one, &one_skopeo] {
        remove(p)?;
    }
    Ok(Size {
        bytes: counts.bytes,
        export: Stats::of(&s[0]),
        tar_cf: Stats::of(&s[1]),
        tar_cf_sync: Stats::of(&s[6]),
        import: Stats::of(&s[2]),
        tar_xf_sha: Stats::of(&s[3]),
        export_one: Stats::of(&s[4]),
        skopeo_one: (!s[5].is_empty()).then(|| Stats::of(&s[5])),
    })
}

pub(crate) fn bench(opts: &Options, ocil: &Path, timer: &Timer, work: &Path) -> Result<Value> {
    let skopeo = skopeo_available();
    if !skopeo {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err(
                "skopeo is not installed (apt-get install skopeo); CI=true requires it".into()
            );
        }
        println!("note: skopeo not found (apt-get install skopeo); skipping the skopeo comparison");
    }
    let total = if opts.quick { 32 * MIB } else { 1024 * MIB };
    let big = bench_size(opts, ocil, timer, skopeo, work, total, opts.runs)?;
    let small = bench_size(opts, ocil, timer, skopeo, work, total / 4, opts.runs)?;

    let export_ratio = big.export.median / big.tar_cf_sync.median;
    let export_ratio_nosync = big.export.median / big.tar_cf.median;
    let import_ratio = big.import.median / big.tar_xf_sha.median;
    let skopeo_speedup = big.skopeo_one.map(|k| k.median / big.export_one.median);
    let rss = |s: &Stats| s.rss_kib.unwrap_or(0) as f64;
    let rss_growth = |a: &Stats, b: &Stats| if rss(b) > 0.0 { rss(a) / rss(b) } else { 0.0 };
    let export_rss_growth = rss_growth(&big.export, &small.export);
    let import_rss_growth = rss_growth(&big.import, &small.import);

    let mut table = String::new();
    let _ = writeln!(
        table,
        "\n## ship: medians of {} run(s), {:.0} MiB layout (peak RSS also at {:.0} MiB)",
        opts.runs,
        big.bytes as f64 / MIB as f64,
        small.bytes as f64 / MIB as f64
    );
    let _ = writeln!(
        table,
        "{:<34} {:>9} {:>9} {:>9} {:>10} {:>12}",
        "command", "median s", "min s", "max s", "RSS MiB", "small RSS"
    );
    let rows: [(&str, &Stats, Option<&Stats>); 7] = [
        ("ocil export DIR", &big.export, Some(&small.export)),
        ("tar cf && sync FILE", &big.tar_cf_sync, Some(&small.tar_cf_sync)),
        ("tar cf (no sync)", &big.tar_cf, Some(&small.tar_cf)),
        ("ocil import", &big.import, Some(&small.import)),
        ("tar xf + sha256sum", &big.tar_xf_sha, Some(&small.tar_xf_sha)),
        ("ocil export DIR:image-0", &big.export_one, Some(&small.export_one)),
        (
            "skopeo copy oci: oci-archive:",
            big.skopeo_one.as_ref().unwrap_or(&big.export_one),
            small.skopeo_one.as_ref(),
        ),
    ];
    for (name, s, small) in rows {
        if name.starts_with("skopeo") && big.skopeo_one.is_none() {
            continue;
        }
        let _ = writeln!(
            table,
            "{name:<34} {:>9.3} {:>9.3} {:>9.3} {:>10} {:>12}",
            s.median,
            s.min,
            s.max,
            s.rss(),
            small.map_or("n/a".into(), Stats::rss)
        );
    }
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let _ = writeln!(
        table,
        "export / (tar cf && sync): {export_ratio:.2} (target <= 1.20: {}); export / tar cf without sync: {export_ratio_nosync:.2}",
        verdict(export_ratio <= 1.2)
    );
    let _ = writeln!(
        table,
        "import / (tar xf + sha256sum): {import_ratio:.2} (target <= 1.50: {})",
        verdict(import_ratio <= 1.5)
    );
    if let Some(x) = skopeo_speedup {
        let _ = writeln!(
            table,
            "skopeo / ocil, one image: {x:.1}x (target >= 3: {})",
            verdict(x >= 3.0)
        );
    }
    let _ = writeln!(
        table,
        "peak RSS, {}x the bytes: export {export_rss_growth:.2}x, import {import_rss_growth:.2}x (target <= 1.5: {})",
        (big.bytes as f64 / small.bytes as f64).round(),
        verdict(export_rss_growth <= 1.5 && import_rss_growth <= 1.5)
    );
    print!("{table}");
    let size_json = |z: &Size| {
        json!({
            "bytes": z.bytes,
            "ocil_export": z.export.json(),
            "tar_cf": z.tar_cf.json(),
            "tar_cf_sync": z.tar_cf_sync.json(),
            "ocil_import": z.import.json(),
            "tar_xf_sha256sum": z.tar_xf_sha.json(),
            "ocil_export_one": z.export_one.json(),
            "skopeo_copy_one": z.skopeo_one.map(|s| s.json()),
        })
    };
    Ok(json!({
        "large": size_json(&big),
        "small": size_json(&small),
        "export_ratio": round(export_ratio, 3),
        "export_ratio_vs_tar_without_sync": round(export_ratio_nosync, 3),
        "import_ratio": round(import_ratio, 3),
        "skopeo_speedup": skopeo_speedup.map(|x| round(x, 2)),
        "export_rss_growth": round(export_rss_growth, 3),
        "import_rss_growth": round(import_rss_growth, 3),
        "targets": {"export_ratio": 1.2, "import_ratio": 1.5, "skopeo_speedup": 3.0, "rss_growth": 1.5},
    }))
}
