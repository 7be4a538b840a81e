//! `ocil-inspect`: what `ocil ls` and `ocil inspect` show, computed over any
//! [`ocil_layout::Store`] (a layout directory, an archive read in place), so both show the
//! same rows for the same images.
//!
//! - [`summarize_entries`]: one row per entry of an index: names, platforms (from the
//!   index, or a plain image's config), the bytes every blob the entry reaches adds up to,
//!   and how many of them are missing;
//! - [`inspect()`]: an image (manifest and config), an index (its children), or a blob.

#![warn(missing_docs, clippy::unwrap_used)]

mod inspect;

pub use inspect::{
    ChildSummary, EntrySummary, HistorySummary, ImageSummary, IndexSummary, Inspected,
    LayerSummary, config_platform_of, inspect, summarize_entries,
};
