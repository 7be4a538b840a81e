//! One repository of a registry: its name, the scope its requests need, and the endpoints
//! that are not manifests or blob bodies: blob `HEAD` and the tag list (paginated by `Link`).

use std::sync::Arc;

use ocil_layout::Digest;

use crate::auth::{Scopes, pull_scope, push_scope};
use crate::client::{Client, Method, header, resolve};
use crate::{Error, Result};

/// How many pages of tags are read at most (a registry whose `Link` never ends).
const MAX_TAG_PAGES: usize = 10_000;

/// A repository of a registry (`library/busybox` of `docker.io`).
#[derive(Debug, Clone)]
pub struct Repository {
    client: Arc<Client>,
    name: String,
    scopes: Scopes,
}

impl Repository {
    /// The repository `name` of the registry `client` talks to, read with the pull scope.
    pub fn new(client: Arc<Client>, name: &str) -> Repository {
        let scopes = Scopes::from([pull_scope(name)]);
        Repository { client, name: name.to_owned(), scopes }
    }

    /// The repository `name` of the registry `client` talks to, read and written with the
    /// pull and push scope.
    pub fn for_push(client: Arc<Client>, name: &str) -> Repository {
        let scopes = Scopes::from([push_scope(name)]);
        Repository { client, name: name.to_owned(), scopes }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The repository's path (`library/busybox`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `HOST/REPO`, for messages.
    pub fn display(&self) -> String {
        format!("{}/{}", self.client.domain(), self.name)
    }

    pub(crate) fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    pub(crate) fn blob_path(&self, digest: &Digest) -> String {
        format!("/v2/{}/blobs/{digest}", self.name)
    }

    /// `HEAD` a blob: its size, or `None` when the registry does not have it.
    pub fn head_blob(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        let answer = self.client.send(Method::Head, &path, &[], &self.scopes)?;
        match answer.status().as_u16() {
            200..=299 => Ok(Some(
                header(&answer, "content-length").and_then(|s| s.parse().ok()).unwrap_or(0),
            )),
            404 => Ok(None),
            _ => Err(self.client.failure(answer, &path)),
        }
    }

    /// Every tag of the repository, in the registry's order, following `Link: <...>;
    /// rel="next"` from page to page.
    pub fn tags(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut out = Vec::new();
        let mut next = Some(format!("/v2/{}/tags/list", self.name));
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > MAX_TAG_PAGES {
                return Err(Error::Status {
                    url: crate::client::strip_query(&path),
                    status: 200,
                    detail: format!(" (more than {MAX_TAG_PAGES} pages of tags)"),
                });
            }
            let mut answer = self.client.send(Method::Get, &path, &[], &self.scopes)?;
            match answer.status().as_u16() {
                200..=299 => {}
                404 => {
                    return Err(Error::ManifestUnknown {
                        repo: self.display(),
                        reference: "(any tag)".into(),
                        detail: Client::detail(&mut answer),
                    });
                }
                _ => return Err(self.client.failure(answer, &path)),
            }
            let link = header(&answer, "link");
            let url =
                if path.starts_with('/') { format!("{}{path}", self.client.base()) } else { path };
            let bytes =
                answer.body_mut().with_config().limit(16 * 1024 * 1024).read_to_vec().map_err(
                    |e| Error::Body { url: url.clone(), source: std::io::Error::other(e) },
                )?;
            let page: Page = serde_json::from_slice(&bytes)
                .map_err(|source| Error::Json { url: crate::client::strip_query(&url), source })?;
            out.extend(page.tags.unwrap_or_default());
            next = link.and_then(|l| next_link(&l)).and_then(|n| resolve(&url, &n));
        }
        Ok(out)
    }
}

/// The target of the `rel="next"` link of a `Link` header (brackets optional, as some
/// registries leave them out).
pub(crate) fn next_link(value: &str) -> Option<String> {
    for part in value.split(',') {
        let mut fields = part.split(';');
        let target = fields.next()?.trim();
        let is_next = fields.any(|f| {
            let f = f.trim();
            f.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel") && v.trim().trim_matches('"') == "next"
            })
        });
        if is_next {
            let t = target.trim_start_matches('<').trim_end_matches('>').trim();
            if !t.is_empty() {
                return Some(t.to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link("/v2/a/tags/list?last=b; rel=next").as_deref(),
            Some("/v2/a/tags/list?last=b")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
