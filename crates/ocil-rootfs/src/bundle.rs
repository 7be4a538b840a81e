//! A runtime bundle's files: `rootfs/`, `config.json`, and the record (`ocil-bundle.json`),
//! which is written last and so marks the bundle complete. While an unpack works, the rootfs
//! is `.ocil-tmp-rootfs` beside them; a failed unpack removes what it made, a killed one
//! leaves no record.

use cap_std::fs::Dir;

use crate::record::{RECORD_FILE, Record};
use crate::root::remove_all;
use crate::{Error, Result};

/// The rootfs directory's name in a bundle.
pub const ROOTFS_DIR: &str = "rootfs";

/// The runtime config's name in a bundle.
pub const CONFIG_FILE: &str = "config.json";

/// The rootfs while an unpack builds it.
pub(crate) const TEMP_ROOTFS: &str = ".ocil-tmp-rootfs";

/// Names an unpack makes in a bundle (and `--force` removes).
fn is_ours(name: &str) -> bool {
    name == ROOTFS_DIR
        || name == CONFIG_FILE
        || name == RECORD_FILE
        || name.starts_with(ocil_layout::TEMP_PREFIX)
}

/// Make `bundle` ready for an unpack: empty, or (with `force`) rid of what an earlier
/// unpack left (the record first, so a kill in between leaves an incomplete bundle).
pub(crate) fn prepare(bundle: &Dir, force: bool) -> Result<()> {
    let err = |op, e| Error::Bundle { op, path: ".".into(), source: e };
    let mut names = Vec::new();
    for entry in bundle.entries().map_err(|e| err("list", e))? {
        names.push(entry.map_err(|e| err("list", e))?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    if names.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(Error::BundleNotEmpty { first: names[0].clone() });
    }
    Record::remove(bundle)?;
    for name in names.iter().filter(|n| is_ours(n)) {
        remove_all(rustix::fd::AsFd::as_fd(bundle), name.as_bytes())
            .map_err(|e| Error::Bundle { op: "remove", path: name.clone(), source: e.into() })?;
    }
    Ok(())
}

/// Undo a failed unpack: what it made goes (best effort: the error being reported matters
/// more).
pub(crate) fn discard(bundle: &Dir) {
    let _ = Record::remove(bundle);
    for name in [TEMP_ROOTFS, ROOTFS_DIR, CONFIG_FILE] {
        let _ = remove_all(rustix::fd::AsFd::as_fd(bundle), name.as_bytes());
    }
}
