//! Content digests: `algorithm ":" encoded`, validated before they are ever used as a path.
//!
//! Grammar (image-spec `descriptor.md#digests`):
//! `algorithm := component ([+._-] component)*`, `component := [a-z0-9]+`,
//! `encoded := [a-zA-Z0-9=_-]+`.
//! Only the registered algorithms `sha256` (64 lowercase hex) and `sha512` (128 lowercase hex)
//! can be verified and stored; any other well-formed algorithm parses as [`DigestRef`] but is
//! refused by [`Digest`] with [`DigestError::UnsupportedAlgorithm`].

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// A registered digest algorithm that ocil can compute and store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the default.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// Every algorithm, in the order the blob store lists them.
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    /// The algorithm's name as written in a digest and as the `blobs/` subdirectory.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// Parse an algorithm name; `None` for anything unregistered.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// A fresh incremental hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Digest of a byte slice.
    pub fn digest_of(self, bytes: &[u8]) -> Digest {
        let mut h = self.hasher();
        h.update(bytes);
        h.finish()
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An incremental hasher for one [`Algorithm`].
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// Finish and return the digest.
    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest::from_raw(Algorithm::Sha256, &h.finalize()),
            Hasher::Sha512(h) => Digest::from_raw(Algorithm::Sha512, &h.finalize()),
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hasher::Sha256(_) => f.write_str("Hasher(sha256)"),
            Hasher::Sha512(_) => f.write_str("Hasher(sha512)"),
        }
    }
}

/// Why a string is not a usable digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// Not `algorithm:encoded` per the grammar.
    #[error("invalid digest `{0}`: expected `algorithm:encoded` (e.g. `sha256:<64 hex>`)")]
    Syntax(String),
    /// Well-formed, but the algorithm is not one ocil can verify.
    #[error(
        "unsupported digest algorithm `{algorithm}` in `{digest}` (ocil supports sha256 and sha512)"
    )]
    UnsupportedAlgorithm {
        /// The algorithm as written.
        algorithm: String,
        /// The whole digest string.
        digest: String,
    },
    /// Registered algorithm, but the encoded part has the wrong length or characters.
    #[error("invalid {algorithm} digest `{digest}`: expected {len} lowercase hex characters")]
    Encoding {
        /// The algorithm.
        algorithm: Algorithm,
        /// The whole digest string.
        digest: String,
        /// The required hex length.
        len: usize,
    },
}

/// A digest that only satisfies the general grammar (any algorithm).
///
/// Used by structural validation, where the spec allows unregistered algorithms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRef<'a> {
    /// The algorithm part.
    pub algorithm: &'a str,
    /// The encoded part.
    pub encoded: &'a str,
}

/// Check the general digest grammar, allowing any algorithm.
pub fn parse_grammar(s: &str) -> Result<DigestRef<'_>, DigestError> {
    let syntax = || DigestError::Syntax(s.to_owned());
    let (algorithm, encoded) = s.split_once(':').ok_or_else(syntax)?;
    if algorithm.is_empty() || encoded.is_empty() {
        return Err(syntax());
    }
    let mut prev_sep = true;
    for c in algorithm.chars() {
        match c {
            'a'..='z' | '0'..='9' => prev_sep = false,
            '+' | '.' | '_' | '-' if !prev_sep => prev_sep = true,
            _ => return Err(syntax()),
        }
    }
    if prev_sep {
        return Err(syntax());
    }
    if !encoded.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | '_' | '-')) {
        return Err(syntax());
    }
    Ok(DigestRef { algorithm, encoded })
}

/// A map keyed by digest, with a fast seeded hasher (foldhash) instead of SipHash: gc and
/// fsck keep 100,000s of digests, and hashing was a visible part of their time.
pub type DigestMap<V> = std::collections::HashMap<Digest, V, foldhash::fast::RandomState>;

/// A validated digest of a registered algorithm: safe to turn into a path.
///
/// Stored as raw bytes inline (40 bytes, no heap allocation for sha256), since gc holds
/// hundreds of thousands of them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(Raw);

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Raw {
    Sha256([u8; 32]),
    Sha512(Box<[u8; 64]>),
}

impl Digest {
    fn from_raw(algorithm: Algorithm, raw: &[u8]) -> Digest {
        match algorithm {
            Algorithm::Sha256 => {
                let mut b = [0u8; 32];
                b.copy_from_slice(&raw[..32]);
                Digest(Raw::Sha256(b))
            }
            Algorithm::Sha512 => {
                let mut b = Box::new([0u8; 64]);
                b.copy_from_slice(&raw[..64]);
                Digest(Raw::Sha512(b))
            }
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.0 {
            Raw::Sha256(_) => Algorithm::Sha256,
            Raw::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// The raw digest bytes (32 for sha256, 64 for sha512).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Raw::Sha256(b) => b,
            Raw::Sha512(b) => &b[..],
        }
    }

    /// The lowercase hex encoding.
    pub fn encoded(&self) -> String {
        let mut s = String::with_capacity(self.algorithm().hex_len());
        push_hex(&mut s, self.as_bytes());
        s
    }

    /// The blob's path relative to the layout root: `blobs/<alg>/<hex>`.
    pub fn blob_path(&self) -> String {
        let alg = self.algorithm();
        let mut s = String::with_capacity(7 + alg.as_str().len() + alg.hex_len());
        s.push_str("blobs/");
        s.push_str(alg.as_str());
        s.push('/');
        push_hex(&mut s, self.as_bytes());
        s
    }

    /// `sha256:0123456789ab`: the algorithm and the first 12 hex characters.
    pub fn short(&self) -> String {
        let mut s = String::with_capacity(19);
        s.push_str(self.algorithm().as_str());
        s.push(':');
        push_hex(&mut s, &self.as_bytes()[..6]);
        s
    }

    /// Build from an algorithm and a file name found under `blobs/<alg>/`.
    pub fn from_parts(algorithm: Algorithm, encoded: &str) -> Result<Digest, DigestError> {
        let len = algorithm.hex_len();
        if encoded.len() != len || !encoded.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(DigestError::Encoding {
                algorithm,
                digest: format!("{algorithm}:{encoded}"),
                len,
            });
        }
        let mut raw = [0u8; 64];
        const_hex::decode_to_slice(encoded, &mut raw[..len / 2]).map_err(|_| {
            DigestError::Encoding { algorithm, digest: format!("{algorithm}:{encoded}"), len }
        })?;
        Ok(Digest::from_raw(algorithm, &raw))
    }
}

/// Append the lowercase hex encoding of `bytes` (at most 64 of them) to `s`, without an
/// intermediate allocation (const-hex: SIMD where the CPU has it).
fn push_hex(s: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 128];
    let out = &mut buf[..bytes.len() * 2];
    // The output slice is exactly twice the input, the one condition of encode_to_slice.
    if const_hex::encode_to_slice(bytes, out).is_ok() {
        // Hex digits are ASCII.
        s.push_str(std::str::from_utf8(out).unwrap_or_default());
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let parts = parse_grammar(s)?;
        let algorithm = Algorithm::from_name(parts.algorithm).ok_or_else(|| {
            DigestError::UnsupportedAlgorithm {
                algorithm: parts.algorithm.to_owned(),
                digest: s.to_owned(),
            }
        })?;
        Digest::from_parts(algorithm, parts.encoded)
    }
}

impl TryFrom<&str> for Digest {
    type Error = DigestError;
    fn try_from(s: &str) -> Result<Digest, DigestError> {
        s.parse()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(8 + self.algorithm().hex_len());
        s.push_str(self.algorithm().as_str());
        s.push(':');
        push_hex(&mut s, self.as_bytes());
        f.write_str(&s)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        // Borrow the string where the deserializer can, instead of allocating one per digest.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints_sha256() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY_SHA256);
        assert_eq!(d.blob_path(), format!("blobs/sha256/{}", &EMPTY_SHA256[7..]));
        assert_eq!(d.short(), "sha256:e3b0c44298fc");
        assert_eq!(Algorithm::Sha256.digest_of(b""), d);
    }

    #[test]
    fn digests_are_small() {
        assert!(std::mem::size_of::<Digest>() <= 40);
    }

    #[test]
    fn sha512_is_verified() {
        let d = Algorithm::Sha512.digest_of(b"abc");
        assert!(d.encoded().starts_with("ddaf35a193617aba"));
        let again: Digest = d.to_string().parse().unwrap();
        assert_eq!(again, d);
    }

    #[test]
    fn path_traversal_is_rejected() {
        for bad in [
            "sha256:../../x",
            "sha256:../../../etc/passwd",
            "sha256:/etc/passwd",
            "../sha256:abc",
            "sha256:",
            ":abc",
            "sha256",
            "",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn other_algorithms_are_a_clear_error() {
        let err = "md5:d41d8cd98f00b204e9800998ecf8427e".parse::<Digest>().unwrap_err();
        assert!(matches!(err, DigestError::UnsupportedAlgorithm { .. }));
        assert!(err.to_string().contains("unsupported digest algorithm `md5`"));
        // Grammar-valid but unregistered forms pass the general grammar.
        assert!(
            parse_grammar("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8")
                .is_ok()
        );
        assert!(parse_grammar("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564").is_ok());
        assert!(parse_grammar("sha256:").is_err());
        assert!(parse_grammar("sha256-:abc").is_err());
        assert!(parse_grammar("sha256:abc/def").is_err());
    }

    #[test]
    fn serde_validates() {
        let ok: Result<Digest, _> = serde_json::from_str(&format!("\"{EMPTY_SHA256}\""));
        assert!(ok.is_ok());
        let bad: Result<Digest, _> = serde_json::from_str("\"sha256:../../x\"");
        assert!(bad.is_err());
    }
}
