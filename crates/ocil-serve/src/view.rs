//! What a layout's `index.json` serves, computed once per version of the file: the plain
//! tags (`org.opencontainers.image.ref.name`), the full names (`io.containerd.image.name`,
//! or a ref.name that is a whole reference) split into repository and tag, and the first
//! entry of each digest. A version is known by its stamp (inode, size, mtime, ctime): ocil
//! replaces `index.json` by rename, so every write changes it.

use std::collections::BTreeMap;

use cap_std::fs::MetadataExt as _;
use ocil_layout::{ANNOTATION_CONTAINERD_NAME, Descriptor, Digest, DigestMap, Index, Layout};

use crate::api::ApiError;
use crate::names;

/// Which part of a layout's entries a repository sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The entries' plain tags: the layout's own repository.
    Plain,
    /// The entries whose full name is `<this repository>:<tag>`.
    Full(String),
}

/// The identity of one version of `index.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of the `index.json` on disk now.
    pub(crate) fn of(layout: &Layout) -> Result<Stamp, ApiError> {
        let m = layout.dir().metadata(ocil_layout::INDEX_FILE).map_err(|source| {
            let op = "stat";
            ApiError::internal(&ocil_layout::Error::Io { op, path: "index.json".into(), source })
        })?;
        Ok(Stamp {
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// One version of `index.json`, ready to answer lookups.
#[derive(Debug)]
pub(crate) struct IndexView {
    pub(crate) stamp: Stamp,
    pub(crate) index: Index,
    plain: BTreeMap<String, usize>,
    full: BTreeMap<String, BTreeMap<String, usize>>,
    by_digest: DigestMap<usize>,
}

/// An entry's full name split into repository and tag, when it has one the spec's grammars
/// allow (`docker.io/library/busybox:1.36`); names with a digest or a port are left out.
pub(crate) fn full_name(d: &Descriptor) -> Option<(String, String)> {
    let name = d
        .annotation(ANNOTATION_CONTAINERD_NAME)
        .or_else(|| d.ref_name().filter(|n| n.contains('/')))?;
    if name.contains('@') {
        return None;
    }
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let colon = name[slash..].rfind(':')? + slash;
    let (repo, tag) = (&name[..colon], &name[colon + 1..]);
    (names::repo_name_problem(repo).is_none() && names::is_tag(tag))
        .then(|| (repo.to_owned(), tag.to_owned()))
}

/// An entry's plain tag, when its ref.name is one.
pub(crate) fn plain_tag(d: &Descriptor) -> Option<&str> {
    d.ref_name().filter(|t| names::is_tag(t))
}

impl IndexView {
    pub(crate) fn new(index: Index, stamp: Stamp) -> IndexView {
        let mut plain: BTreeMap<String, usize> = BTreeMap::new();
        let mut full: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        let mut by_digest = DigestMap::default();
        for (i, d) in index.manifests.iter().enumerate() {
            by_digest.entry(d.digest.clone()).or_insert(i);
            if let Some(t) = plain_tag(d) {
                // An entry without a full name owns its plain tag; else the first one does.
                let bare = |d: &Descriptor| d.annotation(ANNOTATION_CONTAINERD_NAME).is_none();
                let take = match plain.get(t) {
                    None => true,
                    Some(&j) => bare(d) && !bare(&index.manifests[j]),
                };
                if take {
                    plain.insert(t.to_owned(), i);
                }
            }
            if let Some((repo, tag)) = full_name(d) {
                full.entry(repo).or_default().entry(tag).or_insert(i);
            }
        }
        IndexView { stamp, index, plain, full, by_digest }
    }

    /// The tags a scope sees, sorted, with their entries; `None` for a full-name repository
    /// that has none.
    pub(crate) fn tags(&self, scope: &Scope) -> Option<&BTreeMap<String, usize>> {
        match scope {
            Scope::Plain => Some(&self.plain),
            Scope::Full(repo) => self.full.get(repo),
        }
    }

    /// The entry a tag names in a scope.
    pub(crate) fn tag(&self, scope: &Scope, tag: &str) -> Option<&Descriptor> {
        self.tags(scope)?.get(tag).map(|&i| &self.index.manifests[i])
    }

    /// The first entry with this digest.
    pub(crate) fn entry(&self, digest: &Digest) -> Option<&Descriptor> {
        self.by_digest.get(digest).map(|&i| &self.index.manifests[i])
    }

    /// The repositories of full names, sorted.
    pub(crate) fn full_repos(&self) -> impl Iterator<Item = &String> {
        self.full.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocil_layout::{ANNOTATION_REF_NAME, MediaType};

    fn entry(c: char, tag: Option<&str>, full: Option<&str>) -> Descriptor {
        let d = format!("sha256:{}", c.to_string().repeat(64)).parse().unwrap();
        let mut e = Descriptor::new(MediaType::OciManifest, d, 1);
        let mut ann = std::collections::BTreeMap::new();
        if let Some(t) = tag {
            ann.insert(ANNOTATION_REF_NAME.to_owned(), t.to_owned());
        }
        if let Some(f) = full {
            ann.insert(ANNOTATION_CONTAINERD_NAME.to_owned(), f.to_owned());
        }
        e.annotations = Some(ann);
        e
    }

    #[test]
    fn tags_and_full_names() {
        let mut index = Index::empty();
        index.manifests = vec![
            entry('a', Some("1.36"), Some("docker.io/library/busybox:1.36")),
            entry('b', Some("1.36"), None),
            entry('c', Some("latest"), Some("example.com:5000/x:latest")),
            entry('d', Some("example.com/app:v2"), None),
            entry('e', None, None),
            entry('f', Some(".bad"), None),
        ];
        let stamp = Stamp { ino: 0, len: 0, mtime: (0, 0), ctime: (0, 0) };
        let v = IndexView::new(index, stamp);
        let plain: Vec<_> = v.tags(&Scope::Plain).unwrap().keys().cloned().collect();
        assert_eq!(plain, ["1.36", "latest"]);
        // The entry without a full name owns the plain tag.
        assert_eq!(v.tag(&Scope::Plain, "1.36").unwrap().digest.to_string().as_bytes()[7], b'b');
        let repos: Vec<_> = v.full_repos().cloned().collect();
        assert_eq!(repos, ["docker.io/library/busybox", "example.com/app"]);
        let s = Scope::Full("docker.io/library/busybox".into());
        assert_eq!(v.tag(&s, "1.36").unwrap().digest.to_string().as_bytes()[7], b'a');
        assert!(v.tags(&Scope::Full("nope".into())).is_none());
    }
}
