//! `ocil repack BUNDLE DIR:TAG`: the changes in a bundle's rootfs as one new layer on the
//! image it was unpacked from, tagged TAG.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ocil_edit::append::{NewLayer, append_layers};
use ocil_edit::layer::{LayerSink, layer_media_type};
use ocil_edit::{EditTarget, History, Platforms};
use ocil_layout::progress::Progress as _;
use ocil_layout::{JSON_LIMIT, Manifest, MediaType, Reference};
use ocil_rootfs::record::RecordLayer;
use ocil_rootfs::{PackOptions, Repacked, StatusOptions, pack_changes, record_repack, status};

use crate::commands::append::CompressArg;
use crate::commands::status::{line, open_bundle};
use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Commit the changes in a bundle's rootfs (what `ocil status` lists) as one new layer on top of the image the bundle was unpacked from, and point TAG at the result.

The layer holds every added, modified and type-changed path whole, a .wh.NAME whiteout for each deleted path, and for a directory replaced by a new one an opaque whiteout (.wh..wh..opq) and its contents. Files with several names stay hard links (every name of a changed group is stored). Entries are sorted by name, headers normalised (no user names, no atime), owners as recorded (the image's, for a --rootless bundle), mtimes clamped to SOURCE_DATE_EPOCH when it is set: the same changes give the same layer. The config gets the diff_id and a history entry (created: SOURCE_DATE_EPOCH, else now; --history-comment).
DIR must hold the image the bundle came from. The layer is built before the layout is locked; under the lock it is published and index.json replaced once (TAG set or moved). Then the bundle's record describes the new image, so unpack, edit, status, repack can repeat.
Nothing changed: says so and writes nothing. Docker-typed images take gzip layers only.";

#[derive(Debug, clap::Args)]
pub(crate) struct RepackArgs {
    /// The bundle directory (made by `ocil unpack`)
    pub(crate) bundle: PathBuf,
    /// Where the new image goes: DIR:TAG (DIR holds the bundle's image)
    pub(crate) target: String,
    /// Layer compression
    #[arg(long, value_enum, default_value = "gzip")]
    pub(crate) compress: CompressArg,
    /// `comment` of the new history entry
    #[arg(long, value_name = "TEXT")]
    pub(crate) history_comment: Option<String>,
    /// Read every file, whatever its stat says
    #[arg(long)]
    pub(crate) full_compare: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) fn run(a: RepackArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let Some(Reference::Tag(tag)) = &target.reference else {
        anyhow::bail!("`ocil repack` needs DIR:TAG for the new image, got `{}`", a.target);
    };
    let layout = target.open()?;
    let bundle = open_bundle(&a.bundle)?;
    let mut st = status(&bundle, StatusOptions { full_compare: a.full_compare })
        .with_context(|| format!("cannot compare the bundle `{}`", a.bundle.display()))?;
    let base = st.record.source.manifest.clone();
    if st.changes.is_empty() {
        if a.report.json {
            output::json(
                &serde_json::json!({"bundle": a.bundle.display().to_string(), "changes": 0, "manifest": base.to_string()}),
            )?;
        } else if !a.report.quiet {
            let mut out = output::stdout();
            writeln!(out, "nothing to commit: the rootfs is {} ({base})", st.record.source.name)?;
            out.flush()?;
        }
        return Ok(Outcome::Ok);
    }
    if !layout.has_blob(&base)? {
        anyhow::bail!(
            "`{}` does not hold the image the bundle was unpacked from ({}, `{base}`): copy it there first (`ocil copy`)",
            target.dir.display(),
            st.record.source.name
        );
    }
    let compression = a.compress.compression();
    let manifest_type = MediaType::from(st.record.source.media_type.as_str());
    let media_type = layer_media_type(&manifest_type, compression)
        .map_err(|e| anyhow::anyhow!("--compress {}: {e}", compression.as_str()))?;
    let epoch = crate::epoch::source_date_epoch()?;
    let created = match epoch {
        Some(s) => ocil_codec::epoch::rfc3339(s)?,
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            ocil_codec::epoch::rfc3339(now.as_secs())?
        }
    };
    let count = st.changes.len();
    let lines: Vec<String> = st.changes.iter().map(line).collect();
    let bars = a.report.bars();
    let mut sink =
        ocil_layout::progress::ProgressWriter::new(LayerSink::new(&layout, compression)?, &bars);
    bars.begin("repack", None);
    let packed = pack_changes(
        &bundle,
        &mut st,
        &mut sink,
        PackOptions { clamp_mtime: epoch.map(|e| e as i64) },
    );
    bars.end();
    let packed =
        packed.with_context(|| format!("cannot pack the changes of `{}`", a.bundle.display()))?;
    let staged = sink.into_inner().finish(Vec::new())?;
    anyhow::ensure!(
        staged.diff_id == packed.diff_id,
        "the layer's diff_id changed while it was written"
    );
    let layer_digest = staged.blob.digest().clone();
    let layer_size = staged.blob.size();
    let diff_id = staged.diff_id.clone();
    let history = History {
        created: Some(created),
        created_by: Some(format!(
            "ocil repack: {count} change{}",
            if count == 1 { "" } else { "s" }
        )),
        comment: a.history_comment.clone(),
        ..History::default()
    };
    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", target.dir.display()))?;
    let base_ref = Reference::Digest(base.clone());
    let edit =
        EditTarget { reference: &base_ref, platforms: Platforms::Unspecified, new_tag: Some(tag) };
    let edited = append_layers(&layout, &lock, &edit, vec![NewLayer { layer: staged, history }])
        .with_context(|| format!("cannot add the layer to `{}`", a.target))?;
    drop(lock);
    let manifest =
        edited.images.first().map_or_else(|| edited.after.digest.clone(), |i| i.after.clone());
    let m: Manifest = serde_json::from_slice(&layout.read_blob(&manifest, JSON_LIMIT)?)
        .context("cannot read the new manifest")?;
    let new = Repacked {
        name: a.target.clone(),
        manifest: manifest.clone(),
        config: m.config.digest.clone(),
        layer: RecordLayer {
            digest: layer_digest.clone(),
            diff_id: diff_id.clone(),
            media_type: media_type.to_string(),
            size: layer_size,
        },
    };
    record_repack(&bundle, st, new)
        .with_context(|| format!("cannot update the record of `{}`", a.bundle.display()))?;
    if a.report.json {
        output::json(&serde_json::json!({
            "bundle": a.bundle.display().to_string(),
            "changes": count,
            "layer": {
                "digest": layer_digest.to_string(),
                "diff_id": diff_id.to_string(),
                "size": layer_size,
                "compression": compression.as_str(),
                "entries": packed.entries,
            },
            "manifest": manifest.to_string(),
            "tag": tag,
        }))?;
        return Ok(Outcome::Ok);
    }
    let mut out = output::stdout();
    if a.report.quiet {
        writeln!(out, "{manifest}")?;
    } else {
        for l in lines {
            writeln!(out, "{l}")?;
        }
        writeln!(
            out,
            "layer {layer_digest} ({}, {}, {} entries) diff_id {diff_id}",
            compression.as_str(),
            output::size(layer_size),
            packed.entries
        )?;
        writeln!(out, "{tag} -> {manifest}")?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}
