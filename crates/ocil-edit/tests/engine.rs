//! The edit transaction on hand-written layouts: platform selection, lossless rewrites of
//! indexes (nested ones too), attestations that stay attached, Docker types that stay
//! Docker, tags that move or stay.

use ocil_edit::{EditTarget, Error, History, Platforms, edit_images};
use ocil_layout::{Descriptor, Digest, Layout, MediaType, Platform, Reference, tags};
use serde_json::Value;

const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

struct Fixture {
    _tmp: tempfile::TempDir,
    layout: Layout,
}

fn layout() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
    Fixture { layout: Layout::create(dir).unwrap(), _tmp: tmp }
}

fn put(layout: &Layout, mt: &str, text: &str) -> Descriptor {
    layout.put_bytes(MediaType::from(mt), text.as_bytes()).unwrap()
}

fn bytes(layout: &Layout, d: &Digest) -> Vec<u8> {
    layout.read_blob(d, 1 << 20).unwrap()
}

fn json(layout: &Layout, d: &Digest) -> Value {
    serde_json::from_slice(&bytes(layout, d)).unwrap()
}

/// An image: config text given, manifest in Docker key order (mediaType, size, digest).
fn image(layout: &Layout, manifest_mt: &str, config_mt: &str, config: &str) -> Descriptor {
    let c = put(layout, config_mt, config);
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{manifest_mt}","config":{{"mediaType":"{config_mt}","size":{},"digest":"{}"}},"layers":[]}}"#,
        c.size, c.digest
    );
    put(layout, manifest_mt, &m)
}

fn tag(layout: &Layout, d: &Descriptor, t: &str) {
    let lock = layout.lock().unwrap();
    let mut index = layout.read_index().unwrap();
    tags::set_tag(&mut index, d, t).unwrap();
    layout.write_index(&index, &lock).unwrap();
}

fn add_env(image: &mut ocil_edit::Image) -> ocil_edit::Result<()> {
    let cfg = image.runtime_config()?;
    let mut env: Vec<String> = cfg.get::<Option<Vec<String>>>("Env")?.flatten().unwrap_or_default();
    env.push("EDITED=1".into());
    cfg.set("Env", &env)
}

struct Multi {
    amd64: Descriptor,
    arm64: Descriptor,
    attestation: Descriptor,
    nested: Descriptor,
    top: Descriptor,
}

/// index -> [amd64, attestation(amd64), nested index -> [arm64/v8]], odd key orders.
fn multi(layout: &Layout, manifest_mt: &str, config_mt: &str, index_mt: &str) -> Multi {
    let amd64 = image(
        layout,
        manifest_mt,
        config_mt,
        r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let arm64 = image(
        layout,
        manifest_mt,
        config_mt,
        r#"{"os":"linux","architecture":"arm64","variant":"v8","rootfs":{"diff_ids":[],"type":"layers"}}"#,
    );
    let att_cfg = put(layout, "application/vnd.oci.image.config.v1+json", "{}");
    let attestation = put(
        layout,
        "application/vnd.oci.image.manifest.v1+json",
        &format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[]}}"#,
            att_cfg.digest
        ),
    );
    let nested = put(
        layout,
        index_mt,
        &format!(
            r#"{{"schemaVersion":2,"mediaType":"{index_mt}","manifests":[{{"size":{},"platform":{{"variant":"v8","architecture":"arm64","os":"linux"}},"digest":"{}","mediaType":"{manifest_mt}","x-extra":[1.0]}}]}}"#,
            arm64.size, arm64.digest
        ),
    );
    let top = put(
        layout,
        index_mt,
        &format!(
            r#"{{"schemaVersion":2,"mediaType":"{index_mt}","manifests":[{{"mediaType":"{manifest_mt}","size":{},"digest":"{}","platform":{{"architecture":"amd64","os":"linux"}},"annotations":{{"z":"1","a":"2"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"vnd.docker.reference.digest":"{}","vnd.docker.reference.type":"attestation-manifest"}},"platform":{{"architecture":"unknown","os":"unknown"}}}},{{"mediaType":"{index_mt}","digest":"{}","size":{}}}],"annotations":{{"k":"v"}}}}"#,
            amd64.size,
            amd64.digest,
            attestation.digest,
            attestation.size,
            amd64.digest,
            nested.digest,
            nested.size
        ),
    );
    Multi { amd64, arm64, attestation, nested, top }
}

fn target<'a>(r: &'a Reference, platforms: Platforms, new_tag: Option<&'a str>) -> EditTarget<'a> {
    EditTarget { reference: r, platforms, new_tag }
}

fn platform(s: &str) -> Platforms {
    Platforms::One(Box::new(s.parse::<Platform>().unwrap()))
}

#[test]
fn an_index_requires_a_platform_choice() {
    let f = layout();
    let m = multi(
        &f.layout,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.index.v1+json",
    );
    tag(&f.layout, &m.top, "multi");
    let r = Reference::parse("multi").unwrap();
    let lock = f.layout.lock().unwrap();
    let err = edit_images(&f.layout, &lock, &target(&r, Platforms::Unspecified, None), add_env)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`multi` is a multi-platform index: choose --platform (linux/amd64, linux/arm64/v8) or --all-platforms"
    );
    let err = edit_images(&f.layout, &lock, &target(&r, platform("linux/s390x"), None), add_env)
        .unwrap_err();
    assert!(matches!(err, Error::PlatformNotFound { .. }), "{err}");
    // Nothing was written.
    assert_eq!(f.layout.read_index().unwrap().manifests[0].digest, m.top.digest);
}

#[test]
fn one_platform_of_a_nested_index_is_edited_losslessly() {
    let f = layout();
    let m = multi(
        &f.layout,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.index.v1+json",
    );
    tag(&f.layout, &m.top, "multi");
    let r = Reference::parse("multi").unwrap();
    let lock = f.layout.lock().unwrap();
    let edited =
        edit_images(&f.layout, &lock, &target(&r, platform("linux/arm64"), None), add_env).unwrap();
    assert_eq!(edited.images.len(), 1);
    assert_eq!(edited.images[0].before, m.arm64.digest);
    assert_eq!(edited.images[0].platform.as_deref(), Some("linux/arm64/v8"));
    assert_eq!(edited.attestations_moved, 0);
    let entry = &f.layout.read_index().unwrap().manifests[0];
    assert_eq!(entry.ref_name(), Some("multi"));
    assert_eq!(entry.digest, edited.after.digest);
    // The top index: only the nested index's digest and size changed.
    let old_top = String::from_utf8(bytes(&f.layout, &m.top.digest)).unwrap();
    let new_top = String::from_utf8(bytes(&f.layout, &entry.digest)).unwrap();
    let new_nested: Digest =
        json(&f.layout, &entry.digest)["manifests"][2]["digest"].as_str().unwrap().parse().unwrap();
    let new_nested_size = bytes(&f.layout, &new_nested).len();
    let expected = old_top.replace(&m.nested.digest.to_string(), &new_nested.to_string()).replace(
        &format!(r#""size":{}}}]"#, m.nested.size),
        &format!(r#""size":{new_nested_size}}}]"#),
    );
    assert_eq!(new_top, expected);
    // The nested index: field order and unknown fields kept.
    let nested = String::from_utf8(bytes(&f.layout, &new_nested)).unwrap();
    let new_arm = &edited.images[0].after;
    let new_arm_size = bytes(&f.layout, new_arm).len();
    assert_eq!(
        nested,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"size":{new_arm_size},"platform":{{"variant":"v8","architecture":"arm64","os":"linux"}},"digest":"{new_arm}","mediaType":"application/vnd.oci.image.manifest.v1+json","x-extra":[1.0]}}]}}"#
        )
    );
    // The config: the new member goes last, the others keep their text and order.
    let cfg: Digest =
        json(&f.layout, new_arm)["config"]["digest"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        String::from_utf8(bytes(&f.layout, &cfg)).unwrap(),
        r#"{"os":"linux","architecture":"arm64","variant":"v8","rootfs":{"diff_ids":[],"type":"layers"},"config":{"Env":["EDITED=1"]}}"#
    );
}

#[test]
fn all_platforms_move_attestations_and_keep_their_blobs() {
    let f = layout();
    let m = multi(
        &f.layout,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.index.v1+json",
    );
    tag(&f.layout, &m.top, "multi");
    let r = Reference::parse("multi").unwrap();
    let lock = f.layout.lock().unwrap();
    let mut seen = Vec::new();
    let edited = edit_images(&f.layout, &lock, &target(&r, Platforms::All, Some("edited")), |i| {
        seen.push(i.digest().clone());
        add_env(i)
    })
    .unwrap();
    assert_eq!(seen, [m.amd64.digest.clone(), m.arm64.digest.clone()]);
    assert_eq!(edited.attestations_moved, 1);
    let index = f.layout.read_index().unwrap();
    assert_eq!(index.manifests.len(), 2);
    assert_eq!(index.manifests[0].digest, m.top.digest, "the old entry stays");
    assert_eq!(index.manifests[1].ref_name(), Some("edited"));
    let top = json(&f.layout, &index.manifests[1].digest);
    let new_amd = top["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(new_amd, edited.images[0].after.to_string());
    assert_eq!(top["manifests"][0]["annotations"], serde_json::json!({"z":"1","a":"2"}));
    assert_eq!(top["manifests"][1]["digest"], m.attestation.digest.to_string());
    assert_eq!(top["manifests"][1]["annotations"]["vnd.docker.reference.digest"], new_amd);
    assert_eq!(top["annotations"]["k"], "v");
    // The old index's blobs are untouched.
    assert_eq!(
        json(&f.layout, &m.top.digest)["manifests"][0]["digest"],
        m.amd64.digest.to_string()
    );
}

#[test]
fn docker_images_stay_docker_and_platform_edits_reach_descriptors() {
    let f = layout();
    let m = multi(
        &f.layout,
        "application/vnd.docker.distribution.manifest.v2+json",
        DOCKER_CONFIG,
        "application/vnd.docker.distribution.manifest.list.v2+json",
    );
    tag(&f.layout, &m.top, "list");
    let r = Reference::parse("list").unwrap();
    let lock = f.layout.lock().unwrap();
    let err = edit_images(&f.layout, &lock, &target(&r, Platforms::Unspecified, None), add_env)
        .unwrap_err();
    assert!(err.to_string().contains("multi-platform manifest list"), "{err}");
    let edited = edit_images(&f.layout, &lock, &target(&r, platform("linux/amd64"), None), |i| {
        assert_eq!(i.family(), ocil_layout::Family::Docker);
        assert_eq!(
            i.layer_media_type(ocil_layout::Compression::Gzip),
            Some(MediaType::DockerLayerGzip)
        );
        i.config.set("variant", "v3")?;
        i.add_history(&History {
            comment: Some("x".into()),
            empty_layer: Some(true),
            ..History::default()
        })
    })
    .unwrap();
    let entry = &f.layout.read_index().unwrap().manifests[0];
    assert_eq!(entry.media_type, MediaType::DockerManifestList);
    let top = json(&f.layout, &entry.digest);
    assert_eq!(top["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json");
    assert_eq!(
        top["manifests"][0]["platform"],
        serde_json::json!({"architecture":"amd64","os":"linux","variant":"v3"})
    );
    let new = &edited.images[0].after;
    let text = String::from_utf8(bytes(&f.layout, new)).unwrap();
    assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":"#), "{text}");
    assert_eq!(edited.images[0].platform.as_deref(), Some("linux/amd64/v3"));
}

#[test]
fn a_plain_image_moves_its_tag_or_gets_a_new_one() {
    let f = layout();
    let d = image(
        &f.layout,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.config.v1+json",
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    tag(&f.layout, &d, "v1");
    tag(&f.layout, &d, "v2");
    let r = Reference::parse("v1").unwrap();
    let lock = f.layout.lock().unwrap();
    let edited =
        edit_images(&f.layout, &lock, &target(&r, Platforms::Unspecified, None), add_env).unwrap();
    let index = f.layout.read_index().unwrap();
    assert_eq!(index.manifests[0].ref_name(), Some("v1"));
    assert_eq!(index.manifests[0].digest, edited.after.digest);
    assert_eq!(index.manifests[1].digest, d.digest, "v2 stays");
    // The same edit again from v2 gives the same digest (deterministic).
    let r2 = Reference::parse("v2").unwrap();
    let again =
        edit_images(&f.layout, &lock, &target(&r2, Platforms::Unspecified, None), add_env).unwrap();
    assert_eq!(again.after.digest, edited.after.digest);
    // An edit that changes nothing writes nothing.
    let same = edit_images(&f.layout, &lock, &target(&r, Platforms::Unspecified, None), |_| Ok(()))
        .unwrap();
    assert!(!same.index_written);
    assert_eq!(same.after.digest, edited.after.digest);
    // A wrong platform for a plain image is an error naming the one it has.
    let err = edit_images(&f.layout, &lock, &target(&r, platform("linux/arm64"), None), add_env)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`v1` has no image for platform `linux/arm64` (platforms: linux/amd64)"
    );
}

#[test]
fn artifacts_and_unknown_digests_are_refused() {
    let f = layout();
    let cfg = put(&f.layout, "application/vnd.oci.empty.v1+json", "{}");
    let art = put(
        &f.layout,
        "application/vnd.oci.image.manifest.v1+json",
        &format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"x/y","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[]}}"#,
            cfg.digest
        ),
    );
    tag(&f.layout, &art, "sig");
    let lock = f.layout.lock().unwrap();
    let r = Reference::parse("sig").unwrap();
    let err = edit_images(&f.layout, &lock, &target(&r, Platforms::Unspecified, None), add_env)
        .unwrap_err();
    assert!(matches!(err, Error::NotAnImage { .. }), "{err}");
    let r = Reference::Digest(cfg.digest.clone());
    let err = edit_images(&f.layout, &lock, &target(&r, Platforms::Unspecified, None), add_env)
        .unwrap_err();
    assert!(matches!(err, Error::NotAnEntry { .. }), "{err}");
}
