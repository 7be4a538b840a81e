//! What an edit (`config`, `annotate`, `append`) did, as text or as JSON: the entry before
//! and after, and each image of it that was edited.
#![allow(clippy::print_stdout)]

use std::path::Path;

use ocil_edit::Edited;
use ocil_layout::Reference;
use serde_json::{Map, Value, json};

/// The name that names the result: `--tag NEW`, else the tag that was edited (`None` for an
/// entry named by digest).
pub(crate) fn result_name<'a>(reference: &'a Reference, tag: Option<&'a str>) -> Option<&'a str> {
    match (tag, reference) {
        (Some(t), _) => Some(t),
        (None, Reference::Tag(t)) => Some(t),
        (None, Reference::Digest(_)) => None,
    }
}

/// `--json`'s object for an edit: `layout`, `reference` (as given), `tag` (what names the
/// result), `before` and `after` (the `index.json` entry's digests), `media_type`, `images`
/// (`platform`, `before`, `after` of each edited image) and `attestations_moved`. Commands
/// add their own members after these.
pub(crate) fn edited_json(
    layout: &Path,
    edited: &Edited,
    reference: &Reference,
    tag: Option<&str>,
) -> Map<String, Value> {
    let images: Vec<Value> = edited
        .images
        .iter()
        .map(|i| {
            json!({
                "platform": i.platform,
                "before": i.before.to_string(),
                "after": i.after.to_string(),
            })
        })
        .collect();
    let v = json!({
        "layout": layout.display().to_string(),
        "reference": reference.to_string(),
        "tag": result_name(reference, tag),
        "before": edited.before.digest.to_string(),
        "after": edited.after.digest.to_string(),
        "media_type": edited.after.media_type.as_str(),
        "images": images,
        "attestations_moved": edited.attestations_moved,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// One line per edited image, a line for moved attestations, then where the result is; with
/// `quiet` (`-q`), the result's digest alone.
pub(crate) fn print_edited(edited: &Edited, reference: &Reference, tag: Option<&str>, quiet: bool) {
    if quiet {
        println!("{}", edited.after.digest);
        return;
    }
    for i in &edited.images {
        let platform = i.platform.as_deref().unwrap_or("(no platform)");
        if i.before == i.after {
            println!("{platform}: unchanged {}", i.after);
        } else {
            println!("{platform}: {} -> {}", i.before, i.after);
        }
    }
    if edited.attestations_moved > 0 {
        println!("attestations re-attached: {}", edited.attestations_moved);
    }
    let name = result_name(reference, tag).unwrap_or("entry");
    println!("{name} -> {}", edited.after.digest);
}
