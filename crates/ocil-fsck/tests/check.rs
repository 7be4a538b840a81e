//! `ocil_fsck::check` on layouts built here with `ocil_layout`'s API, one fault each: the
//! codes and severities it reports (never the wording), with and without `deep` and
//! `allow_missing`.

use std::io::Write;
use std::path::PathBuf;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_fsck::{Options, Report};
use ocil_layout::walk::Severity;
use ocil_layout::{Algorithm, Compression, Descriptor, Digest, Index, Layout, MediaType};
use serde_json::{Value, json};

/// A layout in a temp dir.
struct Fixture {
    tmp: tempfile::TempDir,
    layout: Layout,
}

/// One image: its layer and manifest.
struct Image {
    layer: Descriptor,
    manifest: Descriptor,
}

/// A tar of one file.
fn layer_tar(content: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hello.txt", content.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = ocil_codec::Encoder::new(Vec::new(), Compression::Gzip).unwrap();
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn sha256(bytes: &[u8]) -> Digest {
    Algorithm::Sha256.digest_of(bytes)
}

fn desc_json(d: &Descriptor) -> Value {
    serde_json::to_value(d).unwrap()
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        Fixture { layout: Layout::create(dir).unwrap(), tmp }
    }

    fn put(&self, media_type: MediaType, bytes: &[u8]) -> Descriptor {
        self.layout.put_bytes(media_type, bytes).unwrap()
    }

    fn put_json(&self, media_type: MediaType, v: Value) -> Descriptor {
        self.put(media_type, &serde_json::to_vec(&v).unwrap())
    }

    /// A manifest over `layer` (as described) and a config whose only diff_id is `diff_id`.
    fn manifest(&self, layer: &Descriptor, diff_id: &Digest) -> Image {
        let config = self.put_json(
            MediaType::OciConfig,
            json!({"architecture": "amd64", "os": "linux",
                   "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]}}),
        );
        let manifest = self.put_json(
            MediaType::OciManifest,
            json!({"schemaVersion": 2, "mediaType": MediaType::OciManifest.as_str(),
                   "config": desc_json(&config), "layers": [desc_json(layer)]}),
        );
        Image { layer: layer.clone(), manifest }
    }

    /// A good image: a gzip layer, its config with the right diff_id, the manifest.
    fn image(&self, content: &str) -> Image {
        let tar = layer_tar(content);
        let layer = self.put(MediaType::OciLayerGzip, &gzip(&tar));
        self.manifest(&layer, &sha256(&tar))
    }

    /// `index.json` with these entries.
    fn index(&self, entries: &[&Descriptor]) {
        let lock = self.layout.lock().unwrap();
        let manifests = entries.iter().map(|d| (*d).clone()).collect();
        let index = Index { manifests, ..Index::empty() };
        self.layout.write_index(&index, &lock).unwrap();
    }

    fn blob_file(&self, d: &Digest) -> PathBuf {
        self.tmp.path().join(d.blob_path())
    }

    fn check(&self, opts: Options) -> Report {
        let dir = Dir::open_ambient_dir(self.tmp.path(), ambient_authority()).unwrap();
        ocil_fsck::check(dir, &opts).unwrap()
    }
}

const DEEP: Options = Options { allow_missing: false, deep: true };

/// `(code, severity, digest)` of every problem, sorted.
fn found(r: &Report) -> Vec<(&'static str, Severity, Option<Digest>)> {
    let mut v: Vec<_> = r.problems.iter().map(|p| (p.code, p.severity, p.digest.clone())).collect();
    v.sort_by(|a, b| (a.0, &a.2).cmp(&(b.0, &b.2)));
    v
}

#[test]
fn a_clean_layout_has_no_problem_even_deep() {
    let f = Fixture::new();
    let img = f.image("hello\n");
    f.index(&[&img.manifest]);
    for opts in [Options::default(), DEEP] {
        let r = f.check(opts.clone());
        assert!(r.is_clean(), "{:#?}", r.problems);
        assert_eq!(found(&r), [], "{opts:?}");
        assert_eq!((r.stats.entries, r.stats.blobs, r.stats.reachable), (1, 3, 3));
        assert!(r.unreferenced.is_empty());
    }
}

#[test]
fn an_empty_directory_is_not_a_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
    let err = ocil_fsck::check(dir, &Options::default()).unwrap_err();
    assert!(matches!(err, ocil_fsck::Error::NotALayout), "{err:?}");
}

#[test]
fn a_missing_blob_is_an_error_unless_missing_blobs_are_allowed() {
    let f = Fixture::new();
    let img = f.image("hello\n");
    f.index(&[&img.manifest]);
    std::fs::remove_file(f.blob_file(&img.layer.digest)).unwrap();
    let r = f.check(DEEP);
    assert!(!r.is_clean());
    assert_eq!(found(&r), [("BLOB_MISSING", Severity::Error, Some(img.layer.digest.clone()))]);
    assert_eq!(r.stats.missing, 1);
    let allowed = f.check(Options { allow_missing: true, deep: true });
    assert!(allowed.is_clean(), "{:#?}", allowed.problems);
    assert_eq!(
        found(&allowed),
        [("BLOB_MISSING", Severity::Warning, Some(img.layer.digest.clone()))]
    );
}

#[test]
fn a_dangling_index_entry_is_a_missing_blob() {
    let f = Fixture::new();
    let img = f.image("hello\n");
    let absent = Descriptor::new(MediaType::OciManifest, sha256(b"not stored"), 10);
    f.index(&[&img.manifest, &absent]);
    let r = f.check(Options::default());
    assert_eq!(found(&r), [("BLOB_MISSING", Severity::Error, Some(absent.digest.clone()))]);
    let p = &r.problems[0];
    assert!(p.path.contains("index.json"), "{p:?}");
    assert!(f.check(Options { allow_missing: true, deep: false }).is_clean());
}

#[test]
fn a_blob_that_does_not_hash_to_its_name_is_a_digest_mismatch() {
    let f = Fixture::new();
    let img = f.image("hello\n");
    f.index(&[&img.manifest]);
    // Same size, other bytes.
    let path = f.blob_file(&img.layer.digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let r = f.check(Options::default());
    assert!(!r.is_clean());
    assert_eq!(found(&r), [("DIGEST_MISMATCH", Severity::Error, Some(img.layer.digest.clone()))]);
}

#[test]
fn a_descriptor_with_the_wrong_size_is_a_size_mismatch() {
    let f = Fixture::new();
    let tar = layer_tar("hello\n");
    let stored = f.put(MediaType::OciLayerTar, &tar);
    let wrong = Descriptor { size: stored.size + 1, ..stored.clone() };
    let img = f.manifest(&wrong, &sha256(&tar));
    f.index(&[&img.manifest]);
    let r = f.check(Options::default());
    assert!(!r.is_clean());
    assert_eq!(found(&r), [("BLOB_SIZE_MISMATCH", Severity::Error, Some(stored.digest.clone()))]);
}

#[test]
fn a_document_of_another_media_type_than_its_descriptor_says_is_a_warning() {
    let f = Fixture::new();
    let img = f.image("hello\n");
    // `index.json` names the OCI manifest as a Docker one.
    let entry = Descriptor { media_type: MediaType::DockerManifest, ..img.manifest.clone() };
    f.index(&[&entry]);
    let r = f.check(Options::default());
    assert!(r.is_clean(), "{:#?}", r.problems);
    assert_eq!(
        found(&r),
        [("MEDIA_TYPE_MISMATCH", Severity::Warning, Some(img.manifest.digest.clone()))]
    );
}

#[test]
fn deep_finds_a_layer_compressed_otherwise_than_its_media_type_says() {
    let f = Fixture::new();
    let tar = layer_tar("hello\n");
    // Plain tar bytes under a gzip media type.
    let layer = f.put(MediaType::OciLayerGzip, &tar);
    let img = f.manifest(&layer, &sha256(&tar));
    f.index(&[&img.manifest]);
    assert_eq!(found(&f.check(Options::default())), []);
    let r = f.check(DEEP);
    assert!(!r.is_clean());
    assert_eq!(
        found(&r),
        [("LAYER_COMPRESSION_MISMATCH", Severity::Error, Some(layer.digest.clone()))]
    );
}

#[test]
fn deep_finds_a_diff_id_that_is_not_the_layers() {
    let f = Fixture::new();
    let tar = layer_tar("hello\n");
    let layer = f.put(MediaType::OciLayerGzip, &gzip(&tar));
    // The digest of the compressed blob, not of the tar.
    let img = f.manifest(&layer, &layer.digest);
    f.index(&[&img.manifest]);
    assert_eq!(found(&f.check(Options::default())), []);
    let r = f.check(DEEP);
    assert!(!r.is_clean());
    assert_eq!(found(&r), [("DIFF_ID_MISMATCH", Severity::Error, Some(layer.digest.clone()))]);
}

#[test]
fn deep_finds_a_config_with_fewer_diff_ids_than_layers() {
    let f = Fixture::new();
    let layer = f.put(MediaType::OciLayerGzip, &gzip(&layer_tar("hello\n")));
    let config = f.put_json(
        MediaType::OciConfig,
        json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
    );
    let manifest = f.put_json(
        MediaType::OciManifest,
        json!({"schemaVersion": 2, "mediaType": MediaType::OciManifest.as_str(),
               "config": desc_json(&config), "layers": [desc_json(&layer)]}),
    );
    f.index(&[&manifest]);
    assert_eq!(found(&f.check(Options::default())), []);
    let r = f.check(DEEP);
    assert!(!r.is_clean());
    assert_eq!(found(&r), [("DIFF_ID_MISMATCH", Severity::Error, Some(manifest.digest.clone()))]);
}

/// A tar whose only header has `text` in its size field (checksummed), then the end blocks.
fn text_in_size_field(text: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..10].copy_from_slice(b"etc/passwd");
    h.set_mode(0o644);
    let mut bytes = h.as_bytes().to_vec();
    bytes[124..136].fill(0);
    bytes[124..124 + text.len()].copy_from_slice(text);
    bytes[148..156].fill(b' ');
    let sum: u32 = bytes.iter().map(|b| u32::from(*b)).sum();
    bytes[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    bytes.extend_from_slice(&[0u8; 1024]);
    bytes
}

#[test]
fn deep_warns_about_a_layer_that_is_not_a_tar_without_echoing_its_bytes() {
    for (what, bytes) in [
        ("text", b"just some text, long enough to fill a tar header block ".repeat(12)),
        ("a size field holding text", text_in_size_field(b"SECRET-TEXT")),
    ] {
        let f = Fixture::new();
        let layer = f.put(MediaType::OciLayerTar, &bytes);
        let img = f.manifest(&layer, &sha256(&bytes));
        f.index(&[&img.manifest]);
        assert_eq!(found(&f.check(Options::default())), [], "{what}");
        let r = f.check(DEEP);
        // A warning: the blob is intact, and the OCI spec does not forbid such a layer.
        assert!(r.is_clean(), "{what}: {:#?}", r.problems);
        assert_eq!(
            found(&r),
            [("LAYER_NOT_TAR", Severity::Warning, Some(layer.digest.clone()))],
            "{what}"
        );
        let message = &r.problems[0].message;
        assert!(!message.contains("SECRET") && !message.contains("just some"), "{message}");
    }
}

#[test]
fn deep_reports_a_layer_whose_compressed_stream_is_corrupt() {
    let f = Fixture::new();
    let tar = layer_tar(&"hello\n".repeat(1000));
    let mut gz = gzip(&tar);
    // Past the 10-byte header: the deflate stream itself.
    for b in &mut gz[20..40] {
        *b ^= 0x5a;
    }
    let layer = f.put(MediaType::OciLayerGzip, &gz);
    let img = f.manifest(&layer, &sha256(&tar));
    f.index(&[&img.manifest]);
    let r = f.check(DEEP);
    assert!(!r.is_clean());
    assert_eq!(found(&r), [("LAYER_UNREADABLE", Severity::Error, Some(layer.digest.clone()))]);
}

#[test]
fn unreferenced_blobs_strays_and_temp_files_are_warnings() {
    let f = Fixture::new();
    let img = f.image("hello\n");
    f.index(&[&img.manifest]);
    let garbage = f.put(MediaType::OciLayerTar, b"garbage");
    std::fs::write(f.tmp.path().join("blobs/sha256/not-a-digest"), b"x").unwrap();
    std::fs::write(f.tmp.path().join("blobs/sha256/.ocil-tmp-blob-1-0-0"), b"x").unwrap();
    let r = f.check(Options::default());
    assert!(r.is_clean(), "{:#?}", r.problems);
    let codes: Vec<_> = found(&r).into_iter().map(|(c, s, _)| (c, s)).collect();
    assert_eq!(
        codes,
        [
            ("STRAY", Severity::Warning),
            ("TEMP_FILE", Severity::Warning),
            ("UNREFERENCED_BLOBS", Severity::Warning)
        ]
    );
    assert_eq!(r.unreferenced, [garbage.digest]);
}

#[test]
fn the_gc_hint_for_unreferenced_blobs_says_when_gc_would_refuse() {
    let f = Fixture::new();
    let img = f.image("hello\n");
    // An index entry whose manifest is not JSON: gc's marking fails closed.
    let broken = f.put(MediaType::OciManifest, b"not json");
    f.index(&[&img.manifest, &broken]);
    f.put(MediaType::OciLayerTar, b"garbage");
    let r = f.check(Options::default());
    let hint = r.problems.iter().find(|p| p.code == "UNREFERENCED_BLOBS").unwrap();
    assert!(hint.message.contains("once the errors above are fixed"), "{}", hint.message);
    assert!(r.problems.iter().any(|p| p.blocks_gc()), "{:#?}", r.problems);
}

/// Records the phases begun and the bytes reported.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(String, Option<u64>, u64)>>);

impl ocil_layout::progress::Progress for Recorder {
    fn begin(&self, label: &str, total: Option<u64>) {
        self.0.lock().unwrap().push((label.to_owned(), total, 0));
    }
    fn advance(&self, bytes: u64) {
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.2 += bytes;
        }
    }
}

#[test]
fn progress_counts_the_bytes_hashed_and_with_deep_the_layers_read() {
    let f = Fixture::new();
    let img = f.image("hello\n");
    f.index(&[&img.manifest]);
    let all: u64 = std::fs::read_dir(f.tmp.path().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let progress = Recorder::default();
    let dir = Dir::open_ambient_dir(f.tmp.path(), ambient_authority()).unwrap();
    let r = ocil_fsck::check_with_progress(dir, &DEEP, &progress).unwrap();
    assert!(r.is_clean());
    let phases = progress.0.into_inner().unwrap();
    assert_eq!(
        phases,
        [
            ("hash".to_owned(), Some(all), all),
            ("deep".to_owned(), Some(img.layer.size), img.layer.size)
        ]
    );
}
