//! The target grammar every command shares (`ocil_layout::image_ref`): `DIR:TAG` destinations
//! that do not exist yet (`ocil import app.tar o1:app`), choosing an image of an archive,
//! the explicit transports (`oci:`, `oci-archive:`, `docker-archive:`), the escapes for
//! names with `:`, and the refusals: registries, foreign transports, an archive where a
//! layout is needed and the other way round.

use std::path::Path;

use crate::support::{TestDir, digest_of, read_index, snap};

/// The tags of a layout's `index.json`, in order.
fn tags(layout: &Path) -> Vec<String> {
    read_index(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

/// `src/` with `v1` (linux/amd64) and `v2` (linux/arm64), `app.tar` (an OCI archive of
/// `src:v1`) and `two.tar` (both images).
fn archives(t: &TestDir) {
    t.image("src");
    t.run(&["new", "--platform", "linux/arm64", "src:v2"]);
    t.run(&["export", "src:v1", "-o", "app.tar"]);
    t.run(&["export", "src", "-o", "two.tar"]);
}

/// Rewrite an `ocil export --format docker` archive as a docker-save archive alone (no
/// `index.json`, no `oci-layout`), so its names come from `manifest.json`'s `RepoTags`.
fn docker_only(file: &Path) {
    let bytes = fs_err::read(file).unwrap();
    let mut out = tar::Builder::new(Vec::new());
    for entry in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        if path == Path::new("index.json") || path == Path::new("oci-layout") {
            continue;
        }
        let header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        out.append(&header, &data[..]).unwrap();
    }
    fs_err::write(file, out.into_inner().unwrap()).unwrap();
}

#[test]
fn import_into_a_new_dir_with_a_tag() {
    let t = TestDir::new();
    archives(&t);
    snap!(t, "import_dir_tag", t.ocil().args(["import", "app.tar", "o1:app"]));
    assert!(t.join("o1").is_dir());
    assert!(!t.join("o1:app").exists());
    assert_eq!(tags(&t.join("o1")), ["app"]);
    assert_eq!(digest_of(&t.join("o1"), "app"), digest_of(&t.join("src"), "v1"));
    snap!(t, "import_dir_tag_ls", t.ocil().args(["ls", "o1"]));
    // Into an existing layout, and with `oci:`: the same.
    t.run(&["import", "app.tar", "oci:o1:again"]);
    assert_eq!(tags(&t.join("o1")), ["app", "again"]);
    // A sub-directory whose parent exists.
    t.run(&["init", "parent"]);
    t.run(&["import", "app.tar", "parent/sub:x"]);
    assert_eq!(tags(&t.join("parent/sub")), ["x"]);
}

#[test]
fn import_chooses_an_image_of_an_archive() {
    let t = TestDir::new();
    archives(&t);
    // Two images and one tag: which one?
    snap!(t, "import_two_images_one_tag", t.ocil().args(["import", "two.tar", "o2:app"]));
    assert!(!t.join("o2").exists());
    // FILE:NAME chooses, and so does --image.
    snap!(t, "import_file_name", t.ocil().args(["import", "two.tar:v2", "o2:app"]));
    assert_eq!(tags(&t.join("o2")), ["app"]);
    assert_eq!(digest_of(&t.join("o2"), "app"), digest_of(&t.join("src"), "v2"));
    t.run(&["import", "--image", "v1", "two.tar", "o3:app"]);
    assert_eq!(digest_of(&t.join("o3"), "app"), digest_of(&t.join("src"), "v1"));
    // Only the chosen image's blobs land.
    snap!(t, "import_chosen_fsck", t.ocil().args(["fsck", "o3"]));
    // Chosen, untagged: it keeps the archive's tag.
    let d = digest_of(&t.join("src"), "v2");
    t.run(&["import", &format!("two.tar@{d}"), "o4"]);
    assert_eq!(tags(&t.join("o4")), ["v2"]);
    snap!(t, "import_image_missing", t.ocil().args(["import", "--image", "v9", "two.tar", "o5"]));
    assert!(!t.join("o5").exists());
    snap!(t, "import_image_twice", t.ocil().args(["import", "--image", "v1", "two.tar:v2", "o5"]));
}

#[test]
fn import_reads_explicit_archive_transports() {
    let t = TestDir::new();
    archives(&t);
    t.run(&["export", "--format", "docker", "--repo", "example.com/app", "src:v1", "-o", "d.tar"]);
    docker_only(&t.join("d.tar"));
    snap!(t, "import_oci_archive", t.ocil().args(["import", "oci-archive:two.tar:v2", "oci:o6:x"]));
    assert_eq!(digest_of(&t.join("o6"), "x"), digest_of(&t.join("src"), "v2"));
    // A docker-archive: NAME is a full name, `:` and all.
    t.run(&["import", "docker-archive:d.tar:example.com/app:v1", "o7:y"]);
    assert_eq!(tags(&t.join("o7")), ["y"]);
    // In place, the same names work.
    snap!(
        t,
        "inspect_docker_archive_name",
        t.ocil().args(["inspect", "docker-archive:d.tar:example.com/app:v1"])
    );
    snap!(t, "ls_oci_archive", t.ocil().args(["ls", "oci-archive:two.tar"]));
}

#[test]
fn explicit_layout_transport() {
    let t = TestDir::new();
    t.image("src");
    snap!(t, "ls_oci", t.ocil().args(["ls", "oci:src"]));
    t.run(&["copy", "oci:src:v1", "oci:c1:w"]);
    assert_eq!(tags(&t.join("c1")), ["w"]);
    t.run(&["tag", "oci:c1:w", "w2"]);
    t.run(&["untag", "oci:c1:w"]);
    assert_eq!(tags(&t.join("c1")), ["w2"]);
    t.run(&["gc", "oci:c1"]);
    t.run(&["init", "oci:c2"]);
    assert!(t.join("c2/oci-layout").is_file());
    // `./oci` is a directory called `oci`: transport prefixes are reserved.
    t.run(&["init", "./oci"]);
    t.run(&["new", "./oci:v1"]);
    assert_eq!(tags(&t.join("oci")), ["v1"]);
}

#[test]
fn copy_to_a_new_dir_with_a_tag() {
    let t = TestDir::new();
    t.image("src");
    snap!(t, "copy_dir_tag", t.ocil().args(["copy", "src:v1", "c3:latest"]));
    assert_eq!(tags(&t.join("c3")), ["latest"]);
}

#[test]
fn colons_in_directory_names() {
    let t = TestDir::new();
    // A trailing `/` keeps the `:` in a new directory's name.
    t.run(&["init", "a:b/"]);
    assert!(t.join("a:b").is_dir());
    // Once it exists, `a:b:v1` is `a:b` with tag `v1`.
    t.run(&["new", "a:b:v1"]);
    snap!(t, "colon_dir_ls", t.ocil().args(["ls", "a:b"]));
    t.run(&["copy", "a:b:v1", "c:d/"]);
    assert_eq!(tags(&t.join("c:d")), ["v1"]);
    // Without the `/`, `init` refuses the tag rather than making a directory called `e:f`.
    snap!(t, "init_dir_tag", t.ocil().args(["init", "e:f"]));
    assert!(!t.join("e").exists() && !t.join("e:f").exists());
}

#[test]
fn copy_reads_an_uncompressed_archive_in_place() {
    let t = TestDir::new();
    archives(&t);
    snap!(t, "copy_from_archive", t.ocil().args(["copy", "oci-archive:two.tar:v2", "c5:arm"]));
    assert_eq!(tags(&t.join("c5")), ["arm"]);
    assert_eq!(digest_of(&t.join("c5"), "arm"), digest_of(&t.join("src"), "v2"));
    // Every image, with its tags: what an import gives.
    t.run(&["copy", "two.tar", "c6"]);
    t.run(&["import", "two.tar", "i6"]);
    assert_eq!(read_index(&t.join("c6")), read_index(&t.join("i6")));
    t.run(&["fsck", "--deep", "c6"]);
}

#[test]
fn refusals() {
    let t = TestDir::new();
    archives(&t);
    fs_err::create_dir_all(t.join("rootfs")).unwrap();
    fs_err::write(t.join("rootfs/hello.txt"), "hello\n").unwrap();
    t.run(&["append", "src:v1", "rootfs", "--tag", "layered"]);
    t.run(&["export", "src:layered", "-o", "layered.tar.gz"]);
    let cases: &[(&str, &[&str])] = &[
        // fsck reads no registry (no network is touched).
        ("registry", &["fsck", "docker://busybox"]),
        // A registry destination takes no --link (refused before any connection).
        ("registry_copy_link", &["copy", "src:v1", "docker://localhost:5000/a:b", "--link"]),
        ("registry_invalid", &["inspect", "docker://Busybox"]),
        ("foreign_transport", &["ls", "docker-daemon:busybox:latest"]),
        ("empty_transport", &["ls", "oci:"]),
        // A tag for the copy needs one image chosen in the archive.
        ("copy_from_archive_tag", &["copy", "oci-archive:app.tar", "dst:v1"]),
        // A compressed archive keeps only its documents in place: import reads it.
        ("copy_from_compressed_archive", &["copy", "layered.tar.gz", "dst"]),
        ("copy_to_archive", &["copy", "src", "oci-archive:x.tar"]),
        ("tag_archive", &["tag", "oci-archive:app.tar:v1", "x"]),
        ("import_from_dir", &["import", "src", "o8"]),
        ("import_to_archive", &["import", "app.tar", "oci-archive:x.tar"]),
        ("import_to_file", &["import", "app.tar", "two.tar"]),
        ("import_to_stdin", &["import", "app.tar", "-"]),
        ("import_parent_missing", &["import", "app.tar", "new/sub:v1"]),
        (
            "import_digest_dest",
            &["import", "app.tar", &format!("o9@{}", digest_of(&t.join("src"), "v1"))],
        ),
        ("import_missing_archive", &["import", "nope.tar", "o10:v1"]),
        ("export_to_layout", &["export", "src", "-o", "oci:x"]),
        (
            "export_format_conflict",
            &["export", "src", "-o", "oci-archive:x.tar", "--format", "docker"],
        ),
        ("export_output_name", &["export", "src", "-o", "docker-archive:x.tar:a/b:c"]),
        ("fsck_reference", &["fsck", "src:v1"]),
        ("gc_reference", &["gc", "src:v1"]),
        ("docker_archive_index", &["inspect", "docker-archive:app.tar:@0"]),
    ];
    for (name, args) in cases {
        snap!(t, format!("refuse_{name}").as_str(), t.ocil().args(*args));
    }
    for made in ["o8", "o9", "o10", "dst", "new", "x", "x.tar"] {
        assert!(!t.join(made).exists(), "{made} was created");
    }
}

#[test]
fn export_output_transports_choose_the_format() {
    let t = TestDir::new();
    t.image("src");
    t.run(&["export", "--repo", "example.com/app", "src", "-o", "docker-archive:d.tar"]);
    let out = t.ocil().args(["import", "--json", "d.tar", "o"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["format"], "docker-archive+oci-layout");
    // `oci-archive:` writes an OCI archive at the path after it.
    t.run(&["export", "src", "-o", "oci-archive:o.tar"]);
    assert!(t.join("o.tar").is_file());
}
