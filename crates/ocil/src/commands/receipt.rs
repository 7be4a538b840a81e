//! `ocil receipt DIR|FILE -o RECEIPT`: what a site holds, for the connected side to export
//! only what it lacks (`ocil export --since RECEIPT`); and the bases `--since` reads (a
//! receipt, a layout, an archive).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ocil_archive::{RECEIPT_LIMIT, Receipt};
use serde::Serialize;

use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Write a receipt of what a site holds: every blob (digest and size) and its index.json (digest, size and entries), as a small JSON file (mediaType application/vnd.ocil.receipt.v1+json).

Carry it to the connected side: `ocil export SRC -o delta.tar --since site.receipt` then writes only the blobs the site lacks, and `ocil import delta.tar SITE` checks that SITE still holds what the delta leaves out. `ocil import ARCHIVE DIR --receipt FILE` writes the receipt of DIR after an import.

DIR is a layout (its blob store as listed: names and sizes; `ocil fsck` checks the bytes); FILE an archive (the blobs it holds, and the index an import would write). The same state gives the same bytes; the receipt's sha256 names it (a delta records it). `-o -` writes to stdout.";

#[derive(Debug, clap::Args)]
pub(crate) struct ReceiptArgs {
    /// The layout directory (or an archive) to describe
    pub(crate) dir: String,
    /// The receipt to write, or `-` for stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

#[derive(Serialize)]
struct JsonReport {
    output: String,
    receipt: String,
    index: String,
    entries: usize,
    blobs: usize,
    bytes: u64,
}

/// The receipt of a layout directory or an archive named on the command line.
fn receipt_of(text: &str, quiet: bool) -> Result<Receipt> {
    let target = Target::parse(text)?;
    target.no_reference("receipt", "a layout directory or an archive")?;
    if target.is_archive() {
        let view = target.open_archive(quiet)?;
        return Receipt::of_store(&view)
            .with_context(|| format!("cannot read archive `{}`", target.dir.display()));
    }
    let layout = target.open()?;
    Receipt::of_layout(&layout).with_context(|| format!("cannot read `{}`", target.dir.display()))
}

/// The base of `--since BASE`: a receipt file, a layout directory or an archive.
pub(crate) fn load_base(text: &str, quiet: bool) -> Result<Receipt> {
    let path = Path::new(text);
    if path.is_file() {
        let mut head = [0u8; 64];
        let n = fs_err::File::open(path)?.read(&mut head)?;
        if head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            let mut bytes = Vec::new();
            fs_err::File::open(path)?.take(RECEIPT_LIMIT + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > RECEIPT_LIMIT {
                anyhow::bail!("`{text}` is over {RECEIPT_LIMIT} bytes: not a receipt");
            }
            return Ok(Receipt::parse(&bytes, text)?);
        }
    }
    receipt_of(text, quiet).with_context(|| format!("cannot read the base `{text}`"))
}

/// Write `receipt` to `path` (atomically), or stdout for `-`.
pub(crate) fn write_receipt(receipt: &Receipt, path: &Path) -> Result<()> {
    let bytes = receipt.to_bytes();
    if path.as_os_str() == "-" {
        let mut out = output::stdout();
        out.write_all(&bytes)?;
        out.flush()?;
        return Ok(());
    }
    let file = crate::commands::export::create_output(path)?;
    let shown = path.display();
    (&mut file.file()).write_all(&bytes).with_context(|| format!("cannot write `{shown}`"))?;
    file.commit().with_context(|| format!("cannot write `{shown}`"))?;
    Ok(())
}

pub(crate) fn run(a: ReceiptArgs) -> Result<Outcome> {
    let stdout = a.output.as_os_str() == "-";
    if stdout && a.report.json {
        anyhow::bail!("--json needs -o FILE: with `-o -`, stdout carries the receipt");
    }
    let receipt = receipt_of(&a.dir, a.report.quiet || a.report.json)?;
    write_receipt(&receipt, &a.output)?;
    let bytes: u64 = receipt.blobs.values().sum();
    if a.report.json {
        return output::json(&JsonReport {
            output: a.output.display().to_string(),
            receipt: receipt.identity().to_string(),
            index: receipt.index.digest.to_string(),
            entries: receipt.manifests.len(),
            blobs: receipt.blobs.len(),
            bytes,
        })
        .map(|()| Outcome::Ok);
    }
    if a.report.quiet || stdout {
        return Ok(Outcome::Ok);
    }
    let mut out = output::stdout();
    writeln!(
        out,
        "wrote the receipt of `{}` to `{}`: {} blob(s) ({}), {} entr{} in index.json",
        a.dir,
        a.output.display(),
        receipt.blobs.len(),
        output::size(bytes),
        receipt.manifests.len(),
        if receipt.manifests.len() == 1 { "y" } else { "ies" },
    )?;
    writeln!(out, "index.json: {}", receipt.index.digest)?;
    writeln!(out, "receipt:    {}", receipt.identity())?;
    out.flush()?;
    Ok(Outcome::Ok)
}
