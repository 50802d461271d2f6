//! Every remotecfg message Alloy can send, decoded from arbitrary bytes in both Connect codecs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkmesh::proto::collector::v1 as pb;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = pb::GetConfigRequest::decode(data);
    let _ = pb::RegisterCollectorRequest::decode(data);
    let _ = pb::UnregisterCollectorRequest::decode(data);
    let _ = serde_json::from_slice::<pb::GetConfigRequest>(data);
    let _ = serde_json::from_slice::<pb::RegisterCollectorRequest>(data);
});
