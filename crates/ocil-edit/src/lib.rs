//! `ocil-edit`: edit images in OCI image layouts.
//!
//! Every edit writes new blobs (verified, atomic) and then replaces `index.json` once under
//! the layout's lock, so a kill at any moment leaves the old image or the new one. Documents
//! are edited losslessly: fields not asked to change keep their bytes and their order.

#![warn(missing_docs, clippy::unwrap_used)]

pub mod layer;
