//! `ocil cat DIR@DIGEST` (or `FILE@DIGEST`, an archive read in place): verify the blob, then
//! write its bytes to stdout.

use std::io::{IsTerminal as _, Read, Write};

use anyhow::{Context, Result};
use ocil_layout::{Digest, Store};

use crate::cli::CatArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) fn run(a: CatArgs) -> Result<Outcome> {
    if let Some(r) = crate::registry::docker_target(&a.target)? {
        return cat_registry(&a, &r).with_context(|| format!("cannot read `docker://{r}`"));
    }
    let target = Target::parse(&a.target)?;
    let Some(reference) = &target.reference else {
        anyhow::bail!("`ocil cat` needs DIR@DIGEST or DIR:TAG, got `{}`", a.target);
    };
    if target.is_archive() {
        let view = target.open_archive(false)?;
        let file = target.archive_name();
        let desc = view.resolve(Some(reference)).with_context(|| format!("cannot read {file}"))?;
        refuse_binary_on_a_terminal(&view, &desc.digest)?;
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
    refuse_binary_on_a_terminal(&layout, &desc.digest)?;
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

/// `ocil cat docker://NAME@DIGEST` (a manifest or a blob) or `docker://NAME:TAG` (its
/// manifest): a manifest is checked before it is written; a blob as it streams, failing at
/// its end on a mismatch.
fn cat_registry(a: &CatArgs, r: &ocil_layout::image_ref::RegistryRef) -> Result<Outcome> {
    let store = crate::registry::open(r, &a.registry, None, ocil_registry::ReferrersMode::None)?;
    let index = store.read_index()?;
    let reference = match (r.digest(), store.root()) {
        (Some(d), _) => ocil_layout::Reference::Digest(d.clone()),
        (None, Some(root)) => ocil_layout::Reference::Digest(root.digest.clone()),
        (None, None) => anyhow::bail!("`{}` names nothing", a.target),
    };
    let desc = ocil_layout::store::resolve(&store, &index, Some(&reference))?;
    refuse_binary_on_a_terminal(&store, &desc.digest)?;
    let mut reader = store.open_blob_verified(&desc.digest, Some(desc.size))?;
    let mut out = output::stdout();
    std::io::copy(&mut reader, &mut out)
        .with_context(|| format!("cannot read `{}`", desc.digest))?;
    out.flush()?;
    Ok(Outcome::Ok)
}

/// A layer (or any blob that is not text) is not written to a terminal: it would fill it
/// with noise and may leave it in a strange state. Text (JSON documents) is.
fn refuse_binary_on_a_terminal(store: &dyn Store, digest: &Digest) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        return Ok(());
    }
    let head = store.peek_blob(digest, 4096)?;
    let text = match std::str::from_utf8(&head) {
        Ok(s) => !s.contains('\0'),
        // A character cut at the end of the head is still text.
        Err(e) => e.error_len().is_none() && !head[..e.valid_up_to()].contains(&0),
    };
    if !text {
        anyhow::bail!(
            "refusing to write binary blob `{digest}` to a terminal: redirect stdout (`ocil cat ... > FILE`)"
        );
    }
    Ok(())
}
