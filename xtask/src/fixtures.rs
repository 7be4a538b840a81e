//! `cargo xtask fixtures [--check]`: the small golden layouts in `testdata/layouts/`.
//!
//! Every case is generated from a seeded PRNG with fixed timestamps, compact JSON and
//! deterministic tar, gzip and zstd, so regenerating gives the same bytes. `--check`
//! regenerates into a temporary directory and fails, naming the file, on any difference from
//! the committed `testdata/`. The generator is written with `serde_json` and `sha2` only
//! (see `gen.rs`), independent of `ocil-layout`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use flate2::Compression;
use serde_json::{Value, json};

use crate::Result;
use crate::r#gen::{
    self, AMD64, ARM64, Alg, Blob, Layer, Platform, Rng, Store, TarEntry, mt, tagged, with,
};

/// The seed every case's PRNG stream is derived from.
const SEED: u64 = 0x0c11_f1c7_0000_0001;

/// The stale temp file of the `stale-tmp` case, and its mtime (2020-01-01T00:00:00Z).
const STALE_TMP: &str = ".ocil-tmp-blob-1-0-00000000";
const STALE_MTIME: u64 = 1_577_836_800;

pub(crate) fn run(args: &[String]) -> Result<()> {
    let check = match args {
        [] => false,
        [a] if a == "--check" => true,
        _ => return Err(crate::usage("cargo xtask fixtures [--check]")),
    };
    let testdata = crate::project_root().join("testdata");
    if check {
        let tmp = tempfile::tempdir()?;
        write_all(tmp.path())?;
        let diffs = compare(tmp.path(), &testdata)?;
        if !diffs.is_empty() {
            for d in &diffs {
                eprintln!("{d}");
            }
            return Err(format!(
                "testdata/ is out of date ({} difference(s)); run `cargo xtask fixtures`",
                diffs.len()
            )
            .into());
        }
        println!("testdata/ is up to date");
    } else {
        for sub in ["layouts", "hostile"] {
            if testdata.join(sub).exists() {
                fs_err::remove_dir_all(testdata.join(sub))?;
            }
        }
        write_all(&testdata)?;
        println!("wrote {}", testdata.display());
    }
    Ok(())
}

/// The files `--check` compares: everything under `layouts/`, plus these.
const TOP_FILES: [&str; 2] = ["README.md", "expected.json"];

/// Writes `layouts/<case>/`, `README.md` and `expected.json` under `testdata`.
fn write_all(testdata: &Path) -> Result<()> {
    let mut cases = Vec::new();
    for (name, build) in CASES {
        let alg = if *name == "sha512" { Alg::Sha512 } else { Alg::Sha256 };
        let mut fx = Fixture::new(name, &testdata.join("layouts").join(name), alg)?;
        let text = build(&mut fx)?;
        fx.store.write_index(std::mem::take(&mut fx.index))?;
        cases.push(fx.finish(text)?);
    }
    fs_err::write(testdata.join("README.md"), readme(&cases))?;
    let expected: serde_json::Map<String, Value> =
        cases.iter().map(|c| (c.name.to_owned(), c.expected())).collect();
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(expected))?;
    bytes.push(b'\n');
    fs_err::write(testdata.join("expected.json"), bytes)?;
    crate::hostile::write(&testdata.join("hostile"))?;
    Ok(())
}

/// Lists the differences between the fresh tree `new` and the committed `old`.
fn compare(new: &Path, old: &Path) -> Result<Vec<String>> {
    let files = |root: &Path| -> Result<BTreeSet<String>> {
        let mut set = BTreeSet::new();
        for name in TOP_FILES {
            if root.join(name).is_file() {
                set.insert(name.to_owned());
            }
        }
        for sub in ["layouts", "hostile"].map(|d| root.join(d)).iter().filter(|d| d.exists()) {
            for entry in walkdir::WalkDir::new(sub) {
                let entry = entry?;
                if !entry.file_type().is_dir() {
                    let rel = entry.path().strip_prefix(root)?;
                    set.insert(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        Ok(set)
    };
    let (fresh, committed) = (files(new)?, files(old)?);
    let mut diffs = Vec::new();
    for f in fresh.difference(&committed) {
        diffs.push(format!("testdata/{f}: missing (the generator writes it)"));
    }
    for f in committed.difference(&fresh) {
        diffs.push(format!("testdata/{f}: not written by the generator"));
    }
    for f in fresh.intersection(&committed) {
        if fs_err::read(new.join(f))? != fs_err::read(old.join(f))? {
            diffs.push(format!("testdata/{f}: content differs"));
        }
    }
    Ok(diffs)
}

/// What a case's README entry says.
struct Text {
    summary: &'static str,
    fsck: &'static str,
    gc: &'static str,
}

type Build = fn(&mut Fixture) -> Result<Text>;

/// The cases, in README order.
const CASES: &[(&str, Build)] = &[
    ("minimal", minimal),
    ("shared-layers", shared_layers),
    ("nested-index", nested_index),
    ("docker-types", docker_types),
    ("garbage", garbage),
    ("unknown-media-type", unknown_media_type),
    ("referrers", referrers),
    ("sha512", sha512),
    ("missing-blob", missing_blob),
    ("bad-digest", bad_digest),
    ("stale-tmp", stale_tmp),
    ("zstd", zstd),
    ("zero-layer", zero_layer),
];

/// How a blob stands, for `expected.json`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Reachable,
    Unreachable,
    /// Unreachable from `index.json`, but a referrer (or a blob of one) of a live manifest.
    LiveReferrer,
    /// Referenced but not written.
    Missing,
    /// Written under its name with other bytes.
    Corrupt,
}

struct Fixture {
    name: &'static str,
    store: Store,
    rng: Rng,
    /// Every blob named in the case: digest, what it is, and its state.
    blobs: Vec<(Blob, String, State)>,
    /// `index.json` entries.
    index: Vec<Value>,
    temp_files: Vec<String>,
}

struct Case {
    name: &'static str,
    text: Text,
    blobs: Vec<(Blob, String, State)>,
    temp_files: Vec<String>,
    on_disk: usize,
}

impl Fixture {
    fn new(name: &'static str, dir: &Path, alg: Alg) -> Result<Fixture> {
        Ok(Fixture {
            name,
            store: Store::create(dir, alg)?,
            rng: Rng::for_name(SEED, name),
            blobs: Vec::new(),
            index: Vec::new(),
            temp_files: Vec::new(),
        })
    }

    fn note(&mut self, blob: &Blob, what: String, state: State) {
        if !self.blobs.iter().any(|(b, _, _)| b == blob) {
            self.blobs.push((blob.clone(), what, state));
        }
    }

    fn put(&mut self, bytes: &[u8], what: impl Into<String>) -> Result<Blob> {
        let blob = self.store.put(bytes)?;
        self.note(&blob, what.into(), State::Reachable);
        Ok(blob)
    }

    fn put_json(&mut self, value: &Value, what: impl Into<String>) -> Result<Blob> {
        self.put(&r#gen::to_bytes(value), what)
    }

    /// The tar of layer `n`: a config file with a seeded token and a small script.
    fn layer_tar(&mut self, n: usize) -> Result<Vec<u8>> {
        let token = self.rng.hex(16);
        let conf = format!("case={}\nlayer={n}\ntoken={token}\n", self.name);
        let script = format!("#!/bin/sh\necho 'hello from {} layer {n}'\n", self.name);
        r#gen::tar(vec![
            TarEntry::dir("etc"),
            TarEntry::file(&format!("etc/layer-{n}.conf"), 0o644, conf),
            TarEntry::dir("usr"),
            TarEntry::dir("usr/bin"),
            TarEntry::file(&format!("usr/bin/hello-{n}"), 0o755, script),
        ])
    }

    /// Builds layer `n` (gzip) without writing it.
    fn layer_bytes(&mut self, n: usize, media_type: &'static str) -> Result<(Vec<u8>, Layer)> {
        let tar = self.layer_tar(n)?;
        let diff_id = self.store.alg().digest(&tar);
        let bytes = match media_type {
            mt::OCI_LAYER_ZSTD => r#gen::zstd(&tar)?,
            _ => r#gen::gzip(&tar, Compression::default())?,
        };
        let blob = Blob::of(self.store.alg(), &bytes);
        Ok((bytes, Layer { blob, diff_id, media_type }))
    }

    /// Builds and writes layer `n`.
    fn layer(&mut self, n: usize, media_type: &'static str) -> Result<Layer> {
        let (bytes, layer) = self.layer_bytes(n, media_type)?;
        self.put(&bytes, format!("layer {n} (`{media_type}`)"))?;
        Ok(layer)
    }

    /// Writes a config and a manifest; returns the manifest blob.
    fn image(
        &mut self,
        name: &str,
        platform: Platform,
        layers: &[Layer],
        docker: bool,
    ) -> Result<Blob> {
        Ok(self.image_parts(name, platform, layers, docker)?.1)
    }

    /// Writes a config and a manifest; returns both blobs.
    fn image_parts(
        &mut self,
        name: &str,
        platform: Platform,
        layers: &[Layer],
        docker: bool,
    ) -> Result<(Blob, Blob)> {
        let (config_mt, manifest_mt) = if docker {
            (mt::DOCKER_CONFIG, mt::DOCKER_MANIFEST)
        } else {
            (mt::OCI_CONFIG, mt::OCI_MANIFEST)
        };
        let config =
            self.put_json(&r#gen::config(platform, name, layers), format!("config of `{name}`"))?;
        let manifest = r#gen::manifest(manifest_mt, config.descriptor(config_mt), layers);
        let platform = format!("{}/{}", platform.os, platform.arch);
        let manifest = self.put_json(
            &manifest,
            format!("manifest `{name}` ({platform}, {} layer(s))", layers.len()),
        )?;
        Ok((config, manifest))
    }

    /// Tags a manifest in `index.json`.
    fn tag(&mut self, blob: &Blob, media_type: &str, tag: &str) {
        self.index.push(tagged(blob.descriptor(media_type), tag));
        if let Some(entry) = self.blobs.iter_mut().find(|(b, _, _)| b == blob) {
            entry.1.push_str(&format!(", tagged `{tag}`"));
        }
    }

    /// Marks blobs as unreachable from `index.json`.
    fn unreachable(&mut self, blobs: &[&Blob]) {
        self.set_state(blobs, State::Unreachable);
    }

    fn set_state(&mut self, blobs: &[&Blob], to: State) {
        for (b, _, state) in &mut self.blobs {
            if blobs.contains(&&*b) {
                *state = to;
            }
        }
    }

    fn finish(self, text: Text) -> Result<Case> {
        let alg_dir = self.store.root().join("blobs").join(self.store.alg().name());
        let on_disk = fs_err::read_dir(&alg_dir)?.count() - self.temp_files.len();
        Ok(Case { name: self.name, text, blobs: self.blobs, temp_files: self.temp_files, on_disk })
    }
}

impl Case {
    fn digests(&self, state: State) -> Vec<&str> {
        self.blobs
            .iter()
            .filter(|(_, _, s)| *s == state)
            .map(|(b, _, _)| b.digest.as_str())
            .collect()
    }

    fn expected(&self) -> Value {
        let problems =
            !self.digests(State::Missing).is_empty() || !self.digests(State::Corrupt).is_empty();
        let all_unreachable =
            [self.digests(State::LiveReferrer), self.digests(State::Unreachable)].concat();
        json!({
            "blobs_on_disk": self.on_disk,
            "reachable_on_disk": self.digests(State::Reachable).len() + self.digests(State::Corrupt).len(),
            "unreachable": all_unreachable,
            "live_referrers": self.digests(State::LiveReferrer),
            "gc_removes": self.digests(State::Unreachable),
            "missing": self.digests(State::Missing),
            "corrupt": self.digests(State::Corrupt),
            "temp_files": self.temp_files,
            "fsck_exit": if problems { 1 } else { 0 },
        })
    }
}

fn readme(cases: &[Case]) -> String {
    let mut s = String::new();
    s.push_str(
        "# testdata\n\n\
         Generated by `cargo xtask fixtures`; do not edit by hand.\n\
         `cargo xtask fixtures --check` (run by `cargo xtask ci`) fails when these files differ from what the generator writes.\n\
         The generator (`xtask/src/fixtures.rs`, `xtask/src/gen.rs`) uses serde_json and sha2 only, not `ocil-layout`, so the fixtures check the library independently.\n\n\
         Every layout is seeded and byte-for-byte reproducible: JSON is compact with a fixed key order and no trailing newline, tar entries are sorted with mtime 0, uid/gid 0 and modes 0644/0755, gzip headers have mtime 0 and no file name, zstd is level 3.\n\
         Configs say `created` = `2024-01-01T00:00:00Z` and carry the correct `rootfs.diff_ids`.\n\n\
         Tests must copy a layout into a temporary directory before changing anything; never write to `testdata/` in place.\n\
         `expected.json` holds the same facts in machine-readable form, per case: `blobs_on_disk` (temp files not counted), `reachable_on_disk`, and the digests that are `unreachable`, `live_referrers`, `gc_removes`, `missing` and `corrupt`, the `temp_files`, and the exit code fsck should give (`fsck_exit`).\n\
         \"Unreachable\" means not reachable from `index.json` through indexes, manifests, configs and layers (following `subject` only from a reachable document).\n\
         A \"live referrer\" is unreachable but is an artifact manifest whose `subject` is reachable, or a blob of one: ocil's gc keeps those, so `gc_removes` = `unreachable` minus `live_referrers`.\n\n\
         `hostile/` holds archives that ocil must refuse, with their own README and `expected.json` (`xtask/src/hostile.rs`).\n\n\
         ## Cases\n\n",
    );
    for c in cases {
        let _ = writeln!(s, "- [`{0}`](#{0}): {1}", c.name, first_sentence(c.text.summary));
    }
    for c in cases {
        let _ = write!(s, "\n## {}\n\n{}\n\n", c.name, c.text.summary);
        let _ = writeln!(s, "- fsck: {}", c.text.fsck);
        let _ = writeln!(s, "- gc: {}", c.text.gc);
        let _ = writeln!(s, "- blobs on disk: {}", c.on_disk);
        for t in &c.temp_files {
            let _ = writeln!(s, "- temp file: `{t}`");
        }
        s.push_str("\n| blob | what | state |\n|---|---|---|\n");
        for (blob, what, state) in &c.blobs {
            let state = match state {
                State::Reachable => "reachable",
                State::Unreachable => "**unreachable**",
                State::LiveReferrer => "unreachable, **live referrer**",
                State::Missing => "**missing** (not on disk)",
                State::Corrupt => "**corrupt** (bytes do not hash to the name)",
            };
            let _ = writeln!(s, "| `{}` | {what} ({} bytes) | {state} |", blob.digest, blob.size);
        }
    }
    s
}

fn first_sentence(s: &str) -> &str {
    s.find(".\n").or_else(|| s.find(". ")).map_or(s, |end| &s[..=end])
}

fn minimal(fx: &mut Fixture) -> Result<Text> {
    let layer = fx.layer(0, mt::OCI_LAYER_GZIP)?;
    let m = fx.image("minimal", AMD64, &[layer], false)?;
    fx.tag(&m, mt::OCI_MANIFEST, "latest");
    Ok(Text {
        summary: "One OCI image (linux/amd64) tagged `latest`, with one gzip layer: a real tar of `etc/layer-0.conf` and an executable `usr/bin/hello-0` (plus their directories).\n\
                  The config's `rootfs.diff_ids` is the sha256 of the uncompressed tar.",
        fsck: "clean, exit 0.",
        gc: "removes nothing.",
    })
}

fn shared_layers(fx: &mut Fixture) -> Result<Text> {
    let base = fx.layer(0, mt::OCI_LAYER_GZIP)?;
    let mid = fx.layer(1, mt::OCI_LAYER_GZIP)?;
    let tops: Vec<Layer> =
        (2..5).map(|n| fx.layer(n, mt::OCI_LAYER_GZIP)).collect::<Result<_>>()?;
    let a = fx.image("app-a", AMD64, &[base.clone(), mid.clone(), tops[0].clone()], false)?;
    let b = fx.image("app-b", AMD64, &[base.clone(), mid, tops[1].clone()], false)?;
    let c = fx.image("app-c", AMD64, &[base, tops[2].clone()], false)?;
    fx.tag(&a, mt::OCI_MANIFEST, "a");
    fx.tag(&b, mt::OCI_MANIFEST, "b");
    fx.tag(&c, mt::OCI_MANIFEST, "c");
    Ok(Text {
        summary: "Three OCI images tagged `a`, `b` and `c` that share layers.\n\
                  Layer 0 is in all three, layer 1 in `a` and `b`, and layers 2, 3 and 4 are each in one image.",
        fsck: "clean, exit 0.",
        gc: "removes nothing; after `a` is untagged, it would remove only `a`'s manifest, config and layer 2.",
    })
}

fn nested_index(fx: &mut Fixture) -> Result<Text> {
    let mut manifests = Vec::new();
    for (n, (name, platform)) in
        [("app", AMD64), ("app", ARM64), ("app-debug", AMD64), ("app-debug", ARM64)]
            .into_iter()
            .enumerate()
    {
        let layer = fx.layer(n, mt::OCI_LAYER_GZIP)?;
        let m = fx.image(&format!("{name}-{}", platform.arch), platform, &[layer], false)?;
        manifests.push(with(m.descriptor(mt::OCI_MANIFEST), "platform", platform.json()));
    }
    let amd64 = manifests[0].clone();
    let inner = r#gen::index(mt::OCI_INDEX, manifests.split_off(2));
    let inner = fx.put_json(&inner, "inner OCI index (`app-debug`: linux/amd64 + linux/arm64)")?;
    let inner_desc = with(
        inner.descriptor(mt::OCI_INDEX),
        "annotations",
        json!({ "org.example.variant": "debug" }),
    );
    manifests.push(inner_desc);
    let outer = fx.put_json(
        &r#gen::index(mt::OCI_INDEX, manifests),
        "outer OCI index (linux/amd64 + linux/arm64 + the inner index)",
    )?;
    fx.tag(&outer, mt::OCI_INDEX, "v1");
    fx.index.push(tagged(amd64, "v1-amd64"));
    if let Some(entry) = fx.blobs.iter_mut().find(|(_, w, _)| w.starts_with("manifest `app-amd64`"))
    {
        entry.1.push_str(", tagged `v1-amd64`");
    }
    Ok(Text {
        summary: "An OCI index tagged `v1` holding a linux/amd64 and a linux/arm64 manifest and a nested OCI index, which holds two more (linux/amd64 and linux/arm64 `app-debug`).\n\
                  A second `index.json` entry, `v1-amd64`, points straight at the amd64 manifest that the outer index also holds, so a walk reaches it twice.",
        fsck: "clean, exit 0.",
        gc: "removes nothing (every manifest is reachable through the nested index).",
    })
}

fn docker_types(fx: &mut Fixture) -> Result<Text> {
    let base = fx.layer(0, mt::DOCKER_LAYER_GZIP)?;
    let mut manifests = Vec::new();
    for (n, platform) in [(1, AMD64), (2, ARM64)] {
        let top = fx.layer(n, mt::DOCKER_LAYER_GZIP)?;
        let m =
            fx.image(&format!("docker-{}", platform.arch), platform, &[base.clone(), top], true)?;
        manifests.push(with(m.descriptor(mt::DOCKER_MANIFEST), "platform", platform.json()));
    }
    let list = fx.put_json(
        &r#gen::index(mt::DOCKER_LIST, manifests),
        "Docker manifest list (linux/amd64 + linux/arm64)",
    )?;
    fx.tag(&list, mt::DOCKER_LIST, "latest");
    Ok(Text {
        summary: "A Docker manifest list tagged `latest` with two Docker schema2 manifests (linux/amd64, linux/arm64).\n\
                  Their configs are `application/vnd.docker.container.image.v1+json` and their layers `application/vnd.docker.image.rootfs.diff.tar.gzip`; layer 0 is shared.",
        fsck: "clean, exit 0 (Docker media types are valid in a layout).",
        gc: "removes nothing. (umoci 0.4.7's gc deletes the configs and layers here: it does not follow Docker types.)",
    })
}

fn garbage(fx: &mut Fixture) -> Result<Text> {
    let layer = fx.layer(0, mt::OCI_LAYER_GZIP)?;
    let m = fx.image("garbage", AMD64, &[layer], false)?;
    fx.tag(&m, mt::OCI_MANIFEST, "latest");
    // An orphan image: layer, config and manifest that nothing in index.json reaches.
    let old_layer = fx.layer(1, mt::OCI_LAYER_GZIP)?;
    let (old_config, old) =
        fx.image_parts("garbage-old", AMD64, std::slice::from_ref(&old_layer), false)?;
    fx.unreachable(&[&old_layer.blob, &old_config, &old]);
    Ok(Text {
        summary: "One OCI image tagged `latest` plus three unreferenced blobs: an untagged old image's manifest, its config and its layer.\n\
                  The orphan manifest references the other two, so a gc that marks from every manifest in the store (instead of from `index.json`) keeps all three.",
        fsck: "clean, exit 0 (unreferenced blobs are allowed; it may report them).",
        gc: "removes exactly the three **unreachable** blobs below; a second gc removes nothing.",
    })
}

fn unknown_media_type(fx: &mut Fixture) -> Result<Text> {
    let layer = fx.layer(0, mt::OCI_LAYER_GZIP)?;
    let m = fx.image("unknown-media-type", AMD64, &[layer], false)?;
    fx.tag(&m, mt::OCI_DESCRIPTOR, "latest");
    Ok(Text {
        summary: "The `index.json` entry `latest` has media type `application/vnd.oci.descriptor.v1+json`, which is not a manifest type, but its blob is an OCI image manifest (with its own `mediaType`), as in go-containerregistry's `test_index`.",
        fsck: "exit 0 with a warning that the descriptor's media type is not a manifest type (the blob is followed by what it says it is).",
        gc: "removes nothing: the manifest's config and layer must survive. A gc that treats unknown types as leaves without looking would delete them; go-containerregistry refuses instead.",
    })
}

fn referrers(fx: &mut Fixture) -> Result<Text> {
    let layer = fx.layer(0, mt::OCI_LAYER_GZIP)?;
    let image = fx.image("referrers", AMD64, &[layer], false)?;
    fx.tag(&image, mt::OCI_MANIFEST, "latest");
    let empty = fx.put(b"{}", "empty config `{}` (`application/vnd.oci.empty.v1+json`)")?;

    let sbom = json!({ "spdxVersion": "SPDX-2.3", "name": "referrers", "packages": [] });
    let sbom = fx.put_json(&sbom, "SBOM document (`application/spdx+json`)")?;
    let sbom_manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": empty.descriptor(mt::OCI_EMPTY),
        "layers": [sbom.descriptor("application/spdx+json")],
        "subject": image.descriptor(mt::OCI_MANIFEST),
        "annotations": { "org.opencontainers.image.created": r#gen::CREATED }
    });
    let sbom_manifest =
        fx.put_json(&sbom_manifest, "artifact manifest (SBOM) whose `subject` is the image")?;

    // The orphan's subject: a manifest that is not in the layout.
    let absent_bytes = fx.rng.bytes(64);
    let absent = Blob::of(fx.store.alg(), &absent_bytes);
    let sig = json!({ "signature": fx.rng.hex(32) });
    let sig =
        fx.put_json(&sig, "signature payload (`application/vnd.example.signature.v1+json`)")?;
    let orphan = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature.v1+json",
        "config": empty.descriptor(mt::OCI_EMPTY),
        "layers": [sig.descriptor("application/vnd.example.signature.v1+json")],
        "subject": absent.descriptor(mt::OCI_MANIFEST)
    });
    let orphan = fx.put_json(
        &orphan,
        format!("orphan artifact manifest whose `subject` `{}` is absent", absent.digest),
    )?;
    fx.set_state(&[&empty, &sbom, &sbom_manifest], State::LiveReferrer);
    fx.unreachable(&[&sig, &orphan]);
    Ok(Text {
        summary: "One OCI image tagged `latest`, plus two artifact manifests that are in `blobs/` only (no `index.json` entry).\n\
                  The first is an SBOM whose `subject` is the image; the second is a signature whose `subject` is a manifest that is not in the layout.\n\
                  Both use the empty config `{}`.",
        fsck: "exit 0; it may report the unreferenced artifacts, and it must not fail on the absent subject, which only an unreferenced document names.",
        gc: "keeps the referrers of live manifests (OCI 1.1), so it removes only the orphan artifact manifest and its signature payload, the two **unreachable** blobs below; \
             the three **live referrer** blobs (SBOM manifest, SBOM, empty config) stay. \
             A gc rooted strictly at `index.json` would remove all five (`unreachable` in `expected.json`; `gc_removes` lists the two).",
    })
}

fn sha512(fx: &mut Fixture) -> Result<Text> {
    let layer = fx.layer(0, mt::OCI_LAYER_GZIP)?;
    let m = fx.image("sha512", AMD64, &[layer], false)?;
    fx.tag(&m, mt::OCI_MANIFEST, "latest");
    Ok(Text {
        summary: "One OCI image tagged `latest` whose blobs are all named by sha512, under `blobs/sha512/`; `index.json`, the manifest and the config's `diff_ids` use sha512 digests too.",
        fsck: "clean, exit 0 (sha512 is a registered algorithm).",
        gc: "removes nothing. (umoci 0.4.7 refuses layouts with sha512 blobs.)",
    })
}

fn missing_blob(fx: &mut Fixture) -> Result<Text> {
    let base = fx.layer(0, mt::OCI_LAYER_GZIP)?;
    let (_, gone) = fx.layer_bytes(1, mt::OCI_LAYER_GZIP)?;
    fx.note(&gone.blob, format!("layer 1 (`{}`)", gone.media_type), State::Missing);
    let m = fx.image("missing-blob", AMD64, &[base, gone], false)?;
    fx.tag(&m, mt::OCI_MANIFEST, "latest");
    Ok(Text {
        summary: "One OCI image tagged `latest` with two layers; the second layer is referenced by the manifest (and its diff_id is in the config) but its blob is not on disk.",
        fsck: "exit 1, reporting the **missing** layer with its path from `index.json`.",
        gc: "removes nothing; a missing layer is a leaf, so marking is complete and gc may go on (the spec allows shallow layouts).",
    })
}

fn bad_digest(fx: &mut Fixture) -> Result<Text> {
    let (mut bytes, layer) = fx.layer_bytes(0, mt::OCI_LAYER_GZIP)?;
    // Same size, other bytes: only the hash can tell. Flip a byte in the deflate stream.
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    fs_err::write(fx.store.path_of(&layer.blob), &bytes)?;
    fx.note(&layer.blob, format!("layer 0 (`{}`)", layer.media_type), State::Corrupt);
    let m = fx.image("bad-digest", AMD64, &[layer], false)?;
    fx.tag(&m, mt::OCI_MANIFEST, "latest");
    Ok(Text {
        summary: "One OCI image tagged `latest` whose layer file has the right name and size but one flipped byte, so its bytes do not hash to its name.",
        fsck: "exit 1, reporting a digest mismatch for the **corrupt** layer (expected vs found).",
        gc: "removes nothing (gc does not hash leaves; the layer is reachable).",
    })
}

fn stale_tmp(fx: &mut Fixture) -> Result<Text> {
    let layer = fx.layer(0, mt::OCI_LAYER_GZIP)?;
    let m = fx.image("stale-tmp", AMD64, &[layer], false)?;
    fx.tag(&m, mt::OCI_MANIFEST, "latest");
    let path = fx.store.root().join("blobs/sha256").join(STALE_TMP);
    fs_err::write(&path, b"partial blob left by an interrupted write\n")?;
    let file = fs_err::File::options().write(true).open(&path)?;
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(STALE_MTIME))?;
    fx.temp_files.push(format!("blobs/sha256/{STALE_TMP}"));
    Ok(Text {
        summary: "One OCI image tagged `latest`, plus an abandoned temp file `blobs/sha256/.ocil-tmp-blob-1-0-00000000` that the generator dates 2020-01-01.\n\
                  Git does not keep mtimes: a checkout gives the file the current time, so a test must set its mtime (e.g. `File::set_modified`) after copying the layout.",
        fsck: "exit 0 (the temp file is not a blob; it may be mentioned).",
        gc: "with `--prune=now` (or once the file is older than the threshold) removes the temp file and no blob; a fresh temp file is kept.",
    })
}

fn zstd(fx: &mut Fixture) -> Result<Text> {
    let base = fx.layer(0, mt::OCI_LAYER_GZIP)?;
    let top = fx.layer(1, mt::OCI_LAYER_ZSTD)?;
    let m = fx.image("zstd", AMD64, &[base, top], false)?;
    fx.tag(&m, mt::OCI_MANIFEST, "latest");
    Ok(Text {
        summary: "One OCI image tagged `latest` with a gzip layer and a zstd layer (`application/vnd.oci.image.layer.v1.tar+zstd`); both diff_ids are correct.",
        fsck: "clean, exit 0.",
        gc: "removes nothing.",
    })
}

fn zero_layer(fx: &mut Fixture) -> Result<Text> {
    let m = fx.image("zero-layer", AMD64, &[], false)?;
    fx.tag(&m, mt::OCI_MANIFEST, "latest");
    Ok(Text {
        summary: "One OCI image tagged `latest` whose manifest has `\"layers\":[]` and whose config has empty `diff_ids` and `history`, as `umoci new` writes.",
        fsck: "clean, exit 0.",
        gc: "removes nothing.",
    })
}
