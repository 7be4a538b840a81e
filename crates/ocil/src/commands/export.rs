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
The sources are locked for the duration (a concurrent gc waits). FILE appears only complete: it is written to an unnamed temp file beside it and renamed at the end.

Carrying across an air gap:
--since BASE writes a delta: only the blobs BASE lacks (BASE: a receipt from `ocil receipt` or `ocil import --receipt`, a layout directory, or an archive). The archive's index.json lists every exported entry, and its ocil-bundle.json records BASE's identity and the blobs left out (other tools ignore that file). `ocil import` checks that the site holds every blob left out before it writes anything.
--volume-size SIZE (bytes, or with a unit: 500M, 500MiB, 4G; K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB of 1000) splits the export into uncompressed volumes of at most SIZE bytes each: `-o NAME.tar` writes NAME.001.tar, NAME.002.tar, ... and SHA256SUMS (`sha256sum -c SHA256SUMS`) beside them. Each volume is an OCI archive on its own: its index.json lists the images it holds whole, its ocil-bundle.json the whole bundle (entries, every blob and its volume). `ocil fsck NAME.003.tar` checks one; `ocil import` takes them in any order, tagging an image once it is complete, and names the volumes still missing. Blobs are never split: a blob larger than a volume is refused, naming it and the size that would hold it. With --since, the volumes carry a delta.";

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
    /// Write a delta: only the blobs BASE lacks (a receipt, a layout or an archive)
    #[arg(long, value_name = "BASE")]
    pub(crate) since: Option<String>,
    /// Split into volumes NAME.001.tar, ... of at most SIZE bytes (4G, 500MiB, 1000000)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) volume_size: Option<u64>,
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
    /// A delta: the blobs left out (the base holds them).
    #[serde(skip_serializing_if = "Option::is_none")]
    omitted: Option<usize>,
    /// Volumes: each file, its size and sha256.
    #[serde(skip_serializing_if = "Option::is_none")]
    volumes: Option<Vec<JsonVolume>>,
    /// Volumes: the bundle's identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
}

#[derive(Serialize)]
struct JsonVolume {
    file: String,
    size: u64,
    sha256: String,
    blobs: usize,
    images: usize,
}

/// `--volume-size`: bytes, or a number with a unit (K, M, G, T and KiB, MiB, GiB, TiB are
/// powers of 1024, as `split -b` reads them; KB, MB, GB, TB powers of 1000).
pub(crate) fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!("`{s}` is not a size: give bytes, or a number with K, M, G, T, KiB, MB, ...")
    })?;
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}` (K, M, G, T, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ));
        }
    };
    let size = n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))?;
    if size == 0 {
        return Err("a volume size must be more than 0".into());
    }
    Ok(size)
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
    let since = match &a.since {
        Some(base) => {
            Some(crate::commands::receipt::load_base(base, a.report.quiet || a.report.json)?)
        }
        None => None,
    };
    if (since.is_some() || a.volume_size.is_some()) && format == FormatArg::Docker {
        bail!(
            "--since and --volume-size write OCI archives (docker load needs every layer in one file): leave out --format docker"
        );
    }
    if a.volume_size.is_some() {
        if stdout {
            bail!("--volume-size writes several files: give -o NAME.tar, not `-o -`");
        }
        if compression != Compression::None {
            bail!(
                "--volume-size writes uncompressed volumes (layers are compressed already), so that SIZE bounds each file: give -o NAME.tar"
            );
        }
    }
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
        since: since.as_ref(),
        progress: &bars,
    };
    if let Some(size) = a.volume_size {
        return run_volumes(&a, &sources, &opts, size);
    }
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
    print_report(&a, &sources, &shown, opts.format, compression, &report, None)?;
    Ok(Outcome::Ok)
}

/// What volumes were written, for the report.
struct Written {
    bundle: ocil_layout::Digest,
    files: Vec<(String, ocil_archive::VolumeWritten)>,
}

/// `--volume-size`: the volumes, each an atomic file, then `SHA256SUMS`.
fn run_volumes(
    a: &ExportArgs,
    sources: &[ExportSource<'_>],
    opts: &ExportOptions<'_>,
    size: u64,
) -> Result<Outcome> {
    let file_name = a.output.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some(file_name) = file_name else {
        bail!("`{}` is not a file name", a.output.display());
    };
    let name = file_name.strip_suffix(".tar").unwrap_or(&file_name).to_owned();
    let dir = match a.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let shown = format!("`{}`", a.output.display());
    let vopts = ocil_archive::VolumeOptions { size, name: name.clone() };
    let volumes = ocil_archive::plan_volumes(sources, opts, &vopts)
        .with_context(|| format!("cannot export to {shown}"))?;
    let count = volumes.count();
    opts.progress.begin("export", Some(volumes.bytes()));
    let mut files = Vec::new();
    for v in 1..=count {
        let file = ocil_archive::volume_file_name(&name, v, count);
        let path = dir.join(&file);
        let out = create_output(&path)?;
        let mut w = BufWriter::with_capacity(1 << 20, WriteBehind::new(out.file()));
        let written = volumes
            .write(v, &mut w)
            .with_context(|| format!("cannot export to `{}`", path.display()));
        let written = match written {
            Ok(x) => x,
            Err(e) => {
                opts.progress.end();
                return Err(e);
            }
        };
        w.flush().with_context(|| format!("cannot write `{}`", path.display()))?;
        drop(w);
        out.commit().with_context(|| format!("cannot write `{}`", path.display()))?;
        files.push((file, written));
    }
    opts.progress.end();
    let mut sums = String::new();
    for (file, w) in &files {
        sums.push_str(&format!("{}  {file}\n", w.sha256.encoded()));
    }
    let sums_path = dir.join("SHA256SUMS");
    let out = create_output(&sums_path)?;
    (&mut out.file())
        .write_all(sums.as_bytes())
        .with_context(|| format!("cannot write `{}`", sums_path.display()))?;
    out.commit().with_context(|| format!("cannot write `{}`", sums_path.display()))?;
    let report = volumes.report();
    let written = Written { bundle: volumes.bundle().clone(), files };
    drop(volumes);
    let shown = match (written.files.first(), written.files.last()) {
        (Some((first, _)), Some((last, _))) if count > 1 => {
            format!("{count} volumes `{}` ... `{last}`", dir.join(first).display())
        }
        _ => format!("1 volume `{}`", dir.join(&written.files[0].0).display()),
    };
    print_report(a, sources, &shown, opts.format, Compression::None, &report, Some(&written))?;
    Ok(Outcome::Ok)
}

fn print_report(
    a: &ExportArgs,
    sources: &[ExportSource<'_>],
    shown: &str,
    format: ArchiveFormat,
    compression: Compression,
    r: &ExportReport,
    volumes: Option<&Written>,
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
            omitted: a.since.as_ref().map(|_| r.omitted.len()),
            volumes: volumes.map(|w| {
                w.files
                    .iter()
                    .map(|(file, v)| JsonVolume {
                        file: file.clone(),
                        size: v.size,
                        sha256: v.sha256.to_string(),
                        blobs: v.blobs,
                        images: v.entries,
                    })
                    .collect()
            }),
            bundle: volumes.map(|w| w.bundle.to_string()),
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
    if a.since.is_some() {
        let left: u64 = r.omitted.iter().map(|b| b.size).sum();
        writeln!(
            out,
            "delta: {} blob(s) ({}) left out, the base holds them",
            r.omitted.len(),
            output::size(left)
        )?;
    }
    if let Some(w) = volumes {
        writeln!(out, "bundle {}: {} volume(s), and SHA256SUMS", w.bundle, w.files.len())?;
        let rows: Vec<Vec<String>> = w
            .files
            .iter()
            .map(|(file, v)| {
                vec![
                    file.clone(),
                    output::size(v.size),
                    v.blobs.to_string(),
                    v.entries.to_string(),
                    v.sha256.to_string(),
                ]
            })
            .collect();
        output::table(&mut out, &["VOLUME", "SIZE", "BLOBS", "WHOLE IMAGES", "SHA256"], &rows)?;
    }
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
pub(crate) fn create_output(path: &Path) -> Result<AtomicFile> {
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
