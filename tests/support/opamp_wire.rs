//! OpAMP over plain HTTP as an agent sends it: messages built with linkmesh's generated OpAMP types,
//! POSTed as `application/x-protobuf`, answers decoded. For tests that need exact control over what
//! an agent says (the independent clients are in `opamp_agent.rs`, tests/python and tests/node).

use linkmesh::proto::opamp::v1 as opamp;
use prost::Message;

use super::Server;

/// What opampsupervisor v0.149.0 reports with remote config enabled.
pub const SUPERVISOR_CAPABILITIES: u64 = 0x7C47;
pub const AGENT_UID: [u8; 16] =
    [0x01, 0x93, 0xa1, 0xb2, 0xc3, 0xd4, 0x7e, 0x5f, 0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b];
pub const AGENT_UID_TEXT: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

pub fn text_attribute(key: &str, value: &str) -> opamp::KeyValue {
    opamp::KeyValue {
        key: key.to_owned(),
        value: Some(opamp::AnyValue { value: Some(opamp::any_value::Value::StringValue(value.to_owned())) }),
    }
}

/// A full report, as an agent's first message is.
pub fn first_message() -> opamp::AgentToServer {
    opamp::AgentToServer {
        instance_uid: AGENT_UID.to_vec(),
        sequence_num: 0,
        capabilities: SUPERVISOR_CAPABILITIES,
        agent_description: Some(opamp::AgentDescription {
            identifying_attributes: vec![
                text_attribute("service.name", "otelcol-contrib"),
                text_attribute("service.instance.id", AGENT_UID_TEXT),
            ],
            non_identifying_attributes: vec![
                text_attribute("host.name", "edge-7"),
                opamp::KeyValue {
                    key: "host.cpus".to_owned(),
                    value: Some(opamp::AnyValue { value: Some(opamp::any_value::Value::IntValue(8)) }),
                },
            ],
        }),
        ..Default::default()
    }
}

/// A heartbeat: the uid, the sequence number and the capabilities, nothing that did not change.
pub fn heartbeat(sequence_num: u64) -> opamp::AgentToServer {
    opamp::AgentToServer {
        instance_uid: AGENT_UID.to_vec(),
        sequence_num,
        capabilities: SUPERVISOR_CAPABILITIES,
        ..Default::default()
    }
}

pub fn with_status(
    mut message: opamp::AgentToServer,
    hash: &[u8],
    status: opamp::RemoteConfigStatuses,
    error: &str,
) -> opamp::AgentToServer {
    message.remote_config_status = Some(opamp::RemoteConfigStatus {
        last_remote_config_hash: hash.to_vec(),
        status: status as i32,
        error_message: error.to_owned(),
    });
    message
}

pub async fn post_raw(
    server: &Server,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request =
        reqwest::Client::new().post(server.url("/v1/opamp")).header("content-type", content_type).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("post")
}

/// Sends `message` as an agent does and decodes the answer, which must be a 200 protobuf body.
pub async fn send(server: &Server, token: &str, message: &opamp::AgentToServer) -> opamp::ServerToAgent {
    let response = post_raw(server, Some(token), "application/x-protobuf", message.encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").and_then(|value| value.to_str().ok()),
        Some("application/x-protobuf"),
        "exactly this content type: the Node client accepts no other"
    );
    let body = response.bytes().await.expect("body");
    opamp::ServerToAgent::decode(body.as_ref()).expect("a ServerToAgent")
}

pub fn offered_config(reply: &opamp::ServerToAgent) -> Option<(String, Vec<u8>)> {
    let offer = reply.remote_config.as_ref()?;
    let file = &offer.config.as_ref().expect("a config map").config_map[""];
    assert_eq!(file.content_type, "text/yaml");
    Some((String::from_utf8(file.body.clone()).expect("utf-8"), offer.config_hash.clone()))
}
