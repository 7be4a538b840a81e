//! A read-only look at any tar (for `ocil fsck FILE`): what kind of archive it is, its
//! entries, unsafe names, duplicates, the sha256 of the uncompressed stream (a layer's
//! diff_id), and for legacy docker-save archives whether each `<id>/layer.tar` is a tar.
//! Nothing is written anywhere.

use std::collections::BTreeSet;
use std::io::{self, Read};

use ocil_layout::{Algorithm, Digest};

use crate::source::normalize_entry;
use crate::stream::{
    Counting, check_end, decompress, entry_end, first_error, input_error, read_error,
};
use crate::{Error, Result};
use ocil_codec::tar_fault::{Origin, TarInput};

/// What an archive holds at its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `oci-layout` (and `index.json`, `blobs/`): an OCI archive.
    Oci,
    /// `manifest.json`: a docker-save archive.
    Docker,
    /// Both: Docker 25+ `docker save`.
    DockerOci,
    /// `repositories` and `<id>/json`, no `manifest.json`: pre-1.10 docker save.
    LegacyV1,
    /// None of these: a plain tar (a layer).
    Plain,
}

impl ArchiveKind {
    /// Short name: `oci-archive`, `docker-archive`, `docker-archive+oci-layout`,
    /// `docker-archive-v1` (legacy), `plain-tar`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveKind::Oci => "oci-archive",
            ArchiveKind::Docker => "docker-archive",
            ArchiveKind::DockerOci => "docker-archive+oci-layout",
            ArchiveKind::LegacyV1 => "docker-archive-v1",
            ArchiveKind::Plain => "plain-tar",
        }
    }

    /// Whether `import` reads it.
    pub fn is_image(self) -> bool {
        matches!(self, ArchiveKind::Oci | ArchiveKind::Docker | ArchiveKind::DockerOci)
    }
}

/// Counts of entries by type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryKinds {
    /// Regular files.
    pub files: usize,
    /// Directories.
    pub dirs: usize,
    /// Symbolic links.
    pub symlinks: usize,
    /// Hard links.
    pub hardlinks: usize,
    /// Devices, fifos, sparse files, PAX global headers.
    pub other: usize,
}

/// An entry whose name is unsafe to extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeName {
    /// The name as written.
    pub entry: String,
    /// Why.
    pub reason: &'static str,
}

/// A `<id>/layer.tar` of a legacy archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Layer {
    /// The entry.
    pub entry: String,
    /// Its number of entries, or why it is not a readable tar.
    pub result: std::result::Result<usize, String>,
}

/// What [`scan`] found.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The compression of the stream.
    pub compression: ocil_codec::Format,
    /// What kind of archive.
    pub kind: ArchiveKind,
    /// Number of entries.
    pub entries: usize,
    /// By type.
    pub kinds: EntryKinds,
    /// Absolute names, `..` components, names that are not UTF-8.
    pub unsafe_entries: Vec<UnsafeName>,
    /// Non-directory paths that appear more than once.
    pub duplicates: Vec<String>,
    /// sha256 of the uncompressed stream: a layer's diff_id.
    pub diff_id: Digest,
    /// `<id>/layer.tar` entries (regular files) and whether each is a tar.
    pub v1_layers: Vec<V1Layer>,
}

/// Read a whole (possibly compressed) tar once and describe it. Fails only when the stream
/// is not a readable tar (corrupt, truncated, empty).
pub fn scan(reader: impl Read) -> Result<Scan> {
    let (compression, stream) = decompress(reader)?;
    let (counting, consumed) = Counting::new(stream, Some(Algorithm::Sha256.hasher()));
    let mut archive = tar::Archive::new(TarInput::new(counting));
    let mut kinds = EntryKinds::default();
    let mut unsafe_entries = Vec::new();
    let mut seen = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    let mut duplicates = Vec::new();
    let mut v1_layers = Vec::new();
    let mut last: Option<String> = None;
    let mut last_end = 0;
    let mut entries = 0;
    for entry in archive.entries().map_err(|e| read_error(e, &last))? {
        let mut entry =
            entry.map_err(|e| if entries == 0 { first_error(e) } else { read_error(e, &last) })?;
        entries += 1;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        last_end = entry_end(entry.raw_file_position(), entry.size());
        let ty = entry.header().entry_type();
        if ty.is_file() || ty == tar::EntryType::Continuous {
            kinds.files += 1;
        } else if ty.is_dir() {
            kinds.dirs += 1;
        } else if ty.is_symlink() {
            kinds.symlinks += 1;
        } else if ty.is_hard_link() {
            kinds.hardlinks += 1;
        } else {
            kinds.other += 1;
        }
        match normalize_entry(&raw) {
            Err(reason) => unsafe_entries.push(UnsafeName { entry: shown.clone(), reason }),
            Ok(None) => {}
            Ok(Some(path)) => {
                if ty.is_dir() {
                    dirs.insert(path.clone());
                } else if !seen.insert(path.clone()) || dirs.contains(&path) {
                    duplicates.push(path.clone());
                }
                let mut parts = path.split('/');
                if let (Some(_), Some("layer.tar"), None) =
                    (parts.next(), parts.next(), parts.next())
                    && ty.is_file()
                {
                    v1_layers.push(V1Layer { entry: path, result: count_entries(&mut entry) });
                }
            }
        }
        last = Some(shown);
    }
    let inner = archive.into_inner().into_inner();
    check_end(consumed.get(), last_end, &last)?;
    let diff_id =
        inner.finish().map_err(|e| input_error(e, &last))?.expect("the scan hashes the stream");
    let top: BTreeSet<&str> =
        seen.iter().map(String::as_str).filter(|p| !p.contains('/')).collect();
    let has_v1_json = seen.iter().any(|p| p.split('/').nth(1) == Some("json"));
    let kind = if top.contains("oci-layout") || top.contains("index.json") {
        if top.contains("manifest.json") { ArchiveKind::DockerOci } else { ArchiveKind::Oci }
    } else if top.contains("manifest.json") {
        ArchiveKind::Docker
    } else if top.contains("repositories") && has_v1_json {
        ArchiveKind::LegacyV1
    } else {
        ArchiveKind::Plain
    };
    Ok(Scan { compression, kind, entries, kinds, unsafe_entries, duplicates, diff_id, v1_layers })
}

/// Count the entries of a tar nested in an entry; an empty file is an empty tar. Why it is
/// not a readable tar is said in our words (the parser's own text can quote the tar).
fn count_entries(r: &mut impl Read) -> std::result::Result<usize, String> {
    let shown = |e: io::Error| match Origin::of(e) {
        Origin::Parser(fault) => fault.to_string(),
        Origin::Input(e) => e.to_string(),
    };
    let mut inner = tar::Archive::new(TarInput::new(r));
    let mut n = 0;
    let entries = inner.entries().map_err(shown)?;
    for e in entries {
        let mut e = e.map_err(shown)?;
        io::copy(&mut e, &mut io::sink()).map_err(shown)?;
        n += 1;
    }
    Ok(n)
}

impl Scan {
    /// The unsafe names and duplicates as [`Error`]s, for callers that treat them as fatal.
    pub fn entry_errors(&self) -> Vec<Error> {
        let mut out: Vec<Error> = self
            .unsafe_entries
            .iter()
            .map(|u| Error::UnsafeEntry { entry: u.entry.clone(), reason: u.reason })
            .collect();
        out.extend(self.duplicates.iter().map(|d| Error::DuplicateEntry { entry: d.clone() }));
        out
    }
}
