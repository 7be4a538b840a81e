//! `check_archive`: an image archive is imported into the scratch directory and checked
//! there, a plain tar is described, and what is no tar is refused.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_fsck::{Error, Options, check_archive};
use ocil_layout::progress::Silent;
use ocil_layout::walk::Severity;
use ocil_layout::{Layout, MediaType};
use serde_json::json;

/// A layout with one tagged image (a config, one layer) in `dir`, as a tar.
fn oci_archive(dir: &std::path::Path, layer: &[u8]) -> Vec<u8> {
    std::fs::create_dir(dir).unwrap();
    let layout = Layout::create(Dir::open_ambient_dir(dir, ambient_authority()).unwrap()).unwrap();
    let l = layout.put_bytes(MediaType::OciLayerTar, layer).unwrap();
    let config = json!({"architecture":"amd64","os":"linux",
        "rootfs":{"type":"layers","diff_ids":[l.digest.to_string()]}});
    let c = layout.put_bytes(MediaType::OciConfig, &serde_json::to_vec(&config).unwrap()).unwrap();
    let manifest = json!({"schemaVersion":2,"mediaType":MediaType::OciManifest.as_str(),
        "config":{"mediaType":c.media_type.as_str(),"digest":c.digest.to_string(),"size":c.size},
        "layers":[{"mediaType":l.media_type.as_str(),"digest":l.digest.to_string(),"size":l.size}]});
    let m =
        layout.put_bytes(MediaType::OciManifest, &serde_json::to_vec(&manifest).unwrap()).unwrap();
    let lock = layout.lock().unwrap();
    let mut index = layout.read_index().unwrap();
    ocil_layout::tags::set_tag(&mut index, &m, "v1").unwrap();
    layout.write_index(&index, &lock).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

/// A plain tar with one file.
fn layer_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hello.txt", &b"hi\n"[..]).unwrap();
    b.into_inner().unwrap()
}

fn scratch(tmp: &tempfile::TempDir) -> Dir {
    let p = tempfile::tempdir_in(tmp.path()).unwrap().keep();
    Dir::open_ambient_dir(&p, ambient_authority()).unwrap()
}

const DEEP: Options = Options { allow_missing: false, deep: true };

#[test]
fn an_image_archive_is_checked_as_the_layout_it_imports_to() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = oci_archive(&tmp.path().join("src"), &layer_tar());
    let r = check_archive(|| Ok(&bytes[..]), scratch(&tmp), &DEEP, &Silent).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.stats.unwrap().blobs, 3);
    assert_eq!(r.scan.unwrap().kind, ocil_archive::ArchiveKind::Oci);
}

#[test]
fn a_layer_that_is_no_tar_is_found_by_the_deep_check() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = oci_archive(&tmp.path().join("src"), b"not a tar at all");
    let r = check_archive(|| Ok(&bytes[..]), scratch(&tmp), &DEEP, &Silent).unwrap();
    let codes: Vec<_> = r.problems.iter().map(|p| (p.code, p.severity)).collect();
    assert!(codes.iter().any(|(c, _)| c.starts_with("LAYER_")), "{codes:?}");
}

#[test]
fn a_plain_tar_is_described_and_unsafe_names_are_warned_of() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = layer_tar();
    let r = check_archive(|| Ok(&plain[..]), scratch(&tmp), &DEEP, &Silent).unwrap();
    assert!(r.problems.is_empty());
    assert!(r.stats.is_none());
    let scan = r.scan.unwrap();
    assert_eq!(scan.kind, ocil_archive::ArchiveKind::Plain);
    assert_eq!(scan.kinds.files, 1);

    let mut raw = tar::Header::new_old();
    raw.as_old_mut().name[..8].copy_from_slice(b"../up.sh");
    raw.set_size(0);
    raw.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&raw, &b""[..]).unwrap();
    let bytes = b.into_inner().unwrap();
    let r = check_archive(|| Ok(&bytes[..]), scratch(&tmp), &DEEP, &Silent);
    let r = r.unwrap();
    assert_eq!(r.problems.len(), 1);
    assert_eq!((r.problems[0].code, r.problems[0].severity), ("UNSAFE_ENTRY", Severity::Warning));
}

#[test]
fn what_is_no_tar_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let r = check_archive(|| Ok(&b"{\"json\": true}"[..]), scratch(&tmp), &DEEP, &Silent);
    assert!(matches!(r, Err(Error::NotAnArchive)), "{r:?}");
}
