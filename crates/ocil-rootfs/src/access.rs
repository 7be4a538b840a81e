//! Reading a file its owner may not read: a rootless bundle belongs to the caller, but the
//! image's modes are kept, and some images ship files of mode `0000` (RHEL's and Fedora's
//! `/etc/shadow`, `/etc/gshadow`). status, repack and export-rootfs must read them, as root
//! would. When an open is refused and the caller owns the file, the owner's read bit is
//! added for the open and the mode put back at once (the descriptor keeps reading); umoci
//! does the same for rootless repacks.
//!
//! The file is pinned first with an `O_PATH | O_NOFOLLOW` descriptor and changed and
//! reopened through it (`/proc/self/fd/N`), so a name swapped for a symlink meanwhile is
//! never followed.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::fs::{self, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Open `name` in `dir` for reading (`flags` as for `openat`, which should include
/// `NOFOLLOW`); on `EACCES` for a regular file the caller owns, open it with the owner's
/// read bit added for the moment of the open.
pub(crate) fn open_for_reading(
    dir: impl AsFd,
    name: &[u8],
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    match fs::openat(&dir, name, flags, Mode::empty()) {
        Err(Errno::ACCESS) => {}
        other => return other,
    }
    let pinned =
        fs::openat(&dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    let st = fs::fstat(&pinned)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_uid != rustix::process::geteuid().as_raw()
    {
        return Err(Errno::ACCESS);
    }
    let mode = st.st_mode & 0o7777;
    let proc_path = format!("/proc/self/fd/{}", pinned.as_raw_fd());
    fs::chmod(proc_path.as_str(), Mode::from_raw_mode(mode | 0o400))?;
    let opened = fs::openat(fs::CWD, proc_path.as_str(), flags & !OFlags::NOFOLLOW, Mode::empty());
    let restored = fs::chmod(proc_path.as_str(), Mode::from_raw_mode(mode));
    let fd = opened?;
    restored?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mode_000_file_of_ones_own_is_read_and_keeps_its_mode() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir =
            fs::open(tmp.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).expect("open");
        let p = tmp.path().join("shadow");
        std::fs::write(&p, b"secret").expect("write");
        fs::chmod(&p, Mode::empty()).expect("chmod");
        let fd =
            open_for_reading(&dir, b"shadow", OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC)
                .expect("open");
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).expect("read");
        assert_eq!(s, "secret");
        assert_eq!(fs::stat(&p).expect("stat").st_mode & 0o7777, 0);
        // A symlink is never followed.
        std::os::unix::fs::symlink("shadow", tmp.path().join("link")).expect("symlink");
        assert!(open_for_reading(&dir, b"link", OFlags::RDONLY | OFlags::NOFOLLOW).is_err());
    }
}
