//! `ArchiveView` (archives read in place) against `import` as the truth: for every format
//! and compression, the view's index, `ls` rows and `inspect` summaries are those of the
//! layout an import into an empty directory gives, and every blob reads back verified.

mod support;

use std::io::Write;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_archive::{ArchiveView, ImportOptions, import};
use ocil_layout::Layout;
use support::corpus::{self, Image};

/// The archives: OCI, docker-save (two tags), Docker 25+ dual, and two images in one.
fn archives() -> Vec<(&'static str, Vec<u8>)> {
    let a = Image::new("a\n");
    let b = Image::new("b\n");
    let mut dual = a.oci_tar(None);
    dual.file(
        "manifest.json",
        format!(
            r#"[{{"Config":"blobs/sha256/{}","RepoTags":["docker.io/library/app:v2"],"Layers":["blobs/sha256/{}"]}}]"#,
            corpus::hex(&a.config),
            corpus::hex(&a.layer)
        )
        .as_bytes(),
    );
    let mut two = a.docker_tar_without_manifest();
    two.file(&format!("{}.json", corpus::hex(&b.config)), &b.config);
    two.file("b/layer.tar.gz", &corpus::gzip(&b.layer));
    let entry = |img: &Image, name: &str, layer: &str| {
        format!(
            r#"{{"Config":"{}.json","RepoTags":["{name}"],"Layers":["{layer}"]}}"#,
            corpus::hex(&img.config)
        )
    };
    let mj = format!(
        "[{},{}]",
        entry(&a, "a:latest", &a.docker_layer_path()),
        entry(&b, "example.com:5000/b:v1", "b/layer.tar.gz")
    );
    two.file("manifest.json", mj.as_bytes());
    vec![
        ("oci", a.oci_archive(Some("v1"))),
        ("oci-untagged", b.oci_archive(None)),
        ("docker", a.docker_archive(&["example.com/app:v1", "example.com/app:latest"])),
        ("dual", dual.finish()),
        ("two-images", two.finish()),
    ]
}

fn open(path: &std::path::Path) -> cap_std::fs::File {
    cap_std::fs::File::from_std(std::fs::File::open(path).unwrap())
}

#[test]
fn the_view_shows_what_an_import_gives_in_every_compression() {
    for (name, plain) in archives() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        let layout = Layout::create(dir).unwrap();
        import(&plain[..], &layout, &ImportOptions::default()).unwrap();
        let index = layout.read_index().unwrap();
        let rows = ocil_inspect::summarize_entries(&layout, &index);
        for (compression, bytes) in [
            ("none", plain.clone()),
            ("gzip", corpus::gzip(&plain)),
            ("zstd", corpus::zstd(&plain)),
        ] {
            let what = format!("{name} ({compression})");
            let path = tmp.path().join(format!("{name}.tar"));
            std::fs::File::create(&path).unwrap().write_all(&bytes).unwrap();
            let view = ArchiveView::open(open(&path)).unwrap();
            assert_eq!(view.compression().as_str(), compression, "{what}");
            assert_eq!(view.seekable(), compression == "none", "{what}");
            assert_eq!(
                serde_json::to_value(view.index()).unwrap(),
                serde_json::to_value(&index).unwrap(),
                "{what}"
            );
            assert_eq!(
                serde_json::to_value(ocil_inspect::summarize_entries(&view, view.index())).unwrap(),
                serde_json::to_value(&rows).unwrap(),
                "{what}"
            );
            for d in &index.manifests {
                let ours = ocil_inspect::inspect(&view, d).unwrap();
                let theirs = ocil_inspect::inspect(&layout, d).unwrap();
                assert_eq!(
                    serde_json::to_value(&ours).unwrap(),
                    serde_json::to_value(&theirs).unwrap(),
                    "{what}: inspect {}",
                    d.digest
                );
                let bytes = view.read_blob(&d.digest, 1 << 20).unwrap();
                assert_eq!(bytes, layout.read_blob(&d.digest, 1 << 20).unwrap(), "{what}");
                let by_digest = ocil_layout::Reference::Digest(d.digest.clone());
                assert_eq!(view.resolve(Some(&by_digest)).unwrap().digest, d.digest);
            }
            if compression == "none" {
                // Uncompressed: every blob of the import reads back, layers included.
                for entry in std::fs::read_dir(tmp.path().join("blobs/sha256")).unwrap() {
                    let hex = entry.unwrap().file_name().into_string().unwrap();
                    let digest: ocil_layout::Digest = format!("sha256:{hex}").parse().unwrap();
                    let bytes = view.read_blob(&digest, 1 << 30).unwrap();
                    assert_eq!(bytes, layout.read_blob(&digest, 1 << 30).unwrap(), "{what}");
                }
            }
        }
    }
}

#[test]
fn a_layer_of_a_compressed_archive_is_not_kept_but_still_listed() {
    let img = Image::new("hello\n");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.tar.gz");
    std::fs::write(&path, corpus::gzip(&img.oci_archive(Some("v1")))).unwrap();
    let view = ArchiveView::open(open(&path)).unwrap();
    let layer: ocil_layout::Digest = corpus::sha256(&img.layer).parse().unwrap();
    assert_eq!(view.blob_size(&layer).unwrap(), Some(img.layer.len() as u64));
    let err = view.read_blob(&layer, 1 << 20).unwrap_err();
    assert!(err.to_string().contains("cannot be read in place"), "{err}");
    // The config is JSON: kept, and verified.
    let config: ocil_layout::Digest = corpus::sha256(&img.config).parse().unwrap();
    assert_eq!(view.read_blob(&config, 1 << 20).unwrap(), img.config);
}

#[test]
fn a_pipe_is_read_in_one_pass() {
    let img = Image::new("piped\n");
    let bytes = img.docker_archive(&["app:v1"]);
    let (reader, mut writer) = std::io::pipe().unwrap();
    let feeder = std::thread::spawn(move || writer.write_all(&bytes));
    let file = cap_std::fs::File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
    let view = ArchiveView::open(file).unwrap();
    feeder.join().unwrap().unwrap();
    assert!(!view.seekable());
    assert_eq!(view.index().manifests[0].ref_name(), Some("v1"));
}

/// Copy options for every image, tags as they are.
fn every_image() -> ocil_transfer::CopyOptions<'static> {
    ocil_transfer::CopyOptions {
        reference: None,
        tag: None,
        platform: None,
        platforms: &[],
        foreign: true,
        link: false,
        referrers: true,
        force: false,
        progress: &ocil_layout::progress::Silent,
    }
}

#[test]
fn copying_an_uncompressed_view_gives_the_layout_an_import_gives() {
    for (name, plain) in archives() {
        let tmp = tempfile::tempdir().unwrap();
        let imported = tmp.path().join("imported");
        let copied = tmp.path().join("copied");
        let mk = |p: &std::path::Path| {
            std::fs::create_dir(p).unwrap();
            Layout::create(Dir::open_ambient_dir(p, ambient_authority()).unwrap()).unwrap()
        };
        let (a, b) = (mk(&imported), mk(&copied));
        import(&plain[..], &a, &ImportOptions::default()).unwrap();
        let path = tmp.path().join("a.tar");
        std::fs::write(&path, &plain).unwrap();
        let view = ArchiveView::open(open(&path)).unwrap();
        let opts = every_image();
        let report = ocil_transfer::copy(&view, &b, &opts).unwrap();
        assert_eq!(report.images.len(), a.read_index().unwrap().manifests.len(), "{name}");
        // The same entries, names and all (full names too).
        assert_eq!(
            serde_json::to_value(b.read_index().unwrap()).unwrap(),
            serde_json::to_value(a.read_index().unwrap()).unwrap(),
            "{name}"
        );
        let names = |p: &std::path::Path| {
            let mut v: Vec<_> = std::fs::read_dir(p.join("blobs/sha256"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&copied), names(&imported), "{name}");
        // A second copy finds everything there.
        let again = ocil_transfer::copy(&view, &b, &opts).unwrap();
        assert_eq!((again.copied, again.present), (0, report.blobs), "{name}");
    }
}

#[test]
fn a_compressed_view_cannot_give_its_layers_to_a_copy() {
    let img = Image::new("hello\n");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.tar.gz");
    std::fs::write(&path, corpus::gzip(&img.oci_archive(Some("v1")))).unwrap();
    let view = ArchiveView::open(open(&path)).unwrap();
    let dst = tmp.path().join("dst");
    std::fs::create_dir(&dst).unwrap();
    let dst = Layout::create(Dir::open_ambient_dir(&dst, ambient_authority()).unwrap()).unwrap();
    let opts = every_image();
    let err = ocil_transfer::copy(&view, &dst, &opts).unwrap_err();
    let chain = ocil_layout::walk::error_chain(&err);
    assert!(chain.contains("cannot be read in place"), "{chain}");
    assert!(dst.read_index().unwrap().manifests.is_empty());
}
