//! Resolving references against `index.json`: tags (`org.opencontainers.image.ref.name`),
//! full names (`io.containerd.image.name`) and digests.

use crate::{ANNOTATION_CONTAINERD_NAME, Descriptor, Digest, Error, Index, Result};

/// What a user names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag or full image name.
    Tag(String),
    /// A digest (`@sha256:...`).
    Digest(Digest),
}

impl Reference {
    /// Parse `@sha256:...`/`sha256:...` as a digest, anything else as a tag.
    pub fn parse(s: &str) -> Result<Reference> {
        let s = s.strip_prefix('@').unwrap_or(s);
        if s.starts_with("sha256:") || s.starts_with("sha512:") {
            return Ok(Reference::Digest(s.parse()?));
        }
        validate_tag(s)?;
        Ok(Reference::Tag(s.to_owned()))
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => write!(f, "@{d}"),
        }
    }
}

/// Check a tag: the OCI tag grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, or a full name as
/// containerd writes it (`registry/repo:tag`, components of `[a-zA-Z0-9._/:@+-]`).
pub fn validate_tag(s: &str) -> Result<()> {
    let bad =
        |reason: &str| Err(Error::InvalidReference { reference: s.into(), reason: reason.into() });
    if s.is_empty() {
        return bad("empty");
    }
    if s.len() > 255 {
        return bad("longer than 255 characters");
    }
    let mut chars = s.chars();
    let first = chars.next().unwrap_or_default();
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return bad("must start with a letter, digit or `_`");
    }
    let full_name = s.contains('/');
    for c in s.chars() {
        let ok = c.is_ascii_alphanumeric()
            || matches!(c, '.' | '_' | '-')
            || (full_name && matches!(c, '/' | ':' | '@' | '+'));
        if !ok {
            return bad(&format!("character `{c}` is not allowed in a tag"));
        }
    }
    if !full_name && s.len() > 128 {
        return bad("a tag is at most 128 characters");
    }
    Ok(())
}

/// The `index.json` entries a tag names: by `org.opencontainers.image.ref.name` or by
/// `io.containerd.image.name`; failing that, a full name (one with a `:` or a `/`) also
/// matches a containerd name that is the same once normalised as Docker does
/// (`busybox:latest` and `docker.io/library/busybox:latest`).
pub fn entries_named<'a>(index: &'a Index, name: &str) -> Vec<(usize, &'a Descriptor)> {
    let exact: Vec<_> = index
        .manifests
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            d.ref_name() == Some(name) || d.annotation(ANNOTATION_CONTAINERD_NAME) == Some(name)
        })
        .collect();
    if !exact.is_empty() || !name.contains([':', '/']) {
        return exact;
    }
    index
        .manifests
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            d.annotation(ANNOTATION_CONTAINERD_NAME)
                .is_some_and(|n| crate::image_ref::same_image_name(n, name))
        })
        .collect()
}

/// Resolve a reference to one `index.json` entry.
///
/// A tag that several entries carry is an error listing them, unless they all name the same
/// digest. A digest resolves to the first entry with that digest; `None` when no entry has it
/// (the caller may then look in the blob store).
pub fn resolve_entry(index: &Index, reference: &Reference) -> Result<Option<(usize, Descriptor)>> {
    match reference {
        Reference::Digest(d) => Ok(index
            .manifests
            .iter()
            .position(|m| &m.digest == d)
            .map(|i| (i, index.manifests[i].clone()))),
        Reference::Tag(t) => {
            let found = entries_named(index, t);
            match found.as_slice() {
                [] => {
                    let names: Vec<&str> =
                        index.manifests.iter().filter_map(|d| d.ref_name()).collect();
                    let hint = if names.is_empty() {
                        " (the layout has no tags)".to_owned()
                    } else {
                        format!(" (tags: {})", names.join(", "))
                    };
                    Err(Error::RefNotFound { reference: t.clone(), hint })
                }
                [(i, d)] => Ok(Some((*i, (*d).clone()))),
                many if many.iter().all(|(_, d)| d.digest == many[0].1.digest) => {
                    Ok(Some((many[0].0, many[0].1.clone())))
                }
                many => Err(Error::AmbiguousRef {
                    reference: t.clone(),
                    candidates: many
                        .iter()
                        .map(|(i, d)| match crate::tags::entry_name(d) {
                            Some(n) => format!("`{n}` (entry {i}, `{}`)", d.digest),
                            None => format!("entry {i} `{}` ({})", d.digest, d.media_type),
                        })
                        .collect(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(&str, char)]) -> Index {
        let mut idx = Index::empty();
        for (tag, c) in entries {
            let mut d = Descriptor::new(
                crate::MediaType::OciManifest,
                format!("sha256:{}", c.to_string().repeat(64)).parse().unwrap(),
                1,
            );
            let mut ann = std::collections::BTreeMap::new();
            ann.insert(crate::ANNOTATION_REF_NAME.to_owned(), (*tag).to_owned());
            d.annotations = Some(ann);
            idx.manifests.push(d);
        }
        idx
    }

    #[test]
    fn resolves_tags_and_digests() {
        let idx = index(&[
            ("a", 'a'),
            ("b", 'b'),
            ("dup", 'c'),
            ("dup", 'd'),
            ("same", 'e'),
            ("same", 'e'),
        ]);
        let (i, _) = resolve_entry(&idx, &Reference::parse("b").unwrap()).unwrap().unwrap();
        assert_eq!(i, 1);
        let err = resolve_entry(&idx, &Reference::parse("dup").unwrap()).unwrap_err();
        assert!(err.to_string().contains("ambiguous"), "{err}");
        assert!(err.to_string().contains("entry 2") && err.to_string().contains("entry 3"));
        assert_eq!(resolve_entry(&idx, &Reference::parse("same").unwrap()).unwrap().unwrap().0, 4);
        let err = resolve_entry(&idx, &Reference::parse("nope").unwrap()).unwrap_err();
        assert!(matches!(err, Error::RefNotFound { .. }));
        let d = Reference::parse(&format!("@sha256:{}", "d".repeat(64))).unwrap();
        assert_eq!(resolve_entry(&idx, &d).unwrap().unwrap().0, 3);
    }

    #[test]
    fn full_names_match_normalised() {
        let mut idx = index(&[("latest", 'a'), ("v1", 'b')]);
        let ann = idx.manifests[0].annotations.as_mut().unwrap();
        ann.insert(ANNOTATION_CONTAINERD_NAME.to_owned(), "busybox:latest".to_owned());
        assert_eq!(entries_named(&idx, "busybox:latest").len(), 1);
        assert_eq!(entries_named(&idx, "docker.io/library/busybox:latest").len(), 1);
        assert_eq!(entries_named(&idx, "docker.io/library/busybox:1").len(), 0);
        // A plain word is a tag, never a Docker name.
        assert_eq!(entries_named(&idx, "busybox").len(), 0);
    }

    #[test]
    fn tag_grammar() {
        assert!(validate_tag("v1.0_rc-1").is_ok());
        assert!(validate_tag("docker.io/library/alpine:v2").is_ok());
        assert!(validate_tag("").is_err());
        assert!(validate_tag(".hidden").is_err());
        assert!(validate_tag("a b").is_err());
        assert!(validate_tag(&"x".repeat(129)).is_err());
        assert!(Reference::parse("sha256:../../x").is_err());
    }
}
