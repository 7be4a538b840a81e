//! Listings: `tags/list` and `_catalog` (sorted, `n` and `last` pagination with a `Link` to
//! the next page), and `referrers/<digest>` (an image index of the referrers, empty rather
//! than 404 when there are none, filtered by `artifactType` when asked).

use std::sync::Arc;

use hyper::StatusCode;
use hyper::header::LINK;
use serde_json::json;

use crate::api::{ApiError, Code};
use crate::http::{self, OCI_FILTERS, Resp};
use crate::names::{encode, query_get};
use crate::route::parse_digest;
use crate::server::{State, blocking};

/// The page of `items` (sorted) after `last`, at most `n` long, and whether more follow.
pub(crate) fn page<'a>(
    items: impl Iterator<Item = &'a String>,
    query: &[(String, String)],
) -> Result<(Vec<String>, bool), ApiError> {
    let n = match query_get(query, "n") {
        None | Some("") => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ApiError::new(Code::Unsupported, format!("`n={s}` is not a number of results"))
                .with_status(StatusCode::BAD_REQUEST)
        })?),
    };
    let last = query_get(query, "last").filter(|l| !l.is_empty());
    let mut after = items.filter(|i| last.is_none_or(|l| i.as_str() > l));
    let out: Vec<String> = match n {
        Some(n) => after.by_ref().take(n).cloned().collect(),
        None => after.by_ref().cloned().collect(),
    };
    let more = n.is_some() && after.next().is_some();
    Ok((out, more))
}

fn next_link(path: &str, query: &[(String, String)], page: &[String]) -> Option<String> {
    let n = query_get(query, "n")?;
    let last = page.last()?;
    Some(format!("<{path}?n={}&last={}>; rel=\"next\"", encode(n), encode(last)))
}

/// `GET /v2/<name>/tags/list`.
pub(crate) async fn tags(
    state: Arc<State>,
    name: String,
    query: Vec<(String, String)>,
    head: bool,
) -> Result<Resp, ApiError> {
    blocking(move || {
        let repo = state.registry.repo(&name)?;
        let view = repo.handle.view()?;
        let tags = view
            .tags(&repo.scope)
            .ok_or_else(|| ApiError::new(Code::NameUnknown, format!("no repository `{name}`")))?;
        let (list, more) = page(tags.keys(), &query)?;
        let mut b = http::builder(StatusCode::OK);
        if more && let Some(link) = next_link(&format!("/v2/{name}/tags/list"), &query, &list) {
            b = b.header(LINK, http::header_value(&link));
        }
        let body = serde_json::to_vec(&json!({ "name": name, "tags": list })).unwrap_or_default();
        Ok(http::with_bytes(b, "application/json", body, head))
    })
    .await
}

/// `GET /v2/_catalog`.
pub(crate) async fn catalog(
    state: Arc<State>,
    query: Vec<(String, String)>,
    head: bool,
) -> Result<Resp, ApiError> {
    blocking(move || {
        let all = state.registry.catalog()?;
        let (list, more) = page(all.iter(), &query)?;
        let mut b = http::builder(StatusCode::OK);
        if more && let Some(link) = next_link("/v2/_catalog", &query, &list) {
            b = b.header(LINK, http::header_value(&link));
        }
        let body = serde_json::to_vec(&json!({ "repositories": list })).unwrap_or_default();
        Ok(http::with_bytes(b, "application/json", body, head))
    })
    .await
}

/// `GET /v2/<name>/referrers/<digest>`.
pub(crate) async fn referrers(
    state: Arc<State>,
    name: String,
    digest: String,
    query: Vec<(String, String)>,
    head: bool,
) -> Result<Resp, ApiError> {
    let digest = parse_digest(&digest)?;
    blocking(move || {
        let repo = state.registry.repo(&name)?;
        let artifact_type = query_get(&query, "artifactType").filter(|t| !t.is_empty());
        let list = repo.handle.referrers_of(&digest, artifact_type)?;
        let mut b = http::builder(StatusCode::OK);
        if artifact_type.is_some() {
            b = b.header(OCI_FILTERS, "artifactType");
        }
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": ocil_layout::MediaType::OciIndex.as_str(),
            "manifests": list,
        }))
        .unwrap_or_default();
        Ok(http::with_bytes(b, ocil_layout::MediaType::OciIndex.as_str(), body, head))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        crate::names::query_pairs(Some(s))
    }

    #[test]
    fn pages() {
        let items: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(page(items.iter(), &q("")).unwrap(), (items.clone(), false));
        assert_eq!(page(items.iter(), &q("n=2")).unwrap(), (vec!["a".into(), "b".into()], true));
        assert_eq!(
            page(items.iter(), &q("n=2&last=b")).unwrap(),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(page(items.iter(), &q("last=c")).unwrap(), (vec!["d".into()], false));
        assert_eq!(page(items.iter(), &q("n=0")).unwrap(), (vec![], true));
        assert_eq!(page(items.iter(), &q("n=9&last=d")).unwrap(), (vec![], false));
        assert!(page(items.iter(), &q("n=x")).is_err());
        let link = next_link("/v2/a/tags/list", &q("n=2"), &["b".into()]).unwrap();
        assert_eq!(link, "</v2/a/tags/list?n=2&last=b>; rel=\"next\"");
    }
}
