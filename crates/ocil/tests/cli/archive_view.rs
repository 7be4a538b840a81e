//! `ocil ls FILE` and `ocil inspect FILE[:REF|@DIGEST]`: archives read in place, without
//! extracting (snapshots). The archives are skopeo's, from the peer-made fixtures in
//! `shared/`, copied into the test's directory (plain and gzip-compressed), and hostile ones
//! from `testdata/hostile/`.

use std::path::Path;

use crate::support::{TestDir, shared_dir, snap};

/// Copy the peer-made archives in as `docker.tar`, `v3.tar`, `multi.tar` and
/// `docker.tar.gz`; `None` when `shared/` is absent (outside CI).
fn archives(t: &TestDir) -> Option<()> {
    let peer = shared_dir()?.join("fixtures/peer-made");
    for (from, to) in [
        ("skopeo-docker-archive/app.tar", "docker.tar"),
        ("skopeo-oci-archive/app-v3.tar", "v3.tar"),
        ("skopeo-oci-archive-index/multi.tar", "multi.tar"),
    ] {
        fs_err::copy(peer.join(from), t.join(to)).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &fs_err::read(t.join("docker.tar")).unwrap()).unwrap();
    fs_err::write(t.join("docker.tar.gz"), gz.finish().unwrap()).unwrap();
    Some(())
}

#[test]
fn ls_archives_in_place_needs_shared() {
    let t = TestDir::new();
    if archives(&t).is_none() {
        return;
    }
    snap!(t, "ls_docker_archive", t.ocil().args(["ls", "docker.tar"]));
    snap!(t, "ls_docker_archive_gzip", t.ocil().args(["ls", "docker.tar.gz"]));
    snap!(t, "ls_oci_archive", t.ocil().args(["ls", "v3.tar"]));
    snap!(t, "ls_oci_archive_index", t.ocil().args(["ls", "multi.tar"]));
    snap!(t, "ls_oci_archive_json", t.ocil().args(["ls", "--json", "multi.tar"]));
    snap!(t, "ls_archive_with_a_reference", t.ocil().args(["ls", "v3.tar:v3"]));
    // Nothing was extracted beside the archives.
    let names: Vec<String> = fs_err::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

/// `-`: the archive comes down a pipe (`docker save IMAGE | ocil ls -`) and reads as the
/// same file does.
#[test]
fn archives_from_standard_input_needs_shared() {
    let t = TestDir::new();
    if archives(&t).is_none() {
        return;
    }
    let bytes = |name: &str| fs_err::read(t.join(name)).unwrap();
    snap!(t, "ls_stdin_gzip", t.ocil().args(["ls", "-"]).pass_stdin(bytes("docker.tar.gz")));
    snap!(
        t,
        "inspect_stdin_tag",
        t.ocil().args(["inspect", "--", "-:v1"]).pass_stdin(bytes("docker.tar"))
    );
    snap!(
        t,
        "inspect_stdin_two_entries",
        t.ocil().args(["inspect", "-"]).pass_stdin(bytes("docker.tar"))
    );
    snap!(t, "ls_stdin_not_an_archive", t.ocil().args(["ls", "-"]).pass_stdin("not a tar\n"));
    snap!(t, "ls_stdin_empty", t.ocil().args(["ls", "-"]).pass_stdin(""));
    // fsck reads an archive twice, so standard input is spooled first.
    snap!(t, "fsck_stdin_gzip", t.ocil().args(["fsck", "-"]).pass_stdin(bytes("docker.tar.gz")));
    snap!(t, "fsck_stdin_not_an_archive", t.ocil().args(["fsck", "-"]).pass_stdin("not a tar\n"));
    let fsck_json = |cmd: &mut std::process::Command| {
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let piped = fsck_json(
        t.ocil()
            .args(["fsck", "--json", "-"])
            .stdin(fs_err::File::open(t.join("multi.tar")).unwrap().into_parts().0),
    );
    assert_eq!(piped, fsck_json(t.ocil().args(["fsck", "--json", "multi.tar"])));
    // Piped or named, the same answers: every format, plain and compressed.
    for name in ["docker.tar", "docker.tar.gz", "v3.tar", "multi.tar"] {
        let named = t.ocil().args(["ls", "--json", name]).output().unwrap();
        let mut cmd = t.ocil();
        cmd.args(["ls", "--json", "-"]).stdin(std::process::Stdio::piped());
        cmd.stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = bytes(name);
        let writer = std::thread::spawn(move || {
            // The reader may stop early on an error: a broken pipe is not this test's failure.
            let _ = std::io::Write::write_all(&mut stdin, &data);
        });
        let piped = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(named.status.success() && piped.status.success(), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&named.stdout),
            String::from_utf8_lossy(&piped.stdout),
            "{name}"
        );
    }
    let cat = |cmd: &mut std::process::Command| cmd.output().unwrap().stdout;
    assert_eq!(
        cat(t.ocil().args(["cat", "multi.tar:multi"])),
        cat(t
            .ocil()
            .args(["cat", "--", "-:multi"])
            .stdin(fs_err::File::open(t.join("multi.tar")).unwrap().into_parts().0)),
    );
}

#[test]
fn inspect_archives_in_place_needs_shared() {
    let t = TestDir::new();
    if archives(&t).is_none() {
        return;
    }
    snap!(t, "inspect_docker_archive_tag", t.ocil().args(["inspect", "docker.tar:v1"]));
    snap!(
        t,
        "inspect_docker_archive_gzip_json",
        t.ocil().args(["inspect", "--json", "docker.tar.gz:latest"])
    );
    snap!(t, "inspect_docker_archive_two_tags", t.ocil().args(["inspect", "docker.tar"]));
    snap!(t, "inspect_oci_archive_only_image", t.ocil().args(["inspect", "v3.tar"]));
    snap!(t, "inspect_oci_archive_raw", t.ocil().args(["inspect", "--raw", "v3.tar:v3"]));
    snap!(t, "inspect_oci_archive_index", t.ocil().args(["inspect", "multi.tar:multi"]));
    snap!(
        t,
        "inspect_oci_archive_platform",
        t.ocil().args(["inspect", "--platform", "linux/arm64", "multi.tar"])
    );
    let layer = "sha256:f47bbcac59ed1e4b29b81cb05ddacfb723cf7661e05cee9f39114e41c8666b6c";
    snap!(t, "inspect_archive_layer", t.ocil().args(["inspect", &format!("docker.tar@{layer}")]));
    snap!(
        t,
        "inspect_compressed_archive_layer",
        t.ocil().args(["inspect", &format!("docker.tar.gz@{layer}")])
    );
    snap!(t, "inspect_archive_unknown_tag", t.ocil().args(["inspect", "docker.tar:v9"]));
    snap!(t, "inspect_missing_archive_with_tag", t.ocil().args(["inspect", "nope.tar:v1"]));
    snap!(t, "ls_missing_archive", t.ocil().args(["ls", "nope.tar.zst"]));
    snap!(t, "fsck_missing_archive", t.ocil().args(["fsck", "nope.tgz"]));
}

#[test]
fn hostile_archives_are_refused_in_place() {
    let t = TestDir::new();
    let hostile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/hostile");
    for name in
        ["dotdot-entry", "symlink-index-json", "index-json-over-16-mib", "truncated-in-an-entry"]
    {
        fs_err::copy(hostile.join(format!("{name}.tar")), t.join(format!("{name}.tar"))).unwrap();
    }
    snap!(t, "ls_hostile_dotdot", t.ocil().args(["ls", "dotdot-entry.tar"]));
    snap!(t, "inspect_hostile_symlink", t.ocil().args(["inspect", "symlink-index-json.tar"]));
    snap!(t, "ls_hostile_too_large", t.ocil().args(["ls", "index-json-over-16-mib.tar"]));
    snap!(
        t,
        "inspect_hostile_truncated",
        t.ocil().args(["inspect", "truncated-in-an-entry.tar:v1"])
    );
}

#[test]
fn cat_reads_verified_blobs_in_place_needs_shared() {
    use sha2::{Digest as _, Sha256};
    let t = TestDir::new();
    if archives(&t).is_none() {
        return;
    }
    // Every blob the import of the archive gives: the same bytes from the archive in place.
    t.run(&["import", "docker.tar", "imported"]);
    let mut n = 0;
    for e in fs_err::read_dir(t.join("imported/blobs/sha256")).unwrap() {
        let hex = e.unwrap().file_name().into_string().unwrap();
        let out = t.ocil().args(["cat", &format!("docker.tar@sha256:{hex}")]).output().unwrap();
        assert!(out.status.success(), "{hex}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(hex::encode(Sha256::digest(&out.stdout)), hex);
        n += 1;
    }
    assert_eq!(n, 4);
    let config = "sha256:bec55cea057a214f1684143f30fa83e2c9097688d515d3b5e2617ef01ff76de3";
    let layer = "sha256:f47bbcac59ed1e4b29b81cb05ddacfb723cf7661e05cee9f39114e41c8666b6c";
    snap!(
        t,
        "cat_compressed_archive_config",
        t.ocil().args(["cat", &format!("docker.tar.gz@{config}")])
    );
    snap!(
        t,
        "cat_compressed_archive_layer",
        t.ocil().args(["cat", &format!("docker.tar.gz@{layer}")])
    );
    // A blob whose bytes do not match its name never reaches stdout.
    let hostile = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/hostile/unreferenced-blob-not-matching-its-name.tar");
    fs_err::copy(hostile, t.join("bad.tar")).unwrap();
    let name = hex::encode(Sha256::digest(b"what the name says"));
    snap!(
        t,
        "cat_corrupt_blob_in_archive",
        t.ocil().args(["cat", &format!("bad.tar@sha256:{name}")])
    );
}

/// A short digest (`FILE@sha256:abc…`) is expanded and then read from one indexing of the
/// archive: a FIFO gives its bytes once, so a second indexing would wait for a writer that
/// never comes (the test unblocks it after a generous bound, and fails).
#[test]
fn a_short_digest_reads_the_archive_once_needs_shared() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let t = TestDir::new();
    if archives(&t).is_none() {
        return;
    }
    let config = "sha256:bec55cea057a214f1684143f30fa83e2c9097688d515d3b5e2617ef01ff76de3";
    let fifo = t.join("pipe.tar");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success(), "mkfifo");
    let bytes = fs_err::read(t.join("docker.tar")).unwrap();
    let mut child = t
        .ocil()
        .args(["cat", &format!("pipe.tar@{}", &config[..19])])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let writer = {
        let fifo = fifo.clone();
        // Opening for writing waits for ocil to open it for reading.
        std::thread::spawn(move || fs_err::File::create(&fifo).unwrap().write_all(&bytes))
    };
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let hung = child.try_wait().unwrap().is_none();
    if hung {
        // A second open of the FIFO waits for a writer: give it one that writes nothing.
        drop(fs_err::File::create(&fifo).unwrap());
    }
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(!hung, "ocil opened the archive a second time");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(crate::support::sha256(&out.stdout), config);
}
