//! 32 clients pull at once while `ocil tag` moves a tag and `ocil gc --prune now` removes
//! garbage from the served layout: every manifest served hashes to its digest and every
//! blob served is whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

#[test]
fn pulls_while_tag_and_gc_run_on_the_same_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("busy");
    build(&dir, 4, 300_000, 7);
    let d0 = tag_digest(&dir, "i0").unwrap();
    let d1 = tag_digest(&dir, "i1").unwrap();
    ocil(["tag".to_owned(), format!("{}@{d0}", dir.display()), "moving".to_owned()]);
    let s = serve(&dir, &[]);
    let addr = Arc::new(s.addr.clone());
    let done = Arc::new(AtomicBool::new(false));
    let pulls = Arc::new(AtomicUsize::new(0));
    // The writers: move `moving`, make and drop an image, collect.
    let writer = {
        let (dir, done) = (dir.clone(), done.clone());
        std::thread::spawn(move || {
            let mut rounds = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && rounds < 12 {
                let target = if rounds % 2 == 0 { &d1 } else { &d0 };
                ocil([
                    "tag".to_owned(),
                    format!("{}@{target}", dir.display()),
                    "moving".to_owned(),
                ]);
                ocil(["new".to_owned(), at(&dir, &format!("tmp{rounds}"))]);
                ocil(["untag".to_owned(), at(&dir, &format!("tmp{rounds}"))]);
                ocil(["gc".as_ref(), dir.as_os_str(), "--prune".as_ref(), "now".as_ref()]);
                rounds += 1;
            }
            done.store(true, Ordering::Relaxed);
            rounds
        })
    };
    let failures: Vec<String> = {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (addr, pulls, done) = (addr.clone(), pulls.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut bad = Vec::new();
                    let tags = ["i0", "i1", "i2", "i3", "moving"];
                    // At least 6 pulls each, and on until the writers are done (bounded).
                    for round in 0..2000 {
                        if round >= 6 && done.load(Ordering::Relaxed) {
                            break;
                        }
                        let tag = tags[(i + round) % tags.len()];
                        bad.extend(pull(&addr, tag));
                        pulls.fetch_add(1, Ordering::Relaxed);
                    }
                    bad
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    };
    let rounds = writer.join().unwrap();
    assert!(failures.is_empty(), "{} bad pulls: {failures:#?}", failures.len());
    assert!(pulls.load(Ordering::Relaxed) >= 32 * 6);
    assert_eq!(rounds, 12, "every tag and gc round ran");
    // The layout is still clean.
    ocil(["fsck".as_ref(), dir.as_os_str()]);
}

/// Pull one image; what was wrong with it.
fn pull(addr: &str, tag: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let Some(m) = get(addr, &format!("/v2/busy/manifests/{tag}")) else {
        return vec![format!("{tag}: the manifest was cut")];
    };
    if m.status != 200 {
        return vec![format!("{tag}: manifest status {}", m.status)];
    }
    let claimed = m.header("docker-content-digest").unwrap_or_default().to_owned();
    if digest(&m.body) != claimed {
        bad.push(format!("{tag}: manifest hashes to {}, served as {claimed}", digest(&m.body)));
    }
    let v: Value = serde_json::from_slice(&m.body).unwrap_or_default();
    let blobs = std::iter::once(&v["config"]).chain(v["layers"].as_array().into_iter().flatten());
    for b in blobs {
        let Some(d) = b["digest"].as_str() else { continue };
        match get(addr, &format!("/v2/busy/blobs/{d}")) {
            Some(r) if r.status == 200 && digest(&r.body) == d => {}
            Some(r) => {
                bad.push(format!("{tag}: blob {d}: status {}, {} bytes", r.status, r.body.len()))
            }
            None => bad.push(format!("{tag}: blob {d} was cut")),
        }
    }
    bad
}
