//! Pushes to the scripted registry (`fake.rs` serving `memory.rs`): the order of requests,
//! uploads that the registry answers oddly (a `PATCH` whose `Range` does not advance, a
//! relative `Location` with a query, a 5xx mid-upload, a refused `PATCH`), a source that
//! lies, and referrers through the referrers API, the fallback tag, and a fallback tag that
//! answers with the subject itself.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use crate::fake::{Fake, Image, MANIFEST_TYPE, Reply, Req, digest};
use crate::memory::Memory;
use crate::support::{Out, assert_clean, ocil, ocil_ok, tags};

/// A layout holding `img` tagged `v1` (written by hand, not by our library), with `extra`
/// documents in its blob store (referrers, found by their `subject`).
fn image_layout(dir: &Path, img: &Image, extra: &[Vec<u8>]) {
    let blobs = dir.join("blobs/sha256");
    fs_err::create_dir_all(&blobs).unwrap();
    fs_err::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut all: Vec<&Vec<u8>> = img.blobs.values().collect();
    all.push(&img.manifest);
    all.extend(extra);
    for b in all {
        fs_err::write(blobs.join(digest(b).trim_start_matches("sha256:")), b).unwrap();
    }
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": MANIFEST_TYPE,
        "digest": img.manifest_digest, "size": img.manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    fs_err::write(dir.join("index.json"), index.to_string()).unwrap();
}

/// A referrer of `img`'s manifest: an artifact manifest of type `kind` with one blob, and
/// that blob's bytes.
fn referrer(img: &Image, kind: &str) -> (Vec<u8>, Vec<u8>) {
    let blob = format!("{{\"signed\":\"{kind}\"}}").into_bytes();
    let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": kind,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
            "digest": digest(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": digest(&blob),
            "size": blob.len()}],
        "subject": {"mediaType": MANIFEST_TYPE, "digest": img.manifest_digest,
            "size": img.manifest.len()}});
    (serde_json::to_vec(&manifest).unwrap(), blob)
}

/// `ocil push DIR:v1 HOST/t:v1` (and `extra` arguments).
fn push(fake: &Fake, dir: &Path, extra: &[&str]) -> Out {
    let mut args =
        vec!["push".to_owned(), format!("{}:v1", dir.display()), format!("{}/t:v1", fake.host())];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    ocil(args)
}

/// The registry holds `img` tagged `t:v1`, every blob exact.
fn holds(mem: &Memory, img: &Image) {
    assert_eq!(mem.tagged("t", "v1"), Some(img.manifest_digest.clone()));
    assert_eq!(mem.manifest(&img.manifest_digest), Some(img.manifest.clone()));
    let blobs = mem.blobs.lock().unwrap();
    for (d, b) in &img.blobs {
        assert_eq!(blobs.get(d), Some(b), "blob {d}");
    }
}

/// A fake serving `mem`, through `wrap` (which may answer instead).
fn serve(
    mem: &Arc<Memory>,
    wrap: impl Fn(&Req, &Memory) -> Option<Reply> + Send + Sync + 'static,
) -> Fake {
    let mem = mem.clone();
    Fake::start(move |r| wrap(r, &mem).unwrap_or_else(|| mem.serve(r)))
}

fn no_content_range(reqs: &[Req]) {
    assert!(reqs.iter().all(|r| r.header("content-range").is_none()), "a Content-Range was sent");
}

#[test]
fn blobs_then_the_manifest_then_the_tag() {
    let img = Image::new(64 * 1024);
    let mem = Arc::new(Memory::new(false));
    let fake = serve(&mem, |_, _| None);
    let tmp = tempfile::tempdir().unwrap();
    image_layout(tmp.path(), &img, &[]);
    let out = push(&fake, tmp.path(), &["--json"]);
    assert!(out.ok(), "{}", out.stderr);
    holds(&mem, &img);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["uploaded"], 3, "{v}");
    assert_eq!(v["images"][0]["digest"], img.manifest_digest);
    let reqs = fake.requests();
    no_content_range(&reqs);
    let at = |pred: &dyn Fn(&Req) -> bool| reqs.iter().position(pred).unwrap();
    let last_blob = reqs.iter().rposition(|r| r.path.contains("digest=")).unwrap();
    let by_digest = at(&|r| r.method == "PUT" && r.path.ends_with(&img.manifest_digest));
    let by_tag = at(&|r| r.method == "PUT" && r.path == "/v2/t/manifests/v1");
    assert!(last_blob < by_digest && by_digest < by_tag, "blobs, manifest, tag: {reqs:#?}");
    // One streamed PATCH per blob, with the whole blob; the PUT that ends it has no body.
    let patches: Vec<&Req> = reqs.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 2);
    for p in &patches {
        assert!(img.blobs.contains_key(&digest(&p.body)), "a PATCH of a whole blob");
    }
    // Again: every blob and the manifest are there (HEAD); only the tag is PUT.
    let before = reqs.len();
    assert!(push(&fake, tmp.path(), &[]).ok());
    let again: Vec<(String, String)> =
        fake.requests()[before..].iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert!(
        again.iter().all(|(m, p)| m == "HEAD" || p == "/v2/" || p == "/v2/t/manifests/v1"),
        "{again:?}"
    );
}

#[test]
fn a_patch_whose_range_does_not_advance_is_not_believed() {
    let img = Image::new(300 * 1024);
    let mem = Arc::new(Memory::new(false));
    let fake = serve(&mem, |r, mem| {
        (r.method == "PATCH").then(|| {
            let mut reply = mem.serve(r);
            reply.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("range"));
            reply.header("Range", "0-0")
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    image_layout(tmp.path(), &img, &[]);
    let out = push(&fake, tmp.path(), &[]);
    assert!(out.ok(), "{}", out.stderr);
    holds(&mem, &img);
    let reqs = fake.requests();
    assert_eq!(reqs.iter().filter(|r| r.method == "PATCH").count(), 2, "no PATCH sent again");
    no_content_range(&reqs);
}

#[test]
fn a_relative_location_with_a_query_is_followed() {
    let img = Image::new(8 * 1024);
    let mem = Arc::new(Memory::new(false));
    let fake = serve(&mem, |r, mem| {
        (r.method == "POST" || r.method == "PATCH").then(|| {
            let mut reply = mem.serve(r);
            for (k, v) in &mut reply.headers {
                if k.eq_ignore_ascii_case("location") {
                    // `/v2/t/blobs/uploads/u0?_state=u0` -> `u0?_state=u0&step=...`.
                    let rel = v.rsplit('/').next().unwrap().to_owned();
                    *v = format!("{rel}&step={}", r.method.to_lowercase());
                }
            }
            reply
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    image_layout(tmp.path(), &img, &[]);
    let out = push(&fake, tmp.path(), &[]);
    assert!(out.ok(), "{}", out.stderr);
    holds(&mem, &img);
    let reqs = fake.requests();
    for r in reqs.iter().filter(|r| r.method == "PATCH") {
        assert!(r.path.starts_with("/v2/t/blobs/uploads/u") && r.path.ends_with("&step=post"));
    }
    let ends: Vec<&Req> =
        reqs.iter().filter(|r| r.method == "PUT" && r.path.contains("digest=")).collect();
    assert_eq!(ends.len(), 2);
    for r in ends {
        assert!(r.path.contains("?_state=u") && r.path.contains("&step=patch&digest=sha256%3A"));
    }
}

#[test]
fn a_5xx_mid_upload_starts_a_fresh_upload() {
    let img = Image::new(256 * 1024);
    let layer = img.blobs[&img.layer_digest].len();
    let mem = Arc::new(Memory::new(false));
    let failed = AtomicUsize::new(0);
    let fake = serve(&mem, move |r, _| {
        // The first PATCH of the layer fails after its bytes came (nothing stored).
        (r.method == "PATCH" && r.body.len() == layer && failed.fetch_add(1, Ordering::SeqCst) == 0)
            .then(|| Reply::new(500, "oops"))
    });
    let tmp = tempfile::tempdir().unwrap();
    image_layout(tmp.path(), &img, &[]);
    let out = push(&fake, tmp.path(), &[]);
    assert!(out.ok(), "{}", out.stderr);
    holds(&mem, &img);
    let reqs = fake.requests();
    no_content_range(&reqs);
    // A fresh session (a third POST), and the whole layer again in its PATCH.
    assert_eq!(reqs.iter().filter(|r| r.method == "POST").count(), 3);
    let layer_patches = reqs.iter().filter(|r| r.method == "PATCH" && r.body.len() == layer);
    assert_eq!(layer_patches.count(), 2);
    assert_clean(tmp.path());
}

#[test]
fn a_refused_patch_falls_back_to_a_monolithic_put() {
    let img = Image::new(16 * 1024);
    let mem = Arc::new(Memory::new(false));
    let fake = serve(&mem, |r, _| {
        (r.method == "PATCH").then(|| {
            Reply::new(405, r#"{"errors":[{"code":"UNSUPPORTED","message":"no PATCH here"}]}"#)
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    image_layout(tmp.path(), &img, &[]);
    let out = push(&fake, tmp.path(), &[]);
    assert!(out.ok(), "{}", out.stderr);
    holds(&mem, &img);
    let reqs = fake.requests();
    let puts: Vec<&Req> =
        reqs.iter().filter(|r| r.method == "PUT" && r.path.contains("digest=")).collect();
    assert_eq!(puts.len(), 2);
    for p in puts {
        assert!(img.blobs.contains_key(&digest(&p.body)), "the PUT carries the whole blob");
    }
}

#[test]
fn a_source_blob_that_lies_is_not_pushed() {
    let img = Image::new(64 * 1024);
    let mem = Arc::new(Memory::new(false));
    let fake = serve(&mem, |_, _| None);
    let tmp = tempfile::tempdir().unwrap();
    image_layout(tmp.path(), &img, &[]);
    let path = tmp.path().join("blobs/sha256").join(img.layer_digest.trim_start_matches("sha256:"));
    let mut bytes = fs_err::read(&path).unwrap();
    bytes[100] ^= 1;
    fs_err::write(&path, bytes).unwrap();
    let out = push(&fake, tmp.path(), &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains(&img.layer_digest), "the blob is named: {}", out.stderr);
    assert!(!mem.blobs.lock().unwrap().contains_key(&img.layer_digest));
    assert!(mem.tagged("t", "v1").is_none(), "no tag");
    assert!(mem.manifest(&img.manifest_digest).is_none(), "no manifest over a missing blob");
}

#[test]
fn referrers_through_the_api() {
    let img = Image::new(4 * 1024);
    let (sig, sig_blob) = referrer(&img, "application/vnd.example.signature");
    let mem = Arc::new(Memory::new(true));
    let fake = serve(&mem, |_, _| None);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    image_layout(&src, &img, &[sig.clone(), sig_blob, b"{}".to_vec()]);
    let out = push(&fake, &src, &[]);
    assert!(out.ok(), "{}", out.stderr);
    assert!(out.stdout.contains("1 referrer(s)"), "{}", out.stdout);
    assert_eq!(mem.manifest(&digest(&sig)), Some(sig.clone()));
    let fallback = format!("sha256-{}", img.manifest_digest.trim_start_matches("sha256:"));
    assert!(mem.tagged("t", &fallback).is_none(), "the registry answered OCI-Subject");
    // The subject's PUT came before its referrer's.
    let reqs = fake.requests();
    let at = |d: &str| reqs.iter().position(|r| r.method == "PUT" && r.path.ends_with(d)).unwrap();
    assert!(at(&img.manifest_digest) < at(&digest(&sig)));

    // Pulled back through the API.
    let dst = tmp.path().join("dst");
    let before = reqs.len();
    ocil_ok(["pull".to_owned(), format!("{}/t:v1", fake.host()), dst.display().to_string()]);
    let asked = fake.requests()[before..]
        .iter()
        .any(|r| r.path == format!("/v2/t/referrers/{}", img.manifest_digest));
    assert!(asked, "the referrers API was asked");
    let listed = ocil_ok(["referrers".to_owned(), format!("{}:v1", dst.display())]);
    assert!(listed.stdout.contains(&digest(&sig)), "{}", listed.stdout);
    assert_clean(&dst);
    // --referrers none: the image alone.
    let bare = tmp.path().join("bare");
    ocil_ok([
        "pull".to_owned(),
        format!("{}/t:v1", fake.host()),
        bare.display().to_string(),
        "--referrers".into(),
        "none".into(),
    ]);
    assert!(!bare.join("blobs/sha256").join(digest(&sig).trim_start_matches("sha256:")).exists());
}

#[test]
fn referrers_through_the_fallback_tag_are_merged() {
    let img = Image::new(4 * 1024);
    let (sig, sig_blob) = referrer(&img, "application/vnd.example.signature");
    let (sbom, sbom_blob) = referrer(&img, "application/vnd.example.sbom");
    let mem = Arc::new(Memory::new(false));
    let fake = serve(&mem, |_, _| None);
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    image_layout(&one, &img, &[sig.clone(), sig_blob.clone(), b"{}".to_vec()]);
    assert!(push(&fake, &one, &[]).ok());
    let two = tmp.path().join("two");
    image_layout(&two, &img, &[sbom.clone(), sbom_blob, b"{}".to_vec()]);
    assert!(push(&fake, &two, &[]).ok());
    // Pushed again: listed once.
    assert!(push(&fake, &one, &[]).ok());
    let fallback = format!("sha256-{}", img.manifest_digest.trim_start_matches("sha256:"));
    let index = mem.manifest(&mem.tagged("t", &fallback).expect("the fallback tag")).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![digest(&sig), digest(&sbom)]);
    assert_eq!(index["manifests"][1]["artifactType"], "application/vnd.example.sbom");
    // Pulled back: both, found through the tag (the API answers 404).
    let dst = tmp.path().join("dst");
    ocil_ok(["pull".to_owned(), format!("{}/t:v1", fake.host()), dst.display().to_string()]);
    let out = ocil_ok(["referrers".to_owned(), format!("{}:v1", dst.display())]);
    assert!(out.stdout.contains(&digest(&sig)) && out.stdout.contains(&digest(&sbom)));
    assert_clean(&dst);
    assert_eq!(tags(&dst), vec![("v1".to_owned(), img.manifest_digest.clone())]);
}

#[test]
fn a_fallback_tag_that_answers_with_the_subject_is_no_index() {
    let img = Image::new(4 * 1024);
    let (sig, sig_blob) = referrer(&img, "application/vnd.example.signature");
    let mem = Arc::new(Memory::new(false));
    let fallback =
        format!("/v2/t/manifests/sha256-{}", img.manifest_digest.trim_start_matches("sha256:"));
    let subject = img.manifest.clone();
    let fake = serve(&mem, move |r, _| {
        // As GitLab does: the tag `sha256-<hex>` read as the digest it spells.
        (r.path == fallback && r.method != "PUT").then(|| {
            Reply::new(200, subject.clone())
                .header("Content-Type", MANIFEST_TYPE)
                .header("Docker-Content-Digest", digest(&subject))
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    image_layout(&src, &img, &[sig.clone(), sig_blob, b"{}".to_vec()]);
    let out = push(&fake, &src, &[]);
    assert!(out.ok(), "{}", out.stderr);
    // The index PUT under the tag lists the referrer alone (the subject was not merged in).
    let tag = format!("sha256-{}", img.manifest_digest.trim_start_matches("sha256:"));
    let index = mem.manifest(&mem.tagged("t", &tag).unwrap()).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], digest(&sig));
    // A pull finds no referrer there, and no error.
    let dst = tmp.path().join("dst");
    let out =
        ocil_ok(["pull".to_owned(), format!("{}/t:v1", fake.host()), dst.display().to_string()]);
    assert!(!out.stdout.contains("referrer"), "{}", out.stdout);
    assert_eq!(tags(&dst), vec![("v1".to_owned(), img.manifest_digest.clone())]);
    assert_clean(&dst);
}

/// A layout holding several images, tagged (written by hand).
fn images_layout(dir: &Path, images: &[(&str, &Image)]) {
    let mut entries = Vec::new();
    for (tag, img) in images {
        image_layout(dir, img, &[]);
        entries.push(json!({"mediaType": MANIFEST_TYPE, "digest": img.manifest_digest,
            "size": img.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}}));
    }
    let index = json!({"schemaVersion": 2, "manifests": entries});
    fs_err::write(dir.join("index.json"), index.to_string()).unwrap();
}

#[test]
fn every_image_under_its_own_tag_and_keep_going() {
    let (a, b, c) = (Image::new(1000), Image::new(2000), Image::new(3000));
    let mem = Arc::new(Memory::new(false));
    let fake = serve(&mem, |_, _| None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("many");
    images_layout(&dir, &[("v1", &a), ("v3", &c), ("v2", &b)]);
    // v3's layer is corrupt in the layout.
    let layer = dir.join("blobs/sha256").join(c.layer_digest.trim_start_matches("sha256:"));
    let mut bytes = fs_err::read(&layer).unwrap();
    bytes[600] ^= 1;
    fs_err::write(&layer, bytes).unwrap();
    let repo = format!("{}/t", fake.host());
    // A tag in REF names one image: SRC must then name it too.
    let out = ocil(["push".to_owned(), dir.display().to_string(), format!("{repo}:x")]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("holds 3 images"), "{}", out.stderr);
    // Without --keep-going: v1, then v3 fails, v2 is not tried.
    let out = ocil(["push".to_owned(), dir.display().to_string(), repo.clone()]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains(&c.layer_digest), "{}", out.stderr);
    assert_eq!(mem.tagged("t", "v1"), Some(a.manifest_digest.clone()));
    assert_eq!(mem.tagged("t", "v2"), None);
    // With it: v2 too, exit 1, a report per image.
    let out = ocil([
        "push".to_owned(),
        dir.display().to_string(),
        repo,
        "--keep-going".into(),
        "--json".into(),
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["pushed"].as_u64(), v["failed"].as_u64()), (Some(2), Some(1)), "{v}");
    let failed = &v["images"][1];
    assert_eq!(failed["ok"], false);
    assert!(failed["source"].as_str().unwrap().ends_with(":v3"));
    assert!(failed["error"].as_str().unwrap().contains(&c.layer_digest), "{failed}");
    assert_eq!(mem.tagged("t", "v2"), Some(b.manifest_digest.clone()));
    assert_eq!(mem.tagged("t", "v3"), None);
}
