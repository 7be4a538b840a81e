//! `unpack`: an image of any [`Store`] into a runtime bundle: its layers applied in order
//! into the rootfs (each layer's uncompressed digest checked against the config's
//! `diff_ids`), `config.json` generated, and the record written last.

use std::io::Read;
use std::sync::mpsc;

use cap_std::fs::Dir;
use ocil_layout::progress::{Progress, ProgressReader};
use ocil_layout::{Algorithm, Digest, Platform, Reference, Store};
use rustix::fs::{self, Mode, OFlags};

use crate::apply::{Applier, ApplyOptions, LayerId};
use crate::bundle::{self, CONFIG_FILE, ROOTFS_DIR, TEMP_ROOTFS};
use crate::image::{Image, choose};
use crate::record::{Entry, Record, RecordLayer, RecordSource, write_atomic};
use crate::root::{Resolver, Root};
use crate::{Error, Result, spec, user};

/// How to unpack.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions<'a> {
    /// The image of an index to take (default: the host's, else the only one).
    pub platform: Option<&'a Platform>,
    /// Unprivileged: owners kept in the record and in `user.rootlesscontainers`, devices as
    /// empty files, a user namespace in `config.json`.
    pub rootless: bool,
    /// Replace what an earlier unpack left in the bundle.
    pub force: bool,
    /// How paths are resolved in the rootfs (tests pin the walk).
    pub resolver: Resolver,
    /// The image's name as given (`DIR:TAG`), for the record and messages.
    pub name: &'a str,
}

/// What an unpack did.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The manifest unpacked.
    pub manifest: Digest,
    /// Its platform (from the config).
    pub platform: Option<String>,
    /// How many layers were applied.
    pub layers: usize,
    /// How many paths the rootfs holds.
    pub paths: usize,
    /// Whether paths were resolved with `openat2` (else the walk).
    pub openat2: bool,
    /// Things skipped or changed on the way, one line each.
    pub warnings: Vec<String>,
}

/// Unpack the image `reference` of `store` into `bundle` (see the module docs).
pub fn unpack(
    store: &dyn Store,
    reference: Option<&Reference>,
    bundle: &Dir,
    opts: &UnpackOptions<'_>,
    progress: &dyn Progress,
) -> Result<Unpacked> {
    let image = choose(store, reference, opts.platform, opts.name)?;
    bundle::prepare(bundle, opts.force)?;
    let result = build(store, &image, bundle, opts, progress);
    if result.is_err() {
        bundle::discard(bundle);
    }
    result
}

fn bundle_err(op: &'static str, path: &str, e: impl Into<std::io::Error>) -> Error {
    Error::Bundle { op, path: path.into(), source: e.into() }
}

/// Source and layers as the record keeps them.
pub(crate) fn record_of(image: &Image, name: &str, rootless: bool) -> Record {
    let source = RecordSource {
        name: name.into(),
        manifest: image.manifest_desc.digest.clone(),
        media_type: image.manifest_desc.media_type.to_string(),
        config: image.config_digest.clone(),
        platform: image.platform.clone(),
    };
    let layers = image
        .manifest
        .layers
        .iter()
        .zip(&image.diff_ids)
        .map(|(l, d)| RecordLayer {
            digest: l.digest.clone(),
            diff_id: d.clone(),
            media_type: l.media_type.to_string(),
            size: l.size,
        })
        .collect();
    Record::new(source, layers, rootless)
}

fn build(
    store: &dyn Store,
    image: &Image,
    bundle: &Dir,
    opts: &UnpackOptions<'_>,
    progress: &dyn Progress,
) -> Result<Unpacked> {
    let (record, warnings, openat2) = extract(store, image, bundle, opts, progress)?;
    fs::renameat(bundle, TEMP_ROOTFS, bundle, ROOTFS_DIR)
        .map_err(|e| bundle_err("rename", TEMP_ROOTFS, e))?;
    finish(image, bundle, record, warnings, opts, openat2)
}

/// Apply every layer into the bundle's temp rootfs; the record and warnings.
pub(crate) fn extract(
    store: &dyn Store,
    image: &Image,
    bundle: &Dir,
    opts: &UnpackOptions<'_>,
    progress: &dyn Progress,
) -> Result<(Record, Vec<String>, bool)> {
    fs::mkdirat(bundle, TEMP_ROOTFS, Mode::from_raw_mode(0o700))
        .map_err(|e| bundle_err("create", TEMP_ROOTFS, e))?;
    let fd = fs::openat(
        bundle,
        TEMP_ROOTFS,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| bundle_err("open", TEMP_ROOTFS, e))?;
    fs::fchmod(&fd, Mode::from_raw_mode(0o755))
        .map_err(|e| bundle_err("set the mode of", TEMP_ROOTFS, e))?;
    let st = fs::fstat(&fd).map_err(|e| bundle_err("stat", TEMP_ROOTFS, e))?;
    let mut record = record_of(image, opts.name, opts.rootless);
    let mut root_entry = Entry::from_stat(&st, 0);
    (root_entry.uid, root_entry.gid) = (0, 0);
    record.entries.insert(Vec::new(), root_entry);
    let root = Root::new(fd, opts.resolver);
    let openat2 = root.uses_openat2();
    let is_root = rustix::process::geteuid().is_root();
    let apply_opts = ApplyOptions { rootless: opts.rootless, mknod: is_root && !opts.rootless };
    let total: u64 = image.manifest.layers.iter().map(|l| l.size).sum();
    progress.begin("unpack", Some(total));
    // Two threads: this one reads and decompresses the layers (and hashes them for their
    // diff_ids), the other applies them, a bounded queue of chunks between the two (memory
    // stays flat), so the next layer is decompressed while the current one is written.
    let record_ref = &mut record;
    let root_ref = &root;
    let (produced, applied) = std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Chunk>(QUEUE);
        let apply = s.spawn(move || -> Result<Vec<String>> {
            let mut applier = Applier::new(root_ref, record_ref, apply_opts);
            for (i, layer) in image.manifest.layers.iter().enumerate() {
                let id = LayerId { index: i as u32, digest: layer.digest.clone() };
                applier.apply_layer(
                    id,
                    ChannelReader { rx: &rx, chunk: Vec::new(), at: 0, ended: false },
                )?;
            }
            Ok(applier.finish()?.lines())
        });
        let produced = produce(store, image, &tx, progress);
        drop(tx);
        let applied = match apply.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (produced, applied)
    });
    progress.end();
    let warnings = match (produced, applied) {
        // The reading side's own error first: the applying side only saw its stream stop.
        (Err(Stop::Failed(e)), _) => return Err(e),
        (_, Err(e)) => return Err(e),
        (Err(Stop::ApplyGone), Ok(_)) => {
            return Err(Error::Bundle {
                op: "apply the layers to",
                path: TEMP_ROOTFS.into(),
                source: std::io::Error::other("the applying thread stopped"),
            });
        }
        (Ok(()), Ok(w)) => w,
    };
    Ok((record, warnings, openat2))
}

/// Chunks in flight between the reading and the applying thread.
const QUEUE: usize = 64;
/// Bytes per chunk.
const CHUNK: usize = 64 * 1024;

/// What goes from the reading thread to the applying one.
enum Chunk {
    /// Uncompressed tar bytes of the current layer.
    Data(Vec<u8>),
    /// The current layer ends.
    End,
}

/// Why the reading side stopped early.
enum Stop {
    /// Its own error.
    Failed(Error),
    /// The applying side stopped reading (its error is the one to report).
    ApplyGone,
}

/// Read, check and decompress every layer into `tx`, each followed by [`Chunk::End`].
fn produce(
    store: &dyn Store,
    image: &Image,
    tx: &mpsc::SyncSender<Chunk>,
    progress: &dyn Progress,
) -> std::result::Result<(), Stop> {
    for (i, (layer, diff_id)) in image.manifest.layers.iter().zip(&image.diff_ids).enumerate() {
        let read_err = |e: std::io::Error| {
            Stop::Failed(Error::LayerRead {
                position: i + 1,
                digest: layer.digest.clone(),
                source: e,
            })
        };
        let blob = store
            .open_blob_verified(&layer.digest, Some(layer.size))
            .map_err(|e| Stop::Failed(e.into()))?;
        let blob = ProgressReader::new(blob, progress);
        let mut tar = ocil_codec::decompress(std::io::BufReader::with_capacity(CHUNK, blob))
            .map_err(|e| read_err(std::io::Error::other(e)))?;
        if tar.format.compression().is_none() {
            return Err(read_err(std::io::Error::other(format!(
                "{} is not a layer compression",
                tar.format.as_str()
            ))));
        }
        let mut hasher = Algorithm::Sha256.hasher();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut n = 0;
            while n < buf.len() {
                match tar.reader.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(read_err(e)),
                }
            }
            if n == 0 {
                break;
            }
            buf.truncate(n);
            hasher.update(&buf);
            tx.send(Chunk::Data(buf)).map_err(|_| Stop::ApplyGone)?;
        }
        tx.send(Chunk::End).map_err(|_| Stop::ApplyGone)?;
        let found = hasher.finish();
        if &found != diff_id {
            return Err(Stop::Failed(Error::DiffIdMismatch {
                position: i + 1,
                digest: layer.digest.clone(),
                expected: diff_id.to_string(),
                found,
            }));
        }
    }
    Ok(())
}

/// The applying side's view of a layer: the chunks until [`Chunk::End`].
struct ChannelReader<'a> {
    rx: &'a mpsc::Receiver<Chunk>,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(d)) => {
                    self.chunk = d;
                    self.at = 0;
                }
                Ok(Chunk::End) => self.ended = true,
                // The reading side failed (it reports why).
                Err(_) => return Err(std::io::Error::other("the layer stopped before its end")),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// After the rootfs is in place: the root's stat again (the rename changed its ctime),
/// `config.json`, then the record.
fn finish(
    image: &Image,
    bundle: &Dir,
    mut record: Record,
    mut warnings: Vec<String>,
    opts: &UnpackOptions<'_>,
    openat2: bool,
) -> Result<Unpacked> {
    let fd = fs::openat(
        bundle,
        ROOTFS_DIR,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| bundle_err("open", ROOTFS_DIR, e))?;
    let st = fs::fstat(&fd).map_err(|e| bundle_err("stat", ROOTFS_DIR, e))?;
    if let Some(e) = record.entries.get_mut(&Vec::new()) {
        e.refresh(&st);
    }
    let root = Root::new(fd, opts.resolver);
    let read = |path: &[&[u8]]| -> Option<Vec<u8>> {
        let fd = root.open_file(path).ok()?;
        let mut f = cap_std::fs::File::from(fd);
        let mut buf = Vec::new();
        (&mut f).take(4 << 20).read_to_end(&mut buf).ok()?;
        Some(buf)
    };
    let passwd = read(&[b"etc", b"passwd"]);
    let group = read(&[b"etc", b"group"]);
    let user_spec = spec::image_user(image);
    let exec_user = user::resolve(&user_spec, passwd.as_deref(), group.as_deref())
        .map_err(|reason| Error::User { user: user_spec.clone(), reason })?;
    let ids = opts
        .rootless
        .then(|| (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw()));
    let config = spec::runtime_config(image, &exec_user, ids);
    let mut bytes =
        serde_json::to_vec_pretty(&config).map_err(|e| bundle_err("write", CONFIG_FILE, e))?;
    bytes.push(b'\n');
    write_atomic(bundle, CONFIG_FILE, &bytes)?;
    let volumes = spec::volumes(image);
    if !volumes.is_empty() {
        warnings.push(format!(
            "the image declares volumes ({}): config.json mounts nothing there",
            volumes.join(", ")
        ));
    }
    let paths = record.entries.len();
    record.write(bundle)?;
    Ok(Unpacked {
        manifest: image.manifest_desc.digest.clone(),
        platform: image.platform.clone(),
        layers: image.manifest.layers.len(),
        paths,
        openat2,
        warnings,
    })
}
