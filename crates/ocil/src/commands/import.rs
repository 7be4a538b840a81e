//! `ocil import FILE[:NAME]|- DIR[:TAG] [--image NAME] [--force] [--receipt FILE]`.
//!
//! A delta or a volume (an archive with `ocil-bundle.json`) says so in the report: the base
//! it needed, or the bundle's volumes still missing and the tags waiting for them.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use ocil_archive::{BundleReport, ImportOptions, ImportReport};
use ocil_layout::Reference;
use ocil_layout::progress::{Progress, ProgressReader};
use serde::Serialize;

use crate::cli::ImportArgs;
use crate::target::Target;
use crate::{Outcome, destination, output};

#[derive(Serialize)]
struct JsonImage<'a> {
    digest: String,
    media_type: &'a str,
    size: u64,
    tags: Vec<&'a str>,
    names: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonDecompressed {
    compression: &'static str,
    digest: String,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    format: &'static str,
    compression: &'static str,
    entries: usize,
    blobs_written: usize,
    bytes: u64,
    images: Vec<JsonImage<'a>>,
    /// xz and bzip2 layers, stored as the plain tars they hold.
    decompressed_layers: Vec<JsonDecompressed>,
    /// A delta or a volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<JsonBundle>,
}

#[derive(Serialize)]
struct JsonBase {
    receipt: String,
    index: String,
}

#[derive(Serialize)]
struct JsonVolume {
    volume: u32,
    file: String,
}

#[derive(Serialize)]
struct JsonBundle {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<JsonBase>,
    omitted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volume: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volumes: Option<u32>,
    missing_volumes: Vec<JsonVolume>,
    /// Entries waiting for other volumes: their tags, or digests when untagged.
    pending: Vec<String>,
}

fn json_bundle(b: &BundleReport) -> JsonBundle {
    JsonBundle {
        kind: if b.volume.is_some() { "volume" } else { "delta" },
        since: b.since.as_ref().map(|s| JsonBase {
            receipt: s.receipt.to_string(),
            index: s.index.digest.to_string(),
        }),
        omitted: b.omitted.len(),
        bundle: b.bundle.as_ref().map(ToString::to_string),
        volume: b.volume.map(|(v, _)| v),
        volumes: b.volume.map(|(_, n)| n),
        missing_volumes: b
            .missing_volumes
            .iter()
            .map(|(volume, file)| JsonVolume { volume: *volume, file: file.clone() })
            .collect(),
        pending: pending_names(b),
    }
}

/// The entries a volume left waiting, by tag (or digest when untagged).
fn pending_names(b: &BundleReport) -> Vec<String> {
    let mut out = Vec::new();
    for image in &b.pending {
        if image.tags.is_empty() {
            out.push(image.descriptor.digest.to_string());
        }
        for t in &image.tags {
            out.push(t.name.clone().unwrap_or_else(|| t.tag.clone()));
        }
    }
    out
}

/// `--image NAME`: a tag, a full name (`busybox:latest`, `example.com/a:v1`) or a digest.
fn parse_image(s: &str) -> Result<Reference> {
    if let Ok(r) = Reference::parse(s) {
        return Ok(r);
    }
    match ocil_layout::image_ref::RegistryRef::parse(s) {
        Ok(_) => Ok(Reference::Tag(s.to_owned())),
        Err(reason) => anyhow::bail!("invalid --image `{s}`: {reason}"),
    }
}

pub(crate) fn run(a: ImportArgs) -> Result<Outcome> {
    let source = Target::parse(&a.archive).map_err(|e| {
        // What import reads is an archive, whatever its name.
        match e.downcast_ref::<ocil_layout::Error>() {
            Some(ocil_layout::Error::TargetNotFound { path, .. }) => {
                anyhow::anyhow!("no such archive `{path}`")
            }
            _ => e,
        }
    })?;
    if !source.is_archive() {
        anyhow::bail!(
            "`{}` is a directory: `ocil import` reads an archive (`ocil copy` copies between layouts)",
            a.archive
        );
    }
    let image = match (&source.reference, &a.image) {
        (Some(_), Some(_)) => {
            anyhow::bail!("`{}` names an image, and so does --image: give one of them", a.archive)
        }
        (Some(r), None) => Some(r.clone()),
        (None, Some(i)) => Some(parse_image(i)?),
        (None, None) => None,
    };
    let dest = Target::parse_destination(&a.dir)?;
    let dir = dest.layout_dir("`ocil export` writes archives")?.to_path_buf();
    let tag = match &dest.reference {
        None => None,
        Some(Reference::Tag(t)) => Some(t.clone()),
        Some(Reference::Digest(_)) => {
            anyhow::bail!("`{}`: an import is given a tag (`DIR:TAG`), not a digest", a.dir)
        }
    };
    let stdin = source.is_stdin();
    let shown = if stdin { "stdin".to_owned() } else { format!("`{}`", source.dir.display()) };
    // Open the input before touching DIR, so a missing file creates nothing.
    let file = if stdin {
        None
    } else {
        Some(
            fs_err::File::open(&source.dir)
                .with_context(|| format!("cannot read archive {shown}"))?,
        )
    };
    let (layout, made) = destination::open_or_create(&dir)?;
    let opts = ImportOptions { force: a.force, image, tag, partial: false };
    let bars = a.report.bars();
    // The bar counts the archive's bytes as they are read (compressed, for a compressed
    // archive), against its size when it is a file.
    let total = file.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len());
    bars.begin("import", total);
    let result = match file {
        Some(f) => ocil_archive::import(
            ProgressReader::new(std::io::BufReader::new(f), &bars),
            &layout,
            &opts,
        ),
        None => ocil_archive::import(
            ProgressReader::new(std::io::stdin().lock(), &bars),
            &layout,
            &opts,
        ),
    };
    bars.end();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            drop(layout);
            // Nothing of a failed import stays: not even the layout made for it.
            made.undo();
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("cannot import {shown} into `{}`", dir.display()));
        }
    };
    if let Some(path) = &a.receipt {
        let receipt = ocil_archive::Receipt::of_layout(&layout)
            .with_context(|| format!("cannot read `{}` for its receipt", dir.display()))?;
        crate::commands::receipt::write_receipt(&receipt, path)?;
    }
    print_report(&a, &dir, &shown, &report)?;
    Ok(Outcome::Ok)
}

fn print_report(a: &ImportArgs, dir: &Path, shown: &str, r: &ImportReport) -> Result<()> {
    if a.report.json {
        return output::json(&JsonReport {
            format: r.format.as_str(),
            compression: r.compression.as_str(),
            entries: r.entries,
            blobs_written: r.blobs_written,
            bytes: r.bytes,
            images: r
                .images
                .iter()
                .map(|i| JsonImage {
                    digest: i.descriptor.digest.to_string(),
                    media_type: i.descriptor.media_type.as_str(),
                    size: i.descriptor.size,
                    tags: i.tags.iter().map(|t| t.tag.as_str()).collect(),
                    names: i.tags.iter().filter_map(|t| t.name.as_deref()).collect(),
                })
                .collect(),
            decompressed_layers: r
                .decompressed
                .iter()
                .map(|l| JsonDecompressed {
                    compression: l.compression.as_str(),
                    digest: l.digest.to_string(),
                })
                .collect(),
            bundle: r.bundle.as_ref().map(json_bundle),
        });
    }
    if !r.decompressed.is_empty() {
        let formats: std::collections::BTreeSet<&str> =
            r.decompressed.iter().map(|l| l.compression.as_str()).collect();
        output::note(&format!(
            "{} layer(s) were {}-compressed, which no OCI or Docker media type names: they are stored decompressed, as plain tars (their digests are the config's diff_ids)",
            r.decompressed.len(),
            formats.into_iter().collect::<Vec<_>>().join("/"),
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
    writeln!(
        out,
        "imported {} {shown} ({}) into `{}`: {} image(s), {} new blob(s) ({})",
        r.format.as_str(),
        match r.compression {
            ocil_codec::Format::Plain => "uncompressed",
            other => other.as_str(),
        },
        dir.display(),
        r.images.len(),
        r.blobs_written,
        output::size(r.bytes),
    )?;
    let mut rows = Vec::new();
    for image in &r.images {
        let digest = image.descriptor.digest.to_string();
        let kind = image.descriptor.media_type.short().to_owned();
        if image.tags.is_empty() {
            rows.push(vec!["<untagged>".into(), digest.clone(), kind.clone(), String::new()]);
        }
        for t in &image.tags {
            rows.push(vec![
                t.tag.clone(),
                digest.clone(),
                kind.clone(),
                t.name.clone().unwrap_or_default(),
            ]);
        }
    }
    // A volume may complete no image yet.
    if !rows.is_empty() {
        output::table(&mut out, &["TAG", "DIGEST", "TYPE", "NAME"], &rows)?;
    }
    if let Some(b) = &r.bundle {
        print_bundle(&mut out, b, dir)?;
    }
    if let Some(path) = &a.receipt {
        writeln!(out, "receipt of `{}` written to `{}`", dir.display(), path.display())?;
    }
    out.flush()?;
    Ok(())
}

/// What a delta or a volume adds to the report.
fn print_bundle(out: &mut impl Write, b: &BundleReport, dir: &Path) -> std::io::Result<()> {
    if let Some(base) = &b.since {
        writeln!(
            out,
            "delta against base receipt {}: {} blob(s) left out, all in `{}`",
            base.receipt,
            b.omitted.len(),
            dir.display()
        )?;
    }
    let (Some((v, n)), Some(id)) = (b.volume, &b.bundle) else { return Ok(()) };
    writeln!(out, "volume {v} of {n} of bundle {id}")?;
    let pending = pending_names(b);
    if !pending.is_empty() {
        writeln!(
            out,
            "waiting for other volumes (not tagged until complete): {}",
            pending.join(", ")
        )?;
    }
    if b.missing_volumes.is_empty() {
        writeln!(out, "every volume is in: the bundle is complete")?;
    } else {
        let files: Vec<&str> = b.missing_volumes.iter().map(|(_, f)| f.as_str()).collect();
        writeln!(
            out,
            "still missing: {} volume(s): {} (import them, in any order, to finish)",
            files.len(),
            files.join(", ")
        )?;
    }
    Ok(())
}
