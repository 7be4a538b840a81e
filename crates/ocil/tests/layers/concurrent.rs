//! Many `ocil append` and `ocil index` processes on one layout at once lose nothing: every
//! append's tag is there, and every platform added to one index by a separate process is in
//! it (each reads `index.json` and the index under the lock).

use std::process::{Command, Stdio};

use crate::layout::{arg, assert_fsck_clean, assert_image_complete, ocil_ok, tags};
use crate::support::src_tree;

const N: usize = 8;

fn spawn_all(args: Vec<Vec<String>>) {
    let children: Vec<_> = args
        .iter()
        .map(|a| {
            Command::new(env!("CARGO_BIN_EXE_ocil"))
                .args(a)
                .env("SOURCE_DATE_EPOCH", "1704067200")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn ocil")
        })
        .collect();
    for (child, a) in children.into_iter().zip(&args) {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "ocil {a:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn concurrent_appends_and_index_edits_lose_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("L");
    let d = arg(&dir);
    ocil_ok(&["init", d]);
    for i in 0..N {
        ocil_ok(&["new", "--platform", &format!("linux/arch{i}"), &format!("{d}:p{i}")]);
        src_tree(&tmp.path().join(format!("src{i}")), format!("tree {i}").as_bytes());
    }
    // Appends to different images, at once.
    spawn_all(
        (0..N)
            .map(|i| {
                let src = tmp.path().join(format!("src{i}"));
                vec![
                    "append".into(),
                    format!("{d}:p{i}"),
                    arg(&src).to_owned(),
                    "--tag".into(),
                    format!("a{i}"),
                ]
            })
            .collect(),
    );
    let after = tags(&dir);
    assert_eq!(after.len(), 2 * N, "{after:?}");
    for digest in after.values() {
        assert_image_complete(&dir, digest, "after the appends");
    }
    // Every process adds its platform to the same index.
    ocil_ok(&["index", &format!("{d}:multi"), "--add", &format!("{d}:a0")]);
    spawn_all(
        (1..N)
            .map(|i| {
                vec!["index".into(), format!("{d}:multi"), "--add".into(), format!("{d}:a{i}")]
            })
            .collect(),
    );
    let out = ocil_ok(&["inspect", "--raw", &format!("{d}:multi")]);
    let index: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut archs: Vec<String> = index["manifests"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c["platform"]["architecture"].as_str().expect("arch").to_owned())
        .collect();
    archs.sort();
    let want: Vec<String> = (0..N).map(|i| format!("arch{i}")).collect();
    assert_eq!(archs, want, "a concurrent index edit was lost");
    assert_fsck_clean(&dir, "after the index edits");
}

/// `ocil gc --prune=now` running again and again while an append packs its layer: the
/// staged blob is a locked temp file until the append publishes it under the layout lock,
/// so gc never takes it and the appended image is complete.
#[test]
fn gc_during_an_append_does_not_take_its_layer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("L");
    let d = arg(&dir);
    let src = tmp.path().join("src");
    let mut rng = crate::crash_harness::Rng(0x6763_2d61_7070_656e);
    src_tree(&src, &rng.bytes(4 << 20));
    ocil_ok(&["init", d]);
    ocil_ok(&["new", &format!("{d}:base")]);
    let mut append = Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["append", &format!("{d}:base"), arg(&src), "--tag", "big"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn append");
    let mut gcs = 0;
    let status = loop {
        if let Some(status) = append.try_wait().expect("try_wait") {
            break status;
        }
        ocil_ok(&["gc", "--prune=now", d]);
        gcs += 1;
    };
    let out = append.wait_with_output().expect("wait");
    assert!(status.success(), "append failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(gcs > 0, "no gc ran during the append");
    let after = tags(&dir);
    assert_image_complete(&dir, &after["big"], "after gc during append");
    let deep = ocil_ok(&["fsck", "--deep", d]);
    assert!(String::from_utf8_lossy(&deep.stdout).contains("clean: 0 errors"));
}
