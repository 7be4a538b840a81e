//! A destination layout that a command may create (`ocil import`, `ocil copy`): opened when
//! it is a layout, created (as `ocil init` does) when it does not exist or is an empty
//! directory, and removed again when the command fails.

use std::path::Path;

use anyhow::{Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_layout::Layout;

/// What [`open_or_create`] made, to undo after a failed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Made {
    /// Nothing: the layout existed.
    Nothing,
    /// The directory itself.
    Dir,
    /// A layout in an empty directory that existed.
    Layout,
}

/// Open `dir` as a layout, creating it when it does not exist or is an empty directory.
///
/// A new directory is made beside `dir` under a temp name and renamed into place: a kill
/// leaves either no `dir` or a complete empty layout (and at worst a temp directory beside
/// it).
pub(crate) fn open_or_create(dir: &Path) -> Result<(Layout, Made)> {
    let existed = dir.exists();
    if existed && !dir.is_dir() {
        anyhow::bail!("`{}` exists and is not a directory", dir.display());
    }
    let empty = existed && fs_err::read_dir(dir)?.next().is_none();
    if !existed {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        fs_err::create_dir_all(&parent)?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = parent.join(format!(
            "{}layout-{}-{name}",
            ocil_layout::TEMP_PREFIX,
            std::process::id()
        ));
        fs_err::create_dir(&tmp)?;
        let made = Dir::open_ambient_dir(&tmp, ambient_authority())
            .map_err(anyhow::Error::from)
            .and_then(|cap| Layout::create(cap).map_err(anyhow::Error::from))
            .and_then(|layout| {
                drop(layout);
                fs_err::rename(&tmp, dir).map_err(anyhow::Error::from)
            });
        if let Err(e) = made {
            let _ = fs_err::remove_dir_all(&tmp);
            return Err(e.context(format!("cannot create a layout in `{}`", dir.display())));
        }
    }
    let cap = Dir::open_ambient_dir(dir, ambient_authority())
        .with_context(|| format!("cannot open `{}`", dir.display()))?;
    if !existed || !empty {
        let layout =
            Layout::open(cap).with_context(|| format!("cannot open layout `{}`", dir.display()))?;
        return Ok((layout, if existed { Made::Nothing } else { Made::Dir }));
    }
    let layout = Layout::create(cap)
        .with_context(|| format!("cannot create a layout in `{}`", dir.display()))?;
    Ok((layout, Made::Layout))
}

/// Undo what [`open_or_create`] made (best effort: the command already failed).
pub(crate) fn unmake(dir: &Path, made: Made) {
    match made {
        Made::Nothing => {}
        Made::Dir => {
            let _ = fs_err::remove_dir_all(dir);
        }
        Made::Layout => {
            let _ = fs_err::remove_dir_all(dir.join(ocil_layout::BLOBS_DIR));
            let _ = fs_err::remove_file(dir.join(ocil_layout::INDEX_FILE));
            let _ = fs_err::remove_file(dir.join(ocil_layout::LAYOUT_FILE));
        }
    }
}
