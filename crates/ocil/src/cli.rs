//! The command line, as clap derive types.

use clap::{Args, Parser, Subcommand};

use crate::progress::ReportArgs;

/// Edit, check, garbage-collect and ship OCI image-layout directories.
#[derive(Debug, Parser)]
#[command(name = "ocil", version, about, long_about = None)]
#[command(
    after_help = "Targets: DIR, DIR:TAG or DIR@sha256:DIGEST (the split is at the last `@` or `:` whose left side exists, so directories with `:` in their name work); oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME], `-` (an archive on stdin); docker://NAME is an image in a registry (copy, pull, ls, inspect and cat read it). A destination that does not exist yet splits DIR:TAG when TAG is a valid tag and DIR's parent exists (`o1:app`); end it with `/` to keep a `:` in the name, write `./oci:v1` for a directory called `oci`.

Output for scripts: -q/--quiet prints only the result, one item a line: the digest of what `new`, `tag`, `config`, `annotate`, `append`, `index` and `convert` write; each image's digest for `import`, `copy` and `pull`; each entry's name for `ls` (its full name when it has one, @DIGEST when untagged); the errors (not the warnings) for `fsck`; nothing for `init`, `untag`, `rm`, `gc`, `export` and `receipt`. No progress bar, summary, table or note; warnings and errors still go to stderr, and the exit code is the same. --json prints one JSON document (and an error as JSON); it does not go with -q."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// Whether the command was asked for JSON (`--json`): its error is then JSON too.
    pub(crate) fn wants_json(&self) -> bool {
        match &self.command {
            Command::Ls(a) => a.report.json,
            Command::Tag(a) => a.report.json,
            Command::Untag(a) => a.report.json,
            Command::New(a) => a.report.json,
            Command::Inspect(a) => a.json,
            Command::Referrers(a) => a.json,
            Command::Serve(_) => false,
            Command::Fsck(a) => a.report.json,
            Command::Gc(a) => a.report.json,
            Command::Import(a) => a.report.json,
            // With `-o -`, stdout is the archive's.
            Command::Export(a) => a.report.json && a.output.as_os_str() != "-",
            Command::Copy(a) => a.report.json,
            Command::Pull(a) => a.report.json,
            Command::Push(a) => a.report.json,
            Command::Login(_) | Command::Logout(_) => false,
            Command::Convert(a) => a.report.json,
            Command::Init(a) => a.report.json,
            Command::Rm(a) => a.report.json,
            Command::Config(a) => a.report.json,
            Command::Annotate(a) => a.report.json,
            Command::Append(a) => a.report.json,
            Command::Index(a) => a.report.json,
            Command::Receipt(a) => a.report.json && a.output.as_os_str() != "-",
            Command::Unpack(a) => a.report.json,
            Command::Status(a) => a.report.json,
            Command::Repack(a) => a.report.json,
            Command::ExportRootfs(a) => a.report.json && a.output.as_os_str() != "-",
            Command::Cat(_) | Command::Completions(_) | Command::Man(_) => false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create an empty OCI image layout
    Init(InitArgs),
    /// List the entries of index.json: tags, digests, media types, platforms, sizes
    Ls(LsArgs),
    /// Show an image (manifest and config) or an index
    Inspect(InspectArgs),
    /// Write a blob's exact bytes to stdout, after verifying them
    Cat(CatArgs),
    /// List an image's referrers (signatures, SBOMs, attestations), as a tree
    #[command(long_about = crate::commands::referrers::HELP)]
    Referrers(crate::commands::referrers::ReferrersArgs),
    /// Serve layouts as an OCI registry (docker pull from them; --push, --delete)
    #[command(long_about = crate::commands::serve::HELP)]
    Serve(crate::commands::serve::ServeArgs),
    /// Check a layout: blob hashes, the graph from index.json, structure
    Fsck(FsckArgs),
    /// Remove blobs that nothing in index.json reaches
    #[command(long_about = GC_HELP)]
    Gc(GcArgs),
    /// Point a tag at an image (moves the tag if it exists)
    Tag(TagArgs),
    /// Remove a tag from index.json (blobs stay until gc)
    Untag(UntagArgs),
    /// Create an empty image (no layers) to build on
    New(NewArgs),
    /// Change an image's config (env, entrypoint, cmd, labels, ...), losslessly
    #[command(long_about = crate::commands::config::HELP)]
    Config(Box<crate::commands::config::ConfigArgs>),
    /// Set or remove annotations on a manifest, an index or an index.json entry
    #[command(long_about = crate::commands::annotate::HELP)]
    Annotate(crate::commands::annotate::AnnotateArgs),
    /// Remove an image from index.json (a tag, or every entry with a digest); --gc collects
    #[command(long_about = crate::commands::rm::HELP)]
    Rm(crate::commands::rm::RmArgs),
    /// Append layers (directories or tars) to an image
    #[command(long_about = crate::commands::append::HELP)]
    Append(crate::commands::append::AppendArgs),
    /// Create or edit a multi-platform index (--add images, --rm-platform)
    #[command(long_about = crate::commands::index::HELP)]
    Index(crate::commands::index::IndexArgs),
    /// Import an OCI archive or docker-save archive (tar, gzip, zstd, xz or bzip2) into a layout
    #[command(long_about = IMPORT_HELP)]
    Import(ImportArgs),
    /// Export images of one or more layouts into one archive (OCI or docker load)
    #[command(long_about = crate::commands::export::HELP)]
    Export(crate::commands::export::ExportArgs),
    /// Write a receipt of what a site holds (blobs, index.json), for `export --since`
    #[command(long_about = crate::commands::receipt::HELP)]
    Receipt(crate::commands::receipt::ReceiptArgs),
    /// Copy images between layouts, archives and registries (only missing blobs; --link hard-links)
    #[command(long_about = crate::commands::copy::HELP)]
    Copy(crate::commands::copy::CopyArgs),
    /// Pull an image from a registry into a layout (docker://REF as docker names it)
    #[command(long_about = crate::commands::pull::HELP)]
    Pull(crate::commands::pull::PullArgs),
    /// Push an image of a layout (or an archive) to a registry
    #[command(long_about = crate::commands::push::HELP)]
    Push(crate::commands::push::PushArgs),
    /// Log in to a registry (credentials kept where docker and podman read them)
    #[command(long_about = crate::commands::login::LOGIN_HELP)]
    Login(crate::commands::login::LoginArgs),
    /// Log out of a registry (its credentials removed from the auth files)
    #[command(long_about = crate::commands::login::LOGOUT_HELP)]
    Logout(crate::commands::login::LogoutArgs),
    /// Convert an image or index between Docker and OCI media types (--compress recompresses)
    #[command(long_about = crate::commands::convert::HELP)]
    Convert(crate::commands::convert::ConvertArgs),
    /// Unpack an image into a runtime bundle (rootfs/ and config.json) to run or edit
    #[command(long_about = crate::commands::unpack::HELP)]
    Unpack(crate::commands::unpack::UnpackArgs),
    /// Show what changed in a bundle's rootfs since unpack (exit 1 when something did)
    #[command(long_about = crate::commands::status::HELP)]
    Status(crate::commands::status::StatusArgs),
    /// Commit a bundle's changes as one new layer on its image, tagged
    #[command(long_about = crate::commands::repack::HELP)]
    Repack(crate::commands::repack::RepackArgs),
    /// Write an image's flattened filesystem as one tar (like docker export)
    #[command(long_about = crate::commands::export_rootfs::HELP)]
    ExportRootfs(crate::commands::export_rootfs::ExportRootfsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(long_about = crate::commands::completions::HELP)]
    Completions(crate::commands::completions::CompletionsArgs),
    /// Write the man pages (ocil.1, ocil-<command>.1) into a directory
    #[command(long_about = crate::commands::man::HELP)]
    Man(crate::commands::man::ManArgs),
}

const IMPORT_HELP: &str = "Import an OCI archive or docker-save archive (tar, gzip, zstd, xz or bzip2) into a layout.

Formats: OCI archives (oci-layout, index.json, blobs/ at the root: skopeo's oci-archive), docker-save archives (manifest.json: each image becomes an OCI manifest over the unchanged config and layers, except that an xz or bzip2 layer, which no media type names, is stored as the plain tar it holds, checked against its diff_id; tags from RepoTags, full names in io.containerd.image.name), and Docker 25+ archives holding both (index.json wins). The pre-1.10 docker save format is refused.
The archive is read once, as a stream; every file is hashed as it lands in a temp file in DIR's blob store, and nothing is visible in DIR until the end, when the blobs are renamed into place and index.json is replaced once, under DIR's lock. A failed import leaves DIR unchanged.
DIR:TAG gives the imported image that tag instead of the archive's tags (`ocil import app.tar o1:app` creates `o1` with the image tagged `app`); the archive must then hold one image, or FILE:NAME (or --image NAME) must choose one. A chosen image comes alone: only the blobs it reaches are imported.
A tag that already names a different image in DIR is an error unless --force.
A blob DIR already holds is checked as it passes, not written again; nothing is extracted anywhere first.
Deltas and volumes (`ocil export --since`, `--volume-size`): a delta is refused, naming the blobs, unless DIR holds every blob it leaves out (nothing is written then); the result is what importing the full archive gives. A volume imports in any order: its blobs land, and a tag of its bundle is written once its image is complete in DIR; the report names the volumes still missing (import them, in any order, to finish). --receipt FILE then writes the receipt of DIR (`ocil receipt`).";

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The archive (FILE, FILE:NAME, oci-archive:FILE[:TAG], docker-archive:FILE[:NAME]),
    /// or `-` for stdin; NAME chooses one of its images
    pub(crate) archive: String,
    /// The layout directory, created when it does not exist; DIR:TAG tags the imported image
    pub(crate) dir: String,
    /// Import only this image of the archive (a tag, full name or digest)
    #[arg(long, value_name = "NAME")]
    pub(crate) image: Option<String>,
    /// Move tags that already name a different image
    #[arg(long)]
    pub(crate) force: bool,
    /// Then write the receipt of DIR to FILE (`ocil receipt`), for the next `export --since`
    #[arg(long, value_name = "FILE")]
    pub(crate) receipt: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TagArgs {
    /// DIR:TAG or DIR@DIGEST of the image to tag
    pub(crate) source: String,
    /// The new tag, or a full name (`example.com/app:v1`)
    pub(crate) tag: String,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UntagArgs {
    /// DIR:TAG (or DIR:FULL-NAME)
    pub(crate) target: String,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// DIR:TAG (DIR must be a layout)
    pub(crate) target: String,
    /// Platform of the image, os/arch[/variant]
    #[arg(long, default_value = "linux/amd64")]
    pub(crate) platform: String,
    /// `created` timestamp (RFC 3339); default: SOURCE_DATE_EPOCH, else none
    #[arg(long)]
    pub(crate) created: Option<String>,
    /// Move TAG when it already names a different image
    #[arg(long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

const GC_HELP: &str = "Remove blobs that nothing in index.json reaches.

Roots: every index.json entry, tagged or not (--tagged-only: only tagged entries and the untagged referrers of live images; other untagged entries are dropped from index.json first).
Mark: indexes and manifest lists (nested), manifests, configs, layers and subjects, Docker and OCI alike; a blob of unknown type that holds a manifest or index is followed. Layers are never read.
Referrers: a manifest in the store whose `subject` is live stays (signatures, SBOMs); --drop-referrers removes those not named by index.json.
Fail closed: if a reachable manifest or index cannot be parsed, or index.json is not a valid index, nothing is deleted (--force overrides).
Grace: unreferenced blobs younger than --prune (default 10m) are kept, so writers that do not take ocil's lock (skopeo, umoci) can finish; --prune=now disables it.
Locking: gc holds the layout's exclusive lock (flock on the layout directory) from mark to the end of sweep; every ocil writer takes the same lock.
Strays (files that are not blobs) are reported, never deleted; ocil's own stale temp files are removed.";

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Directory to create (it may exist, but must not hold a layout); `oci:DIR` too
    pub(crate) dir: String,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// The layout directory, or an archive (.tar, .tar.gz, .tar.zst, .tar.xz, .tar.bz2) read in place: an
    /// uncompressed tar by offset, a compressed one in one pass keeping only its JSON
    /// documents; `-` reads an archive from standard input; docker://NAME lists a
    /// repository's tags
    pub(crate) dir: String,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    /// Print whole digests (a short one, `DIR@sha256:6b25d9265039`, is accepted wherever a
    /// digest is, when it is unique)
    #[arg(long)]
    pub(crate) no_trunc: bool,
    #[command(flatten)]
    pub(crate) registry: crate::registry::RegistryArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// DIR, DIR:TAG or DIR@DIGEST (DIR alone when it holds one entry); or the same with an
    /// archive FILE (.tar, .tar.gz, .tar.zst, .tar.xz, .tar.bz2) read in place, without extracting it (a
    /// compressed archive is read in one pass keeping only its JSON documents); `-` reads an
    /// archive from standard input (`-- -:TAG` names an entry of it); docker://NAME[:TAG|@DIGEST]
    /// reads a registry
    pub(crate) target: String,
    /// Print the manifest's (or index's) exact bytes
    #[arg(long, conflicts_with = "json")]
    pub(crate) raw: bool,
    /// Print the image config's exact bytes
    #[arg(long, conflicts_with_all = ["json", "raw"])]
    pub(crate) config: bool,
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
    /// For an index: show this platform's image (os/arch[/variant])
    #[arg(long)]
    pub(crate) platform: Option<String>,
    #[command(flatten)]
    pub(crate) registry: crate::registry::RegistryArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CatArgs {
    /// DIR@DIGEST, or DIR:TAG for the entry's manifest; or the same with an archive FILE
    /// read in place (a compressed archive gives only its JSON documents); `-- -:REF` reads
    /// an archive from standard input; docker://NAME@DIGEST (or :TAG) reads a registry (a
    /// blob is checked as it streams: a mismatch fails at its end)
    pub(crate) target: String,
    #[command(flatten)]
    pub(crate) registry: crate::registry::RegistryArgs,
}

#[derive(Debug, Args)]
pub(crate) struct FsckArgs {
    /// The layout directory, or an archive (OCI, docker-save, or a plain tar such as a
    /// layer), checked without touching anything; `-` reads the archive from standard input
    /// (spooled to a temporary file); `oci:DIR`, `oci-archive:FILE`, `docker-archive:FILE` too
    pub(crate) dir: String,
    /// Missing blobs are warnings (shallow layouts)
    #[arg(long)]
    pub(crate) allow_missing: bool,
    /// Also decompress every layer, check it is a tar and check rootfs.diff_ids
    #[arg(long)]
    pub(crate) deep: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// The layout directory (or `oci:DIR`)
    pub(crate) dir: String,
    /// List what would be removed; change nothing
    #[arg(long, short = 'n')]
    pub(crate) dry_run: bool,
    /// Keep unreferenced blobs younger than this (`now`, `30s`, `10m`, `2h`, `1d`)
    #[arg(long, default_value = "10m", value_name = "AGE")]
    pub(crate) prune: String,
    /// Only tagged entries are roots (and untagged referrers of live images)
    #[arg(long)]
    pub(crate) tagged_only: bool,
    /// Remove referrers of live images that index.json does not name
    #[arg(long)]
    pub(crate) drop_referrers: bool,
    /// Collect even when part of the graph cannot be read (dangerous)
    #[arg(long)]
    pub(crate) force: bool,
    /// Exit 1 when referenced blobs are missing
    #[arg(long)]
    pub(crate) strict: bool,
    /// Print how long each phase took (walk and listing, probe, sweep) on stderr
    #[arg(long, short)]
    pub(crate) verbose: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}
