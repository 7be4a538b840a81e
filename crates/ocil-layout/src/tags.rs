//! Tags in `index.json`: set (move) and remove. Tags are unique: setting a tag removes it
//! from every other entry, so re-tagging never leaves duplicates.

use crate::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor, Error, Index, Result};

/// Point `tag` at `target` (an `index.json` entry or any descriptor). The new entry takes
/// the place of the first entry that held the tag, or goes last. Other annotations of
/// `target` are kept; its own tag and containerd name are not copied.
pub fn set_tag(index: &mut Index, target: &Descriptor, tag: &str) -> Result<()> {
    crate::reference::validate_tag(tag)?;
    let mut entry = target.clone();
    let mut ann = entry.annotations.take().unwrap_or_default();
    ann.remove(ANNOTATION_CONTAINERD_NAME);
    ann.insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
    entry.annotations = Some(ann);
    let first = index.manifests.iter().position(|d| d.ref_name() == Some(tag));
    let mut i = 0;
    index.manifests.retain(|d| {
        let keep = d.ref_name() != Some(tag) || Some(i) == first;
        i += 1;
        keep
    });
    match first {
        Some(pos) => index.manifests[pos] = entry,
        None => index.manifests.push(entry),
    }
    Ok(())
}

/// Remove every entry tagged `tag`. Error when none is.
pub fn remove_tag(index: &mut Index, tag: &str) -> Result<Vec<Descriptor>> {
    let (gone, kept): (Vec<Descriptor>, Vec<Descriptor>) =
        index.manifests.drain(..).partition(|d| d.ref_name() == Some(tag));
    index.manifests = kept;
    if gone.is_empty() {
        return Err(Error::RefNotFound { reference: tag.to_owned(), hint: String::new() });
    }
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
}
