//! Progress bars: drawn on stderr under a terminal, never when stderr is piped or with
//! `--quiet`. The terminal is a pseudo-terminal from `script` (util-linux).

use std::path::Path;

use crate::crash_harness::Rng;
use crate::support::{build, ocil, require_tool, run};

/// Run `ocil args` under `script`, stdout and stderr both on the pseudo-terminal; what the
/// terminal showed.
fn under_pty(cwd: &Path, args: &str) -> String {
    let cmd = format!("cd '{}' && '{}' {args}", cwd.display(), env!("CARGO_BIN_EXE_ocil"));
    let out = run("script", ["-qec", &cmd, "/dev/null"]);
    assert!(out.ok, "script -c `{cmd}`: {}{}", out.stdout, out.stderr);
    out.stdout
}

#[test]
fn bars_only_on_a_terminal_needs_script() {
    if !require_tool("script") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    build(&t.join("src"), 2, 64 * 1024, &mut Rng(3));
    ocil([
        "export".as_ref(),
        t.join("src").as_os_str(),
        "-o".as_ref(),
        t.join("a.tar").as_os_str(),
    ]);
    // A layout of its own to append to, a directory, and the same as a tar.
    ocil(["copy".as_ref(), t.join("src").as_os_str(), t.join("app").as_os_str()]);
    fs_err::create_dir_all(t.join("rootfs")).unwrap();
    let mut rng = Rng(5);
    let big: Vec<u8> = (0..1 << 20).map(|_| rng.next_u64() as u8).collect();
    fs_err::write(t.join("rootfs/big"), &big).unwrap();
    let out = run(
        "tar",
        [
            "-cf".as_ref(),
            t.join("layer.tar").as_os_str(),
            "-C".as_ref(),
            t.join("rootfs").as_os_str(),
            ".".as_ref(),
        ],
    );
    assert!(out.ok, "tar: {}", out.stderr);

    for (args, label) in [
        ("copy src dst", "copy"),
        ("import a.tar imp", "import"),
        ("export src -o b.tar", "export"),
        ("fsck src", "hash"),
        ("convert src:i0 --to oci --compress zstd --tag z", "convert"),
        ("append app:i0 rootfs --tag a1", "layer"),
        ("append app:i0 layer.tar --tag a2", "layer"),
        ("append app:i0 --file rootfs/big:/big --tag a3", "layer"),
    ] {
        let shown = under_pty(t, args);
        assert!(shown.contains(label) && shown.contains("B/s"), "no bar for `{args}`:\n{shown}");
        // The normal output is there too.
        assert!(shown.lines().count() >= 2, "{shown}");
    }
    // Reading a compressed archive in place (one pass over all of it): a spinner.
    ocil([
        "export".as_ref(),
        t.join("src").as_os_str(),
        "-o".as_ref(),
        t.join("c.tar.gz").as_os_str(),
    ]);
    for args in ["ls c.tar.gz", "inspect c.tar.gz:i0"] {
        let shown = under_pty(t, args);
        assert!(
            shown.contains("read") && shown.contains("B/s"),
            "no spinner for `{args}`:\n{shown}"
        );
    }
    let shown = under_pty(t, "ls -q c.tar.gz");
    assert!(!shown.contains("B/s"), "a spinner with -q:\n{shown}");
    // gc and rm --gc: a bar over the bytes removed.
    ocil(["untag".to_owned(), format!("{}:a1", t.join("app").display())]);
    let shown = under_pty(t, "gc --prune=now app");
    assert!(shown.contains("remove [") && shown.contains("B/s"), "no bar for gc:\n{shown}");
    assert!(shown.contains("removed: "), "{shown}");
    let shown = under_pty(t, "rm --gc --prune=now app:a2");
    assert!(shown.contains("remove [") && shown.contains("B/s"), "no bar for rm --gc:\n{shown}");
    // --quiet: no bar on the terminal either.
    let shown = under_pty(t, "copy --quiet src dst2");
    assert!(!shown.contains("B/s"), "a bar despite --quiet:\n{shown}");
    for args in ["append -q app:i0 rootfs --tag q1", "append --json app:i0 rootfs --tag q2"] {
        let shown = under_pty(t, args);
        assert!(!shown.contains("B/s"), "a bar with `{args}`:\n{shown}");
    }

    // Piped: stderr is empty, stdout is the report.
    let out = run(
        env!("CARGO_BIN_EXE_ocil"),
        ["copy".as_ref(), t.join("src").as_os_str(), t.join("dst3").as_os_str()],
    );
    assert!(out.ok);
    assert_eq!(out.stderr, "");
    assert!(out.stdout.starts_with("copied 4 image(s)"), "{}", out.stdout);
    let out = run(env!("CARGO_BIN_EXE_ocil"), ["fsck".as_ref(), t.join("src").as_os_str()]);
    assert_eq!(out.stderr, "");
    let image = format!("{}:i0", t.join("app").display());
    for layer in [t.join("rootfs"), t.join("layer.tar")] {
        let out = run(
            env!("CARGO_BIN_EXE_ocil"),
            ["append".as_ref(), image.as_ref(), layer.as_os_str(), "--tag".as_ref(), "p".as_ref()],
        );
        assert!(out.ok, "{}", out.stderr);
        assert_eq!(out.stderr, "");
        assert!(out.stdout.starts_with("layer sha256:"), "{}", out.stdout);
        assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    }
}
