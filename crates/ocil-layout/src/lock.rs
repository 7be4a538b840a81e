//! The layout's cross-process lock.
//!
//! ocil takes `flock(2)` on the layout directory itself (a fresh descriptor of the directory
//! opened for the lock), so no extra file appears in the layout and other tools see nothing.
//! Every ocil writer holds the exclusive lock while it adds blobs and replaces `index.json`;
//! `ocil gc` holds it from mark to the end of sweep. Readers take no lock: every write is
//! atomic, so a reader sees the old or the new state.

use std::io;

use cap_std::fs::{Dir, File, OpenOptions};
use rustix::fs::{FlockOperation, flock};

use crate::{Error, Result};

/// Proof that the layout's exclusive lock is held; released on drop.
#[derive(Debug)]
pub struct LockGuard {
    // The descriptor the lock was taken on; closing it releases the lock.
    _file: File,
}

pub(crate) fn lock_exclusive(dir: &Dir, wait: bool) -> Result<Option<LockGuard>> {
    // A fresh read descriptor: directory handles may be `O_PATH`, which flock refuses.
    let own = dir
        .open_with(".", OpenOptions::new().read(true))
        .map_err(Error::io("open for locking", "."))?;
    let op =
        if wait { FlockOperation::LockExclusive } else { FlockOperation::NonBlockingLockExclusive };
    loop {
        match flock(&own, op) {
            Ok(()) => return Ok(Some(LockGuard { _file: own })),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::WOULDBLOCK) if !wait => return Ok(None),
            Err(e) => {
                return Err(Error::Io { op: "lock", path: ".".into(), source: io::Error::from(e) });
            }
        }
    }
}
