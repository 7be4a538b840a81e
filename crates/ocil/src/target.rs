//! `DIR`, `DIR:REF` and `DIR@DIGEST` on the command line.
//!
//! The split is at the last `@` (then the last `:`) whose left side is an existing
//! directory, so directory names that contain `:` still work: `ocil ls a:b` opens `a:b` when
//! it is a directory, and `ocil inspect a:b:v1` opens `a:b` with tag `v1`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ocil_layout::{Index, Layout, Reference};

/// A parsed target.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) dir: PathBuf,
    pub(crate) reference: Option<Reference>,
}

impl Target {
    pub(crate) fn parse(s: &str) -> Result<Target> {
        if Path::new(s).is_dir() {
            return Ok(Target { dir: s.into(), reference: None });
        }
        for sep in ['@', ':'] {
            for (i, _) in s.match_indices(sep).collect::<Vec<_>>().into_iter().rev() {
                let (left, right) = (&s[..i], &s[i + 1..]);
                if !left.is_empty() && Path::new(left).is_dir() {
                    let reference = if sep == '@' {
                        Reference::Digest(
                            right.parse().with_context(|| format!("invalid digest in `{s}`"))?,
                        )
                    } else {
                        Reference::parse(right)
                            .with_context(|| format!("invalid reference in `{s}`"))?
                    };
                    return Ok(Target { dir: left.into(), reference: Some(reference) });
                }
            }
        }
        // No prefix is a directory. When `s` itself does not exist either, the directory
        // part of `DIR:TAG` / `DIR@DIGEST` is what is missing: name it, rather than let the
        // command complain about a missing reference or a directory called `DIR:TAG`.
        if !Path::new(s).exists()
            && let Some(i) = s.rfind('@').or_else(|| s.rfind(':'))
            && i > 0
        {
            let left = &s[..i];
            if Path::new(left).exists() {
                anyhow::bail!("`{left}` is not a directory");
            }
            anyhow::bail!("no such directory `{left}`");
        }
        Ok(Target { dir: s.into(), reference: None })
    }

    pub(crate) fn open(&self) -> Result<Layout> {
        open_layout(&self.dir)
    }

    /// Read `index.json` leniently (a `null` `manifests` reads as empty), warning when it
    /// had to forgive something: for the commands that only look.
    pub(crate) fn read_index_lenient(&self, layout: &Layout) -> Result<Index> {
        let (index, note) = layout
            .read_index_lenient()
            .with_context(|| format!("cannot read `{}/index.json`", self.dir.display()))?;
        if let Some(note) = note {
            crate::output::warn(&note);
        }
        Ok(index)
    }
}

/// Open a layout directory by path, with the path in every error.
pub(crate) fn open_layout(dir: &Path) -> Result<Layout> {
    if !dir.exists() {
        anyhow::bail!("no such directory `{}`", dir.display());
    }
    if !dir.is_dir() {
        anyhow::bail!("`{}` is not a directory", dir.display());
    }
    Layout::open_ambient(dir).with_context(|| format!("cannot open layout `{}`", dir.display()))
}
