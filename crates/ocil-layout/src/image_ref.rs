//! Image references on the command line: where an image is (a layout directory, an archive
//! file, standard input, a registry) and which one (a tag or a digest), parsed the same way
//! for every command.
//!
//! # Grammar
//!
//! | Spelling | Meaning |
//! |---|---|
//! | `DIR`, `DIR:TAG`, `DIR@DIGEST` | a layout directory (or an archive, when the path is a file) |
//! | `oci:DIR[:REF]` | a layout directory, always (skopeo's spelling); REF is a tag or `@DIGEST` |
//! | `oci-archive:FILE[:REF]` | an OCI archive |
//! | `docker-archive:FILE[:NAME]` | a docker-save archive; NAME may be a full name, `example.com/a:v1` |
//! | `docker://NAME[:TAG\|@DIGEST]` | an image in a registry (parsed and checked, not yet served) |
//! | `-`, `-:REF`, `-@DIGEST` | an archive on standard input |
//!
//! **A path that exists is that path.** `a:b` names the directory `a:b` when it exists,
//! before any transport or split is considered.
//!
//! **Bare targets split at the last `@`, then the last `:`, whose left side exists**, so
//! directories with `:` in their names work: `a:b:v1` is `a:b` with tag `v1` when `a:b`
//! exists.
//!
//! **Explicit transports split as skopeo does**: at the first `:` after the path (for `oci:`
//! and `oci-archive:` also at an `@`); when a longer prefix of the path exists, the first
//! position whose left side exists wins, so a `docker-archive:` NAME may itself hold `:` and
//! `/` (`docker-archive:app.tar:example.com:5000/app:v1`). Transport prefixes are reserved: a
//! directory called `oci` is `./oci`, `./oci:v1`.
//!
//! **A source must exist**: when nothing does, the error names the missing directory or
//! archive (the part left of the last separator).
//!
//! **A destination may not exist yet** ([`Role::Destination`], for `import`, `copy`, `init`).
//! When no prefix exists, `DIR:TAG` still splits at the last `:` when TAG is a valid tag
//! (no `/`) and DIR's parent directory exists (`o1:app` is the directory `o1`, tag `app`), and
//! `DIR@DIGEST` at the last `@` when DIGEST is a valid digest; when DIR's parent does not
//! exist either the target is refused rather than guessed. Anything else is a directory to
//! create, parents included. To create a directory whose name holds `:`, end it with `/`
//! (`a:b/`): a target ending in `/` never splits.
//!
//! **`-` is an archive on standard input**; a directory called `-` is `./-` (or `oci:-`).
//!
//! Registry names follow Docker's grammar and normalisation: `busybox` is
//! `docker.io/library/busybox:latest`; a first component with a `.` or a `:` (a port), or
//! `localhost`, is the registry host (`localhost:5000/a:b`).
//!
//! Parsing needs to know what exists; the caller passes a probe, so this crate never looks at
//! the filesystem itself.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use ocil_layout::image_ref::{ImageRef, PathKind, Role};
//! # fn main() -> Result<(), ocil_layout::Error> {
//! // Nothing exists: `o1` is created, as a layout tagged `app`.
//! let missing = |_: &Path| PathKind::Missing;
//! let parent = |p: &Path| if p == Path::new(".") { PathKind::Dir } else { PathKind::Missing };
//! let r = ImageRef::parse("o1:app", Role::Destination, parent)?;
//! assert_eq!(r.path(), Some(Path::new("o1")));
//! assert_eq!(r.reference().map(ToString::to_string).as_deref(), Some("app"));
//!
//! let r = ImageRef::parse("docker://busybox", Role::Source, missing)?;
//! assert_eq!(r.to_string(), "docker://docker.io/library/busybox:latest");
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use crate::reference::validate_tag;
use crate::{Digest, Error, Reference, Result};

/// What is at a path, as the caller's probe sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Nothing.
    Missing,
    /// A directory.
    Dir,
    /// Anything else: a file (an archive), a device, a pipe.
    File,
}

/// Whether the image must already be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read from: the path must exist.
    Source,
    /// Written to: a layout directory may be created (see the module docs for the split).
    Destination,
}

/// How a target was spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No prefix: a path, a directory or an archive by what exists.
    Path,
    /// `oci:`: a layout directory.
    Oci,
    /// `oci-archive:`: an OCI archive file.
    OciArchive,
    /// `docker-archive:`: a docker-save archive file.
    DockerArchive,
    /// `docker://`: a registry.
    Docker,
    /// `-`: an archive on standard input.
    Stdin,
}

impl Transport {
    /// The prefix that spells it (`oci:`, `docker://`); empty for a bare path, `-` for stdin.
    pub fn prefix(self) -> &'static str {
        match self {
            Transport::Path => "",
            Transport::Oci => "oci:",
            Transport::OciArchive => "oci-archive:",
            Transport::DockerArchive => "docker-archive:",
            Transport::Docker => "docker://",
            Transport::Stdin => "-",
        }
    }
}

/// The explicit transports, longest first where one prefixes another.
const TRANSPORTS: [(&str, Transport); 4] = [
    ("docker://", Transport::Docker),
    ("oci-archive:", Transport::OciArchive),
    ("docker-archive:", Transport::DockerArchive),
    ("oci:", Transport::Oci),
];

/// The explicit transport `s` starts with (`oci:`, `oci-archive:`, `docker-archive:`,
/// `docker://`), if any: for arguments that are plain paths unless a transport is spelled
/// (`ocil export -o`).
pub fn explicit_transport(s: &str) -> Option<Transport> {
    TRANSPORTS.iter().find(|(prefix, _)| s.starts_with(prefix)).map(|&(_, t)| t)
}

/// Transports of other tools (containers-transports(5)) that ocil does not read: refused
/// by name rather than taken for a directory.
const FOREIGN: [&str; 8] = [
    "dir",
    "docker",
    "docker-daemon",
    "containers-storage",
    "ostree",
    "sif",
    "tarball",
    "oci-layout",
];

/// Where an image is, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageRef {
    /// A layout directory: a bare path that is a directory (or, for a destination, does
    /// not exist yet), or `oci:DIR`.
    Layout {
        /// [`Transport::Path`] or [`Transport::Oci`].
        transport: Transport,
        /// The directory.
        dir: PathBuf,
        /// The tag or digest, when given.
        reference: Option<Reference>,
    },
    /// An archive: a bare path that is a file, `oci-archive:FILE`, `docker-archive:FILE`,
    /// or `-`.
    Archive {
        /// [`Transport::Path`], [`Transport::OciArchive`], [`Transport::DockerArchive`] or
        /// [`Transport::Stdin`].
        transport: Transport,
        /// The file; `None` for standard input.
        file: Option<PathBuf>,
        /// The tag, name or digest, when given (for `docker-archive:`, a name as
        /// `RepoTags` writes it: `busybox:latest`).
        reference: Option<Reference>,
    },
    /// `docker://NAME`.
    Registry(RegistryRef),
}

impl ImageRef {
    /// Parse a target. `probe` tells what is at a path (see [`PathKind`]); it is asked only
    /// about the target's own prefixes and a destination's parent directory.
    pub fn parse(s: &str, role: Role, probe: impl Fn(&Path) -> PathKind) -> Result<ImageRef> {
        Parser { target: s, role, probe: &probe }.parse()
    }

    /// How the target was spelled.
    pub fn transport(&self) -> Transport {
        match self {
            ImageRef::Layout { transport, .. } | ImageRef::Archive { transport, .. } => *transport,
            ImageRef::Registry(_) => Transport::Docker,
        }
    }

    /// The directory or archive file; `None` for standard input and registries.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ImageRef::Layout { dir, .. } => Some(dir),
            ImageRef::Archive { file, .. } => file.as_deref(),
            ImageRef::Registry(_) => None,
        }
    }

    /// The tag or digest in a layout or archive; `None` when not given, and for registries
    /// (see [`RegistryRef`]).
    pub fn reference(&self) -> Option<&Reference> {
        match self {
            ImageRef::Layout { reference, .. } | ImageRef::Archive { reference, .. } => {
                reference.as_ref()
            }
            ImageRef::Registry(_) => None,
        }
    }

    /// Whether this is an archive on standard input.
    pub fn is_stdin(&self) -> bool {
        self.transport() == Transport::Stdin
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, path, reference) = match self {
            ImageRef::Registry(r) => return write!(f, "docker://{r}"),
            ImageRef::Layout { transport, dir, reference } => (*transport, Some(dir), reference),
            ImageRef::Archive { transport, file, reference } => {
                (*transport, file.as_ref(), reference)
            }
        };
        f.write_str(transport.prefix())?;
        if let Some(p) = path {
            write!(f, "{}", p.display())?;
        }
        match reference {
            None => Ok(()),
            Some(r @ Reference::Digest(_)) => write!(f, "{r}"),
            Some(r @ Reference::Tag(_)) => write!(f, ":{r}"),
        }
    }
}

/// One parse: the target, what it is for, and the probe.
struct Parser<'a> {
    target: &'a str,
    role: Role,
    probe: &'a dyn Fn(&Path) -> PathKind,
}

impl Parser<'_> {
    fn kind(&self, path: &str) -> PathKind {
        (self.probe)(Path::new(path))
    }

    fn exists(&self, path: &str) -> bool {
        self.kind(path) != PathKind::Missing
    }

    fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidTarget { target: self.target.to_owned(), reason: reason.into() }
    }

    fn parse(&self) -> Result<ImageRef> {
        let s = self.target;
        if s.is_empty() {
            return Err(self.invalid("empty"));
        }
        if s == "-" {
            return Ok(stdin(None));
        }
        if self.exists(s) {
            return Ok(self.bare_at(s, None));
        }
        for (prefix, transport) in TRANSPORTS {
            if let Some(rest) = s.strip_prefix(prefix) {
                return self.explicit(transport, rest);
            }
        }
        if let Some((name, _)) = s.split_once(':')
            && FOREIGN.contains(&name)
            && !self.exists(name)
        {
            return Err(Error::UnsupportedTransport {
                target: s.to_owned(),
                transport: name.into(),
            });
        }
        self.bare()
    }

    /// A bare path that exists (or `-`), with its reference.
    fn bare_at(&self, path: &str, reference: Option<Reference>) -> ImageRef {
        if path == "-" {
            return stdin(reference);
        }
        match self.kind(path) {
            PathKind::File => {
                ImageRef::Archive { transport: Transport::Path, file: Some(path.into()), reference }
            }
            PathKind::Dir | PathKind::Missing => {
                ImageRef::Layout { transport: Transport::Path, dir: path.into(), reference }
            }
        }
    }

    /// `DIR`, `DIR:REF`, `DIR@DIGEST` when `DIR:REF` as a whole does not exist.
    fn bare(&self) -> Result<ImageRef> {
        let s = self.target;
        if s.ends_with('/') {
            return self.missing_or_new(s, None);
        }
        for sep in ['@', ':'] {
            for (i, _) in s.rmatch_indices(sep) {
                let left = &s[..i];
                if !left.is_empty() && (left == "-" || self.exists(left)) {
                    let reference = self.reference(sep, &s[i + 1..])?;
                    return Ok(self.bare_at(left, Some(reference)));
                }
            }
        }
        // Nothing exists under any split.
        if self.role == Role::Source {
            let i = s.rfind('@').or_else(|| s.rfind(':')).filter(|&i| i > 0);
            let path = i.map_or(s, |i| &s[..i]);
            return Err(not_found(path, Transport::Path));
        }
        if let Some(i) = s.rfind('@').filter(|&i| i > 0)
            && let Ok(digest) = s[i + 1..].parse::<Digest>()
        {
            return self.new_dir(&s[..i], Some(Reference::Digest(digest)));
        }
        if let Some(i) = s.rfind(':').filter(|&i| i > 0) {
            let (left, tag) = (&s[..i], &s[i + 1..]);
            if !left.ends_with('/') && !tag.contains('/') && validate_tag(tag).is_ok() {
                return self.new_dir(left, Some(Reference::Tag(tag.to_owned())));
            }
        }
        Ok(ImageRef::Layout { transport: Transport::Path, dir: s.into(), reference: None })
    }

    /// A destination directory to create, split off a reference: its parent must exist,
    /// or the split is a guess.
    fn new_dir(&self, dir: &str, reference: Option<Reference>) -> Result<ImageRef> {
        let parent = match Path::new(dir).parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if (self.probe)(parent) != PathKind::Dir {
            return Err(Error::TargetParentMissing {
                target: self.target.to_owned(),
                dir: dir.to_owned(),
                parent: parent.display().to_string(),
            });
        }
        Ok(ImageRef::Layout { transport: Transport::Path, dir: dir.into(), reference })
    }

    /// A path with nothing there: an error for a source, a directory to create for a
    /// destination.
    fn missing_or_new(&self, path: &str, reference: Option<Reference>) -> Result<ImageRef> {
        match self.role {
            Role::Source => Err(not_found(path, Transport::Path)),
            Role::Destination => {
                Ok(ImageRef::Layout { transport: Transport::Path, dir: path.into(), reference })
            }
        }
    }

    /// `oci:`, `oci-archive:`, `docker-archive:` or `docker://`, with `rest` after it.
    fn explicit(&self, transport: Transport, rest: &str) -> Result<ImageRef> {
        if transport == Transport::Docker {
            return RegistryRef::parse(rest)
                .map(ImageRef::Registry)
                .map_err(|reason| Error::InvalidTarget { target: self.target.to_owned(), reason });
        }
        let what = if transport == Transport::Oci { "a directory" } else { "a file" };
        if rest.is_empty() || rest.starts_with([':', '@']) {
            return Err(self.invalid(format!("`{}` needs {what}", transport.prefix())));
        }
        let seps: Vec<(usize, char)> = rest
            .char_indices()
            .filter(|&(_, c)| c == ':' || (c == '@' && transport != Transport::DockerArchive))
            .collect();
        let split = if self.exists(rest) {
            None
        } else if let Some(&found) = seps.iter().find(|&&(i, _)| self.exists(&rest[..i])) {
            Some(found)
        } else if self.role == Role::Source {
            let path = seps.first().map_or(rest, |&(i, _)| &rest[..i]);
            return Err(not_found(path, transport));
        } else {
            seps.first().copied()
        };
        let (path, reference) = match split {
            None => (rest, None),
            Some((i, sep)) => {
                let (path, right) = (&rest[..i], &rest[i + 1..]);
                let reference = if transport == Transport::DockerArchive {
                    self.docker_archive_name(right)?
                } else {
                    self.reference(sep, right)?
                };
                (path, Some(reference))
            }
        };
        if path.is_empty() {
            return Err(self.invalid(format!("`{}` needs {what}", transport.prefix())));
        }
        Ok(match transport {
            Transport::Oci => ImageRef::Layout { transport, dir: path.into(), reference },
            _ => ImageRef::Archive { transport, file: Some(path.into()), reference },
        })
    }

    /// The part after `@` (a digest) or `:` (a tag, a full name or `@DIGEST`).
    fn reference(&self, sep: char, right: &str) -> Result<Reference> {
        let target = self.target.to_owned();
        if right.is_empty() {
            let what = if sep == '@' { "digest" } else { "tag" };
            return Err(self.invalid(format!("nothing after `{sep}`: expected a {what}")));
        }
        if sep == '@' {
            let digest = right.parse::<Digest>().map_err(|e| Error::InvalidTargetPart {
                target,
                what: "digest",
                source: Box::new(e.into()),
            })?;
            return Ok(Reference::Digest(digest));
        }
        Reference::parse(right).map_err(|e| Error::InvalidTargetPart {
            target,
            what: "reference",
            source: Box::new(e),
        })
    }

    /// A `docker-archive:` NAME: a Docker reference with a tag (or none), or `@DIGEST`.
    fn docker_archive_name(&self, right: &str) -> Result<Reference> {
        if right.is_empty() {
            return Err(self.invalid("nothing after `:`: expected an image name"));
        }
        if let Some(index) = right.strip_prefix('@') {
            if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) {
                return Err(self.invalid(format!(
                    "source indexes (`:@{index}`) are not supported: name the image (`:NAME:TAG`)"
                )));
            }
            return self.reference('@', index);
        }
        let parsed = RegistryRef::parse(right).map_err(|reason| self.invalid(reason))?;
        if parsed.digest.is_some() {
            return Err(self.invalid("a `docker-archive:` name takes a tag, not a digest"));
        }
        Ok(Reference::Tag(right.to_owned()))
    }
}

fn stdin(reference: Option<Reference>) -> ImageRef {
    ImageRef::Archive { transport: Transport::Stdin, file: None, reference }
}

/// The file extensions of archives, to call a missing path an archive in messages.
const ARCHIVE_EXTENSIONS: [&str; 11] = [
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.zst",
    ".tzst",
    ".tar.zstd",
    ".tar.xz",
    ".txz",
    ".tar.bz2",
    ".tbz2",
    ".tbz",
];

/// Whether a name looks like an archive's.
pub fn looks_like_archive(name: &str) -> bool {
    ARCHIVE_EXTENSIONS.iter().any(|ext| name.ends_with(ext))
}

/// The error for a source path with nothing there: an archive or a directory by its
/// transport, else by its name.
pub fn not_found(path: &str, transport: Transport) -> Error {
    let archive = match transport {
        Transport::OciArchive | Transport::DockerArchive => true,
        Transport::Oci => false,
        _ => looks_like_archive(path),
    };
    Error::TargetNotFound {
        path: path.to_owned(),
        what: if archive { "archive" } else { "directory" },
    }
}

/// A `docker://` name, normalised as Docker does: `busybox` is
/// `docker.io/library/busybox:latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    domain: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Docker Hub's canonical domain.
const DOCKER_HUB: &str = "docker.io";

impl RegistryRef {
    /// Parse `[HOST[:PORT]/]REPO[:TAG][@DIGEST]`; the error is the reason, for the caller to
    /// wrap with the whole target.
    pub fn parse(s: &str) -> std::result::Result<RegistryRef, String> {
        if s.is_empty() {
            return Err("no image name".into());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                (rest, Some(d.parse::<Digest>().map_err(|e| format!("bad digest: {e}"))?))
            }
            None => (s, None),
        };
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_docker_tag(tag)?;
        }
        if name.is_empty() {
            return Err("no image name".into());
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                check_domain(first)?;
                (first.to_owned(), path.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        let domain = if domain == "index.docker.io" { DOCKER_HUB.to_owned() } else { domain };
        for component in path.split('/') {
            check_component(component)?;
        }
        let repository = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if domain.len() + 1 + repository.len() > 255 {
            return Err("the name is longer than 255 characters".into());
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(RegistryRef { domain, repository, tag, digest })
    }

    /// The registry host, with its port: `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path: `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag (`latest` when neither a tag nor a digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, when given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `HOST/REPO`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Whether two image names are the same image once normalised as Docker does
/// (`busybox:latest` and `docker.io/library/busybox:latest`).
pub fn same_image_name(a: &str, b: &str) -> bool {
    a == b || matches!((RegistryRef::parse(a), RegistryRef::parse(b)), (Ok(x), Ok(y)) if x == y)
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_docker_tag(tag: &str) -> std::result::Result<(), String> {
    let mut chars = tag.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && tag.len() <= 128;
    if ok {
        Ok(())
    } else if tag.is_empty() {
        Err("empty tag after `:`".into())
    } else {
        Err(format!("invalid tag `{tag}`: [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"))
    }
}

/// `HOST[:PORT]`: DNS labels (letters, digits, `-` inside) separated by `.`, or `[IPv6]`.
fn check_domain(domain: &str) -> std::result::Result<(), String> {
    let bad = || format!("invalid registry host `{domain}`");
    let (host, port) = if let Some(v6) = domain.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(bad());
        }
        match after {
            "" => ("", None),
            p => ("", Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("invalid port in registry host `{domain}`"));
    }
    if !domain.starts_with('[') {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    Ok(())
}

/// A path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_component(c: &str) -> std::result::Result<(), String> {
    if c.chars().any(|ch| ch.is_ascii_uppercase()) {
        return Err(format!("repository name `{c}` must be lowercase"));
    }
    let bad = || format!("invalid repository name component `{c}`");
    if c.is_empty() {
        return Err("empty repository name component".into());
    }
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__` or a run of `-`, between alphanumerics.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => i += if bytes.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return Err(bad()),
        }
        if i == start || !bytes.get(i).copied().is_some_and(alnum) {
            return Err(bad());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A filesystem of a few paths; `.` is always a directory.
    fn fs(entries: &[(&str, PathKind)]) -> impl Fn(&Path) -> PathKind {
        let map: HashMap<PathBuf, PathKind> = entries
            .iter()
            .map(|(p, k)| (PathBuf::from(p), *k))
            .chain([(".".into(), PathKind::Dir)])
            .collect();
        move |p: &Path| map.get(p).copied().unwrap_or(PathKind::Missing)
    }

    const D: PathKind = PathKind::Dir;
    const F: PathKind = PathKind::File;
    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn src(s: &str, files: &[(&str, PathKind)]) -> Result<ImageRef> {
        ImageRef::parse(s, Role::Source, fs(files))
    }

    fn dst(s: &str, files: &[(&str, PathKind)]) -> Result<ImageRef> {
        ImageRef::parse(s, Role::Destination, fs(files))
    }

    fn layout(dir: &str, reference: Option<&str>) -> ImageRef {
        ImageRef::Layout {
            transport: Transport::Path,
            dir: dir.into(),
            reference: reference.map(|r| Reference::parse(r).unwrap()),
        }
    }

    fn archive(t: Transport, file: Option<&str>, reference: Option<Reference>) -> ImageRef {
        ImageRef::Archive { transport: t, file: file.map(PathBuf::from), reference }
    }

    fn tag(t: &str) -> Option<Reference> {
        Some(Reference::Tag(t.into()))
    }

    fn err(r: Result<ImageRef>) -> String {
        let e = r.unwrap_err();
        let mut s = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(c) = source {
            s.push_str(&format!(": {c}"));
            source = c.source();
        }
        s
    }

    #[test]
    fn bare_directories_and_references() {
        assert_eq!(src("app", &[("app", D)]).unwrap(), layout("app", None));
        assert_eq!(src("app:v1", &[("app", D)]).unwrap(), layout("app", Some("v1")));
        let d = format!("app@{DIGEST}");
        assert_eq!(src(&d, &[("app", D)]).unwrap(), layout("app", Some(DIGEST)));
        // `DIR:sha256:...` is a digest too.
        let d = format!("app:{DIGEST}");
        assert_eq!(src(&d, &[("app", D)]).unwrap(), layout("app", Some(DIGEST)));
        // Full names as containerd writes them.
        let r = src("app:docker.io/library/busybox:latest", &[("app", D)]).unwrap();
        assert_eq!(r.reference(), tag("docker.io/library/busybox:latest").as_ref());
    }

    #[test]
    fn colons_in_directory_names() {
        let fs = &[("a:b", D), ("a", D)];
        assert_eq!(src("a:b", fs).unwrap(), layout("a:b", None));
        assert_eq!(src("a:b:v1", fs).unwrap(), layout("a:b", Some("v1")));
        assert_eq!(src("./a:b:v1", &[("./a:b", D)]).unwrap(), layout("./a:b", Some("v1")));
        assert_eq!(src("x/y:z:v1", &[("x/y:z", D)]).unwrap(), layout("x/y:z", Some("v1")));
        // `a` exists but `a:b` does not: `b:v1` is not a tag.
        assert!(err(src("a:b:v1", &[("a", D)])).contains("invalid reference in `a:b:v1`"));
    }

    #[test]
    fn archives_and_stdin() {
        let fs = &[("app.tar", F)];
        assert_eq!(src("app.tar", fs).unwrap(), archive(Transport::Path, Some("app.tar"), None));
        assert_eq!(
            src("app.tar:v1", fs).unwrap(),
            archive(Transport::Path, Some("app.tar"), tag("v1"))
        );
        assert_eq!(src("-", &[]).unwrap(), archive(Transport::Stdin, None, None));
        assert_eq!(src("-:v1", &[]).unwrap(), archive(Transport::Stdin, None, tag("v1")));
        let r = src(&format!("-@{DIGEST}"), &[]).unwrap();
        assert!(r.is_stdin() && matches!(r.reference(), Some(Reference::Digest(_))));
        // `./-` is a directory called `-`.
        assert_eq!(src("./-", &[("./-", D)]).unwrap(), layout("./-", None));
        assert_eq!(src("oci:-", &[("-", D)]).unwrap().path(), Some(Path::new("-")));
    }

    #[test]
    fn missing_sources_name_the_missing_part() {
        assert_eq!(err(src("nope", &[])), "no such directory `nope`");
        assert_eq!(err(src("nope:v1", &[])), "no such directory `nope`");
        assert_eq!(err(src(&format!("nope@{DIGEST}"), &[])), "no such directory `nope`");
        assert_eq!(err(src("nope.tar:v1", &[])), "no such archive `nope.tar`");
        assert_eq!(err(src("nope.tgz", &[])), "no such archive `nope.tgz`");
        assert_eq!(err(src("oci-archive:x:v1", &[])), "no such archive `x`");
        assert_eq!(err(src("oci:x.tar:v1", &[])), "no such directory `x.tar`");
        assert_eq!(err(src("nope/", &[])), "no such directory `nope/`");
    }

    #[test]
    fn bad_references() {
        let fs = &[("app", D)];
        let e = err(src("app@sha256:1234", fs));
        assert!(e.starts_with("invalid digest in `app@sha256:1234`: "), "{e}");
        assert!(e.ends_with(&err_digest("sha256:1234")), "{e}");
        assert!(err(src("app:", fs)).contains("nothing after `:`"));
        assert!(err(src("app@", fs)).contains("nothing after `@`"));
        assert!(err(src("app:.hidden", fs)).contains("invalid reference in `app:.hidden`"));
        assert!(err(src("app:a b", fs)).contains("not allowed in a tag"));
        assert!(
            err(src(&format!("app:v1:{}", "x".repeat(129)), &[("app:v1", D)]))
                .contains("at most 128")
        );
        assert!(err(src("app@md5:abcd", fs)).contains("invalid digest in"));
        assert!(err(src("", fs)).contains("invalid target ``: empty"));
    }

    fn err_digest(d: &str) -> String {
        d.parse::<Digest>().unwrap_err().to_string()
    }

    #[test]
    fn destinations_may_not_exist() {
        // The issue's example: `o1` is created and tagged `app`.
        assert_eq!(dst("o1:app", &[]).unwrap(), layout("o1", Some("app")));
        assert_eq!(dst("o1", &[]).unwrap(), layout("o1", None));
        assert_eq!(dst("sub/o1:app", &[("sub", D)]).unwrap(), layout("sub/o1", Some("app")));
        assert_eq!(dst("/abs:app", &[("/", D)]).unwrap(), layout("/abs", Some("app")));
        let d = format!("o1@{DIGEST}");
        assert_eq!(dst(&d, &[]).unwrap(), layout("o1", Some(DIGEST)));
        // An existing prefix wins, as for sources.
        assert_eq!(dst("a:b:v1", &[("a:b", D)]).unwrap(), layout("a:b", Some("v1")));
        // Not a plain tag after the last `:`: one directory, colons and all.
        assert_eq!(dst("a:b/c", &[]).unwrap(), layout("a:b/c", None));
        assert_eq!(dst("a:.b", &[]).unwrap(), layout("a:.b", None));
        // A trailing `/` never splits.
        assert_eq!(dst("a:b/", &[]).unwrap(), layout("a:b/", None));
        // A parent that does not exist: refused, not guessed.
        let e = err(dst("new/sub:v1", &[]));
        assert!(e.contains("no such directory `new`") && e.contains("`new/sub:v1`"), "{e}");
        // Without a `:`, parents are created by the command.
        assert_eq!(dst("new/sub", &[]).unwrap(), layout("new/sub", None));
        // An existing file is an archive; the command refuses it.
        assert_eq!(
            dst("x.tar", &[("x.tar", F)]).unwrap(),
            archive(Transport::Path, Some("x.tar"), None)
        );
        assert_eq!(dst("-", &[]).unwrap(), archive(Transport::Stdin, None, None));
    }

    #[test]
    fn explicit_layouts() {
        let oci = |dir: &str, r: Option<Reference>| ImageRef::Layout {
            transport: Transport::Oci,
            dir: dir.into(),
            reference: r,
        };
        let fs = &[("app", D), ("oci", D)];
        assert_eq!(src("oci:app", fs).unwrap(), oci("app", None));
        assert_eq!(src("oci:app:v1", fs).unwrap(), oci("app", tag("v1")));
        let digest = Reference::parse(DIGEST).ok();
        assert_eq!(src(&format!("oci:app@{DIGEST}"), fs).unwrap(), oci("app", digest.clone()));
        assert_eq!(src(&format!("oci:app:@{DIGEST}"), fs).unwrap(), oci("app", digest));
        // Transport prefixes are reserved: `./oci:v1` is the directory `oci`.
        assert_eq!(src("./oci:v1", &[("./oci", D)]).unwrap(), layout("./oci", Some("v1")));
        // A path with a `:` that exists as a whole, or as the first existing prefix.
        assert_eq!(src("oci:a:b:v1", &[("a:b", D)]).unwrap(), oci("a:b", tag("v1")));
        // Destinations split at the first `:` (skopeo), with no parent rule.
        assert_eq!(dst("oci:new:v1", &[]).unwrap(), oci("new", tag("v1")));
        assert_eq!(dst("oci:x/new:v1", &[]).unwrap(), oci("x/new", tag("v1")));
        assert_eq!(dst("oci:new", &[]).unwrap(), oci("new", None));
        assert!(err(src("oci:", fs)).contains("`oci:` needs a directory"));
        assert!(err(src("oci::v1", fs)).contains("`oci:` needs a directory"));
        // An existing file under `oci:` stays a layout: opening it says it is no directory.
        assert_eq!(src("oci:f", &[("f", F)]).unwrap(), oci("f", None));
    }

    #[test]
    fn explicit_archives() {
        let fs = &[("app.tar", F), ("a:b.tar", F)];
        assert_eq!(
            src("oci-archive:app.tar", fs).unwrap(),
            archive(Transport::OciArchive, Some("app.tar"), None)
        );
        assert_eq!(
            src("oci-archive:app.tar:v1", fs).unwrap(),
            archive(Transport::OciArchive, Some("app.tar"), tag("v1"))
        );
        // docker-archive: NAME is a Docker name, with `:` and `/`, split at the first `:`.
        for name in ["busybox", "busybox:latest", "example.com/a:latest", "localhost:5000/a/b:c"] {
            assert_eq!(
                src(&format!("docker-archive:app.tar:{name}"), fs).unwrap(),
                archive(Transport::DockerArchive, Some("app.tar"), tag(name)),
                "{name}"
            );
        }
        assert_eq!(
            src("docker-archive:a:b.tar:x:v1", fs).unwrap(),
            archive(Transport::DockerArchive, Some("a:b.tar"), tag("x:v1"))
        );
        // A destination archive that does not exist yet splits at the first `:`.
        assert_eq!(
            dst("docker-archive:new.tar:example.com/a:v1", &[]).unwrap(),
            archive(Transport::DockerArchive, Some("new.tar"), tag("example.com/a:v1"))
        );
        let d = format!("docker-archive:app.tar:@{DIGEST}");
        assert!(matches!(src(&d, fs).unwrap().reference(), Some(Reference::Digest(_))));
        assert!(err(src("docker-archive:app.tar:@0", fs)).contains("source indexes"));
        assert!(err(src("docker-archive:app.tar:Busybox", fs)).contains("must be lowercase"));
        let d = format!("docker-archive:app.tar:a@{DIGEST}");
        assert!(err(src(&d, fs)).contains("not a digest"));
        assert!(err(src("docker-archive:app.tar:", fs)).contains("expected an image name"));
        assert!(err(src("oci-archive:", fs)).contains("`oci-archive:` needs a file"));
    }

    #[test]
    fn registries() {
        let reg = |s: &str| match src(s, &[]).unwrap() {
            ImageRef::Registry(r) => r.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(reg("docker://busybox"), "docker.io/library/busybox:latest");
        assert_eq!(reg("docker://busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(reg("docker://library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(reg("docker://index.docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(reg("docker://user/app"), "docker.io/user/app:latest");
        assert_eq!(reg("docker://ghcr.io/o/r/app:v1"), "ghcr.io/o/r/app:v1");
        assert_eq!(reg("docker://localhost/app"), "localhost/app:latest");
        assert_eq!(reg("docker://localhost:5000/a:b"), "localhost:5000/a:b");
        assert_eq!(reg("docker://example.com:443/a/b"), "example.com:443/a/b:latest");
        assert_eq!(reg("docker://[::1]:5000/a"), "[::1]:5000/a:latest");
        assert_eq!(reg(&format!("docker://a@{DIGEST}")), format!("docker.io/library/a@{DIGEST}"));
        assert_eq!(
            reg(&format!("docker://a:v1@{DIGEST}")),
            format!("docker.io/library/a:v1@{DIGEST}")
        );
        assert_eq!(reg("docker://a__b-c---d/e.f_g"), "docker.io/a__b-c---d/e.f_g:latest");
        let r = match src("docker://localhost:5000/a/b:c", &[]).unwrap() {
            ImageRef::Registry(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!((r.domain(), r.repository(), r.tag()), ("localhost:5000", "a/b", Some("c")));
        assert_eq!(r.name(), "localhost:5000/a/b");
        for (bad, why) in [
            ("docker://", "no image name"),
            ("docker://Busybox", "must be lowercase"),
            ("docker://busybox/", "empty repository name component"),
            ("docker://a//b", "empty repository name component"),
            ("docker://ex.com/App", "must be lowercase"),
            ("docker://a:", "empty tag"),
            ("docker://a:-x", "invalid tag"),
            ("docker://a@sha256:12", "bad digest"),
            ("docker://a-/b", "invalid repository name component `a-`"),
            ("docker://a___b", "invalid repository name component"),
            ("docker://a..b", "invalid repository name component"),
            ("docker://localhost:x/a", "invalid port"),
            ("docker://-ex.com/a", "invalid registry host"),
            ("docker://:5000/a", "invalid registry host"),
            ("docker://ex.com/:v1", "empty repository name component"),
        ] {
            let e = err(src(bad, &[]));
            assert!(
                e.starts_with(&format!("invalid target `{bad}`")) && e.contains(why),
                "{bad}: {e}"
            );
        }
        assert!(err(src(&format!("docker://a/{}", "b".repeat(260)), &[])).contains("255"));
    }

    #[test]
    fn explicit_transport_prefixes() {
        assert_eq!(explicit_transport("oci-archive:a.tar"), Some(Transport::OciArchive));
        assert_eq!(explicit_transport("oci:a"), Some(Transport::Oci));
        assert_eq!(explicit_transport("docker://a"), Some(Transport::Docker));
        assert_eq!(explicit_transport("docker-archive:a"), Some(Transport::DockerArchive));
        assert_eq!(explicit_transport("out:v1.tar"), None);
        assert_eq!(explicit_transport("docker:a"), None);
    }

    #[test]
    fn foreign_transports() {
        let e = err(src("docker-daemon:busybox:latest", &[]));
        assert!(e.contains("transport `docker-daemon:`"), "{e}");
        assert!(err(src("docker:busybox", &[])).contains("transport `docker:`"));
        // A directory called `dir` wins over the transport of that name.
        assert_eq!(src("dir:v1", &[("dir", D)]).unwrap(), layout("dir", Some("v1")));
        // A whole path that exists wins over everything.
        assert_eq!(src("oci:x", &[("oci:x", D)]).unwrap(), layout("oci:x", None));
    }

    #[test]
    fn display_round_trips() {
        let fs = &[("app", D), ("a.tar", F)];
        for s in [
            "app",
            "app:v1",
            "oci:app:v1",
            "oci-archive:a.tar:v1",
            "docker-archive:a.tar:example.com/x:v1",
            "-:v1",
            "docker://docker.io/library/busybox:latest",
        ] {
            let r = src(s, fs).unwrap();
            assert_eq!(r.to_string(), s);
            assert_eq!(src(&r.to_string(), fs).unwrap(), r);
        }
        assert_eq!(src(&format!("app@{DIGEST}"), fs).unwrap().to_string(), format!("app@{DIGEST}"));
    }

    #[test]
    fn image_names_compare_normalised() {
        assert!(same_image_name("busybox:latest", "docker.io/library/busybox:latest"));
        assert!(same_image_name("busybox", "docker.io/library/busybox:latest"));
        assert!(!same_image_name("busybox:1", "busybox:2"));
        assert!(!same_image_name("v1", "latest"));
    }
}
