//! `ocil append DIR:REF PATH... [--file SRC:DEST]...`: each PATH (a directory, or a tar:
//! plain, gzip, zstd, xz or bzip2) becomes one layer on top of the image; the `--file`
//! sources, each at its DEST, one more layer.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_edit::append::{NewLayer, append_layers};
use ocil_edit::layer::{self, DirOptions, StagedLayer};
use ocil_edit::{EditTarget, History, Platforms};
use ocil_layout::progress::{Progress, ProgressReader, ProgressWriter};
use ocil_layout::{Compression, Layout, Reference};

use crate::commands::edited::edited_json;
use crate::progress::Bars;
use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Append layers to an image: each PATH becomes one layer, and the --file sources one more.

A directory is packed as a reproducible tar: entries sorted by name, every mtime SOURCE_DATE_EPOCH (default 2000-01-01T00:00:00Z), uid/gid 0 and no user names (--keep-owner keeps the numeric ids), no xattrs, permission bits kept (setuid, sticky too), symlinks stored as symlinks and never followed, files linked several times inside the tree stored as hard links, FIFOs kept. Sockets are skipped with a warning; device files are refused (build such a layer as a tar, as root).
--file SRC:DEST (repeatable, as `umoci insert` and `crane append` do): the file or directory SRC goes at path DEST inside the image (`/usr/bin/app`; the leading `/` is optional), with its permission bits; a directory goes whole, packed as above. Every --file goes into one layer, after the PATH layers. DEST may not be the root, climb out with `..`, or overlap another DEST; its parent directories are not stored (unpackers create missing ones; existing ones keep their mode). SRC:DEST splits at the last `:` whose left side exists; SRC itself is followed when it is a symlink.
A file is read as a tar (plain, gzip, zstd, xz or bzip2): it is checked (a tar, not truncated, no absolute or `..` names or hard-link targets) and stored as it is, re-compressed as --compress says; its diff_id is the digest of the uncompressed tar.
The manifest's layers, the config's rootfs.diff_ids and history (created from --created, else SOURCE_DATE_EPOCH, else 2000-01-01T00:00:00Z like the packed files: umoci 0.4's stat crashes on history entries without one) each get one entry per PATH. Docker-typed images get Docker layer types (gzip only: zstd and none are refused), OCI images OCI types.
Layers are built before the layout is locked; under the lock they are published and index.json is replaced once. Without --tag the tag moves to the new image; with --tag NEW the old one stays.
For an index (or manifest list): --platform edits one image, --all-platforms every image (attestations stay attached).";

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompressArg {
    /// gzip, level 6 (docker's and umoci's default)
    Gzip,
    /// zstd, level 3 (OCI images only)
    Zstd,
    /// A plain tar (OCI images only)
    None,
}

impl CompressArg {
    pub(crate) fn compression(self) -> Compression {
        match self {
            CompressArg::Gzip => Compression::Gzip,
            CompressArg::Zstd => Compression::Zstd,
            CompressArg::None => Compression::None,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct AppendArgs {
    /// DIR:TAG or DIR@DIGEST of the image (or index)
    pub(crate) target: String,
    /// Directories or tar files, one layer each, in order
    #[arg(required_unless_present = "files")]
    pub(crate) paths: Vec<PathBuf>,
    /// Put the file or directory SRC at path DEST of one more layer (repeatable)
    #[arg(long = "file", value_name = "SRC:DEST")]
    pub(crate) files: Vec<String>,
    /// Tag the new image NEW (the old tag stays where it was)
    #[arg(long, value_name = "NEW")]
    pub(crate) tag: Option<String>,
    /// Layer compression
    #[arg(long, value_enum, default_value = "gzip")]
    pub(crate) compress: CompressArg,
    /// Keep the numeric uid/gid of packed files (default: 0)
    #[arg(long)]
    pub(crate) keep_owner: bool,
    /// For an index: edit this platform's image (os/arch[/variant])
    #[arg(long, conflicts_with = "all_platforms")]
    pub(crate) platform: Option<String>,
    /// For an index: edit every image
    #[arg(long)]
    pub(crate) all_platforms: bool,
    /// `comment` of the history entries
    #[arg(long, value_name = "C")]
    pub(crate) history_comment: Option<String>,
    /// `created` of the history entries (RFC 3339); default: SOURCE_DATE_EPOCH, else 2000-01-01
    #[arg(long, value_name = "T")]
    pub(crate) created: Option<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) fn run(a: AppendArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let Some(reference) = &target.reference else {
        anyhow::bail!("`ocil append` needs DIR:TAG or DIR@DIGEST, got `{}`", a.target);
    };
    if let Some(t) = &a.tag {
        ocil_layout::reference::validate_tag(t).with_context(|| format!("invalid --tag `{t}`"))?;
    }
    let platforms = match (&a.platform, a.all_platforms) {
        (Some(p), _) => Platforms::One(Box::new(p.parse::<ocil_layout::Platform>()?)),
        (None, true) => Platforms::All,
        (None, false) => Platforms::Unspecified,
    };
    let mtime = crate::epoch::source_date_epoch()?.unwrap_or(layer::DEFAULT_MTIME);
    // History entries always carry `created` (the packed files' mtime by default): umoci
    // 0.4's `stat` crashes on a history entry without one.
    let created = match &a.created {
        Some(c) => {
            crate::epoch::check_rfc3339("--created", c)?;
            c.clone()
        }
        None => ocil_codec::epoch::rfc3339(mtime)?,
    };
    let compression = a.compress.compression();
    let opts = DirOptions { mtime, keep_owner: a.keep_owner };
    let layout = target.open()?;
    // Bars only on a terminal, and not with -q or --json.
    let bars = a.report.bars();

    // Open every --file source before building anything: a typo fails fast.
    let mut files = a.files.iter().map(|f| open_file_arg(f)).collect::<Result<Vec<_>>>()?;
    // In the layer's order (by DEST), so the history and the output do not depend on the
    // order of the flags either.
    files.sort_by(|x, y| x.dest.as_bytes().cmp(y.dest.as_bytes()));

    // Build every layer before taking the lock: they are staged (locked temp files) until
    // the edit publishes them.
    // The --file layer goes last, but is built first: overlapping destinations fail before
    // any directory is packed.
    let files_layer = if !files.is_empty() {
        let mut placed = Vec::new();
        let mut shown = Vec::new();
        let mut said = Vec::new();
        for f in files {
            said.push(format!("{} {} -> /{}", f.what, base_name(&f.src), f.dest));
            shown.push((f.src.display().to_string(), format!("/{}", f.dest)));
            placed.push(f.placed);
        }
        let staged =
            packed(&layout, compression, &bars, |out| layer::pack_files(placed, out, &opts))
                .context("cannot pack the --file sources")?;
        for w in &staged.warnings {
            output::warn(&format!("--file: {w}"));
        }
        let history = History {
            created: Some(created.clone()),
            created_by: Some(format!("ocil append: {}", said.join("; "))),
            comment: a.history_comment.clone(),
            ..History::default()
        };
        Some((NewLayer { layer: staged, history }, Origin::Files(shown)))
    } else {
        None
    };
    let mut layers = Vec::new();
    let mut origins = Vec::new();
    for path in &a.paths {
        let (staged, what) = build(&layout, path, &opts, compression, &bars)?;
        for w in &staged.warnings {
            output::warn(&format!("{}: {w}", path.display()));
        }
        if what == "tar" && a.keep_owner {
            output::warn(&format!(
                "{}: --keep-owner applies to directories; a tar is stored with the owners it has",
                path.display()
            ));
        }
        let history = History {
            created: Some(created.clone()),
            created_by: Some(format!("ocil append: {what} {}", base_name(path))),
            comment: a.history_comment.clone(),
            ..History::default()
        };
        layers.push(NewLayer { layer: staged, history });
        origins.push(Origin::Path(path.clone()));
    }
    if let Some((layer, origin)) = files_layer {
        layers.push(layer);
        origins.push(origin);
    }
    let summary: Vec<(String, String, u64)> = layers
        .iter()
        .map(|l| {
            (l.layer.blob.digest().to_string(), l.layer.diff_id.to_string(), l.layer.blob.size())
        })
        .collect();

    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", target.dir.display()))?;
    let edit = EditTarget { reference, platforms, new_tag: a.tag.as_deref() };
    let edited = append_layers(&layout, &lock, &edit, layers)
        .with_context(|| format!("cannot append to `{}`", a.target))?;
    drop(lock);

    if a.report.json {
        let mut v = edited_json(&target.dir, &edited, reference, a.tag.as_deref());
        let layers: Vec<serde_json::Value> = origins
            .iter()
            .zip(&summary)
            .map(|(origin, (digest, diff_id, size))| {
                let mut v = match origin {
                    Origin::Path(p) => serde_json::json!({"source": p.display().to_string()}),
                    Origin::Files(files) => {
                        let files: Vec<serde_json::Value> = files
                            .iter()
                            .map(|(src, dest)| serde_json::json!({"source": src, "dest": dest}))
                            .collect();
                        serde_json::json!({"files": files})
                    }
                };
                v["digest"] = digest.as_str().into();
                v["diff_id"] = diff_id.as_str().into();
                v["size"] = (*size).into();
                v["compression"] = compression.as_str().into();
                v
            })
            .collect();
        v.insert("layers".into(), layers.into());
        output::json(&v)?;
        return Ok(Outcome::Ok);
    }
    let mut out = output::stdout();
    use std::io::Write as _;
    if a.report.quiet {
        writeln!(out, "{}", edited.after.digest)?;
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    for (origin, (digest, diff_id, size)) in origins.iter().zip(&summary) {
        let from = match origin {
            Origin::Path(p) => p.display().to_string(),
            Origin::Files(files) => files
                .iter()
                .map(|(src, dest)| format!("{src} -> {dest}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        writeln!(
            out,
            "layer {digest} ({}, {}) diff_id {diff_id} <- {from}",
            compression.as_str(),
            output::size(*size),
        )?;
    }
    for image in &edited.images {
        let platform = image.platform.as_deref().map(|p| format!(" [{p}]")).unwrap_or_default();
        writeln!(out, "image {} -> {}{platform}", image.before, image.after)?;
    }
    let name = match (&a.tag, reference) {
        (Some(t), _) => t.clone(),
        (None, Reference::Tag(t)) => t.clone(),
        (None, Reference::Digest(_)) => "entry".into(),
    };
    writeln!(out, "{name} -> {}", edited.after.digest)?;
    out.flush()?;
    Ok(Outcome::Ok)
}

/// Where a layer came from: a PATH, or the --file sources (as given, and their DEST).
enum Origin {
    Path(PathBuf),
    Files(Vec<(String, String)>),
}

/// One `--file SRC:DEST`, opened.
struct FileArg {
    src: PathBuf,
    dest: String,
    /// `file` or `directory`, for the history.
    what: &'static str,
    placed: layer::Placed,
}

/// Split `SRC:DEST` at the last `:` whose left side exists, normalise DEST, open SRC
/// (following it when it is a symlink).
fn open_file_arg(spec: &str) -> Result<FileArg> {
    let split = spec
        .rmatch_indices(':')
        .map(|(i, _)| (&spec[..i], &spec[i + 1..]))
        .find(|(src, _)| !src.is_empty() && Path::new(src).exists());
    let (src, dest) = match split {
        Some(s) => s,
        None => match spec.rsplit_once(':') {
            Some((src, _)) if !src.is_empty() => {
                anyhow::bail!("--file `{spec}`: no such file or directory `{src}`")
            }
            _ => anyhow::bail!(
                "--file needs SRC:DEST (a local path, then a path in the image), got `{spec}`"
            ),
        },
    };
    let dest = layer::layer_path(dest).with_context(|| format!("invalid --file `{spec}`"))?;
    let src = PathBuf::from(src);
    let meta = fs_err::metadata(&src).with_context(|| format!("invalid --file `{spec}`"))?;
    let (source, what) = if meta.is_dir() {
        let dir = Dir::open_ambient_dir(&src, ambient_authority())
            .with_context(|| format!("cannot open directory `{}`", src.display()))?;
        (layer::Source::Dir(dir), "directory")
    } else if meta.is_file() {
        let file = fs_err::File::open(&src)?;
        (layer::Source::File(cap_std::fs::File::from_std(file.into_parts().0)), "file")
    } else {
        anyhow::bail!("--file `{spec}`: `{}` is neither a file nor a directory", src.display());
    };
    Ok(FileArg { src, placed: layer::Placed { dest: dest.clone(), source }, dest, what })
}

/// Build one layer: a directory is packed, a file read as a tar.
fn build(
    layout: &Layout,
    path: &Path,
    opts: &DirOptions,
    compression: Compression,
    bars: &Bars,
) -> Result<(StagedLayer, &'static str)> {
    let meta = fs_err::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("no such file or directory `{}`", path.display())
        }
        _ => anyhow::Error::new(e),
    })?;
    if meta.is_dir() {
        let dir = Dir::open_ambient_dir(path, ambient_authority())
            .with_context(|| format!("cannot open directory `{}`", path.display()))?;
        let staged = packed(layout, compression, bars, |out| layer::pack_dir(&dir, out, opts))
            .with_context(|| format!("cannot pack directory `{}`", path.display()))?;
        Ok((staged, "directory"))
    } else {
        let file = fs_err::File::open(path)?;
        // The bar counts the file's bytes as they are read, against its size.
        bars.begin("layer", Some(meta.len()));
        let staged = layer::tar_layer(
            layout,
            ProgressReader::new(file, bars),
            &path.display().to_string(),
            compression,
        );
        bars.end();
        let staged =
            staged.with_context(|| format!("cannot use `{}` as a layer", path.display()))?;
        Ok((staged, "tar"))
    }
}

/// A layer packed by `pack` (a directory, or the --file sources), staged in `layout`, with a
/// bar counting the tar's bytes as they are written (their total is not known before).
fn packed(
    layout: &Layout,
    compression: Compression,
    bars: &Bars,
    pack: impl FnOnce(&mut dyn std::io::Write) -> ocil_edit::Result<Vec<String>>,
) -> ocil_edit::Result<StagedLayer> {
    let mut sink = ProgressWriter::new(layer::LayerSink::new(layout, compression)?, bars);
    bars.begin("layer", None);
    let warnings = pack(&mut sink);
    bars.end();
    sink.into_inner().finish(warnings?)
}

/// The last component of a path (`.` and `..` resolved by name only), for `created_by`:
/// the same directory under another temp path gives the same history.
fn base_name(path: &Path) -> String {
    match path.file_name() {
        Some(n) => n.to_string_lossy().into_owned(),
        None => path.display().to_string(),
    }
}
