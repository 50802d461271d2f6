//! OpAMP's WebSocket framing: every binary message is a varint header followed by one encoded
//! `AgentToServer` or `ServerToAgent`. The header is 0 in this version of the protocol, so it is the
//! one byte `0x00`. Agents written before the header existed send the bare protobuf message; a
//! protobuf encoding never starts with `0x00` (field number 0 does not exist), so a first byte other
//! than 0 marks such a message and the whole frame is the message (what opamp-go reads too). A frame
//! with a header other than 0 then fails to decode as protobuf: nothing else needs checking here.

use prost::Message;

/// The header this version of the protocol writes and reads.
pub const HEADER: u8 = 0x00;

/// The protobuf message inside a received binary frame.
pub fn payload(frame: &[u8]) -> &[u8] {
    match frame.split_first() {
        Some((&HEADER, message)) => message,
        _ => frame,
    }
}

/// A binary frame carrying `message`, header first.
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    let mut frame = Vec::with_capacity(1 + message.encoded_len());
    frame.push(HEADER);
    message.encode(&mut frame).expect("a Vec grows to fit");
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::opamp::v1::{AgentToServer, ServerToAgent};

    #[test]
    fn a_frame_is_the_zero_header_then_the_message_and_reads_back() {
        let message = ServerToAgent { instance_uid: vec![7; 16], capabilities: 0x27, ..Default::default() };
        let frame = encode(&message);
        assert_eq!(frame[0], 0x00);
        assert_eq!(&frame[1..], message.encode_to_vec().as_slice());
        assert_eq!(ServerToAgent::decode(payload(&frame)).expect("decodes"), message);
    }

    #[test]
    fn a_headerless_message_from_an_old_agent_is_read_whole() {
        let message = AgentToServer { instance_uid: vec![1; 16], sequence_num: 3, ..Default::default() };
        let bare = message.encode_to_vec();
        assert_eq!(AgentToServer::decode(payload(&bare)).expect("decodes"), message);
    }

    #[test]
    fn an_empty_message_is_one_header_byte_and_a_frame_with_another_header_does_not_decode() {
        assert_eq!(encode(&AgentToServer::default()), vec![0x00]);
        assert_eq!(payload(&[0x00]), b"");
        // Header 1 (a future protocol version): read as a bare message, it is field 0, which protobuf refuses.
        let mut future = vec![0x01];
        future.extend(AgentToServer { sequence_num: 1, ..Default::default() }.encode_to_vec());
        assert!(AgentToServer::decode(payload(&future)).is_err());
    }
}
