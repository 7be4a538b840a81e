//! `export-rootfs`: an image's flattened filesystem as one tar, as `docker export` and
//! `crane export` give it. The image is unpacked (unprivileged: owners and devices kept in the
//! record) into a scratch bundle the caller provides, then the tree is packed from the record
//! (owners, devices, hard links, xattrs as the layers said) and the scratch emptied.

use std::io::Write;

use cap_std::fs::Dir;
use ocil_layout::progress::Progress;
use ocil_layout::{Platform, Reference, Store};

use crate::pack::{PackOptions, Packed, pack_tree};
use crate::record::Record;
use crate::root::Resolver;
use crate::{Result, UnpackOptions, bundle, unpack};

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The manifest exported.
    pub manifest: ocil_layout::Digest,
    /// The tar.
    pub packed: Packed,
    /// Warnings of the unpack.
    pub warnings: Vec<String>,
}

/// Write the flattened filesystem of `reference` in `store` to `out`, unpacking it in
/// `scratch` (an empty directory, emptied again).
pub fn export_rootfs(
    store: &dyn Store,
    reference: Option<&Reference>,
    platform: Option<&Platform>,
    scratch: &Dir,
    out: impl Write,
    name: &str,
    progress: &dyn Progress,
) -> Result<Exported> {
    let opts =
        UnpackOptions { platform, rootless: true, force: false, resolver: Resolver::Auto, name };
    let result = (|| {
        let done = unpack(store, reference, scratch, &opts, progress)?;
        let mut record = Record::read(scratch)?;
        let packed = pack_tree(scratch, &mut record.entries, out, PackOptions::default())?;
        Ok(Exported { manifest: done.manifest, packed, warnings: done.warnings })
    })();
    bundle::discard(scratch);
    result
}
