//! A sorted slice of digests with a prefix table: membership in about two memory reads.
//!
//! gc checks every leaf (hundreds of thousands of configs and layers) against the sorted
//! listing of `blobs/`. A binary search over 300,000 digests is 18 comparisons, most of them
//! cache misses. Digests of real blobs are uniformly distributed, so a table of where each
//! prefix starts (about four digests per bucket) narrows the search to a few neighbours.
//! Names crafted to share a prefix only make their bucket larger: it is binary-searched, so
//! the worst case is the plain binary search.

use crate::{Algorithm, Digest};

/// A sorted slice of digests, indexed by prefix for fast membership tests.
#[derive(Debug, Clone)]
pub struct DigestSet<'a> {
    digests: &'a [Digest],
    /// One run per algorithm present: the algorithm and its prefix table.
    runs: Vec<Run>,
}

#[derive(Debug, Clone)]
struct Run {
    algorithm: Algorithm,
    /// Bits of prefix that select a bucket.
    bits: u32,
    /// `starts[p]`: position in the whole slice of the first digest of this run whose prefix
    /// is at least `p`; one more entry than buckets, the last being the run's end.
    starts: Vec<u32>,
}

impl<'a> DigestSet<'a> {
    /// Index `digests`, which must be sorted (as [`Layout::list_blob_names`] returns them)
    /// and fewer than 2^32; returns `None` otherwise.
    ///
    /// [`Layout::list_blob_names`]: crate::Layout::list_blob_names
    pub fn new(digests: &'a [Digest]) -> Option<DigestSet<'a>> {
        if u32::try_from(digests.len()).is_err() || !digests.is_sorted() {
            return None;
        }
        let mut runs = Vec::new();
        let mut start = 0;
        while start < digests.len() {
            let algorithm = digests[start].algorithm();
            let len = digests[start..].partition_point(|d| d.algorithm() == algorithm);
            runs.push(Run::build(algorithm, &digests[start..start + len], start));
            start += len;
        }
        Some(DigestSet { digests, runs })
    }

    /// The digests, sorted.
    pub fn as_slice(&self) -> &'a [Digest] {
        self.digests
    }

    /// Whether `digest` is in the set.
    pub fn contains(&self, digest: &Digest) -> bool {
        let alg = digest.algorithm();
        let Some(run) = self.runs.iter().find(|r| r.algorithm == alg) else { return false };
        let b = run.bucket(digest);
        let (lo, hi) = (run.starts[b] as usize, run.starts[b + 1] as usize);
        self.digests[lo..hi].binary_search(digest).is_ok()
    }
}

impl Run {
    fn build(algorithm: Algorithm, run: &[Digest], offset: usize) -> Run {
        // About four digests a bucket; at least 16 buckets, at most 2^22 (16 MiB of table).
        let bits = (usize::BITS - (run.len() / 4).leading_zeros()).clamp(4, 22);
        let mut r = Run { algorithm, bits, starts: Vec::with_capacity((1 << bits) + 1) };
        for (i, d) in run.iter().enumerate() {
            let b = r.bucket(d);
            while r.starts.len() <= b {
                r.starts.push((offset + i) as u32);
            }
        }
        while r.starts.len() <= 1 << bits {
            r.starts.push((offset + run.len()) as u32);
        }
        r
    }

    fn bucket(&self, d: &Digest) -> usize {
        let b = d.as_bytes();
        let prefix = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (prefix >> (32 - self.bits)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(i: u32) -> Digest {
        Algorithm::Sha256.digest_of(&i.to_le_bytes())
    }

    #[test]
    fn finds_exactly_the_members_of_both_algorithms() {
        let mut all: Vec<Digest> = (0..5000).map(sha).collect();
        all.extend((0..50u32).map(|i| Algorithm::Sha512.digest_of(&i.to_le_bytes())));
        all.sort();
        // Every other digest is a member.
        let members: Vec<Digest> = all.iter().step_by(2).cloned().collect();
        let set = DigestSet::new(&members).expect("sorted");
        for (i, d) in all.iter().enumerate() {
            assert_eq!(set.contains(d), i % 2 == 0, "{d}");
        }
    }

    #[test]
    fn names_sharing_a_prefix_are_all_found() {
        // Crafted names: one bucket holds everything.
        let mut v: Vec<Digest> = (0..1000u32)
            .map(|i| {
                let hex = format!("sha256:{}{:08x}", "0".repeat(56), i * 2);
                hex.parse().expect("valid")
            })
            .collect();
        v.sort();
        let set = DigestSet::new(&v).expect("sorted");
        for i in 0..2000u32 {
            let d: Digest = format!("sha256:{}{:08x}", "0".repeat(56), i).parse().expect("valid");
            assert_eq!(set.contains(&d), i % 2 == 0);
        }
    }

    #[test]
    fn empty_and_unsorted() {
        let set = DigestSet::new(&[]).expect("empty is sorted");
        assert!(!set.contains(&sha(1)));
        let mut v = vec![sha(1), sha(2)];
        v.sort();
        v.reverse();
        assert!(DigestSet::new(&v).is_none());
    }
}
