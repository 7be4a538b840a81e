//! `ocil export-rootfs DIR:REF -o FILE.tar|-`: an image's flattened filesystem as one tar.

use std::io::{BufWriter, IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use cap_std::fs::Dir;
use ocil_layout::Store;
use ocil_layout::atomic::AtomicFile;
use ocil_rootfs::export_rootfs;

use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Write an image's flattened filesystem (its layers applied, whiteouts taken away) as one plain tar, as `docker export` and `crane export` give it.

The image is unpacked as `ocil unpack --rootless` does, into a scratch directory under $TMPDIR, then packed in name order: owners, modes, mtimes, xattrs, symlinks, hard links and device nodes as the layers say (no root needed). `-o -` writes to stdout (never to a terminal); a FILE appears only when complete.";

#[derive(Debug, clap::Args)]
pub(crate) struct ExportRootfsArgs {
    /// The image: DIR:TAG, DIR@DIGEST, or an archive
    pub(crate) target: String,
    /// The tar to write, or `-` for stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
    /// For an index: the image of this platform (os/arch[/variant])
    #[arg(long)]
    pub(crate) platform: Option<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

pub(crate) fn run(a: ExportRootfsArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let platform = a.platform.as_deref().map(str::parse::<ocil_layout::Platform>).transpose()?;
    let stdout = a.output.as_os_str() == "-";
    if stdout && a.report.json {
        bail!("--json needs -o FILE: with `-o -`, stdout carries the tar");
    }
    if stdout && std::io::stdout().is_terminal() {
        bail!("refusing to write a tar to a terminal: redirect stdout or give -o FILE");
    }
    let (view, layout);
    let store: &dyn Store = if target.is_archive() {
        view = target.open_archive(a.report.quiet || a.report.json)?;
        &view
    } else {
        layout = target.open()?;
        &layout
    };
    let scratch = tempfile::Builder::new()
        .prefix("ocil-export-rootfs-")
        .tempdir()
        .context("cannot make a scratch directory")?;
    let scratch_dir = Dir::open_ambient_dir(scratch.path(), cap_std::ambient_authority())?;
    let bars = a.report.bars();
    let shown = if stdout { "stdout".to_owned() } else { format!("`{}`", a.output.display()) };
    let done = if stdout {
        let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let done = export_rootfs(
            store,
            target.reference.as_ref(),
            platform.as_ref(),
            &scratch_dir,
            &mut out,
            &a.target,
            &bars,
        )
        .with_context(|| format!("cannot export the rootfs of `{}` to {shown}", a.target))?;
        out.flush().context("cannot write to stdout")?;
        done
    } else {
        let file = create_output(&a.output)?;
        let mut out = BufWriter::with_capacity(1 << 20, file.file());
        let done = export_rootfs(
            store,
            target.reference.as_ref(),
            platform.as_ref(),
            &scratch_dir,
            &mut out,
            &a.target,
            &bars,
        )
        .with_context(|| format!("cannot export the rootfs of `{}` to {shown}", a.target))?;
        out.flush().with_context(|| format!("cannot write {shown}"))?;
        drop(out);
        file.commit().with_context(|| format!("cannot write {shown}"))?;
        done
    };
    for w in &done.warnings {
        output::warn(w);
    }
    if a.report.json {
        output::json(&serde_json::json!({
            "output": a.output.display().to_string(),
            "manifest": done.manifest.to_string(),
            "entries": done.packed.entries,
            "size": done.packed.size,
        }))?;
    } else if !a.report.quiet {
        let msg = format!(
            "exported the rootfs of {} ({}): {} entries, {} -> {shown}",
            a.target,
            done.manifest,
            done.packed.entries,
            output::size(done.packed.size)
        );
        if stdout {
            output::note(&msg);
        } else {
            let mut out = output::stdout();
            writeln!(out, "{msg}")?;
            out.flush()?;
        }
    }
    Ok(Outcome::Ok)
}

/// The output file, unnamed until it is complete.
fn create_output(path: &std::path::Path) -> Result<AtomicFile> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.is_dir() {
        bail!("`{}` is a directory", path.display());
    }
    if !parent.is_dir() {
        bail!("cannot write `{}`: no such directory `{}`", path.display(), parent.display());
    }
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        bail!("`{}` is not a file name", path.display());
    };
    let dir = Dir::open_ambient_dir(&parent, cap_std::ambient_authority())
        .with_context(|| format!("cannot open `{}`", parent.display()))?;
    AtomicFile::create(&dir, &name)
        .with_context(|| format!("cannot create a file in `{}`", parent.display()))
}
