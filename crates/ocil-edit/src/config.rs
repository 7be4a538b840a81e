//! Config edits (`ocil config`): env, entrypoint, cmd, labels, ports, volumes and the other
//! fields of an image config, applied losslessly to an [`Image`] inside
//! [`crate::edit_images`], and the checks their values must pass.
//!
//! Order: [`ConfigChanges::clear`] first, then removals, then settings. `Env` entries are
//! edited one by one: a set replaces the first entry with its key in place (and drops later
//! duplicates) or goes last; entries not named keep their exact bytes.

use serde_json::value::RawValue;

use crate::{Error, History, Image, JsonDoc, Result};

/// A config field that [`ConfigChanges::clear`] empties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigField {
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

impl ConfigField {
    /// Every field, in the order `--clear` lists them.
    pub const ALL: [ConfigField; 7] = [
        ConfigField::Env,
        ConfigField::Entrypoint,
        ConfigField::Cmd,
        ConfigField::Labels,
        ConfigField::ExposedPorts,
        ConfigField::Volumes,
        ConfigField::History,
    ];

    /// Its name on the command line: `env`, `exposed-ports`, ...
    pub fn name(self) -> &'static str {
        match self {
            ConfigField::Env => "env",
            ConfigField::Entrypoint => "entrypoint",
            ConfigField::Cmd => "cmd",
            ConfigField::Labels => "labels",
            ConfigField::ExposedPorts => "exposed-ports",
            ConfigField::Volumes => "volumes",
            ConfigField::History => "history",
        }
    }

    /// Where it is in the config: `config.Env`, `history`.
    pub fn path(self) -> String {
        match self.key() {
            (key, true) => format!("config.{key}"),
            (key, false) => key.to_owned(),
        }
    }

    /// The key, and whether it lives in the runtime config (`config`) rather than the top.
    fn key(self) -> (&'static str, bool) {
        match self {
            ConfigField::Env => ("Env", true),
            ConfigField::Entrypoint => ("Entrypoint", true),
            ConfigField::Cmd => ("Cmd", true),
            ConfigField::Labels => ("Labels", true),
            ConfigField::ExposedPorts => ("ExposedPorts", true),
            ConfigField::Volumes => ("Volumes", true),
            ConfigField::History => ("history", false),
        }
    }
}

/// What to change in an image config; values are checked by the parsers of this module.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigChanges {
    /// Fields to empty, first.
    pub clear: Vec<ConfigField>,
    /// `Env` variables to remove.
    pub env_rm: Vec<String>,
    /// `Env` variables to set.
    pub env: Vec<(String, String)>,
    /// Labels to remove.
    pub label_rm: Vec<String>,
    /// Labels to set.
    pub labels: Vec<(String, String)>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `WorkingDir`, `User`, `StopSignal` of the runtime config.
    pub runtime_strings: Vec<(&'static str, String)>,
    /// `ExposedPorts` keys to add (`80/tcp`).
    pub ports: Vec<String>,
    /// `Volumes` to add.
    pub volumes: Vec<String>,
    /// `author`, `os`, `architecture` at the top.
    pub top_strings: Vec<(&'static str, String)>,
    /// `variant`: set (`Some(Some)`) or removed (`Some(None)`).
    pub variant: Option<Option<String>>,
    /// `created` (RFC 3339), also the history entry's.
    pub created: Option<String>,
    /// A history entry to add (an empty layer) with this comment.
    pub history_comment: Option<String>,
}

fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidValue { what, value: value.into(), reason: reason.into() }
}

/// `KEY=VALUE` with a non-empty key (`what` names the value in errors, e.g. `--env`).
pub fn parse_key_value(what: &'static str, s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(invalid(what, s, "expected KEY=VALUE")),
    }
}

/// A variable name to remove from `Env`: non-empty, no `=`.
pub fn parse_env_name(what: &'static str, s: &str) -> Result<String> {
    if s.is_empty() || s.contains('=') {
        return Err(invalid(what, s, "expected a variable name (no `=`)"));
    }
    Ok(s.to_owned())
}

/// A JSON array of strings, or whitespace-separated words (`Entrypoint`, `Cmd`).
pub fn parse_args(what: &'static str, s: &str) -> Result<Vec<String>> {
    if s.trim_start().starts_with('[') {
        return serde_json::from_str(s).map_err(|e| {
            invalid(
                what,
                s,
                format!("a value starting with `[` must be a JSON array of strings ({e})"),
            )
        });
    }
    Ok(s.split_whitespace().map(str::to_owned).collect())
}

/// `80`, `80/tcp`, `53/udp`, `132/sctp` -> the `ExposedPorts` key.
pub fn parse_port(what: &'static str, s: &str) -> Result<String> {
    let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let ok_num = num.parse::<u16>().is_ok_and(|n| n > 0) && !num.starts_with('0');
    if !ok_num || !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(invalid(what, s, "expected PORT[/tcp|/udp|/sctp] with PORT in 1-65535"));
    }
    Ok(format!("{num}/{proto}"))
}

/// An absolute path (`WorkingDir`, a volume).
pub fn parse_absolute_path(what: &'static str, s: &str) -> Result<String> {
    if !s.starts_with('/') {
        return Err(invalid(what, s, "expected an absolute path"));
    }
    Ok(s.to_owned())
}

/// A value that must not be empty (`os`, `architecture`, a label key to remove);
/// `expected` says what it is.
pub fn parse_non_empty(what: &'static str, s: &str, expected: &str) -> Result<String> {
    if s.is_empty() {
        return Err(invalid(what, s, format!("expected {expected}")));
    }
    Ok(s.to_owned())
}

impl ConfigChanges {
    /// Whether nothing would change (`created` alone is a change).
    pub fn is_empty(&self) -> bool {
        *self == ConfigChanges::default()
    }

    /// Apply the changes to an image's config, losslessly.
    pub fn apply(&self, image: &mut Image) -> Result<()> {
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
        for (k, v) in &self.runtime_strings {
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
        for (k, v) in &self.top_strings {
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
fn edit_env(rc: &mut JsonDoc, remove: &[String], set: &[(String, String)]) -> Result<()> {
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
            .map_err(|source| Error::Serialize { what: format!("Env {k}"), source })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values() {
        assert_eq!(parse_port("--expose", "80").unwrap(), "80/tcp");
        assert_eq!(parse_port("--expose", "53/udp").unwrap(), "53/udp");
        for bad in ["0", "70000", "80/icmp", "080", "http"] {
            assert!(parse_port("--expose", bad).is_err(), "{bad}");
        }
        assert_eq!(parse_args("--cmd", r#"["a b","c"]"#).unwrap(), ["a b", "c"]);
        assert_eq!(parse_args("--cmd", " echo  hi ").unwrap(), ["echo", "hi"]);
        assert!(parse_args("--cmd", "[1]").is_err());
        assert!(parse_key_value("--env", "=x").is_err());
        assert!(parse_key_value("--env", "x").is_err());
        assert_eq!(parse_key_value("--env", "A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_env_name("--env-rm", "A=1").is_err());
        assert!(parse_absolute_path("--workdir", "app").is_err());
        let e = parse_port("--expose", "http").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --expose `http`: expected PORT[/tcp|/udp|/sctp] with PORT in 1-65535"
        );
    }

    #[test]
    fn env_edits_touch_only_their_entries() {
        let mut doc = JsonDoc::parse(br#"{"Env":["A=\u003c1","B=2","B=3","C"]}"#, "x").unwrap();
        edit_env(&mut doc, &["C".into()], &[("B".into(), "9".into()), ("D".into(), "4".into())])
            .unwrap();
        assert_eq!(doc.to_vec(), br#"{"Env":["A=\u003c1","B=9","D=4"]}"#.to_vec());
    }

    #[test]
    fn nothing_is_empty() {
        assert!(ConfigChanges::default().is_empty());
        let c =
            ConfigChanges { created: Some("2024-01-01T00:00:00Z".into()), ..Default::default() };
        assert!(!c.is_empty());
    }
}
