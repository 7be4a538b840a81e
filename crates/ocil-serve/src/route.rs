//! The request path, parsed from its end as every registry does (a repository name has
//! several segments before `/manifests/`), with the name checked against the spec's grammar
//! and references and digests parsed before anything is looked up.

use ocil_layout::Digest;

use crate::api::{ApiError, Code};
use crate::names;

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/v2/`.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/manifests/<reference>`.
    Manifest { name: String, reference: String },
    /// `/v2/<name>/blobs/<digest>`.
    Blob { name: String, digest: String },
    /// `/v2/<name>/blobs/uploads/`.
    UploadStart { name: String },
    /// `/v2/<name>/blobs/uploads/<id>`.
    Upload { name: String, id: String },
    /// `/v2/<name>/tags/list`.
    Tags { name: String },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers { name: String, digest: String },
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    Tag(String),
    Digest(Digest),
}

/// Parse a request path (without its query).
pub(crate) fn parse(path: &str) -> Result<Route, ApiError> {
    let not_found = || ApiError::new(Code::NameUnknown, format!("no such endpoint: `{path}`"));
    let rest = match path {
        "/v2" | "/v2/" => return Ok(Route::Base),
        "/v2/_catalog" => return Ok(Route::Catalog),
        p => p.strip_prefix("/v2/").ok_or_else(not_found)?,
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let tail = |k: usize| if k <= n { segs[n - k] } else { "" };
    let name_of = |k: usize| -> Result<String, ApiError> {
        if k >= n {
            return Err(not_found());
        }
        let name = segs[..n - k].join("/");
        match names::repo_name_problem(&name) {
            None => Ok(name),
            Some(why) => {
                Err(ApiError::new(Code::NameInvalid, format!("invalid repository name: {why}")))
            }
        }
    };
    // Longest suffixes first: `blobs/uploads/` before `blobs/<digest>`.
    if n >= 3 && tail(3) == "blobs" && tail(2) == "uploads" {
        let id = tail(1);
        if id.is_empty() {
            return Ok(Route::UploadStart { name: name_of(3)? });
        }
        return Ok(Route::Upload { name: name_of(3)?, id: id.to_owned() });
    }
    if n >= 2 && tail(2) == "blobs" && tail(1) == "uploads" {
        return Ok(Route::UploadStart { name: name_of(2)? });
    }
    if n >= 2 && tail(2) == "tags" && tail(1) == "list" {
        return Ok(Route::Tags { name: name_of(2)? });
    }
    if n >= 2 {
        let last = tail(1).to_owned();
        match tail(2) {
            "manifests" => return Ok(Route::Manifest { name: name_of(2)?, reference: last }),
            "blobs" => return Ok(Route::Blob { name: name_of(2)?, digest: last }),
            "referrers" => return Ok(Route::Referrers { name: name_of(2)?, digest: last }),
            _ => {}
        }
    }
    Err(not_found())
}

/// Parse a digest from a path or query: the spec's grammar, and an algorithm ocil stores
/// (sha256, sha512). `sha256:../..` and every other malformed digest is `DIGEST_INVALID`.
pub(crate) fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.parse::<Digest>()
        .map_err(|e| ApiError::new(Code::DigestInvalid, format!("invalid digest `{s}`: {e}")))
}

/// Parse a manifest reference: with a `:` it is a digest (`DIGEST_INVALID` when malformed),
/// else a tag; `None` for a string that is neither (the caller decides: a GET of such a
/// tag is `MANIFEST_UNKNOWN`, a PUT `TAG_INVALID`).
pub(crate) fn parse_reference(s: &str) -> Result<Option<Reference>, ApiError> {
    if s.contains(':') {
        return parse_digest(s).map(|d| Some(Reference::Digest(d)));
    }
    Ok(names::is_tag(s).then(|| Reference::Tag(s.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(r: Result<Route, ApiError>) -> Option<String> {
        match r.ok()? {
            Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Tags { name }
            | Route::Referrers { name, .. } => Some(name),
            _ => None,
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse("/v2/").unwrap(), Route::Base);
        assert_eq!(parse("/v2").unwrap(), Route::Base);
        assert_eq!(parse("/v2/_catalog").unwrap(), Route::Catalog);
        assert_eq!(
            parse("/v2/a/b/c/manifests/v1").unwrap(),
            Route::Manifest { name: "a/b/c".into(), reference: "v1".into() }
        );
        // A name may hold the suffix's words; the suffix is read from the end.
        assert_eq!(
            parse("/v2/manifests/blobs/manifests/v1").unwrap(),
            Route::Manifest { name: "manifests/blobs".into(), reference: "v1".into() }
        );
        assert_eq!(parse("/v2/a/blobs/uploads/").unwrap(), Route::UploadStart { name: "a".into() });
        assert_eq!(parse("/v2/a/blobs/uploads").unwrap(), Route::UploadStart { name: "a".into() });
        assert_eq!(
            parse("/v2/a/blobs/uploads/x1").unwrap(),
            Route::Upload { name: "a".into(), id: "x1".into() }
        );
        assert_eq!(parse("/v2/t/tags/list").unwrap(), Route::Tags { name: "t".into() });
        assert_eq!(name(parse("/v2/x/referrers/sha256:00")), Some("x".into()));
        for escape in [
            "/v2/../manifests/v1",
            "/v2/a/../../manifests/v1",
            "/v2/%2e%2e/manifests/v1",
            "/v2/a%2Fb/manifests/v1",
            "/v2//a/manifests/v1",
            "/v2/A/manifests/v1",
            "/v2/.hidden/blobs/sha256:00",
        ] {
            let e = parse(escape).unwrap_err();
            assert_eq!(e.code, Code::NameInvalid, "{escape}");
        }
        assert_eq!(parse("/v2/manifests/v1").unwrap_err().code, Code::NameUnknown);
        assert_eq!(parse("/v3/a/manifests/v1").unwrap_err().code, Code::NameUnknown);
        assert_eq!(parse("/v2/a/other/v1").unwrap_err().code, Code::NameUnknown);
    }

    #[test]
    fn references() {
        let hex = "a".repeat(64);
        assert!(matches!(
            parse_reference(&format!("sha256:{hex}")).unwrap(),
            Some(Reference::Digest(_))
        ));
        assert_eq!(parse_reference("v1").unwrap(), Some(Reference::Tag("v1".into())));
        assert_eq!(parse_reference(".INVALID_MANIFEST_NAME").unwrap(), None);
        for bad in ["sha256:totallywrong", "sha256:../..", "sha256:", "md5:abc", ":x"] {
            assert_eq!(parse_reference(bad).unwrap_err().code, Code::DigestInvalid, "{bad}");
        }
        assert_eq!(parse_digest("sha256:../../etc").unwrap_err().code, Code::DigestInvalid);
    }
}
