//! Lossless edits: a Docker config full of extra fields, odd key order, `\u003c` escapes
//! and `1.0` numbers, edited with `ocil config --env`, keeps every other member's exact
//! text and place; Docker stays Docker, OCI stays OCI; the same edit gives the same digest.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::support::*;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A config as `docker build` (classic builder) writes it, with extras and odd spacing
/// inside values: `ocil` must keep all of it.
const CONFIG_HEAD: &str = r##"{"os":"linux","architecture":"amd64","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HTML=\u003cb\u003e"],"Cmd":["/bin/sh"],"Image":"sha256:0000000000000000000000000000000000000000000000000000000000000000","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"org.example.escaped":"a\u0026b","z":"1"},"x-weight":1.0},"container":"3b2e1f","container_config":{"Hostname":"3b2e1f","Cmd":["/bin/sh","-c","#(nop) ","CMD [\"/bin/sh\"]"],"Labels":{}},"created":"2024-01-01T00:00:00.123456789Z","docker_version":"20.10.5","history":[{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) ADD file:abc in / "},{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop)  CMD [\"/bin/sh\"]","empty_layer":true}],"x-unknown":{"nested":[1.0, 2.50, {"k" : "v"}],"big":12345678901234567890},"rootfs":{"type":"layers","diff_ids":["DIFF_ID"]}}"##;

/// A gzip layer with one file; its blob descriptor parts and diff_id.
fn layer(dir: &Path) -> ((String, u64), String) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_mtime(1_704_067_200);
    h.set_cksum();
    tar.append_data(&mut h, "hello.txt", &b"hello\n"[..]).expect("tar");
    let tar = tar.into_inner().expect("tar");
    let diff_id = sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).expect("gzip");
    (put_blob(dir, &gz.finish().expect("gzip")), diff_id)
}

/// A layout with one Docker schema2 image tagged `d`; returns the config text.
fn docker_layout(dir: &Path) -> String {
    ocil_ok(&["init", arg(dir)]);
    let ((layer, layer_size), diff_id) = layer(dir);
    let config = CONFIG_HEAD.replace("DIFF_ID", &diff_id);
    let (cd, cs) = put_blob(dir, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":{cs},"digest":"{cd}"}},"layers":[{{"mediaType":"{DOCKER_LAYER}","size":{layer_size},"digest":"{layer}"}}]}}"#
    );
    let (md, ms) = put_blob(dir, manifest.as_bytes());
    write_index(
        dir,
        &json!({"schemaVersion":2,"manifests":[{"mediaType":DOCKER_MANIFEST,"digest":md,"size":ms,"annotations":{REF_NAME:"d"}}]}),
    );
    assert_fsck_clean(dir, "the hand-written Docker layout");
    config
}

fn text(dir: &Path, digest: &str) -> String {
    String::from_utf8(blob(dir, digest)).expect("UTF-8")
}

#[test]
fn docker_config_edit_keeps_every_other_member_byte_identical_needs_skopeo() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = &tmp.path().join("l");
    let old_config = docker_layout(dir);
    let old_manifest_digest = digest_of(dir, "d");
    let old_manifest = text(dir, &old_manifest_digest);

    ocil_ok(&["config", &format!("{}:d", arg(dir)), "--env", "NEW=1", "--env", "HTML=\u{3c}i>"]);

    let new_manifest_digest = digest_of(dir, "d");
    assert_ne!(new_manifest_digest, old_manifest_digest);
    let new_manifest = text(dir, &new_manifest_digest);
    let new_config_digest = blob_json(dir, &new_manifest_digest)["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_owned();
    let new_config = text(dir, &new_config_digest);

    // Top level: same keys, same order; every member but `config` byte-identical.
    let (old_top, new_top) = (members(&old_config), members(&new_config));
    let keys = |m: &[(String, String)]| m.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&old_top), keys(&new_top));
    for ((k, old), (_, new)) in old_top.iter().zip(&new_top) {
        if k != "\"config\"" {
            assert_eq!(old, new, "member {k} changed");
        }
    }
    // `config`: every member but `Env` byte-identical, in order.
    let (old_rc, new_rc) =
        (members(&member(&old_config, "config")), members(&member(&new_config, "config")));
    assert_eq!(keys(&old_rc), keys(&new_rc));
    for ((k, old), (_, new)) in old_rc.iter().zip(&new_rc) {
        if k != "\"Env\"" {
            assert_eq!(old, new, "config member {k} changed");
        }
    }
    // `Env`: PATH kept as written, HTML replaced in place, NEW appended.
    assert_eq!(
        member(&member(&new_config, "config"), "Env"),
        r#"["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HTML=<i>","NEW=1"]"#
    );

    // The manifest: still Docker, the config descriptor in Docker's key order, the layers
    // byte-identical.
    let (old_m, new_m) = (members(&old_manifest), members(&new_manifest));
    assert_eq!(keys(&old_m), keys(&new_m));
    assert_eq!(member(&new_manifest, "mediaType"), format!("\"{DOCKER_MANIFEST}\""));
    assert_eq!(member(&new_manifest, "layers"), member(&old_manifest, "layers"));
    let cfg_desc = member(&new_manifest, "config");
    assert_eq!(
        cfg_desc,
        format!(
            r#"{{"mediaType":"{DOCKER_CONFIG}","size":{},"digest":"{new_config_digest}"}}"#,
            new_config.len()
        )
    );
    assert_eq!(entry(dir, "d")["mediaType"], DOCKER_MANIFEST);
    assert_fsck_clean(dir, "after the edit");

    // `created` stays (no --created, no SOURCE_DATE_EPOCH): a second identical edit on the
    // old image gives the same digest.
    let again = ocil_ok(&[
        "config",
        &format!("{}@{old_manifest_digest}", arg(dir)),
        "--tag",
        "again",
        "--env",
        "NEW=1",
        "--env",
        "HTML=<i>",
    ]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(&new_manifest_digest),
        "not reproducible"
    );
    assert_eq!(digest_of(dir, "again"), new_manifest_digest);

    // skopeo reads Docker-typed images in OCI layouts only without a reference.
    ocil_ok(&["rm", &format!("{}:again", arg(dir))]);
    if require_tool("skopeo") {
        let out = peer_ok("skopeo", &["inspect", &format!("oci:{}", arg(dir))]);
        assert!(out.contains("NEW=1"), "{out}");
    }
}

#[test]
fn oci_images_stay_oci_needs_shared() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let Some(dir) = copy_shared("fixtures/peer-made/umoci-edit/layout", &tmp.path().join("l"))
    else {
        return;
    };
    let dir = &dir;
    let old = text(dir, &digest_of(dir, "v3"));
    ocil_ok(&["config", &format!("{}:v3", arg(dir)), "--env", "X=1", "--tag", "v3x"]);
    let new = text(dir, &digest_of(dir, "v3x"));
    // umoci writes no `mediaType` member; none is added, the members stay in order.
    let keys = |t: &str| members(t).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(keys(&new), keys(&old));
    assert_eq!(member(&new, "schemaVersion"), "2");
    assert_eq!(member(&new, "layers"), member(&old, "layers"));
    assert!(member(&new, "config").contains("application/vnd.oci.image.config.v1+json"));
    assert_eq!(entry(dir, "v3x")["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(config_json(dir, &digest_of(dir, "v3x"))["config"]["Env"], json!(["A=B", "X=1"]));
    // v3 and latest still name the old image.
    assert_eq!(digest_of(dir, "v3"), digest_of(dir, "latest"));
    assert_fsck_clean(dir, "after the edit");
}

#[test]
fn duplicate_keys_are_refused_and_nothing_changes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = &tmp.path().join("l");
    ocil_ok(&["init", arg(dir)]);
    let (cd, cs) = put_blob(
        dir,
        br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Env":["B=2"]},"rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let manifest = json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":cs},"layers":[]});
    let (md, ms) = put_blob(dir, &serde_json::to_vec(&manifest).expect("JSON"));
    write_index(
        dir,
        &json!({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":md,"size":ms,"annotations":{REF_NAME:"v1"}}]}),
    );
    let before = fs_err::read(dir.join("index.json")).expect("index.json");
    let out = ocil(&["config", &format!("{}:v1", arg(dir)), "--env", "C=3"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has the key `Env` more than once"), "{err}");
    assert_eq!(fs_err::read(dir.join("index.json")).expect("index.json"), before);
}
