//! `unpack`: an image of any [`Store`] into a runtime bundle: its layers applied in order
//! into the rootfs (each layer's uncompressed digest checked against the config's
//! `diff_ids`), `config.json` generated, and the record written last.

use std::io::Read;

use cap_std::fs::Dir;
use ocil_layout::progress::{Progress, ProgressReader};
use ocil_layout::{Digest, Platform, Reference, Store};
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
    let mut applier = Applier::new(&root, &mut record, apply_opts);
    let total: u64 = image.manifest.layers.iter().map(|l| l.size).sum();
    progress.begin("unpack", Some(total));
    let applied = (|| {
        for (i, (layer, diff_id)) in image.manifest.layers.iter().zip(&image.diff_ids).enumerate() {
            let read_err = |e: std::io::Error| Error::LayerRead {
                position: i + 1,
                digest: layer.digest.clone(),
                source: e,
            };
            let blob = store.open_blob_verified(&layer.digest, Some(layer.size))?;
            let blob = ProgressReader::new(blob, progress);
            let tar = ocil_codec::decompress(std::io::BufReader::with_capacity(256 * 1024, blob))
                .map_err(|e| read_err(std::io::Error::other(e)))?;
            if tar.format.compression().is_none() {
                return Err(read_err(std::io::Error::other(format!(
                    "{} is not a layer compression",
                    tar.format.as_str()
                ))));
            }
            let id = LayerId { index: i as u32, digest: layer.digest.clone() };
            let found = applier.apply_layer(id, tar.reader)?;
            if &found != diff_id {
                return Err(Error::DiffIdMismatch {
                    position: i + 1,
                    digest: layer.digest.clone(),
                    expected: diff_id.to_string(),
                    found,
                });
            }
        }
        Ok(())
    })();
    progress.end();
    applied?;
    let warnings = applier.finish()?.lines();
    Ok((record, warnings, openat2))
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
