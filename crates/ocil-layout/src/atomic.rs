//! Outputs that appear whole or not at all, for the commands that write outside a layout's
//! blob store: a file that stays unnamed until it is complete and synced
//! ([`AtomicFile`], an archive `ocil export` writes), and a destination layout that a
//! command creates and takes away again when it fails ([`open_or_create`],
//! [`Created::undo`]). Both work inside a directory capability, never on ambient paths.

use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _};

use cap_std::fs::{Dir, OpenOptions};

use crate::layout::{sync_dir, temp_name};
use crate::{BLOBS_DIR, Error, INDEX_FILE, LAYOUT_FILE, Layout, Result};

/// A file being written in a directory, named only by [`AtomicFile::commit`]: until then it
/// is an `O_TMPFILE` (no name at all), or, where the filesystem has none, a `.ocil-tmp-*`
/// file removed on drop. A kill at any moment leaves the old file (or none) under the name.
#[derive(Debug)]
pub struct AtomicFile {
    file: cap_std::fs::File,
    dir: Dir,
    name: String,
    /// The temp name, when `O_TMPFILE` was not available.
    named: Option<String>,
}

impl AtomicFile {
    /// Start the file that will be `name` in `dir`.
    pub fn create(dir: &Dir, name: &str) -> Result<AtomicFile> {
        let dir = dir.try_clone().map_err(Error::io("open", "."))?;
        use rustix::fs::{Mode, OFlags};
        match rustix::fs::openat(
            dir.as_fd(),
            ".",
            OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(fd) => Ok(AtomicFile {
                file: cap_std::fs::File::from(fd),
                dir,
                name: name.into(),
                named: None,
            }),
            Err(e)
                if e == rustix::io::Errno::OPNOTSUPP
                    || e == rustix::io::Errno::ISDIR
                    || e == rustix::io::Errno::INVAL =>
            {
                let temp = temp_name("out");
                let f = dir
                    .open_with(&temp, OpenOptions::new().write(true).create_new(true))
                    .map_err(Error::io("create a temp file for", name))?;
                Ok(AtomicFile { file: f, dir, name: name.into(), named: Some(temp) })
            }
            Err(e) => Err(Error::Io {
                op: "create a temp file for",
                path: name.into(),
                source: io::Error::from(e),
            }),
        }
    }

    /// The open file, to write into.
    pub fn file(&self) -> &cap_std::fs::File {
        &self.file
    }

    /// fsync the file, give it its name (replacing what had it), fsync the directory.
    pub fn commit(mut self) -> Result<()> {
        let name = self.name.clone();
        self.file.sync_all().map_err(Error::io("fsync", name.clone()))?;
        let temp = match self.named.take() {
            Some(t) => t,
            None => {
                // An O_TMPFILE gets a name through its /proc link, then the rename.
                let temp = temp_name("out");
                let proc = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    proc.as_str(),
                    self.dir.as_fd(),
                    temp.as_str(),
                    rustix::fs::AtFlags::SYMLINK_FOLLOW,
                )
                .map_err(|e| Error::Io {
                    op: "name",
                    path: name.clone(),
                    source: io::Error::from(e),
                })?;
                temp
            }
        };
        if let Err(e) = self.dir.rename(&temp, &self.dir, &name) {
            let _ = self.dir.remove_file(&temp);
            return Err(Error::Io { op: "rename into", path: name, source: e });
        }
        sync_dir(&self.dir, ".")
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(t) = self.named.take() {
            let _ = self.dir.remove_file(t);
        }
    }
}

/// What [`open_or_create`] made, to take away after a failed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Created {
    /// Nothing: the layout existed.
    Nothing,
    /// The directory itself.
    Dir,
    /// A layout in an empty directory that existed.
    Layout,
}

/// Open `name` in `parent` as a layout, creating it when it does not exist (as `ocil init`
/// does) or is an empty directory. A new directory is made under a temp name and renamed
/// into place: a kill leaves no `name` or a complete empty layout (and at worst a
/// `.ocil-tmp-*` directory beside it).
pub fn open_or_create(parent: &Dir, name: &str) -> Result<(Layout, Created)> {
    let existed = match parent.metadata(name) {
        Ok(m) if m.is_dir() => true,
        Ok(_) => {
            return Err(Error::Io {
                op: "open",
                path: name.into(),
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::Io { op: "open", path: name.into(), source: e }),
    };
    if !existed {
        let temp = temp_name("layout");
        parent.create_dir(&temp).map_err(Error::io("create", name))?;
        let made = parent
            .open_dir(&temp)
            .map_err(Error::io("open", name))
            .and_then(Layout::create)
            .and_then(|layout| {
                drop(layout);
                parent.rename(&temp, parent, name).map_err(Error::io("rename into", name))
            });
        if let Err(e) = made {
            let _ = parent.remove_dir_all(&temp);
            return Err(e);
        }
        let dir = parent.open_dir(name).map_err(Error::io("open", name))?;
        return Ok((Layout::open(dir)?, Created::Dir));
    }
    let dir = parent.open_dir(name).map_err(Error::io("open", name))?;
    let empty = dir.entries().map_err(Error::io("list", name))?.next().is_none();
    if empty {
        return Ok((Layout::create(dir)?, Created::Layout));
    }
    Ok((Layout::open(dir)?, Created::Nothing))
}

impl Created {
    /// Take away what [`open_or_create`] made (best effort: the command already failed).
    pub fn undo(self, parent: &Dir, name: &str) {
        match self {
            Created::Nothing => {}
            Created::Dir => {
                let _ = parent.remove_dir_all(name);
            }
            Created::Layout => {
                if let Ok(dir) = parent.open_dir(name) {
                    let _ = dir.remove_dir_all(BLOBS_DIR);
                    let _ = dir.remove_dir_all("blobs");
                    let _ = dir.remove_file(INDEX_FILE);
                    let _ = dir.remove_file(LAYOUT_FILE);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn tmp() -> (tempfile::TempDir, Dir) {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open_ambient_dir(t.path(), cap_std::ambient_authority()).unwrap();
        (t, d)
    }

    #[test]
    fn a_file_has_no_name_until_it_is_committed() {
        let (t, d) = tmp();
        std::fs::write(t.path().join("out.tar"), b"old").unwrap();
        let f = AtomicFile::create(&d, "out.tar").unwrap();
        f.file().write_all(b"new").unwrap();
        assert_eq!(std::fs::read(t.path().join("out.tar")).unwrap(), b"old");
        f.commit().unwrap();
        assert_eq!(std::fs::read(t.path().join("out.tar")).unwrap(), b"new");
        let names: Vec<_> =
            std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["out.tar"]);
    }

    #[test]
    fn a_dropped_file_leaves_nothing() {
        let (t, d) = tmp();
        let f = AtomicFile::create(&d, "out.tar").unwrap();
        f.file().write_all(b"half").unwrap();
        drop(f);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    #[test]
    fn layouts_are_made_and_taken_away() {
        let (t, d) = tmp();
        let (_, made) = open_or_create(&d, "new").unwrap();
        assert_eq!(made, Created::Dir);
        assert!(t.path().join("new/oci-layout").is_file());
        made.undo(&d, "new");
        assert!(!t.path().join("new").exists());

        std::fs::create_dir(t.path().join("empty")).unwrap();
        let (_, made) = open_or_create(&d, "empty").unwrap();
        assert_eq!(made, Created::Layout);
        made.undo(&d, "empty");
        assert_eq!(std::fs::read_dir(t.path().join("empty")).unwrap().count(), 0);

        let (_, made) = open_or_create(&d, "new").unwrap();
        let (_, again) = open_or_create(&d, "new").unwrap();
        assert_eq!((made, again), (Created::Dir, Created::Nothing));
        again.undo(&d, "new");
        assert!(t.path().join("new/oci-layout").is_file());

        std::fs::write(t.path().join("file"), b"x").unwrap();
        assert!(open_or_create(&d, "file").is_err());
        std::fs::create_dir(t.path().join("junk")).unwrap();
        std::fs::write(t.path().join("junk/x"), b"x").unwrap();
        assert!(open_or_create(&d, "junk").is_err(), "a non-empty directory that is no layout");
    }
}
