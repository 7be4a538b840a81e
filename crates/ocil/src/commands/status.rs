//! `ocil status BUNDLE`: what changed in a bundle's rootfs since it was unpacked (or last
//! repacked), like `git status`; exit 1 when something did.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use cap_std::fs::Dir;
use ocil_rootfs::record::{Kind, display_path};
use ocil_rootfs::{Change, StatusOptions, What, status};

use crate::progress::ReportArgs;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Show what changed in a bundle's rootfs since `ocil unpack` (or the last `ocil repack`) made it: added, deleted, modified (content, owner, xattrs, link target), mode changed, type changed (a directory replaced by a file, ...), and directories replaced by new ones (their old contents all gone). A deleted directory is one line: what it held goes with it. Exit 0 when nothing changed, 1 when something did.

Every path is lstat'ed; a file is read again only when its inode, size, mtime or ctime differ from the record, or when its mtime is not older than the record (git's guard against a change within the same second). --full-compare reads every file.
A bundle whose unpack did not finish (no ocil-bundle.json) is refused.";

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The bundle directory (made by `ocil unpack`)
    pub(crate) bundle: PathBuf,
    /// Read every file, whatever its stat says
    #[arg(long)]
    pub(crate) full_compare: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) fn run(a: StatusArgs) -> Result<Outcome> {
    let dir = open_bundle(&a.bundle)?;
    let s = status(&dir, StatusOptions { full_compare: a.full_compare })
        .with_context(|| format!("cannot compare the bundle `{}`", a.bundle.display()))?;
    let outcome = if s.changes.is_empty() { Outcome::Ok } else { Outcome::Problems };
    if a.report.json {
        output::json(&serde_json::json!({
            "bundle": a.bundle.display().to_string(),
            "image": s.record.source.name,
            "manifest": s.record.source.manifest.to_string(),
            "clean": s.changes.is_empty(),
            "changes": s.changes,
            "files_read": s.hashed,
        }))?;
        return Ok(outcome);
    }
    let mut out = output::stdout();
    if a.report.quiet {
        for c in &s.changes {
            writeln!(out, "{}", display_path(&c.path))?;
        }
        out.flush()?;
        return Ok(outcome);
    }
    if s.changes.is_empty() {
        writeln!(
            out,
            "clean: the rootfs is {} ({})",
            s.record.source.name, s.record.source.manifest
        )?;
    }
    for c in &s.changes {
        writeln!(out, "{}", line(c))?;
    }
    out.flush()?;
    Ok(outcome)
}

/// Open a bundle directory by path.
pub(crate) fn open_bundle(path: &std::path::Path) -> Result<Dir> {
    if !path.is_dir() {
        anyhow::bail!("no such bundle directory `{}`", path.display());
    }
    Dir::open_ambient_dir(path, cap_std::ambient_authority())
        .with_context(|| format!("cannot open the bundle directory `{}`", path.display()))
}

/// One change, as a status line.
pub(crate) fn line(c: &Change) -> String {
    let p = display_path(&c.path);
    match &c.what {
        What::Added { kind } => format!("added     {p}{}", suffix(*kind)),
        What::Deleted { kind } => format!("deleted   {p}{}", suffix(*kind)),
        What::TypeChanged { from, to } => {
            format!("type      {p} ({} -> {})", from.as_str(), to.as_str())
        }
        What::Replaced => format!("replaced  {p}/ (a new directory)"),
        What::Modified { content, mode, owner, xattrs, kind } => {
            let mut what = Vec::new();
            if *content {
                what.push(if *kind == Kind::Symlink {
                    "target".to_owned()
                } else {
                    "content".to_owned()
                });
            }
            if let Some((a, b)) = mode {
                what.push(format!("mode {a:04o} -> {b:04o}"));
            }
            if let Some(((u1, g1), (u2, g2))) = owner {
                what.push(format!("owner {u1}:{g1} -> {u2}:{g2}"));
            }
            if *xattrs {
                what.push("xattrs".into());
            }
            let verb = if !content && owner.is_none() && !xattrs { "mode    " } else { "modified" };
            format!("{verb}  {p}{} ({})", suffix(*kind), what.join(", "))
        }
    }
}

fn suffix(kind: Kind) -> &'static str {
    if kind == Kind::Dir { "/" } else { "" }
}
