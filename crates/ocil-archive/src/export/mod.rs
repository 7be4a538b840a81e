//! Export: images of one or more layouts into one archive, written as a stream.
//!
//! The archive is an image layout in a tar (`--format oci`, what skopeo's `oci-archive:` and
//! [`import`](crate::import) read), optionally with Docker's `manifest.json` beside it
//! (`--format docker`, as Docker 25+ `docker save` writes: `docker load` and OCI readers both
//! accept it). Its `index.json` holds the exported entries as their sources list them
//! (tags, `io.containerd.image.name`, other annotations); its blob store every blob their
//! graphs reach, and the referrers (signatures, SBOMs: documents whose `subject` is an
//! exported manifest) found in the sources' stores, each blob once.
//!
//! Entry order is fixed, so the same input gives the same bytes: `oci-layout`, `index.json`,
//! `manifest.json`, the `blobs/` directories, then the blobs: manifests, indexes and configs
//! first, then layers, each group by digest. The small documents come first so that a reader
//! of a stream (`ocil export ... | ssh host ocil import -`) learns what the archive holds
//! from its first kilobytes, before the layers; [`import`](crate::import) stages every file
//! as it arrives whatever the order, so the order costs it nothing. Headers are ustar with
//! mtime [`ExportOptions::mtime`], uid/gid 0, modes 0644/0755; gzip and zstd use fixed
//! settings.
//!
//! Every blob is streamed from the store (never read whole) and hashed as it is copied; a
//! blob that does not match its digest aborts the export with an error naming it, and the
//! stream then ends without an end-of-archive marker (a reader sees it truncated).
//!
//! The sources' locks are held from the first read to the last byte: a concurrent `ocil gc`
//! (or any ocil writer) waits, so no blob can vanish under the export. Several sources are
//! locked in a fixed order (device and inode of their directories), the same directory once.
//!
//! A delta ([`ExportOptions::since`]: the receipt of what the other side holds) leaves out
//! the blobs the receipt lists and says so in `ocil-bundle.json` (after `index.json`), with
//! the base's identity; `index.json` still lists every exported entry. Volumes
//! ([`plan_volumes`]) split one export into files of a bounded size (`volumes.rs`).

use std::io::Write;

use ocil_layout::progress::{Progress, Silent};
use ocil_layout::{
    Compression, Descriptor, INDEX_FILE, Index, JSON_LIMIT, LAYOUT_FILE, LAYOUT_VERSION, Layout,
    LockGuard, MediaType, Reference,
};

use self::copy::{BlobCopyError, with_copier};
use self::docker::DockerEntry;
use self::plan::{Plan, PlannedBlob};
use self::tar::{Sink, TarWriter, finish_sink};
use crate::bundle::{Base, Bundle};
use crate::receipt::{BlobId, Receipt};
use crate::{Error, Result};

mod copy;
mod docker;
mod plan;
mod tar;
mod volumes;

pub use volumes::{VolumeOptions, VolumeWritten, Volumes, plan_volumes};

/// One source of images: a layout and what to take from it.
#[derive(Debug)]
pub struct ExportSource<'a> {
    /// The layout.
    pub layout: &'a Layout,
    /// How to name it in errors (the directory as the user gave it).
    pub name: String,
    /// The image to take (a tag, full name or digest); `None` for every `index.json` entry.
    pub reference: Option<Reference>,
}

/// The archive's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArchiveFormat {
    /// An image layout in a tar.
    #[default]
    Oci,
    /// An image layout plus `manifest.json` (Docker 25+ `docker save`).
    Docker,
}

impl ArchiveFormat {
    /// `oci` or `docker`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveFormat::Oci => "oci",
            ArchiveFormat::Docker => "docker",
        }
    }
}

/// How to export.
#[derive(Clone)]
pub struct ExportOptions<'a> {
    /// The archive's format.
    pub format: ArchiveFormat,
    /// Compression of the whole archive.
    pub compression: Compression,
    /// Modification time of every entry (seconds since the epoch; 0, or `SOURCE_DATE_EPOCH`).
    pub mtime: u64,
    /// Docker format: the repository of tags that have no full name (`NAME:tag`).
    pub repo: Option<String>,
    /// Docker format: the platform (`os/arch[/variant]`) to take from index entries.
    pub platform: Option<String>,
    /// Include referrers found in the sources' stores.
    pub referrers: bool,
    /// Write a delta: leave out the blobs this receipt lists (same digest and size), and
    /// record them and the receipt's identity in `ocil-bundle.json`. OCI format only.
    pub since: Option<&'a Receipt>,
    /// Where progress goes: one `export` phase over the blobs' bytes.
    pub progress: &'a dyn Progress,
}

impl std::fmt::Debug for ExportOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportOptions")
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("mtime", &self.mtime)
            .field("repo", &self.repo)
            .field("platform", &self.platform)
            .field("referrers", &self.referrers)
            .field("since", &self.since.map(Receipt::identity))
            .finish_non_exhaustive()
    }
}

impl Default for ExportOptions<'_> {
    fn default() -> Self {
        ExportOptions {
            format: ArchiveFormat::Oci,
            compression: Compression::None,
            mtime: 0,
            repo: None,
            platform: None,
            referrers: true,
            since: None,
            progress: &Silent,
        }
    }
}

/// One exported `index.json` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedImage {
    /// The entry, as the archive's `index.json` lists it.
    pub descriptor: Descriptor,
    /// The position of its source in the sources given.
    pub source: usize,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The archive's `index.json` entries, in order.
    pub images: Vec<ExportedImage>,
    /// Docker format: `(RepoTags, config digest)` of each `manifest.json` entry.
    pub docker_images: Vec<(Vec<String>, ocil_layout::Digest)>,
    /// Blobs written.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Referrers found in the sources' stores and included.
    pub referrers: usize,
    /// A delta: the blobs left out because the base holds them.
    pub omitted: Vec<BlobId>,
}

/// Export images from `sources` into one archive written to `out`. See the module docs.
///
/// `out` gets the archive's bytes as they are made; on error it holds a prefix of an
/// archive with no end marker, which the caller should discard.
pub fn export(
    sources: &[ExportSource<'_>],
    out: impl Write,
    opts: &ExportOptions<'_>,
) -> Result<ExportReport> {
    let _locks = lock_all(sources)?;
    let mut plan = plan::plan(sources, opts)?;
    let omitted = leave_out(&mut plan, opts)?;
    let docker = match opts.format {
        ArchiveFormat::Oci => None,
        ArchiveFormat::Docker => Some(docker::plan(sources, &plan.entries, opts)?),
    };
    let bundle = opts.since.map(|r| delta_description(r, &omitted).to_bytes());
    if let Some(b) = &bundle {
        check_description_size(b.len() as u64)?;
    }
    let index = Index {
        manifests: plan.entries.iter().map(|e| e.descriptor.clone()).collect(),
        ..Index::empty()
    };
    let blobs = plan::sorted(&plan.blobs);
    let parts = Parts { index: &index, docker: docker.as_deref(), bundle: bundle.as_deref() };
    write(sources, &parts, &blobs, out, opts)?;
    Ok(ExportReport {
        images: plan
            .entries
            .iter()
            .map(|e| ExportedImage { descriptor: e.descriptor.clone(), source: e.source })
            .collect(),
        docker_images: docker
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.repo_tags, d.config))
            .collect(),
        blobs: plan.blobs.len(),
        bytes: plan.blobs.iter().map(|b| b.size).sum(),
        referrers: plan.referrers,
        omitted,
    })
}

/// A delta: take the blobs the base holds out of the plan; they are returned, by digest.
fn leave_out(plan: &mut Plan, opts: &ExportOptions<'_>) -> Result<Vec<BlobId>> {
    let Some(base) = opts.since else { return Ok(Vec::new()) };
    if opts.format == ArchiveFormat::Docker {
        return Err(Error::CarryUnsupported {
            reason: "a delta is an OCI archive: --format docker cannot carry one (docker load needs every layer in the file)".into(),
        });
    }
    let (out, kept): (Vec<PlannedBlob>, Vec<PlannedBlob>) =
        std::mem::take(&mut plan.blobs).into_iter().partition(|b| base.holds(&b.digest, b.size));
    plan.blobs = kept;
    let mut omitted: Vec<BlobId> =
        out.into_iter().map(|b| BlobId { digest: b.digest, size: b.size }).collect();
    omitted.sort_by(|a, b| a.digest.cmp(&b.digest));
    Ok(omitted)
}

/// A delta's `ocil-bundle.json`.
fn delta_description(base: &Receipt, omitted: &[BlobId]) -> Bundle {
    Bundle {
        since: Some(Base { receipt: base.identity(), index: base.index.clone() }),
        omitted: omitted.to_vec(),
        ..Bundle::new()
    }
}

/// `ocil-bundle.json` is read into memory by import, as every JSON entry at an archive's
/// root, up to [`JSON_LIMIT`] bytes: a description over it could not be imported.
fn check_description_size(len: u64) -> Result<()> {
    if len > JSON_LIMIT {
        return Err(Error::CarryUnsupported {
            reason: format!(
                "the bundle's description (ocil-bundle.json: every blob it carries or leaves out) would be {len} bytes, over the {JSON_LIMIT}-byte limit for a JSON entry: export fewer images at a time"
            ),
        });
    }
    Ok(())
}

/// What an archive holds besides its blobs.
struct Parts<'p> {
    index: &'p Index,
    docker: Option<&'p [DockerEntry]>,
    bundle: Option<&'p [u8]>,
}

/// Lock every distinct source directory, in the order of (device, inode).
fn lock_all(sources: &[ExportSource<'_>]) -> Result<Vec<LockGuard>> {
    use cap_std::fs::MetadataExt as _;
    let mut keyed = Vec::new();
    for s in sources {
        let meta = s.layout.dir().dir_metadata().map_err(|e| {
            Error::source_layout(&s.name)(ocil_layout::Error::Io {
                op: "stat",
                path: ".".into(),
                source: e,
            })
        })?;
        keyed.push(((meta.dev(), meta.ino()), s));
    }
    keyed.sort_by_key(|(k, _)| *k);
    keyed.dedup_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, s)| s.layout.lock().map_err(Error::source_layout(&s.name))).collect()
}

/// The `index.json` bytes of an archive listing `entries`.
fn index_bytes(index: &Index) -> Vec<u8> {
    debug_assert_eq!(index.media_type, Some(MediaType::OciIndex));
    serde_json::to_vec(index).expect("an index always serialises")
}

/// The `oci-layout` bytes.
fn layout_header() -> String {
    format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}")
}

/// Write one archive: the layout files, then `blobs` in the order given.
fn write(
    sources: &[ExportSource<'_>],
    parts: &Parts<'_>,
    blobs: &[&PlannedBlob],
    out: impl Write,
    opts: &ExportOptions<'_>,
) -> Result<()> {
    let total = blobs.iter().map(|b| b.size).sum();
    opts.progress.begin("export", Some(total));
    let result = write_unreported(sources, parts, blobs, out, opts.compression, opts);
    opts.progress.end();
    result
}

/// [`write`], without beginning or ending a progress phase (volumes report as one).
fn write_unreported(
    sources: &[ExportSource<'_>],
    parts: &Parts<'_>,
    blobs: &[&PlannedBlob],
    out: impl Write,
    compression: Compression,
    opts: &ExportOptions<'_>,
) -> Result<()> {
    let w = Error::write;
    let sink = Sink::new(out, compression).map_err(w)?;
    let mut tar = TarWriter::new(sink, opts.mtime);
    tar.file(LAYOUT_FILE, layout_header().as_bytes()).map_err(w)?;
    tar.file(INDEX_FILE, &index_bytes(parts.index)).map_err(w)?;
    if let Some(entries) = parts.docker {
        tar.file("manifest.json", &docker::manifest_json(entries)).map_err(w)?;
    }
    if let Some(bundle) = parts.bundle {
        tar.file(crate::bundle::BUNDLE_FILE, bundle).map_err(w)?;
    }
    tar.dir("blobs/").map_err(w)?;
    for alg in algorithms(blobs.iter().copied()) {
        tar.dir(&format!("blobs/{alg}/")).map_err(w)?;
    }
    write_blobs(sources, blobs, &mut tar, opts.progress)?;
    let sink = tar.finish().map_err(w)?;
    finish_sink(sink).map_err(w)?;
    Ok(())
}

/// The digest algorithms of `blobs`, sorted, each once.
fn algorithms<'p>(blobs: impl Iterator<Item = &'p PlannedBlob>) -> Vec<ocil_layout::Algorithm> {
    let mut algs: Vec<_> = blobs.map(|b| b.digest.algorithm()).collect();
    algs.sort();
    algs.dedup();
    algs
}

fn write_blobs<W: Write>(
    sources: &[ExportSource<'_>],
    blobs: &[&PlannedBlob],
    tar: &mut TarWriter<W>,
    progress: &dyn Progress,
) -> Result<()> {
    with_copier(|copier| {
        for b in blobs {
            let src = &sources[b.source];
            let path = b.digest.blob_path();
            let corrupt = |reason: String| Error::BlobCorrupt {
                layout: src.name.clone(),
                digest: b.digest.clone(),
                reason,
            };
            let read_error = |e: std::io::Error| {
                Error::source_layout(&src.name)(ocil_layout::Error::Io {
                    op: "read",
                    path: path.clone(),
                    source: e,
                })
            };
            // Opened through the layout's directory capability: nothing outside it.
            let file = match src.layout.dir().open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::source_layout(&src.name)(ocil_layout::Error::BlobMissing {
                        digest: b.digest.clone(),
                    }));
                }
                Err(e) => return Err(read_error(e)),
            };
            let meta = file.metadata().map_err(read_error)?;
            if !meta.is_file() {
                return Err(corrupt("it is not a regular file".into()));
            }
            let found = copier
                .copy(tar, &path, b.size, b.digest.algorithm(), file, progress)
                .map_err(|e| match e {
                    BlobCopyError::Write(e) => Error::Write { source: e },
                    BlobCopyError::Read(e) => read_error(e),
                    BlobCopyError::Size { expected, found } => corrupt(format!(
                        "it holds {found} bytes, not the {expected} it had when the export started"
                    )),
                })?;
            if found != b.digest {
                return Err(corrupt(format!("its content hashes to `{found}`")));
            }
        }
        Ok(())
    })
}
