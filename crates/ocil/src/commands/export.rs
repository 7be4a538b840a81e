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
use ocil_layout::atomic::AtomicFile;
use ocil_layout::{Compression, Layout};
use serde::Serialize;

use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};
use ocil_layout::image_ref::Transport;

pub(crate) const HELP: &str = "Export images of one or more layouts into one archive.

DIR exports every entry of DIR's index.json; DIR:TAG or DIR@DIGEST one image. Give several to put images of several layouts into one archive: each blob is written once. Referrers of the exported images found in the sources' stores (signatures, SBOMs: documents whose `subject` names an exported manifest) come along (--no-referrers to leave them). The archive's index.json lists the exported entries with their tags and annotations; two sources giving one tag to different images is an error.

Formats: --format oci (default) writes an image layout in a tar (skopeo's oci-archive:, ocil import). --format docker adds Docker's manifest.json (what docker load reads), as Docker 25+ docker save does, so both kinds of loaders accept the archive (skopeo's docker-archive: too). Its RepoTags need NAME:TAG: an entry's full name (io.containerd.image.name) is kept, else the tag itself when it is a full name, else --repo gives the NAME; a bare tag without a name is an error, and so is a NAME:TAG given to two images. An index entry gives the image of --platform (or its only image). zstd layers are refused in docker format.

`-o oci-archive:FILE` and `-o docker-archive:FILE` choose the format as --format does (skopeo's spelling); any other FILE is a plain path.

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
    /// The archive to write (FILE, `oci-archive:FILE`, `docker-archive:FILE`), or `-` for stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
    /// Archive format
    #[arg(long, value_enum)]
    pub(crate) format: Option<FormatArg>,
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
    #[command(flatten)]
    pub(crate) report: ReportArgs,
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

/// Extensions of compressions `ocil export` reads but does not write: a file so named would
/// hold a plain tar under a name that says otherwise.
const NOT_WRITTEN: [&str; 9] =
    [".xz", ".txz", ".bz2", ".tbz2", ".tbz", ".lz4", ".lzma", ".lz", ".z"];

/// The compression a file name asks for.
fn compression_of(path: &Path) -> Result<Compression> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    Ok(if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Compression::Gzip
    } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") || name.ends_with(".tar.zstd") {
        Compression::Zstd
    } else if let Some(ext) = NOT_WRITTEN.iter().find(|e| name.ends_with(*e)) {
        bail!(
            "`{}`: ocil export writes .tar, .tar.gz (.tgz) or .tar.zst (.tzst), not `{ext}` (ocil reads xz and bzip2 archives; to write one, pipe: `-o - | xz > FILE`)",
            path.display()
        );
    } else {
        Compression::None
    })
}

/// `-o`: a plain path, unless it spells a transport: `oci-archive:FILE` and
/// `docker-archive:FILE` choose the format (and must agree with --format).
fn output_and_format(a: &ExportArgs) -> Result<(PathBuf, FormatArg)> {
    let text = a.output.to_string_lossy();
    let explicit = ocil_layout::image_ref::explicit_transport(&text);
    if explicit.is_none() || a.output.exists() {
        return Ok((a.output.clone(), a.format.unwrap_or(FormatArg::Oci)));
    }
    let target = Target::parse_destination(&text)?;
    let implied = match target.image.transport() {
        Transport::OciArchive => FormatArg::Oci,
        Transport::DockerArchive => FormatArg::Docker,
        _ => bail!(
            "`{text}` is a layout directory: `ocil export` writes an archive (`ocil copy` copies into a layout)"
        ),
    };
    if target.reference.is_some() {
        bail!(
            "`{text}`: naming the image in the output is not supported: the archive keeps the sources' tags (--repo gives docker's RepoTags a name)"
        );
    }
    if let Some(f) = a.format
        && f != implied
    {
        let (spelled, asked) = match implied {
            FormatArg::Oci => ("oci", "docker"),
            FormatArg::Docker => ("docker", "oci"),
        };
        bail!("`{text}` asks for --format {spelled}, but --format {asked} is given");
    }
    Ok((target.dir, implied))
}

pub(crate) fn run(mut a: ExportArgs) -> Result<Outcome> {
    let (output, format) = output_and_format(&a)?;
    a.output = output;
    let stdout = a.output.as_os_str() == "-";
    if stdout && a.report.json {
        bail!("--json needs -o FILE: with `-o -`, stdout carries the archive");
    }
    if stdout && std::io::stdout().is_terminal() {
        bail!(
            "refusing to write a binary archive to a terminal: redirect stdout (`-o - > FILE`, `| ssh host ocil import - DIR`) or give -o FILE"
        );
    }
    if format != FormatArg::Docker {
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
        None => compression_of(&a.output)?,
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
    let bars = a.report.bars();
    let opts = ExportOptions {
        format: match format {
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
        let file = create_output(&a.output)?;
        let mut out = BufWriter::with_capacity(1 << 20, WriteBehind::new(file.file()));
        let report = ocil_archive::export(&sources, &mut out, &opts)
            .with_context(|| format!("cannot export to {shown}"))?;
        out.flush().with_context(|| format!("cannot write {shown}"))?;
        drop(out);
        file.commit().with_context(|| format!("cannot write {shown}"))?;
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
    if a.report.json {
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
        if !a.report.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
        return Ok(());
    }
    if a.report.quiet {
        // The result is the file.
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
    file: &'a cap_std::fs::File,
    written: u64,
    kicked: u64,
}

impl<'a> WriteBehind<'a> {
    fn new(file: &'a cap_std::fs::File) -> Self {
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

/// The output file, unnamed until it is complete (`ocil_layout::atomic::AtomicFile`).
fn create_output(path: &Path) -> Result<AtomicFile> {
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
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        bail!("`{}` is not a file name", path.display());
    };
    let dir = cap_std::fs::Dir::open_ambient_dir(&parent, cap_std::ambient_authority())
        .with_context(|| format!("cannot open `{}`", parent.display()))?;
    AtomicFile::create(&dir, &name)
        .with_context(|| format!("cannot create a file in `{}`", parent.display()))
}
