//! The container's root as a directory descriptor, and every path resolved inside it the
//! way the container will see it: symlinks (absolute ones too) and `..` never lead above the
//! root, whatever the host's filesystem holds around it.
//!
//! Two resolvers give the same answers:
//! - the kernel's: `openat2` with `RESOLVE_IN_ROOT` (and `RESOLVE_NO_SYMLINKS` on the fast
//!   path, where a path holds no symlink, so its real name is known);
//! - a component-by-component walk, used where the kernel refuses `openat2` (before Linux
//!   5.6, or under a seccomp filter that answers `ENOSYS`/`EPERM`), and wherever a path
//!   holds a symlink or a missing directory: each component is opened with `O_NOFOLLOW`
//!   from the directory before it; a symlink is read and its target walked from the root
//!   (absolute) or from the real directory holding it, `..` pops one real directory and
//!   stops at the root, and at most 40 links are followed (`ELOOP`, as the kernel). One
//!   leniency, containerd's: a missing component followed by `..` cancels out (the kernel
//!   would say `ENOENT`); the result is inside the root all the same.
//!
//! Nothing here follows the last component of a path: callers create, remove and change it
//! with `*at` calls relative to the directory found for its parent.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How paths are resolved inside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolver {
    /// `openat2` with `RESOLVE_IN_ROOT` where the kernel has it, else the walk.
    #[default]
    Auto,
    /// The component-by-component walk only (what runs where `openat2` is refused).
    Walk,
}

/// The most symlinks one resolution follows (the kernel's limit).
const MAX_LINKS: usize = 40;

/// A directory opened inside the root, with its real path (no symlink in it; empty for the
/// root itself).
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) fd: OwnedFd,
    pub(crate) real: Vec<u8>,
}

/// The root directory and the resolver in use.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
    openat2: bool,
}

/// Flags of every directory this module opens.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW
}

impl Root {
    /// The root at `fd`; with [`Resolver::Auto`], `openat2` is tried once and used when the
    /// kernel takes it.
    pub(crate) fn new(fd: OwnedFd, resolver: Resolver) -> Root {
        let openat2 = resolver == Resolver::Auto
            && fs::openat2(&fd, ".", dir_flags(), Mode::empty(), ResolveFlags::IN_ROOT).is_ok();
        Root { fd, openat2 }
    }

    /// Whether the kernel resolver is in use.
    pub(crate) fn uses_openat2(&self) -> bool {
        self.openat2
    }

    /// Open the directory `comps` names (components of a path below the root, without `.`
    /// or `..`), following symlinks inside the root. With `create`, missing directories
    /// are made (mode 0755) and reported to `created` with their real paths.
    pub(crate) fn open_dir(
        &self,
        comps: &[&[u8]],
        create: bool,
        created: &mut dyn FnMut(&[u8], &OwnedFd),
    ) -> Result<Opened, Errno> {
        if self.openat2 {
            let joined = join(comps);
            let path: &[u8] = if joined.is_empty() { b"." } else { &joined };
            // The fast path: no symlink on the way, so the lexical path is the real one.
            let how =
                ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match fs::openat2(&self.fd, path, dir_flags(), Mode::empty(), how) {
                Ok(fd) => return Ok(Opened { fd, real: joined }),
                // A symlink (ELOOP; ENOTDIR for the last component, opened O_NOFOLLOW), or a
                // missing directory to create, or a file: the walk knows the
                // real names.
                Err(Errno::LOOP | Errno::NOTDIR | Errno::NOENT | Errno::XDEV | Errno::AGAIN) => {}
                Err(e) => return Err(e),
            }
        }
        self.walk(comps, create, created)
    }

    /// Open the directory at `real` (a path without symlinks, as [`Opened::real`] gives):
    /// `ELOOP` or `ENOTDIR` when something else is there now.
    pub(crate) fn open_real_dir(&self, real: &[u8]) -> Result<OwnedFd, Errno> {
        if real.is_empty() {
            return fs::openat(&self.fd, ".", dir_flags(), Mode::empty());
        }
        if self.openat2 {
            let how =
                ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            return fs::openat2(&self.fd, real, dir_flags(), Mode::empty(), how);
        }
        let mut cur: Option<OwnedFd> = None;
        for c in real.split(|b| *b == b'/') {
            let at = cur.as_ref().map_or(self.fd.as_fd(), AsFd::as_fd);
            cur = Some(fs::openat(at, c, dir_flags(), Mode::empty())?);
        }
        cur.ok_or(Errno::INVAL)
    }

    /// Open the file at `comps` for reading, following symlinks (the last one too) inside
    /// the root, as the container would open it.
    pub(crate) fn open_file(&self, comps: &[&[u8]]) -> Result<OwnedFd, Errno> {
        let mut path: Vec<Vec<u8>> = comps.iter().map(|c| c.to_vec()).collect();
        for _ in 0..MAX_LINKS {
            let Some((last, parent)) = path.split_last() else { return Err(Errno::ISDIR) };
            if matches!(last.as_slice(), b"." | b"..") {
                return Err(Errno::ISDIR);
            }
            let parent: Vec<&[u8]> = parent.iter().map(Vec::as_slice).collect();
            let dir = self.open_dir(&parent, false, &mut |_, _| {})?;
            let st = fs::statat(&dir.fd, last.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                return fs::openat(
                    &dir.fd,
                    last.as_slice(),
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                );
            }
            let target = fs::readlinkat(&dir.fd, last.as_slice(), Vec::new())?.into_bytes();
            let base: &[u8] = if target.starts_with(b"/") { b"" } else { &dir.real };
            path = base
                .split(|b| *b == b'/')
                .chain(target.split(|b| *b == b'/'))
                .filter(|c| !c.is_empty() && *c != b".")
                .map(<[u8]>::to_vec)
                .collect();
        }
        Err(Errno::LOOP)
    }

    /// The walk (see the module docs).
    fn walk(
        &self,
        comps: &[&[u8]],
        create: bool,
        created: &mut dyn FnMut(&[u8], &OwnedFd),
    ) -> Result<Opened, Errno> {
        let mut pending: VecDeque<Vec<u8>> = comps.iter().map(|c| c.to_vec()).collect();
        // The real directories from the root down: (descriptor, name).
        let mut stack: Vec<(OwnedFd, Vec<u8>)> = Vec::new();
        let mut links = 0;
        while let Some(c) = pending.pop_front() {
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let at = stack.last().map_or(self.fd.as_fd(), |(fd, _)| fd.as_fd());
            match fs::openat(at, c.as_slice(), dir_flags(), Mode::empty()) {
                Ok(fd) => stack.push((fd, c)),
                Err(Errno::LOOP | Errno::NOTDIR | Errno::NOENT) => {
                    let st = match fs::statat(at, c.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) => Some(st),
                        Err(Errno::NOENT) => None,
                        Err(e) => return Err(e),
                    };
                    match st.map(|s| FileType::from_raw_mode(s.st_mode)) {
                        Some(FileType::Symlink) => {
                            links += 1;
                            if links > MAX_LINKS {
                                return Err(Errno::LOOP);
                            }
                            let target = fs::readlinkat(at, c.as_slice(), Vec::new())?;
                            let target = target.into_bytes();
                            if target.starts_with(b"/") {
                                stack.clear();
                            }
                            for t in target.split(|b| *b == b'/').rev() {
                                pending.push_front(t.to_vec());
                            }
                        }
                        Some(_) => return Err(Errno::NOTDIR),
                        // `missing/..` is taken lexically, as containerd's resolver does
                        // (`upandout/../../etc`): it stays inside the root either way.
                        None if pending.front().is_some_and(|n| n.as_slice() == b"..") => {
                            pending.pop_front();
                        }
                        None if create => {
                            match fs::mkdirat(at, c.as_slice(), Mode::from_raw_mode(0o755)) {
                                Ok(()) | Err(Errno::EXIST) => {}
                                Err(e) => return Err(e),
                            }
                            let fd = fs::openat(at, c.as_slice(), dir_flags(), Mode::empty())?;
                            // The umask may have taken bits off.
                            fs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
                            let mut real = real_of(&stack);
                            if !real.is_empty() {
                                real.push(b'/');
                            }
                            real.extend_from_slice(&c);
                            created(&real, &fd);
                            stack.push((fd, c));
                        }
                        None => return Err(Errno::NOENT),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let real = real_of(&stack);
        let fd = match stack.pop() {
            Some((fd, _)) => fd,
            None => fs::openat(&self.fd, ".", dir_flags(), Mode::empty())?,
        };
        Ok(Opened { fd, real })
    }
}

/// The real path of the walk's stack.
fn real_of(stack: &[(OwnedFd, Vec<u8>)]) -> Vec<u8> {
    let names: Vec<&[u8]> = stack.iter().map(|(_, n)| n.as_slice()).collect();
    names.join(&b'/')
}

/// Components joined with `/`.
pub(crate) fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

/// `dir/name` (or `name` at the root).
pub(crate) fn child(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// The names in a directory (not `.` and `..`).
pub(crate) fn list(dir: &OwnedFd) -> Result<Vec<Vec<u8>>, Errno> {
    let mut names = Vec::new();
    let d = fs::Dir::read_from(dir)?;
    for e in d {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    Ok(names)
}

/// Remove `name` in `dir`, and everything under it when it is a directory; symlinks are
/// removed, never followed. Directories the caller may not write are made writable first
/// (an unprivileged caller's rootfs keeps the image's modes, 0555 included).
pub(crate) fn remove_all(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let st = match fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return match fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e),
        };
    }
    let sub = fs::openat(dir, name, dir_flags(), Mode::empty())?;
    if st.st_mode & 0o700 != 0o700 {
        // Ours to remove: make it listable and writable (harmless for root).
        let _ = fs::fchmod(&sub, Mode::from_raw_mode(0o700));
    }
    for n in list(&sub)? {
        remove_all(sub.as_fd(), &n)?;
    }
    drop(sub);
    match fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(p: &std::path::Path) -> OwnedFd {
        fs::open(p, dir_flags(), Mode::empty()).unwrap()
    }

    #[test]
    fn both_resolvers_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(tmp.path().join("victim")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../victim", root.join("up")).unwrap();
        std::os::unix::fs::symlink("loop2", root.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", root.join("loop2")).unwrap();
        for resolver in [Resolver::Auto, Resolver::Walk] {
            let r = Root::new(open(&root), resolver);
            let mut made = Vec::new();
            let mut note = |p: &[u8], _: &OwnedFd| made.push(p.to_vec());
            assert_eq!(r.open_dir(&[b"abs"], false, &mut note).unwrap().real, b"etc");
            // `up` climbs to the root: `victim` is created inside, not beside it.
            let o = r.open_dir(&[b"up", b"new"], true, &mut note).unwrap();
            assert_eq!(o.real, b"victim/new");
            assert_eq!(r.open_dir(&[b"loop1"], false, &mut note).unwrap_err(), Errno::LOOP);
            assert_eq!(r.open_dir(&[], false, &mut note).unwrap().real, b"");
            assert_eq!(made, vec![b"victim".to_vec(), b"victim/new".to_vec()]);
            assert!(root.join("victim/new").is_dir());
            assert!(!tmp.path().join("victim/new").exists());
            std::fs::remove_dir_all(root.join("victim")).unwrap();
        }
    }
}
