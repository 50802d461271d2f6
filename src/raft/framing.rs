//! Checksummed values: every value linkmesh writes into sled carries its own CRC-32.
//!
//! sled checks its own segments, but it recovers silently to the last intact one and recomputes its
//! checksums on every write, so neither a torn tail nor a value damaged before it reached sled would
//! be noticed. A framed value is `[FRAME_MAGIC, FRAME_VERSION, crc32 (LE), payload]`, the CRC taken over
//! the tree name, the key and the payload, so a value read under another key fails too. Values written
//! before this format (store format 1) are bare JSON, which never starts with `FRAME_MAGIC` (not UTF-8).

const FRAME_MAGIC: u8 = 0xfe;
const FRAME_VERSION: u8 = 1;
const HEADER_LEN: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("is not a checksummed value")]
    NotFramed,
    #[error("fails its checksum")]
    ChecksumMismatch,
    #[error("has an unknown frame version {0}")]
    UnknownVersion(u8),
}

fn checksum(tree: &str, key: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(tree.as_bytes());
    hasher.update(&[0]);
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update(payload);
    hasher.finalize()
}

/// The stored form of `payload` under `tree`/`key`.
pub fn seal(tree: &str, key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(HEADER_LEN + payload.len());
    value.push(FRAME_MAGIC);
    value.push(FRAME_VERSION);
    value.extend_from_slice(&checksum(tree, key, payload).to_le_bytes());
    value.extend_from_slice(payload);
    value
}

/// The payload of a framed value, after checking it belongs to `tree`/`key` and is intact.
pub fn open<'a>(tree: &str, key: &[u8], value: &'a [u8]) -> Result<&'a [u8], FrameError> {
    if value.len() < HEADER_LEN || value[0] != FRAME_MAGIC {
        return Err(FrameError::NotFramed);
    }
    if value[1] != FRAME_VERSION {
        return Err(FrameError::UnknownVersion(value[1]));
    }
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&value[2..HEADER_LEN]);
    let payload = &value[HEADER_LEN..];
    if u32::from_le_bytes(stored) != checksum(tree, key, payload) {
        return Err(FrameError::ChecksumMismatch);
    }
    Ok(payload)
}

/// How a stored value is opened: [`open`], or [`open_legacy`] while a store is adopted.
pub type Opener = for<'a> fn(&str, &[u8], &'a [u8]) -> Result<&'a [u8], FrameError>;

/// Reads a value of a store being adopted: framed (checked) or bare (store format 1, unchecked).
pub fn open_legacy<'a>(tree: &str, key: &[u8], value: &'a [u8]) -> Result<&'a [u8], FrameError> {
    match value.first() {
        Some(&FRAME_MAGIC) => open(tree, key, value),
        _ => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_under_its_own_key_and_intact() {
        let sealed = seal("raft_log", b"k1", b"{\"a\":1}");
        assert_eq!(open("raft_log", b"k1", &sealed), Ok(&b"{\"a\":1}"[..]));
        assert_eq!(open("raft_log", b"k2", &sealed), Err(FrameError::ChecksumMismatch));
        assert_eq!(open("raft_meta", b"k1", &sealed), Err(FrameError::ChecksumMismatch));
        for position in 0..sealed.len() {
            let mut damaged = sealed.clone();
            damaged[position] ^= 0x10;
            assert!(open("raft_log", b"k1", &damaged).is_err(), "flip at {position} not detected");
        }
        assert_eq!(open("raft_log", b"k1", b"{\"a\":1}"), Err(FrameError::NotFramed));
        assert_eq!(open("raft_log", b"k1", &sealed[..3]), Err(FrameError::NotFramed));
    }

    #[test]
    fn legacy_values_are_read_bare_and_framed_ones_checked() {
        assert_eq!(open_legacy("t", b"k", b"[1,2]"), Ok(&b"[1,2]"[..]));
        let mut sealed = seal("t", b"k", b"[1,2]");
        assert_eq!(open_legacy("t", b"k", &sealed), Ok(&b"[1,2]"[..]));
        sealed[7] ^= 1;
        assert_eq!(open_legacy("t", b"k", &sealed), Err(FrameError::ChecksumMismatch));
    }
}
