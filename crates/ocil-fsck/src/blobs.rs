//! Hash every blob in the store, in parallel, and compare with its name.

use ocil_layout::walk::{Problem, Severity, error_chain};
use ocil_layout::{BlobInfo, Layout};
use rayon::prelude::*;

pub(crate) struct Hashed {
    pub(crate) problems: Vec<Problem>,
    pub(crate) bytes: u64,
}

/// Read buffer per worker: large reads keep the hasher busy.
const BUF: usize = 1 << 20;

pub(crate) fn verify_all(
    layout: &Layout,
    blobs: &[BlobInfo],
    progress: &dyn ocil_layout::progress::Progress,
) -> Hashed {
    // Largest first, so one big blob does not run alone at the end.
    let mut order: Vec<&BlobInfo> = blobs.iter().collect();
    order.sort_by_key(|b| std::cmp::Reverse(b.size));
    let problems: Vec<Problem> = order
        .par_iter()
        .map_init(
            || vec![0u8; BUF],
            |buf, b| match layout.hash_blob(&b.digest, buf).inspect(|_| progress.advance(b.size)) {
                Ok(stored) if stored.digest == b.digest => None,
                Ok(stored) => Some(Problem {
                    severity: Severity::Error,
                    code: "DIGEST_MISMATCH",
                    digest: Some(b.digest.clone()),
                    path: b.digest.blob_path(),
                    message: format!(
                        "content hashes to `{}` ({} bytes)",
                        stored.digest, stored.size
                    ),
                }),
                Err(e) => Some(Problem {
                    severity: Severity::Error,
                    code: "UNREADABLE",
                    digest: Some(b.digest.clone()),
                    path: b.digest.blob_path(),
                    message: error_chain(&e),
                }),
            },
        )
        .flatten()
        .collect();
    let mut problems = problems;
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    Hashed { problems, bytes: blobs.iter().map(|b| b.size).sum() }
}
