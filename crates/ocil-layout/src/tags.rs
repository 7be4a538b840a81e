//! Names in `index.json`: set (move) and remove.
//!
//! An entry is known by its *name*: its full name (`io.containerd.image.name`, which Docker
//! 25+ and containerd write beside `org.opencontainers.image.ref.name`) when it has one, else
//! its tag. Names are unique: setting a name takes it from every other entry, so re-tagging
//! never leaves duplicates. Two entries may share a tag under different full names
//! (`example.com/a:latest` and `example.com/b:latest`): a bare `latest` then names both, and
//! resolving it is an error that lists them.

use crate::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor, Error, Index, Result, reference,
};

/// The name an entry is known by: its full name when it has one, else its tag.
pub fn entry_name(d: &Descriptor) -> Option<&str> {
    d.annotation(ANNOTATION_CONTAINERD_NAME).or(d.ref_name())
}

/// A name as given to `ocil tag`: a plain tag (`v1`), or a full name
/// (`example.com/app:v1`: its tag is `v1`; without one, `latest`). Returns the tag and the
/// full name.
pub fn split_name(name: &str) -> (String, Option<String>) {
    if !name.contains('/') {
        return (name.to_owned(), None);
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => (tag.to_owned(), Some(name.to_owned())),
        _ => ("latest".to_owned(), Some(format!("{name}:latest"))),
    }
}

/// Point `name` (a tag, or a full name: see [`split_name`]) at `target` (an `index.json`
/// entry or any descriptor).
pub fn set_tag(index: &mut Index, target: &Descriptor, name: &str) -> Result<()> {
    reference::validate_tag(name)?;
    let (tag, full) = split_name(name);
    set_name(index, target, &tag, full.as_deref())
}

/// Point `tag`, and the full name `full` when given, at `target`. The new entry takes the
/// place of the first entry known by the same name, or goes last; every other entry known
/// by it loses it. Other annotations of `target` are kept; its own tag and full name are
/// replaced.
pub fn set_name(
    index: &mut Index,
    target: &Descriptor,
    tag: &str,
    full: Option<&str>,
) -> Result<()> {
    reference::validate_tag(tag)?;
    if let Some(f) = full {
        validate_full_name(f)?;
    }
    let mut entry = target.clone();
    let mut ann = entry.annotations.take().unwrap_or_default();
    ann.remove(ANNOTATION_CONTAINERD_NAME);
    ann.insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
    if let Some(f) = full {
        ann.insert(ANNOTATION_CONTAINERD_NAME.to_owned(), f.to_owned());
    }
    entry.annotations = Some(ann);
    let key = full.unwrap_or(tag);
    let holds = |d: &Descriptor| entry_name(d) == Some(key);
    let first = index.manifests.iter().position(holds);
    let mut i = 0;
    index.manifests.retain(|d| {
        let keep = !holds(d) || Some(i) == first;
        i += 1;
        keep
    });
    match first {
        Some(pos) => index.manifests[pos] = entry,
        None => index.manifests.push(entry),
    }
    Ok(())
}

/// A full name as Docker and containerd write it (`app:v1`, `example.com:5000/a/b:c`,
/// `name@sha256:...`): not empty, at most 512 characters of the reference grammar's set.
fn validate_full_name(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 512
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:@+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidReference {
            reference: s.into(),
            reason: "not an image name (registry/repository:tag)".into(),
        })
    }
}

/// Remove every entry known by `name` (a tag or a full name). Error when none is, and when
/// a tag names entries of several full names (it lists them: name one).
pub fn remove_tag(index: &mut Index, name: &str) -> Result<Vec<Descriptor>> {
    let hits: Vec<usize> =
        reference::entries_named(index, name).into_iter().map(|(i, _)| i).collect();
    if hits.is_empty() {
        return Err(Error::RefNotFound { reference: name.to_owned(), hint: String::new() });
    }
    let mut names: Vec<&str> =
        hits.iter().filter_map(|&i| entry_name(&index.manifests[i])).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() > 1 {
        return Err(Error::AmbiguousRef {
            reference: name.to_owned(),
            candidates: names.iter().map(|n| format!("`{n}`")).collect(),
        });
    }
    let mut gone = Vec::new();
    let mut i = 0;
    index.manifests.retain(|d| {
        let hit = hits.contains(&i);
        i += 1;
        if hit {
            gone.push(d.clone());
        }
        !hit
    });
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MediaType;

    fn desc(c: char) -> Descriptor {
        Descriptor::new(
            MediaType::OciManifest,
            format!("sha256:{}", c.to_string().repeat(64)).parse().unwrap(),
            1,
        )
    }

    #[test]
    fn tags_are_unique_and_move() {
        let mut idx = Index::empty();
        set_tag(&mut idx, &desc('a'), "v1").unwrap();
        set_tag(&mut idx, &desc('b'), "v2").unwrap();
        set_tag(&mut idx, &desc('c'), "v1").unwrap();
        assert_eq!(idx.manifests.len(), 2);
        assert_eq!(idx.manifests[0].ref_name(), Some("v1"));
        assert_eq!(idx.manifests[0].digest, desc('c').digest);
        // A duplicate left by another tool is cleaned up by the next set.
        let mut dup = idx.manifests[1].clone();
        dup.digest = desc('d').digest;
        idx.manifests.push(dup);
        set_tag(&mut idx, &desc('e'), "v2").unwrap();
        assert_eq!(idx.manifests.iter().filter(|d| d.ref_name() == Some("v2")).count(), 1);
        assert_eq!(remove_tag(&mut idx, "v2").unwrap().len(), 1);
        assert!(remove_tag(&mut idx, "v2").is_err());
        assert!(set_tag(&mut idx, &desc('a'), "bad tag").is_err());
    }

    #[test]
    fn full_names_share_a_tag_and_stay_apart() {
        let mut idx = Index::empty();
        set_tag(&mut idx, &desc('a'), "example.com/a:latest").unwrap();
        set_tag(&mut idx, &desc('b'), "example.com/b:latest").unwrap();
        assert_eq!(idx.manifests.len(), 2);
        assert_eq!(idx.manifests[0].ref_name(), Some("latest"));
        assert_eq!(entry_name(&idx.manifests[1]), Some("example.com/b:latest"));
        // A bare tag names both: resolving or removing it is ambiguous.
        let r = crate::Reference::Tag("latest".into());
        assert!(matches!(reference::resolve_entry(&idx, &r), Err(Error::AmbiguousRef { .. })));
        assert!(matches!(remove_tag(&mut idx, "latest"), Err(Error::AmbiguousRef { .. })));
        // A full name moves only its own entry.
        set_tag(&mut idx, &desc('c'), "example.com/a:latest").unwrap();
        assert_eq!(idx.manifests.len(), 2);
        assert_eq!(idx.manifests[0].digest, desc('c').digest);
        assert_eq!(remove_tag(&mut idx, "example.com/b:latest").unwrap().len(), 1);
        assert_eq!(idx.manifests.len(), 1);
        // Now `latest` is one entry's.
        assert_eq!(remove_tag(&mut idx, "latest").unwrap().len(), 1);
        assert_eq!(
            split_name("example.com:5000/a"),
            ("latest".into(), Some("example.com:5000/a:latest".into()))
        );
        assert_eq!(split_name("v1"), ("v1".into(), None));
    }
}
