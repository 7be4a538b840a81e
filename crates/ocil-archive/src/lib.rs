//! `ocil-archive`: import image archives into OCI image layouts.
//!
//! [`import`] reads an archive once, as a stream (a file or stdin), whatever its
//! compression (gzip, zstd or none, told by the first bytes), and understands:
//!
//! - **OCI archives** (`oci-layout`, `index.json`, `blobs/<alg>/<hex>` at the root, as
//!   skopeo's `oci-archive:` writes): every blob is checked against its name and kept;
//! - **docker-save archives** (`manifest.json` = `[{Config, RepoTags, Layers}]`): each image
//!   becomes an OCI image manifest over the unchanged config (whose digest is Docker's image
//!   ID) and layers (xz and bzip2 layers, which no media type names, stored as the plain
//!   tars they hold: their digests are then the config's diff_ids); tags come from
//!   `RepoTags`, the full name goes in `io.containerd.image.name`;
//! - **Docker 25+ archives** (both): the OCI `index.json` wins, `RepoTags` fill in tags it
//!   lacks.
//!
//! The pre-1.10 format (`repositories` and `<id>/json` only) is refused with a clear error.
//!
//! [`ImportOptions::image`] imports one image of the archive (by tag, full name or digest) and
//! only the blobs its graph reaches; [`ImportOptions::tag`] tags the imported image instead of
//! the archive's tags (the archive must then hold one image, or one must be chosen).
//!
//! Every regular file is streamed into a temp file in the destination's blob store and
//! hashed as it lands; nothing becomes visible until the end, when, under the destination's
//! lock, the blobs that are kept are renamed into place and `index.json` is replaced once.
//! A failed import leaves the destination as it was: temp files are removed when dropped.
//!
//! Hostile archives are refused: absolute names or `..` components, duplicate entries,
//! links leading outside the archive or standing in for `index.json` or a blob, oversized
//! JSON, blobs that do not match their names, truncated streams.
//!
//! [`export`] writes images of one or more layouts into one archive (OCI, or OCI plus
//! Docker's `manifest.json`), deterministically, as a stream.
//!
//! [`ArchiveView`] reads an archive in place, for `ocil ls FILE` and `ocil inspect FILE`:
//! the tar is indexed once (entry -> offset and size) and entries are read by offset; a
//! compressed archive is read in one pass that keeps only its JSON documents. The images,
//! tags and digests are planned by import's own code; hostile archives get import's errors.
//!
//! [`scan`] reads any tar without writing anything: its kind, entries, unsafe names and the
//! digest of the uncompressed stream (a layer's diff_id), for `ocil fsck FILE`.
//!
//! # Example
//!
//! ```
//! use ocil_archive::{Format, ImportOptions};
//! use ocil_layout::Layout;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A docker-save archive with one empty image, built in memory.
//! let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
//! let manifest = br#"[{"Config":"config.json","RepoTags":["example.com/app:v1"],"Layers":[]}]"#;
//! let mut tar = tar::Builder::new(Vec::new());
//! for (name, bytes) in [("config.json", &config[..]), ("manifest.json", &manifest[..])] {
//!     let mut header = tar::Header::new_gnu();
//!     header.set_size(bytes.len() as u64);
//!     header.set_mode(0o644);
//!     tar.append_data(&mut header, name, bytes)?;
//! }
//! let archive = tar.into_inner()?;
//!
//! let tmp = tempfile::tempdir()?;
//! let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
//! let layout = Layout::create(dir)?;
//! let report = ocil_archive::import(&archive[..], &layout, &ImportOptions::default())?;
//! assert_eq!(report.format, Format::DockerArchive);
//! assert_eq!(report.images[0].tags[0].tag, "v1");
//! assert_eq!(layout.read_index()?.manifests[0].ref_name(), Some("v1"));
//! # Ok(()) }
//! ```

#![warn(missing_docs, clippy::unwrap_used)]

mod bundle;
mod commit;
mod docker;
mod error;
mod export;
mod oci;
mod plain;
mod receipt;
mod scan;
mod select;
mod source;
mod stage;
mod stream;
mod tar_index;
mod view;

use std::collections::BTreeMap;
use std::io::Read;

use ocil_layout::{Descriptor, Digest, Layout, Reference};

pub use bundle::{BUNDLE_FILE, BUNDLE_MEDIA_TYPE, Base, volume_file_name};
pub use error::{Error, Result};
pub use export::{
    ArchiveFormat, ExportOptions, ExportReport, ExportSource, ExportedImage, VolumeOptions,
    VolumeWritten, Volumes, export, plan_volumes,
};
pub use ocil_codec::tar_fault::TarFault;
pub use receipt::{BlobId, RECEIPT_LIMIT, RECEIPT_MEDIA_TYPE, Receipt};
pub use scan::{ArchiveKind, EntryKinds, Scan, UnsafeName, V1Layer, scan};
pub use view::ArchiveView;

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Move tags that already name a different image in the destination (and let the last
    /// of the archive's images win a tag the archive gives twice).
    pub force: bool,
    /// Import only this image of the archive (by tag, full name or digest), and only the
    /// blobs it reaches; an archive without it is an error listing what it holds.
    pub image: Option<Reference>,
    /// Tag the imported image with this instead of the archive's tags and names. The
    /// archive must hold one image, or [`ImportOptions::image`] must choose one.
    pub tag: Option<String>,
    /// Import a delta or a volume on its own, as `ocil fsck FILE` does into an empty
    /// scratch layout: a delta's base is not required, and the entries written are the
    /// archive's own `index.json` (a volume lists there the images it holds whole).
    pub partial: bool,
}

/// The kind of archive imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An OCI image layout in a tar.
    OciArchive,
    /// A docker-save archive (`manifest.json`).
    DockerArchive,
    /// Docker 25+: an OCI layout and `manifest.json` in one archive.
    DockerOciArchive,
}

impl Format {
    /// Short name: `oci-archive`, `docker-archive`, `docker-archive+oci-layout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OciArchive => "oci-archive",
            Format::DockerArchive => "docker-archive",
            Format::DockerOciArchive => "docker-archive+oci-layout",
        }
    }
}

/// A tag given by the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagName {
    /// The tag (`org.opencontainers.image.ref.name`).
    pub tag: String,
    /// The full name (`io.containerd.image.name`), when the archive gives one.
    pub name: Option<String>,
}

/// One `index.json` entry added (or confirmed) by an import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedImage {
    /// The manifest or index.
    pub descriptor: Descriptor,
    /// Its tags; empty for an untagged entry.
    pub tags: Vec<TagName>,
}

/// A docker-save layer stored as the plain tar it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecompressedLayer {
    /// The compression undone (xz or bzip2).
    pub compression: ocil_codec::Format,
    /// The digest of the plain tar: the blob's, and the config's diff_id.
    pub digest: Digest,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The archive's format.
    pub format: Format,
    /// The archive's compression.
    pub compression: ocil_codec::Format,
    /// Number of tar entries.
    pub entries: usize,
    /// The images, in the archive's order.
    pub images: Vec<ImportedImage>,
    /// Blobs that were not in the destination before.
    pub blobs_written: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The docker-save layers stored decompressed, one per distinct layer imported: xz
    /// and bzip2 layers, which no media type names, become the plain tars they hold (their
    /// digests are then the config's diff_ids).
    pub decompressed: Vec<DecompressedLayer>,
    /// Regular files of the archive that were not imported (`manifest.json`, legacy
    /// `<id>/json`, ...).
    pub unused_files: usize,
    /// For a delta or a volume: what its `ocil-bundle.json` says, and where the
    /// destination stands.
    pub bundle: Option<BundleReport>,
}

/// A delta or a volume imported.
#[derive(Debug, Clone)]
pub struct BundleReport {
    /// The base a delta was made against.
    pub since: Option<Base>,
    /// The blobs a delta leaves out (the base holds them).
    pub omitted: Vec<Digest>,
    /// A volume: the bundle's identity.
    pub bundle: Option<Digest>,
    /// A volume: its number (from 1) and how many the bundle has.
    pub volume: Option<(u32, u32)>,
    /// A volume: the bundle's volumes that still have blobs the destination lacks, with
    /// their file names (`NAME.002.tar`).
    pub missing_volumes: Vec<(u32, String)>,
    /// A volume: the bundle's entries not written yet, because their images are not
    /// complete in the destination.
    pub pending: Vec<ImportedImage>,
}

/// Import an archive read from `reader` into `layout`. See the crate docs.
///
/// Errors about the archive name the entry; nothing of a failed import is visible in
/// `layout`.
pub fn import(reader: impl Read, layout: &Layout, opts: &ImportOptions) -> Result<ImportReport> {
    // A delta is refused as soon as its description passes, when the base is not here.
    let mut staged = stage::stage(reader, layout, |path, file| {
        if path == bundle::BUNDLE_FILE
            && let Some(bytes) = &file.json
        {
            let b = bundle::Bundle::parse(bytes)?;
            if !opts.partial {
                b.check_base(layout)?;
            }
        }
        Ok(())
    })?;
    let bundle = match staged.read_json(bundle::BUNDLE_FILE)? {
        Some(bytes) => Some(bundle::Bundle::parse(&bytes)?),
        None => None,
    };
    if let Some(b) = &bundle {
        check_bundle(b, &staged, opts)?;
    }
    let planned = plan(&staged)?;
    let chosen = match (&opts.image, &opts.tag) {
        (Some(want), _) => Some(select::choose(&planned.images, want)?),
        (None, Some(tag)) => Some(select::only(&planned.images, tag)?),
        (None, None) => None,
    };
    let keep = match (planned.format, chosen) {
        // Every verified `blobs/` entry of an OCI archive lands, referenced or not.
        (Format::OciArchive | Format::DockerOciArchive, None) => staged
            .nodes
            .iter()
            .filter(|(_, n)| matches!(n, stage::Node::File(f) if f.verified))
            .map(|(p, _)| p.clone())
            .collect(),
        // One image: what its graph reaches.
        (Format::OciArchive | Format::DockerOciArchive, Some(i)) => {
            select::closure(&staged, &planned.images[i].descriptor)?
        }
        (Format::DockerArchive, None) => planned.docker_files.concat(),
        (Format::DockerArchive, Some(i)) => planned.docker_files[i].clone(),
    };
    let format = planned.format;
    let bundle_images = match &bundle {
        // A volume writes the whole bundle's entries, as their images become complete.
        Some(b) if !opts.partial => b.index.as_ref().map(oci::images_of).transpose()?,
        _ => None,
    };
    let (mut images, documents) = match chosen {
        None if bundle_images.is_some() => (bundle_images.unwrap_or_default(), planned.documents),
        None => (planned.images, planned.documents),
        Some(i) => {
            let image = planned.images[i].clone();
            let documents = planned.documents.get(i).cloned().into_iter().collect();
            (vec![image], documents)
        }
    };
    if let Some(tag) = &opts.tag {
        select::retag(&mut images[0], tag)?;
    }
    let mut plan = commit::Plan { images, keep, documents, decompressed: planned.decompressed };
    commit::resolve_archive_tags(&mut plan.images, opts.force)?;
    let written = commit::commit(layout, &mut staged, &mut plan, opts, bundle.as_ref())?;
    let left = staged.nodes.values().filter(|n| matches!(n, stage::Node::File(_))).count();
    let bundle = match bundle {
        None => None,
        Some(b) => {
            let missing_volumes = match (b.is_volume(), opts.partial) {
                (true, false) => {
                    b.missing_volumes(layout)?.into_iter().map(|v| (v, b.volume_file(v))).collect()
                }
                _ => Vec::new(),
            };
            Some(BundleReport {
                omitted: b.omitted.iter().map(|o| o.digest.clone()).collect(),
                since: b.since,
                bundle: b.bundle,
                volume: b.volume.zip(b.volumes),
                missing_volumes,
                pending: written.pending,
            })
        }
    };
    Ok(ImportReport {
        format,
        compression: staged.compression,
        entries: staged.entries,
        images: plan.images,
        blobs_written: written.blobs,
        bytes: written.bytes,
        decompressed: written.decompressed,
        unused_files: left,
        bundle,
    })
}

/// What must hold of a delta or a volume before its blobs land: the options make sense for
/// it, and a volume holds exactly the blobs its description lists for it.
fn check_bundle(b: &bundle::Bundle, staged: &stage::Staged, opts: &ImportOptions) -> Result<()> {
    if opts.image.is_some() && !opts.partial {
        return Err(Error::CarryUnsupported {
            reason: "a delta or a volume is imported whole (its blobs may belong to images it does not hold whole): import it, then `ocil copy` the image you want".into(),
        });
    }
    if b.is_volume() && opts.tag.is_some() && !opts.partial {
        return Err(Error::CarryUnsupported {
            reason: "a volume is imported with its bundle's tags: import it into DIR without :TAG"
                .into(),
        });
    }
    let Some(v) = b.volume else { return Ok(()) };
    let carried = b.carried();
    for (path, node) in &staged.nodes {
        if let (Some(d), stage::Node::File(_)) = (source::blob_name(path), node)
            && !carried.contains_key(&d)
        {
            return Err(Error::VolumeMismatch {
                volume: v,
                reason: format!("it holds blob `{d}`, which its description does not list for it"),
            });
        }
    }
    for (d, size) in carried {
        match staged.file(&d.blob_path())? {
            Some((_, f)) if f.blob.size() == size => {}
            Some((_, f)) => {
                return Err(Error::VolumeMismatch {
                    volume: v,
                    reason: format!(
                        "blob `{d}` is {} bytes, not the {size} its description lists",
                        f.blob.size()
                    ),
                });
            }
            None => {
                return Err(Error::VolumeMismatch {
                    volume: v,
                    reason: format!("blob `{d}`, which its description lists for it, is not in it"),
                });
            }
        }
    }
    Ok(())
}

/// What an archive holds, as import (and the in-place view) understands it.
pub(crate) struct Planned {
    pub(crate) format: Format,
    /// The `index.json` entries, in the archive's order.
    pub(crate) images: Vec<ImportedImage>,
    /// The manifests built for docker-save images.
    pub(crate) documents: Vec<Vec<u8>>,
    /// For docker-save archives: the configs and layers each image uses (one list per
    /// image, in the order of `images`).
    pub(crate) docker_files: Vec<Vec<String>>,
    /// For docker-save archives: the layers stored decompressed ([`plain`]), with the
    /// compression undone.
    pub(crate) decompressed: BTreeMap<String, ocil_codec::Format>,
}

/// Tell the format and plan the images: the one decision import and the view share.
pub(crate) fn plan(src: &impl source::Source) -> Result<Planned> {
    let planned = if src.has("oci-layout") || (src.has("index.json") && !src.has("manifest.json")) {
        let dual = src.has("manifest.json");
        let images = oci::plan(src, dual)?;
        let format = if dual { Format::DockerOciArchive } else { Format::OciArchive };
        Planned {
            format,
            images,
            documents: Vec::new(),
            docker_files: Vec::new(),
            decompressed: BTreeMap::new(),
        }
    } else if src.has("manifest.json") {
        let images = docker::plan(src)?;
        let docker_files = images
            .iter()
            .map(|image| {
                let mut files = vec![image.config_path.clone()];
                files.extend(image.layer_paths.iter().cloned());
                files
            })
            .collect();
        let decompressed = images.iter().flat_map(|i| i.decompressed.clone()).collect();
        Planned {
            format: Format::DockerArchive,
            images: images.iter().map(ImportedImage::from).collect(),
            documents: images.into_iter().map(|i| i.manifest).collect(),
            docker_files,
            decompressed,
        }
    } else if src.has("repositories") {
        return Err(Error::LegacyFormat);
    } else {
        return Err(Error::NotAnImageArchive);
    };
    Ok(planned)
}
