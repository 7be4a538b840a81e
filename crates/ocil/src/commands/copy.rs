//! `ocil copy SRC[:REF] DST[:TAG]`: copy images from a layout (or an archive read in place,
//! or a registry: `docker://REF`) into a layout.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use ocil_layout::Reference;
use ocil_layout::image_ref::RegistryRef;
use ocil_transfer::{CopyOptions, CopyReport};
use serde::Serialize;

use crate::commands::push::{PushPlan, push_into};
use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, destination, output};

pub(crate) const HELP: &str = "Copy images between layouts, archives and registries.

SRC alone copies every entry of SRC's index.json; SRC:TAG or SRC@DIGEST copies one. DST:TAG gives the copy that tag (default: SRC's tag). DST is created as a layout when it does not exist (`DST:TAG` splits when TAG is a valid tag and DST's parent exists; end DST with `/` for a directory whose name holds `:`). SRC and DST may also be written `oci:DIR[:REF]`. SRC may be an archive (`FILE[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`): an uncompressed archive file gives its layers in place; a compressed one (or `-`) keeps only its documents, so copying from it fails on the first layer (use `ocil import`, which reads it in one pass).
Only blobs DST lacks are copied; each lands in a temp file in DST's store and is hashed and checked against its digest and size before it is renamed into place. Copies use copy_file_range (a reflink where the filesystem can); --link hard-links blobs instead (the linked file is hashed before it is published), falling back to a copy across filesystems.
SRC may be a registry, `docker://NAME[:TAG|@DIGEST]` (as `ocil pull`, which says more: --creds, --tls-verify, --plain-http, --include-foreign); --platform then takes that platform's image of the index.
DST may be a registry, `docker://NAME[:TAG|@DIGEST]`, as `ocil push` (which says more): SRC:REF, or SRC's only image, or (DST without a tag) each of SRC's images under its own tag (--keep-going goes on past a failed one). From a registry to another repository of the same registry, blobs are mounted (POST ?mount=&from=) instead of passing through ocil.
Referrers of the copied images (signatures, SBOMs: documents whose `subject` names a copied manifest) come along: found in SRC's store, or (a registry) through its referrers API or its sha256-<hex> tag (--referrers auto|api|tag|none).
DST's index.json is replaced once, under DST's lock, after every blob has landed (a registry's tag is PUT last). A tag that already names a different image in a DST layout is an error unless --force.
SRC is not locked: if a gc on SRC removes a blob being copied, the copy fails and DST's index.json is untouched (retry).";

#[derive(Debug, clap::Args)]
pub(crate) struct CopyArgs {
    /// SRC, SRC:TAG or SRC@DIGEST
    pub(crate) source: String,
    /// DST or DST:TAG (DST is created when it does not exist)
    pub(crate) destination: String,
    /// Hard-link blobs when both layouts are on one filesystem
    #[arg(long)]
    pub(crate) link: bool,
    /// Take this platform's image (os/arch[/variant]) of the index SRC:REF names
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Move tags that already name a different image in DST
    #[arg(long)]
    pub(crate) force: bool,
    /// From or to a registry: also copy nondistributable (foreign) layers
    #[arg(long)]
    pub(crate) include_foreign: bool,
    /// To a registry, every image of SRC (DST without a tag): go on past a failed one, then
    /// exit 1 with a report per image
    #[arg(long)]
    pub(crate) keep_going: bool,
    #[command(flatten)]
    pub(crate) referrers: crate::registry::ReferrersArgs,
    #[command(flatten)]
    pub(crate) registry: crate::registry::RegistryArgs,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

#[derive(Serialize)]
struct JsonImage<'a> {
    digest: String,
    media_type: &'a str,
    size: u64,
    tag: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    blobs: usize,
    present: usize,
    copied: usize,
    linked: usize,
    link_fallbacks: usize,
    bytes: u64,
    referrers: usize,
    images: Vec<JsonImage<'a>>,
}

pub(crate) fn run(a: CopyArgs) -> Result<Outcome> {
    let to_registry = crate::registry::docker_target(&a.destination)?;
    if let Some(r) = crate::registry::docker_target(&a.source)? {
        return match to_registry {
            Some(d) => between_registries(&a, &r, &d),
            None => from_registry(&a, &r),
        };
    }
    let source = Target::parse(&a.source)?;
    // A layout, or an archive read in place (an uncompressed archive file gives its layers
    // by offset; a compressed one or a pipe keeps only its documents: import it instead).
    let (view, layout);
    let src: &dyn ocil_layout::Store = if source.is_archive() {
        view = source.open_archive(a.report.quiet || a.report.json)?;
        &view
    } else {
        layout = source.open()?;
        &layout
    };
    if let Some(d) = to_registry {
        return into_registry(&a, src, &source, &d);
    }
    let dest = Target::parse_destination(&a.destination)?;
    let dst_dir = dest.layout_dir("`ocil export` writes archives")?.to_path_buf();
    let tag = match &dest.reference {
        None => None,
        Some(Reference::Tag(t)) => Some(t.clone()),
        Some(Reference::Digest(_)) => {
            anyhow::bail!("`{}`: a copy is given a tag (`DST:TAG`), not a digest", a.destination)
        }
    };
    let (dst, made) = destination::open_or_create(&dst_dir)?;
    let bars = a.report.bars();
    let opts = CopyOptions {
        reference: source.reference.as_ref(),
        tag: tag.as_deref(),
        platform: a.platform.as_deref(),
        platforms: &[],
        foreign: true,
        link: a.link,
        referrers: a.referrers.copied(),
        force: a.force,
        progress: &bars,
    };
    let report = match ocil_transfer::copy(src, &dst, &opts) {
        Ok(r) => r,
        Err(e) => {
            drop(dst);
            made.undo();
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("cannot copy `{}` to `{}`", a.source, a.destination));
        }
    };
    print_report(&a, &dst_dir, &report)?;
    Ok(Outcome::Ok)
}

/// `ocil copy docker://REF DST[:TAG]`: as `ocil pull`, with `--platform` taking one
/// platform's image as it does for a layout.
fn from_registry(a: &CopyArgs, r: &RegistryRef) -> Result<Outcome> {
    if a.link {
        anyhow::bail!("--link needs a layout as SRC: a registry's blobs are downloaded");
    }
    let dest = Target::parse_destination(&a.destination)?;
    let dst_dir = dest.layout_dir("`ocil export` writes archives")?.to_path_buf();
    let tag = match &dest.reference {
        None => None,
        Some(Reference::Tag(t)) => Some(t.clone()),
        Some(Reference::Digest(_)) => {
            anyhow::bail!("`{}`: a copy is given a tag (`DST:TAG`), not a digest", a.destination)
        }
    };
    let (dst, made) = destination::open_or_create(&dst_dir)?;
    let started = std::time::Instant::now();
    let result = (|| {
        let local = ocil_layout::Layout::open_ambient(&dst_dir).ok();
        let store = crate::registry::open(r, &a.registry, local, a.referrers.mode())?;
        let reference = crate::commands::pull::engine_reference(&store)?;
        let bars = a.report.bars().per_blob(a.report.quiet || a.report.json);
        let opts = CopyOptions {
            reference: Some(&reference),
            tag: tag.as_deref(),
            platform: a.platform.as_deref(),
            platforms: &[],
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
                .with_context(|| format!("cannot copy `{}` to `{}`", a.source, a.destination));
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    crate::commands::pull::print_report(r, &dst_dir, &report, seconds, &a.report, "copied")?;
    Ok(Outcome::Ok)
}

/// `ocil copy SRC docker://REF`: as `ocil push`, with `--platform` taking one platform's
/// image as it does between layouts.
fn into_registry(
    a: &CopyArgs,
    src: &dyn ocil_layout::Store,
    source: &Target,
    d: &RegistryRef,
) -> Result<Outcome> {
    if a.link {
        anyhow::bail!("--link needs a layout as DST: a registry's blobs are uploaded");
    }
    let context = || format!("cannot copy `{}` to `{}`", a.source, a.destination);
    let client = crate::registry::connect(d, &a.registry).with_context(context)?;
    let dst = crate::registry::destination(client, d, None, &a.referrers);
    let plan = PushPlan {
        source: &a.source,
        reference: source.reference.as_ref(),
        platform: a.platform.as_deref(),
        platforms: &[],
        foreign: a.include_foreign,
        referrers: a.referrers.copied(),
        verb: "copied",
        named: crate::commands::push::names_tag(&a.destination),
        keep_going: a.keep_going,
    };
    push_into(src, d, &dst, &plan, &a.report).with_context(context)
}

/// `ocil copy docker://SRC docker://DST`: one engine, a registry at either end; on one
/// registry, blobs are mounted from SRC's repository instead of passing through.
fn between_registries(a: &CopyArgs, r: &RegistryRef, d: &RegistryRef) -> Result<Outcome> {
    if a.link {
        anyhow::bail!("--link needs layouts: a registry's blobs are downloaded and uploaded");
    }
    let context = || format!("cannot copy `{}` to `{}`", a.source, a.destination);
    let src_client = crate::registry::connect(r, &a.registry).with_context(context)?;
    let same = d.domain() == r.domain();
    let dst_client = if same {
        src_client.clone()
    } else {
        crate::registry::connect(d, &a.registry).with_context(context)?
    };
    let store = crate::registry::open_with(src_client, r, None, a.referrers.mode())
        .with_context(context)?;
    let reference = crate::commands::pull::engine_reference(&store)?;
    let mount_from = same.then(|| r.repository().to_owned());
    let dst = crate::registry::destination(dst_client, d, mount_from, &a.referrers);
    let text = format!("docker://{r}");
    let plan = PushPlan {
        source: &text,
        reference: Some(&reference),
        platform: a.platform.as_deref(),
        platforms: &[],
        foreign: a.include_foreign,
        referrers: a.referrers.copied(),
        verb: "copied",
        named: true,
        keep_going: false,
    };
    push_into(&store, d, &dst, &plan, &a.report).with_context(context)
}

fn print_report(a: &CopyArgs, dst: &Path, r: &CopyReport) -> Result<()> {
    if a.report.json {
        return output::json(&JsonReport {
            blobs: r.blobs,
            present: r.present,
            copied: r.copied,
            linked: r.linked,
            link_fallbacks: r.link_fallbacks,
            bytes: r.bytes,
            referrers: r.referrers,
            images: r
                .images
                .iter()
                .map(|i| JsonImage {
                    digest: i.descriptor.digest.to_string(),
                    media_type: i.descriptor.media_type.as_str(),
                    size: i.descriptor.size,
                    tag: i.tag.as_deref(),
                })
                .collect(),
        });
    }
    if r.link_fallbacks > 0 {
        output::warn(&format!(
            "{} blob(s) could not be hard-linked (another filesystem) and were copied",
            r.link_fallbacks
        ));
    }
    let mut out = output::stdout();
    if a.report.quiet {
        // Each image's digest, one a line.
        for i in &r.images {
            writeln!(out, "{}", i.descriptor.digest)?;
        }
        out.flush()?;
        return Ok(());
    }
    let how = if a.link {
        format!("{} linked, {} copied", r.linked, r.copied)
    } else {
        format!("{} copied", r.copied)
    };
    writeln!(
        out,
        "copied {} image(s) to `{}`: {} blob(s), {how} ({}), {} already there{}",
        r.images.len(),
        dst.display(),
        r.blobs,
        output::size(r.bytes),
        r.present,
        if r.referrers > 0 { format!(", {} referrer(s)", r.referrers) } else { String::new() },
    )?;
    let rows: Vec<Vec<String>> = r
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
