//! `ocil cat DIR@DIGEST` (or `FILE@DIGEST`, an archive read in place): verify the blob, then
//! write its bytes to stdout.

use std::io::{Read, Write};

use anyhow::{Context, Result};

use crate::cli::CatArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) fn run(a: CatArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let Some(reference) = &target.reference else {
        anyhow::bail!("`ocil cat` needs DIR@DIGEST or DIR:TAG, got `{}`", a.target);
    };
    if target.is_archive() {
        let view = target.open_archive()?;
        let file = target.archive_name();
        let desc = view.resolve(Some(reference)).with_context(|| format!("cannot read {file}"))?;
        let mut reader =
            view.open_blob(&desc.digest).with_context(|| format!("cannot read {file}"))?;
        let mut out = output::stdout();
        std::io::copy(&mut reader, &mut out)
            .with_context(|| format!("cannot read `{}` from {file}", desc.digest))?;
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    let layout = target.open()?;
    let index = layout
        .read_index()
        .with_context(|| format!("cannot read `{}/index.json`", target.dir.display()))?;
    let desc = layout.resolve(&index, Some(reference))?;
    // Verify first, so a corrupt blob never reaches the consumer.
    let mut buf = vec![0u8; 1 << 20];
    let stored = layout.hash_blob(&desc.digest, &mut buf)?;
    if stored.digest != desc.digest {
        anyhow::bail!(
            "blob `{}` is corrupt: `{}` hashes to `{}`",
            desc.digest,
            desc.digest.blob_path(),
            stored.digest
        );
    }
    let mut reader = layout.open_blob(&desc.digest, Some(stored.size))?;
    let mut out = output::stdout();
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("cannot read `{}`", desc.digest.blob_path()))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}
