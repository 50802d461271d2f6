//! A size limit on a WebSocket client's messages that holds *before* they are buffered.
//!
//! actix-http's frame parser checks a frame's length against its `max_size` only once the whole frame
//! has arrived, and actix-ws reads the connection into an unbounded buffer meanwhile: a client
//! announcing a frame of 8 GiB could make the server hold 8 GiB before being refused. So the client's
//! bytes pass through [`LimitedFrames`] first, which reads every frame header (RFC 6455 §5.2) as it
//! goes by and ends the stream as soon as a frame, or a message fragmented over several frames,
//! announces more than the limit; the handler then closes the connection with 1009 (Message Too Big).

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::dev;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

/// The longest frame header: 2 bytes, a 64-bit length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// Follows the frame headers of one direction of a WebSocket connection.
#[derive(Debug)]
pub struct FrameLimit {
    limit: u64,
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// Payload bytes so far of a data message whose last frame has not come yet.
    message_so_far: u64,
}

/// The header of a masked client frame of `length` payload bytes (RFC 6455 §5.2): what
/// [`FrameLimit`] reads, for clients written by hand (tests) that must send what no library sends.
pub fn client_frame_header(fin: bool, opcode: u8, length: u64, mask: [u8; 4]) -> Vec<u8> {
    let mut header = Vec::with_capacity(MAX_HEADER);
    header.push(if fin { 0x80 } else { 0 } | opcode);
    match length {
        0..=125 => header.push(0x80 | length as u8),
        126..=65_535 => {
            header.push(0x80 | 126);
            header.extend((length as u16).to_be_bytes());
        }
        _ => {
            header.push(0x80 | 127);
            header.extend(length.to_be_bytes());
        }
    }
    header.extend(mask);
    header
}

/// A frame or fragmented message announced more than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    pub announced: u64,
}

impl FrameLimit {
    pub fn new(limit: usize) -> FrameLimit {
        FrameLimit {
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            header: [0; MAX_HEADER],
            header_len: 0,
            payload_left: 0,
            message_so_far: 0,
        }
    }

    /// Reads the next bytes the client sent.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Oversized> {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skipped = usize::try_from(self.payload_left).unwrap_or(usize::MAX).min(bytes.len());
                self.payload_left -= skipped as u64;
                bytes = &bytes[skipped..];
                continue;
            }
            let needed = header_size(&self.header[..self.header_len]);
            let taken = (needed - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + taken].copy_from_slice(&bytes[..taken]);
            self.header_len += taken;
            bytes = &bytes[taken..];
            // The first two bytes say how long the header is: read on until all of it is here.
            if self.header_len == header_size(&self.header[..self.header_len]) {
                self.frame_header()?;
            }
        }
        Ok(())
    }

    fn frame_header(&mut self) -> Result<(), Oversized> {
        let header = &self.header[..self.header_len];
        let finished = header[0] & 0x80 != 0;
        let opcode = header[0] & 0x0f;
        let length = match header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            127 => u64::from_be_bytes(header[2..10].try_into().expect("eight bytes")),
            short => u64::from(short),
        };
        self.header_len = 0;
        self.payload_left = length;
        let announced = match opcode {
            // A continuation adds to the message it continues; text and binary start one.
            0x0 => self.message_so_far.saturating_add(length),
            0x1 | 0x2 => length,
            // Control frames (at most 125 bytes; the codec refuses longer ones) do not interrupt the
            // count of a fragmented message.
            _ => {
                return if length > self.limit { Err(Oversized { announced: length }) } else { Ok(()) };
            }
        };
        if announced > self.limit {
            return Err(Oversized { announced });
        }
        self.message_so_far = if finished { 0 } else { announced };
        Ok(())
    }
}

/// The size of a frame header whose first bytes are `partial` (2 until those two are known).
fn header_size(partial: &[u8]) -> usize {
    let Some(&second) = partial.get(1) else { return 2 };
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

/// The request's payload (the client's side of the connection once upgraded), ended with an error as
/// soon as [`FrameLimit`] sees too large a frame; `oversized` says that this was why.
pub struct LimitedFrames {
    inner: dev::Payload,
    limit: FrameLimit,
    oversized: Rc<Cell<bool>>,
}

impl LimitedFrames {
    pub fn new(inner: dev::Payload, limit: usize, oversized: Rc<Cell<bool>>) -> LimitedFrames {
        LimitedFrames { inner, limit: FrameLimit::new(limit), oversized }
    }
}

impl Stream for LimitedFrames {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.oversized.get() {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &polled {
            if self.limit.feed(bytes).is_err() {
                self.oversized.set(true);
                return Poll::Ready(Some(Err(PayloadError::Overflow)));
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{client_frame_header, FrameLimit, Oversized};

    /// A masked client frame (payload not included when `with_payload` is false).
    fn frame(fin: bool, opcode: u8, length: usize, with_payload: bool) -> Vec<u8> {
        let mut bytes = client_frame_header(fin, opcode, length as u64, [1, 2, 3, 4]);
        if with_payload {
            bytes.extend(std::iter::repeat_n(0xab, length));
        }
        bytes
    }

    #[test]
    fn frames_within_the_limit_pass_and_one_announcing_more_is_refused_on_its_header() {
        let mut limit = FrameLimit::new(1_000);
        limit.feed(&frame(true, 0x2, 1_000, true)).expect("at the limit");
        limit.feed(&frame(true, 0x9, 5, true)).expect("a ping");
        assert_eq!(limit.feed(&frame(true, 0x2, 8 << 30, false)), Err(Oversized { announced: 8 << 30 }));
    }

    #[test]
    fn a_fragmented_message_counts_as_one_and_control_frames_between_do_not_reset_it() {
        let mut limit = FrameLimit::new(1_000);
        limit.feed(&frame(false, 0x2, 400, true)).expect("first fragment");
        limit.feed(&frame(true, 0xA, 3, true)).expect("a pong between fragments");
        limit.feed(&frame(false, 0x0, 400, true)).expect("800 so far");
        assert_eq!(limit.feed(&frame(true, 0x0, 201, false)), Err(Oversized { announced: 1_001 }));
        let mut limit = FrameLimit::new(1_000);
        limit.feed(&frame(false, 0x2, 600, true)).expect("first fragment");
        limit.feed(&frame(true, 0x0, 400, true)).expect("1,000: the last fragment");
        limit.feed(&frame(true, 0x2, 1_000, true)).expect("a new message counts from zero");
    }

    proptest! {
        /// However the bytes are split into reads, the same frames pass and the same one is refused.
        #[test]
        fn the_verdict_does_not_depend_on_how_the_bytes_arrive(
            lengths in proptest::collection::vec(0usize..70_000, 1..6),
            cuts in proptest::collection::vec(1usize..5_000, 0..40),
        ) {
            let limit = 65_536;
            let mut stream = Vec::new();
            for length in &lengths {
                stream.extend(frame(true, 0x2, *length, true));
            }
            let expected = lengths.iter().find(|&&length| length > limit).map(|&length| length as u64);
            let mut whole = FrameLimit::new(limit);
            let whole_verdict = whole.feed(&stream).err().map(|oversized| oversized.announced);
            prop_assert_eq!(whole_verdict, expected);
            let mut pieces = FrameLimit::new(limit);
            let mut rest = stream.as_slice();
            let mut verdict = None;
            for cut in cuts.iter().chain(std::iter::repeat(&4_096)) {
                if rest.is_empty() {
                    break;
                }
                let (piece, after) = rest.split_at((*cut).min(rest.len()));
                rest = after;
                if let Err(oversized) = pieces.feed(piece) {
                    verdict = Some(oversized.announced);
                    break;
                }
            }
            prop_assert_eq!(verdict, expected);
        }
    }
}
