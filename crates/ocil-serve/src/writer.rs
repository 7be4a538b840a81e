//! `index.json` updates, batched: requests queue their change, and one writer at a time
//! takes the layout lock, reads `index.json`, applies every queued change, writes it once
//! (atomically, as every ocil writer does) and answers them all. Many clients pushing tags
//! into one layout then cost one lock and one fsync per batch, not per request, and the
//! server never holds the lock while a client is slow.
//!
//! Blobs a change needs are checked under the lock (gc holds it from mark to sweep, so what
//! is there then stays until `index.json` names it); blobs a delete frees are removed after
//! the new `index.json` is in place, and only when nothing it names still reaches them.

use std::sync::Arc;

use ocil_layout::walk::{LeafCheck, WalkOptions};
use ocil_layout::{ANNOTATION_CONTAINERD_NAME, Descriptor, Digest, Index, tags};
use tokio::sync::oneshot;

use crate::api::{ApiError, Code};
use crate::registry::{LayoutHandle, lock};
use crate::view::{self, Scope};

/// One change to `index.json` (or to the blob store, decided against it).
#[derive(Debug)]
pub(crate) enum Op {
    /// Point `tag` of `scope` at `target`.
    Tag { target: Descriptor, scope: Scope, tag: String, needs: Vec<Digest>, children: Vec<Digest> },
    /// Keep `target` (pushed by digest) as an untagged entry, unless an entry has it.
    Untagged { target: Descriptor, needs: Vec<Digest>, children: Vec<Digest> },
    /// Remove the entry `tag` names in `scope`.
    DeleteTag { scope: Scope, tag: String },
    /// Remove every entry of a manifest, and the manifest when nothing else reaches it.
    DeleteManifest { digest: Digest },
    /// Remove a blob that nothing reaches.
    DeleteBlob { digest: Digest },
}

/// What became of an [`Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done; `removed` when a blob was removed.
    Done { removed: bool },
    /// Nothing had that name or digest.
    NotFound,
    /// A blob the change needs is not in the layout.
    Missing(Digest),
    /// The blob is still reached from `index.json` (the path says how).
    Reachable(String),
}

type Reply = oneshot::Sender<Result<Outcome, ApiError>>;

/// The queue of one layout's pending changes.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pending: Vec<(Op, Reply)>,
    running: bool,
}

impl LayoutHandle {
    /// Queue a change and wait for it to be written.
    pub(crate) async fn submit(self: &Arc<Self>, op: Op) -> Result<Outcome, ApiError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = lock(&self.queue);
            q.pending.push((op, tx));
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.drain());
        }
        rx.await.unwrap_or_else(|_| {
            Err(ApiError::new(Code::Unknown, "the index writer stopped before answering"))
        })
    }

    /// Write batches until the queue is empty.
    fn drain(&self) {
        // Whatever happens, the next request can start a writer again.
        struct Running<'a>(&'a LayoutHandle);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                lock(&self.0.queue).running = false;
            }
        }
        let _running = Running(self);
        loop {
            let batch = {
                let mut q = lock(&self.queue);
                if q.pending.is_empty() {
                    q.running = false;
                    return;
                }
                std::mem::take(&mut q.pending)
            };
            let (ops, replies): (Vec<Op>, Vec<Reply>) = batch.into_iter().unzip();
            match self.apply_batch(&ops) {
                Ok(outcomes) => {
                    for (tx, out) in replies.into_iter().zip(outcomes) {
                        let _ = tx.send(Ok(out));
                    }
                }
                Err(e) => {
                    for tx in replies {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    fn apply_batch(&self, ops: &[Op]) -> Result<Vec<Outcome>, ApiError> {
        let internal = |e: ocil_layout::Error| ApiError::internal(&e);
        let layout = &self.layout;
        let guard = layout.lock().map_err(internal)?;
        let (mut index, _) = layout.read_index_lenient().map_err(internal)?;
        let mut changed = false;
        let mut outcomes = Vec::with_capacity(ops.len());
        // Blobs to remove once index.json no longer names them: (op position, digest,
        // whether entries were removed for it).
        let mut frees: Vec<(usize, Digest, bool)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let out = match op {
                Op::Tag { target, scope, tag, needs, children } => {
                    match missing(layout, target, needs)? {
                        Some(d) => Outcome::Missing(d),
                        None => {
                            drop_covered(&mut index, children);
                            let full = match scope {
                                Scope::Plain => None,
                                Scope::Full(repo) => Some(format!("{repo}:{tag}")),
                            };
                            tags::set_name(&mut index, target, tag, full.as_deref())
                                .map_err(|e| ApiError::new(Code::TagInvalid, e.to_string()))?;
                            changed = true;
                            Outcome::Done { removed: false }
                        }
                    }
                }
                Op::Untagged { target, needs, children } => match missing(layout, target, needs)? {
                    Some(d) => Outcome::Missing(d),
                    None => {
                        if !index.manifests.iter().any(|e| e.digest == target.digest) {
                            drop_covered(&mut index, children);
                            index.manifests.push(target.clone());
                            changed = true;
                        }
                        Outcome::Done { removed: false }
                    }
                },
                Op::DeleteTag { scope, tag } => match tagged_entry(&index, scope, tag) {
                    Some(pos) => {
                        index.manifests.remove(pos);
                        changed = true;
                        Outcome::Done { removed: false }
                    }
                    None => Outcome::NotFound,
                },
                Op::DeleteManifest { digest } => {
                    let before = index.manifests.len();
                    index.manifests.retain(|e| &e.digest != digest);
                    let removed_entries = index.manifests.len() != before;
                    changed |= removed_entries;
                    frees.push((i, digest.clone(), removed_entries));
                    Outcome::NotFound
                }
                Op::DeleteBlob { digest } => {
                    frees.push((i, digest.clone(), false));
                    Outcome::NotFound
                }
            };
            outcomes.push(out);
        }
        if changed {
            layout.write_index(&index, &guard).map_err(internal)?;
        }
        if !frees.is_empty() {
            // One walk of what index.json now names decides every removal of the batch.
            let opts = WalkOptions {
                follow_subject: true,
                sniff_unknown: true,
                leaves: LeafCheck::None,
                keep_bytes: false,
                keep_documents: false,
            };
            let walk = ocil_layout::walk::walk(layout, &index.manifests, opts);
            // A walk that could not read everything cannot prove a blob unreachable.
            let sure = !walk.problems.iter().any(|p| p.blocks_gc());
            for (i, digest, removed_entries) in frees {
                let present = layout.stat_blob(&digest).map_err(internal)?.is_some();
                outcomes[i] = if walk.contains(&digest) || (present && !sure) {
                    if removed_entries {
                        Outcome::Done { removed: false }
                    } else {
                        let path = if sure {
                            walk.path_to(&digest)
                        } else {
                            "a layout whose graph cannot be read whole (run ocil fsck)".to_owned()
                        };
                        Outcome::Reachable(path)
                    }
                } else if present {
                    layout.remove_blob(&digest).map_err(internal)?;
                    self.forget_doc(&digest);
                    Outcome::Done { removed: true }
                } else if removed_entries {
                    Outcome::Done { removed: false }
                } else {
                    Outcome::NotFound
                };
            }
        }
        drop(guard);
        if changed {
            self.set_view(index);
        }
        Ok(outcomes)
    }
}

/// The first of `target` and `needs` that is not in the layout.
fn missing(
    layout: &ocil_layout::Layout,
    target: &Descriptor,
    needs: &[Digest],
) -> Result<Option<Digest>, ApiError> {
    for d in std::iter::once(&target.digest).chain(needs) {
        if layout.stat_blob(d).map_err(|e| ApiError::internal(&e))?.is_none() {
            return Ok(Some(d.clone()));
        }
    }
    Ok(None)
}

/// Remove the bare untagged entries (no annotations: what a push by digest adds) of
/// `children`: the index being added keeps them.
fn drop_covered(index: &mut Index, children: &[Digest]) {
    if children.is_empty() {
        return;
    }
    index.manifests.retain(|e| {
        let bare = e.annotations.as_ref().is_none_or(|a| a.is_empty());
        !(bare && children.contains(&e.digest))
    });
}

/// The position of the entry `tag` names in `scope` (the entry [`view::IndexView`] serves
/// for it).
fn tagged_entry(index: &Index, scope: &Scope, tag: &str) -> Option<usize> {
    match scope {
        Scope::Plain => {
            let hits =
                index.manifests.iter().enumerate().filter(|(_, e)| view::plain_tag(e) == Some(tag));
            let mut first = None;
            for (i, e) in hits {
                if e.annotation(ANNOTATION_CONTAINERD_NAME).is_none() {
                    return Some(i);
                }
                first.get_or_insert(i);
            }
            first
        }
        Scope::Full(repo) => index
            .manifests
            .iter()
            .position(|e| view::full_name(e).is_some_and(|(r, t)| &r == repo && t == tag)),
    }
}
