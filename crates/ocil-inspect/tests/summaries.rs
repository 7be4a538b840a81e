//! `summarize_entries` and `inspect` on layouts built here: rows (names, platforms from an
//! index or a plain image's config, bytes reached, missing blobs) and the image view.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_inspect::{Inspected, inspect, summarize_entries};
use ocil_layout::{Descriptor, Layout, MediaType};
use serde_json::json;

fn layout(tmp: &tempfile::TempDir) -> Layout {
    Layout::create(Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap()).unwrap()
}

fn put(l: &Layout, t: MediaType, v: serde_json::Value) -> Descriptor {
    l.put_bytes(t, &serde_json::to_vec(&v).unwrap()).unwrap()
}

fn d(x: &Descriptor) -> serde_json::Value {
    json!({"mediaType": x.media_type.as_str(), "digest": x.digest.to_string(), "size": x.size})
}

/// An image with one layer and a config that says its platform and more.
fn image(l: &Layout, arch: &str) -> (Descriptor, Descriptor, Descriptor) {
    let layer = l.put_bytes(MediaType::OciLayerGzip, arch.as_bytes()).unwrap();
    let config = put(
        l,
        MediaType::OciConfig,
        json!({"architecture": arch, "os": "linux",
               "config": {"Env": ["A=1"], "Volumes": {"/data": {}}, "StopSignal": "SIGTERM"},
               "rootfs": {"type": "layers", "diff_ids": ["sha256:".to_owned() + &"a".repeat(64)]},
               "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ADD x"},
                           {"comment": "labels", "empty_layer": true}]}),
    );
    let manifest = put(
        l,
        MediaType::OciManifest,
        json!({"schemaVersion": 2, "mediaType": MediaType::OciManifest.as_str(),
               "config": d(&config), "layers": [d(&layer)]}),
    );
    (manifest, config, layer)
}

#[test]
fn rows_name_platforms_bytes_and_missing_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let l = layout(&tmp);
    let (amd, amd_config, amd_layer) = image(&l, "amd64");
    let (arm, _, arm_layer) = image(&l, "arm64");
    let child = |m: &Descriptor, arch: &str| {
        let mut c = d(m);
        c["platform"] = json!({"os": "linux", "architecture": arch});
        c
    };
    let index = put(
        &l,
        MediaType::OciIndex,
        json!({"schemaVersion": 2, "mediaType": MediaType::OciIndex.as_str(),
               "manifests": [child(&amd, "amd64"), child(&arm, "arm64")]}),
    );
    let lock = l.lock().unwrap();
    let mut idx = l.read_index().unwrap();
    ocil_layout::tags::set_tag(&mut idx, &index, "multi").unwrap();
    ocil_layout::tags::set_tag(&mut idx, &amd, "plain").unwrap();
    l.write_index(&idx, &lock).unwrap();
    l.remove_blob(&arm_layer.digest).unwrap();

    let rows = summarize_entries(&l, &l.read_index().unwrap());
    assert_eq!(rows.len(), 2);
    let multi = &rows[0];
    assert_eq!(multi.names, ["multi"]);
    assert_eq!(multi.platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(multi.missing, 1, "the arm64 layer");
    // A plain image's platform comes from its config.
    let plain = &rows[1];
    assert_eq!(plain.platforms, ["linux/amd64"]);
    assert_eq!(plain.size, amd.size + amd_config.size + amd_layer.size);
    assert_eq!(plain.missing, 0);

    let Inspected::Image(s) = inspect(&l, &amd).unwrap() else { panic!("an image") };
    assert_eq!(s.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(s.env, ["A=1"]);
    assert_eq!(s.volumes, ["/data"]);
    assert_eq!(s.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(s.diff_ids.len(), 1);
    assert_eq!(s.history.len(), 2);
    assert!(s.history[1].empty_layer);
    assert_eq!(s.layers[0].compression, "gzip");
    assert!(s.config_note.is_none());

    let Inspected::Index(i) = inspect(&l, &index).unwrap() else { panic!("an index") };
    assert_eq!(i.manifests.len(), 2);
    // A layer is shown as a blob, without reading it as a document.
    let Inspected::Blob { digest, .. } = inspect(&l, &amd_layer).unwrap() else { panic!("a blob") };
    assert_eq!(digest, amd_layer.digest);
}

#[test]
fn a_corrupt_config_is_a_note_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let l = layout(&tmp);
    let (m, config, _) = image(&l, "amd64");
    std::fs::write(tmp.path().join(config.digest.blob_path()), vec![b' '; config.size as usize])
        .unwrap();
    let Inspected::Image(s) = inspect(&l, &m).unwrap() else { panic!("an image") };
    assert!(s.config_note.as_deref().is_some_and(|n| n.contains("hashes to")), "{s:?}");
    assert_eq!(s.platform, None);
}
