//! The copy engine's public API on layouts built here: what a closure holds (with and
//! without referrers, absent blobs, broken graphs), and what a copy lands and names.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_layout::progress::Silent;
use ocil_layout::{Descriptor, Digest, Layout, MediaType, Reference};
use ocil_transfer::{ClosureOptions, ClosureSource, CopyOptions, closure, copy};
use serde_json::json;

fn layout(tmp: &tempfile::TempDir, name: &str) -> Layout {
    let p = tmp.path().join(name);
    std::fs::create_dir(&p).unwrap();
    Layout::create(Dir::open_ambient_dir(&p, ambient_authority()).unwrap()).unwrap()
}

fn put_json(l: &Layout, media_type: MediaType, v: serde_json::Value) -> Descriptor {
    l.put_bytes(media_type, &serde_json::to_vec(&v).unwrap()).unwrap()
}

fn desc_json(d: &Descriptor) -> serde_json::Value {
    json!({"mediaType": d.media_type.as_str(), "digest": d.digest.to_string(), "size": d.size})
}

/// An image: config, one layer, a manifest; tagged `tag`.
struct Image {
    manifest: Descriptor,
    config: Descriptor,
    layer: Descriptor,
}

fn image(l: &Layout, content: &str, tag: &str) -> Image {
    let layer = l.put_bytes(MediaType::OciLayerTar, content.as_bytes()).unwrap();
    let config = put_json(
        l,
        MediaType::OciConfig,
        json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[layer.digest.to_string()]}}),
    );
    let manifest = put_json(
        l,
        MediaType::OciManifest,
        json!({"schemaVersion":2,"mediaType":MediaType::OciManifest.as_str(),"config":desc_json(&config),"layers":[desc_json(&layer)]}),
    );
    let lock = l.lock().unwrap();
    let mut index = l.read_index().unwrap();
    ocil_layout::tags::set_tag(&mut index, &manifest, tag).unwrap();
    l.write_index(&index, &lock).unwrap();
    Image { manifest, config, layer }
}

/// A referrer (an artifact manifest whose subject is `subject`), stored but not tagged.
fn referrer(l: &Layout, subject: &Descriptor, payload: &str) -> (Descriptor, Descriptor) {
    let empty = l.put_bytes(MediaType::OciEmpty, b"{}").unwrap();
    let blob = l.put_bytes(MediaType::Other("text/plain".into()), payload.as_bytes()).unwrap();
    let r = put_json(
        l,
        MediaType::OciManifest,
        json!({"schemaVersion":2,"mediaType":MediaType::OciManifest.as_str(),
               "artifactType":"application/example",
               "config":desc_json(&empty),"layers":[desc_json(&blob)],"subject":desc_json(subject)}),
    );
    (r, blob)
}

fn digests(c: &ocil_transfer::Closure) -> Vec<Digest> {
    let mut v: Vec<Digest> = c.blobs.iter().map(|b| b.digest.clone()).collect();
    v.sort();
    v
}

fn sorted(v: &[&Digest]) -> Vec<Digest> {
    let mut v: Vec<Digest> = v.iter().map(|d| (*d).clone()).collect();
    v.sort();
    v
}

const PLAIN: ClosureOptions =
    ClosureOptions { follow_subject: true, referrers: false, absent_ok: false };

#[test]
fn a_closure_holds_the_image_and_on_request_its_referrers_recursively() {
    let tmp = tempfile::tempdir().unwrap();
    let l = layout(&tmp, "src");
    let img = image(&l, "layer a", "v1");
    let (sig, sig_blob) = referrer(&l, &img.manifest, "signature");
    let (sig_of_sig, sos_blob) = referrer(&l, &sig, "counter-signature");
    let garbage = l.put_bytes(MediaType::OciLayerTar, b"nobody refers to me").unwrap();
    let src = [ClosureSource { store: &l, roots: vec![img.manifest.clone()] }];

    let c = closure(&src, PLAIN).unwrap();
    let image_blobs = sorted(&[&img.manifest.digest, &img.config.digest, &img.layer.digest]);
    assert_eq!(digests(&c), image_blobs);
    assert!(c.referrers.is_empty());
    // Documents are told from layers, for an archive's order.
    for b in &c.blobs {
        assert_eq!(b.document, b.digest != img.layer.digest, "{}", b.digest);
    }

    let c = closure(&src, ClosureOptions { referrers: true, ..PLAIN }).unwrap();
    let empty = ocil_layout::Algorithm::Sha256.digest_of(b"{}");
    let mut want = image_blobs.clone();
    want.extend([
        sig.digest.clone(),
        sig_blob.digest,
        sig_of_sig.digest.clone(),
        sos_blob.digest,
        empty,
    ]);
    want.sort();
    assert_eq!(digests(&c), want);
    let found: Vec<&Digest> = c.referrers.iter().map(|(_, r)| &r.descriptor.digest).collect();
    assert_eq!(found, [&sig.digest, &sig_of_sig.digest]);
    assert!(!c.contains(&garbage.digest));
    assert!(c.is_found_referrer(&sig.digest));
}

#[test]
fn a_referrer_in_one_source_of_an_image_in_another_joins() {
    let tmp = tempfile::tempdir().unwrap();
    let a = layout(&tmp, "a");
    let b = layout(&tmp, "b");
    let img = image(&a, "shared", "v1");
    // b holds the same image and a signature of it.
    image(&b, "shared", "v1");
    let (sig, _) = referrer(&b, &img.manifest, "sig");
    let src = [
        ClosureSource { store: &a, roots: vec![img.manifest.clone()] },
        ClosureSource { store: &b, roots: vec![] },
    ];
    let c = closure(&src, ClosureOptions { referrers: true, ..PLAIN }).unwrap();
    let of = |d: &Digest| c.blobs.iter().find(|x| &x.digest == d).unwrap().source;
    assert_eq!(of(&img.layer.digest), 0, "a blob two sources hold comes from the first");
    assert_eq!(of(&sig.digest), 1);
}

#[test]
fn absent_and_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let l = layout(&tmp, "src");
    // A manifest whose nondistributable layer is not in the store.
    let foreign = Descriptor::new(
        MediaType::OciLayerNondistributableGzip,
        ocil_layout::Algorithm::Sha256.digest_of(b"not here"),
        8,
    );
    let config =
        put_json(&l, MediaType::OciConfig, json!({"rootfs":{"type":"layers","diff_ids":[]}}));
    let m = put_json(
        &l,
        MediaType::OciManifest,
        json!({"schemaVersion":2,"config":desc_json(&config),"layers":[desc_json(&foreign)]}),
    );
    let src = [ClosureSource { store: &l, roots: vec![m.clone()] }];
    let c = closure(&src, ClosureOptions { absent_ok: true, ..PLAIN }).unwrap();
    assert_eq!(digests(&c), sorted(&[&m.digest, &config.digest]));
    match closure(&src, PLAIN) {
        Err(ocil_transfer::Error::Absent { digest, .. }) => assert_eq!(digest, foreign.digest),
        other => panic!("{other:?}"),
    }
    // A missing config is a broken graph, whatever absent_ok says.
    l.remove_blob(&config.digest).unwrap();
    match closure(&src, ClosureOptions { absent_ok: true, ..PLAIN }) {
        Err(ocil_transfer::Error::Broken { code, .. }) => assert_eq!(code, "BLOB_MISSING"),
        other => panic!("{other:?}"),
    }
}

fn opts(reference: Option<&Reference>) -> CopyOptions<'_> {
    CopyOptions {
        reference,
        tag: None,
        platform: None,
        platforms: &[],
        foreign: true,
        link: false,
        referrers: true,
        force: false,
        progress: &Silent,
    }
}

#[test]
fn a_copy_lands_every_blob_verified_and_tags_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(&tmp, "src");
    let dst = layout(&tmp, "dst");
    let img = image(&src, "layer a", "v1");
    let (sig, _) = referrer(&src, &img.manifest, "signature");
    let v1 = Reference::Tag("v1".into());
    let r = copy(&src, &dst, &opts(Some(&v1))).unwrap();
    // manifest, config, layer; the signature, its empty config and its payload.
    assert_eq!((r.blobs, r.copied, r.present, r.referrers), (6, 6, 0, 1));
    for d in [&img.manifest, &img.config, &img.layer, &sig] {
        assert_eq!(
            dst.read_blob(&d.digest, 1 << 20).unwrap(),
            src.read_blob(&d.digest, 1 << 20).unwrap()
        );
    }
    let index = dst.read_index().unwrap();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(index.manifests[0].digest, img.manifest.digest);
    assert_eq!(index.manifests[0].ref_name(), Some("v1"));
    // Again: nothing to copy.
    let r = copy(&src, &dst, &opts(Some(&v1))).unwrap();
    assert_eq!((r.copied, r.present), (0, 6));
}

/// A layout seen as a store that is not a directory (an archive, later a registry): its
/// blobs are streamed through DST's blob writer.
struct Streamed<'a>(&'a Layout);

impl ocil_layout::Store for Streamed<'_> {
    fn kind(&self) -> &'static str {
        "streamed layout"
    }
    fn stat_blob(&self, digest: &Digest) -> ocil_layout::Result<Option<u64>> {
        self.0.stat_blob(digest)
    }
    fn peek_blob(&self, digest: &Digest, n: usize) -> ocil_layout::Result<Vec<u8>> {
        self.0.peek_blob(digest, n)
    }
    fn read_blob_unverified(&self, digest: &Digest, limit: u64) -> ocil_layout::Result<Vec<u8>> {
        ocil_layout::Store::read_blob_unverified(self.0, digest, limit)
    }
    fn open_blob_verified(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> ocil_layout::Result<Box<dyn std::io::Read + '_>> {
        ocil_layout::Store::open_blob_verified(self.0, digest, expected_size)
    }
    fn read_index(&self) -> ocil_layout::Result<ocil_layout::Index> {
        self.0.read_index()
    }
    fn blob_digests(&self) -> ocil_layout::Result<Vec<Digest>> {
        ocil_layout::Store::blob_digests(self.0)
    }
}

/// An error and its causes, as the binary prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

#[test]
fn a_corrupt_streamed_blob_fails_the_copy_naming_the_blob_store_not_a_temp_file() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(&tmp, "src");
    let dst = layout(&tmp, "dst");
    let img = image(&src, "layer a", "v1");
    std::fs::write(tmp.path().join("src").join(img.layer.digest.blob_path()), b"layer b").unwrap();
    let err = copy(&Streamed(&src), &dst, &opts(None)).unwrap_err();
    let shown = chain(&err);
    assert!(shown.starts_with("read the data of a new blob in `blobs/sha256`: "), "{shown}");
    assert!(shown.contains(&img.layer.digest.blob_path()), "{shown}");
    assert!(!shown.contains(ocil_layout::TEMP_PREFIX), "{shown}");
    assert!(dst.read_index().unwrap().manifests.is_empty());
}

#[test]
fn a_corrupt_source_blob_fails_the_copy_and_names_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(&tmp, "src");
    let dst = layout(&tmp, "dst");
    let img = image(&src, "layer a", "v1");
    // Same size, other bytes.
    std::fs::write(tmp.path().join("src").join(img.layer.digest.blob_path()), b"layer b").unwrap();
    let err = copy(&src, &dst, &opts(None)).unwrap_err();
    assert!(matches!(err, ocil_transfer::Error::Corrupt { .. }), "{err:?}");
    assert!(dst.read_index().unwrap().manifests.is_empty());
    // Children land before parents: the manifest that names the layer did not land.
    assert_eq!(dst.stat_blob(&img.manifest.digest).unwrap(), None);
}

#[test]
fn levels_put_children_below_parents_even_when_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(&tmp, "src");
    // Two images sharing a layer, under one index, and a referrer of the first.
    let a = image(&src, "shared layer", "a");
    let b_manifest = put_json(
        &src,
        MediaType::OciManifest,
        json!({"schemaVersion":2,"mediaType":MediaType::OciManifest.as_str(),
               "config":desc_json(&a.config),"layers":[desc_json(&a.layer)],
               "annotations":{"which":"b"}}),
    );
    assert_ne!(a.manifest, b_manifest);
    let index = put_json(
        &src,
        MediaType::OciIndex,
        json!({"schemaVersion":2,"mediaType":MediaType::OciIndex.as_str(),
               "manifests":[desc_json(&a.manifest), desc_json(&b_manifest)]}),
    );
    let (sig, _) = referrer(&src, &a.manifest, "signature");
    let sources = [ClosureSource { store: &src, roots: vec![index.clone()] }];
    let c = closure(&sources, ClosureOptions { referrers: true, ..PLAIN }).unwrap();
    let level = |d: &Digest| c.blobs.iter().find(|x| &x.digest == d).map(|x| x.level);
    assert_eq!(level(&a.layer.digest), Some(0));
    assert_eq!(level(&a.config.digest), Some(0));
    assert_eq!(level(&a.manifest.digest), Some(1));
    assert_eq!(level(&b_manifest.digest), Some(1));
    assert_eq!(level(&index.digest), Some(2));
    assert_eq!(level(&sig.digest), Some(2), "a referrer is one above its subject");

    // The copy lands them all (several at a time between layouts).
    let dst = layout(&tmp, "dst");
    let lock = src.lock().unwrap();
    let mut idx = src.read_index().unwrap();
    ocil_layout::tags::set_tag(&mut idx, &index, "both").unwrap();
    src.write_index(&idx, &lock).unwrap();
    drop(lock);
    let r = Reference::Tag("both".into());
    let report = copy(&src, &dst, &opts(Some(&r))).unwrap();
    assert_eq!(report.copied, report.blobs);
    for b in &c.blobs {
        assert_eq!(dst.stat_blob(&b.digest).unwrap(), Some(b.size));
    }
}
