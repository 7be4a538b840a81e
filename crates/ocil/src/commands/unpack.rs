//! `ocil unpack DIR:REF BUNDLE`: an image into a runtime bundle (`rootfs/`, `config.json`,
//! and the record `status` and `repack` compare against).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use cap_std::fs::Dir;
use ocil_layout::Store;
use ocil_rootfs::{UnpackOptions, unpack};

use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Unpack an image into an OCI runtime bundle: BUNDLE/rootfs, BUNDLE/config.json, and BUNDLE/ocil-bundle.json, the record `ocil status` and `ocil repack` compare the rootfs with.

The layers are applied in order (gzip, zstd or plain; OCI and Docker media types), each one's uncompressed digest checked against the config's diff_ids. Whiteouts (.wh.NAME, and .wh..wh..opq for a directory) hide what the layers below put there. Regular files, directories, symlinks, hard links (within a layer and to earlier layers' files), FIFOs and devices are made with their owners, modes (setuid, setgid, sticky), xattrs where the filesystem takes them, and mtimes; PAX and GNU long names and GNU sparse files are read.

Every path is resolved inside the rootfs as the container will see it (openat2 RESOLVE_IN_ROOT, or a walk that does the same where the kernel refuses it): absolute names, `..`, symlinks and hard links never lead outside it. An entry name climbing above the root, or a root entry that is not a directory, fails the unpack.

config.json follows the image spec's conversion: args = Entrypoint + Cmd, Env, WorkingDir, User (names looked up in the rootfs's /etc/passwd and /etc/group), annotations from the config, the manifest and the labels; runc's default mounts and namespaces.
--rootless (needed when not run as root): owners are not set but kept in the record and in the user.rootlesscontainers xattr, device nodes become empty files (a warning says so), and config.json gets a user namespace mapping the caller to root.

BUNDLE is created when missing and must be empty, unless --force (which replaces an earlier unpack's rootfs, config.json and record, and leaves other files). The rootfs is built in BUNDLE/.ocil-tmp-rootfs and the record written last: a failed unpack removes what it made, a killed one leaves a bundle that status and repack refuse.
For an index, --platform chooses the image (default: this machine's platform, else the only one).";

#[derive(Debug, clap::Args)]
pub(crate) struct UnpackArgs {
    /// The image: DIR:TAG, DIR@DIGEST, or an archive (oci-archive:FILE, docker-archive:FILE)
    pub(crate) target: String,
    /// The bundle directory (created when missing)
    pub(crate) bundle: PathBuf,
    /// For an index: the image of this platform (os/arch[/variant])
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Do not set owners (kept in the record), make devices empty files, map the caller to root
    #[arg(long)]
    pub(crate) rootless: bool,
    /// Replace what an earlier unpack left in BUNDLE
    #[arg(long)]
    pub(crate) force: bool,
    /// How paths are resolved in the rootfs (tests run the fallback walk with `walk`)
    #[arg(long, value_enum, default_value = "auto", hide = true)]
    pub(crate) resolver: ResolverArg,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// `--resolver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ResolverArg {
    /// openat2 RESOLVE_IN_ROOT where the kernel has it
    Auto,
    /// The component-by-component walk only
    Walk,
}

pub(crate) fn run(a: UnpackArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let platform = a.platform.as_deref().map(str::parse::<ocil_layout::Platform>).transpose()?;
    if !a.rootless && !rustix::process::geteuid().is_root() {
        anyhow::bail!(
            "unpacking as a user other than root needs --rootless (owners are then kept in the bundle's record, not set)"
        );
    }
    let (view, layout);
    let store: &dyn Store = if target.is_archive() {
        view = target.open_archive(a.report.quiet || a.report.json)?;
        &view
    } else {
        layout = target.open()?;
        &layout
    };
    let made = !a.bundle.exists();
    fs_err::create_dir_all(&a.bundle)?;
    let dir = Dir::open_ambient_dir(&a.bundle, cap_std::ambient_authority())
        .with_context(|| format!("cannot open the bundle directory `{}`", a.bundle.display()))?;
    let opts = UnpackOptions {
        platform: platform.as_ref(),
        rootless: a.rootless,
        force: a.force,
        name: &a.target,
        resolver: match a.resolver {
            ResolverArg::Auto => ocil_rootfs::Resolver::Auto,
            ResolverArg::Walk => ocil_rootfs::Resolver::Walk,
        },
    };
    let bars = a.report.bars();
    let done = unpack(store, target.reference.as_ref(), &dir, &opts, &bars).map_err(|e| {
        if made {
            // Ours, and left empty by the failed unpack.
            let _ = fs_err::remove_dir(&a.bundle);
        }
        let hint = match &e {
            ocil_rootfs::Error::BundleNotEmpty { .. } => {
                " (use --force to replace an earlier unpack)"
            }
            _ => "",
        };
        anyhow::Error::new(e).context(format!(
            "cannot unpack `{}` into `{}`{hint}",
            a.target,
            a.bundle.display()
        ))
    })?;
    for w in &done.warnings {
        output::warn(w);
    }
    if a.report.json {
        output::json(&serde_json::json!({
            "bundle": a.bundle.display().to_string(),
            "manifest": done.manifest.to_string(),
            "platform": done.platform,
            "layers": done.layers,
            "paths": done.paths,
            "rootless": a.rootless,
            "warnings": done.warnings,
        }))?;
        return Ok(Outcome::Ok);
    }
    let mut out = output::stdout();
    if a.report.quiet {
        writeln!(out, "{}", done.manifest)?;
    } else {
        let platform = done.platform.as_deref().map(|p| format!(", {p}")).unwrap_or_default();
        writeln!(
            out,
            "unpacked {} ({}{platform}): {} layers, {} paths -> {}",
            a.target,
            done.manifest,
            done.layers,
            done.paths,
            a.bundle.display()
        )?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}
