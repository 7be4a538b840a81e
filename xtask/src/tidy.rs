//! `cargo xtask tidy`: the conventions of STYLE.md, as checks.
//!
//! - every `.rs` file under `crates/` and `xtask/` begins with a `//!` module doc;
//! - no ignored or should-panic tests and no `todo`, `unimplemented` or `dbg` macros there;
//! - library crates (`crates/ocil-*`) depend on neither clap nor anyhow (from `cargo metadata`);
//! - library crates do not use `std::fs` in `src/` (outside the trailing `#[cfg(test)]` module).
//!
//! Exits 1 listing every violation.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::Result;

/// Banned text, spelled with `concat!` so this file does not ban itself.
const BANNED: [(&str, &str); 5] = [
    (concat!("#[", "ignore"), "an ignored test: a test either runs or is deleted"),
    (concat!("#[", "should_panic"), "a should-panic test: test the error value instead"),
    (concat!("to", "do!("), "`todo!`: unfinished code"),
    (concat!("unimpl", "emented!("), "`unimplemented!`: unfinished code"),
    (concat!("db", "g!("), "`dbg!`: leftover debugging"),
];

/// Dependencies a library crate must not have (outside dev-dependencies).
const LIBRARY_BANNED_DEPS: [&str; 2] = ["clap", "anyhow"];

pub(crate) fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        return Err(crate::usage("cargo xtask tidy"));
    }
    let root = crate::project_root();
    let mut violations = Vec::new();
    for dir in ["crates", "xtask"] {
        for file in rust_files(&root.join(dir))? {
            let rel = file.strip_prefix(&root)?.to_string_lossy().replace('\\', "/");
            let text = fs_err::read_to_string(&file)?;
            check_file(&rel, &text, &mut violations);
        }
    }
    check_dependencies(&root, &mut violations)?;
    if violations.is_empty() {
        println!("tidy: ok");
        return Ok(());
    }
    for v in &violations {
        eprintln!("{v}");
    }
    Err(format!("tidy found {} violation(s)", violations.len()).into())
}

/// `.rs` files under `dir`, skipping `target/` and `tests/**/snapshots/`.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if !dir.exists() {
        return Ok(files);
    }
    let walk = walkdir::WalkDir::new(dir).sort_by_file_name().into_iter().filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        !(e.file_type().is_dir()
            && (name == "target" || name.starts_with('.') || is_snapshot_dir(e.path())))
    });
    for entry in walk {
        let entry = entry?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "rs") {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

fn is_snapshot_dir(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "snapshots")
        && path.components().any(|c| c.as_os_str() == "tests")
}

/// Whether `rel` (a path relative to the root) is in a library crate's `src/`.
fn in_library_src(rel: &str) -> bool {
    let mut parts = rel.split('/');
    parts.next() == Some("crates")
        && parts.next().is_some_and(|c| c.starts_with("ocil-"))
        && parts.next() == Some("src")
}

fn check_file(rel: &str, text: &str, violations: &mut Vec<String>) {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    if !first.is_some_and(|l| l.starts_with("//!")) {
        violations.push(format!("{rel}:1: missing `//!` module doc at the top of the file"));
    }
    for (i, line) in text.lines().enumerate() {
        for (pattern, why) in BANNED {
            if line.contains(pattern) {
                violations.push(format!("{rel}:{}: {why}", i + 1));
            }
        }
    }
    if in_library_src(rel) {
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("#[cfg(test)]") {
                break; // The test module, by convention last in the file, may use std::fs.
            }
            if trimmed.starts_with("//") {
                continue;
            }
            if uses_std_fs(line) {
                violations.push(format!(
                    "{rel}:{}: `std::fs` in a library: go through the cap-std `Dir` (errors must name their path)",
                    i + 1
                ));
            }
        }
    }
}

/// `std::fs` as a path (`std::fs::File`, `std::fs;`, `std::{fs, io}`), not `std::fsx`.
fn uses_std_fs(line: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    // `std` must start a path segment: `cap_std::fs` is fine.
    let starts_segment = |at: usize| !line[..at].ends_with(ident);
    let direct = line
        .match_indices("std::fs")
        .any(|(at, m)| starts_segment(at) && !line[at + m.len()..].starts_with(ident));
    let grouped =
        line.match_indices("std::{").filter(|(at, _)| starts_segment(*at)).any(|(at, m)| {
            let rest = &line[at + m.len()..];
            let group = rest.split('}').next().unwrap_or(rest);
            group.split(',').any(|item| {
                let item = item.trim();
                item == "fs" || item.starts_with("fs::") || item.starts_with("fs ")
            })
        });
    direct || grouped
}

fn check_dependencies(root: &Path, violations: &mut Vec<String>) -> Result<()> {
    let output = Command::new(crate::cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "`cargo metadata` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)?;
    let crates_dir = root.join("crates");
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        let manifest = Path::new(package["manifest_path"].as_str().unwrap_or_default());
        if !name.starts_with("ocil-") || !manifest.starts_with(&crates_dir) {
            continue;
        }
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let kind = dep["kind"].as_str().unwrap_or("normal");
            if kind != "dev" && LIBRARY_BANNED_DEPS.contains(&dep_name) {
                violations.push(format!(
                    "{}: library crate `{name}` depends on `{dep_name}` ({kind}); only the `ocil` binary may",
                    manifest.strip_prefix(root).unwrap_or(manifest).display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_fs_detection() {
        assert!(uses_std_fs("use std::fs;"));
        assert!(uses_std_fs("let f = std::fs::File::open(p)?;"));
        assert!(uses_std_fs("use std::{fs, io};"));
        assert!(uses_std_fs("use std::{io, fs::File};"));
        assert!(!uses_std_fs("use std::io;"));
        assert!(!uses_std_fs("use cap_std::fs::Dir;"));
        assert!(!uses_std_fs("use cap_std::{fs, ambient_authority};"));
        assert!(!uses_std_fs("use std::fsx;"));
    }

    #[test]
    fn module_doc_and_banned_text() {
        let mut v = Vec::new();
        check_file("crates/ocil-x/src/a.rs", "//! Doc.\nfn f() {}\n", &mut v);
        assert!(v.is_empty(), "{v:?}");
        check_file("crates/ocil-x/src/b.rs", "fn f() {}\n", &mut v);
        assert_eq!(v.len(), 1);
        let banned = format!("//! Doc.\nfn f() {{ {}) }}\n", concat!("to", "do!("));
        check_file("crates/ocil-x/src/c.rs", &banned, &mut v);
        assert_eq!(v.len(), 2);
        check_file(
            "crates/ocil-x/src/d.rs",
            "//! Doc.\n#[cfg(test)]\nmod t { use std::fs; }\n",
            &mut v,
        );
        assert_eq!(v.len(), 2);
        check_file("crates/ocil/src/e.rs", "//! Doc.\nuse std::fs;\n", &mut v);
        assert_eq!(v.len(), 2);
    }
}
