//! `ocil config` killed with SIGKILL at seeded random moments, many times: fsck stays
//! clean, and each tag names the old image or the new one, never nothing.
//!
//! The kill moments are seeded delays between 0 and 1.5 times the median length of an
//! uninterrupted run (most runs are killed, some finish); the delay is a wait on the child
//! (polling `try_wait`), not a sleep the checks depend on: whatever the moment, the same
//! properties must hold.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use crate::crash_harness::{kill_after, ocil_command};
use crate::support::*;

const KILLS: usize = 40;
const TAGS: usize = 6;

/// xorshift64*, seeded: the same kill moments on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The `Env` of every image `digest` names (itself, or an index's children).
fn envs(dir: &Path, digest: &str) -> Vec<Vec<String>> {
    let doc = blob_json(dir, digest);
    let images: Vec<String> = match doc["manifests"].as_array() {
        Some(children) => {
            children.iter().map(|c| c["digest"].as_str().expect("digest").to_owned()).collect()
        }
        None => vec![digest.to_owned()],
    };
    images
        .iter()
        .map(|m| {
            let env = &config_json(dir, m)["config"]["Env"];
            serde_json::from_value::<Option<Vec<String>>>(env.clone())
                .expect("Env")
                .unwrap_or_default()
        })
        .collect()
}

/// Whether `digest` is the edit of `old` that added `var`: every image's Env is the old
/// one plus `var`.
fn is_edit_of(dir: &Path, old: &str, new: &str, var: &str) -> bool {
    let (before, after) = (envs(dir, old), envs(dir, new));
    before.len() == after.len()
        && before.iter().zip(&after).all(|(b, a)| {
            let mut b = b.clone();
            b.push(var.to_owned());
            &b == a
        })
}

fn blob_count(dir: &Path) -> usize {
    fs_err::read_dir(dir.join("blobs/sha256"))
        .expect("blobs/sha256")
        .filter(|e| {
            let name = e.as_ref().expect("entry").file_name();
            !name.to_string_lossy().starts_with('.')
        })
        .count()
}

fn build(dir: &Path) {
    let d = arg(dir);
    ocil_ok(&["init", d]);
    for i in 0..TAGS {
        let platform = if i % 2 == 0 { "linux/amd64" } else { "linux/arm64" };
        let created = format!("2024-03-01T00:00:0{i}Z");
        ocil_ok(&["new", "--created", &created, "--platform", platform, &format!("{d}:k{i}")]);
    }
    let child = |tag: &str, arch: &str| {
        let e = entry(dir, tag);
        json!({"mediaType": e["mediaType"], "digest": e["digest"], "size": e["size"],
               "platform": {"architecture": arch, "os": "linux"}})
    };
    let index = json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
                       "manifests":[child("k0","amd64"), child("k1","arm64")]});
    let (digest, size) = put_blob(dir, &serde_json::to_vec(&index).expect("JSON"));
    let mut top = read_index(dir);
    top["manifests"].as_array_mut().expect("manifests").push(json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": size,
        "annotations": {REF_NAME: "multi"}}));
    write_index(dir, &top);
    assert_fsck_clean(dir, "the built layout");
}

fn config_args(d: &str, target: &str, var: &str, new_tag: Option<&str>) -> Vec<String> {
    let mut args = vec!["config".to_owned(), format!("{d}:{target}"), "--env".into(), var.into()];
    if target == "multi" {
        args.push("--all-platforms".into());
    }
    if let Some(t) = new_tag {
        args.extend(["--tag".into(), t.to_owned()]);
    }
    args
}

#[test]
#[allow(clippy::print_stderr, reason = "how many runs were interrupted, for the log")]
fn config_killed_at_random_moments_leaves_old_or_new_images() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = &tmp.path().join("l");
    let d = arg(dir);
    build(dir);
    let mut rng = Rng(0x636f_6e66_6967_2121);

    // The median length of an uninterrupted edit.
    let mut runs = Vec::new();
    for i in 0..5 {
        let args = config_args(d, if i == 4 { "multi" } else { "k2" }, &format!("WARM={i}"), None);
        let start = Instant::now();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ocil_ok(&args);
        runs.push(start.elapsed());
    }
    runs.sort();
    let full = runs[runs.len() / 2];

    let mut killed = 0;
    // Runs killed after writing some blobs but before replacing index.json.
    let mut partial = 0;
    for k in 0..KILLS {
        let before: BTreeMap<String, String> = tags(dir);
        let blobs_before = blob_count(dir);
        let r = rng.below(TAGS as u64 + 1) as usize;
        let target = if r == TAGS { "multi".to_owned() } else { format!("k{r}") };
        let var = format!("N{k}=1");
        let new_tag = (k % 4 == 3).then(|| format!("n{k}"));
        let args = config_args(d, &target, &var, new_tag.as_deref());
        // Up to 1.5 runs: most are killed, some finish.
        let delay = full.mul_f64(rng.below(1500) as f64 / 1000.0);
        let ctx = format!("kill {k}: {args:?} after {delay:?} of {full:?}");
        let was_killed = kill_after(ocil_command(&args).env_remove("SOURCE_DATE_EPOCH"), delay);
        killed += usize::from(was_killed);
        assert_fsck_clean(dir, &ctx);
        let after = tags(dir);
        if was_killed && after == before && blob_count(dir) > blobs_before {
            partial += 1;
        }
        for (tag, old) in &before {
            let now = after.get(tag).unwrap_or_else(|| panic!("{ctx}: `{tag}` vanished"));
            if new_tag.is_none() && tag == &target && now != old {
                assert!(
                    is_edit_of(dir, old, now, &var),
                    "{ctx}: `{tag}` -> {now} is neither image"
                );
            } else {
                assert_eq!(now, old, "{ctx}: `{tag}` moved");
            }
        }
        if let Some(t) = &new_tag
            && let Some(now) = after.get(t)
        {
            assert!(is_edit_of(dir, &before[&target], now, &var), "{ctx}: `{t}` -> {now}");
        }
        let extra: Vec<&String> = after.keys().filter(|t| !before.contains_key(*t)).collect();
        assert!(extra.iter().all(|t| Some(*t) == new_tag.as_ref()), "{ctx}: new tags {extra:?}");
        if k % 10 == 9 {
            ocil_ok(&["gc", "--prune=now", d]);
            assert_eq!(tags(dir), after, "{ctx}: gc changed tags");
            assert_fsck_clean(dir, &format!("{ctx}, then gc"));
        }
    }
    eprintln!(
        "config: {killed} of {KILLS} runs killed, {partial} after writing blobs and before index.json (median run {full:?})"
    );
    assert!(killed >= KILLS / 5, "only {killed} of {KILLS} runs were interrupted");
    assert!(killed < KILLS, "no run finished: the new-image side was never checked");
    assert!(partial > 0, "no run was killed between its blobs and index.json");
    let out = ocil_ok(&["gc", "--prune=now", "--json", d]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v["report"]["removed_blobs"].is_u64());
    assert_fsck_clean(dir, "at the end");
}
