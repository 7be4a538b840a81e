//! Many `ocil config` and `ocil tag` processes on one layout at once: every edit takes the
//! layout lock and reads `index.json` under it, so no tag and no edit is lost (the bug
//! containers/image#1028 has had open since 2020).

use std::collections::BTreeSet;
use std::path::Path;
use std::thread;

use crate::support::*;

const WRITERS: usize = 4;
const ROUNDS: usize = 6;

fn env_of(dir: &Path, digest: &str) -> BTreeSet<String> {
    serde_json::from_value::<Option<Vec<String>>>(config_json(dir, digest)["config"]["Env"].clone())
        .expect("Env")
        .unwrap_or_default()
        .into_iter()
        .collect()
}

#[test]
fn parallel_configs_and_tags_lose_nothing() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("l");
    let d = arg(&dir).to_owned();
    ocil_ok(&["init", &d]);
    ocil_ok(&["new", "--created", "2024-01-01T00:00:00Z", &format!("{d}:shared")]);
    for w in 0..WRITERS {
        let created = format!("2024-01-01T00:00:0{}Z", w + 1);
        ocil_ok(&["new", "--created", &created, &format!("{d}:t{w}")]);
    }
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let d = d.clone();
            thread::spawn(move || {
                for i in 0..ROUNDS {
                    ocil_ok(&["config", &format!("{d}:t{w}"), "--env", &format!("W{w}_{i}=1")]);
                    ocil_ok(&["config", &format!("{d}:shared"), "--env", &format!("S{w}_{i}=1")]);
                    ocil_ok(&["tag", &format!("{d}:t{w}"), &format!("w{w}-{i}")]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a writer failed");
    }
    assert_fsck_clean(&dir, "after the parallel writers");
    let tags = tags(&dir);
    assert_eq!(tags.len(), 1 + WRITERS + WRITERS * ROUNDS, "{tags:?}");
    let shared = env_of(&dir, &tags["shared"]);
    for w in 0..WRITERS {
        let own = env_of(&dir, &tags[&format!("t{w}")]);
        for i in 0..ROUNDS {
            assert!(shared.contains(&format!("S{w}_{i}=1")), "lost edit S{w}_{i}: {shared:?}");
            assert!(own.contains(&format!("W{w}_{i}=1")), "lost edit W{w}_{i}: {own:?}");
            // Each alias names t{w} as it was after round i.
            let alias = env_of(&dir, &tags[&format!("w{w}-{i}")]);
            let expected: BTreeSet<String> = (0..=i).map(|j| format!("W{w}_{j}=1")).collect();
            assert_eq!(alias, expected, "w{w}-{i}");
        }
    }
}
