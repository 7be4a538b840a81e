//! A registry that lies or fails, scripted (`fake.rs`): each case gives the stated outcome,
//! and the destination layout (made by `ocil init` first) stays fsck-clean, with no bad blob
//! stored and no tag naming what did not land.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fake::{Fake, Image, MANIFEST_TYPE, Reply, digest};
use crate::support::{assert_clean, ocil, ocil_ok, tags};

/// A fresh layout to pull into.
fn layout(tmp: &Path) -> std::path::PathBuf {
    let dir = tmp.join("dst");
    ocil_ok(["init".as_ref(), dir.as_os_str()]);
    dir
}

/// `ocil pull HOST/t:v1 DIR:v1`.
fn pull(fake: &Fake, dir: &Path) -> crate::support::Out {
    ocil(["pull".to_owned(), format!("{}/t:v1", fake.host()), format!("{}:v1", dir.display())])
}

/// The pull failed with exit 2, saying `what`; the layout has no tag and is clean.
fn refused(out: &crate::support::Out, dir: &Path, what: &str) {
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains(what), "`{what}` not in: {}", out.stderr);
    assert!(tags(dir).is_empty(), "a tag was written");
    assert_clean(dir);
}

#[test]
fn an_honest_registry_is_pulled() {
    let img = Image::new(4096);
    let want = img.manifest_digest.clone();
    let fake = Fake::start(move |r| img.serve(r));
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let out = pull(&fake, &dir);
    assert!(out.ok(), "{}", out.stderr);
    assert_eq!(tags(&dir), vec![("v1".to_owned(), want)]);
    assert_clean(&dir);
    // HEAD before GET: the tag is resolved with HEAD, the manifest fetched by digest.
    let reqs = fake.requests();
    assert!(reqs.iter().any(|r| r.method == "HEAD" && r.path == "/v2/t/manifests/v1"));
    assert!(!reqs.iter().any(|r| r.method == "GET" && r.path == "/v2/t/manifests/v1"));
    // Pulled again: nothing is fetched but the HEADs (and the referrers API's listing, which
    // this registry answers 404: no manifest GET, which Docker Hub would count).
    let before = fake.requests().len();
    assert!(pull(&fake, &dir).ok());
    let again: Vec<_> =
        fake.requests()[before..].iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert!(
        again.iter().all(|(m, p)| m == "HEAD" || p == "/v2/" || p.starts_with("/v2/t/referrers/")),
        "{again:?}"
    );
    // --referrers none: not even that.
    let before = fake.requests().len();
    let out = ocil([
        "pull".to_owned(),
        format!("{}/t:v1", fake.host()),
        format!("{}:v1", dir.display()),
        "--referrers".into(),
        "none".into(),
    ]);
    assert!(out.ok(), "{}", out.stderr);
    assert!(!fake.requests()[before..].iter().any(|r| r.path.contains("referrers")));
}

#[test]
fn a_wrong_docker_content_digest_is_an_error() {
    let img = Image::new(1024);
    let fake = Fake::start(move |r| {
        if r.path == "/v2/t/manifests/v1" {
            // No digest on HEAD (as ECR), a wrong one on GET.
            let reply = Reply::new(200, img.manifest.clone()).header("Content-Type", MANIFEST_TYPE);
            if r.method == "HEAD" {
                return reply;
            }
            return reply.header("Docker-Content-Digest", digest(b"something else"));
        }
        img.serve(r)
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    refused(&pull(&fake, &dir), &dir, "Docker-Content-Digest");
}

#[test]
fn a_manifest_over_the_cap_is_refused() {
    let img = Image::new(1024);
    let fake = Fake::start(move |r| {
        if r.path == "/v2/t/manifests/v1" {
            let mut big = b"{\"schemaVersion\":2,\"x\":\"".to_vec();
            big.resize(4 * 1024 * 1024 + 10, b'a');
            big.extend_from_slice(b"\"}");
            return Reply::new(200, big).header("Content-Type", MANIFEST_TYPE);
        }
        img.serve(r)
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    refused(&pull(&fake, &dir), &dir, "over the 4194304-byte limit");
}

#[test]
fn an_html_page_with_a_200_is_not_a_manifest() {
    let img = Image::new(1024);
    let fake = Fake::start(move |r| {
        if r.path.starts_with("/v2/t/manifests/") {
            return Reply::new(200, "<html><body>Welcome to our portal</body></html>")
                .header("Content-Type", "text/html; charset=utf-8");
        }
        img.serve(r)
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let out = pull(&fake, &dir);
    refused(&out, &dir, "not a manifest");
    assert!(out.stderr.contains("HTML page") && !out.stderr.contains("Welcome"), "{}", out.stderr);
}

#[test]
fn a_blob_with_one_flipped_byte_is_not_stored() {
    let img = Image::new(64 * 1024);
    let layer = img.layer_digest.clone();
    let bad = layer.clone();
    let fake = Fake::start(move |r| {
        if r.path == format!("/v2/t/blobs/{bad}") {
            let mut bytes = img.blobs[&bad].clone();
            bytes[1000] ^= 1;
            return Reply::new(200, bytes);
        }
        img.serve(r)
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let out = pull(&fake, &dir);
    refused(&out, &dir, "hashes to");
    assert!(out.stderr.contains(&layer), "the blob is named: {}", out.stderr);
    assert!(!dir.join("blobs/sha256").join(layer.trim_start_matches("sha256:")).exists());
}

/// A layer whose first answer is cut halfway; `honour_range` says whether the next answer
/// serves the rest (206) or the whole blob again (200).
fn resumed(honour_range: bool) {
    let img = Image::new(256 * 1024);
    let want = img.manifest_digest.clone();
    let layer = img.layer_digest.clone();
    let first = AtomicUsize::new(0);
    let path = format!("/v2/t/blobs/{layer}");
    let fake = Fake::start(move |r| {
        if r.path == path && r.method == "GET" {
            let bytes = &img.blobs[&layer];
            if first.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut reply = Reply::new(200, bytes.clone());
                reply.cut_after = Some(bytes.len() / 2);
                return reply;
            }
            if !honour_range {
                return Reply::new(200, bytes.clone());
            }
            return crate::fake::ranged(r, bytes);
        }
        img.serve(r)
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let out = pull(&fake, &dir);
    assert!(out.ok(), "{}", out.stderr);
    assert_eq!(tags(&dir), vec![("v1".to_owned(), want)]);
    assert_clean(&dir);
    let layer_path = format!("/v2/t/blobs/{}", Image::new(256 * 1024).layer_digest);
    let ranges: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.path == layer_path)
        .filter_map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges.len(), 1, "one resumed request: {ranges:?}");
    assert!(ranges[0].starts_with("bytes=") && ranges[0] != "bytes=0-", "{ranges:?}");
}

#[test]
fn a_dropped_connection_resumes_with_range() {
    resumed(true);
}

#[test]
fn a_200_answer_to_a_range_request_restarts_the_blob() {
    resumed(false);
}

#[test]
fn tags_follow_link_pages() {
    let pages = Mutex::new(0);
    let fake = Fake::start(move |r| {
        if r.path == "/v2/" {
            return Reply::new(200, "{}");
        }
        let mut n = pages.lock().unwrap();
        *n += 1;
        match r.path.as_str() {
            "/v2/t/tags/list" => Reply::new(200, r#"{"name":"t","tags":["a","b"]}"#)
                .header("Link", r#"</v2/t/tags/list?last=b&n=2>; rel="next""#),
            // Without brackets, as some registries write it.
            "/v2/t/tags/list?last=b&n=2" => Reply::new(200, r#"{"name":"t","tags":["c","d"]}"#)
                .header("Link", "/v2/t/tags/list?last=d&n=2; rel=\"next\""),
            "/v2/t/tags/list?last=d&n=2" => Reply::new(200, r#"{"name":"t","tags":["e"]}"#),
            _ => Reply::new(404, "{}"),
        }
    });
    let out = ocil_ok(["ls".to_owned(), format!("docker://{}/t", fake.host())]);
    assert_eq!(out.stdout, "a\nb\nc\nd\ne\n");
    let json =
        ocil_ok(["ls".to_owned(), "--json".to_owned(), format!("docker://{}/t", fake.host())]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["tags"].as_array().unwrap().len(), 5);
}

#[test]
fn a_pull_killed_mid_blob_leaves_the_layout_valid() {
    let img = Image::new(256 * 1024);
    let layer = img.layer_digest.clone();
    let path = format!("/v2/t/blobs/{layer}");
    let fake = Fake::start(move |r| {
        if r.path == path && r.method == "GET" {
            let bytes = &img.blobs[&img.layer_digest];
            let mut reply = Reply::new(200, bytes.clone());
            reply.cut_after = Some(bytes.len() / 3);
            reply.stall = Some(std::time::Duration::from_secs(20));
            return reply;
        }
        img.serve(r)
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["pull".to_owned(), format!("{}/t:v1", fake.host()), format!("{}:v1", dir.display())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed while the layer streams (its request seen, its body stalled).
    let layer_path = format!("/v2/t/blobs/{layer}");
    for _ in 0..200 {
        if fake.requests().iter().any(|r| r.path == layer_path) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(tags(&dir).is_empty(), "no tag names what did not land");
    let out = ocil(["fsck".as_ref(), dir.as_os_str()]);
    assert!(out.ok(), "{}{}", out.stdout, out.stderr);
    // What landed is whole; the killed writer's temp file is gc's to remove.
    for e in fs_err::read_dir(dir.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.starts_with(".ocil-tmp") {
            continue;
        }
        assert_eq!(digest(&fs_err::read(e.path()).unwrap()), format!("sha256:{name}"));
    }
}

/// A registry behind a token server (`/token` on the same fake) whose `n`-th token (from 1)
/// is `t<n>`; `answer` says what a request bearing a token gets (`None`: the honest answer).
fn behind_tokens(
    img: Image,
    answer: impl Fn(&str, &crate::fake::Req) -> Option<Reply> + Send + Sync + 'static,
) -> (Fake, std::sync::Arc<AtomicUsize>) {
    let issued = std::sync::Arc::new(AtomicUsize::new(0));
    let port = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let (n, host) = (issued.clone(), port.clone());
    let fake = Fake::start(move |r| {
        if r.path.starts_with("/token") {
            let t = n.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::new(200, format!(r#"{{"token":"t{t}","expires_in":300}}"#));
        }
        let Some(token) = r.header("authorization").and_then(|a| a.strip_prefix("Bearer ")) else {
            let realm = format!("http://{}/token", host.get().unwrap());
            return Reply::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#)
                .header("WWW-Authenticate", format!(r#"Bearer realm="{realm}",service="fake""#));
        };
        answer(token, r).unwrap_or_else(|| img.serve(r))
    });
    port.set(fake.host()).unwrap();
    (fake, issued)
}

#[test]
fn a_403_saying_the_token_expired_gets_a_new_token() {
    let img = Image::new(1024);
    let want = img.manifest_digest.clone();
    let (fake, issued) = behind_tokens(img, |token, _| {
        (token == "t1").then(|| {
            Reply::new(
                403,
                r#"{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}"#,
            )
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let out = pull(&fake, &dir);
    assert!(out.ok(), "{}", out.stderr);
    assert_eq!(tags(&dir), vec![("v1".to_owned(), want)]);
    assert_eq!(issued.load(Ordering::SeqCst), 2, "one new token");
    assert_clean(&dir);
}

#[test]
fn a_403_that_is_no_expiry_is_refused_access() {
    let img = Image::new(1024);
    let (fake, issued) = behind_tokens(img, |_, r| {
        r.path.starts_with("/v2/t/").then(|| {
            Reply::new(403, r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#)
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    refused(&pull(&fake, &dir), &dir, "refused access");
    // One renewal at most (the HEAD's 403 has no body to tell an expiry from a denial).
    assert!(issued.load(Ordering::SeqCst) <= 2);
}

#[test]
fn a_429_says_the_rate_limit_and_suggests_login() {
    let img = Image::new(1024);
    let fake = Fake::start(move |r| {
        if r.path.starts_with("/v2/t/manifests/") {
            return Reply::new(429, r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#)
                .header("RateLimit-Limit", "100;w=21600")
                .header("RateLimit-Remaining", "0;w=21600")
                .header("Retry-After", "0");
        }
        img.serve(r)
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let out = pull(&fake, &dir);
    refused(&out, &dir, "429 Too Many Requests");
    for want in ["limit 100;w=21600", "remaining 0;w=21600", "ocil login 127.0.0.1"] {
        assert!(out.stderr.contains(want), "`{want}` not in: {}", out.stderr);
    }
    // (A HEAD has no body: the figures come from the headers.) Tried, then retried as often
    // as the client retries (4), Retry-After honoured.
    let heads = fake.requests().iter().filter(|r| r.path == "/v2/t/manifests/v1").count();
    assert_eq!(heads, 5);
}
