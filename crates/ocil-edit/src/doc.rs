//! [`JsonDoc`]: a JSON object edited losslessly.
//!
//! A stored document is named by the digest of its bytes, so an edit must not disturb what
//! it was not asked to change. `JsonDoc` keeps every member's value as the exact text it was
//! read with (`serde_json::value::RawValue`), in the original order; only members that are
//! set are serialised anew, and a document nobody changed serialises to its original bytes.
//! Nested objects (a config's `config`, a descriptor's `annotations`) are opened with
//! [`JsonDoc::object_mut`] and follow the same rules.
//!
//! Output is compact (no whitespace between members), so the same edit of the same input
//! gives the same bytes every time. Keys are written the standard way (a key spelled with a
//! needless escape, `"\u0061"`, comes out as `"a"`); values keep their text.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{Error, Result};

/// A JSON object whose members keep their bytes and order unless changed.
#[derive(Debug, Clone)]
pub struct JsonDoc {
    /// Name for errors: a blob path, then `.member` for nested objects.
    name: String,
    /// The exact text this object was parsed from; `None` for a new object.
    original: Option<Vec<u8>>,
    members: Vec<(String, Slot)>,
    /// Members were added, removed or replaced at this level.
    changed: bool,
}

#[derive(Debug, Clone)]
enum Slot {
    /// The value's text, as read or as newly serialised.
    Raw(Box<RawValue>),
    /// An object opened for editing.
    Doc(JsonDoc),
}

impl Slot {
    /// A nested object opened where there was no member, not written to: not serialised.
    fn is_placeholder(&self) -> bool {
        matches!(self, Slot::Doc(d) if d.original.is_none() && !d.is_changed())
    }
}

impl JsonDoc {
    /// Parse a JSON object. `name` (a blob path, say) is used in errors.
    ///
    /// Errors when the bytes are not a JSON object, or when a key appears twice (readers
    /// disagree on which value wins, so no edit can be lossless).
    pub fn parse(bytes: &[u8], name: &str) -> Result<JsonDoc> {
        let members: Members = serde_json::from_slice(bytes)
            .map_err(|source| Error::InvalidJson { path: name.to_owned(), source })?;
        if let Some(key) = members.duplicate {
            return Err(Error::DuplicateKey { path: name.to_owned(), key });
        }
        Ok(JsonDoc {
            name: name.to_owned(),
            original: Some(bytes.to_vec()),
            members: members.list.into_iter().map(|(k, v)| (k, Slot::Raw(v))).collect(),
            changed: false,
        })
    }

    /// A new, empty object.
    pub fn new(name: &str) -> JsonDoc {
        JsonDoc { name: name.to_owned(), original: None, members: Vec::new(), changed: true }
    }

    /// The name used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().filter(|(_, s)| !s.is_placeholder()).map(|(k, _)| k.as_str())
    }

    /// Whether the object has `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Whether anything changed since parsing (a new object counts as changed).
    pub fn is_changed(&self) -> bool {
        self.changed
            || self.members.iter().any(|(_, s)| matches!(s, Slot::Doc(d) if d.is_changed()))
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.members.iter().position(|(k, s)| k == key && !s.is_placeholder())
    }

    /// The slot of `key`, placeholders included.
    fn slot_position(&self, key: &str) -> Option<usize> {
        self.members.iter().position(|(k, _)| k == key)
    }

    /// An object opened where there was none (or `null`) and not written to yet: it keeps
    /// the document unchanged until something is set in it.
    fn placeholder(name: &str, original: Option<Vec<u8>>) -> JsonDoc {
        JsonDoc { name: name.to_owned(), original, members: Vec::new(), changed: false }
    }

    /// A member's exact text, if present and not opened with [`JsonDoc::object_mut`]
    /// (an opened object has no single text until serialised: use [`JsonDoc::get`]).
    pub fn get_raw(&self, key: &str) -> Option<&RawValue> {
        match &self.members[self.position(key)?].1 {
            Slot::Raw(r) => Some(r),
            Slot::Doc(_) => None,
        }
    }

    /// A member, deserialised; `None` when absent. `null` is passed to `T` (use
    /// `Option<T>` to accept it).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(i) = self.position(key) else { return Ok(None) };
        let parsed = match &self.members[i].1 {
            Slot::Raw(r) => serde_json::from_str(r.get()),
            Slot::Doc(d) => serde_json::from_slice(&d.to_vec()),
        };
        parsed
            .map(Some)
            .map_err(|source| Error::InvalidJson { path: self.member_name(key), source })
    }

    /// A member that must be a string, if present (`null` reads as absent).
    pub fn get_str(&self, key: &str) -> Result<Option<String>> {
        match self.get::<Value>(key)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong_type(key, "a string")),
        }
    }

    /// Set a member. An existing member keeps its position (and its bytes, when the new
    /// value equals the old one); a new member goes last.
    pub fn set<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let raw = serde_json::value::to_raw_value(value)
            .map_err(|source| Error::Serialize { what: self.member_name(key), source })?;
        self.set_raw(key, raw);
        Ok(())
    }

    /// Set a member to exact JSON text (which the caller has produced with serde_json).
    pub fn set_raw(&mut self, key: &str, raw: Box<RawValue>) {
        if let Some(i) = self.slot_position(key)
            && self.members[i].1.is_placeholder()
        {
            self.members.remove(i);
        }
        match self.position(key) {
            Some(i) => {
                let same = match &self.members[i].1 {
                    Slot::Raw(old) => old.get() == raw.get() || same_value(old.get(), raw.get()),
                    Slot::Doc(_) => false,
                };
                if !same {
                    self.members[i].1 = Slot::Raw(raw);
                    self.changed = true;
                }
            }
            None => {
                self.members.push((key.to_owned(), Slot::Raw(raw)));
                self.changed = true;
            }
        }
    }

    /// Remove a member; whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        if let Some(i) = self.slot_position(key)
            && self.members[i].1.is_placeholder()
        {
            self.members.remove(i);
        }
        match self.position(key) {
            Some(i) => {
                self.members.remove(i);
                self.changed = true;
                true
            }
            None => false,
        }
    }

    /// Open a nested object for editing. A missing or `null` member becomes an empty
    /// object, which changes the document only once something is set in it; any other
    /// type is an error.
    pub fn object_mut(&mut self, key: &str) -> Result<&mut JsonDoc> {
        let name = self.member_name(key);
        let i = match self.slot_position(key) {
            Some(i) => i,
            None => {
                self.members.push((key.to_owned(), Slot::Doc(JsonDoc::placeholder(&name, None))));
                self.members.len() - 1
            }
        };
        if let Slot::Raw(raw) = &self.members[i].1 {
            let text = raw.get();
            let doc = if text == "null" {
                JsonDoc::placeholder(&name, Some(b"null".to_vec()))
            } else if text.starts_with('{') {
                JsonDoc::parse(text.as_bytes(), &name)?
            } else {
                return Err(self.wrong_type(key, "an object"));
            };
            self.members[i].1 = Slot::Doc(doc);
        }
        match &mut self.members[i].1 {
            Slot::Doc(d) => Ok(d),
            Slot::Raw(_) => unreachable!("the slot was just made a `Doc`"),
        }
    }

    /// Read an array member as its elements' exact texts; an absent or `null` member is
    /// empty.
    pub fn array_raw(&self, key: &str) -> Result<Vec<Box<RawValue>>> {
        match self.get::<Value>(key)? {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(_)) => {}
            Some(_) => return Err(self.wrong_type(key, "an array")),
        }
        Ok(self.get::<Vec<Box<RawValue>>>(key)?.unwrap_or_default())
    }

    /// Replace an array member with these element texts (each kept as it is).
    pub fn set_array_raw(&mut self, key: &str, items: &[Box<RawValue>]) -> Result<()> {
        self.set(key, items)
    }

    /// Append a value to an array member, creating it when absent or `null`; the existing
    /// elements keep their bytes.
    pub fn push<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let mut items = self.array_raw(key)?;
        items.push(
            serde_json::value::to_raw_value(value)
                .map_err(|source| Error::Serialize { what: self.member_name(key), source })?,
        );
        self.set_array_raw(key, &items)
    }

    /// Edit each object element of an array member in place: `f` gets its position and the
    /// element as a `JsonDoc`; untouched elements keep their bytes. An element that is not
    /// an object is an error.
    pub fn edit_array_objects(
        &mut self,
        key: &str,
        mut f: impl FnMut(usize, &mut JsonDoc) -> Result<()>,
    ) -> Result<()> {
        let items = self.array_raw(key)?;
        let mut out = Vec::with_capacity(items.len());
        let mut any = false;
        for (i, item) in items.into_iter().enumerate() {
            if !item.get().starts_with('{') {
                return Err(self.wrong_type(key, "an array of objects"));
            }
            let mut doc =
                JsonDoc::parse(item.get().as_bytes(), &format!("{}[{i}]", self.member_name(key)))?;
            f(i, &mut doc)?;
            if doc.is_changed() {
                any = true;
                out.push(doc.to_raw()?);
            } else {
                out.push(item);
            }
        }
        if any {
            self.set_array_raw(key, &out)?;
        }
        Ok(())
    }

    /// Serialise: the original bytes when nothing changed, else the members in order,
    /// compact, unchanged members as their original text.
    pub fn to_vec(&self) -> Vec<u8> {
        if !self.is_changed()
            && let Some(orig) = &self.original
        {
            return orig.clone();
        }
        let mut out = Vec::with_capacity(self.original.as_ref().map_or(64, Vec::len) + 64);
        out.push(b'{');
        let mut first = true;
        for (k, slot) in &self.members {
            if slot.is_placeholder() {
                continue;
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            // Serialising a `&str` cannot fail.
            out.extend_from_slice(serde_json::to_string(k).unwrap_or_default().as_bytes());
            out.push(b':');
            match slot {
                Slot::Raw(r) => out.extend_from_slice(r.get().as_bytes()),
                Slot::Doc(d) => out.extend_from_slice(&d.to_vec()),
            }
        }
        out.push(b'}');
        out
    }

    /// Serialise as one raw value (for nesting into another document).
    pub fn to_raw(&self) -> Result<Box<RawValue>> {
        let text = String::from_utf8(self.to_vec()).map_err(|_| Error::WrongType {
            path: self.name.clone(),
            key: String::new(),
            expected: "UTF-8",
        })?;
        RawValue::from_string(text)
            .map_err(|source| Error::InvalidJson { path: self.name.clone(), source })
    }

    fn member_name(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    fn wrong_type(&self, key: &str, expected: &'static str) -> Error {
        Error::WrongType { path: self.name.clone(), key: key.to_owned(), expected }
    }
}

/// Whether two JSON texts hold the same value (so a set of an equal value keeps the old
/// bytes, `1.0` and `1` differ, as they do to serde_json).
fn same_value(a: &str, b: &str) -> bool {
    match (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// An object's members in order, with the first duplicate key noted.
struct Members {
    list: Vec<(String, Box<RawValue>)>,
    duplicate: Option<String>,
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Members, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Members, A::Error> {
                let mut list = Vec::new();
                let mut seen = HashSet::new();
                let mut duplicate = None;
                while let Some(k) = map.next_key::<String>()? {
                    let v: Box<RawValue> = map.next_value()?;
                    if !seen.insert(k.clone()) && duplicate.is_none() {
                        duplicate = Some(k.clone());
                    }
                    list.push((k, v));
                }
                Ok(Members { list, duplicate })
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"architecture":"amd64","config":{"Env":["PATH=/bin"],"Cmd":null,"Labels":{"a":"\u003cb\u003e"}},"created":"2024-01-01T00:00:00.000000001Z","docker_version":"1.0","container_config":{"Hostname":""},"weird":1.0,"rootfs":{"type":"layers","diff_ids":[]}}"#;

    #[test]
    fn unchanged_is_byte_identical() {
        let doc = JsonDoc::parse(b"{ \"b\" : 1.0 ,\n \"a\":[1, 2] }\n", "x").unwrap();
        assert!(!doc.is_changed());
        assert_eq!(doc.to_vec(), b"{ \"b\" : 1.0 ,\n \"a\":[1, 2] }\n");
        assert_eq!(doc.keys().collect::<Vec<_>>(), ["b", "a"]);
    }

    #[test]
    fn edits_keep_other_members_raw_and_in_order() {
        let mut doc = JsonDoc::parse(CONFIG.as_bytes(), "cfg").unwrap();
        let cfg = doc.object_mut("config").unwrap();
        let mut env: Vec<String> = cfg.get("Env").unwrap().unwrap();
        env.push("A=B".into());
        cfg.set("Env", &env).unwrap();
        let out = String::from_utf8(doc.to_vec()).unwrap();
        assert_eq!(
            out,
            r#"{"architecture":"amd64","config":{"Env":["PATH=/bin","A=B"],"Cmd":null,"Labels":{"a":"\u003cb\u003e"}},"created":"2024-01-01T00:00:00.000000001Z","docker_version":"1.0","container_config":{"Hostname":""},"weird":1.0,"rootfs":{"type":"layers","diff_ids":[]}}"#
        );
    }

    #[test]
    fn setting_an_equal_value_changes_nothing() {
        let mut doc = JsonDoc::parse(CONFIG.as_bytes(), "cfg").unwrap();
        doc.set("architecture", "amd64").unwrap();
        doc.object_mut("config").unwrap().set("Cmd", &Value::Null).unwrap();
        assert!(!doc.is_changed());
        doc.set("weird", &1).unwrap();
        assert!(doc.is_changed());
        assert!(String::from_utf8(doc.to_vec()).unwrap().contains(r#""weird":1,"#));
    }

    #[test]
    fn push_remove_and_new_members() {
        let mut doc = JsonDoc::parse(br#"{"a":[ 1 ,2],"n":null}"#, "x").unwrap();
        doc.push("a", &3).unwrap();
        doc.push("h", "x").unwrap();
        doc.object_mut("n").unwrap().set("k", "v").unwrap();
        assert!(!doc.remove("nope"));
        // Opened, never written: neither member appears, and `n2` stays `null`.
        let mut untouched = JsonDoc::parse(br#"{"n2":null}"#, "y").unwrap();
        untouched.object_mut("n2").unwrap();
        untouched.object_mut("absent").unwrap();
        assert!(!untouched.is_changed());
        assert_eq!(untouched.to_vec(), br#"{"n2":null}"#.to_vec());
        assert_eq!(untouched.keys().collect::<Vec<_>>(), ["n2"]);
        assert_eq!(doc.to_vec(), br#"{"a":[1,2,3],"n":{"k":"v"},"h":["x"]}"#.to_vec());
        assert!(doc.remove("a"));
        assert_eq!(doc.to_vec(), br#"{"n":{"k":"v"},"h":["x"]}"#.to_vec());
    }

    #[test]
    fn edit_array_objects_touches_only_edited_elements() {
        let mut doc =
            JsonDoc::parse(br#"{"m":[{"size":1,"digest":"a"},{ "size" : 2 ,"digest":"b"}]}"#, "i")
                .unwrap();
        doc.edit_array_objects("m", |i, d| if i == 0 { d.set("size", &5) } else { Ok(()) })
            .unwrap();
        assert_eq!(
            doc.to_vec(),
            br#"{"m":[{"size":5,"digest":"a"},{ "size" : 2 ,"digest":"b"}]}"#.to_vec()
        );
    }

    /// Seeded random edits against a model (a list of key/value pairs): the output parses to
    /// the model's object, in the model's order, and untouched members keep their text.
    #[test]
    fn random_edits_match_a_model() {
        let mut seed = 0x6a73_6f6e_646f_6321_u64;
        let mut below = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let texts = ["1.0", "\"\\u003c\"", "[1, 2]", "{\"a\" : null}", "true", "-0", "\"x\""];
        for round in 0..200 {
            let n = below(6);
            let mut input = String::from("{ ");
            let mut model: Vec<(String, Value, Option<String>)> = Vec::new();
            for i in 0..n {
                let t = texts[below(texts.len() as u64) as usize];
                if i > 0 {
                    input.push_str(" , ");
                }
                input.push_str(&format!("\"k{i}\" :{t}"));
                model.push((format!("k{i}"), serde_json::from_str(t).unwrap(), Some(t.into())));
            }
            input.push_str(" }");
            let mut doc = JsonDoc::parse(input.as_bytes(), "x").unwrap();
            for _ in 0..below(4) {
                let key = format!("k{}", below(8));
                let pos = model.iter().position(|(k, _, _)| *k == key);
                if below(3) == 0 {
                    assert_eq!(doc.remove(&key), pos.is_some());
                    if let Some(p) = pos {
                        model.remove(p);
                    }
                } else {
                    let v = serde_json::json!({ "r": round });
                    doc.set(&key, &v).unwrap();
                    match pos {
                        Some(p) if model[p].1 != v => model[p] = (key, v, None),
                        Some(_) => {}
                        None => model.push((key, v, None)),
                    }
                }
            }
            let out = String::from_utf8(doc.to_vec()).unwrap();
            if !doc.is_changed() {
                assert_eq!(out, input);
                continue;
            }
            let back = JsonDoc::parse(out.as_bytes(), "y").unwrap();
            assert_eq!(
                back.keys().collect::<Vec<_>>(),
                model.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
                "{input} -> {out}"
            );
            for (k, v, text) in &model {
                assert_eq!(&back.get::<Value>(k).unwrap().unwrap(), v);
                if let Some(t) = text {
                    assert_eq!(back.get_raw(k).unwrap().get(), t, "{input} -> {out}");
                }
            }
        }
    }

    #[test]
    fn refuses_duplicates_and_non_objects() {
        let err = JsonDoc::parse(br#"{"a":1,"b":2,"a":3}"#, "blobs/sha256/x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`blobs/sha256/x` has the key `a` more than once; refusing to edit an ambiguous document"
        );
        assert!(matches!(JsonDoc::parse(b"[1]", "x"), Err(Error::InvalidJson { .. })));
        assert!(matches!(JsonDoc::parse(b"{\"a\":1} x", "x"), Err(Error::InvalidJson { .. })));
        let mut doc = JsonDoc::parse(br#"{"c":[1]}"#, "x").unwrap();
        assert!(matches!(doc.object_mut("c"), Err(Error::WrongType { .. })));
        let nested = JsonDoc::parse(br#"{"c":{"k":1,"k":2}}"#, "x").unwrap().object_mut("c").err();
        assert!(matches!(nested, Some(Error::DuplicateKey { .. })), "{nested:?}");
    }
}
