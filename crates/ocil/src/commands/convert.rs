//! `ocil convert DIR:REF --to oci|docker`: rewrite an image's (or a whole index's) media
//! types per the Docker <-> OCI table, recompressing layers when asked.

use std::io::Write;

use anyhow::{Context, Result};
use ocil_edit::Platforms;
use ocil_edit::convert::{ConvertOptions, Converted, To};
use ocil_layout::progress::Progress;
use ocil_layout::{Compression, Reference};
use serde::Serialize;

use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Convert an image, or a whole index, between Docker and OCI media types.

Docker and OCI media types correspond one to one (the image spec's list of Docker types): manifest list <-> image index, schema2 manifest <-> image manifest, container config <-> image config, rootfs.diff.tar.gzip <-> layer.v1.tar+gzip, foreign <-> nondistributable +gzip. Only the `mediaType` members change; other fields keep their bytes and order, configs are never rewritten (the image ID stays). An index converts as a whole (its children and itself); --platform converts one platform's image, which the tag then names.
--compress gzip|zstd recompresses distributable layers in another compression (streaming, deterministic: same input, same digests), checking each layer's uncompressed digest against the config's rootfs.diff_ids.
To docker: zstd and uncompressed layers need --compress gzip (zstd is OCI-only: --compress zstd is refused); `subject` and `artifactType` (referrers, artifacts) are refused; annotations are dropped with a warning; attestation manifests in an index are dropped with a warning.
Without --tag, the entry's tag moves to the converted image; with --tag NEW, the original stays. Runs under DIR's lock; index.json is replaced once at the end.";

/// The family to convert to.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ToArg {
    /// OCI image spec media types
    Oci,
    /// Docker schema2 media types
    Docker,
}

/// The layer compression to convert to.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum CompressArg {
    /// gzip (OCI and Docker)
    Gzip,
    /// zstd (OCI only)
    Zstd,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ConvertArgs {
    /// DIR:TAG or DIR@DIGEST (DIR alone when it holds one entry)
    pub(crate) target: String,
    /// The media type family to convert to
    #[arg(long, value_enum)]
    pub(crate) to: ToArg,
    /// Recompress layers
    #[arg(long, value_enum)]
    pub(crate) compress: Option<CompressArg>,
    /// Tag the converted image NEW and leave the original (default: the tag moves)
    #[arg(long, value_name = "NEW")]
    pub(crate) tag: Option<String>,
    /// For an index: convert only this platform's image (os/arch[/variant])
    #[arg(long, conflicts_with = "all_platforms")]
    pub(crate) platform: Option<String>,
    /// For an index: convert it whole (the default)
    #[arg(long)]
    pub(crate) all_platforms: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    before: String,
    after: String,
    media_type: &'a str,
    manifests: usize,
    indexes: usize,
    recompressed: usize,
    tag: Option<&'a str>,
    warnings: &'a [String],
}

pub(crate) fn run(a: ConvertArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let layout = target.open()?;
    let lock = layout.lock().context("cannot lock the layout")?;
    let reference = match &target.reference {
        Some(r) => r.clone(),
        None => {
            let index = layout
                .read_index()
                .with_context(|| format!("cannot read `{}/index.json`", target.dir.display()))?;
            let only = layout.resolve(&index, None)?;
            match only.ref_name() {
                Some(t) => Reference::Tag(t.to_owned()),
                None => Reference::Digest(only.digest),
            }
        }
    };
    let platforms = match &a.platform {
        Some(p) => Platforms::One(Box::new(p.parse::<ocil_layout::Platform>()?)),
        None => Platforms::All,
    };
    let bars = a.report.bars();
    let opts = ConvertOptions {
        reference: &reference,
        to: match a.to {
            ToArg::Oci => To::Oci,
            ToArg::Docker => To::Docker,
        },
        compress: a.compress.map(|c| match c {
            CompressArg::Gzip => Compression::Gzip,
            CompressArg::Zstd => Compression::Zstd,
        }),
        platforms: &platforms,
        new_tag: a.tag.as_deref(),
        progress: &bars,
    };
    // Only recompression moves bytes worth a bar (counted as the layers are read).
    if a.compress.is_some() {
        bars.begin("convert", None);
    }
    let result = ocil_edit::convert::convert(&layout, &lock, &opts);
    bars.end();
    let done = result.with_context(|| format!("cannot convert `{}`", a.target))?;
    drop(lock);
    print(&a, &reference, &done)?;
    Ok(Outcome::Ok)
}

fn print(a: &ConvertArgs, reference: &Reference, c: &Converted) -> Result<()> {
    let tag = a.tag.as_deref().or(match reference {
        Reference::Tag(t) => Some(t.as_str()),
        Reference::Digest(_) => None,
    });
    if a.report.json {
        return output::json(&JsonReport {
            before: c.before.digest.to_string(),
            after: c.after.digest.to_string(),
            media_type: c.after.media_type.as_str(),
            manifests: c.manifests,
            indexes: c.indexes,
            recompressed: c.recompressed,
            tag,
            warnings: &c.warnings,
        });
    }
    for w in &c.warnings {
        output::warn(w);
    }
    let mut out = output::stdout();
    if a.report.quiet {
        writeln!(out, "{}", c.after.digest)?;
        out.flush()?;
        return Ok(());
    }
    writeln!(
        out,
        "{} -> {} ({}): {} manifest(s), {} index(es), {} layer(s) recompressed",
        c.before.digest,
        c.after.digest,
        c.after.media_type.short(),
        c.manifests,
        c.indexes,
        c.recompressed,
    )?;
    if let Some(t) = tag {
        writeln!(out, "{t} -> {}", c.after.digest)?;
    }
    out.flush()?;
    Ok(())
}
