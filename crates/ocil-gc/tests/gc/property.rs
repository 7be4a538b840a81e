//! Property: on seeded random layouts, gc removes exactly the garbage the generator computed.
//!
//! Each seed gives images with shared layers, nested OCI indexes and Docker manifest lists,
//! Docker and OCI media types, referrers stored only in `blobs/` (of live and of garbage
//! documents, in chains), descriptors of unknown media type (manifests, which must be
//! followed, and plain blobs), sha512 blobs, garbage and untagged entries. The same layout is
//! collected twice, once keeping referrers of live images and once with `drop_referrers`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::model::{self, Generated};
use crate::{fsck_errors, gc, open, options};

/// Seeds run on every `cargo test`.
const SEEDS: u64 = 40;

fn digests<'a>(it: impl IntoIterator<Item = &'a ocil_layout::Digest>) -> BTreeSet<String> {
    it.into_iter().map(|d| d.to_string()).collect()
}

fn show(set: &BTreeSet<String>) -> String {
    set.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// The entries `tagged_only` keeps, by the model: tagged ones, then untagged ones that are
/// live or whose subject is live, until nothing changes.
fn kept_entries(g: &Generated, keep_referrers: bool) -> Vec<bool> {
    let tagged =
        |e: &serde_json::Value| e["annotations"]["org.opencontainers.image.ref.name"].is_string();
    let mut kept: Vec<bool> = g.entries.iter().map(tagged).collect();
    loop {
        let roots: Vec<String> =
            g.roots.iter().zip(&kept).filter(|(_, k)| **k).map(|(r, _)| r.clone()).collect();
        let live = g.store.live(&roots, keep_referrers);
        let mut changed = false;
        for (i, r) in g.roots.iter().enumerate() {
            let subject_live = g.store.subjects.get(r).is_some_and(|s| live.contains(s));
            if !kept[i] && (live.contains(r) || subject_live) {
                kept[i] = true;
                changed = true;
            }
        }
        if !changed {
            return kept;
        }
    }
}

/// Collect `dir` (a fresh copy of `g`) and check every property.
fn check(seed: u64, g: &Generated, dir: &Path, keep_referrers: bool, tagged_only: bool) {
    let ctx = format!("seed {seed}, keep_referrers {keep_referrers}, tagged_only {tagged_only}");
    let before = model::blobs_on_disk(dir);
    let all: BTreeSet<String> = g.store.blobs.keys().cloned().collect();
    assert_eq!(before, all, "{ctx}: the generator's store is what is on disk");
    if !tagged_only && keep_referrers {
        // Once per seed (the four runs start from the same layout).
        let errors = fsck_errors(dir);
        assert!(errors.is_empty(), "{ctx}: the generated layout is valid before gc: {errors:#?}");
    }

    let kept =
        if tagged_only { kept_entries(g, keep_referrers) } else { vec![true; g.roots.len()] };
    let roots: Vec<String> =
        g.roots.iter().zip(&kept).filter(|(_, k)| **k).map(|(r, _)| r.clone()).collect();
    let entries: Vec<serde_json::Value> =
        g.entries.iter().zip(&kept).filter(|(_, k)| **k).map(|(e, _)| e.clone()).collect();
    let dropped: BTreeSet<String> =
        g.roots.iter().zip(&kept).filter(|(_, k)| !**k).map(|(r, _)| r.clone()).collect();
    let live = g.store.live(&roots, keep_referrers);
    let garbage: BTreeSet<String> = all.difference(&live).cloned().collect();
    let opts = ocil_gc::Options {
        drop_referrers: !keep_referrers,
        tagged_only,
        ..options(Duration::ZERO)
    };
    let (plan, report) = gc(dir, &opts).unwrap_or_else(|e| panic!("{ctx}: gc failed: {e:?}"));

    let planned = digests(plan.remove.iter().map(|r| &r.digest));
    let wrongly_planned: BTreeSet<String> = planned.intersection(&live).cloned().collect();
    assert!(
        wrongly_planned.is_empty(),
        "{ctx}: plan removes live blobs: {}",
        show(&wrongly_planned)
    );
    assert_eq!(planned, garbage, "{ctx}: the plan removes exactly the garbage");
    assert!(plan.dangling.is_empty(), "{ctx}: nothing reachable is missing: {:?}", plan.dangling);
    assert_eq!(plan.reachable, live.len(), "{ctx}: reachable count");
    let expected_referrers: BTreeSet<String> = if keep_referrers {
        let named = g.store.live(&roots, false);
        live.iter()
            .filter(|d| !named.contains(*d) && g.store.subjects.contains_key(*d))
            .cloned()
            .collect()
    } else {
        BTreeSet::new()
    };
    let reported = digests(&plan.referrers);
    if tagged_only && keep_referrers {
        // An untagged entry kept because its subject is a stored referrer (a signature entry
        // of a stored SBOM) also reaches that referrer through `subject`, so the referrer
        // may be counted either way; it is never an entry itself.
        let entries: BTreeSet<&String> = roots.iter().collect();
        let extra: BTreeSet<&String> = reported.difference(&expected_referrers).collect();
        assert!(
            expected_referrers.is_subset(&reported)
                && extra.iter().all(|d| {
                    live.contains(*d) && g.store.subjects.contains_key(*d) && !entries.contains(d)
                }),
            "{ctx}: referrers kept: {reported:?}, expected {expected_referrers:?}"
        );
    } else {
        assert_eq!(reported, expected_referrers, "{ctx}: referrers kept");
    }
    assert_eq!(digests(&plan.dropped_entries), dropped, "{ctx}: entries dropped");
    assert_eq!(report.removed_blobs, garbage.len(), "{ctx}: removed count");

    let after = model::blobs_on_disk(dir);
    let lost: BTreeSet<String> = live.difference(&after).cloned().collect();
    assert!(lost.is_empty(), "{ctx}: live blobs deleted: {}", show(&lost));
    let removed: BTreeSet<String> = before.difference(&after).cloned().collect();
    assert_eq!(removed, garbage, "{ctx}: removed == the generator's garbage");
    let errors = fsck_errors(dir);
    assert!(errors.is_empty(), "{ctx}: fsck after gc: {errors:#?}");

    let (again, report) = gc(dir, &opts).unwrap_or_else(|e| panic!("{ctx}: second gc: {e:?}"));
    assert!(again.remove.is_empty(), "{ctx}: a second gc plans nothing: {:?}", again.remove);
    assert_eq!(report.removed_blobs, 0, "{ctx}: a second gc removes nothing");
    assert_eq!(model::blobs_on_disk(dir), after, "{ctx}: a second gc changes nothing");
    // Nothing else was touched: index.json is as written.
    let index = open(dir).read_index_bytes().expect("read index.json");
    let v: serde_json::Value = serde_json::from_slice(&index).expect("index.json is JSON");
    assert_eq!(v["manifests"], serde_json::Value::Array(entries), "{ctx}: entries");
}

#[test]
fn gc_removes_exactly_the_garbage_on_random_layouts() {
    let mut totals: BTreeMap<&'static str, usize> = BTreeMap::new();
    let (mut removed, mut kept, mut dropped) = (0, 0, 0);
    for seed in 0..SEEDS {
        let g = model::generate(seed);
        for (keep_referrers, tagged_only) in
            [(true, false), (false, false), (true, true), (false, true)]
        {
            let tmp = tempfile::tempdir().expect("temp dir");
            g.write(tmp.path());
            check(seed, &g, tmp.path(), keep_referrers, tagged_only);
        }
        dropped += kept_entries(&g, true).iter().filter(|k| !**k).count();
        removed += g.garbage(true).len();
        kept += g.live(true).len();
        for (k, v) in &g.counts {
            *totals.entry(k).or_default() += v;
        }
    }
    // The generator covered every feature (a generator that stopped producing one would make
    // this test pass vacuously).
    for feature in [
        "docker images",
        "oci images",
        "docker manifest lists",
        "oci indexes",
        "nested indexes",
        "unknown-typed manifests",
        "unknown-typed plain blobs",
        "unknown-typed index children",
        "unknown-typed entries",
        "untagged entries",
        "referrers",
        "referrer indexes",
        "referrer chains",
        "referrers named in index.json",
        "referrers of absent subjects",
        "absent foreign layers",
        "sha512 blobs",
        "garbage blobs",
    ] {
        assert!(totals.get(feature).copied().unwrap_or(0) > 0, "no seed produced {feature}");
    }
    assert!(removed > 0 && kept > 0, "seeds produced garbage ({removed}) and live blobs ({kept})");
    assert!(dropped > 0, "tagged_only dropped no entry on any seed");
}

/// The model's live set differs with and without referrers on some seed, so the
/// `drop_referrers` half of the property checks something.
#[test]
fn referrers_make_a_difference_on_some_seeds() {
    let differing = (0..SEEDS)
        .filter(|s| {
            let g = model::generate(*s);
            g.live(true) != g.live(false)
        })
        .count();
    assert!(
        differing >= SEEDS as usize / 4,
        "only {differing} seeds have store-only live referrers"
    );
}
