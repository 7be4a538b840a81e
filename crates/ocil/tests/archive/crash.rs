//! Crashes: `ocil import` killed (SIGKILL) at seeded random moments, many times, never
//! leaves a broken destination: fsck finds no error, and `index.json` holds either the tags
//! it had or all of them plus the archive's, never some of the archive's tags.
//!
//! The kill moments are seeded delays between 0 and the measured duration of an
//! uninterrupted import; the delay is a wait on the child (polling `try_wait`), not a sleep
//! that the checks depend on: whatever the moment, the same properties must hold.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::corpus::{Image, Tar, hex};
use crate::{ocil, s};

const IMAGES: usize = 12;
const KILLS: usize = 30;

/// A seeded splitmix64.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

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

/// Wait for `child` until `deadline`; its status when it exited by then.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep((deadline - now).min(Duration::from_micros(500)));
    }
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

fn copy_dir(from: &Path, to: &Path) {
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_ocil"))
            .args(["import", s(&file), s(&dest)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ocil");
        let status = match wait_until(&mut child, Instant::now() + delay) {
            Some(status) => status,
            None => {
                child.kill().expect("SIGKILL");
                child.wait().expect("wait")
            }
        };
        assert!(
            status.success() || status.signal() == Some(9),
            "round {round}: import failed on its own: {status}"
        );
        killed += usize::from(!status.success());
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
