//! `ocil import FILE|- DIR [--force]`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_archive::{ImportOptions, ImportReport};
use ocil_layout::Layout;
use ocil_layout::progress::{Progress, ProgressReader};
use serde::Serialize;

use crate::cli::ImportArgs;
use crate::progress::Bars;
use crate::{Outcome, output};

#[derive(Serialize)]
struct JsonImage<'a> {
    digest: String,
    media_type: &'a str,
    size: u64,
    tags: Vec<&'a str>,
    names: Vec<&'a str>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    format: &'static str,
    compression: &'static str,
    entries: usize,
    blobs_written: usize,
    bytes: u64,
    images: Vec<JsonImage<'a>>,
}

/// What `open_or_create` made, to undo after a failed import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    Nothing,
    /// The directory itself.
    Dir,
    /// A layout in an empty directory that existed.
    Layout,
}

/// Open DIR as a layout, creating it (as `ocil init` does) when it does not exist or is an
/// empty directory.
fn open_or_create(dir: &Path) -> Result<(Layout, Made)> {
    let existed = dir.exists();
    if existed && !dir.is_dir() {
        anyhow::bail!("`{}` exists and is not a directory", dir.display());
    }
    let empty = existed && fs_err::read_dir(dir)?.next().is_none();
    if !existed {
        fs_err::create_dir_all(dir)?;
    }
    let cap = Dir::open_ambient_dir(dir, ambient_authority())
        .with_context(|| format!("cannot open `{}`", dir.display()))?;
    let layout = if !existed || empty {
        Layout::create(cap)
            .with_context(|| format!("cannot create a layout in `{}`", dir.display()))?
    } else {
        Layout::open(cap).with_context(|| format!("cannot open layout `{}`", dir.display()))?
    };
    let made = match (existed, empty) {
        (false, _) => Made::Dir,
        (true, true) => Made::Layout,
        (true, false) => Made::Nothing,
    };
    Ok((layout, made))
}

/// Undo what `open_or_create` made (best effort: the import already failed).
fn unmake(dir: &Path, made: Made) {
    match made {
        Made::Nothing => {}
        Made::Dir => {
            let _ = fs_err::remove_dir_all(dir);
        }
        Made::Layout => {
            let _ = fs_err::remove_dir_all(dir.join(ocil_layout::BLOBS_DIR));
            let _ = fs_err::remove_file(dir.join(ocil_layout::INDEX_FILE));
            let _ = fs_err::remove_file(dir.join(ocil_layout::LAYOUT_FILE));
        }
    }
}

pub(crate) fn run(a: ImportArgs) -> Result<Outcome> {
    let stdin = a.archive.as_os_str() == "-";
    let shown = if stdin { "stdin".to_owned() } else { format!("`{}`", a.archive.display()) };
    // Open the input before touching DIR, so a missing file creates nothing.
    let file = if stdin {
        None
    } else {
        Some(
            fs_err::File::open(&a.archive)
                .with_context(|| format!("cannot read archive {shown}"))?,
        )
    };
    let (layout, made) = open_or_create(&a.dir)?;
    let opts = ImportOptions { force: a.force };
    let bars = Bars::new(a.quiet || a.json);
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
            unmake(&a.dir, made);
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("cannot import {shown} into `{}`", a.dir.display()));
        }
    };
    print_report(&a, &shown, &report)?;
    Ok(Outcome::Ok)
}

fn print_report(a: &ImportArgs, shown: &str, r: &ImportReport) -> Result<()> {
    if a.json {
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
        });
    }
    let mut out = output::stdout();
    writeln!(
        out,
        "imported {} {shown} ({}) into `{}`: {} image(s), {} new blob(s) ({})",
        r.format.as_str(),
        match r.compression {
            ocil_layout::Compression::None => "uncompressed",
            ocil_layout::Compression::Gzip => "gzip",
            ocil_layout::Compression::Zstd => "zstd",
        },
        a.dir.display(),
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
    output::table(&mut out, &["TAG", "DIGEST", "TYPE", "NAME"], &rows)?;
    out.flush()?;
    Ok(())
}
