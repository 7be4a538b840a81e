//! `DIR`, `DIR:REF` and `DIR@DIGEST` on the command line, and the same with an archive
//! file (`FILE.tar:REF`) for the commands that read archives in place.
//!
//! The split is at the last `@` (then the last `:`) whose left side exists (a directory, or
//! a file), so names that contain `:` still work: `ocil ls a:b` opens `a:b` when it exists,
//! and `ocil inspect a:b:v1` opens `a:b` with tag `v1`.
//!
//! `-` is an archive read from standard input (`docker save img | ocil ls -`, and
//! `ocil inspect -- -:v1`), for the commands that read archives; to name a directory
//! called `-`, write `./-`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ocil_archive::ArchiveView;
use ocil_layout::{Index, Layout, Reference};

/// A parsed target.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) dir: PathBuf,
    pub(crate) reference: Option<Reference>,
}

/// The target that is standard input.
const STDIN: &str = "-";

/// Whether a target's path part names something: an existing path, or `-`.
fn exists(path: &str) -> bool {
    path == STDIN || Path::new(path).exists()
}

impl Target {
    pub(crate) fn parse(s: &str) -> Result<Target> {
        if exists(s) {
            return Ok(Target { dir: s.into(), reference: None });
        }
        for sep in ['@', ':'] {
            for (i, _) in s.match_indices(sep).collect::<Vec<_>>().into_iter().rev() {
                let (left, right) = (&s[..i], &s[i + 1..]);
                if !left.is_empty() && exists(left) {
                    let reference = if sep == '@' {
                        Reference::Digest(
                            right.parse().with_context(|| format!("invalid digest in `{s}`"))?,
                        )
                    } else {
                        Reference::parse(right)
                            .with_context(|| format!("invalid reference in `{s}`"))?
                    };
                    return Ok(Target { dir: left.into(), reference: Some(reference) });
                }
            }
        }
        // Nothing exists under any split: the directory part of `DIR:TAG` / `DIR@DIGEST`
        // is what is missing: name it, rather than let the command complain about a missing
        // reference or a directory called `DIR:TAG`.
        if let Some(i) = s.rfind('@').or_else(|| s.rfind(':'))
            && i > 0
        {
            anyhow::bail!("{}", missing(Path::new(&s[..i])));
        }
        Ok(Target { dir: s.into(), reference: None })
    }

    /// The archive's name in messages: "archive `FILE`", or "the archive on standard input".
    pub(crate) fn archive_name(&self) -> String {
        if self.is_stdin() {
            "the archive on standard input".into()
        } else {
            format!("archive `{}`", self.dir.display())
        }
    }

    /// Whether the target is standard input (`-`).
    fn is_stdin(&self) -> bool {
        self.dir.as_os_str() == STDIN
    }

    /// Whether the path is an existing file (an archive) or standard input, not a directory.
    pub(crate) fn is_archive(&self) -> bool {
        self.is_stdin() || (self.dir.exists() && !self.dir.is_dir())
    }

    /// Open the archive file (or standard input) and index it in place.
    pub(crate) fn open_archive(&self) -> Result<ArchiveView> {
        let file = if self.is_stdin() {
            use std::io::IsTerminal as _;
            use std::os::fd::AsFd as _;
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                anyhow::bail!(
                    "`-` reads an archive from standard input, which is a terminal: pipe one in (e.g. `docker save IMAGE | ocil ls -`)"
                );
            }
            let fd = stdin.as_fd().try_clone_to_owned().context("cannot read standard input")?;
            std::fs::File::from(fd)
        } else {
            std::fs::File::open(&self.dir)
                .with_context(|| format!("cannot open archive `{}`", self.dir.display()))?
        };
        let path = self.dir.display();
        let file = cap_std::fs::File::from_std(file);
        match ArchiveView::open(file) {
            Ok(view) => Ok(view),
            Err(e) if self.is_stdin() => {
                Err(e).context("cannot read an image archive from standard input")
            }
            // Not a tar at all: the user most likely meant a directory.
            Err(e) if matches!(e.code(), Some("NOT_A_TAR" | "ARCHIVE_EMPTY")) => {
                anyhow::bail!("`{path}` is neither a layout directory nor an image archive ({e})")
            }
            Err(e) => Err(e).with_context(|| format!("cannot read archive `{path}`")),
        }
    }

    pub(crate) fn open(&self) -> Result<Layout> {
        if self.is_stdin() {
            anyhow::bail!(
                "`-` (an archive on standard input) can only be read by ls, inspect, cat and fsck: this command needs a layout directory (write `./-` for a directory called `-`)"
            );
        }
        open_layout(&self.dir)
    }

    /// Read `index.json` leniently (a `null` `manifests` reads as empty), warning when it
    /// had to forgive something: for the commands that only look.
    pub(crate) fn read_index_lenient(&self, layout: &Layout) -> Result<Index> {
        let (index, note) = layout
            .read_index_lenient()
            .with_context(|| format!("cannot read `{}/index.json`", self.dir.display()))?;
        if let Some(note) = note {
            crate::output::warn(&note);
        }
        Ok(index)
    }
}

/// What to say of a path that does not exist: a name like an archive's is called one.
pub(crate) fn missing(path: &Path) -> String {
    let name = path.to_string_lossy();
    let archive = [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".tar.zstd"]
        .iter()
        .any(|ext| name.ends_with(ext));
    if archive {
        format!("no such archive `{name}`")
    } else {
        format!("no such directory `{name}`")
    }
}

/// Open a layout directory by path, with the path in every error.
pub(crate) fn open_layout(dir: &Path) -> Result<Layout> {
    if !dir.exists() {
        anyhow::bail!("{}", missing(dir));
    }
    if !dir.is_dir() {
        anyhow::bail!("`{}` is not a directory", dir.display());
    }
    Layout::open_ambient(dir).with_context(|| format!("cannot open layout `{}`", dir.display()))
}
