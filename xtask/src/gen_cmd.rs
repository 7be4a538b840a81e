//! `cargo xtask gen gc|fsck DIR [--images N] [--mib M] [--seed S]`: write one benchmark
//! layout to DIR and keep it, for profiling or for trying ocil on a big layout by hand.

use std::path::PathBuf;

use crate::Result;
use crate::r#gen::{self, FsckShape, GcShape};

const USAGE: &str = "cargo xtask gen gc DIR [--images N] [--seed S] | cargo xtask gen fsck DIR [--mib M] [--seed S]";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let (kind, dir) = match args {
        [k, d, ..] => (k.as_str(), PathBuf::from(d)),
        _ => return Err(crate::usage(USAGE)),
    };
    let mut images = 2_000usize;
    let mut mib = 1024u64;
    let mut seed = 1u64;
    let mut it = args[2..].iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| crate::usage(USAGE))?;
        let n: u64 = value.replace('_', "").parse().map_err(|_| crate::usage(USAGE))?;
        match flag.as_str() {
            "--images" => images = n as usize,
            "--mib" => mib = n,
            "--seed" => seed = n,
            _ => return Err(crate::usage(USAGE)),
        }
    }
    if dir.exists() {
        return Err(crate::usage(&format!("`{}` exists; give a new directory", dir.display())));
    }
    let counts = match kind {
        "gc" => r#gen::generate_gc(&dir, &GcShape { seed, ..GcShape::new(images) })?,
        "fsck" => r#gen::generate_fsck(&dir, &FsckShape { seed, ..FsckShape::new(mib << 20) })?,
        _ => return Err(crate::usage(USAGE)),
    };
    println!("{}: {counts:?}", dir.display());
    Ok(())
}
