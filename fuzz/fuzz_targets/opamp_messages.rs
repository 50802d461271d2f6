//! Every OpAMP AgentToServer an agent can send, as a plain-HTTP body or a WebSocket frame.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    linkmesh::fuzzing::opamp_messages(data);
});
