//! The OCI-layout cases of `shared/conformance/CASES.md`: real layouts written by other
//! projects, with facts from an independent checker. For each one, `ocil fsck --deep` must
//! reach the listed verdict and report the listed errors, `ocil ls` must list the ref names,
//! and `ocil gc` must remove exactly the unreachable blobs (or refuse, where the layout cannot
//! be trusted), leaving fsck's verdict unchanged.
//!
//! Archives (`*.tar`) are not read by the CLI yet and are not checked here.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::{self, Checks, blobs, fsck_errors, gc_removed, ocil, snapshot, temp_copy};

/// One error line of a case: `` - `CODE`: text ``.
#[derive(Debug, Clone)]
struct ExpectedError {
    code: String,
    /// The first digest on the line: the blob (or manifest) the error is about.
    digest: Option<String>,
    line: String,
}

/// What CASES.md says about one case.
#[derive(Debug, Clone, Default)]
struct Case {
    path: String,
    kind: String,
    verdict: String,
    layout_file: Option<bool>,
    entries: Option<usize>,
    ref_names: Option<Vec<String>>,
    untagged: usize,
    blobs_on_disk: Option<usize>,
    reachable: Option<usize>,
    unreachable_count: Option<usize>,
    missing_count: Option<usize>,
    missing: Vec<String>,
    unreachable: Vec<String>,
    errors: Vec<ExpectedError>,
    errors_total: Option<usize>,
}

impl Case {
    fn valid(&self) -> bool {
        match self.verdict.as_str() {
            "valid" => true,
            "invalid" => false,
            v => panic!("{}: unknown verdict `{v}`", self.path),
        }
    }

    fn expects(&self, code: &str) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }

    /// A directory layout the CLI reads (archives are out of scope for now).
    fn is_layout_dir(&self) -> bool {
        matches!(self.kind.as_str(), "oci-layout" | "docker-save-dir+oci-layout")
    }
}

/// The items between backticks.
fn ticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The first `sha256:<64 hex>` in `s`.
fn first_digest(s: &str) -> Option<String> {
    s.match_indices("sha256:").find_map(|(i, _)| {
        let hex: String = s[i + 7..].chars().take_while(char::is_ascii_hexdigit).collect();
        (hex.len() == 64).then(|| format!("sha256:{hex}"))
    })
}

/// The number right after `key` in `s` (`"blobs on disk: 8 (..."` -> 8).
fn number_after(s: &str, key: &str) -> Option<usize> {
    let rest = &s[s.find(key)? + key.len()..];
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// `… (18 in all)` / `… 18 errors in all`.
fn in_all(s: &str) -> Option<usize> {
    let before = &s[..s.find(" in all")?];
    let words: Vec<&str> = before.split([' ', '(']).collect();
    words.iter().rev().find_map(|w| w.parse().ok())
}

fn parse(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut cur: Option<Case> = None;
    let mut in_errors = false;
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("### ") {
            cases.extend(cur.take());
            cur = Some(Case { path: path.trim().to_owned(), ..Case::default() });
            in_errors = false;
            continue;
        }
        let Some(c) = cur.as_mut() else { continue };
        if in_errors {
            if let Some(item) = line.strip_prefix("  - ") {
                if item.starts_with('`') {
                    let code = ticked(item).into_iter().next().expect("error code");
                    c.errors.push(ExpectedError {
                        code,
                        digest: first_digest(item),
                        line: item.to_owned(),
                    });
                } else {
                    c.errors_total = in_all(item);
                }
                continue;
            }
            in_errors = false;
        }
        let Some(item) = line.strip_prefix("- ") else { continue };
        if let Some(rest) = item.strip_prefix("kind: ") {
            let bold: Vec<&str> = rest.split("**").collect();
            c.kind = bold.get(1).expect("kind").to_string();
            c.verdict = bold.get(3).expect("verdict").to_string();
        } else if item.starts_with("errors an fsck should report:") {
            in_errors = true;
        } else if let Some(rest) = item.strip_prefix("unreachable blobs (a GC removes these):") {
            c.unreachable = ticked(rest);
        } else if let Some(rest) = item.strip_prefix("ref names (") {
            let rest = &rest[rest.find("):").expect("ref names list") + 2..];
            c.ref_names = Some(ticked(rest));
        } else if let Some(rest) = item.strip_prefix("oci-layout: ") {
            c.layout_file = Some(rest.starts_with("present"));
        } else if item.starts_with("index.json: ") {
            c.entries = number_after(item, ", ");
        } else if item.starts_with("untagged top-level descriptors: ") {
            c.untagged = number_after(item, ": ").expect("untagged count");
        } else if item.starts_with("blobs on disk: ") {
            c.blobs_on_disk = number_after(item, "blobs on disk: ");
            c.reachable = number_after(item, "reachable from index.json: ");
            c.unreachable_count = number_after(item, "; unreachable: ");
            c.missing_count = number_after(item, "referenced but missing: ");
        } else if let Some(rest) = item.strip_prefix("missing blobs: ") {
            c.missing = ticked(rest);
            if let Some(n) = in_all(rest) {
                c.missing_count = c.missing_count.or(Some(n));
            }
        }
    }
    cases.extend(cur);
    cases
}

/// The CASES codes we check, mapped to ours. They are the same names today; a new code in
/// CASES.md must be added here deliberately.
fn our_code(code: &str) -> &'static str {
    match code {
        "BLOB_MISSING" => "BLOB_MISSING",
        "BLOB_SIZE_MISMATCH" => "BLOB_SIZE_MISMATCH",
        "DIFF_ID_MISMATCH" => "DIFF_ID_MISMATCH",
        "LAYOUT_FILE_MISSING" => "LAYOUT_FILE_MISSING",
        "INDEX_INVALID" => "INDEX_INVALID",
        other => panic!("CASES.md lists `{other}` for a layout: map it to an ocil code"),
    }
}

/// The layout cases, with the corpus directory they live in.
fn layout_cases() -> Option<(std::path::PathBuf, Vec<Case>)> {
    let shared = support::shared_dir()?;
    let dir = shared.join("conformance");
    let text = fs_err::read_to_string(dir.join("CASES.md")).expect("read CASES.md");
    let all = parse(&text);
    let layouts: Vec<Case> = all.into_iter().filter(Case::is_layout_dir).collect();
    Some((dir, layouts))
}

/// The named cases the brief singles out must be among those parsed, so a parsing
/// regression cannot quietly check nothing.
#[test]
fn cases_are_parsed_needs_shared() {
    let Some((dir, cases)) = layout_cases() else { return };
    assert_eq!(cases.len(), 20, "19 oci-layout cases + the docker-save-dir+oci-layout one");
    for c in &cases {
        assert!(dir.join(&c.path).is_dir(), "{}: not a directory", c.path);
        assert!(!c.verdict.is_empty(), "{}: no verdict", c.path);
        assert!(c.valid() || !c.errors.is_empty(), "{}: invalid but no errors listed", c.path);
    }
    let get = |suffix: &str| {
        cases.iter().find(|c| c.path.ends_with(suffix)).unwrap_or_else(|| panic!("no `{suffix}`"))
    };
    assert_eq!(get("/test_gc_index").unreachable.len(), 1);
    assert_eq!(get("/delete_image_shared_blobs_dir").unreachable.len(), 1);
    assert!(get("/zot/command/blobs").expects("INDEX_INVALID"));
    assert_eq!(get("/ocilayout1").errors_total, Some(18));
    assert_eq!(get("/ocilayout1").missing_count, Some(18));
    assert_eq!(get("regclient/testdata/testrepo").ref_names.as_ref().map(Vec::len), Some(24));
    assert_eq!(get("/delete_image_multiple_images").errors.len(), 7);
    assert_eq!(get("/manifest").layout_file, Some(false));
}

/// `ocil fsck --deep --json`: the verdict (exit 0 valid, 1 invalid), every listed error for
/// its digest, the missing blobs, and the blob counts.
#[test]
fn cases_fsck_needs_shared() {
    let Some((dir, cases)) = layout_cases() else { return };
    let mut checks = Checks::default();
    for c in &cases {
        let path = dir.join(&c.path);
        let out = ocil(["fsck".as_ref(), "--deep".as_ref(), "--json".as_ref(), path.as_os_str()]);
        let want = if c.valid() { 0 } else { 1 };
        checks.check(out.code == want, || {
            format!("{}: fsck exit {} (want {want}): {}", c.path, out.code, out.describe())
        });
        if out.code > 1 {
            continue;
        }
        let report = out.json();
        let problems = report["problems"].as_array().expect("problems").clone();
        let errors: Vec<&Value> = problems.iter().filter(|p| p["severity"] == "error").collect();
        for e in &c.errors {
            let code = our_code(&e.code);
            let found = errors.iter().any(|p| {
                p["code"] == code
                    && e.digest.as_ref().is_none_or(|d| {
                        p["digest"] == d.as_str()
                            || p["message"].as_str().is_some_and(|m| m.contains(d.as_str()))
                    })
            });
            checks.check(found, || format!("{}: not reported: {}", c.path, e.line));
        }
        if let Some(total) = c.errors_total {
            checks.check(errors.len() >= total, || {
                format!("{}: {} errors, CASES says {total} in all", c.path, errors.len())
            });
        }
        for d in &c.missing {
            let found = errors.iter().any(|p| p["code"] == "BLOB_MISSING" && p["digest"] == *d);
            checks.check(found, || format!("{}: missing blob {d} not reported", c.path));
        }
        let stats = &report["stats"];
        let stat = |k: &str| stats[k].as_u64().map(|n| n as usize);
        if let Some(n) = c.blobs_on_disk {
            checks.eq(&format!("{}: blobs on disk", c.path), stat("blobs"), Some(n));
        }
        if let Some(n) = c.reachable {
            checks.eq(&format!("{}: reachable", c.path), stat("reachable"), Some(n));
        }
        if let Some(n) = c.unreachable_count {
            checks.eq(&format!("{}: unreachable", c.path), stat("unreferenced"), Some(n));
        }
        if let Some(n) = c.missing_count {
            checks.eq(&format!("{}: referenced but missing", c.path), stat("missing"), Some(n));
        }
    }
    println!("fsck: {} layout cases", cases.len());
    checks.finish("CASES.md fsck");
}

/// `ocil ls --json`: the ref names in index.json order, the entry and untagged counts.
/// A directory without `oci-layout` is not a layout for ls (the spec: "The `oci-layout`
/// file ... MUST" exist), so ls refuses it like gc does; fsck still reads it.
#[test]
fn cases_ls_needs_shared() {
    let Some((dir, cases)) = layout_cases() else { return };
    let mut checks = Checks::default();
    for c in &cases {
        let path = dir.join(&c.path);
        let out = ocil(["ls".as_ref(), "--json".as_ref(), path.as_os_str()]);
        if c.layout_file == Some(false) {
            checks.check(out.code == 2 && out.stderr.contains("not an OCI image layout"), || {
                format!("{}: ls of a directory without oci-layout: {}", c.path, out.describe())
            });
            continue;
        }
        checks.check(out.code == 0, || format!("{}: ls failed: {}", c.path, out.describe()));
        if out.code != 0 {
            continue;
        }
        let rows = out.json().as_array().expect("ls rows").clone();
        let names: Vec<String> = rows
            .iter()
            .filter_map(|r| r["names"].as_array().and_then(|n| n.first()))
            .map(|n| n.as_str().expect("name").to_owned())
            .collect();
        if let Some(want) = &c.ref_names {
            checks.eq(&format!("{}: ls names", c.path), &names, want);
        }
        if let Some(n) = c.entries {
            checks.eq(&format!("{}: ls rows", c.path), rows.len(), n);
        }
        let untagged = rows.iter().filter(|r| r["names"].as_array().is_none_or(Vec::is_empty));
        checks.eq(&format!("{}: untagged rows", c.path), untagged.count(), c.untagged);
    }
    checks.finish("CASES.md ls");
}

fn fsck_json(path: &Path) -> (i32, BTreeSet<(String, String)>) {
    let out = ocil(["fsck".as_ref(), "--deep".as_ref(), "--json".as_ref(), path.as_os_str()]);
    assert!(out.code <= 1, "fsck of `{}` could not run: {}", path.display(), out.describe());
    (out.code, fsck_errors(&out.json()))
}

/// `ocil gc --prune=now --json` on a copy: removes exactly the unreachable blobs; refuses
/// (exit 2, nothing changed) a directory without `oci-layout` and an index.json whose
/// `manifests` is not an array (unless `--force`); a second gc removes nothing; fsck's
/// verdict afterwards is the same, with no new error.
#[test]
fn cases_gc_needs_shared() {
    let Some((dir, cases)) = layout_cases() else { return };
    let mut checks = Checks::default();
    for c in &cases {
        let (_tmp, layout) = temp_copy(&dir.join(&c.path));
        let before = snapshot(&layout);
        let blobs_before = blobs(&layout);
        let (verdict_before, errors_before) = fsck_json(&layout);
        let gc = |extra: &[&str]| {
            let mut args = vec!["gc", "--prune=now", "--json"];
            args.extend_from_slice(extra);
            let mut args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
            args.push(layout.as_os_str());
            ocil(args)
        };
        let want: BTreeSet<String> = c.unreachable.iter().cloned().collect();

        if c.expects("LAYOUT_FILE_MISSING") {
            let out = gc(&[]);
            checks.check(out.code == 2 && out.stderr.contains("not an OCI image layout"), || {
                format!("{}: gc without oci-layout must refuse: {}", c.path, out.describe())
            });
            checks.check(snapshot(&layout) == before, || format!("{}: gc changed files", c.path));
            continue;
        }
        if c.expects("INDEX_INVALID") {
            // Fail closed: an index.json that is not a valid index (zot's `"manifests":
            // null`) may be hiding roots; only --force collects.
            let out = gc(&[]);
            checks.check(out.code == 2, || {
                format!("{}: gc must fail closed: {}", c.path, out.describe())
            });
            checks.check(snapshot(&layout) == before, || {
                format!("{}: gc changed files though it failed closed", c.path)
            });
            let out = gc(&["--force"]);
            checks.check(out.code == 0, || format!("{}: gc --force: {}", c.path, out.describe()));
            let gone: BTreeSet<String> =
                blobs_before.difference(&blobs(&layout)).cloned().collect();
            checks.eq(&format!("{}: gc --force removed", c.path), &gone, &want);
            let (verdict_after, errors_after) = fsck_json(&layout);
            checks.eq(&format!("{}: fsck exit after gc --force", c.path), verdict_after, 1);
            checks.eq(
                &format!("{}: fsck errors after gc --force", c.path),
                errors_after,
                errors_before,
            );
            continue;
        }

        let out = gc(&[]);
        checks.check(out.code == 0, || format!("{}: gc: {}", c.path, out.describe()));
        if out.code != 0 {
            continue;
        }
        let planned = gc_removed(&out.json());
        checks.eq(&format!("{}: gc planned", c.path), &planned, &want);
        let after = blobs(&layout);
        let gone: BTreeSet<String> = blobs_before.difference(&after).cloned().collect();
        checks.eq(&format!("{}: gc removed", c.path), &gone, &want);
        checks.check(after.is_subset(&blobs_before), || format!("{}: gc added blobs", c.path));

        let again = gc(&[]);
        checks.check(again.code == 0 && gc_removed(&again.json()).is_empty(), || {
            format!("{}: a second gc removed more: {}", c.path, again.stdout)
        });

        let (verdict_after, errors_after) = fsck_json(&layout);
        checks.eq(&format!("{}: fsck exit after gc", c.path), verdict_after, verdict_before);
        let new: Vec<_> = errors_after.difference(&errors_before).collect();
        checks.check(new.is_empty(), || format!("{}: new fsck errors after gc: {new:?}", c.path));
    }
    checks.finish("CASES.md gc");
}

/// The expectations CASES.md spells out for particular layouts, checked by name.
#[test]
fn cases_gc_special_needs_shared() {
    let Some((dir, _)) = layout_cases() else { return };
    let gc = |case: &str| {
        let (tmp, layout) = temp_copy(&dir.join(case));
        let before = blobs(&layout);
        let out = ocil(["gc".as_ref(), "--prune=now".as_ref(), layout.as_os_str()]);
        assert_eq!(out.code, 0, "{case}: {}", out.describe());
        let after = blobs(&layout);
        (tmp, before, after)
    };

    // A descriptor of media type application/vnd.oci.descriptor.v1+json whose blob is a
    // manifest: conservative marking follows it, so its config and layer stay.
    let (_t, before, after) = gc("google-go-containerregistry/pkg/v1/layout/testdata/test_index");
    assert_eq!(before.len(), 8);
    assert_eq!(after, before, "test_index: gc must keep all 8 blobs");
    for d in [
        "sha256:321460fa87fd42433950b42d04b7aff249f4ed960d43404a9f699886906cc9d3",
        "sha256:930705ce23e3b6ed4c08746b6fe880089c864fbaf62482702ae3fdd66b8c7fe9",
    ] {
        assert!(after.contains(d), "test_index: {d} removed");
    }

    // Upstream TestGcIndex: exactly one blob goes.
    let (_t, before, after) =
        gc("google-go-containerregistry/pkg/v1/layout/testdata/test_gc_index");
    let gone: Vec<_> = before.difference(&after).cloned().collect();
    assert_eq!(
        gone,
        ["sha256:492b89b9dd3cda4596f94916d17f6901455fb8bd7f4c5a2a90df8d39c90f48a0".to_owned()]
    );

    // The manifest lives in shared_blobs/ (a containers/image option): as a plain layout the
    // config in blobs/ is unreachable and goes; shared_blobs/ is not ours and stays.
    let case = "containers-container-libs/image/oci/layout/fixtures/delete_image_shared_blobs_dir";
    let (tmp, before, after) = gc(case);
    let gone: Vec<_> = before.difference(&after).cloned().collect();
    assert_eq!(
        gone,
        ["sha256:a527179158cd5cebc11c152b8637b47ce96c838ba2aa0de66d14f45cedc11423".to_owned()]
    );
    let shared_blobs = tmp.path().join("layout/shared_blobs/sha256");
    assert_eq!(snapshot(&shared_blobs), snapshot(&dir.join(case).join("shared_blobs/sha256")));

    // Referrers, referrers-tag indexes and a referrer loop: nothing is garbage.
    let (_t, before, after) = gc("regclient-regclient/testdata/testrepo");
    assert_eq!(before.len(), 91);
    assert_eq!(after, before, "testrepo: gc must remove nothing");
}
