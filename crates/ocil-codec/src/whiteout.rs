//! Whiteouts (image-spec `layer.md`): how a layer says that a path of the layers below it is
//! gone. A file `.wh.NAME` hides `NAME` of the lower layers; `.wh..wh..opq` in a directory
//! hides everything the lower layers put in it (not what its own layer puts there). Other
//! names starting `.wh..wh.` are AUFS bookkeeping (hard-link directories) and carry nothing.

/// The prefix of a whiteout file's name.
pub const PREFIX: &[u8] = b".wh.";

/// The name of an opaque whiteout.
pub const OPAQUE: &[u8] = b".wh..wh..opq";

/// The prefix of AUFS metadata entries (`.wh..wh.plnk`, `.wh..wh.aufs`), which appliers skip.
const META_PREFIX: &[u8] = b".wh..wh.";

/// What the last component of a layer entry's name means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// An ordinary name: the entry is what it says.
    Not,
    /// `.wh.NAME`: `NAME`, in the same directory, is hidden.
    Hide(&'a [u8]),
    /// `.wh..wh..opq`: the directory's lower contents are hidden.
    Opaque,
    /// `.wh..wh.*` other than the opaque marker: AUFS metadata, skipped.
    Meta,
}

/// Why a whiteout name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadWhiteout {
    /// `.wh.` alone: it hides nothing.
    #[error("a whiteout with no name")]
    Empty,
    /// `.wh..` or `.wh...`: it would hide the directory itself or its parent.
    #[error("a whiteout of `.` or `..`")]
    Dots,
}

/// Classify the last component of an entry's name (bytes between the last two `/`).
pub fn classify(base_name: &[u8]) -> Result<Whiteout<'_>, BadWhiteout> {
    let Some(hidden) = base_name.strip_prefix(PREFIX) else { return Ok(Whiteout::Not) };
    if base_name == OPAQUE {
        return Ok(Whiteout::Opaque);
    }
    if base_name.starts_with(META_PREFIX) {
        return Ok(Whiteout::Meta);
    }
    match hidden {
        b"" => Err(BadWhiteout::Empty),
        b"." | b".." => Err(BadWhiteout::Dots),
        name if name.contains(&b'/') => Err(BadWhiteout::Dots),
        name => Ok(Whiteout::Hide(name)),
    }
}

/// The whiteout file name that hides `name` (a last component).
pub fn hide(name: &[u8]) -> Vec<u8> {
    [PREFIX, name].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(classify(b"passwd"), Ok(Whiteout::Not));
        assert_eq!(classify(b".wh.passwd"), Ok(Whiteout::Hide(b"passwd")));
        assert_eq!(classify(b".wh..wh..opq"), Ok(Whiteout::Opaque));
        assert_eq!(classify(b".wh..wh.plnk"), Ok(Whiteout::Meta));
        assert_eq!(classify(b".wh..hidden"), Ok(Whiteout::Hide(b".hidden")));
        assert_eq!(classify(b".wh."), Err(BadWhiteout::Empty));
        assert_eq!(classify(b".wh.."), Err(BadWhiteout::Dots));
        assert_eq!(classify(b".wh..."), Err(BadWhiteout::Dots));
        assert_eq!(hide(b"x"), b".wh.x");
    }
}
