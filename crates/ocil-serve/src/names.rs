//! The distribution spec's grammars, checked before a name or reference touches anything:
//! repository names (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
//! at most 255 characters), tags (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`), and query strings.
//!
//! A name that passes has no `.` or `..` component, no empty component, no `%` (so no
//! encoded slash) and no leading `/`: it can be used as a relative path under ROOT.

/// The longest repository name accepted.
pub(crate) const NAME_MAX: usize = 255;

/// Why `name` is not a repository name, if it is not.
pub(crate) fn repo_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty");
    }
    if name.len() > NAME_MAX {
        return Some("longer than 255 characters");
    }
    for component in name.split('/') {
        if let Some(why) = component_problem(component) {
            return Some(why);
        }
    }
    None
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn component_problem(c: &str) -> Option<&'static str> {
    let bytes = c.as_bytes();
    if bytes.is_empty() {
        return Some("an empty path component");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Some("a component must start and end with a lower-case letter or digit");
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Some(
                "only lower-case letters, digits and the separators `.`, `_`, `__`, `-` are allowed",
            );
        }
    }
    None
}

/// Whether `tag` matches the tag grammar.
pub(crate) fn is_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The query string's parameters, percent-decoded (`+` is a space, as Go's `url.Query`
/// reads it). A parameter that does not decode to UTF-8 is dropped.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = query else { return Vec::new() };
    q.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The first value of `key`.
pub(crate) fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
                continue;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Percent-encode a query value (everything but the unreserved characters).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["a", "team/app", "docker.io/library/busybox", "a__b", "a--b-c", "x.y_z/0"] {
            assert_eq!(repo_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "", "..", "a/..", "../a", "/a", "a/", "a//b", "A", "a%2Fb", "a_-b", "a..b", "-a",
            "a:b", "a b", ".a", "a/./b",
        ] {
            assert!(repo_name_problem(bad).is_some(), "{bad}");
        }
        assert!(repo_name_problem(&"a".repeat(256)).is_some());
    }

    #[test]
    fn tags() {
        assert!(is_tag("v1.0_rc-1") && is_tag("_x") && is_tag(&"a".repeat(128)));
        assert!(!is_tag(".INVALID_MANIFEST_NAME") && !is_tag("-a") && !is_tag(""));
        assert!(!is_tag(&"a".repeat(129)) && !is_tag("a:b") && !is_tag("a/b"));
    }

    #[test]
    fn queries() {
        let q = query_pairs(Some("digest=sha256%3Aab&n=2&artifactType=a%2Fb%2Bc&x&bad=%zz&sp=a+b"));
        assert_eq!(query_get(&q, "digest"), Some("sha256:ab"));
        assert_eq!(query_get(&q, "artifactType"), Some("a/b+c"));
        assert_eq!(query_get(&q, "x"), Some(""));
        assert_eq!(query_get(&q, "bad"), None);
        assert_eq!(query_get(&q, "sp"), Some("a b"));
        assert_eq!(query_pairs(Some("a=%4")), vec![]);
        assert_eq!(encode("a/b+c:d"), "a%2Fb%2Bc%3Ad");
    }
}
