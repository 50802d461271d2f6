//! The remotecfg Connect service: codecs, HTTP forms, caching and the collector status machine.

mod support;

use std::io::Read;

use base64::Engine as _;
use prost::Message;
use support::*;

async fn onboarded(server: &Server, name: &str) -> (Api, String, String) {
    let api = Api::admin(server).await;
    let collector_id = api.create_collector(name).await;
    let token = api.mint_token(&collector_id).await;
    (api, collector_id, token)
}

#[tokio::test]
async fn not_modified_round_trip() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "cache").await;
    let first = get_config(&server, &token, &poll_request("h", "")).await;
    assert!(!first.not_modified);
    assert_eq!(first.hash.len(), 64);
    let second = get_config(&server, &token, &poll_request("h", &first.hash)).await;
    assert!(second.not_modified);
    assert!(second.content.is_empty());
    let stale_hash = get_config(&server, &token, &poll_request("h", "some-old-hash")).await;
    assert!(!stale_hash.not_modified);
    assert_eq!(stale_hash.content, first.content);
}

#[tokio::test]
async fn get_form_as_sent_by_alloy_1_7_to_1_11() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "get-form").await;
    let message =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(poll_request("host-1", "").encode_to_vec());
    let response = reqwest::Client::new()
        .get(server.url(&format!(
            "/collector.v1.CollectorService/GetConfig?connect=v1&base64=1&encoding=proto&message={message}"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/proto");
    let decoded = pb::GetConfigResponse::decode(response.bytes().await.expect("body")).expect("decode");
    assert!(decoded.content.starts_with("// linkmesh:"));
}

#[tokio::test]
async fn json_codec_answers_in_json_with_camel_case_fields() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "json").await;
    let client = reqwest::Client::new();
    let first: serde_json::Value = client
        .post(server.url("/collector.v1.CollectorService/GetConfig"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"id":"h","localAttributes":{"env":"prod"}}"#)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json response");
    let hash = first["hash"].as_str().expect("hash");
    assert!(first["content"].as_str().expect("content").starts_with("// linkmesh:"));
    let response = client
        .post(server.url("/collector.v1.CollectorService/GetConfig"))
        .bearer_auth(&token)
        .header("content-type", "application/json; charset=utf-8")
        .body(serde_json::json!({ "id": "h", "hash": hash }).to_string())
        .send()
        .await
        .expect("post");
    assert!(response.headers()["content-type"].to_str().expect("ct").starts_with("application/json"));
    let second: serde_json::Value = response.json().await.expect("json");
    assert_eq!(second["notModified"], true);
}

#[tokio::test]
async fn gzip_request_bodies_and_gzip_responses() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "gzip").await;
    let body = linkmesh::http::body::gzip(&poll_request("host-gz", "").encode_to_vec()).expect("gzip");
    let response = reqwest::Client::new()
        .post(server.url("/collector.v1.CollectorService/GetConfig"))
        .bearer_auth(&token)
        .header("content-type", "application/proto")
        .header("content-encoding", "gzip")
        .header("accept-encoding", "gzip")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.expect("body");
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_ref()).read_to_end(&mut inflated).expect("gunzip");
    let decoded = pb::GetConfigResponse::decode(inflated.as_slice()).expect("decode");
    assert!(decoded.content.contains("\"gzip\""));
}

#[tokio::test]
async fn legacy_attributes_are_used_when_local_attributes_are_absent() {
    let server = Server::start();
    let (api, collector_id, token) = onboarded(&server, "legacy").await;
    let request = pb::GetConfigRequest {
        id: "old-alloy".into(),
        attributes: [("collector.version".to_owned(), "v1.5.0".to_owned())].into(),
        ..Default::default()
    };
    get_config(&server, &token, &request).await;
    let collector = api.wait_for_status(&collector_id, "connected").await;
    assert_eq!(collector["local_attributes"]["collector.version"], "v1.5.0");
}

#[tokio::test]
async fn register_is_idempotent_one_event_per_registration() {
    let server = Server::start();
    let (api, collector_id, token) = onboarded(&server, "reg").await;
    for _ in 0..4 {
        register(&server, &token, "host-r").await;
    }
    api.wait_for_event(&collector_id, "remotecfg_registered", 1).await;
    get_config(&server, &token, &poll_request("host-r", "")).await;
    let types = api.wait_for_event(&collector_id, "config_delivered", 1).await;
    assert_eq!(types.iter().filter(|t| *t == "remotecfg_registered").count(), 1, "{types:?}");
}

#[tokio::test]
async fn a_second_host_on_the_same_token_is_reported_not_merged() {
    let server = Server::start();
    let (api, collector_id, token) = onboarded(&server, "shared").await;
    get_config(&server, &token, &poll_request("host-a", "")).await;
    get_config(&server, &token, &poll_request("host-b", "")).await;
    api.wait_for_event(&collector_id, "host_id_conflict", 1).await;
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["host_id"], "host-a");
    let events = api.get(&format!("/api/v1/collectors/{collector_id}/events")).await;
    let conflict = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|event| event["type"] == "host_id_conflict")
        .expect("conflict event")
        .clone();
    assert_eq!(conflict["data"]["other_host_id"], "host-b");
}

#[tokio::test]
async fn missed_polls_make_a_collector_stale_until_it_polls_again() {
    let server = Server::start_with_config(STALE_FAST_CONFIG);
    let (api, collector_id, token) = onboarded(&server, "sleepy").await;
    let first = get_config(&server, &token, &poll_request("h", "")).await;
    // STALE_FAST_CONFIG expects a poll every 400ms; three missed polls make it stale. `stale` lasts until
    // the next poll, so it can be waited on; the short-lived `connected` phases are read from the events.
    api.wait_for_status(&collector_id, "stale").await;
    get_config(&server, &token, &poll_request("h", &first.hash)).await;
    api.wait_for_event(&collector_id, "status_changed", 3).await;
    let events = api.get(&format!("/api/v1/collectors/{collector_id}/events?limit=1000")).await;
    let transitions: Vec<(String, String)> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["type"] == "status_changed")
        .map(|event| {
            (
                event["data"]["from"].as_str().expect("from").into(),
                event["data"]["to"].as_str().expect("to").into(),
            )
        })
        .collect();
    let expected = [("awaiting_connection", "connected"), ("connected", "stale"), ("stale", "connected")];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(from, to)| ((*from).into(), (*to).into())).collect();
    assert_eq!(transitions[..3], expected[..], "{transitions:?}");
}

#[tokio::test]
async fn status_follows_polls_reports_and_goodbyes() {
    let server = Server::start();
    let (api, collector_id, token) = onboarded(&server, "lifecycle").await;
    assert_eq!(api.collector(&collector_id).await["status"], "awaiting_connection");

    let first = get_config(&server, &token, &poll_request("h", "")).await;
    api.wait_for_status(&collector_id, "connected").await;

    let failed = pb::GetConfigRequest {
        remote_config_status: Some(pb::RemoteConfigStatus {
            status: pb::RemoteConfigStatuses::Failed as i32,
            error_message: "component \"x\" does not exist".into(),
        }),
        ..poll_request("h", &first.hash)
    };
    get_config(&server, &token, &failed).await;
    let degraded = api.wait_for_status(&collector_id, "degraded").await;
    assert_eq!(degraded["config"]["remote_status"], "failed");
    assert_eq!(degraded["config"]["remote_error"], "component \"x\" does not exist");

    let applied = pb::GetConfigRequest {
        remote_config_status: Some(pb::RemoteConfigStatus {
            status: pb::RemoteConfigStatuses::Applied as i32,
            error_message: String::new(),
        }),
        effective_config: Some(pb::EffectiveConfig {
            config_map: Some(pb::AgentConfigMap {
                config_map: [(
                    String::new(),
                    pb::AgentConfigFile {
                        body: first.content.clone().into_bytes(),
                        content_type: "text/plain".into(),
                    },
                )]
                .into(),
            }),
        }),
        ..poll_request("h", &first.hash)
    };
    get_config(&server, &token, &applied).await;
    api.wait_for_status(&collector_id, "connected").await;

    let goodbye = pb::UnregisterCollectorRequest { id: "h".into() };
    let response = connect_post(&server, "UnregisterCollector", Some(&token), &goodbye).await;
    assert_eq!(response.status(), 200);
    api.wait_for_status(&collector_id, "offline").await;

    let types = api.wait_for_event(&collector_id, "unregistered", 1).await;
    let expected_in_order = ["config_delivered", "config_failed", "config_applied", "unregistered"];
    let mut cursor = 0;
    for event_type in &types {
        if cursor < expected_in_order.len() && event_type == expected_in_order[cursor] {
            cursor += 1;
        }
    }
    assert_eq!(cursor, expected_in_order.len(), "events out of order: {types:?}");
    let stored = api.collector(&collector_id).await;
    assert_eq!(stored["config"]["effective_config"], first.content.as_str());
    assert_eq!(stored["config"]["remote_status"], "applied");
}

#[tokio::test]
async fn events_page_with_after_and_limit() {
    let server = Server::start();
    let (api, collector_id, _token) = onboarded(&server, "paging").await;
    api.mint_token(&collector_id).await;
    let first_page = api.get(&format!("/api/v1/collectors/{collector_id}/events?limit=2")).await;
    let ids: Vec<u64> = first_page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, [1, 2]);
    let next = first_page["next"].as_u64().expect("next");
    let second_page =
        api.get(&format!("/api/v1/collectors/{collector_id}/events?after={next}&limit=2")).await;
    assert_eq!(second_page["events"][0]["id"], 3);
    assert_eq!(second_page["events"][0]["type"], "token_rotated");
}

#[tokio::test]
async fn collectors_without_hash_support_record_one_delivery_per_start() {
    let server = Server::start();
    let (api, collector_id, token) = onboarded(&server, "old-alloy").await;
    register(&server, &token, "h").await;
    for _ in 0..3 {
        get_config(&server, &token, &poll_request("h", "")).await;
    }
    api.wait_for_event(&collector_id, "config_delivered", 1).await;
    // A restart registers again; its first poll is a delivery again.
    register(&server, &token, "h").await;
    get_config(&server, &token, &poll_request("h", "")).await;
    get_config(&server, &token, &poll_request("h", "")).await;
    let types = api.wait_for_event(&collector_id, "config_delivered", 2).await;
    // A barrier event written after every poll above.
    let goodbye = pb::UnregisterCollectorRequest { id: "h".into() };
    assert_eq!(connect_post(&server, "UnregisterCollector", Some(&token), &goodbye).await.status(), 200);
    let types_after = api.wait_for_event(&collector_id, "unregistered", 1).await;
    assert_eq!(
        types_after.iter().filter(|t| *t == "config_delivered").count(),
        2,
        "{types:?} {types_after:?}"
    );
}
