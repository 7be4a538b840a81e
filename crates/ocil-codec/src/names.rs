//! Tar entry names and link targets: what may be extracted or stored, and where a link
//! leads. Nothing a tar names may lead outside the directory it is read into: no absolute
//! path, no `..` that climbs above the root.

use std::fmt;

/// Why a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsafe {
    /// It starts with `/`.
    Absolute,
    /// It has a `..` component.
    DotDot,
    /// It is not UTF-8 (archives whose names ocil must resolve).
    NotUtf8,
}

impl Unsafe {
    /// The reason as a predicate: "is an absolute path", "has a `..` component", ...
    pub fn reason(self) -> &'static str {
        match self {
            Unsafe::Absolute => "is an absolute path",
            Unsafe::DotDot => "has a `..` component",
            Unsafe::NotUtf8 => "is not UTF-8",
        }
    }
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Check a layer entry name (or hard-link target) as bytes: neither absolute nor with a
/// `..` component. Names need not be UTF-8: a layer may hold any file name.
pub fn check_layer_name(name: &[u8]) -> Result<(), Unsafe> {
    if name.starts_with(b"/") {
        return Err(Unsafe::Absolute);
    }
    if name.split(|b| *b == b'/').any(|c| c == b"..") {
        return Err(Unsafe::DotDot);
    }
    Ok(())
}

/// The components of a layer entry name, as the container will see the path: a leading `/`
/// and `.` or empty components dropped, `..` taken lexically (`a/../b` is `b`). A `..` that
/// climbs above the root is refused ([`Unsafe::DotDot`]); an empty list is the root itself.
/// Names need not be UTF-8.
pub fn layer_components(name: &[u8]) -> Result<Vec<&[u8]>, Unsafe> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop().ok_or(Unsafe::DotDot)?;
            }
            c => parts.push(c),
        }
    }
    Ok(parts)
}

/// The components of a path resolved as inside a root (`chroot` semantics, as the kernel's
/// `RESOLVE_IN_ROOT` does): a leading `/` is the root, and a `..` at the root stays there.
/// For hard-link targets, which name a path of the container's filesystem.
pub fn in_root_components(path: &[u8]) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts
}

/// Normalise an archive entry name: no leading `./`, no `.` or empty components. `Ok(None)`
/// is the archive root itself (`./`).
pub fn normalize_entry(raw: &[u8]) -> Result<Option<String>, Unsafe> {
    let s = std::str::from_utf8(raw).map_err(|_| Unsafe::NotUtf8)?;
    if s.starts_with('/') {
        return Err(Unsafe::Absolute);
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(Unsafe::DotDot),
            c => parts.push(c),
        }
    }
    Ok(if parts.is_empty() { None } else { Some(parts.join("/")) })
}

/// Normalise a path that a document of an archive names (`manifest.json`'s `Config` and
/// `Layers`). `..` is allowed while it stays inside the archive; `None` when the path is
/// absolute, climbs out, or is the root.
pub fn normalize_reference(s: &str) -> Option<String> {
    if s.starts_with('/') {
        return None;
    }
    resolve_from(&[], s)
}

/// Resolve a symlink's target relative to the directory holding the link (`link` is a
/// normalised entry name); `None` when it is absolute or leads outside.
pub fn resolve_symlink(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let parent: Vec<&str> = match link.rsplit_once('/') {
        Some((dir, _)) => dir.split('/').collect(),
        None => Vec::new(),
    };
    resolve_from(&parent, target)
}

/// Resolve a hard link's target: tar hard links name an entry from the archive root.
pub fn resolve_hardlink(target: &str) -> Option<String> {
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
    fn layer_names() {
        assert_eq!(check_layer_name(b"usr/bin/x"), Ok(()));
        assert_eq!(check_layer_name(b"./a/..b/c.."), Ok(()));
        assert_eq!(check_layer_name(b"a/\xff"), Ok(()));
        assert_eq!(check_layer_name(b"/etc/passwd"), Err(Unsafe::Absolute));
        assert_eq!(check_layer_name(b"a/../../b"), Err(Unsafe::DotDot));
        assert_eq!(check_layer_name(b".."), Err(Unsafe::DotDot));
    }

    #[test]
    fn layer_paths() {
        let c = |n: &[u8]| layer_components(n).map(|v| v.join(&b'/'));
        assert_eq!(c(b"/etc//passwd").unwrap(), b"etc/passwd");
        assert_eq!(c(b"./a/./b/").unwrap(), b"a/b");
        assert_eq!(c(b"dne/../.wh.etc").unwrap(), b".wh.etc");
        assert_eq!(c(b"localetc/sub/..").unwrap(), b"localetc");
        assert_eq!(c(b"").unwrap(), b"");
        assert_eq!(c(b"./").unwrap(), b"");
        assert_eq!(c(b".."), Err(Unsafe::DotDot));
        assert_eq!(c(b"../pwned"), Err(Unsafe::DotDot));
        assert_eq!(c(b"/../victim/x"), Err(Unsafe::DotDot));
        assert_eq!(c(b"a/../../b"), Err(Unsafe::DotDot));
        let r = |n: &[u8]| in_root_components(n).join(&b'/');
        assert_eq!(r(b"../../../../../etc/passwd"), b"etc/passwd");
        assert_eq!(r(b"/dummy/../etc"), b"etc");
        assert_eq!(r(b"/"), b"");
    }

    #[test]
    fn entry_names() {
        assert_eq!(normalize_entry(b"./a//b/./c").unwrap().as_deref(), Some("a/b/c"));
        assert_eq!(normalize_entry(b"./").unwrap(), None);
        assert_eq!(normalize_entry(b"blobs/sha256/").unwrap().as_deref(), Some("blobs/sha256"));
        assert_eq!(normalize_entry(b"/etc/passwd"), Err(Unsafe::Absolute));
        assert_eq!(normalize_entry(b"a/../b"), Err(Unsafe::DotDot));
        assert_eq!(normalize_entry(b".."), Err(Unsafe::DotDot));
        assert_eq!(normalize_entry(b"a/\xff"), Err(Unsafe::NotUtf8));
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
        assert_eq!(normalize_reference("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize_reference("../x"), None);
        assert_eq!(normalize_reference("/x"), None);
    }
}
