//! Entry names and link targets, normalised: no leading `./`, no `.` or empty components,
//! never absolute, never a `..` that could leave the archive.

/// Normalise an entry name. `Ok(None)` is the archive root itself (`./`).
pub(crate) fn normalize_entry(raw: &[u8]) -> Result<Option<String>, &'static str> {
    let s = std::str::from_utf8(raw).map_err(|_| "its name is not UTF-8")?;
    if s.starts_with('/') {
        return Err("it is an absolute path");
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("it has a `..` component"),
            c => parts.push(c),
        }
    }
    Ok(if parts.is_empty() { None } else { Some(parts.join("/")) })
}

/// Normalise a path that a document of the archive names (`manifest.json`'s `Config` and
/// `Layers`). `..` is allowed while it stays inside the archive.
pub(crate) fn normalize_reference(s: &str) -> Result<String, &'static str> {
    if s.starts_with('/') {
        return Err("is an absolute path");
    }
    resolve_from(&[], s).ok_or("leads outside the archive")
}

/// Resolve a symlink's target relative to the directory holding the link.
pub(crate) fn resolve_symlink(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let parent: Vec<&str> = match link.rsplit_once('/') {
        Some((dir, _)) => dir.split('/').collect(),
        None => Vec::new(),
    };
    resolve_from(&parent, target)
}

/// Resolve a hardlink's target: tar hardlinks name an entry from the archive root.
pub(crate) fn resolve_hardlink(target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    resolve_from(&[], target)
}

/// Walk `rel` from `base`; `None` when a `..` goes above the root or the result is the root.
fn resolve_from(base: &[&str], rel: &str) -> Option<String> {
    let mut stack: Vec<&str> = base.to_vec();
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                stack.pop()?;
            }
            c => stack.push(c),
        }
    }
    if stack.is_empty() { None } else { Some(stack.join("/")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(normalize_entry(b"./a//b/./c").unwrap().as_deref(), Some("a/b/c"));
        assert_eq!(normalize_entry(b"./").unwrap(), None);
        assert_eq!(normalize_entry(b"blobs/sha256/").unwrap().as_deref(), Some("blobs/sha256"));
        assert!(normalize_entry(b"/etc/passwd").is_err());
        assert!(normalize_entry(b"a/../b").is_err());
        assert!(normalize_entry(b"..").is_err());
        assert!(normalize_entry(b"a/\xff").is_err());
    }

    #[test]
    fn links() {
        let l = "b159/layer.tar";
        assert_eq!(resolve_symlink(l, "../6e77/layer.tar").as_deref(), Some("6e77/layer.tar"));
        assert_eq!(resolve_symlink("x", "y").as_deref(), Some("y"));
        assert_eq!(resolve_symlink(l, "../../x"), None);
        assert_eq!(resolve_symlink(l, "/etc/passwd"), None);
        assert_eq!(resolve_symlink(l, ".."), None);
        assert_eq!(resolve_hardlink("./a/b").as_deref(), Some("a/b"));
        assert_eq!(resolve_hardlink("../a"), None);
        assert_eq!(normalize_reference("a/../b").unwrap(), "b");
        assert!(normalize_reference("../x").is_err());
        assert!(normalize_reference("/x").is_err());
    }
}
