//! The hostile corpus: the archives of `testdata/hostile/` (written by `cargo xtask
//! fixtures`, see its README) and what each must do, from its `expected.json`.

#![allow(dead_code)]

use std::path::PathBuf;

/// One hostile archive.
pub(crate) struct Hostile {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    /// `Error::code()` of the import.
    pub(crate) code: String,
    /// Text the error message must contain (usually the entry, in backticks).
    pub(crate) mentions: String,
    /// Exit code of `ocil fsck FILE`.
    pub(crate) fsck_exit: i32,
    /// Severity of the problem fsck reports with `code` (`None`: no problem).
    pub(crate) fsck_severity: Option<String>,
    /// Whether reading it in place (`ocil ls FILE`) is refused too.
    pub(crate) view_refuses: bool,
}

impl Hostile {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path)
            .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", self.path.display()))
    }
}

/// Every archive of `testdata/hostile/`, in name order.
pub(crate) fn corpus() -> Vec<Hostile> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/hostile");
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap_or_else(|e| {
        panic!("cannot read `{}/expected.json` (run `cargo xtask fixtures`): {e}", dir.display())
    });
    let expected: serde_json::Value = serde_json::from_str(&text).expect("expected.json parses");
    let s = |v: &serde_json::Value, k: &str| {
        v[k].as_str().unwrap_or_else(|| panic!("expected.json: no `{k}` string in {v}")).to_owned()
    };
    expected
        .as_object()
        .expect("expected.json is an object")
        .iter()
        .map(|(name, v)| Hostile {
            name: name.clone(),
            path: dir.join(s(v, "file")),
            code: s(v, "code"),
            mentions: s(v, "mentions"),
            fsck_exit: v["fsck_exit"].as_i64().expect("fsck_exit") as i32,
            fsck_severity: v["fsck_severity"].as_str().map(str::to_owned),
            view_refuses: v["view_refuses"].as_bool().expect("view_refuses"),
        })
        .collect()
}
