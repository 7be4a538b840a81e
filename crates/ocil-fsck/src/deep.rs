//! `--deep`: decompress every layer, check it is a tar in the compression its media type
//! says, and compare the config's `rootfs.diff_ids` with the uncompressed digests.

use std::collections::HashMap;
use std::io::{self, Read};

use ocil_codec::tar_fault::{Origin, TarInput};
use ocil_layout::walk::{DocKind, Problem, Role, Severity, Walk};
use ocil_layout::{Algorithm, Compression, Digest, Kind, Layout};
use rayon::prelude::*;
use serde_json::Value;

struct LayerResult {
    digest: Digest,
    problems: Vec<Problem>,
    diff_id: Option<Digest>,
}

/// Counts bytes and hashes them as they pass.
struct HashingReader<R> {
    inner: R,
    hasher: ocil_layout::Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn problem(
    w: &Walk,
    code: &'static str,
    severity: Severity,
    d: &Digest,
    message: String,
) -> Problem {
    Problem { severity, code, digest: Some(d.clone()), path: w.path_to(d), message }
}

fn check_layer(
    layout: &Layout,
    w: &Walk,
    digest: &Digest,
    declared: Compression,
    alg: Algorithm,
) -> LayerResult {
    let mut problems = Vec::new();
    let file = match layout.open_blob(digest, None) {
        Ok(f) => f,
        Err(_) => return LayerResult { digest: digest.clone(), problems, diff_id: None },
    };
    let (format, decoded) = match ocil_codec::decompress(file) {
        Ok(d) => (d.format, d.reader),
        Err(ocil_codec::Error::Decoder { format, source }) => {
            problems.push(problem(
                w,
                "LAYER_UNREADABLE",
                Severity::Error,
                digest,
                format!("{}: {source}", format.as_str()),
            ));
            return LayerResult { digest: digest.clone(), problems, diff_id: None };
        }
        // The hash pass reports a blob that cannot be read.
        Err(_) => return LayerResult { digest: digest.clone(), problems, diff_id: None },
    };
    // A layer is gzip, zstd or plain: xz and bzip2 are no layer media type's.
    let Some(actual) = format.compression() else {
        problems.push(problem(
            w,
            "LAYER_COMPRESSION_MISMATCH",
            Severity::Error,
            digest,
            format!("media type says {}, the bytes are {}", declared.as_str(), format.as_str()),
        ));
        return LayerResult { digest: digest.clone(), problems, diff_id: None };
    };
    if actual != declared {
        problems.push(problem(
            w,
            "LAYER_COMPRESSION_MISMATCH",
            Severity::Error,
            digest,
            format!("media type says {}, the bytes are {}", declared.as_str(), actual.as_str()),
        ));
    }
    let mut reader = HashingReader { inner: decoded, hasher: alg.hasher() };
    let tar_ok = {
        let mut archive = tar::Archive::new(TarInput::new(&mut reader));
        match archive.entries() {
            Ok(entries) => {
                let mut result = Ok(());
                for e in entries {
                    match e {
                        Ok(mut entry) => {
                            if let Err(err) = io::copy(&mut entry, &mut io::sink()) {
                                result = Err(err);
                                break;
                            }
                        }
                        Err(err) => {
                            result = Err(err);
                            break;
                        }
                    }
                }
                result
            }
            Err(err) => Err(err),
        }
    };
    // Hash to the end of the stream (tar padding after the end-of-archive marker counts).
    let drained = io::copy(&mut reader, &mut io::sink());
    match (tar_ok, drained) {
        (_, Err(e)) if e.kind() == io::ErrorKind::InvalidData && actual != Compression::None => {
            problems.push(problem(
                w,
                "LAYER_UNREADABLE",
                Severity::Error,
                digest,
                format!("cannot decompress ({}): {e}", actual.as_str()),
            ));
            return LayerResult { digest: digest.clone(), problems, diff_id: None };
        }
        (_, Err(e)) => {
            problems.push(problem(w, "LAYER_UNREADABLE", Severity::Error, digest, e.to_string()));
            return LayerResult { digest: digest.clone(), problems, diff_id: None };
        }
        (Err(e), Ok(_)) => {
            // In our words: the parser's own text can quote the layer.
            let why = match Origin::of(e) {
                Origin::Parser(fault) => fault.to_string(),
                Origin::Input(e) => e.to_string(),
            };
            problems.push(problem(
                w,
                "LAYER_NOT_TAR",
                Severity::Warning,
                digest,
                format!("not a readable tar: {why}"),
            ));
        }
        (Ok(()), Ok(_)) => {}
    }
    LayerResult { digest: digest.clone(), problems, diff_id: Some(reader.hasher.finish()) }
}

/// A manifest whose config is an image config, with the config's `rootfs.diff_ids`.
struct Image<'a> {
    manifest: &'a Digest,
    config: &'a Digest,
    layers: Vec<&'a ocil_layout::Descriptor>,
    diff_ids: Vec<Value>,
}

fn images<'a>(layout: &Layout, w: &'a Walk) -> Vec<Image<'a>> {
    let mut out = Vec::new();
    for doc in &w.documents {
        if doc.kind != DocKind::Manifest {
            continue;
        }
        let Some((_, config)) = doc.children.iter().find(|(r, _)| *r == Role::Config) else {
            continue;
        };
        if config.media_type.kind() != Kind::Config {
            continue;
        }
        let Ok(bytes) = layout.read_blob(&config.digest, ocil_layout::JSON_LIMIT) else { continue };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else { continue };
        let Some(ids) = v.pointer("/rootfs/diff_ids").and_then(Value::as_array) else { continue };
        out.push(Image {
            manifest: &doc.digest,
            config: &config.digest,
            layers: doc
                .children
                .iter()
                .filter(|(r, _)| *r == Role::Layer)
                .map(|(_, d)| d)
                .collect(),
            diff_ids: ids.clone(),
        });
    }
    out
}

pub(crate) fn check_layers(
    layout: &Layout,
    w: &Walk,
    present: &HashMap<Digest, u64>,
    progress: &dyn ocil_layout::progress::Progress,
) -> Vec<Problem> {
    let images = images(layout, w);
    // The algorithm each layer's diff_id is written in (sha256 unless a config says otherwise).
    let mut algs: HashMap<&Digest, Algorithm> = HashMap::new();
    for img in &images {
        for (layer, id) in img.layers.iter().zip(&img.diff_ids) {
            if let Some(d) = id.as_str().and_then(|s| s.parse::<Digest>().ok()) {
                algs.insert(&layer.digest, d.algorithm());
            }
        }
    }
    // Each present layer once.
    let mut layers: Vec<(Digest, Compression, Algorithm)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for doc in &w.documents {
        for (role, d) in &doc.children {
            if *role != Role::Layer || !present.contains_key(&d.digest) {
                continue;
            }
            if let Kind::Layer { compression, .. } = d.media_type.kind()
                && seen.insert(d.digest.clone())
            {
                let alg = algs.get(&d.digest).copied().unwrap_or(Algorithm::Sha256);
                layers.push((d.digest.clone(), compression, alg));
            }
        }
    }
    progress.begin("deep", Some(layers.iter().filter_map(|(d, _, _)| present.get(d)).sum()));
    let results: Vec<LayerResult> = layers
        .par_iter()
        .map(|(d, c, a)| {
            let r = check_layer(layout, w, d, *c, *a);
            progress.advance(present.get(d).copied().unwrap_or(0));
            r
        })
        .collect();
    progress.end();
    let mut problems: Vec<Problem> = Vec::new();
    let mut diff_ids: HashMap<Digest, Digest> = HashMap::new();
    for r in results {
        problems.extend(r.problems);
        if let Some(id) = r.diff_id {
            diff_ids.insert(r.digest, id);
        }
    }
    for img in &images {
        if img.diff_ids.len() != img.layers.len() {
            problems.push(problem(
                w,
                "DIFF_ID_MISMATCH",
                Severity::Error,
                img.manifest,
                format!(
                    "manifest has {} layer(s), config `{}` has {} diff_id(s)",
                    img.layers.len(),
                    img.config,
                    img.diff_ids.len()
                ),
            ));
            continue;
        }
        for (i, (layer, id)) in img.layers.iter().zip(&img.diff_ids).enumerate() {
            let Some(found) = diff_ids.get(&layer.digest) else { continue };
            if id.as_str() != Some(found.to_string().as_str()) {
                problems.push(problem(
                    w,
                    "DIFF_ID_MISMATCH",
                    Severity::Error,
                    &layer.digest,
                    format!(
                        "manifest `{}` layer {i}: uncompressed `{found}`, config says `{}`",
                        img.manifest,
                        id.as_str().unwrap_or("(not a string)")
                    ),
                ));
            }
        }
    }
    problems
}
