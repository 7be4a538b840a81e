//! After a repack: the bundle's record describes the new image (its manifest, config and
//! the new layer) and the rootfs as it is now, so the next status starts from there and
//! unpack, edit, repack can repeat.

use cap_std::fs::Dir;
use ocil_layout::Digest;
use rustix::fs::{self, Mode, OFlags};

use crate::Result;
use crate::apply::split_parent;
use crate::bundle::ROOTFS_DIR;
use crate::record::{Kind, RecordLayer};
use crate::root::{Resolver, Root};
use crate::status::{Status, hash_file};

/// The image a repack made.
#[derive(Debug, Clone)]
pub struct Repacked {
    /// The target as given (`DIR:TAG`).
    pub name: String,
    /// The new manifest.
    pub manifest: Digest,
    /// The new config.
    pub config: Digest,
    /// The new layer.
    pub layer: RecordLayer,
}

/// Write the record of `bundle` anew after `status`'s changes were published as `new`.
pub fn record_repack(bundle: &Dir, status: Status, new: Repacked) -> Result<()> {
    let Status { mut record, mut now, .. } = status;
    // Digests the status and the packing did not compute (none, unless a file escaped both).
    let missing: Vec<Vec<u8>> = now
        .iter()
        .filter(|(_, e)| e.kind == Kind::File && e.sha256.is_none())
        .map(|(p, _)| p.clone())
        .collect();
    if !missing.is_empty() {
        let fd = fs::openat(
            bundle,
            ROOTFS_DIR,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| crate::Error::Bundle {
            op: "open",
            path: ROOTFS_DIR.into(),
            source: e.into(),
        })?;
        let root = Root::new(fd, Resolver::Auto);
        for p in missing {
            let (dir, name) = split_parent(&p);
            let dfd =
                root.open_real_dir(dir).map_err(|e| crate::apply::rootfs_err("open", dir, e))?;
            let fd = fs::openat(
                &dfd,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| crate::apply::rootfs_err("open", &p, e))?;
            let digest = hash_file(fd, &p)?;
            if let Some(e) = now.get_mut(&p) {
                e.sha256 = Some(digest);
            }
        }
    }
    record.source.name = new.name;
    record.source.manifest = new.manifest;
    record.source.config = new.config;
    record.layers.push(new.layer);
    record.entries = now;
    record.write(bundle)
}
