//! `ocil config DIR:REF`: change an image's config (env, entrypoint, labels, ...) losslessly,
//! writing a new config and manifest. Also the `--platform`/`--all-platforms` arguments the
//! edit commands share.

use anyhow::{Context, Result, bail};
use ocil_edit::{ConfigChanges, ConfigField, EditTarget, Platforms, edit_images};

use crate::commands::edited::{edited_json, print_edited};
use crate::progress::ReportArgs;
use crate::target::Target;
use crate::{Outcome, output};

pub(crate) const HELP: &str = "Change an image's config: a new config and manifest are written and the tag moves to them (or --tag NEW gets them and the old tag stays).

Lossless: every field not asked to change keeps its exact bytes and its place, Docker's extra fields (container_config, docker_version, ...) and unknown fields included; a new field goes last. Docker images stay Docker-typed, OCI images OCI-typed.
Time: --created, else SOURCE_DATE_EPOCH, sets `created` (and the --history-comment entry's); with neither, `created` is left as it is, so the same edit gives the same digests.
Indexes: --platform os/arch[/variant] edits one image, --all-platforms every image; the index (and nested ones) is rewritten with only the edited children's descriptors changed. BuildKit attestations are left as they are and stay attached to the edited images.
--clear runs first, then the removals (--env-rm, --label-rm), then the settings.";

/// Which images of an index to edit.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PlatformArgs {
    /// For an index: edit the image of this platform (os/arch[/variant])
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", conflicts_with = "all_platforms")]
    pub(crate) platform: Option<String>,
    /// For an index: edit every image (attestations are left alone)
    #[arg(long)]
    pub(crate) all_platforms: bool,
}

impl PlatformArgs {
    pub(crate) fn to_platforms(&self) -> Result<Platforms> {
        Ok(match (&self.platform, self.all_platforms) {
            (Some(p), _) => Platforms::One(Box::new(p.parse::<ocil_layout::Platform>()?)),
            (None, true) => Platforms::All,
            (None, false) => Platforms::Unspecified,
        })
    }
}

/// A config field `--clear` empties: `ocil_edit`'s [`ConfigField`] as a clap value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clear(ConfigField);

/// Every `--clear` value, for clap.
const CLEARS: [Clear; 7] = {
    let all = ConfigField::ALL;
    [
        Clear(all[0]),
        Clear(all[1]),
        Clear(all[2]),
        Clear(all[3]),
        Clear(all[4]),
        Clear(all[5]),
        Clear(all[6]),
    ]
};

impl clap::ValueEnum for Clear {
    fn value_variants<'a>() -> &'a [Self] {
        &CLEARS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.0.name()).help(format!("`{}`", self.0.path())))
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    /// DIR:TAG or DIR@DIGEST of the image (or index) to edit
    pub(crate) target: String,
    /// Give the edited image this tag and leave the old one (default: move the tag)
    #[arg(long, value_name = "NEW")]
    pub(crate) tag: Option<String>,
    #[command(flatten)]
    pub(crate) platforms: PlatformArgs,
    /// Set an environment variable (replaces an existing KEY in place)
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// Remove an environment variable
    #[arg(long, value_name = "KEY")]
    pub(crate) env_rm: Vec<String>,
    /// Entrypoint: a JSON array (`["/bin/sh","-c"]`) or words (`/bin/sh -c`)
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub(crate) entrypoint: Option<String>,
    /// Default arguments: a JSON array or words
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub(crate) cmd: Option<String>,
    /// Working directory
    #[arg(long, value_name = "DIR")]
    pub(crate) workdir: Option<String>,
    /// User (`name`, `uid`, `uid:gid`)
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Set a label
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) label: Vec<String>,
    /// Remove a label
    #[arg(long, value_name = "KEY")]
    pub(crate) label_rm: Vec<String>,
    /// Expose a port: PORT[/tcp|/udp|/sctp] (default tcp)
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub(crate) expose: Vec<String>,
    /// Declare a volume (an absolute path)
    #[arg(long, value_name = "PATH")]
    pub(crate) volume: Vec<String>,
    /// Signal that stops the container (`SIGTERM`, `15`)
    #[arg(long, value_name = "SIGNAL")]
    pub(crate) stop_signal: Option<String>,
    /// Config `author`
    #[arg(long)]
    pub(crate) author: Option<String>,
    /// Config `created` (RFC 3339); default: SOURCE_DATE_EPOCH, else unchanged
    #[arg(long, value_name = "TIME")]
    pub(crate) created: Option<String>,
    /// Config `os`
    #[arg(long)]
    pub(crate) os: Option<String>,
    /// Config `architecture`
    #[arg(long)]
    pub(crate) arch: Option<String>,
    /// Config `variant` (an empty value removes it)
    #[arg(long)]
    pub(crate) variant: Option<String>,
    /// Empty a field before the other changes (repeatable)
    #[arg(long, value_enum, value_name = "FIELD")]
    pub(crate) clear: Vec<Clear>,
    /// Add a history entry (`empty_layer: true`) with this comment
    #[arg(long, value_name = "TEXT")]
    pub(crate) history_comment: Option<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// Every change, parsed and checked before the layout is touched.
/// The flags as config changes, each value checked (`ocil_edit::config`'s parsers).
fn changes(a: &ConfigArgs) -> Result<ConfigChanges> {
    use ocil_edit::config::{
        parse_absolute_path, parse_args, parse_env_name, parse_key_value, parse_non_empty,
        parse_port,
    };
    let mut c =
        ConfigChanges { clear: a.clear.iter().map(|f| f.0).collect(), ..ConfigChanges::default() };
    for e in &a.env {
        c.env.push(parse_key_value("--env", e)?);
    }
    for k in &a.env_rm {
        c.env_rm.push(parse_env_name("--env-rm", k)?);
    }
    for l in &a.label {
        c.labels.push(parse_key_value("--label", l)?);
    }
    for k in &a.label_rm {
        c.label_rm.push(parse_non_empty("--label-rm", k, "a label key")?);
    }
    c.entrypoint = a.entrypoint.as_deref().map(|s| parse_args("--entrypoint", s)).transpose()?;
    c.cmd = a.cmd.as_deref().map(|s| parse_args("--cmd", s)).transpose()?;
    if let Some(w) = &a.workdir {
        c.runtime_strings.push(("WorkingDir", parse_absolute_path("--workdir", w)?));
    }
    for (key, v) in [("User", &a.user), ("StopSignal", &a.stop_signal)] {
        if let Some(v) = v {
            c.runtime_strings.push((key, v.clone()));
        }
    }
    for p in &a.expose {
        c.ports.push(parse_port("--expose", p)?);
    }
    for v in &a.volume {
        c.volumes.push(parse_absolute_path("--volume", v)?);
    }
    if let Some(v) = &a.author {
        c.top_strings.push(("author", v.clone()));
    }
    for (key, flag, v) in [("os", "--os", &a.os), ("architecture", "--arch", &a.arch)] {
        if let Some(v) = v {
            c.top_strings.push((key, parse_non_empty(flag, v, "a value")?));
        }
    }
    c.variant = a.variant.as_ref().map(|v| Some(v.clone()).filter(|v| !v.is_empty()));
    c.history_comment = a.history_comment.clone();
    if let Some(t) = &a.created {
        crate::epoch::check_rfc3339("--created", t)?;
        c.created = Some(t.clone());
    }
    if c.is_empty() {
        bail!(
            "nothing to change: give at least one of --env, --env-rm, --entrypoint, --cmd, --workdir, --user, --label, --label-rm, --expose, --volume, --stop-signal, --author, --created, --os, --arch, --variant, --clear, --history-comment"
        );
    }
    if c.created.is_none() {
        c.created = crate::epoch::source_date_epoch_rfc3339()?;
    }
    Ok(c)
}

pub(crate) fn run(a: ConfigArgs) -> Result<Outcome> {
    let target = Target::parse(&a.target)?;
    let Some(reference) = &target.reference else {
        bail!("`ocil config` needs DIR:TAG or DIR@DIGEST, got `{}`", a.target);
    };
    if let Some(t) = &a.tag {
        ocil_layout::reference::validate_tag(t)?;
    }
    let platforms = a.platforms.to_platforms()?;
    let changes = changes(&a)?;
    let layout = target.open()?;
    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", target.dir.display()))?;
    let edit = EditTarget { reference, platforms, new_tag: a.tag.as_deref() };
    let edited = edit_images(&layout, &lock, &edit, |image| changes.apply(image))
        .with_context(|| format!("cannot edit `{}` in `{}`", reference, target.dir.display()))?;
    drop(lock);
    if a.report.json {
        output::json(&edited_json(&target.dir, &edited, reference, a.tag.as_deref()))?;
    } else {
        print_edited(&edited, reference, a.tag.as_deref(), a.report.quiet);
    }
    Ok(Outcome::Ok)
}
