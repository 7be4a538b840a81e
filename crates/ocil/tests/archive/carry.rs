//! Carrying images across an air gap: receipts, deltas and volumes (`ocil receipt`, `ocil
//! export --since`, `--volume-size`, `ocil import` of a delta or a volume, `ocil fsck` of
//! one).
//!
//! Content comes from the xtask generator (`xtask/src/gen.rs`, an independent writer of
//! layouts: plain serde_json and sha2), never from our library. The truths:
//!
//! - a delta imported on its base gives exactly what the full archive gives (same
//!   `index.json` entries, same blob set); on another base it is refused, naming the blobs
//!   it needs, and nothing is written;
//! - volumes imported in any order, one withheld: every tag in `index.json` names an image
//!   whose blobs are all there (checked by reading the documents by hand), and the report
//!   names the missing volume; once it arrives every tag is there and fsck is clean;
//!   `sha256sum -c SHA256SUMS` (coreutils) agrees; the same export twice gives the same
//!   bytes;
//! - a volume import killed at random moments leaves only complete images tagged, and
//!   importing again finishes the bundle (the SIGKILL harness of `../common/crash.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::copy_dir;
use crate::crash_harness::{Rng, kill_after, ocil_command};
use crate::r#gen::{FsckShape, generate_fsck};
use crate::{Out, blobs, ocil, run, s, snapshot};

/// A generated layout of about `bytes` bytes (images `image-0`, ... of up to 8 layers).
fn generated(dir: &Path, bytes: u64, seed: u64) {
    generate_fsck(dir, &FsckShape { seed, ..FsckShape::new(bytes) }).unwrap();
}

fn ok(out: Out) -> Out {
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    out
}

/// The tags of a layout's `index.json`, as `tag -> digest`, whatever their order.
fn tag_set(layout: &Path) -> BTreeSet<(String, String)> {
    crate::entries(layout)
        .into_iter()
        .map(|(tag, digest)| (tag.unwrap_or_default(), digest))
        .collect()
}

/// `base` (3 images of its own) and `new`: `base`'s images and 4 more (`extra-*`).
struct Pair {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    base: PathBuf,
    new: PathBuf,
}

fn pair() -> Pair {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let base = root.join("base");
    let extra = root.join("extra");
    let new = root.join("new");
    generated(&base, 3 << 20, 1);
    generated(&extra, 2 << 20, 2);
    copy_dir(&base, &new);
    for (tag, _) in crate::entries(&extra) {
        let tag = tag.unwrap();
        let to = format!("{}:extra-{}", s(&new), tag.trim_start_matches("image-"));
        ok(ocil(&["copy", &format!("{}:{tag}", s(&extra)), &to]));
    }
    assert!(tag_set(&new).len() >= tag_set(&base).len() + 2);
    Pair { _tmp: tmp, root, base, new }
}

/// Whether every blob the image `digest` of `layout` reaches is there, read by hand:
/// manifests (and indexes), configs and layers.
fn complete(layout: &Path, digest: &str) -> bool {
    let path = |d: &str| layout.join("blobs/sha256").join(d.strip_prefix("sha256:").unwrap());
    let mut stack = vec![digest.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(bytes) = fs_err::read(path(&d)) else { return false };
        let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else { continue };
        for field in ["manifests", "layers"] {
            for c in doc[field].as_array().into_iter().flatten() {
                stack.push(c["digest"].as_str().unwrap().to_owned());
            }
        }
        if let Some(c) = doc["config"]["digest"].as_str() {
            if !path(c).exists() {
                return false;
            }
        }
    }
    true
}

/// Every entry of `index.json` names a complete image.
fn every_tag_complete(layout: &Path, when: &str) {
    if !layout.join("index.json").exists() {
        return;
    }
    for (tag, digest) in crate::entries(layout) {
        assert!(complete(layout, &digest), "{when}: `{tag:?}` names an incomplete image");
    }
}

#[test]
fn a_delta_on_its_base_gives_what_the_full_archive_gives() {
    let p = pair();
    let receipt = p.root.join("base.receipt");
    let out = ok(ocil(&["receipt", s(&p.base), "-o", s(&receipt), "--json"])).json();
    assert_eq!(out["blobs"], blobs(&p.base).len());
    let delta = p.root.join("delta.tar");
    let full = p.root.join("full.tar");
    let report =
        ok(ocil(&["export", s(&p.new), "-o", s(&delta), "--since", s(&receipt), "--json"]));
    let report = report.json();
    ok(ocil(&["export", s(&p.new), "-o", s(&full)]));
    assert!(fs_err::metadata(&delta).unwrap().len() < fs_err::metadata(&full).unwrap().len());
    // The delta holds exactly the blobs the base lacks.
    let base_blobs = blobs(&p.base);
    let new_blobs = blobs(&p.new);
    let carried: BTreeSet<String> = tar_entries(&delta)
        .into_iter()
        .filter_map(|e| {
            e.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()).map(str::to_owned)
        })
        .collect();
    let lacking: BTreeSet<String> = new_blobs.difference(&base_blobs).cloned().collect();
    assert_eq!(carried, lacking);
    assert_eq!(report["omitted"], new_blobs.len() - lacking.len());

    // The same delta from the layout itself, and again: the same bytes.
    let again = p.root.join("again.tar");
    ok(ocil(&["export", s(&p.new), "-o", s(&again), "--since", s(&p.base)]));
    assert_eq!(fs_err::read(&delta).unwrap(), fs_err::read(&again).unwrap());

    // fsck reads it on its own: the blobs it leaves out are not missing.
    let fsck = ok(ocil(&["fsck", "--json", s(&delta)])).json();
    assert_eq!(fsck["errors"], 0, "{fsck}");
    assert_eq!(fsck["bundle"]["kind"], "delta");

    // Imported on the base (with a receipt of the result), and the full archive imported
    // into an empty layout: the same entries, the same blobs.
    let site = p.root.join("site");
    copy_dir(&p.base, &site);
    let site_receipt = p.root.join("site.receipt");
    let imported =
        ok(ocil(&["import", s(&delta), s(&site), "--receipt", s(&site_receipt), "--json"]));
    assert_eq!(imported.json()["bundle"]["kind"], "delta");
    let fresh = p.root.join("fresh");
    ok(ocil(&["import", s(&full), s(&fresh)]));
    assert_eq!(crate::index(&site)["manifests"], crate::index(&fresh)["manifests"]);
    assert_eq!(blobs(&site), blobs(&fresh));
    assert_eq!(ok(ocil(&["fsck", "--json", s(&site)])).json()["clean"], true);
    // The receipt written by the import is the receipt of the site.
    let direct = p.root.join("direct.receipt");
    ok(ocil(&["receipt", s(&site), "-o", s(&direct)]));
    assert_eq!(fs_err::read(&site_receipt).unwrap(), fs_err::read(&direct).unwrap());
    let r: Value = serde_json::from_slice(&fs_err::read(&direct).unwrap()).unwrap();
    assert_eq!(r["mediaType"], "application/vnd.ocil.receipt.v1+json");
    assert_eq!(r["blobs"].as_object().unwrap().len(), blobs(&site).len());
    assert_eq!(r["manifests"], crate::index(&site)["manifests"]);
}

#[test]
fn a_delta_on_the_wrong_base_is_refused_naming_the_missing_blobs() {
    let p = pair();
    let delta = p.root.join("delta.tar");
    ok(ocil(&["export", s(&p.new), "-o", s(&delta), "--since", s(&p.base)]));

    // The base without one of its layers.
    let site = p.root.join("site");
    copy_dir(&p.base, &site);
    let manifest = &crate::entries(&p.base)[0].1;
    let layer =
        crate::blob_json(&p.base, manifest)["layers"][0]["digest"].as_str().unwrap().to_owned();
    fs_err::remove_file(site.join("blobs/sha256").join(layer.strip_prefix("sha256:").unwrap()))
        .unwrap();
    let before = snapshot(&p.root);
    let out = ocil(&["import", s(&delta), s(&site)]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains(&format!("`{layer}`")), "{}", out.stderr);
    assert!(out.stderr.contains("lacks 1 of the"), "{}", out.stderr);
    assert_eq!(snapshot(&p.root), before, "a refused delta wrote something");

    // Another site altogether: every blob it needs is named (ten, and how many more), and
    // a destination that did not exist is not left behind.
    let nowhere = p.root.join("nowhere");
    let out = ocil(&["import", "--json", s(&delta), s(&nowhere)]);
    assert_eq!(out.code, 2);
    let message = out.json()["error"]["causes"][0].as_str().unwrap().to_owned();
    assert!(message.contains("nothing was written") && message.contains("more"), "{message}");
    assert!(!nowhere.exists());
    assert_eq!(snapshot(&p.root), before);
}

/// The entries of a tar, in order (the `tar` crate: an independent reader).
fn tar_entries(file: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(fs_err::File::open(file).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Export `layout` as volumes of `size` into `dir`; the volume files, in order.
fn volumes(layout: &Path, dir: &Path, size: &str) -> Vec<PathBuf> {
    fs_err::create_dir_all(dir).unwrap();
    let out = ok(ocil(&[
        "export",
        s(layout),
        "-o",
        s(&dir.join("bundle.tar")),
        "--volume-size",
        size,
        "--json",
    ]));
    out.json()["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| dir.join(v["file"].as_str().unwrap()))
        .collect()
}

#[test]
fn volumes_imported_in_any_order_tag_only_complete_images_and_name_what_is_missing() {
    let p = pair();
    let dir = p.root.join("media");
    let files = volumes(&p.new, &dir, "768KiB");
    assert!(files.len() >= 5, "{files:?}");
    for f in &files {
        let len = fs_err::metadata(f).unwrap().len();
        assert!(len <= 768 << 10, "{} is {len} bytes", f.display());
        // Each volume is checked on its own.
        let fsck = ok(ocil(&["fsck", "--json", s(f)])).json();
        assert_eq!((fsck["errors"].as_u64(), fsck["warnings"].as_u64()), (Some(0), Some(0)));
        assert_eq!(fsck["bundle"]["kind"], "volume");
    }
    // coreutils agrees with SHA256SUMS.
    let sums = run("sh", &["-c", &format!("cd '{}' && sha256sum -c SHA256SUMS", s(&dir))], None);
    assert_eq!(sums.code, 0, "{}{}", sums.stdout, sums.stderr);
    assert_eq!(sums.stdout.lines().filter(|l| l.ends_with(": OK")).count(), files.len());
    // The same export again: the same bytes, file for file.
    let again = p.root.join("again");
    let files2 = volumes(&p.new, &again, "768KiB");
    assert_eq!(files.len(), files2.len());
    for (a, b) in files.iter().zip(&files2) {
        assert_eq!(fs_err::read(a).unwrap(), fs_err::read(b).unwrap(), "{}", a.display());
    }
    assert_eq!(
        fs_err::read(dir.join("SHA256SUMS")).unwrap(),
        fs_err::read(again.join("SHA256SUMS")).unwrap()
    );

    // In reverse order, the second volume withheld.
    let site = p.root.join("site");
    let withheld = 1;
    let mut last = Value::Null;
    for (i, f) in files.iter().enumerate().rev() {
        if i == withheld {
            continue;
        }
        last = ok(ocil(&["import", "--json", s(f), s(&site)])).json();
        every_tag_complete(&site, &format!("after {}", f.display()));
    }
    let name = files[withheld].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        last["bundle"]["missing_volumes"],
        serde_json::json!([{ "volume": withheld + 1, "file": name }])
    );
    let text = ok(ocil(&["import", s(&files[0]), s(&site)])).stdout;
    assert!(text.contains(&format!("still missing: 1 volume(s): {name}")), "{text}");
    // Something waits for the withheld volume.
    let full = tag_set(&p.new);
    assert!(tag_set(&site).len() < full.len(), "every tag is there without volume {withheld}");
    assert!(!last["bundle"]["pending"].as_array().unwrap().is_empty());

    // It arrives: every tag, every blob, fsck clean.
    let done = ok(ocil(&["import", "--json", s(&files[withheld]), s(&site)])).json();
    assert_eq!(done["bundle"]["missing_volumes"], serde_json::json!([]));
    assert_eq!(done["bundle"]["pending"], serde_json::json!([]));
    assert_eq!(tag_set(&site), full);
    assert_eq!(blobs(&site), blobs(&p.new));
    let fsck = ok(ocil(&["fsck", "--json", s(&site)])).json();
    assert_eq!((fsck["errors"].as_u64(), fsck["warnings"].as_u64()), (Some(0), Some(0)));
    // A volume imported again writes nothing.
    let again = ok(ocil(&["import", "--json", s(&files[2]), s(&site)])).json();
    assert_eq!(again["blobs_written"], 0);
    assert_eq!(tag_set(&site), full);
}

#[test]
fn volumes_carry_a_delta_and_refuse_a_blob_larger_than_a_volume() {
    let p = pair();
    let dir = p.root.join("media");
    fs_err::create_dir_all(&dir).unwrap();
    let out = ok(ocil(&[
        "export",
        s(&p.new),
        "-o",
        s(&dir.join("d.tar")),
        "--volume-size",
        "512K",
        "--since",
        s(&p.base),
        "--json",
    ]));
    let files: Vec<PathBuf> = out.json()["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| dir.join(v["file"].as_str().unwrap()))
        .collect();
    // Not on another base.
    let empty = p.root.join("empty");
    ok(ocil(&["init", s(&empty)]));
    let refused = ocil(&["import", s(&files[0]), s(&empty)]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("the destination lacks"), "{}", refused.stderr);
    // On the base, in any order: what the full export gives.
    let site = p.root.join("site");
    copy_dir(&p.base, &site);
    for f in files.iter().rev() {
        ok(ocil(&["import", s(f), s(&site)]));
        every_tag_complete(&site, &f.display().to_string());
    }
    assert_eq!(tag_set(&site), tag_set(&p.new));
    assert_eq!(blobs(&site), blobs(&p.new));

    // The biggest blob does not fit a volume: refused, naming it and the size needed.
    let biggest = blobs(&p.new)
        .into_iter()
        .max_by_key(|h| fs_err::metadata(p.new.join("blobs/sha256").join(h)).unwrap().len())
        .unwrap();
    let size = fs_err::metadata(p.new.join("blobs/sha256").join(&biggest)).unwrap().len();
    let out = ocil(&[
        "export",
        s(&p.new),
        "-o",
        s(&dir.join("small.tar")),
        "--volume-size",
        &(size + 4096).to_string(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!("blob `sha256:{biggest}` is {size} bytes")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("not split"), "{}", out.stderr);
    assert!(!dir.join("small.001.tar").exists());
}

#[test]
fn volume_imports_killed_at_random_moments_tag_only_complete_images() {
    const KILLS: usize = 8;
    let p = pair();
    let dir = p.root.join("media");
    let files = volumes(&p.new, &dir, "1M");
    let full = tag_set(&p.new);
    // How long an uninterrupted import of each volume takes.
    let timing = p.root.join("timing");
    let took: Vec<Duration> = files
        .iter()
        .map(|f| {
            let start = Instant::now();
            ok(ocil(&["import", s(f), s(&timing)]));
            start.elapsed()
        })
        .collect();
    assert_eq!(tag_set(&timing), full);

    let mut rng = Rng(0x0c11_ca77_0000_0018);
    let mut killed = 0;
    for round in 0..KILLS {
        let site = p.root.join(format!("site{round}"));
        // Volumes in a shuffled order, each import killed at a random moment, then done
        // again (a kill can come after the end: then it just finished).
        let mut order: Vec<usize> = (0..files.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for &v in &order {
            let delay = Duration::from_nanos(rng.next_u64() % (took[v].as_nanos() as u64 * 2 + 1));
            let cmd = &mut ocil_command(["import", s(&files[v]), s(&site)]);
            killed += usize::from(kill_after(cmd, delay));
            every_tag_complete(&site, &format!("round {round}, volume {} killed", v + 1));
            if site.join("index.json").exists() {
                let fsck = ocil(&["fsck", "--json", s(&site)]);
                assert_eq!(fsck.json()["errors"], 0, "round {round}: {}", fsck.stdout);
            }
            ok(ocil(&["import", s(&files[v]), s(&site)]));
            every_tag_complete(&site, &format!("round {round}, volume {} resumed", v + 1));
        }
        assert_eq!(tag_set(&site), full, "round {round}");
        let fsck = ok(ocil(&["fsck", "--json", s(&site)])).json();
        assert_eq!(fsck["clean"], true, "round {round}: {fsck}");
        fs_err::remove_dir_all(&site).unwrap();
    }
    assert!(killed >= KILLS, "only {killed} volume imports were killed before their end");
}
