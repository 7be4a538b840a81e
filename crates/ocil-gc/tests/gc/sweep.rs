//! The sweep: strays are reported and never deleted (while the real garbage still goes),
//! the grace period protects young blobs, and our stale temp files are removed.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::model::{self, Alg, Desc, Store, mt};
use crate::{fsck_errors, gc, options};

/// A tagged image and its blobs.
fn image(s: &mut Store, note: &str) -> Desc {
    let layer = s.put(Alg::Sha256, mt::OCI_LAYERS[0], format!("layer {note}").into_bytes(), vec![]);
    let config = s.put_json(
        Alg::Sha256,
        mt::OCI_CONFIG,
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "note": note}),
        vec![],
    );
    s.manifest(Alg::Sha256, Some(mt::OCI_MANIFEST), None, &config, &[layer], None, note)
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

#[test]
fn strays_are_reported_and_kept_while_garbage_goes() {
    let mut s = Store::default();
    let live = image(&mut s, "live");
    let dead = image(&mut s, "dead");
    let linked = s.put(
        Alg::Sha256,
        mt::UNKNOWN_DATA,
        b"a garbage blob a symlink points at".to_vec(),
        vec![],
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("layout");
    s.write(&root, &[live.entry(Some("latest"))]);
    let garbage: BTreeSet<String> = s
        .live(std::slice::from_ref(&dead.digest), true)
        .into_iter()
        .chain([linked.digest.clone()])
        .collect();
    let live_set = s.live(std::slice::from_ref(&live.digest), true);

    // Outside the layout: a file and a directory that symlinks inside point at.
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir outside");
    std::fs::write(outside.join("file"), b"outside").expect("write outside file");
    let outside_hex = model::digest_of(Alg::Sha512, b"outside store")
        .split_once(':')
        .expect("digest")
        .1
        .to_owned();
    std::fs::write(outside.join(&outside_hex), b"outside store").expect("write outside store file");

    let sha256 = root.join("blobs/sha256");
    let hex =
        |b: &[u8]| model::digest_of(Alg::Sha256, b).split_once(':').expect("digest").1.to_owned();
    let mut strays: Vec<String> = Vec::new();
    let mut add = |rel: &str| strays.push(format!("blobs/sha256/{rel}"));
    // A subdirectory holding a file named like a blob.
    std::fs::create_dir(sha256.join("subdir")).expect("mkdir");
    std::fs::write(sha256.join("subdir").join(hex(b"nested")), b"nested").expect("write");
    add("subdir");
    // A file whose name is not a digest.
    std::fs::write(sha256.join("not-a-digest"), b"x").expect("write");
    add("not-a-digest");
    // Another tool's work: umoci's temp directory and a temp file.
    std::fs::create_dir(sha256.join(".umoci-xyz")).expect("mkdir");
    std::fs::write(sha256.join(".umoci-xyz/blob"), b"umoci").expect("write");
    add(".umoci-xyz");
    std::fs::write(sha256.join(".umoci-1234"), b"umoci temp").expect("write");
    add(".umoci-1234");
    // Names that are almost digests.
    std::fs::write(sha256.join(hex(b"upper").to_uppercase()), b"upper").expect("write");
    add(&hex(b"upper").to_uppercase());
    std::fs::write(sha256.join(&hex(b"short")[1..]), b"short").expect("write");
    add(&hex(b"short")[1..]);
    // A directory with our temp prefix: not a file of ours.
    std::fs::create_dir(sha256.join(".ocil-tmp-dir")).expect("mkdir");
    std::fs::write(sha256.join(".ocil-tmp-dir/keep"), b"keep").expect("write");
    add(".ocil-tmp-dir");
    // Symlinks: named like a digest (to a file outside), to a garbage blob, and to nothing.
    symlink(outside.join("file"), sha256.join(hex(b"outside"))).expect("symlink");
    add(&hex(b"outside"));
    symlink(linked.digest.split_once(':').expect("digest").1, sha256.join("link-to-garbage"))
        .expect("symlink");
    add("link-to-garbage");
    symlink("does-not-exist", sha256.join(hex(b"dangling"))).expect("symlink");
    add(&hex(b"dangling"));
    // Beside the algorithm directories: an unsupported algorithm, a file, and a symlinked
    // algorithm directory that leads outside the layout.
    std::fs::create_dir(root.join("blobs/md5")).expect("mkdir");
    std::fs::write(root.join("blobs/md5/0123456789abcdef0123456789abcdef"), b"md5").expect("write");
    std::fs::write(root.join("blobs/README"), b"not a blob").expect("write");
    symlink(&outside, root.join("blobs/sha512")).expect("symlink");
    strays.extend(["blobs/md5", "blobs/README", "blobs/sha512"].map(String::from));
    // Old, so no grace period explains why they stay.
    let old = SystemTime::now() - Duration::from_secs(30 * 86400);
    for p in ["not-a-digest", ".umoci-1234"] {
        set_mtime(&sha256.join(p), old);
    }
    let expected: BTreeSet<String> = strays.into_iter().collect();

    for round in 0..2 {
        let ctx = format!("round {round}");
        let (plan, report) = gc(&root, &options(Duration::ZERO))
            .unwrap_or_else(|e| panic!("{ctx}: gc failed: {e:?}"));
        let reported: BTreeSet<String> = plan.strays.iter().map(|s| s.path.clone()).collect();
        assert_eq!(reported, expected, "{ctx}: every stray reported, nothing else");
        let removed = if round == 0 { garbage.len() } else { 0 };
        assert_eq!(report.removed_blobs, removed, "{ctx}: the real garbage goes");
        for p in &expected {
            assert!(exists(&root.join(p)), "{ctx}: stray `{p}` was deleted");
        }
        let on_disk = model::blobs_on_disk(&root);
        assert!(live_set.is_subset(&on_disk), "{ctx}: live blobs kept");
        assert!(on_disk.is_disjoint(&garbage), "{ctx}: garbage removed");
        assert_eq!(
            std::fs::read(sha256.join("subdir").join(hex(b"nested"))).expect("nested"),
            b"nested"
        );
        assert_eq!(std::fs::read(sha256.join(".umoci-xyz/blob")).expect("umoci"), b"umoci");
        assert_eq!(std::fs::read(sha256.join(".ocil-tmp-dir/keep")).expect("keep"), b"keep");
        assert_eq!(std::fs::read(outside.join("file")).expect("outside"), b"outside");
        assert_eq!(
            std::fs::read(outside.join(&outside_hex)).expect("outside store"),
            b"outside store"
        );
        assert_eq!(
            std::fs::read(root.join("blobs/md5/0123456789abcdef0123456789abcdef")).expect("md5"),
            b"md5"
        );
        let errors = fsck_errors(&root);
        assert!(errors.is_empty(), "{ctx}: strays are warnings, not errors: {errors:#?}");
    }
}

#[test]
fn a_directory_with_our_temp_prefix_at_the_root_is_not_a_temp_file() {
    let mut s = Store::default();
    let live = image(&mut s, "live");
    let dead = s.put(Alg::Sha256, mt::UNKNOWN_DATA, b"dead".to_vec(), vec![]);
    let tmp = tempfile::tempdir().expect("temp dir");
    s.write(tmp.path(), &[live.entry(Some("latest"))]);
    let dir = tmp.path().join(".ocil-tmp-somebody-elses-dir");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("file"), b"data").expect("write");
    let target = tmp.path().join("oci-layout");
    symlink(&target, tmp.path().join(".ocil-tmp-link")).expect("symlink");
    let stale = tmp.path().join(".ocil-tmp-index.json-1-0-00000000");
    std::fs::write(&stale, b"{").expect("write");
    set_mtime(&stale, SystemTime::now() - Duration::from_secs(86400));

    let (plan, report) = gc(tmp.path(), &options(Duration::ZERO)).expect("gc completes");
    assert_eq!(plan.stale_temps, vec![".ocil-tmp-index.json-1-0-00000000".to_owned()]);
    let strays: Vec<&str> = plan.strays.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(strays, [".ocil-tmp-link", ".ocil-tmp-somebody-elses-dir"], "reported as strays");
    assert_eq!(report.removed_temps, 1);
    assert_eq!(report.removed_blobs, 1);
    assert!(!model::blobs_on_disk(tmp.path()).contains(&dead.digest));
    assert!(!exists(&stale), "our stale temp file goes");
    assert_eq!(std::fs::read(dir.join("file")).expect("kept"), b"data");
    assert!(exists(&tmp.path().join(".ocil-tmp-link")), "a symlink is not our temp file");
    assert!(fsck_errors(tmp.path()).is_empty());
}

#[test]
fn grace_keeps_young_blobs_and_temp_files() {
    let mut s = Store::default();
    let live = image(&mut s, "live");
    let young = s.put(Alg::Sha256, mt::UNKNOWN_DATA, b"young".to_vec(), vec![]);
    let young512 = s.put(Alg::Sha512, mt::UNKNOWN_DATA, b"young sha512".to_vec(), vec![]);
    let future = s.put(Alg::Sha256, mt::UNKNOWN_DATA, b"from the future".to_vec(), vec![]);
    let old = s.put(Alg::Sha256, mt::UNKNOWN_DATA, b"old".to_vec(), vec![]);
    let old512 = s.put(Alg::Sha512, mt::UNKNOWN_DATA, b"old sha512".to_vec(), vec![]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    s.write(root, &[live.entry(Some("latest"))]);

    let now = SystemTime::now();
    let hour_ago = now - Duration::from_secs(3600);
    let path = |d: &Desc| root.join(model::blob_path(&d.digest));
    // Live blobs are old too: age never matters for them.
    for d in s.blobs.keys() {
        set_mtime(&root.join(model::blob_path(d)), hour_ago);
    }
    for d in [&young, &young512] {
        set_mtime(&path(d), now);
    }
    set_mtime(&path(&future), now + Duration::from_secs(3600));
    let temps_old = [
        "blobs/sha256/.ocil-tmp-blob-1-0-00000000",
        "blobs/sha512/.ocil-tmp-blob-1-1-00000000",
        ".ocil-tmp-index.json-1-2-00000000",
    ];
    let temps_young =
        ["blobs/sha256/.ocil-tmp-blob-2-0-00000000", ".ocil-tmp-index.json-2-1-00000000"];
    for t in temps_old {
        std::fs::write(root.join(t), b"partial").expect("write temp");
        set_mtime(&root.join(t), hour_ago);
    }
    for t in temps_young {
        std::fs::write(root.join(t), b"partial").expect("write temp");
    }

    let ten_minutes = options(Duration::from_secs(600));
    let (plan, report) = gc(root, &ten_minutes).expect("gc");
    let removed: BTreeSet<String> = plan.remove.iter().map(|g| g.digest.to_string()).collect();
    assert_eq!(
        removed,
        BTreeSet::from([old.digest.clone(), old512.digest.clone()]),
        "only old garbage goes"
    );
    let kept: BTreeSet<String> = plan.young.iter().map(|y| y.digest.to_string()).collect();
    let young_set =
        BTreeSet::from([young.digest.clone(), young512.digest.clone(), future.digest.clone()]);
    assert_eq!(kept, young_set, "young garbage is kept");
    let stale: BTreeSet<&str> = plan.stale_temps.iter().map(String::as_str).collect();
    assert_eq!(stale, BTreeSet::from(temps_old), "stale temps");
    assert_eq!(plan.young_temps, temps_young.len(), "young temps");
    assert_eq!((report.removed_blobs, report.removed_temps), (2, temps_old.len()));
    for t in temps_old {
        assert!(!exists(&root.join(t)), "stale temp `{t}` removed");
    }
    for t in temps_young {
        assert!(exists(&root.join(t)), "young temp `{t}` kept");
    }
    let on_disk = model::blobs_on_disk(root);
    assert!(young_set.is_subset(&on_disk));
    assert!(
        s.live(std::slice::from_ref(&live.digest), true).is_subset(&on_disk),
        "live blobs kept"
    );

    // With no grace, the young ones go as well.
    let (plan, report) = gc(root, &options(Duration::ZERO)).expect("gc");
    let removed: BTreeSet<String> = plan.remove.iter().map(|g| g.digest.to_string()).collect();
    assert_eq!(removed, young_set);
    assert_eq!((report.removed_blobs, report.removed_temps), (3, temps_young.len()));
    for t in temps_young {
        assert!(!exists(&root.join(t)), "temp `{t}` removed without grace");
    }
    assert_eq!(model::blobs_on_disk(root), s.live(std::slice::from_ref(&live.digest), true));
    assert!(fsck_errors(root).is_empty());
    // The default grace is ten minutes.
    assert_eq!(ocil_gc::Options::default().grace, Duration::from_secs(600));
}
