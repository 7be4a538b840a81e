//! `ocil pull REF DIR[:TAG]`: an image of a registry into a layout, through the one copy
//! engine (`ocil_transfer::copy` over an `ocil_registry::RegistryStore`).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use ocil_layout::Reference;
use ocil_layout::image_ref::RegistryRef;
use ocil_registry::RegistryStore;
use ocil_transfer::{CopyOptions, CopyReport};
use serde::Serialize;

use crate::progress::ReportArgs;
use crate::registry::{self, ReferrersArgs, RegistryArgs};
use crate::target::Target;
use crate::{Outcome, destination, output};

pub(crate) const HELP: &str = "Pull an image from a registry into a layout.

REF is what docker takes: `busybox` is docker.io/library/busybox:latest, `host:5000/app:v1`, `app@sha256:...`; `docker://REF` too. DIR is created as a layout when it does not exist; DIR:TAG tags the image (default: REF's tag; a digest alone gives an untagged entry).
A multi-platform index is pulled whole (every platform); --platform os/arch[/variant] (repeatable) keeps only those platforms' images (and their attestations) in a new index, whose digest therefore differs from the registry's (the pull says so).
Manifests are asked for with HEAD first, then fetched by digest unless DIR already has them; each manifest's bytes are checked against the digest asked for and the registry's Docker-Content-Digest, and capped at 4 MiB. Blobs DIR already has are skipped; the others stream into temp files in DIR's store, 4 at a time, hashed as they arrive and named only when digest and size match; a dropped connection resumes with a Range request. Nondistributable (foreign) layers are left out unless --include-foreign.
Referrers (signatures, SBOMs: manifests whose subject is a pulled manifest) come along, recursively: --referrers auto asks the registry's referrers API and, where it has none (a 404), reads the sha256-<hex> tag that clients keep instead; api or tag uses only one; none pulls no referrers.
The tag is written last, in one index.json update under DIR's lock: a pull that fails or is killed leaves DIR valid, with no tag naming missing content (blobs that landed wait for a retry or a gc).
Plain http is used only for loopback registries (127.0.0.0/8, ::1, localhost) unless --plain-http; --tls-verify=false skips certificate checks. --creds USER:PASS logs in (HTTP Basic, or the registry's token server); credentials are never printed, and never sent to another host (a redirect to blob storage drops them).";

#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    /// The image: NAME[:TAG] or NAME@DIGEST as docker takes it (with or without docker://)
    pub(crate) reference: String,
    /// The layout directory (created when it does not exist); DIR:TAG tags the image
    pub(crate) destination: String,
    /// Keep only this platform's image of an index, os/arch[/variant] (repeatable; the index
    /// is rewritten)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub(crate) platform: Vec<String>,
    /// Also pull nondistributable (foreign) layers
    #[arg(long)]
    pub(crate) include_foreign: bool,
    /// Move a tag of DIR that names a different image
    #[arg(long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) referrers: ReferrersArgs,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// What a pull or a copy from a registry printed as JSON.
#[derive(Serialize)]
pub(crate) struct JsonPull<'a> {
    pub(crate) source: String,
    pub(crate) images: Vec<JsonImage<'a>>,
    pub(crate) blobs: usize,
    pub(crate) present: usize,
    pub(crate) copied: usize,
    pub(crate) bytes: u64,
    pub(crate) referrers: usize,
    pub(crate) seconds: f64,
    pub(crate) foreign_skipped: usize,
    pub(crate) filtered: Vec<JsonFiltered>,
}

#[derive(Serialize)]
pub(crate) struct JsonImage<'a> {
    pub(crate) digest: String,
    pub(crate) media_type: &'a str,
    pub(crate) size: u64,
    pub(crate) tag: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct JsonFiltered {
    pub(crate) from: String,
    pub(crate) to: String,
}

/// The reference the copy engine is given for a registry store: its tag, or its digest.
pub(crate) fn engine_reference(store: &RegistryStore) -> Result<Reference> {
    let Some(root) = store.root() else {
        anyhow::bail!(
            "`docker://{}` names a blob, not an image (`ocil cat` writes a blob)",
            store.reference()
        );
    };
    Ok(match root.ref_name() {
        Some(tag) => Reference::Tag(tag.to_owned()),
        None => Reference::Digest(root.digest.clone()),
    })
}

pub(crate) fn run(a: PullArgs) -> Result<Outcome> {
    let r = registry::parse_reference(&a.reference)?;
    let dest = Target::parse_destination(&a.destination)?;
    let dst_dir = dest.layout_dir("`ocil export` writes archives")?.to_path_buf();
    let tag = match &dest.reference {
        None => None,
        Some(Reference::Tag(t)) => Some(t.clone()),
        Some(Reference::Digest(_)) => {
            anyhow::bail!("`{}`: a pull is given a tag (`DIR:TAG`), not a digest", a.destination)
        }
    };
    let (dst, made) = destination::open_or_create(&dst_dir)?;
    let started = Instant::now();
    let result = (|| {
        // The destination is the store's cache: what it has is not fetched again.
        let local = ocil_layout::Layout::open_ambient(&dst_dir).ok();
        let store = registry::open(&r, &a.registry, local, a.referrers.mode())?;
        let reference = engine_reference(&store)?;
        let bars = a.report.bars().per_blob(a.report.quiet || a.report.json);
        let opts = CopyOptions {
            reference: Some(&reference),
            tag: tag.as_deref(),
            platform: None,
            platforms: &a.platform,
            foreign: a.include_foreign,
            link: false,
            referrers: a.referrers.copied(),
            force: a.force,
            progress: &bars,
        };
        ocil_transfer::copy(&store, &dst, &opts).map_err(anyhow::Error::new)
    })();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            drop(dst);
            made.undo();
            return Err(e)
                .with_context(|| format!("cannot pull `{}` to `{}`", a.reference, a.destination));
        }
    };
    print_report(&r, &dst_dir, &report, started.elapsed().as_secs_f64(), &a.report, "pulled")?;
    Ok(Outcome::Ok)
}

/// The result of a pull (or a copy from a registry): as text, JSON, or digests (`-q`).
pub(crate) fn print_report(
    r: &RegistryRef,
    dst: &Path,
    report: &CopyReport,
    seconds: f64,
    args: &ReportArgs,
    verb: &str,
) -> Result<()> {
    if args.json {
        return output::json(&JsonPull {
            source: format!("docker://{r}"),
            images: report
                .images
                .iter()
                .map(|i| JsonImage {
                    digest: i.descriptor.digest.to_string(),
                    media_type: i.descriptor.media_type.as_str(),
                    size: i.descriptor.size,
                    tag: i.tag.as_deref(),
                })
                .collect(),
            blobs: report.blobs,
            present: report.present,
            copied: report.copied,
            bytes: report.bytes,
            referrers: report.referrers,
            seconds: (seconds * 1000.0).round() / 1000.0,
            foreign_skipped: report.foreign_skipped,
            filtered: report
                .filtered
                .iter()
                .map(|(from, to)| JsonFiltered { from: from.to_string(), to: to.to_string() })
                .collect(),
        });
    }
    let mut out = output::stdout();
    if args.quiet {
        for i in &report.images {
            writeln!(out, "{}", i.descriptor.digest)?;
        }
        out.flush()?;
        return Ok(());
    }
    for (from, to) in &report.filtered {
        output::note(&format!(
            "the index was filtered by --platform: its digest changed from `{from}` to `{to}`"
        ));
    }
    if report.foreign_skipped > 0 {
        output::note(&format!(
            "{} nondistributable layer(s) left out (--include-foreign pulls them)",
            report.foreign_skipped
        ));
    }
    writeln!(
        out,
        "{verb} `docker://{r}` to `{}`: {} blob(s), {} fetched ({}), {} already there{}, in {seconds:.1} s",
        dst.display(),
        report.blobs,
        report.copied,
        output::size(report.bytes),
        report.present,
        if report.referrers > 0 {
            format!(", {} referrer(s)", report.referrers)
        } else {
            String::new()
        },
    )?;
    let rows: Vec<Vec<String>> = report
        .images
        .iter()
        .map(|i| {
            vec![
                i.tag.clone().unwrap_or_else(|| "<untagged>".into()),
                i.descriptor.digest.to_string(),
                i.descriptor.media_type.short().to_owned(),
            ]
        })
        .collect();
    output::table(&mut out, &["TAG", "DIGEST", "TYPE"], &rows)?;
    out.flush()?;
    Ok(())
}
