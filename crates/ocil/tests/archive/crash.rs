//! Crashes: `ocil import` killed (SIGKILL) at seeded random moments, many times, never
//! leaves a broken destination: fsck finds no error, and `index.json` holds either the tags
//! it had or all of them plus the archive's, never some of the archive's tags.
//!
//! The kill moments are seeded delays between 0 and the measured duration of an
//! uninterrupted import; the delay is a wait on the child (polling `try_wait`), not a sleep
//! that the checks depend on: whatever the moment, the same properties must hold.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::corpus::{Image, Tar, hex};
use crate::crash_harness::{Rng, kill_after, ocil_command};
use crate::{ocil, s};

const IMAGES: usize = 12;
const KILLS: usize = 30;

/// An OCI archive of `IMAGES` tagged images, each with a 512 KiB layer of random bytes
/// (so that an import takes long enough to be killed in the middle).
fn archive(rng: &mut Rng) -> Vec<u8> {
    let mut t = Tar::new();
    t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut entries = Vec::new();
    let mut blobs = Vec::new();
    for i in 0..IMAGES {
        let mut layer = Tar::new();
        layer.file("data.bin", &rng.bytes(512 * 1024));
        let img = Image::from_layer(layer.finish());
        entries.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"t{i}"}}}}"#,
            hex(&img.manifest),
            img.manifest.len()
        ));
        blobs.push(img);
    }
    for img in &blobs {
        for b in [&img.layer, &img.config, &img.manifest] {
            t.file(&format!("blobs/sha256/{}", hex(b)), b);
        }
    }
    let index = format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, entries.join(","));
    t.file("index.json", index.as_bytes());
    t.finish()
}

/// Tag -> digest of a layout's `index.json`.
fn tags(dir: &Path) -> BTreeMap<String, String> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs_err::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| {
            let tag = d["annotations"]["org.opencontainers.image.ref.name"].as_str()?;
            Some((tag.to_owned(), d["digest"].as_str().unwrap().to_owned()))
        })
        .collect()
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(from).unwrap();
        if e.file_type().is_dir() {
            fs_err::create_dir_all(to.join(rel)).unwrap();
        } else {
            fs_err::copy(e.path(), to.join(rel)).unwrap();
        }
    }
}

#[test]
fn import_killed_at_random_moments_leaves_all_or_none_of_the_tags() {
    let mut rng = Rng(0x0c11_c4a5_0000_0006);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("images.tar");
    fs_err::write(&file, archive(&mut rng)).unwrap();
    // The destination before: one image of its own.
    let pristine = tmp.path().join("pristine");
    let keep = tmp.path().join("keep.tar");
    fs_err::write(&keep, Image::new("existing\n").oci_archive(Some("keep"))).unwrap();
    assert_eq!(ocil(&["import", s(&keep), s(&pristine)]).code, 0);
    let before = tags(&pristine);

    // An uninterrupted import: how long it takes, and the tags after.
    let full = tmp.path().join("full");
    copy_dir(&pristine, &full);
    let start = Instant::now();
    let out = ocil(&["import", s(&file), s(&full)]);
    let took = start.elapsed();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let after = tags(&full);
    assert_eq!(after.len(), before.len() + IMAGES);

    let mut killed = 0;
    for round in 0..KILLS {
        let dest = tmp.path().join(format!("dest{round}"));
        copy_dir(&pristine, &dest);
        let delay = Duration::from_nanos(rng.next_u64() % (took.as_nanos() as u64 + 1));
        killed += usize::from(kill_after(&mut ocil_command(["import", s(&file), s(&dest)]), delay));
        let now = tags(&dest);
        assert!(
            now == before || now == after,
            "round {round} (killed after {delay:?}): partial tags {now:?}"
        );
        let fsck = ocil(&["fsck", "--json", s(&dest)]);
        assert_eq!(fsck.code, 0, "round {round}: fsck after a kill:\n{}", fsck.stdout);
        // A second import finishes the job.
        let out = ocil(&["import", s(&file), s(&dest)]);
        assert_eq!(out.code, 0, "round {round}: {}", out.stderr);
        assert_eq!(tags(&dest), after, "round {round}");
        fs_err::remove_dir_all(&dest).unwrap();
    }
    assert!(killed >= KILLS / 3, "only {killed} of {KILLS} imports were killed before the end");
}
