//! Volumes: one export split into archives of a bounded size (`NAME.001.tar`, ...), for
//! media of a fixed capacity, each an OCI archive that can be checked and imported on its
//! own, in any order.
//!
//! Packing: the blobs, in the order the images' walks met them (image after image, so an
//! image tends to travel in one volume), fill volume after volume; a volume is closed when
//! the next blob would take it over the size. The size counts every byte of the file: tar
//! headers, padding, `oci-layout`, `index.json`, `ocil-bundle.json` and the end marker (their
//! sizes are bounded before packing, so the bound holds whatever the numbers in them). A blob
//! is never split: one that cannot fit in a volume with the volume's own entries is refused
//! (`Error::VolumeTooSmall`), naming it and the size that would hold it.
//!
//! Each volume holds: `oci-layout`; an `index.json` listing the bundle's entries whose
//! images it holds whole (so any OCI tool reads it as a complete layout); `ocil-bundle.json`
//! with the bundle's identity, the volume's number, the whole bundle's `index.json` and
//! every blob of the bundle with the volume carrying it ([`crate::bundle`]); then its blobs,
//! documents first, each group by digest. Volumes are uncompressed (layers are compressed
//! already), with the export's fixed headers: the same input gives the same bytes.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};

use ocil_layout::walk::{self, LeafCheck, WalkOptions};
use ocil_layout::{
    Compression, Descriptor, Digest, Hasher, INDEX_FILE, Index, LAYOUT_FILE, LockGuard,
};

use super::plan::{self, Plan, PlannedBlob};
use super::tar::{END_BYTES, entry_bytes};
use super::{
    ArchiveFormat, ExportOptions, ExportReport, ExportSource, ExportedImage, Parts, algorithms,
    index_bytes, layout_header, leave_out, lock_all, write_unreported,
};
use crate::bundle::{BUNDLE_FILE, Base, Bundle, VolumeBlob};
use crate::receipt::BlobId;
use crate::{Error, Result};

/// How to split an export.
#[derive(Debug, Clone)]
pub struct VolumeOptions {
    /// The most bytes a volume file may have.
    pub size: u64,
    /// The bundle's name (`NAME` of `NAME.001.tar`), recorded in each volume.
    pub name: String,
}

/// One volume written.
#[derive(Debug, Clone)]
pub struct VolumeWritten {
    /// Its number, from 1.
    pub number: u32,
    /// The blobs it carries.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The `index.json` entries it holds whole.
    pub entries: usize,
    /// The size of the file.
    pub size: u64,
    /// The sha256 of the file.
    pub sha256: Digest,
}

/// An export planned as volumes; the sources stay locked until it is dropped.
pub struct Volumes<'a> {
    sources: &'a [ExportSource<'a>],
    opts: ExportOptions<'a>,
    _locks: Vec<LockGuard>,
    plan: Plan,
    omitted: Vec<BlobId>,
    /// Per volume: positions in `plan.blobs`, in the archive's order.
    volumes: Vec<Vec<usize>>,
    /// Per volume: the entries it holds whole.
    entries: Vec<Vec<Descriptor>>,
    /// The bundle's description (`volume` unset).
    description: Bundle,
    size: u64,
}

impl std::fmt::Debug for Volumes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volumes")
            .field("bundle", &self.description.bundle)
            .field("volumes", &self.volumes.len())
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Plan an export as volumes of at most `vopts.size` bytes (see the module docs). The
/// sources are locked from here until the [`Volumes`] is dropped.
pub fn plan_volumes<'a>(
    sources: &'a [ExportSource<'a>],
    opts: &ExportOptions<'a>,
    vopts: &VolumeOptions,
) -> Result<Volumes<'a>> {
    if opts.format == ArchiveFormat::Docker {
        return Err(Error::CarryUnsupported {
            reason: "volumes are OCI archives: --format docker cannot carry them (docker load needs every layer in one file)".into(),
        });
    }
    if opts.compression != Compression::None {
        return Err(Error::CarryUnsupported {
            reason: "volumes are written uncompressed (layers are compressed already), so that the volume size bounds each file: give -o NAME.tar".into(),
        });
    }
    let locks = lock_all(sources)?;
    let mut plan = plan::plan(sources, opts)?;
    let omitted = leave_out(&mut plan, opts)?;
    let full = Index {
        manifests: plan.entries.iter().map(|e| e.descriptor.clone()).collect(),
        ..Index::empty()
    };
    let since = opts.since.map(|r| Base { receipt: r.identity(), index: r.index.clone() });

    // What a volume holds besides its blobs, at most: every number in the description as
    // wide as it can get (there are never more volumes than blobs), every entry listed.
    let most = plan.blobs.len().max(1) as u32;
    let widest = Bundle {
        bundle: Some(ocil_layout::Algorithm::Sha256.digest_of(b"")),
        name: Some(vopts.name.clone()),
        volume: Some(most),
        volumes: Some(most),
        index: Some(full.clone()),
        blobs: plan
            .blobs
            .iter()
            .map(|b| VolumeBlob { digest: b.digest.clone(), size: b.size, volume: most })
            .collect(),
        since: since.clone(),
        omitted: omitted.clone(),
        ..Bundle::new()
    };
    let description_bound = widest.to_bytes().len() as u64;
    super::check_description_size(description_bound)?;
    let mut fixed = entry_bytes(LAYOUT_FILE, layout_header().len() as u64)
        + entry_bytes(INDEX_FILE, index_bytes(&full).len() as u64)
        + entry_bytes(BUNDLE_FILE, description_bound)
        + entry_bytes("blobs/", 0)
        + END_BYTES;
    for alg in algorithms(plan.blobs.iter()) {
        fixed += entry_bytes(&format!("blobs/{alg}/"), 0);
    }
    if fixed >= vopts.size {
        return Err(Error::CarryUnsupported {
            reason: format!(
                "--volume-size {} cannot hold a volume's own entries (oci-layout, index.json, ocil-bundle.json: up to {fixed} bytes for this bundle); give a larger size",
                vopts.size
            ),
        });
    }

    // Pack, blob after blob.
    let mut packed: Vec<Vec<usize>> = vec![Vec::new()];
    let mut used = fixed;
    for (i, b) in plan.blobs.iter().enumerate() {
        let cost = entry_bytes(&b.digest.blob_path(), b.size);
        if fixed + cost > vopts.size {
            return Err(Error::VolumeTooSmall {
                digest: b.digest.clone(),
                size: b.size,
                needed: fixed + cost,
                volume_size: vopts.size,
            });
        }
        let current = packed.last_mut().expect("there is always a volume");
        if used + cost > vopts.size && !current.is_empty() {
            packed.push(Vec::new());
            used = fixed;
        }
        packed.last_mut().expect("there is always a volume").push(i);
        used += cost;
    }
    let count = packed.len() as u32;
    let mut volume_of = vec![0u32; plan.blobs.len()];
    for (v, blobs) in packed.iter().enumerate() {
        for &i in blobs {
            volume_of[i] = v as u32 + 1;
        }
    }

    // The entries each volume holds whole: every blob of the image's graph that the bundle
    // carries is in it (an entry whose blobs the base holds all goes in the first).
    let carried: HashMap<&Digest, u32> =
        plan.blobs.iter().zip(&volume_of).map(|(b, &v)| (&b.digest, v)).collect();
    let mut entries: Vec<Vec<Descriptor>> = vec![Vec::new(); packed.len()];
    for e in &plan.entries {
        let wopts = WalkOptions {
            follow_subject: true,
            sniff_unknown: true,
            leaves: LeafCheck::None,
            keep_bytes: false,
            keep_documents: false,
        };
        let w = walk::walk(sources[e.source].layout, std::slice::from_ref(&e.descriptor), wopts);
        let holding: BTreeSet<u32> = w.digests().filter_map(|d| carried.get(d).copied()).collect();
        match holding.len() {
            0 => entries[0].push(e.descriptor.clone()),
            1 => {
                let v = *holding.first().expect("one volume");
                entries[v as usize - 1].push(e.descriptor.clone());
            }
            _ => {}
        }
    }

    let mut description = Bundle {
        name: Some(vopts.name.clone()),
        volumes: Some(count),
        index: Some(full),
        blobs: plan
            .blobs
            .iter()
            .zip(&volume_of)
            .map(|(b, &volume)| VolumeBlob { digest: b.digest.clone(), size: b.size, volume })
            .collect(),
        since,
        omitted: omitted.clone(),
        ..Bundle::new()
    };
    description.bundle = Some(description.identity());
    // Within a volume, the archive's order.
    let volumes = packed
        .iter()
        .map(|blobs| {
            let mut v: Vec<usize> = blobs.clone();
            v.sort_by(|&a, &b| {
                let (a, b) = (&plan.blobs[a], &plan.blobs[b]);
                (!a.document, &a.digest).cmp(&(!b.document, &b.digest))
            });
            v
        })
        .collect();
    Ok(Volumes {
        sources,
        opts: opts.clone(),
        _locks: locks,
        plan,
        omitted,
        volumes,
        entries,
        description,
        size: vopts.size,
    })
}

impl Volumes<'_> {
    /// How many volumes.
    pub fn count(&self) -> u32 {
        self.volumes.len() as u32
    }

    /// The bundle's identity (recorded in every volume).
    pub fn bundle(&self) -> &Digest {
        self.description.bundle.as_ref().expect("set when planned")
    }

    /// The bytes of every blob the volumes carry (what a progress bar counts).
    pub fn bytes(&self) -> u64 {
        self.plan.blobs.iter().map(|b| b.size).sum()
    }

    /// Write volume `number` (from 1) to `out`, reporting the blobs' bytes to the export's
    /// progress (the caller begins and ends the phase, over [`Volumes::bytes`]).
    pub fn write(&self, number: u32, out: impl Write) -> Result<VolumeWritten> {
        assert!((1..=self.count()).contains(&number), "volume {number} of {}", self.count());
        let i = number as usize - 1;
        let description = Bundle { volume: Some(number), ..self.description.clone() };
        let bundle = description.to_bytes();
        let index = Index { manifests: self.entries[i].clone(), ..Index::empty() };
        let blobs: Vec<&PlannedBlob> =
            self.volumes[i].iter().map(|&b| &self.plan.blobs[b]).collect();
        let parts = Parts { index: &index, docker: None, bundle: Some(&bundle) };
        let mut out = Hashing { out, hasher: ocil_layout::Algorithm::Sha256.hasher(), count: 0 };
        write_unreported(self.sources, &parts, &blobs, &mut out, Compression::None, &self.opts)?;
        debug_assert!(out.count <= self.size, "volume {number}: {} > {}", out.count, self.size);
        Ok(VolumeWritten {
            number,
            blobs: blobs.len(),
            bytes: blobs.iter().map(|b| b.size).sum(),
            entries: index.manifests.len(),
            size: out.count,
            sha256: out.hasher.finish(),
        })
    }

    /// What the whole export holds, as [`super::export`] reports it.
    pub fn report(&self) -> ExportReport {
        ExportReport {
            images: self
                .plan
                .entries
                .iter()
                .map(|e| ExportedImage { descriptor: e.descriptor.clone(), source: e.source })
                .collect(),
            docker_images: Vec::new(),
            blobs: self.plan.blobs.len(),
            bytes: self.bytes(),
            referrers: self.plan.referrers,
            omitted: self.omitted.clone(),
        }
    }
}

/// A writer that hashes and counts what passes.
struct Hashing<W> {
    out: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
