//! The layout lock excludes: while this process holds `Layout::lock()`, `ocil tag` and
//! `ocil gc` wait, and they finish once it is released.

use std::process::{Child, Stdio};
use std::time::Duration;

use ocil_layout::Layout;

use crate::support::{TestDir, digest_of};

/// Poll `child` for about 300 ms; true when it is still running throughout.
///
/// A bounded poll, not a sleep standing in for synchronisation: the only claim is that the
/// child has not finished while the lock is held.
fn still_running_after_a_while(child: &mut Child) -> bool {
    for _ in 0..30 {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn waits_for_the_lock(t: &TestDir, args: &[&str]) -> std::process::Output {
    let layout = Layout::open_ambient(&t.join("img")).unwrap();
    let lock = layout.lock().unwrap();
    let mut child =
        t.ocil().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let waited = still_running_after_a_while(&mut child);
    drop(lock);
    let out = child.wait_with_output().unwrap();
    assert!(waited, "`ocil {}` finished while the lock was held: {out:?}", args.join(" "));
    assert!(out.status.success(), "`ocil {}`: {out:?}", args.join(" "));
    out
}

#[test]
fn tag_waits_for_the_lock() {
    let t = TestDir::new();
    let img = t.image("img");
    let out = waits_for_the_lock(&t, &["tag", "img:v1", "v2"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("v2 -> {}\n", digest_of(&img, "v1")));
    assert_eq!(digest_of(&img, "v2"), digest_of(&img, "v1"));
}

#[test]
fn gc_waits_for_the_lock() {
    let t = TestDir::new();
    t.image("img");
    let out = waits_for_the_lock(&t, &["gc", "--prune=now", "img"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed: 0 blob(s)"), "{out:?}");
}

#[test]
fn the_lock_is_free_again_afterwards() {
    let t = TestDir::new();
    t.image("img");
    t.run(&["tag", "img:v1", "v2"]);
    let layout = Layout::open_ambient(&t.join("img")).unwrap();
    assert!(layout.try_lock().unwrap().is_some());
}
