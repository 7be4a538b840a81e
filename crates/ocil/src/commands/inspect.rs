//! `ocil inspect DIR[:REF|@DIGEST]` and `ocil inspect FILE[:REF|@DIGEST]` (an archive,
//! read in place).

use std::io::Write;

use anyhow::{Context, Result};
use ocil_archive::ArchiveView;
use ocil_inspect::{ImageSummary, IndexSummary, Inspected, inspect};
use ocil_layout::{Descriptor, Digest, Index, Layout, Reference};

use crate::cli::InspectArgs;
use crate::target::Target;
use crate::{Outcome, output};

/// Where the images are: a layout directory or an archive read in place.
enum Store {
    Dir(Layout),
    Archive(Box<ArchiveView>),
    Registry(Box<ocil_registry::RegistryStore>),
}

impl Store {
    fn resolve(&self, index: &Index, reference: Option<&Reference>) -> Result<Descriptor> {
        Ok(match self {
            Store::Dir(layout) => layout.resolve(index, reference)?,
            Store::Archive(view) => view.resolve(reference)?,
            Store::Registry(r) => ocil_layout::store::resolve(r.as_ref(), index, reference)?,
        })
    }

    fn inspect(&self, desc: &Descriptor) -> Result<Inspected> {
        Ok(match self {
            Store::Dir(layout) => inspect(layout, desc)?,
            Store::Archive(view) => inspect(view.as_ref(), desc)?,
            Store::Registry(r) => inspect(r.as_ref(), desc)?,
        })
    }

    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        Ok(match self {
            Store::Dir(layout) => layout.read_blob(digest, ocil_layout::JSON_LIMIT)?,
            Store::Archive(view) => view.read_blob(digest, ocil_layout::JSON_LIMIT)?,
            Store::Registry(r) => {
                ocil_layout::Store::read_blob(r.as_ref(), digest, ocil_layout::JSON_LIMIT)?
            }
        })
    }
}

pub(crate) fn run(a: InspectArgs) -> Result<Outcome> {
    if let Some(r) = crate::registry::docker_target(&a.target)? {
        let store =
            crate::registry::open(&r, &a.registry, None, ocil_registry::ReferrersMode::None)?;
        let reference = crate::commands::pull::engine_reference(&store)?;
        let index = ocil_layout::Store::read_index(&store)?;
        let target = Target::registry(&a.target, reference);
        return run_on(&a, &target, &Store::Registry(Box::new(store)), &index)
            .with_context(|| format!("cannot read `docker://{r}`"));
    }
    let target = Target::parse(&a.target)?;
    let (store, index) = if target.is_archive() {
        let view = target.open_archive(a.json)?;
        let index = view.index().clone();
        (Store::Archive(Box::new(view)), index)
    } else {
        let layout = target.open()?;
        let index = target.read_index_lenient(&layout)?;
        (Store::Dir(layout), index)
    };
    let out = run_on(&a, &target, &store, &index);
    if target.is_archive() {
        // Errors about the archive's content name the archive, then the entry.
        return out.with_context(|| format!("cannot read {}", target.archive_name()));
    }
    out
}

fn run_on(a: &InspectArgs, target: &Target, store: &Store, index: &Index) -> Result<Outcome> {
    if target.reference.is_none() && index.manifests.len() != 1 {
        let dir = target.dir.display();
        if index.manifests.is_empty() {
            anyhow::bail!("`{dir}` is empty: `index.json` has no entries to inspect");
        }
        let mut names: Vec<String> = index
            .manifests
            .iter()
            .map(|d| match d.ref_name() {
                Some(tag) => format!("`{dir}:{tag}`"),
                None => format!("`{dir}@{}`", d.digest),
            })
            .collect();
        names.dedup();
        let more = names.len().saturating_sub(3);
        names.truncate(3);
        if more > 0 {
            names.push(format!("{more} more"));
        }
        anyhow::bail!(
            "`{dir}` holds {} entries: name one, such as {}",
            index.manifests.len(),
            names.join(", ")
        );
    }
    let mut desc = store.resolve(index, target.reference.as_ref())?;
    let mut inspected = store.inspect(&desc)?;
    if let (Some(platform), Inspected::Image(s)) = (&a.platform, &inspected)
        && !s.platform.as_deref().is_some_and(|p| platform_matches(p, platform))
    {
        anyhow::bail!(
            "`{}` is an image for `{}`, not an index: it does not match --platform `{platform}`",
            s.digest,
            s.platform.as_deref().unwrap_or("no platform")
        );
    }
    if let (Some(_), Inspected::Blob { digest, media_type, .. }) = (&a.platform, &inspected) {
        anyhow::bail!("`{digest}` is a `{media_type}`, not an index: --platform does not apply");
    }
    if let (Some(platform), Inspected::Index(idx)) = (&a.platform, &inspected) {
        let child = idx
            .manifests
            .iter()
            .find(|c| c.platform.as_deref().is_some_and(|p| platform_matches(p, platform)))
            .with_context(|| {
                let have: Vec<&str> =
                    idx.manifests.iter().filter_map(|c| c.platform.as_deref()).collect();
                format!("no platform `{platform}` in `{}` (has: {})", idx.digest, have.join(", "))
            })?;
        desc = Descriptor::new(child.media_type.as_str().into(), child.digest.clone(), child.size);
        inspected = store.inspect(&desc)?;
    }
    if a.raw {
        let bytes = store.read_blob(&desc.digest)?;
        let mut out = output::stdout();
        out.write_all(&bytes)?;
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    if a.config {
        let Inspected::Image(s) = &inspected else {
            anyhow::bail!("`{}` is not an image: it has no config", desc.digest);
        };
        let bytes = store.read_blob(&s.config.digest)?;
        let mut out = output::stdout();
        out.write_all(&bytes)?;
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    // A config that cannot be read is a problem of the image: shown, then exit 1.
    let broken_config = match &inspected {
        Inspected::Image(s) => s.config_note.as_ref().map(|n| (s.config.digest.clone(), n.clone())),
        _ => None,
    };
    let done = |broken: Option<(Digest, String)>| {
        Ok(match broken {
            Some((digest, note)) => {
                crate::output::print_error(&anyhow::anyhow!(
                    "config `{digest}` cannot be read: {note}"
                ));
                Outcome::Problems
            }
            None => Outcome::Ok,
        })
    };
    if a.json {
        output::json(&inspected)?;
        return done(broken_config);
    }
    let mut out = output::stdout();
    // The index.json entry's own annotations (beside the tag), when it is one.
    let entry_annotations: Vec<(String, String)> = desc
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != ocil_layout::ANNOTATION_REF_NAME)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (i, (k, v)) in entry_annotations.iter().enumerate() {
        writeln!(out, "{}{k}={v}", if i == 0 { "Entry       " } else { "            " })?;
    }
    match &inspected {
        Inspected::Image(s) => image(&mut out, s)?,
        Inspected::Index(s) => index_view(&mut out, s)?,
        Inspected::Blob { digest, media_type, size } => {
            writeln!(out, "Blob        {digest}")?;
            writeln!(out, "MediaType   {media_type}")?;
            writeln!(out, "Size        {}", output::size(*size))?;
        }
    }
    out.flush()?;
    done(broken_config)
}

/// `os/arch[/variant]` (as displayed, possibly with `:os.version`) matches `spec`.
fn platform_matches(display: &str, spec: &str) -> bool {
    let display = display.split(':').next().unwrap_or(display);
    display == spec || (spec.matches('/').count() == 1 && display.starts_with(&format!("{spec}/")))
}

/// `sha256:` and the first 12 hex digits, as `Digest::short` shows digests.
fn short(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", &hex[..hex.len().min(12)]),
        None => d.to_owned(),
    }
}

fn words(v: &Option<Vec<String>>) -> String {
    match v {
        None => "-".into(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

fn subject(out: &mut impl Write, s: &Option<Digest>) -> std::io::Result<()> {
    if let Some(d) = s {
        writeln!(out, "Subject     {d}")?;
    }
    Ok(())
}

fn image(out: &mut impl Write, s: &ImageSummary) -> std::io::Result<()> {
    writeln!(out, "Manifest    {}", s.digest)?;
    writeln!(out, "MediaType   {}", s.media_type)?;
    if let Some(t) = &s.artifact_type {
        writeln!(out, "Artifact    {t}")?;
    }
    subject(out, &s.subject)?;
    writeln!(
        out,
        "Config      {} ({}, {})",
        s.config.digest,
        s.config.media_type,
        output::size(s.config.size)
    )?;
    if let Some(note) = &s.config_note {
        writeln!(out, "            ({note})")?;
    }
    writeln!(out, "Platform    {}", s.platform.as_deref().unwrap_or("-"))?;
    writeln!(out, "Created     {}", s.created.as_deref().unwrap_or("-"))?;
    if let Some(a) = &s.author {
        writeln!(out, "Author      {a}")?;
    }
    if s.env.is_empty() {
        writeln!(out, "Env         -")?;
    }
    for (i, e) in s.env.iter().enumerate() {
        writeln!(out, "{}{e}", if i == 0 { "Env         " } else { "            " })?;
    }
    writeln!(out, "Entrypoint  {}", words(&s.entrypoint))?;
    writeln!(out, "Cmd         {}", words(&s.cmd))?;
    writeln!(out, "WorkingDir  {}", s.working_dir.as_deref().unwrap_or("-"))?;
    writeln!(out, "User        {}", s.user.as_deref().unwrap_or("-"))?;
    if !s.exposed_ports.is_empty() {
        writeln!(out, "Ports       {}", s.exposed_ports.join(", "))?;
    }
    if !s.volumes.is_empty() {
        writeln!(out, "Volumes     {}", s.volumes.join(", "))?;
    }
    if let Some(sig) = &s.stop_signal {
        writeln!(out, "StopSignal  {sig}")?;
    }
    for (i, (k, v)) in s.labels.iter().enumerate() {
        writeln!(out, "{}{k}={v}", if i == 0 { "Labels      " } else { "            " })?;
    }
    for (i, (k, v)) in s.annotations.iter().enumerate() {
        writeln!(out, "{}{k}={v}", if i == 0 { "Annotations " } else { "            " })?;
    }
    for (i, h) in s.history.iter().enumerate() {
        let what = h.created_by.as_deref().or(h.comment.as_deref()).unwrap_or("-");
        let empty = if h.empty_layer { " (no layer)" } else { "" };
        let when = h.created.as_deref().unwrap_or("-");
        writeln!(
            out,
            "{}{when}  {what}{empty}",
            if i == 0 { "History     " } else { "            " }
        )?;
    }
    let total: u64 = s.layers.iter().map(|l| l.size).sum();
    writeln!(out, "Layers      {} ({})", s.layers.len(), output::size(total))?;
    let rows: Vec<Vec<String>> = s
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            vec![
                format!("  {i}"),
                l.digest.short(),
                s.diff_ids.get(i).map_or_else(|| "-".to_owned(), |d| short(d)),
                l.compression.clone(),
                output::size(l.size),
                format!(
                    "{}{}",
                    l.media_type,
                    if l.distributable { "" } else { " (nondistributable)" }
                ),
            ]
        })
        .collect();
    if !rows.is_empty() {
        output::table(
            out,
            &["  #", "DIGEST", "DIFF ID", "COMPRESSION", "SIZE", "MEDIA TYPE"],
            &rows,
        )?;
    }
    Ok(())
}

fn index_view(out: &mut impl Write, s: &IndexSummary) -> std::io::Result<()> {
    writeln!(out, "Index       {}", s.digest)?;
    writeln!(out, "MediaType   {}", s.media_type)?;
    subject(out, &s.subject)?;
    for (i, (k, v)) in s.annotations.iter().enumerate() {
        writeln!(out, "{}{k}={v}", if i == 0 { "Annotations " } else { "            " })?;
    }
    writeln!(out, "Manifests   {}", s.manifests.len())?;
    let rows: Vec<Vec<String>> = s
        .manifests
        .iter()
        .map(|c| {
            vec![
                format!(
                    "  {}",
                    c.platform.as_deref().or(c.artifact_type.as_deref()).unwrap_or("-")
                ),
                c.digest.short(),
                output::size(c.size),
                c.media_type.clone(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        output::table(out, &["  PLATFORM", "DIGEST", "SIZE", "MEDIA TYPE"], &rows)?;
    }
    Ok(())
}
