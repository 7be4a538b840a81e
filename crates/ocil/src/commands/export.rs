//! `ocil export DIR[:REF]... -o FILE|-`: images of one or more layouts into one archive.
//!
//! The output file is written as an unnamed temp file beside FILE (`O_TMPFILE`), fsynced,
//! then given a name and renamed over FILE: a killed or failed export leaves no file at all
//! (where `O_TMPFILE` is not supported, a named `.ocil-tmp-export-*` file that is removed on
//! failure, and left only by a kill).

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ocil_archive::{ArchiveFormat, ExportOptions, ExportReport, ExportSource};
use ocil_layout::{Compression, Layout};
use serde::Serialize;

use crate::progress::Bars;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Export images of one or more layouts into one archive.

DIR exports every entry of DIR's index.json; DIR:TAG or DIR@DIGEST one image. Give several to put images of several layouts into one archive: each blob is written once. Referrers of the exported images found in the sources' stores (signatures, SBOMs: documents whose `subject` names an exported manifest) come along (--no-referrers to leave them). The archive's index.json lists the exported entries with their tags and annotations; two sources giving one tag to different images is an error.

Formats: --format oci (default) writes an image layout in a tar (skopeo's oci-archive:, ocil import). --format docker adds Docker's manifest.json (what docker load reads), as Docker 25+ docker save does, so both kinds of loaders accept the archive (skopeo's docker-archive: too). Its RepoTags need NAME:TAG: NAME is --repo when given, else the entry's io.containerd.image.name, else the tag itself when it is a full name; a bare tag without a name is an error. An index entry gives the image of --platform (or its only image). zstd layers are refused in docker format.

Compression of the whole archive: by FILE's extension (.tar, .tar.gz or .tgz, .tar.zst or .tzst) or --compress. `-o -` writes to stdout (never to a terminal).
The archive is deterministic: fixed entry order (oci-layout, index.json, manifest.json, then manifests and configs, then layers), mtime 0 (or $SOURCE_DATE_EPOCH), uid/gid 0, fixed modes and encoder settings. Every blob is hashed as it is copied; a mismatch aborts the export naming the blob.
The sources are locked for the duration (a concurrent gc waits). FILE appears only complete: it is written to an unnamed temp file beside it and renamed at the end.";

/// The archive format, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FormatArg {
    /// An OCI image layout in a tar
    Oci,
    /// OCI layout plus Docker's manifest.json (docker load)
    Docker,
}

/// The archive's compression, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompressArg {
    /// No compression
    None,
    /// gzip
    Gzip,
    /// zstd
    Zstd,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// DIR, DIR:TAG or DIR@DIGEST (several allowed)
    #[arg(required = true)]
    pub(crate) sources: Vec<String>,
    /// The archive to write, or `-` for stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
    /// Archive format
    #[arg(long, value_enum, default_value = "oci")]
    pub(crate) format: FormatArg,
    /// Compression (default: by FILE's extension; none for stdout)
    #[arg(long, value_enum)]
    pub(crate) compress: Option<CompressArg>,
    /// docker format: repository for tags without a full name (RepoTags NAME:TAG)
    #[arg(long, value_name = "NAME")]
    pub(crate) repo: Option<String>,
    /// docker format: the platform (os/arch[/variant]) to take from index entries
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Leave out referrers found in the sources' stores
    #[arg(long)]
    pub(crate) no_referrers: bool,
    /// Print JSON (needs -o FILE)
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

#[derive(Serialize)]
struct JsonImage<'a> {
    source: &'a str,
    digest: String,
    media_type: &'a str,
    size: u64,
    tag: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonDocker {
    repo_tags: Vec<String>,
    config: String,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    output: String,
    format: &'static str,
    compression: &'static str,
    blobs: usize,
    bytes: u64,
    referrers: usize,
    images: Vec<JsonImage<'a>>,
    docker: Vec<JsonDocker>,
}

/// The compression a file name asks for.
fn compression_of(path: &Path) -> Compression {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Compression::Gzip
    } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") || name.ends_with(".tar.zstd") {
        Compression::Zstd
    } else {
        Compression::None
    }
}

pub(crate) fn run(a: ExportArgs) -> Result<Outcome> {
    let stdout = a.output.as_os_str() == "-";
    if stdout && a.json {
        bail!("--json needs -o FILE: with `-o -`, stdout carries the archive");
    }
    if stdout && std::io::stdout().is_terminal() {
        bail!(
            "refusing to write a binary archive to a terminal: redirect stdout (`-o - > FILE`, `| ssh host ocil import - DIR`) or give -o FILE"
        );
    }
    if a.format != FormatArg::Docker {
        if a.repo.is_some() {
            bail!("--repo is for --format docker (RepoTags); OCI archives keep the sources' tags");
        }
        if a.platform.is_some() {
            bail!("--platform is for --format docker; OCI archives keep whole indexes");
        }
    }
    let compression = match a.compress {
        Some(CompressArg::None) => Compression::None,
        Some(CompressArg::Gzip) => Compression::Gzip,
        Some(CompressArg::Zstd) => Compression::Zstd,
        None if stdout => Compression::None,
        None => compression_of(&a.output),
    };
    let targets: Vec<Target> = a.sources.iter().map(|s| Target::parse(s)).collect::<Result<_>>()?;
    let layouts: Vec<Layout> = targets.iter().map(Target::open).collect::<Result<_>>()?;
    let sources: Vec<ExportSource<'_>> = targets
        .iter()
        .zip(&layouts)
        .map(|(t, l)| ExportSource {
            layout: l,
            name: t.dir.display().to_string(),
            reference: t.reference.clone(),
        })
        .collect();
    let bars = Bars::new(a.quiet);
    let opts = ExportOptions {
        format: match a.format {
            FormatArg::Oci => ArchiveFormat::Oci,
            FormatArg::Docker => ArchiveFormat::Docker,
        },
        compression,
        mtime: crate::epoch::source_date_epoch()?.unwrap_or(0),
        repo: a.repo.clone(),
        platform: a.platform.clone(),
        referrers: !a.no_referrers,
        progress: &bars,
    };
    let shown = if stdout { "stdout".to_owned() } else { format!("`{}`", a.output.display()) };
    let report = if stdout {
        let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let report = ocil_archive::export(&sources, &mut out, &opts)
            .with_context(|| format!("cannot export to {shown}"))?;
        out.flush().context("cannot write to stdout")?;
        report
    } else {
        let file = OutFile::create(&a.output)?;
        let mut out = BufWriter::with_capacity(1 << 20, WriteBehind::new(&file.file));
        let report = ocil_archive::export(&sources, &mut out, &opts)
            .with_context(|| format!("cannot export to {shown}"))?;
        out.flush().with_context(|| format!("cannot write {shown}"))?;
        drop(out);
        file.commit()?;
        report
    };
    print_report(&a, &sources, &shown, opts.format, compression, &report)?;
    Ok(Outcome::Ok)
}

fn print_report(
    a: &ExportArgs,
    sources: &[ExportSource<'_>],
    shown: &str,
    format: ArchiveFormat,
    compression: Compression,
    r: &ExportReport,
) -> Result<()> {
    if a.json {
        return output::json(&JsonReport {
            output: a.output.display().to_string(),
            format: format.as_str(),
            compression: compression.as_str(),
            blobs: r.blobs,
            bytes: r.bytes,
            referrers: r.referrers,
            images: r
                .images
                .iter()
                .map(|i| JsonImage {
                    source: &sources[i.source].name,
                    digest: i.descriptor.digest.to_string(),
                    media_type: i.descriptor.media_type.as_str(),
                    size: i.descriptor.size,
                    tag: i.descriptor.ref_name(),
                })
                .collect(),
            docker: r
                .docker_images
                .iter()
                .map(|(tags, config)| JsonDocker {
                    repo_tags: tags.clone(),
                    config: config.to_string(),
                })
                .collect(),
        });
    }
    let line = format!(
        "exported {} image(s) to {shown} ({}, {}): {} blob(s), {}{}",
        r.images.len(),
        format.as_str(),
        match compression {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        },
        r.blobs,
        output::size(r.bytes),
        if r.referrers > 0 { format!(", {} referrer(s)", r.referrers) } else { String::new() },
    );
    if a.output.as_os_str() == "-" {
        // stdout is the archive: the summary goes to stderr, unless asked to be quiet.
        if !a.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
        return Ok(());
    }
    let mut out = output::stdout();
    writeln!(out, "{line}")?;
    let mut rows = Vec::new();
    for i in &r.images {
        rows.push(vec![
            i.descriptor.ref_name().unwrap_or("<untagged>").to_owned(),
            i.descriptor.digest.to_string(),
            i.descriptor.media_type.short().to_owned(),
            sources[i.source].name.clone(),
        ]);
    }
    output::table(&mut out, &["TAG", "DIGEST", "TYPE", "FROM"], &rows)?;
    for (tags, config) in &r.docker_images {
        let tags = if tags.is_empty() { "<untagged>".to_owned() } else { tags.join(", ") };
        writeln!(out, "docker: {tags} (image ID {config})")?;
    }
    out.flush()?;
    Ok(())
}

/// Bytes written before the kernel is asked to start writing them to disk.
const WRITE_BEHIND: u64 = 16 << 20;

/// A writer that asks the kernel to start writing back what it has written, every
/// [`WRITE_BEHIND`] bytes (`posix_fadvise(DONTNEED)` starts writeback of the range), so the
/// disk works while the export hashes and the final fsync has little left to wait for.
struct WriteBehind<'a> {
    file: &'a std::fs::File,
    written: u64,
    kicked: u64,
}

impl<'a> WriteBehind<'a> {
    fn new(file: &'a std::fs::File) -> Self {
        WriteBehind { file, written: 0, kicked: 0 }
    }
}

impl Write for WriteBehind<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = (&mut &*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.kicked >= WRITE_BEHIND {
            // Advice only: a filesystem that ignores it costs nothing.
            let len = std::num::NonZeroU64::new(self.written - self.kicked);
            let _ = rustix::fs::fadvise(self.file, self.kicked, len, rustix::fs::Advice::DontNeed);
            self.kicked = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The output file: unnamed until it is complete.
struct OutFile {
    file: std::fs::File,
    path: PathBuf,
    parent: PathBuf,
    /// Set when `O_TMPFILE` was not available: the named temp file (removed on drop).
    named: Option<tempfile::TempPath>,
}

impl OutFile {
    fn create(path: &Path) -> Result<OutFile> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if path.is_dir() {
            bail!("`{}` is a directory", path.display());
        }
        if !parent.is_dir() {
            bail!("cannot write `{}`: no such directory `{}`", path.display(), parent.display());
        }
        use rustix::fs::{Mode, OFlags};
        match rustix::fs::open(
            &parent,
            OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(fd) => Ok(OutFile {
                file: std::fs::File::from(fd),
                path: path.into(),
                parent,
                named: None,
            }),
            Err(e)
                if e == rustix::io::Errno::OPNOTSUPP
                    || e == rustix::io::Errno::ISDIR
                    || e == rustix::io::Errno::INVAL =>
            {
                let named = tempfile::Builder::new()
                    .prefix(".ocil-tmp-export-")
                    .tempfile_in(&parent)
                    .with_context(|| {
                        format!("cannot create a temp file in `{}`", parent.display())
                    })?;
                let (file, temp) = named.into_parts();
                Ok(OutFile { file, path: path.into(), parent, named: Some(temp) })
            }
            Err(e) => Err(std::io::Error::from(e))
                .with_context(|| format!("cannot create a file in `{}`", parent.display())),
        }
    }

    /// fsync, name, rename over the target, fsync the directory.
    fn commit(self) -> Result<()> {
        let shown = self.path.display().to_string();
        self.file.sync_all().with_context(|| format!("cannot fsync `{shown}`"))?;
        match self.named {
            Some(temp) => {
                temp.persist(&self.path)
                    .with_context(|| format!("cannot rename into `{shown}`"))?;
            }
            None => {
                use std::os::fd::AsRawFd;
                let tmp = self.parent.join(format!(
                    ".ocil-tmp-export-{}-{}",
                    std::process::id(),
                    self.file.as_raw_fd()
                ));
                let proc = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    proc.as_str(),
                    rustix::fs::CWD,
                    &tmp,
                    rustix::fs::AtFlags::SYMLINK_FOLLOW,
                )
                .map_err(std::io::Error::from)
                .with_context(|| format!("cannot name the archive `{shown}`"))?;
                if let Err(e) = std::fs::rename(&tmp, &self.path) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e).with_context(|| format!("cannot rename into `{shown}`"));
                }
            }
        }
        if let Ok(dir) = std::fs::File::open(&self.parent) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}
