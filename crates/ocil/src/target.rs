//! Targets on the command line, for every command: [`ocil_layout::image_ref`] parses them
//! (the grammar, the transports, the split rules, in one place), this module asks it with a
//! probe of the real filesystem and opens what a target names: a layout directory, an
//! archive file, or standard input. Registries (`docker://`) parse, and are refused here:
//! the commands that read them (`copy`, `pull`, `ls`, `inspect`, `cat`) open them through
//! `crate::registry` first.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ocil_archive::ArchiveView;
use ocil_layout::image_ref::{self, ImageRef, PathKind, Role, Transport};
use ocil_layout::{Index, Layout, Reference};

/// A parsed target.
#[derive(Debug)]
pub(crate) struct Target {
    /// What the library parsed.
    pub(crate) image: ImageRef,
    /// The directory or archive file; `-` for standard input.
    pub(crate) dir: PathBuf,
    /// The tag or digest, when given.
    pub(crate) reference: Option<Reference>,
    /// The target as given, for messages.
    pub(crate) text: String,
    /// The archive, when parsing already indexed it (to expand a short digest), for
    /// [`Target::open_archive`] to hand out instead of indexing it again.
    opened: RefCell<Option<ArchiveView>>,
}

/// What is at a path: the probe the grammar asks.
fn probe(path: &Path) -> PathKind {
    match fs_err::metadata(path) {
        Ok(m) if m.is_dir() => PathKind::Dir,
        Ok(_) => PathKind::File,
        Err(_) => PathKind::Missing,
    }
}

/// A short digest made whole.
struct Expanded {
    /// The target with the full digest.
    text: String,
    /// The archive file indexed to find it, when the target is one.
    archive: Option<(PathBuf, ArchiveView)>,
}

/// `DIR@sha256:6ae4b4729c93` (a digest as `ocil ls` prints it) with the one full digest of
/// DIR (or of an archive FILE) that starts so, as docker and git take a unique prefix;
/// `None` when `s` has no such short digest.
fn expand_short_digest(s: &str) -> Result<Option<Expanded>> {
    let Some(i) = s.rfind('@') else { return Ok(None) };
    let (left, right) = (&s[..i], &s[i + 1..]);
    if left.is_empty() || !ocil_layout::store::is_digest_prefix(right) {
        return Ok(None);
    }
    let path = Path::new(left);
    let (found, archive) = match probe(path) {
        PathKind::Dir => {
            (ocil_layout::store::expand_digest_prefix(&open_layout(path)?, right), None)
        }
        PathKind::File => {
            // Parsing knows no -q or --json: no spinner here.
            let view = Target::parse(left)?.open_archive(true)?;
            (
                ocil_layout::store::expand_digest_prefix(&view, right),
                Some((path.to_path_buf(), view)),
            )
        }
        PathKind::Missing => return Ok(None),
    };
    let digest = found.with_context(|| format!("cannot resolve `{s}`"))?;
    Ok(Some(Expanded { text: format!("{left}@{digest}"), archive }))
}

/// The refusal every command gives a registry, until one is implemented.
fn no_registries(image: &ImageRef) -> Result<()> {
    if let ImageRef::Registry(r) = image {
        anyhow::bail!(
            "this command does not read registries (`docker://{r}`): `ocil pull` copies an image into a layout"
        );
    }
    Ok(())
}

impl Target {
    /// A target that must exist: a layout directory, an archive, or `-`.
    pub(crate) fn parse(s: &str) -> Result<Target> {
        Target::parse_as(s, Role::Source)
    }

    /// A target that may not exist yet: a layout directory to create (`o1:app` is the
    /// directory `o1` with tag `app`).
    pub(crate) fn parse_destination(s: &str) -> Result<Target> {
        Target::parse_as(s, Role::Destination)
    }

    fn parse_as(s: &str, role: Role) -> Result<Target> {
        let (expanded, opened) = match role {
            Role::Source => match expand_short_digest(s)? {
                Some(e) => (Some(e.text), e.archive),
                None => (None, None),
            },
            _ => (None, None),
        };
        let image = ImageRef::parse(expanded.as_deref().unwrap_or(s), role, probe)?;
        no_registries(&image)?;
        let dir = image.path().map_or_else(|| PathBuf::from("-"), Path::to_path_buf);
        let reference = image.reference().cloned();
        // The archive indexed to expand a short digest is this target's (no other split
        // gives an existing file), and is kept only then.
        let opened = opened.filter(|(path, _)| image.path() == Some(path.as_path()));
        let opened = RefCell::new(opened.map(|(_, view)| view));
        Ok(Target { image, dir, reference, text: s.to_owned(), opened })
    }

    /// A registry target (`docker://REF`), already resolved by its store: for the commands
    /// that share their printing with layouts and archives.
    pub(crate) fn registry(text: &str, reference: Reference) -> Target {
        let image = ImageRef::Layout {
            transport: Transport::Docker,
            dir: PathBuf::from(text),
            reference: Some(reference.clone()),
        };
        Target {
            image,
            dir: PathBuf::from(text),
            reference: Some(reference),
            text: text.to_owned(),
            opened: RefCell::new(None),
        }
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
    pub(crate) fn is_stdin(&self) -> bool {
        self.image.is_stdin()
    }

    /// Whether the target is an archive (an existing file, `oci-archive:`,
    /// `docker-archive:`) or standard input, not a directory.
    pub(crate) fn is_archive(&self) -> bool {
        matches!(self.image, ImageRef::Archive { .. })
    }

    /// Refuse a tag or digest: for commands that take a whole layout or archive.
    pub(crate) fn no_reference(&self, command: &str, takes: &str) -> Result<()> {
        if self.reference.is_some() {
            anyhow::bail!("`ocil {command}` takes {takes}, not a reference: `{}`", self.text);
        }
        Ok(())
    }

    /// Open the archive file (or standard input) and index it in place (or hand out the
    /// view parsing made, once). A compressed archive (or a pipe) is read whole: a spinner
    /// shows it on a terminal, unless `quiet` (`-q` or `--json`).
    pub(crate) fn open_archive(&self, quiet: bool) -> Result<ArchiveView> {
        if let Some(view) = self.opened.take() {
            return Ok(view);
        }
        let file = if self.is_stdin() {
            use std::os::fd::AsFd as _;
            let stdin = stdin_not_a_terminal("ocil ls -")?;
            let fd = stdin.as_fd().try_clone_to_owned().context("cannot read standard input")?;
            std::fs::File::from(fd)
        } else {
            std::fs::File::open(&self.dir)
                .with_context(|| format!("cannot open archive `{}`", self.dir.display()))?
        };
        let path = self.dir.display();
        let file = cap_std::fs::File::from_std(file);
        let bars = crate::progress::Bars::new(quiet);
        match ArchiveView::open_with(file, &bars) {
            Ok(view) => Ok(view),
            Err(e) if self.is_stdin() => {
                Err(e).context("cannot read an image archive from standard input")
            }
            // Not a tar at all: the user most likely meant a directory.
            Err(e)
                if self.image.transport() == Transport::Path
                    && matches!(e.code(), Some("NOT_A_TAR" | "ARCHIVE_EMPTY")) =>
            {
                anyhow::bail!("`{path}` is neither a layout directory nor an image archive ({e})")
            }
            Err(e) => Err(e).with_context(|| format!("cannot read archive `{path}`")),
        }
    }

    /// Open the layout directory the target names; an archive is refused.
    pub(crate) fn open(&self) -> Result<Layout> {
        if self.is_stdin() {
            anyhow::bail!(
                "`-` (an archive on standard input) can only be read by ls, inspect, cat, fsck and import: this command needs a layout directory (write `./-` for a directory called `-`)"
            );
        }
        if let ImageRef::Archive {
            transport: Transport::OciArchive | Transport::DockerArchive,
            ..
        } = self.image
        {
            anyhow::bail!(
                "`{}` is an archive: this command needs a layout directory (`ocil import` brings an archive into one)",
                self.text
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

    /// For a destination: the layout directory to open or create. An archive, standard
    /// input or an existing file is refused, naming `instead` (what writes those).
    pub(crate) fn layout_dir(&self, instead: &str) -> Result<&Path> {
        match &self.image {
            ImageRef::Layout { dir, .. } => Ok(dir),
            _ if self.is_stdin() => anyhow::bail!(
                "`-` (an archive on standard input) cannot be written to: this command needs a layout directory (write `./-` for a directory called `-`)"
            ),
            ImageRef::Archive { transport: Transport::Path, file: Some(f), .. } => {
                anyhow::bail!("`{}` exists and is not a directory", f.display())
            }
            _ => anyhow::bail!(
                "`{}` is an archive: this command writes a layout directory ({instead})",
                self.text
            ),
        }
    }
}

/// Standard input, unless it is a terminal (nothing was piped in).
pub(crate) fn stdin_not_a_terminal(example: &str) -> Result<std::io::Stdin> {
    use std::io::IsTerminal as _;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        anyhow::bail!(
            "`-` reads an archive from standard input, which is a terminal: pipe one in (e.g. `docker save IMAGE | {example}`)"
        );
    }
    Ok(stdin)
}

/// What to say of a path that does not exist: a name like an archive's is called one.
pub(crate) fn missing(path: &Path) -> String {
    image_ref::not_found(&path.to_string_lossy(), Transport::Path).to_string()
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
