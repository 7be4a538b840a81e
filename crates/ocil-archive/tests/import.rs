//! `import` against archives built in memory: every format and compression, tags and
//! `force`, idempotence, and the hostile corpus (each refused with its code, the entry
//! named, and the destination left exactly as it was).

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_archive::{ArchiveView, Format, ImportOptions, import};
use ocil_layout::{ANNOTATION_CONTAINERD_NAME, Layout, TEMP_PREFIX};
use support::corpus::{self, Image, Tar, sha256};
use support::hostile;

fn fresh() -> (tempfile::TempDir, Layout) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
    (tmp, Layout::create(dir).unwrap())
}

/// Every file under `root`: relative path -> bytes.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn no_temps(snap: &BTreeMap<String, Vec<u8>>) {
    let temps: Vec<_> = snap.keys().filter(|k| k.contains(TEMP_PREFIX)).collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
}

#[test]
fn an_oci_archive_lands_with_its_digests_in_every_compression() {
    let img = Image::new("hello\n");
    let plain = img.oci_archive(Some("v1"));
    for (what, bytes) in
        [("none", plain.clone()), ("gzip", corpus::gzip(&plain)), ("zstd", corpus::zstd(&plain))]
    {
        let (tmp, layout) = fresh();
        let report = import(&bytes[..], &layout, &ImportOptions::default()).unwrap();
        assert_eq!(report.format, Format::OciArchive, "{what}");
        assert_eq!(report.compression.as_str(), what);
        assert_eq!(report.blobs_written, 3, "{what}");
        assert_eq!(report.images.len(), 1);
        assert_eq!(report.images[0].descriptor.digest.to_string(), sha256(&img.manifest));
        let index = layout.read_index().unwrap();
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(index.manifests[0].ref_name(), Some("v1"));
        assert_eq!(index.manifests[0].digest.to_string(), sha256(&img.manifest));
        for b in [&img.layer, &img.config, &img.manifest] {
            let d = sha256(b).parse().unwrap();
            assert_eq!(layout.read_blob(&d, 1 << 20).unwrap(), *b);
        }
        no_temps(&snapshot(tmp.path()));
    }
}

#[test]
fn a_docker_archive_becomes_an_oci_manifest_over_the_same_bytes() {
    let img = Image::new("hello\n");
    let (tmp, layout) = fresh();
    let bytes = img.docker_archive(&["example.com/app:v1", "example.com/app:latest"]);
    let report = import(&bytes[..], &layout, &ImportOptions::default()).unwrap();
    assert_eq!(report.format, Format::DockerArchive);
    // Config, layer, and the new manifest.
    assert_eq!(report.blobs_written, 3);
    let index = layout.read_index().unwrap();
    let tags: Vec<_> = index.manifests.iter().map(|d| d.ref_name().unwrap()).collect();
    assert_eq!(tags, ["v1", "latest"]);
    let names: Vec<_> =
        index.manifests.iter().map(|d| d.annotation(ANNOTATION_CONTAINERD_NAME).unwrap()).collect();
    assert_eq!(names, ["example.com/app:v1", "example.com/app:latest"]);
    let m = layout.read_blob(&index.manifests[0].digest, 1 << 20).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&m).unwrap();
    // The config digest is Docker's image ID: the sha256 of the config bytes.
    assert_eq!(m["config"]["digest"], sha256(&img.config));
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    assert_eq!(m["layers"][0]["digest"], sha256(&img.layer));
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(m["layers"][0]["size"], img.layer.len());
    no_temps(&snapshot(tmp.path()));

    // The same archive again changes nothing, and its manifest digest is stable.
    let before = snapshot(tmp.path());
    let again = import(&bytes[..], &layout, &ImportOptions::default()).unwrap();
    assert_eq!(again.blobs_written, 0);
    assert_eq!(again.images, report.images);
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn compressed_docker_layers_get_compressed_media_types() {
    let img = Image::new("hello\n");
    for (gz, mt) in [
        (corpus::gzip(&img.layer), "application/vnd.oci.image.layer.v1.tar+gzip"),
        (corpus::zstd(&img.layer), "application/vnd.oci.image.layer.v1.tar+zstd"),
    ] {
        let mut t = img.docker_tar_without_manifest();
        t.file("layer.tar.x", &gz);
        t.file("manifest.json", &img.manifest_json(&["app:v1"], "layer.tar.x"));
        let (_tmp, layout) = fresh();
        import(&t.finish()[..], &layout, &ImportOptions::default()).unwrap();
        let index = layout.read_index().unwrap();
        let m = layout.read_blob(&index.manifests[0].digest, 1 << 20).unwrap();
        let m: serde_json::Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(m["layers"][0]["mediaType"], mt);
        assert_eq!(m["layers"][0]["digest"], sha256(&gz));
    }
}

#[test]
fn links_inside_the_archive_are_followed() {
    let img = Image::new("hello\n");
    let mut t = img.docker_tar_without_manifest();
    // skopeo's style (`<v1id>/layer.tar -> ../<hex>.tar`) and a hardlink to it.
    t.symlink("v1id/layer.tar", &format!("../{}", img.docker_layer_path()));
    t.hardlink("hard.tar", "v1id/layer.tar");
    t.file("manifest.json", &img.manifest_json(&["app:v1"], "hard.tar"));
    let (_tmp, layout) = fresh();
    import(&t.finish()[..], &layout, &ImportOptions::default()).unwrap();
    let index = layout.read_index().unwrap();
    let m = layout.read_blob(&index.manifests[0].digest, 1 << 20).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&m).unwrap();
    assert_eq!(m["layers"][0]["digest"], sha256(&img.layer));
}

#[test]
fn a_docker_25_archive_prefers_index_json_and_fills_in_repo_tags() {
    let img = Image::new("hello\n");
    // index.json without a ref name: the RepoTags of the matching manifest.json entry.
    let mut t = img.oci_tar(None);
    t.file(
        "manifest.json",
        format!(
            r#"[{{"Config":"blobs/sha256/{}","RepoTags":["docker.io/library/app:v2"],"Layers":["blobs/sha256/{}"]}}]"#,
            corpus::hex(&img.config),
            corpus::hex(&img.layer)
        )
        .as_bytes(),
    );
    let (_tmp, layout) = fresh();
    let report = import(&t.finish()[..], &layout, &ImportOptions::default()).unwrap();
    assert_eq!(report.format, Format::DockerOciArchive);
    let index = layout.read_index().unwrap();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(index.manifests[0].ref_name(), Some("v2"));
    assert_eq!(
        index.manifests[0].annotation(ANNOTATION_CONTAINERD_NAME),
        Some("docker.io/library/app:v2")
    );
    // The OCI manifest is kept, not rebuilt.
    assert_eq!(index.manifests[0].digest.to_string(), sha256(&img.manifest));
}

#[test]
fn tags_that_name_other_images_need_force() {
    let a = Image::new("a\n");
    let b = Image::new("b\n");
    let (tmp, layout) = fresh();
    import(&a.oci_archive(Some("v1"))[..], &layout, &ImportOptions::default()).unwrap();
    let before = snapshot(tmp.path());
    let err =
        import(&b.oci_archive(Some("v1"))[..], &layout, &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ocil_archive::Error::TagConflict { .. }), "{err:?}");
    assert!(err.to_string().contains("tag `v1` already names"), "{err}");
    assert_eq!(err.code(), None);
    assert_eq!(snapshot(tmp.path()), before);

    import(
        &b.oci_archive(Some("v1"))[..],
        &layout,
        &ImportOptions { force: true, ..Default::default() },
    )
    .unwrap();
    let index = layout.read_index().unwrap();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(index.manifests[0].digest.to_string(), sha256(&b.manifest));
}

#[test]
fn untagged_entries_are_added_once() {
    let img = Image::new("hello\n");
    let (_tmp, layout) = fresh();
    for _ in 0..2 {
        import(&img.oci_archive(None)[..], &layout, &ImportOptions::default()).unwrap();
    }
    let index = layout.read_index().unwrap();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(index.manifests[0].ref_name(), None);
}

#[test]
fn two_repositories_with_one_tag_keep_both_names_and_one_name_twice_requires_force() {
    let a = Image::new("a\n");
    let b = Image::new("b\n");
    let archive = |name_a: &str, name_b: &str| two_docker_images_named(&a, &b, name_a, name_b);
    // `docker save example.com/a:latest example.com/b:latest`: two names, one tag.
    let (_tmp, layout) = fresh();
    let report = import(
        &archive("example.com/a:latest", "example.com/b:latest")[..],
        &layout,
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(report.images.len(), 2);
    let index = layout.read_index().unwrap();
    assert_eq!(index.manifests.len(), 2, "{index:?}");
    for (e, name) in index.manifests.iter().zip(["example.com/a:latest", "example.com/b:latest"]) {
        assert_eq!(e.ref_name(), Some("latest"));
        assert_eq!(e.annotation(ANNOTATION_CONTAINERD_NAME), Some(name));
    }
    let by = |r: &str| {
        ocil_layout::reference::resolve_entry(&index, &ocil_layout::Reference::Tag(r.into()))
    };
    assert!(matches!(by("latest"), Err(ocil_layout::Error::AmbiguousRef { .. })));
    assert_eq!(by("example.com/b:latest").unwrap().unwrap().0, 1);

    // One full name for two different images: only --force takes it (the last wins; the
    // first stays, untagged).
    let bytes = archive("a:latest", "a:latest");
    let (tmp, layout) = fresh();
    let err = import(&bytes[..], &layout, &ImportOptions::default()).unwrap_err();
    assert_eq!(err.code(), Some("DUPLICATE_TAG"), "{err}");
    no_temps(&snapshot(tmp.path()));
    let report =
        import(&bytes[..], &layout, &ImportOptions { force: true, ..Default::default() }).unwrap();
    assert_eq!(report.images.len(), 2);
    let index = layout.read_index().unwrap();
    assert_eq!(index.manifests.len(), 2);
    assert_eq!(index.manifests[0].ref_name(), None);
    assert_eq!(index.manifests[1].annotation(ANNOTATION_CONTAINERD_NAME), Some("a:latest"));
}

#[test]
fn a_repo_tag_without_a_tag_is_its_own_tag() {
    let img = Image::new("hello\n");
    let (_tmp, layout) = fresh();
    import(&img.docker_archive(&["test_image_2"])[..], &layout, &ImportOptions::default()).unwrap();
    assert_eq!(layout.read_index().unwrap().manifests[0].ref_name(), Some("test_image_2"));
}

#[test]
fn an_empty_input_and_an_empty_tar_are_refused() {
    let (_tmp, layout) = fresh();
    let err = import(&b""[..], &layout, &ImportOptions::default()).unwrap_err();
    assert_eq!(err.code(), Some("ARCHIVE_EMPTY"), "{err}");
    let err = import(&Tar::new().finish()[..], &layout, &ImportOptions::default()).unwrap_err();
    assert_eq!(err.code(), Some("NOT_AN_IMAGE_ARCHIVE"), "{err}");
    let err = import(&b"hello, not a tar"[..], &layout, &ImportOptions::default()).unwrap_err();
    assert_eq!(err.code(), Some("NOT_A_TAR"), "{err}");
}

#[test]
fn the_hostile_corpus_is_refused_and_leaves_the_destination_as_it_was() {
    let corpus = hostile::corpus();
    assert!(corpus.len() >= 20, "{}", corpus.len());
    let (tmp, layout) = fresh();
    // A destination with content, so "unchanged" means something.
    import(
        &Image::new("existing\n").oci_archive(Some("keep"))[..],
        &layout,
        &ImportOptions::default(),
    )
    .unwrap();
    let before = snapshot(tmp.path());
    let mut failures = Vec::new();
    for h in &corpus {
        match import(&h.bytes()[..], &layout, &ImportOptions::default()) {
            Ok(r) => failures.push(format!("{}: imported {:?}", h.name, r.images)),
            Err(e) => check_error(&mut failures, h, &e),
        }
        if snapshot(tmp.path()) != before {
            failures.push(format!("{}: the destination changed", h.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn chain(e: &ocil_archive::Error) -> String {
    std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn check_error(failures: &mut Vec<String>, h: &hostile::Hostile, e: &ocil_archive::Error) {
    let chain = chain(e);
    if e.code() != Some(h.code.as_str()) {
        failures.push(format!("{}: code {:?}, want {}: {chain}", h.name, e.code(), h.code));
    }
    if !chain.contains(&h.mentions) {
        failures.push(format!("{}: `{chain}` does not mention {}", h.name, h.mentions));
    }
}

#[test]
fn the_hostile_corpus_is_refused_in_place_with_the_same_errors() {
    let mut failures = Vec::new();
    for h in &hostile::corpus() {
        let file = cap_std::fs::File::from_std(std::fs::File::open(&h.path).unwrap());
        // The view plans lazily: listing reads what the images use.
        let result = ArchiveView::open(file).and_then(|v| v.verify_documents().map(|_| v));
        match (result, h.view_refuses) {
            (Ok(_), false) => {}
            (Ok(v), true) => failures.push(format!("{}: read in place: {:?}", h.name, v.index())),
            (Err(e), true) => check_error(&mut failures, h, &e),
            (Err(e), false) => {
                failures.push(format!("{}: refused in place: {}", h.name, chain(&e)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_header_field_holding_text_is_refused_in_our_words_without_echoing_it() {
    const SECRET: &[u8] = b"SECRET-TEXT";
    let mut t = Tar::new();
    t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut bytes = t.finish();
    bytes.truncate(bytes.len() - 1024);
    bytes.extend_from_slice(&corpus::header_with_text_in_size("index.json", SECRET));
    bytes.extend_from_slice(&[0u8; 1024]);
    let want = "cannot read the archive (after entry `oci-layout`): invalid size field in a header";
    let check = |what: &str, e: &ocil_archive::Error| {
        assert!(
            matches!(
                e,
                ocil_archive::Error::Malformed {
                    fault: ocil_archive::TarFault::InvalidField("size"),
                    ..
                }
            ),
            "{what}: {e:?}"
        );
        assert_eq!(e.code(), Some("ARCHIVE_UNREADABLE"), "{what}");
        assert_eq!(chain(e), want, "{what}");
    };
    let (tmp, layout) = fresh();
    for (what, input) in [("plain", bytes.clone()), ("gzip", corpus::gzip(&bytes))] {
        check(what, &import(&input[..], &layout, &ImportOptions::default()).unwrap_err());
        check(what, &ocil_archive::scan(&input[..]).unwrap_err());
        // In place: a plain file is indexed by seeking, a compressed one streamed.
        let path = tmp.path().join(format!("hostile-{what}.tar"));
        std::fs::write(&path, &input).unwrap();
        let file = cap_std::fs::File::from_std(std::fs::File::open(&path).unwrap());
        check(what, &ArchiveView::open(file).unwrap_err());
    }
    no_temps(&snapshot(tmp.path()));

    // As the first entry, the same; as a legacy archive's layer, scan says why in our words.
    let mut layer = corpus::header_with_text_in_size("etc/passwd", SECRET);
    layer.extend_from_slice(&[0u8; 1024]);
    let e = import(&layer[..], &layout, &ImportOptions::default()).unwrap_err();
    assert_eq!(chain(&e), "cannot read the archive: invalid size field in a header");
    let mut legacy = Tar::new();
    legacy.file("repositories", b"{}").file("abc/json", b"{}").file("abc/layer.tar", &layer);
    let scan = ocil_archive::scan(&legacy.finish()[..]).unwrap();
    assert_eq!(scan.v1_layers.len(), 1);
    assert_eq!(scan.v1_layers[0].result, Err("invalid size field in a header".to_owned()));
}

#[test]
fn scan_describes_a_plain_layer_and_its_unsafe_names() {
    let mut t = Tar::new();
    t.dir("./");
    t.file("./a", b"a");
    t.raw(b"../up", tar::EntryType::Regular, None, b"u");
    t.raw(b"/abs", tar::EntryType::Regular, None, b"b");
    t.symlink("s", "/etc/passwd");
    let bytes = t.finish();
    let s = ocil_archive::scan(&corpus::zstd(&bytes)[..]).unwrap();
    assert_eq!(s.kind, ocil_archive::ArchiveKind::Plain);
    assert_eq!(s.compression.as_str(), "zstd");
    assert_eq!(s.entries, 5);
    assert_eq!((s.kinds.files, s.kinds.dirs, s.kinds.symlinks), (3, 1, 1));
    let names: Vec<_> = s.unsafe_entries.iter().map(|u| u.entry.as_str()).collect();
    assert_eq!(names, ["../up", "/abs"]);
    // The diff_id covers the whole uncompressed stream, end marker included.
    assert_eq!(s.diff_id.to_string(), sha256(&bytes));
}

/// A docker-save archive with two images, `a:latest` and `example.com/b:v2`.
fn two_docker_images(a: &Image, b: &Image) -> Vec<u8> {
    two_docker_images_named(a, b, "a:latest", "example.com/b:v2")
}

/// A docker-save archive with two images under these names.
fn two_docker_images_named(a: &Image, b: &Image, name_a: &str, name_b: &str) -> Vec<u8> {
    let mut t = a.docker_tar_without_manifest();
    t.file(&format!("{}.json", corpus::hex(&b.config)), &b.config);
    t.file(&b.docker_layer_path(), &b.layer);
    let entry = |img: &Image, name: &str| {
        format!(
            r#"{{"Config":"{}.json","RepoTags":["{name}"],"Layers":["{}"]}}"#,
            corpus::hex(&img.config),
            img.docker_layer_path()
        )
    };
    let mj = format!("[{},{}]", entry(a, name_a), entry(b, name_b));
    t.file("manifest.json", mj.as_bytes());
    t.finish()
}

/// An OCI archive with two images, tagged `a` and `b`.
fn two_oci_images(a: &Image, b: &Image) -> Vec<u8> {
    let mut t = Tar::new();
    t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let entry = |img: &Image, tag: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}"#,
            sha256(&img.manifest),
            img.manifest.len()
        )
    };
    let index =
        format!(r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#, entry(a, "a"), entry(b, "b"));
    t.file("index.json", index.as_bytes());
    for img in [a, b] {
        for blob in [&img.layer, &img.config, &img.manifest] {
            t.file(&format!("blobs/sha256/{}", corpus::hex(blob)), blob);
        }
    }
    t.finish()
}

fn opts(image: Option<&str>, tag: Option<&str>) -> ImportOptions {
    ImportOptions {
        image: image.map(|i| {
            ocil_layout::Reference::parse(i).unwrap_or(ocil_layout::Reference::Tag(i.into()))
        }),
        tag: tag.map(str::to_owned),
        ..Default::default()
    }
}

#[test]
fn a_tag_replaces_the_tags_and_names_of_the_only_image() {
    let img = Image::new("hello\n");
    for bytes in
        [img.oci_archive(Some("v1")), img.docker_archive(&["example.com/app:v1", "app:v2"])]
    {
        let (_tmp, layout) = fresh();
        let report = import(&bytes[..], &layout, &opts(None, Some("app"))).unwrap();
        assert_eq!(report.images.len(), 1);
        assert_eq!(report.images[0].tags.len(), 1);
        let index = layout.read_index().unwrap();
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(index.manifests[0].ref_name(), Some("app"));
        assert_eq!(index.manifests[0].annotation(ANNOTATION_CONTAINERD_NAME), None);
    }
    // An untagged entry gets the tag too.
    let (_tmp, layout) = fresh();
    import(&img.oci_archive(None)[..], &layout, &opts(None, Some("app"))).unwrap();
    assert_eq!(layout.read_index().unwrap().manifests[0].ref_name(), Some("app"));
}

#[test]
fn a_tag_for_several_images_requires_a_choice() {
    let (a, b) = (Image::new("a\n"), Image::new("b\n"));
    for bytes in [two_docker_images(&a, &b), two_oci_images(&a, &b)] {
        let (tmp, layout) = fresh();
        let err = import(&bytes[..], &layout, &opts(None, Some("app"))).unwrap_err();
        assert!(matches!(err, ocil_archive::Error::SeveralImages { count: 2, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("holds 2 images") && msg.contains("--image"), "{msg}");
        assert_eq!(err.code(), None);
        let snap = snapshot(tmp.path());
        no_temps(&snap);
        assert!(layout.read_index().unwrap().manifests.is_empty());
    }
}

#[test]
fn choosing_an_image_imports_only_what_it_reaches() {
    let (a, b) = (Image::new("a\n"), Image::new("b\n"));
    let blobs = |layout: &Layout| {
        let mut found: Vec<String> =
            layout.list_blobs().unwrap().blobs.iter().map(|b| b.digest.to_string()).collect();
        found.sort();
        found
    };
    let mut want_b: Vec<String> = [&b.layer, &b.config].iter().map(|x| sha256(x)).collect();
    // docker-save: by full name, by the Docker-normalised name, by tag.
    for image in ["example.com/b:v2", "v2"] {
        let (_tmp, layout) = fresh();
        let report =
            import(&two_docker_images(&a, &b)[..], &layout, &opts(Some(image), Some("app")))
                .unwrap();
        assert_eq!(report.images.len(), 1, "{image}");
        let index = layout.read_index().unwrap();
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(index.manifests[0].ref_name(), Some("app"));
        let mut want = want_b.clone();
        want.push(index.manifests[0].digest.to_string());
        want.sort();
        assert_eq!(blobs(&layout), want, "{image}");
    }
    let (_tmp, layout) = fresh();
    import(
        &two_docker_images(&a, &b)[..],
        &layout,
        &opts(Some("docker.io/library/a:latest"), None),
    )
    .unwrap();
    let index = layout.read_index().unwrap();
    assert_eq!(index.manifests.len(), 1);
    // Without a tag, the image keeps the archive's.
    assert_eq!(index.manifests[0].ref_name(), Some("latest"));
    assert_eq!(index.manifests[0].annotation(ANNOTATION_CONTAINERD_NAME), Some("a:latest"));

    // OCI: by tag and by digest; only the chosen graph lands.
    want_b.push(sha256(&b.manifest));
    want_b.sort();
    for image in ["b".to_owned(), sha256(&b.manifest)] {
        let (_tmp, layout) = fresh();
        import(&two_oci_images(&a, &b)[..], &layout, &opts(Some(&image), None)).unwrap();
        let index = layout.read_index().unwrap();
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(index.manifests[0].ref_name(), Some("b"));
        assert_eq!(blobs(&layout), want_b, "{image}");
    }
}

#[test]
fn choosing_an_image_the_archive_lacks_lists_what_it_holds() {
    let (a, b) = (Image::new("a\n"), Image::new("b\n"));
    let (tmp, layout) = fresh();
    let err =
        import(&two_docker_images(&a, &b)[..], &layout, &opts(Some("c:latest"), None)).unwrap_err();
    assert!(matches!(err, ocil_archive::Error::ImageNotInArchive { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the archive has no image `c:latest` (it holds `a:latest`; `example.com/b:v2`)"
    );
    no_temps(&snapshot(tmp.path()));
    assert!(layout.read_index().unwrap().manifests.is_empty());
}
