//! Where the copy engine writes: a [`Destination`]. A layout ([`Layout`]) is one; a
//! registry repository (`ocil_registry::RegistryDest`) is another. The engine
//! (`ocil_transfer::copy`) decides the order (every blob before a manifest naming it, every
//! manifest before an index naming it, the names last); a destination only says what it has
//! and lands what it is given, each blob checked against its descriptor before anyone can
//! see it under its digest.

use std::io::Read;

use crate::{Descriptor, Layout, Result};

/// How a blob reached the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landed {
    /// Its bytes were read from the source and written.
    Sent,
    /// The destination got it without the bytes passing through (a registry's
    /// cross-repository mount).
    Mounted,
}

/// Opens a blob's bytes, verified as they are read (so a consumer must not publish them
/// before the reader's end): called once per attempt, or not at all when the destination
/// gets the blob otherwise.
pub type OpenBlob<'a, 's> = dyn FnMut() -> Result<Box<dyn Read + 's>> + 'a;

/// Write access for the copy engine: presence checks, blobs, manifests, and the names given
/// last. `Sync`: the engine lands several blobs of one level at a time.
pub trait Destination: Sync {
    /// What kind of destination it is, for messages: `layout`, `registry`.
    fn kind(&self) -> &'static str;

    /// The layout, when the destination is one: the engine then copies files between two
    /// layouts (`copy_file_range`, hard links) and names its images in one `index.json`
    /// update under the layout's lock, checking that every blob is still there.
    fn as_layout(&self) -> Option<&Layout> {
        None
    }

    /// Whether the destination already holds `desc` (its digest, at its size). A registry
    /// asks for a manifest or index at its manifests endpoint, for anything else at its
    /// blobs endpoint.
    fn has(&self, desc: &Descriptor) -> Result<bool>;

    /// Land a blob that is not a manifest or index (a layer, a config), checked against
    /// `desc`'s digest and size before it is named. `open` gives its bytes; it is called
    /// again for each fresh attempt, and not at all when the destination gets the blob
    /// without them.
    fn put_blob<'s>(&self, desc: &Descriptor, open: &mut OpenBlob<'_, 's>) -> Result<Landed>;

    /// Land a manifest or index: its exact bytes (checked against `desc`), under
    /// `desc`'s media type.
    fn put_manifest(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()>;

    /// Name the manifest or index `desc` (whose bytes are `bytes`) `tag`, once everything it
    /// reaches has landed. A registry `PUT`s the manifest by tag; a layout points an
    /// `index.json` entry at it under its lock.
    fn put_tag(&self, tag: &str, desc: &Descriptor, bytes: &[u8]) -> Result<()>;
}

impl Destination for Layout {
    fn kind(&self) -> &'static str {
        "layout"
    }

    fn as_layout(&self) -> Option<&Layout> {
        Some(self)
    }

    fn has(&self, desc: &Descriptor) -> Result<bool> {
        Ok(self.stat_blob(&desc.digest)? == Some(desc.size))
    }

    fn put_blob<'s>(&self, desc: &Descriptor, open: &mut OpenBlob<'_, 's>) -> Result<Landed> {
        let reader = open()?;
        self.stage_blob(reader, desc)?.commit()?;
        Ok(Landed::Sent)
    }

    fn put_manifest(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        self.put_blob_verified(bytes, desc).map(drop)
    }

    fn put_tag(&self, tag: &str, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        self.put_manifest(desc, bytes)?;
        let lock = self.lock()?;
        let mut index = self.read_index()?;
        let mut entry = desc.clone();
        entry.annotations = None;
        crate::tags::set_tag(&mut index, &entry, tag)?;
        self.write_index(&index, &lock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, MediaType, Store};

    fn layout(tmp: &tempfile::TempDir) -> Layout {
        let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority());
        Layout::create(dir.unwrap()).unwrap()
    }

    #[test]
    fn a_blob_is_checked_before_it_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = layout(&tmp);
        let digest = crate::Algorithm::Sha256.digest_of(b"hello");
        let good = Descriptor::new(MediaType::OciLayerTar, digest.clone(), 5);
        assert!(!layout.has(&good).unwrap());
        let mut open = || Ok(Box::new(&b"hello"[..]) as Box<dyn Read>);
        assert_eq!(Destination::put_blob(&layout, &good, &mut open).unwrap(), Landed::Sent);
        assert!(layout.has(&good).unwrap());
        assert_eq!(Store::stat_blob(&layout, &digest).unwrap(), Some(5));

        let other = crate::Algorithm::Sha256.digest_of(b"other");
        let wrong = Descriptor::new(MediaType::OciLayerTar, other.clone(), 5);
        let mut open = || Ok(Box::new(&b"hullo"[..]) as Box<dyn Read>);
        let e = Destination::put_blob(&layout, &wrong, &mut open).unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e:?}");
        let short = Descriptor::new(MediaType::OciLayerTar, digest.clone(), 4);
        assert!(!layout.has(&short).unwrap(), "another size is another blob");
        let mut open = || Ok(Box::new(&b"hello"[..]) as Box<dyn Read>);
        let e = Destination::put_blob(&layout, &short, &mut open).unwrap_err();
        assert!(matches!(e, Error::SizeMismatch { .. }), "{e:?}");
        assert_eq!(Store::stat_blob(&layout, &other).unwrap(), None);
        // Nothing but the one blob (no temp file left behind).
        assert_eq!(layout.list_blob_names().unwrap().digests, vec![digest]);
    }

    #[test]
    fn a_tag_names_a_manifest_in_index_json() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = layout(&tmp);
        let bytes = br#"{"schemaVersion":2,"manifests":[]}"#;
        let digest = crate::Algorithm::Sha256.digest_of(bytes);
        let desc = Descriptor::new(MediaType::OciIndex, digest.clone(), bytes.len() as u64);
        layout.put_tag("v1", &desc, bytes).unwrap();
        let index = layout.read_index().unwrap();
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(index.manifests[0].digest, digest);
        assert_eq!(index.manifests[0].ref_name(), Some("v1"));
        let bad = Descriptor::new(MediaType::OciIndex, digest, 3);
        assert!(layout.put_tag("v2", &bad, bytes).is_err());
    }
}
