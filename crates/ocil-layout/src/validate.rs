//! Structural validation of JSON documents against the image spec (v1.1): the rules of its
//! JSON schemas, with the spec's prose deciding where the two differ.
//!
//! Validation works on `serde_json::Value`, never on typed structs, so it can report every
//! problem of a document instead of the first parse error.

use serde_json::{Map, Value};

use crate::digest::parse_grammar;
use crate::media_type::is_valid_media_type_syntax;

/// Which kind of document to validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Image manifest (and Docker schema2 manifest).
    Manifest,
    /// Image index (and Docker manifest list, and `index.json`).
    Index,
    /// Image config.
    Config,
    /// A single descriptor.
    Descriptor,
    /// The `oci-layout` file.
    LayoutHeader,
}

/// What validation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Violations of a MUST: the document is invalid.
    pub errors: Vec<String>,
    /// Violations of a SHOULD.
    pub warnings: Vec<String>,
}

impl Findings {
    /// No errors.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
    fn err(&mut self, at: &str, msg: impl AsRef<str>) {
        self.errors.push(format!("{at}: {}", msg.as_ref()));
    }
}

/// Validate raw bytes as `schema`.
pub fn validate_bytes(schema: Schema, bytes: &[u8]) -> Findings {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => validate(schema, &v),
        Err(e) => Findings { errors: vec![format!("not valid JSON: {e}")], warnings: vec![] },
    }
}

/// Validate a parsed document as `schema`.
pub fn validate(schema: Schema, v: &Value) -> Findings {
    let mut f = Findings::default();
    match schema {
        Schema::Manifest => manifest(v, &mut f),
        Schema::Index => index(v, &mut f),
        Schema::Config => config(v, &mut f),
        Schema::Descriptor => descriptor(v, "$", &mut f),
        Schema::LayoutHeader => layout_header(v, &mut f),
    }
    f
}

fn object<'a>(v: &'a Value, at: &str, f: &mut Findings) -> Option<&'a Map<String, Value>> {
    match v.as_object() {
        Some(o) => Some(o),
        None => {
            f.err(at, "must be an object");
            None
        }
    }
}

fn schema_version(o: &Map<String, Value>, f: &mut Findings) {
    match o.get("schemaVersion") {
        None => f.err("schemaVersion", "is required"),
        Some(Value::Number(n)) if n.as_u64() == Some(2) => {}
        Some(Value::Number(_)) => f.err("schemaVersion", "must be 2"),
        Some(_) => f.err("schemaVersion", "must be an integer"),
    }
}

fn media_type_field(o: &Map<String, Value>, key: &str, at: &str, required: bool, f: &mut Findings) {
    let at = format!("{at}.{key}");
    match o.get(key) {
        None if required => f.err(&at, "is required"),
        None => {}
        Some(Value::String(s)) if is_valid_media_type_syntax(s) => {}
        Some(Value::String(s)) => f.err(&at, format!("`{s}` is not a valid media type")),
        Some(_) => f.err(&at, "must be a string"),
    }
}

fn string_map(v: Option<&Value>, at: &str, f: &mut Findings) {
    let Some(v) = v else { return };
    match v.as_object() {
        Some(o) => {
            for (k, val) in o {
                if !val.is_string() {
                    f.err(&format!("{at}.{k}"), "must be a string");
                }
            }
        }
        None => f.err(at, "must be an object of strings"),
    }
}

fn string_array(v: Option<&Value>, at: &str, f: &mut Findings) -> Vec<String> {
    let Some(v) = v else { return vec![] };
    match v.as_array() {
        Some(a) => a
            .iter()
            .enumerate()
            .filter_map(|(i, x)| match x.as_str() {
                Some(s) => Some(s.to_owned()),
                None => {
                    f.err(&format!("{at}[{i}]"), "must be a string");
                    None
                }
            })
            .collect(),
        None => {
            f.err(at, "must be an array of strings");
            vec![]
        }
    }
}

fn string_field(o: &Map<String, Value>, key: &str, at: &str, f: &mut Findings) {
    if let Some(v) = o.get(key)
        && !v.is_string()
    {
        f.err(&format!("{at}.{key}"), "must be a string");
    }
}

/// RFC 3986 `scheme ":" ...`: the `uri` format of the JSON schema.
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let mut chars = scheme.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn digest_field(v: Option<&Value>, at: &str, f: &mut Findings) {
    match v {
        None => f.err(at, "is required"),
        Some(Value::String(s)) => check_digest(s, at, f),
        Some(_) => f.err(at, "must be a string"),
    }
}

fn check_digest(s: &str, at: &str, f: &mut Findings) {
    match parse_grammar(s) {
        Err(_) => f.err(at, format!("`{s}` is not a valid digest")),
        Ok(d) => {
            let hex_len = match d.algorithm {
                "sha256" => Some(64),
                "sha512" => Some(128),
                _ => None,
            };
            if let Some(len) = hex_len
                && (d.encoded.len() != len
                    || !d.encoded.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            {
                f.err(
                    at,
                    format!("`{s}`: a {} digest is {len} lowercase hex characters", d.algorithm),
                );
            }
        }
    }
}

fn descriptor(v: &Value, at: &str, f: &mut Findings) {
    let Some(o) = object(v, at, f) else { return };
    media_type_field(o, "mediaType", at, true, f);
    digest_field(o.get("digest"), &format!("{at}.digest"), f);
    match o.get("size") {
        None => f.err(&format!("{at}.size"), "is required"),
        Some(Value::Number(n)) if n.as_u64().is_some() => {}
        Some(Value::Number(n)) if n.as_i64().is_some() => {
            f.err(&format!("{at}.size"), "must not be negative")
        }
        Some(_) => f.err(&format!("{at}.size"), "must be an integer"),
    }
    let urls = string_array(o.get("urls"), &format!("{at}.urls"), f);
    for (i, u) in urls.iter().enumerate() {
        if !is_uri(u) {
            f.err(&format!("{at}.urls[{i}]"), format!("`{u}` is not a URI"));
        }
    }
    string_map(o.get("annotations"), &format!("{at}.annotations"), f);
    if let Some(d) = o.get("data") {
        match d.as_str() {
            Some(s) => {
                use base64::Engine as _;
                if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
                    f.err(&format!("{at}.data"), "is not valid base64");
                }
            }
            None => f.err(&format!("{at}.data"), "must be a string"),
        }
    }
    media_type_field(o, "artifactType", at, false, f);
    if let Some(p) = o.get("platform") {
        platform(p, &format!("{at}.platform"), f);
    }
}

fn platform(v: &Value, at: &str, f: &mut Findings) {
    let Some(o) = object(v, at, f) else { return };
    for key in ["architecture", "os"] {
        match o.get(key) {
            None => f.err(&format!("{at}.{key}"), "is required"),
            Some(Value::String(_)) => {}
            Some(_) => f.err(&format!("{at}.{key}"), "must be a string"),
        }
    }
    string_field(o, "os.version", at, f);
    string_field(o, "variant", at, f);
    string_array(o.get("os.features"), &format!("{at}.os.features"), f);
    string_array(o.get("features"), &format!("{at}.features"), f);
}

fn manifest(v: &Value, f: &mut Findings) {
    let Some(o) = object(v, "$", f) else { return };
    schema_version(o, f);
    media_type_field(o, "mediaType", "$", false, f);
    media_type_field(o, "artifactType", "$", false, f);
    match o.get("config") {
        None => f.err("config", "is required"),
        Some(c) => descriptor(c, "config", f),
    }
    match o.get("layers") {
        None => f.err("layers", "is required"),
        Some(Value::Array(a)) => {
            // The schema says minItems 1; manifest.md (v1.1) says layers SHOULD have at least
            // one entry, and real tools write zero-layer images (umoci new). The prose wins.
            if a.is_empty() {
                f.warnings.push("layers: is empty (the spec says SHOULD have at least one)".into());
            }
            for (i, l) in a.iter().enumerate() {
                descriptor(l, &format!("layers[{i}]"), f);
            }
        }
        Some(_) => f.err("layers", "must be an array"),
    }
    if let Some(s) = o.get("subject") {
        descriptor(s, "subject", f);
    }
    string_map(o.get("annotations"), "annotations", f);
    if o.contains_key("manifests") {
        f.err("manifests", "a manifest must not have `manifests` (ambiguous with an index)");
    }
}

fn index(v: &Value, f: &mut Findings) {
    let Some(o) = object(v, "$", f) else { return };
    schema_version(o, f);
    media_type_field(o, "mediaType", "$", false, f);
    media_type_field(o, "artifactType", "$", false, f);
    match o.get("manifests") {
        None => f.err("manifests", "is required"),
        Some(Value::Array(a)) => {
            for (i, m) in a.iter().enumerate() {
                descriptor(m, &format!("manifests[{i}]"), f);
            }
        }
        Some(Value::Null) => f.err("manifests", "is null, must be an array"),
        Some(_) => f.err("manifests", "must be an array"),
    }
    if let Some(s) = o.get("subject") {
        descriptor(s, "subject", f);
    }
    string_map(o.get("annotations"), "annotations", f);
    for key in ["config", "layers"] {
        if o.contains_key(key) {
            f.err(key, "an index must not have `config` or `layers` (ambiguous with a manifest)");
        }
    }
}

fn config(v: &Value, f: &mut Findings) {
    let Some(o) = object(v, "$", f) else { return };
    for key in ["architecture", "os"] {
        match o.get(key) {
            None => f.err(key, "is required"),
            Some(Value::String(_)) => {}
            Some(_) => f.err(key, "must be a string"),
        }
    }
    for key in ["created", "author", "variant", "os.version"] {
        string_field(o, key, "$", f);
    }
    string_array(o.get("os.features"), "os.features", f);
    match o.get("rootfs") {
        None => f.err("rootfs", "is required"),
        Some(r) => {
            if let Some(r) = object(r, "rootfs", f) {
                match r.get("type") {
                    Some(Value::String(t)) if t == "layers" => {}
                    Some(Value::String(t)) => {
                        f.err("rootfs.type", format!("is `{t}`, must be `layers`"))
                    }
                    Some(_) => f.err("rootfs.type", "must be a string"),
                    None => f.err("rootfs.type", "is required"),
                }
                match r.get("diff_ids") {
                    None => f.err("rootfs.diff_ids", "is required"),
                    Some(Value::Array(a)) => {
                        for (i, d) in a.iter().enumerate() {
                            digest_field(Some(d), &format!("rootfs.diff_ids[{i}]"), f);
                        }
                    }
                    Some(_) => f.err("rootfs.diff_ids", "must be an array"),
                }
            }
        }
    }
    if let Some(c) = o.get("config")
        && let Some(c) = object(c, "config", f)
    {
        for key in ["User", "WorkingDir", "StopSignal"] {
            string_field(c, key, "config", f);
        }
        // Docker writes `null` for an empty Env too (`docker import` does).
        let env = string_array(c.get("Env").filter(|v| !v.is_null()), "config.Env", f);
        for (i, e) in env.iter().enumerate() {
            if e.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                f.err(&format!("config.Env[{i}]"), format!("`{e}` is not KEY=value"));
            }
        }
        // Docker writes `null` for empty Entrypoint/Cmd; the schema allows null there.
        for key in ["Entrypoint", "Cmd"] {
            if c.get(key).is_some_and(|v| !v.is_null()) {
                string_array(c.get(key), &format!("config.{key}"), f);
            }
        }
        for key in ["ExposedPorts", "Volumes"] {
            if let Some(v) = c.get(key)
                && !v.is_null()
                && !v.is_object()
            {
                f.err(&format!("config.{key}"), "must be an object (a set of strings)");
            }
        }
        if c.get("Labels").is_some_and(|v| !v.is_null()) {
            string_map(c.get("Labels"), "config.Labels", f);
        }
    }
    match o.get("history") {
        None => {}
        Some(Value::Array(a)) => {
            for (i, h) in a.iter().enumerate() {
                let at = format!("history[{i}]");
                if let Some(h) = object(h, &at, f) {
                    for key in ["created", "author", "created_by", "comment"] {
                        string_field(h, key, &at, f);
                    }
                    if let Some(e) = h.get("empty_layer")
                        && !e.is_boolean()
                    {
                        f.err(&format!("{at}.empty_layer"), "must be a boolean");
                    }
                }
            }
        }
        Some(_) => f.err("history", "must be an array"),
    }
}

fn layout_header(v: &Value, f: &mut Findings) {
    let Some(o) = object(v, "$", f) else { return };
    match o.get("imageLayoutVersion") {
        None => f.err("imageLayoutVersion", "is required"),
        Some(Value::String(s)) if s == "1.0.0" => {}
        Some(Value::String(s)) => f.err("imageLayoutVersion", format!("is `{s}`, must be `1.0.0`")),
        Some(_) => f.err("imageLayoutVersion", "must be a string"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_documents() {
        let m = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;
        let f = validate_bytes(Schema::Manifest, m.as_bytes());
        assert!(f.is_valid(), "{f:?}");
        assert_eq!(f.warnings.len(), 1);
        assert!(
            !validate_bytes(Schema::Index, br#"{"schemaVersion":2,"manifests":null}"#).is_valid()
        );
        assert!(validate_bytes(Schema::Index, br#"{"schemaVersion":2,"manifests":[]}"#).is_valid());
        assert!(
            !validate_bytes(Schema::Index, br#"{"schemaVersion":2,"manifests":[],"layers":[]}"#)
                .is_valid()
        );
        assert!(!validate_bytes(Schema::Config, b"not json").is_valid());
    }

    #[test]
    fn docker_nulls_in_a_config_are_empty_values() {
        // What `docker import` (Docker 20.10) writes: null for every empty list and map.
        let c = br#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Cmd":null,"Entrypoint":null,"Volumes":null,"Labels":null,"OnBuild":null},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let f = validate_bytes(Schema::Config, c);
        assert!(f.is_valid(), "{f:?}");
        let bad = br#"{"architecture":"amd64","os":"linux","config":{"Env":"A=B"},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        assert!(!validate_bytes(Schema::Config, bad).is_valid());
    }

    #[test]
    fn uris() {
        assert!(is_uri("https://example.com/x"));
        assert!(!is_uri("value"));
        assert!(!is_uri("1http://x"));
    }
}
