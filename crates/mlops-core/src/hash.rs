//! Content hashing (SHA-256): file checksums, configuration hashes and dataset versions.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::{CoreError, Result};

/// SHA-256 of a byte slice.
pub fn sha256_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hexadecimal of a digest.
pub fn to_hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// Hex SHA-256 of a file's bytes, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<String> {
    Ok(sha256_file_unless(path, &AtomicBool::new(false))?.unwrap_or_default())
}

/// [`sha256_file`], given up (`None`) once `stop` is set: for a hash run beside work that may
/// find it is not needed (the CSV reader hashes while it finds out whether it can read a file).
pub fn sha256_file_unless(path: &Path, stop: &AtomicBool) -> Result<Option<String>> {
    let mut file = File::open(path).map_err(|e| CoreError::io("cannot open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let n = file.read(&mut buf).map_err(|e| CoreError::io("cannot read", path, e))?;
        if n == 0 {
            return Ok(Some(to_hex(&hasher.finalize())));
        }
        hasher.update(&buf[..n]);
    }
}

/// Hex SHA-256 of a value's canonical JSON: the hash of a configuration.
///
/// `serde_json` writes struct fields in declaration order and maps in insertion order, so the same
/// typed configuration always gives the same text.
pub fn sha256_json<T: serde::Serialize>(value: &T) -> Result<String> {
    let text = serde_json::to_vec(value)
        .map_err(|source| CoreError::Json { context: "cannot encode value for hashing".into(), source })?;
    Ok(to_hex(&sha256_bytes(&text)))
}

/// An incremental SHA-256 for callers that hash while they read (ingest hashes during its pre-pass).
#[derive(Default, Clone)]
pub struct Hasher(Sha256);

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The hex digest.
    pub fn finish_hex(self) -> String {
        to_hex(&self.0.finalize())
    }
    /// The raw digest.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(to_hex(&sha256_bytes(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}

#[cfg(feature = "frame")]
/// A fast, fixed mixer for counting distinct 64-bit keys (not for anything adversarial).
#[derive(Default, Clone, Copy)]
pub(crate) struct MixHasher(u64);

#[cfg(feature = "frame")]
impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
}

#[cfg(feature = "frame")]
pub(crate) type MixBuild = std::hash::BuildHasherDefault<MixHasher>;
