//! `ocil push SRC[:REF] REF`: an image of a layout (or an archive read in place) into a
//! registry, through the one copy engine (`ocil_transfer::copy` into an
//! `ocil_registry::RegistryDest`). `ocil copy SRC docker://REF` comes here too.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use ocil_layout::image_ref::RegistryRef;
use ocil_layout::{Reference, Store};
use ocil_registry::RegistryDest;
use ocil_transfer::{CopyOptions, CopyReport};
use serde::Serialize;

use crate::commands::pull::{JsonFiltered, JsonImage};
use crate::progress::ReportArgs;
use crate::registry::{self, ReferrersArgs, RegistryArgs};
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Push an image of a layout (or an archive) to a registry.

SRC is a layout, DIR, DIR:TAG or DIR@DIGEST (DIR alone: its only image; every image when it holds several and REF names no tag, each under its own tag, by digest when it has none: a push stops at the first that fails, unless --keep-going, which goes on and exits 1 with a report per image), or an archive read in place (`oci-archive:FILE[:NAME]`, `docker-archive:FILE[:NAME]`, an uncompressed FILE). REF is what docker takes, with or without docker://: `host:5000/app:v1`; its tag names the image in the registry (`latest` when REF has none, as docker does); `host:5000/app@sha256:...` pushes by digest only, and the digest must be the image's.
A multi-platform index is pushed whole (every platform); --platform os/arch[/variant] (repeatable) pushes a new index with only those platforms' images (and their attestations), whose digest therefore differs (the push says so).
Order: the blobs the registry lacks (asked with HEAD; several at a time), then the manifests over them, then the indexes, referrers after their subjects, and the tag last: a push that fails or is killed leaves no tag naming missing content. Manifests are PUT with their exact bytes and their own media type, so every digest stays the same.
Uploads are docker's: POST, one streamed PATCH of the whole blob, then PUT ?digest=; a registry that refuses the PATCH gets a monolithic PUT with the body. Any failure (a dropped connection, a 5xx, a 429) starts a fresh upload from the blob's first byte, never from an offset the registry reports, up to 4 times with backoff.
Referrers of the image found in SRC (signatures, SBOMs) are pushed after their subject. A registry without the referrers API (one that does not answer OCI-Subject) cannot list them: --referrers auto (the default) then adds each to the index under the sha256-<hex> tag, merged with what it lists; tag always does, api never does; none pushes no referrers.
Nondistributable (foreign) layers are not pushed unless --include-foreign.
Plain http is used only for loopback registries (127.0.0.0/8, ::1, localhost) unless --plain-http; --tls-verify=false skips certificate checks. --creds USER:PASS logs in (HTTP Basic, or the registry's token server); credentials are never printed.";

#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// The image: DIR, DIR:TAG or DIR@DIGEST (or an archive, FILE[:NAME])
    pub(crate) source: String,
    /// Where: NAME[:TAG] or NAME@DIGEST as docker takes it (with or without docker://)
    pub(crate) reference: String,
    /// Keep only this platform's image of an index, os/arch[/variant] (repeatable; the index
    /// is rewritten)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub(crate) platform: Vec<String>,
    /// Also push nondistributable (foreign) layers
    #[arg(long)]
    pub(crate) include_foreign: bool,
    /// With several images (SRC without a tag, REF without one): go on past a failed one,
    /// then exit 1 with a report per image
    #[arg(long)]
    pub(crate) keep_going: bool,
    #[command(flatten)]
    pub(crate) referrers: ReferrersArgs,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// What a push printed as JSON.
#[derive(Serialize)]
struct JsonPush<'a> {
    destination: String,
    images: Vec<JsonImage<'a>>,
    blobs: usize,
    present: usize,
    uploaded: usize,
    mounted: usize,
    bytes: u64,
    referrers: usize,
    seconds: f64,
    foreign_skipped: usize,
    filtered: Vec<JsonFiltered>,
}

/// What to push, and how.
pub(crate) struct PushPlan<'a> {
    /// SRC's text, for messages.
    pub(crate) source: &'a str,
    /// The image of SRC (`None`: its only one).
    pub(crate) reference: Option<&'a Reference>,
    /// One platform's image of the index (`ocil copy --platform`).
    pub(crate) platform: Option<&'a str>,
    /// The platforms a filtered index keeps (`--platform` of `push`).
    pub(crate) platforms: &'a [String],
    /// Push foreign layers.
    pub(crate) foreign: bool,
    /// Push referrers.
    pub(crate) referrers: bool,
    /// What the summary says was done (`pushed`, `copied`).
    pub(crate) verb: &'a str,
    /// The destination names a tag or digest itself (else each image of a SRC holding
    /// several goes under its own tag).
    pub(crate) named: bool,
    /// Go on past an image that fails (several images), then exit 1.
    pub(crate) keep_going: bool,
}

/// Whether a reference as typed names a tag or a digest (`host/app` does not; the parser
/// says `latest` for it).
pub(crate) fn names_tag(text: &str) -> bool {
    let text = text.strip_prefix("docker://").unwrap_or(text);
    let last = text.rsplit('/').next().unwrap_or(text);
    last.contains([':', '@'])
}

/// The tag an `index.json` entry is pushed under: its tag (of its full name, when it has
/// one), else none (pushed by digest).
fn entry_tag(entry: &ocil_layout::Descriptor) -> Option<String> {
    entry.ref_name().map(str::to_owned).or_else(|| {
        entry
            .annotation(ocil_layout::ANNOTATION_CONTAINERD_NAME)
            .map(|full| ocil_layout::tags::split_name(full).0)
    })
}

/// Push `plan`'s image of `src` into `dst` (the repository `r` names) through the engine,
/// and print what it did.
pub(crate) fn push_into(
    src: &dyn Store,
    r: &RegistryRef,
    dst: &RegistryDest,
    plan: &PushPlan<'_>,
    report: &ReportArgs,
) -> Result<Outcome> {
    let started = Instant::now();
    let index = src.read_index()?;
    let reference = match plan.reference {
        Some(reference) => reference.clone(),
        None => match index.manifests.as_slice() {
            [only] => Reference::Digest(only.digest.clone()),
            [] => anyhow::bail!("`{}` holds no image", plan.source),
            many if plan.named => anyhow::bail!(
                "`{}` holds {} images: name one (`{}:TAG`), or push each under its own tag to `docker://{}` (no tag)",
                plan.source,
                many.len(),
                plan.source,
                r.name()
            ),
            _ => return push_each(src, &index, r, dst, plan, report),
        },
    };
    let mut reference = reference;
    if let Some(want) = r.digest() {
        if plan.platform.is_some() || !plan.platforms.is_empty() {
            anyhow::bail!(
                "`docker://{r}` names a digest: --platform would push another (push by tag)"
            );
        }
        let found = ocil_layout::store::resolve(src, &index, Some(&reference))?;
        if &found.digest != want {
            anyhow::bail!(
                "`{}` is `{}`, not the digest `docker://{r}` names",
                plan.source,
                found.digest
            );
        }
        // No tag: the image is named by its digest alone (SRC's tag is not taken along).
        reference = Reference::Digest(found.digest);
    }
    let bars = report.bars().per_blob(report.quiet || report.json);
    let opts = CopyOptions {
        reference: Some(&reference),
        tag: r.tag(),
        platform: plan.platform,
        platforms: plan.platforms,
        foreign: plan.foreign,
        link: false,
        referrers: plan.referrers,
        force: true,
        progress: &bars,
    };
    let done = ocil_transfer::copy(src, dst, &opts)?;
    print_report(plan.verb, plan.source, r, &done, started.elapsed().as_secs_f64(), report)?;
    Ok(Outcome::Ok)
}

/// One image of several, as `--json` reports it.
#[derive(Serialize)]
struct JsonEach {
    source: String,
    destination: String,
    digest: String,
    ok: bool,
    error: Option<String>,
    uploaded: usize,
    mounted: usize,
    present: usize,
    bytes: u64,
}

/// Every entry of SRC's index, each under its own tag (by digest when it has none), in
/// turn; past a failure only with `--keep-going` (then exit 1, with a report per image).
fn push_each(
    src: &dyn Store,
    index: &ocil_layout::Index,
    r: &RegistryRef,
    dst: &RegistryDest,
    plan: &PushPlan<'_>,
    report: &ReportArgs,
) -> Result<Outcome> {
    let mut each = Vec::with_capacity(index.manifests.len());
    for entry in &index.manifests {
        let started = Instant::now();
        let tag = entry_tag(entry);
        let label = match &tag {
            Some(t) => format!("{}:{t}", plan.source),
            None => format!("{}@{}", plan.source, entry.digest),
        };
        let target = match &tag {
            Some(t) => format!("{}:{t}", r.name()),
            None => format!("{}@{}", r.name(), entry.digest),
        };
        let one = (|| -> Result<(RegistryRef, CopyReport)> {
            let target = registry::parse_reference(&target)?;
            let reference = Reference::Digest(entry.digest.clone());
            let bars = report.bars().per_blob(report.quiet || report.json);
            let opts = CopyOptions {
                reference: Some(&reference),
                tag: target.tag(),
                platform: None,
                platforms: plan.platforms,
                foreign: plan.foreign,
                link: false,
                referrers: plan.referrers,
                force: true,
                progress: &bars,
            };
            let done = ocil_transfer::copy(src, dst, &opts)?;
            Ok((target, done))
        })();
        let seconds = started.elapsed().as_secs_f64();
        match one {
            Ok((target, done)) => {
                if !report.json {
                    print_report(plan.verb, &label, &target, &done, seconds, report)?;
                }
                each.push(JsonEach {
                    source: label,
                    destination: format!("docker://{target}"),
                    digest: entry.digest.to_string(),
                    ok: true,
                    error: None,
                    uploaded: done.copied,
                    mounted: done.mounted,
                    present: done.present,
                    bytes: done.bytes,
                });
            }
            Err(e) if plan.keep_going => {
                let e = e.context(format!("cannot push `{label}` to `docker://{target}`"));
                if !report.json {
                    output::print_error(&e);
                }
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                each.push(JsonEach {
                    source: label,
                    destination: format!("docker://{target}"),
                    digest: entry.digest.to_string(),
                    ok: false,
                    error: Some(chain.join(": ")),
                    uploaded: 0,
                    mounted: 0,
                    present: 0,
                    bytes: 0,
                });
            }
            Err(e) => {
                return Err(e.context(format!("cannot push `{label}` to `docker://{target}`")));
            }
        }
    }
    let failed = each.iter().filter(|e| !e.ok).count();
    if report.json {
        output::json(&serde_json::json!({
            "images": each,
            "pushed": each.len() - failed,
            "failed": failed,
        }))?;
    } else if !report.quiet {
        let mut out = output::stdout();
        writeln!(
            out,
            "{} {} of {} image(s) of `{}` to `docker://{}`",
            plan.verb,
            each.len() - failed,
            each.len(),
            plan.source,
            r.name()
        )?;
        for e in each.iter().filter(|e| !e.ok) {
            writeln!(out, "failed: {} ({})", e.source, e.error.as_deref().unwrap_or(""))?;
        }
        out.flush()?;
    }
    Ok(if failed > 0 { Outcome::Problems } else { Outcome::Ok })
}

pub(crate) fn run(a: PushArgs) -> Result<Outcome> {
    let r = registry::parse_reference(&a.reference)?;
    let source = Target::parse(&a.source)?;
    let (view, layout);
    let src: &dyn Store = if source.is_archive() {
        view = source.open_archive(a.report.quiet || a.report.json)?;
        &view
    } else {
        layout = source.open()?;
        &layout
    };
    let context = || format!("cannot push `{}` to `docker://{r}`", a.source);
    let client = registry::connect(&r, &a.registry).with_context(context)?;
    let dst = registry::destination(client, &r, None, &a.referrers);
    let plan = PushPlan {
        source: &a.source,
        reference: source.reference.as_ref(),
        platform: None,
        platforms: &a.platform,
        foreign: a.include_foreign,
        referrers: a.referrers.copied(),
        verb: "pushed",
        named: names_tag(&a.reference),
        keep_going: a.keep_going,
    };
    push_into(src, &r, &dst, &plan, &a.report).with_context(context)
}

/// The result of a push: as text, JSON, or digests (`-q`).
fn print_report(
    verb: &str,
    source: &str,
    r: &RegistryRef,
    report: &CopyReport,
    seconds: f64,
    args: &ReportArgs,
) -> Result<()> {
    if args.json {
        return output::json(&JsonPush {
            destination: format!("docker://{r}"),
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
            uploaded: report.copied,
            mounted: report.mounted,
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
            "{} nondistributable layer(s) left out (--include-foreign pushes them)",
            report.foreign_skipped
        ));
    }
    let mounted =
        if report.mounted > 0 { format!(", {} mounted", report.mounted) } else { String::new() };
    let referrers = if report.referrers > 0 {
        format!(", {} referrer(s)", report.referrers)
    } else {
        String::new()
    };
    writeln!(
        out,
        "{} `{}` to `docker://{r}`: {} blob(s), {} uploaded ({}){mounted}, {} already there{referrers}, in {seconds:.1} s",
        verb,
        source,
        report.blobs,
        report.copied,
        output::size(report.bytes),
        report.present,
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
