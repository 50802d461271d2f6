//! An agent's identity on the wire: `instance_uid`, 16 bytes (a UUIDv7 in current agents), or the
//! 26-character ULID text that opamp-go agents sent before the 16-byte form (the same 128 bits,
//! Crockford base32). Both are read into one [`InstanceUid`]; the canonical text form is the UUID's
//! (`0190…-…`), which is also what agents send in the `OpAMP-Instance-UID` header of plain-HTTP
//! requests and as `service.instance.id` in their own telemetry.

use std::fmt;

/// 128 bits identifying one running agent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceUid([u8; 16]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceUidError {
    #[error("instance_uid must be 16 bytes (or a 26-character ULID), not {0} bytes")]
    Length(usize),
    #[error("instance_uid is not a valid ULID")]
    InvalidUlid,
}

/// Crockford's base32 alphabet, as ULIDs use it.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl InstanceUid {
    pub const fn from_bytes(bytes: [u8; 16]) -> InstanceUid {
        InstanceUid(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Reads `AgentToServer.instance_uid`.
    pub fn from_wire(bytes: &[u8]) -> Result<InstanceUid, InstanceUidError> {
        match bytes.len() {
            16 => Ok(InstanceUid(bytes.try_into().expect("16 bytes"))),
            26 => Self::from_ulid(bytes),
            other => Err(InstanceUidError::Length(other)),
        }
    }

    /// 26 Crockford base32 digits, most significant first, case-insensitive; 130 bits of which
    /// the top 2 must be zero.
    fn from_ulid(text: &[u8]) -> Result<InstanceUid, InstanceUidError> {
        let mut value: u128 = 0;
        for (index, &byte) in text.iter().enumerate() {
            let digit = CROCKFORD
                .iter()
                .position(|&symbol| symbol == byte.to_ascii_uppercase())
                .ok_or(InstanceUidError::InvalidUlid)?;
            if index == 0 && digit > 7 {
                return Err(InstanceUidError::InvalidUlid);
            }
            value = (value << 5) | digit as u128;
        }
        Ok(InstanceUid(value.to_be_bytes()))
    }

    /// Reads the canonical UUID text (`8-4-4-4-12` hex digits, either case), as agents send it in
    /// the `OpAMP-Instance-UID` header.
    pub fn parse_canonical(text: &str) -> Option<InstanceUid> {
        let groups: Vec<&str> = text.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
        if lengths != [8, 4, 4, 4, 12] {
            return None;
        }
        let hex: String = groups.concat();
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(hex, &mut bytes).ok()?;
        Some(InstanceUid(bytes))
    }
}

/// The canonical UUID text, lowercase.
impl fmt::Display for InstanceUid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = hex::encode(self.0);
        write!(formatter, "{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
    }
}

impl fmt::Debug for InstanceUid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "InstanceUid({self})")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn sixteen_bytes_read_as_they_are_and_print_as_a_uuid() {
        let bytes = hex::decode("0193a1b2c3d47e5f8a9b0c1d2e3f4a5b").expect("hex");
        let uid = InstanceUid::from_wire(&bytes).expect("16 bytes");
        assert_eq!(uid.to_string(), "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(InstanceUid::parse_canonical("0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B"), Some(uid));
    }

    #[test]
    fn an_old_agents_ulid_text_is_the_same_128_bits() {
        // The ULID spec's example: 01ARZ3NDEKTSV4RRFFQ69G5FAV.
        let uid = InstanceUid::from_wire(b"01ARZ3NDEKTSV4RRFFQ69G5FAV").expect("ulid");
        assert_eq!(uid.to_string(), "01563e3a-b5d3-d676-4c61-efb99302bd5b");
        assert_eq!(InstanceUid::from_wire(b"01arz3ndektsv4rrffq69g5fav"), Ok(uid), "case-insensitive");
    }

    #[test]
    fn other_lengths_and_invalid_ulids_are_refused() {
        assert_eq!(InstanceUid::from_wire(b""), Err(InstanceUidError::Length(0)));
        assert_eq!(InstanceUid::from_wire(&[0; 15]), Err(InstanceUidError::Length(15)));
        assert_eq!(InstanceUid::from_wire(&[0; 36]), Err(InstanceUidError::Length(36)));
        // 'U' is not a Crockford digit; '8' first would need 131 bits.
        assert_eq!(InstanceUid::from_wire(b"01ARZ3NDEKTSV4RRFFQ69G5FAU"), Err(InstanceUidError::InvalidUlid));
        assert_eq!(InstanceUid::from_wire(b"81ARZ3NDEKTSV4RRFFQ69G5FAV"), Err(InstanceUidError::InvalidUlid));
        assert_eq!(InstanceUid::parse_canonical("0193a1b2c3d47e5f8a9b0c1d2e3f4a5b"), None);
        assert_eq!(InstanceUid::parse_canonical("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g"), None);
    }

    proptest! {
        #[test]
        fn the_canonical_text_reads_back_to_the_same_uid(bytes in any::<[u8; 16]>()) {
            let uid = InstanceUid::from_bytes(bytes);
            prop_assert_eq!(InstanceUid::parse_canonical(&uid.to_string()), Some(uid));
            prop_assert_eq!(InstanceUid::from_wire(&bytes), Ok(uid));
        }
    }
}
