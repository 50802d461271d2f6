//! What travels inside the peer messages' `bytes` fields, and back (pure).
//!
//! Format 1 is serde_json of openraft's own request and response types (the proto does not follow
//! openraft's internals) and of linkmesh's `Command`/`CommandOutcome`. A snapshot chunk's bytes ride
//! beside the JSON, in `RaftRequest.snapshot_data`. Anything a peer sends is decoded into a
//! [`PayloadError`], never a panic: an unknown format, bad JSON, a type that does not match.

use openraft::raft::InstallSnapshotRequest;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::proto::cluster::v1::{RaftReply, RaftRequest};
use crate::raft::TypeConfig;

/// JSON of the openraft 0.9 types (`proto/linkmesh/cluster/v1/cluster.proto`).
pub const PAYLOAD_FORMAT_JSON: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("unknown payload format {0}")]
    UnknownFormat(u32),
    #[error("payload cannot be decoded: {0}")]
    Decode(String),
    #[error("payload cannot be encoded: {0}")]
    Encode(String),
}

pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, PayloadError> {
    serde_json::to_vec(value).map_err(|error| PayloadError::Encode(error.to_string()))
}

pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PayloadError> {
    serde_json::from_slice(bytes).map_err(|error| PayloadError::Decode(error.to_string()))
}

fn check_format(format: u32) -> Result<(), PayloadError> {
    if format == PAYLOAD_FORMAT_JSON {
        Ok(())
    } else {
        Err(PayloadError::UnknownFormat(format))
    }
}

pub fn encode_request<T: Serialize>(request: &T) -> Result<RaftRequest, PayloadError> {
    Ok(RaftRequest {
        payload_format: PAYLOAD_FORMAT_JSON,
        payload: to_json(request)?,
        snapshot_data: Vec::new(),
    })
}

pub fn decode_request<T: DeserializeOwned>(request: &RaftRequest) -> Result<T, PayloadError> {
    check_format(request.payload_format)?;
    from_json(&request.payload)
}

/// `Result<response, openraft error>` as the answer to a Raft RPC.
pub fn encode_reply<T: Serialize, E: Serialize>(result: &Result<T, E>) -> Result<RaftReply, PayloadError> {
    Ok(RaftReply { payload_format: PAYLOAD_FORMAT_JSON, payload: to_json(result)? })
}

pub fn decode_reply<T: DeserializeOwned, E: DeserializeOwned>(
    reply: &RaftReply,
) -> Result<Result<T, E>, PayloadError> {
    check_format(reply.payload_format)?;
    from_json(&reply.payload)
}

/// A snapshot chunk: the bytes move out of the JSON into `snapshot_data`, unchanged.
pub fn encode_snapshot_chunk(
    mut request: InstallSnapshotRequest<TypeConfig>,
) -> Result<RaftRequest, PayloadError> {
    let data = std::mem::take(&mut request.data);
    let mut encoded = encode_request(&request)?;
    encoded.snapshot_data = data;
    Ok(encoded)
}

pub fn decode_snapshot_chunk(
    request: RaftRequest,
) -> Result<InstallSnapshotRequest<TypeConfig>, PayloadError> {
    let mut decoded: InstallSnapshotRequest<TypeConfig> = decode_request(&request)?;
    if !decoded.data.is_empty() {
        return Err(PayloadError::Decode("a snapshot chunk's bytes belong in snapshot_data".into()));
    }
    decoded.data = request.snapshot_data;
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::error::{InstallSnapshotError, RaftError, SnapshotMismatch};
    use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest, VoteResponse};
    use openraft::{
        CommittedLeaderId, EntryPayload, LogId, Membership, SnapshotMeta, StoredMembership, Vote,
    };

    use super::*;
    use crate::model::{Command, UnixMillis};
    use crate::raft::types::Entry;
    use crate::raft::NodeInfo;

    fn log_id(term: u64, index: u64) -> LogId<u64> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    #[test]
    fn append_entries_with_commands_and_membership_round_trip() {
        let members =
            BTreeMap::from([(1, NodeInfo { rpc_addr: "127.0.0.1:8081".into(), http_addr: "h".into() })]);
        let request = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(3, 9)),
            leader_commit: Some(log_id(3, 8)),
            entries: vec![
                Entry { log_id: log_id(3, 10), payload: EntryPayload::Blank },
                Entry {
                    log_id: log_id(3, 11),
                    payload: EntryPayload::Normal(Command::RecordTokenUse {
                        uses: BTreeMap::from([("sat_1".to_owned(), UnixMillis(5))]),
                    }),
                },
                Entry {
                    log_id: log_id(3, 12),
                    payload: EntryPayload::Membership(Membership::new(
                        vec![[1u64].into_iter().collect()],
                        members,
                    )),
                },
            ],
        };
        let encoded = encode_request(&request).expect("encode");
        assert_eq!(encoded.payload_format, PAYLOAD_FORMAT_JSON);
        let decoded: AppendEntriesRequest<TypeConfig> = decode_request(&encoded).expect("decode");
        // (openraft's AppendEntriesRequest has no PartialEq: compared through its JSON and fields.)
        assert_eq!(to_json(&decoded).expect("json"), encoded.payload);
        assert_eq!(decoded.entries.len(), 3);
        assert_eq!(decoded.prev_log_id, request.prev_log_id);
        let EntryPayload::Normal(sent) = &request.entries[1].payload else { unreachable!() };
        assert!(matches!(&decoded.entries[1].payload, EntryPayload::Normal(got) if got == sent));

        let answer: Result<AppendEntriesResponse<u64>, RaftError<u64>> =
            Ok(AppendEntriesResponse::HigherVote(Vote::new(4, 2)));
        let reply = encode_reply(&answer).expect("encode reply");
        let decoded: Result<AppendEntriesResponse<u64>, RaftError<u64>> =
            decode_reply(&reply).expect("decode");
        assert_eq!(decoded.expect("ok"), AppendEntriesResponse::HigherVote(Vote::new(4, 2)));
    }

    #[test]
    fn remote_raft_errors_survive_the_trip() {
        let mismatch: Result<VoteResponse<u64>, RaftError<u64, InstallSnapshotError>> =
            Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
                expect: openraft::SnapshotSegmentId { id: "a".into(), offset: 0 },
                got: openraft::SnapshotSegmentId { id: "b".into(), offset: 7 },
            })));
        let reply = encode_reply(&mismatch).expect("encode");
        let decoded: Result<VoteResponse<u64>, RaftError<u64, InstallSnapshotError>> =
            decode_reply(&reply).expect("decode");
        assert!(matches!(decoded, Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(_)))));
    }

    #[test]
    fn snapshot_chunk_bytes_travel_beside_the_json() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let request = InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(2, 1),
            meta: SnapshotMeta {
                last_log_id: Some(log_id(2, 40)),
                last_membership: StoredMembership::default(),
                snapshot_id: "2-40-7".into(),
            },
            offset: 4096,
            data: data.clone(),
            done: false,
        };
        let encoded = encode_snapshot_chunk(request.clone()).expect("encode");
        assert_eq!(encoded.snapshot_data, data);
        assert!(encoded.payload.len() < 1024, "the json carries no chunk bytes: {}", encoded.payload.len());
        assert_eq!(decode_snapshot_chunk(encoded).expect("decode"), request);
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        let vote = encode_request(&VoteRequest::<u64>::new(Vote::new(1, 1), None)).expect("encode");
        let unknown = RaftRequest { payload_format: 2, ..vote.clone() };
        assert!(matches!(decode_request::<VoteRequest<u64>>(&unknown), Err(PayloadError::UnknownFormat(2))));
        for garbage in [&b""[..], b"{", b"null", b"[1,2,3]", b"{\"vote\":17}", &[0xff, 0xfe, 0x00]] {
            let request = RaftRequest { payload: garbage.to_vec(), ..vote.clone() };
            assert!(decode_request::<VoteRequest<u64>>(&request).is_err(), "{garbage:?}");
            assert!(decode_snapshot_chunk(request).is_err(), "{garbage:?}");
        }
        // A well-formed request of another type is not taken for this one.
        assert!(decode_request::<AppendEntriesRequest<TypeConfig>>(&vote).is_err());
        // Chunk bytes inside the JSON are refused rather than silently dropped or doubled.
        let mut chunk = InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(2, 1),
            meta: SnapshotMeta::default(),
            offset: 0,
            data: vec![1, 2, 3],
            done: true,
        };
        let inline = encode_request(&chunk).expect("encode");
        assert!(decode_snapshot_chunk(inline).is_err());
        chunk.data.clear();
        let reply = RaftReply { payload_format: 9, payload: b"{}".to_vec() };
        assert!(decode_reply::<VoteResponse<u64>, RaftError<u64>>(&reply).is_err());
    }
}
