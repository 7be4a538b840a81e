//! A destination layout that a command may create (`ocil import`, `ocil copy`): the path on
//! the command line resolved to a directory capability and a name, then
//! `ocil_layout::atomic::open_or_create` (opened when it is a layout, created when it does
//! not exist or is an empty directory, taken away again when the command fails).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_layout::Layout;
use ocil_layout::atomic::Created;

/// Where a destination layout is, and what opening it made.
#[derive(Debug)]
pub(crate) struct Destination {
    parent: Dir,
    name: String,
    created: Created,
}

/// Open `dir` as a layout, creating it (and missing parent directories) when it does not
/// exist or is an empty directory.
pub(crate) fn open_or_create(dir: &Path) -> Result<(Layout, Destination)> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("`{}` exists and is not a directory", dir.display());
    }
    // An existing directory (or a symlink to one) is named by its real path.
    let real: PathBuf = if dir.exists() { fs_err::canonicalize(dir)? } else { dir.to_path_buf() };
    let parent = match real.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = real.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        anyhow::bail!("`{}` cannot be a layout destination", dir.display());
    };
    fs_err::create_dir_all(&parent)?;
    let parent_dir = Dir::open_ambient_dir(&parent, ambient_authority())
        .with_context(|| format!("cannot open `{}`", parent.display()))?;
    let (layout, created) = ocil_layout::atomic::open_or_create(&parent_dir, &name)
        .with_context(|| format!("cannot open layout `{}`", dir.display()))?;
    Ok((layout, Destination { parent: parent_dir, name, created }))
}

impl Destination {
    /// Undo what [`open_or_create`] made (best effort: the command already failed).
    pub(crate) fn undo(self) {
        self.created.undo(&self.parent, &self.name);
    }
}
