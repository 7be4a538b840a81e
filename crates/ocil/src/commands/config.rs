//! `ocil config DIR:REF`: change an image's config (env, entrypoint, labels, ...) losslessly,
//! writing a new config and manifest. Also the `--platform`/`--all-platforms` arguments the
//! edit commands share.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result, bail};
use ocil_edit::{EditTarget, History, Image, JsonDoc, Platforms, edit_images};
use ocil_layout::Reference;
use serde_json::value::RawValue;

use crate::Outcome;
use crate::target::Target;

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

/// A config field `--clear` empties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Clear {
    /// `config.Env`
    Env,
    /// `config.Entrypoint`
    Entrypoint,
    /// `config.Cmd`
    Cmd,
    /// `config.Labels`
    Labels,
    /// `config.ExposedPorts`
    ExposedPorts,
    /// `config.Volumes`
    Volumes,
    /// `history`
    History,
}

impl Clear {
    fn key(self) -> (&'static str, bool) {
        match self {
            Clear::Env => ("Env", true),
            Clear::Entrypoint => ("Entrypoint", true),
            Clear::Cmd => ("Cmd", true),
            Clear::Labels => ("Labels", true),
            Clear::ExposedPorts => ("ExposedPorts", true),
            Clear::Volumes => ("Volumes", true),
            Clear::History => ("history", false),
        }
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
}

/// Every change, parsed and checked before the layout is touched.
#[derive(Debug, Default)]
struct Changes {
    clear: Vec<Clear>,
    env_rm: Vec<String>,
    env: Vec<(String, String)>,
    label_rm: Vec<String>,
    labels: Vec<(String, String)>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    strings: Vec<(&'static str, String)>,
    ports: Vec<String>,
    volumes: Vec<String>,
    top: Vec<(&'static str, String)>,
    variant: Option<Option<String>>,
    created: Option<String>,
    history_comment: Option<String>,
}

/// `KEY=VALUE` with a non-empty key.
pub(crate) fn key_value(flag: &str, s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => bail!("invalid {flag} `{s}`: expected KEY=VALUE"),
    }
}

/// A JSON array of strings, or whitespace-separated words.
fn args_list(flag: &str, s: &str) -> Result<Vec<String>> {
    if s.trim_start().starts_with('[') {
        return serde_json::from_str(s).with_context(|| {
            format!(
                "invalid {flag} `{s}`: a value starting with `[` must be a JSON array of strings"
            )
        });
    }
    Ok(s.split_whitespace().map(str::to_owned).collect())
}

/// `80`, `80/tcp`, `53/udp`, `132/sctp` -> the ExposedPorts key.
fn port(s: &str) -> Result<String> {
    let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let ok_num = num.parse::<u16>().is_ok_and(|n| n > 0) && !num.starts_with('0');
    if !ok_num || !matches!(proto, "tcp" | "udp" | "sctp") {
        bail!("invalid --expose `{s}`: expected PORT[/tcp|/udp|/sctp] with PORT in 1-65535");
    }
    Ok(format!("{num}/{proto}"))
}

impl Changes {
    fn parse(a: &ConfigArgs) -> Result<Changes> {
        let mut c = Changes { clear: a.clear.clone(), ..Changes::default() };
        for e in &a.env {
            c.env.push(key_value("--env", e)?);
        }
        for k in &a.env_rm {
            if k.is_empty() || k.contains('=') {
                bail!("invalid --env-rm `{k}`: expected a variable name (no `=`)");
            }
            c.env_rm.push(k.clone());
        }
        for l in &a.label {
            c.labels.push(key_value("--label", l)?);
        }
        for k in &a.label_rm {
            if k.is_empty() {
                bail!("invalid --label-rm ``: expected a label key");
            }
            c.label_rm.push(k.clone());
        }
        c.entrypoint = a.entrypoint.as_deref().map(|s| args_list("--entrypoint", s)).transpose()?;
        c.cmd = a.cmd.as_deref().map(|s| args_list("--cmd", s)).transpose()?;
        for (key, v) in
            [("WorkingDir", &a.workdir), ("User", &a.user), ("StopSignal", &a.stop_signal)]
        {
            if let Some(v) = v {
                c.strings.push((key, v.clone()));
            }
        }
        if let Some(w) = &a.workdir
            && !w.starts_with('/')
        {
            bail!("invalid --workdir `{w}`: expected an absolute path");
        }
        for p in &a.expose {
            c.ports.push(port(p)?);
        }
        for v in &a.volume {
            if !v.starts_with('/') {
                bail!("invalid --volume `{v}`: expected an absolute path");
            }
            c.volumes.push(v.clone());
        }
        for (key, flag, v) in [
            ("author", "--author", &a.author),
            ("os", "--os", &a.os),
            ("architecture", "--arch", &a.arch),
        ] {
            if let Some(v) = v {
                if v.is_empty() && key != "author" {
                    bail!("invalid {flag} ``: expected a value");
                }
                c.top.push((key, v.clone()));
            }
        }
        c.variant = a.variant.as_ref().map(|v| Some(v.clone()).filter(|v| !v.is_empty()));
        c.history_comment = a.history_comment.clone();
        if let Some(t) = &a.created {
            crate::epoch::check_rfc3339("--created", t)?;
        }
        let edits = !(c.clear.is_empty()
            && c.env.is_empty()
            && c.env_rm.is_empty()
            && c.labels.is_empty()
            && c.label_rm.is_empty()
            && c.entrypoint.is_none()
            && c.cmd.is_none()
            && c.strings.is_empty()
            && c.ports.is_empty()
            && c.volumes.is_empty()
            && c.top.is_empty()
            && c.variant.is_none()
            && c.history_comment.is_none()
            && a.created.is_none());
        if !edits {
            bail!(
                "nothing to change: give at least one of --env, --env-rm, --entrypoint, --cmd, --workdir, --user, --label, --label-rm, --expose, --volume, --stop-signal, --author, --created, --os, --arch, --variant, --clear, --history-comment"
            );
        }
        c.created = match &a.created {
            Some(t) => Some(t.clone()),
            None => crate::epoch::source_date_epoch_rfc3339()?,
        };
        Ok(c)
    }

    fn apply(&self, image: &mut Image) -> ocil_edit::Result<()> {
        for f in &self.clear {
            let (key, runtime) = f.key();
            if runtime {
                image.runtime_config()?.remove(key);
            } else {
                image.config.remove(key);
            }
        }
        let rc = image.runtime_config()?;
        if !self.env.is_empty() || !self.env_rm.is_empty() {
            edit_env(rc, &self.env_rm, &self.env)?;
        }
        if !self.labels.is_empty() || !self.label_rm.is_empty() {
            let labels = rc.object_mut("Labels")?;
            for k in &self.label_rm {
                labels.remove(k);
            }
            for (k, v) in &self.labels {
                labels.set(k, v)?;
            }
        }
        if let Some(e) = &self.entrypoint {
            rc.set("Entrypoint", e)?;
        }
        if let Some(c) = &self.cmd {
            rc.set("Cmd", c)?;
        }
        for (k, v) in &self.strings {
            rc.set(k, v)?;
        }
        for (key, items) in [("ExposedPorts", &self.ports), ("Volumes", &self.volumes)] {
            if !items.is_empty() {
                let obj = rc.object_mut(key)?;
                for p in items {
                    if !obj.contains(p) {
                        obj.set(p, &serde_json::json!({}))?;
                    }
                }
            }
        }
        for (k, v) in &self.top {
            image.config.set(k, v)?;
        }
        match &self.variant {
            Some(Some(v)) => image.config.set("variant", v)?,
            Some(None) => {
                image.config.remove("variant");
            }
            None => {}
        }
        if let Some(t) = &self.created {
            image.config.set("created", t)?;
        }
        if let Some(comment) = &self.history_comment {
            image.add_history(&History {
                created: self.created.clone(),
                comment: Some(comment.clone()),
                empty_layer: Some(true),
                ..History::default()
            })?;
        }
        Ok(())
    }
}

/// Remove and set `KEY=VALUE` entries of `Env`, touching only the entries that change:
/// a set replaces the first entry with its key in place (and drops later duplicates), or
/// goes last.
fn edit_env(
    rc: &mut JsonDoc,
    remove: &[String],
    set: &[(String, String)],
) -> ocil_edit::Result<()> {
    let mut items: Vec<(Option<String>, Box<RawValue>)> = rc
        .array_raw("Env")?
        .into_iter()
        .map(|raw| {
            let key = serde_json::from_str::<String>(raw.get())
                .ok()
                .map(|s| s.split_once('=').map_or(s.clone(), |(k, _)| k.to_owned()));
            (key, raw)
        })
        .collect();
    items.retain(|(k, _)| !k.as_ref().is_some_and(|k| remove.contains(k)));
    for (k, v) in set {
        let raw = serde_json::value::to_raw_value(&format!("{k}={v}"))
            .map_err(|source| ocil_edit::Error::Serialize { what: format!("Env {k}"), source })?;
        match items.iter().position(|(key, _)| key.as_deref() == Some(k)) {
            Some(i) => {
                if serde_json::from_str::<String>(items[i].1.get()).ok().as_deref()
                    != Some(&format!("{k}={v}"))
                {
                    items[i].1 = raw;
                }
                let mut n = 0;
                items.retain(|(key, _)| {
                    let dup = key.as_deref() == Some(k);
                    n += usize::from(dup);
                    !dup || n == 1
                });
            }
            None => items.push((Some(k.clone()), raw)),
        }
    }
    let raws: Vec<Box<RawValue>> = items.into_iter().map(|(_, r)| r).collect();
    rc.set_array_raw("Env", &raws)
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
    let changes = Changes::parse(&a)?;
    let layout = target.open()?;
    let lock = layout.lock().with_context(|| format!("cannot lock `{}`", target.dir.display()))?;
    let edit = EditTarget { reference, platforms, new_tag: a.tag.as_deref() };
    let edited = edit_images(&layout, &lock, &edit, |image| changes.apply(image))
        .with_context(|| format!("cannot edit `{}` in `{}`", reference, target.dir.display()))?;
    drop(lock);
    print_edited(&edited, reference, a.tag.as_deref());
    Ok(Outcome::Ok)
}

/// One line per edited image, a line for moved attestations, then where the result is.
pub(crate) fn print_edited(edited: &ocil_edit::Edited, reference: &Reference, tag: Option<&str>) {
    for i in &edited.images {
        let platform = i.platform.as_deref().unwrap_or("(no platform)");
        if i.before == i.after {
            println!("{platform}: unchanged {}", i.after);
        } else {
            println!("{platform}: {} -> {}", i.before, i.after);
        }
    }
    if edited.attestations_moved > 0 {
        println!("attestations re-attached: {}", edited.attestations_moved);
    }
    let name = match (tag, reference) {
        (Some(t), _) => t.to_owned(),
        (None, Reference::Tag(t)) => t.clone(),
        (None, Reference::Digest(_)) => "entry".to_owned(),
    };
    println!("{name} -> {}", edited.after.digest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values() {
        assert_eq!(port("80").unwrap(), "80/tcp");
        assert_eq!(port("53/udp").unwrap(), "53/udp");
        assert!(port("0").is_err() && port("70000").is_err() && port("80/icmp").is_err());
        assert!(port("080").is_err() && port("http").is_err());
        assert_eq!(args_list("--cmd", r#"["a b","c"]"#).unwrap(), ["a b", "c"]);
        assert_eq!(args_list("--cmd", " echo  hi ").unwrap(), ["echo", "hi"]);
        assert!(args_list("--cmd", "[1]").is_err());
        assert!(key_value("--env", "=x").is_err() && key_value("--env", "x").is_err());
        assert_eq!(key_value("--env", "A=b=c").unwrap(), ("A".into(), "b=c".into()));
    }

    #[test]
    fn env_edits_touch_only_their_entries() {
        let mut doc = JsonDoc::parse(br#"{"Env":["A=\u003c1","B=2","B=3","C"]}"#, "x").unwrap();
        edit_env(&mut doc, &["C".into()], &[("B".into(), "9".into()), ("D".into(), "4".into())])
            .unwrap();
        assert_eq!(doc.to_vec(), br#"{"Env":["A=\u003c1","B=9","D=4"]}"#.to_vec());
    }
}
