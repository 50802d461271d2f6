//! OpAMP over plain HTTP on `/v1/opamp` (issue 18, first slice): a real server, real HTTP, messages
//! built from the OpAMP proto the way an agent sends them (the supervisor's capability bits, status
//! compression, sequence numbers).

mod support;

use linkmesh::proto::opamp::v1 as opamp;
use prost::Message;
use reqwest::Method;
use serde_json::{json, Value};
use support::opamp_agent::configure_something_to_run;
use support::opamp_wire::{
    first_message, heartbeat, offered_config, post_raw, send, with_status, AGENT_UID, AGENT_UID_TEXT,
};
use support::{Api, Server, FAST_CONFIG};

async fn create_opamp_collector(api: &Api, name: &str) -> String {
    let (status, body) =
        api.request(Method::POST, "/api/v1/collectors", Some(json!({ "name": name, "mode": "opamp" }))).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

async fn events_of_type(api: &Api, collector_id: &str, event_type: &str) -> Vec<Value> {
    let events = api.get(&format!("/api/v1/collectors/{collector_id}/events?limit=1000")).await;
    events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["type"] == event_type)
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_agent_over_plain_http_is_offered_its_config_and_its_reports_are_recorded() {
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    support::wait_for_level(&api, 4).await; // config_applying is recorded from level 4 on
    let collector_id = create_opamp_collector(&api, "otel-edge").await;
    let token = api.mint_token(&collector_id).await;

    // Nothing configured: the agent hears the server's capabilities and is offered nothing (a
    // comment-only config would leave a supervisor unable to start its collector).
    let reply = send(&server, &token, &first_message()).await;
    assert_eq!(reply.capabilities, 0x27);
    assert_eq!(reply.instance_uid, AGENT_UID.to_vec());
    assert_eq!((reply.flags, reply.error_response.is_none()), (0, true));
    assert!(offered_config(&reply).is_none(), "{reply:?}");
    let collector = api.wait_for_status(&collector_id, "connected").await;
    assert_eq!(collector["host_id"], AGENT_UID_TEXT);
    assert_eq!(collector["local_attributes"]["host.name"], "edge-7", "{collector}");
    assert_eq!(collector["local_attributes"]["host.cpus"], "8", "{collector}");
    assert_eq!(collector["local_attributes"]["service.name"], "otelcol-contrib", "{collector}");

    configure_something_to_run(&api, &collector_id).await;
    let reply = send(&server, &token, &heartbeat(1)).await;
    let (yaml, hash) = offered_config(&reply).expect("the config is offered at the next message");
    assert!(yaml.contains("receivers:") && yaml.contains("otlphttp"), "{yaml}");
    assert!(!hash.is_empty());
    api.wait_for_event(&collector_id, "config_delivered", 1).await;

    // The agent applies it: no further offer, and the outcome is recorded.
    let applying = with_status(heartbeat(2), &hash, opamp::RemoteConfigStatuses::Applying, "");
    assert!(offered_config(&send(&server, &token, &applying).await).is_none());
    let applied = with_status(heartbeat(3), &hash, opamp::RemoteConfigStatuses::Applied, "");
    assert!(offered_config(&send(&server, &token, &applied).await).is_none());
    api.wait_for_event(&collector_id, "config_applied", 1).await;
    let types = api.event_types(&collector_id).await;
    let applying = types.iter().position(|kind| kind == "config_applying");
    let applied = types.iter().position(|kind| kind == "config_applied");
    assert!(applying.is_some() && applying < applied, "APPLYING recorded before APPLIED: {types:?}");
    // Later messages leave the unchanged status out: still nothing to offer.
    let reply = send(&server, &token, &heartbeat(4)).await;
    assert!(offered_config(&reply).is_none() && reply.flags == 0, "{reply:?}");

    // A missed message (5): the agent is asked for everything again.
    let reply = send(&server, &token, &heartbeat(6)).await;
    assert_eq!(reply.flags, opamp::ServerToAgentFlags::ReportFullState as u64);
    let mut full = with_status(first_message(), &hash, opamp::RemoteConfigStatuses::Applied, "");
    full.sequence_num = 7;
    assert_eq!(send(&server, &token, &full).await.flags, 0);

    // A changed config is offered again, with another hash.
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "more", "type": "otlp"})).await;
    let (_, new_hash) =
        offered_config(&send(&server, &token, &heartbeat(8)).await).expect("the change is offered");
    assert_ne!(new_hash, hash);

    // The goodbye: offline at once.
    let mut goodbye = heartbeat(9);
    goodbye.agent_disconnect = Some(opamp::AgentDisconnect {});
    send(&server, &token, &goodbye).await;
    api.wait_for_status(&collector_id, "offline").await;
}

#[tokio::test]
async fn a_config_the_agent_failed_to_apply_is_not_offered_again_until_it_changes() {
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let collector_id = create_opamp_collector(&api, "otel-failing").await;
    let token = api.mint_token(&collector_id).await;
    configure_something_to_run(&api, &collector_id).await;
    let (_, hash) = offered_config(&send(&server, &token, &first_message()).await).expect("offered");

    let failed = with_status(
        heartbeat(1),
        &hash,
        opamp::RemoteConfigStatuses::Failed,
        "Agent exited unexpectedly with exit code 1 while applying configuration",
    );
    assert!(offered_config(&send(&server, &token, &failed).await).is_none(), "not offered again");
    api.wait_for_event(&collector_id, "config_failed", 1).await;
    let failure = &events_of_type(&api, &collector_id, "config_failed").await[0];
    assert!(failure["message"].as_str().unwrap_or_default().contains("exit code 1"), "{failure}");
    assert!(offered_config(&send(&server, &token, &heartbeat(2)).await).is_none(), "still not offered");

    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "fixed", "type": "otlp"})).await;
    let (_, fixed) =
        offered_config(&send(&server, &token, &heartbeat(3)).await).expect("the change is offered");
    assert_ne!(fixed, hash);
}

#[tokio::test]
async fn bad_requests_get_clear_refusals() {
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let collector_id = create_opamp_collector(&api, "otel-refusals").await;
    let token = api.mint_token(&collector_id).await;
    let message = first_message().encode_to_vec();

    let response = post_raw(&server, None, "application/x-protobuf", message.clone()).await;
    assert_eq!(response.status(), 401, "no token");
    let response =
        post_raw(&server, Some("lmct_not_a_token"), "application/x-protobuf", message.clone()).await;
    assert_eq!(response.status(), 401, "unknown token");
    let response = post_raw(&server, Some(&token), "application/json", message.clone()).await;
    assert_eq!(response.status(), 415);

    // An Alloy collector's token is not an OpAMP agent's.
    let alloy_id = api.create_collector("alloy-one").await;
    let alloy_token = api.mint_token(&alloy_id).await;
    let response = post_raw(&server, Some(&alloy_token), "application/x-protobuf", message.clone()).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.expect("body").contains("opamp"));

    // Not protobuf, or no valid uid: a BadRequest the agent must not retry.
    // 0xff…: no valid tag; 0a 10 01: field 1 announcing 16 bytes and holding one.
    for body in [b"\xff\xff\xff".to_vec(), vec![0x0a, 0x10, 0x01], {
        let mut short = first_message();
        short.instance_uid = vec![1, 2, 3];
        short.encode_to_vec()
    }] {
        let response = post_raw(&server, Some(&token), "application/x-protobuf", body).await;
        assert_eq!(response.status(), 200);
        let reply =
            opamp::ServerToAgent::decode(response.bytes().await.expect("body").as_ref()).expect("decodes");
        let error = reply.error_response.expect("an error response");
        assert_eq!(
            error.r#type,
            opamp::ServerErrorResponseType::BadRequest as i32,
            "{}",
            error.error_message
        );
        assert!(reply.remote_config.is_none() && reply.capabilities == 0);
    }

    // A WebSocket upgrade is authenticated before it is accepted (spec "Authentication"), and a GET
    // that asks for no upgrade is neither transport.
    for (bearer, status) in [(None, 401), (Some("lmct_not_a_token"), 401), (Some(alloy_token.as_str()), 400)]
    {
        let mut request = reqwest::Client::new()
            .get(server.url("/v1/opamp"))
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        assert_eq!(request.send().await.expect("upgrade").status(), status, "{bearer:?}");
    }
    let response =
        reqwest::Client::new().get(server.url("/v1/opamp")).bearer_auth(&token).send().await.expect("get");
    assert_eq!(response.status(), 405);
    assert!(response.text().await.expect("body").contains("WebSocket"));
}

/// An agent sending faster than its collector's call bucket allows (10 at once, then 2 a second by
/// default) is told to wait: 429 with `Retry-After`, which OpAMP agents honour, before its body is read.
#[tokio::test]
async fn an_agent_over_its_call_bucket_is_told_when_to_retry() {
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let collector_id = create_opamp_collector(&api, "otel-chatty").await;
    let token = api.mint_token(&collector_id).await;
    let mut refused = None;
    for sequence_num in 0..30 {
        let response = post_raw(
            &server,
            Some(&token),
            "application/x-protobuf",
            heartbeat(sequence_num).encode_to_vec(),
        )
        .await;
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let refused = refused.expect("30 messages at once exceed the bucket");
    let retry_after = refused.headers().get("retry-after").and_then(|value| value.to_str().ok());
    assert!(
        retry_after.and_then(|value| value.parse::<u64>().ok()).is_some_and(|seconds| seconds >= 1),
        "{retry_after:?}"
    );
}

/// A body over `max_request_body`, sent as is or as a gzip bomb, is refused (413) without being
/// decoded; the agent must not retry it.
#[tokio::test]
async fn an_oversized_message_is_refused_before_it_is_decoded() {
    use std::io::Write as _;
    let server = Server::start_with_config(&format!("max_request_body = \"64KiB\"\n{FAST_CONFIG}"));
    let api = Api::admin(&server).await;
    let collector_id = create_opamp_collector(&api, "otel-oversized").await;
    let token = api.mint_token(&collector_id).await;
    let mut huge = first_message();
    huge.effective_config = Some(opamp::EffectiveConfig {
        config_map: Some(opamp::AgentConfigMap {
            config_map: [(
                String::new(),
                opamp::AgentConfigFile { body: vec![b'#'; 100 << 10], content_type: String::new() },
            )]
            .into(),
        }),
    });
    let response = post_raw(&server, Some(&token), "application/x-protobuf", huge.encode_to_vec()).await;
    assert_eq!(response.status(), 413, "as sent");

    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&huge.encode_to_vec()).expect("gzip");
    let compressed = gzip.finish().expect("gzip");
    assert!(compressed.len() < 64 << 10, "small on the wire");
    let response = reqwest::Client::new()
        .post(server.url("/v1/opamp"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .bearer_auth(&token)
        .body(compressed)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 413, "inflated past the limit");
}

/// An agent's available components decide what is offered: it is asked for the list when it reports
/// only the hash; a config needing an exporter its build lacks is not offered, the collector says
/// which (once); the report's `otlp_http` is the `otlphttp` linkmesh renders; a config without the
/// missing component is offered again.
#[tokio::test]
async fn a_config_needing_a_component_the_build_lacks_is_not_offered_and_says_which() {
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let collector_id = create_opamp_collector(&api, "otel-build").await;
    let token = api.mint_token(&collector_id).await;
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let vendor = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "vendor", "type": "otlp_http", "settings": {"endpoint": "https://otlp.example"}}),
        )
        .await;
    let kafka = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "bus", "type": "kafka", "settings": {"brokers": ["k:9092"], "topic": "t"}}),
        )
        .await;
    let route = api
        .create(
            &format!("{base}/routes"),
            json!({"name": "all", "destination_ids": [vendor["id"], kafka["id"]]}),
        )
        .await;

    // The first message carries the report's hash only: the server asks for the list.
    let mut first = first_message();
    first.available_components =
        Some(opamp::AvailableComponents { components: Default::default(), hash: vec![7; 32] });
    let reply = send(&server, &token, &first).await;
    assert_eq!(reply.flags & 2, 2, "ReportAvailableComponents asked: {reply:?}");

    let kind = |types: &[&str]| opamp::ComponentDetails {
        metadata: vec![],
        sub_component_map: types
            .iter()
            .map(|name| ((*name).to_owned(), opamp::ComponentDetails::default()))
            .collect(),
    };
    let mut listed = heartbeat(1);
    listed.available_components = Some(opamp::AvailableComponents {
        components: [
            ("receivers".to_owned(), kind(&["otlp", "hostmetrics"])),
            ("processors".to_owned(), kind(&["batch", "resource", "filter", "transform"])),
            ("exporters".to_owned(), kind(&["otlp_grpc", "otlp_http", "debug"])),
            ("connectors".to_owned(), kind(&["forward", "routing"])),
        ]
        .into(),
        hash: vec![7; 32],
    });
    listed.health = Some(opamp::ComponentHealth {
        healthy: false,
        status: "StatusRecoverableError".to_owned(),
        last_error: "Agent process PID=42 exited unexpectedly".to_owned(),
        ..Default::default()
    });
    let reply = send(&server, &token, &listed).await;
    assert!(offered_config(&reply).is_none(), "a config needing kafka is not offered: {reply:?}");
    let agent = api.collector(&collector_id).await["opamp"].clone();
    assert_eq!(agent["health"]["healthy"], false, "{agent}");
    assert_eq!(agent["health"]["last_error"], "Agent process PID=42 exited unexpectedly");
    assert!(agent["capabilities"]
        .as_array()
        .expect("names")
        .contains(&json!("reports available components")));
    assert!(agent["available_components"]["exporters"]
        .as_array()
        .expect("types")
        .contains(&json!("otlp_http")));
    assert_eq!(reply.flags & 2, 0, "the list is known now");
    api.wait_for_event(&collector_id, "config_failed", 1).await;
    let refusals = events_of_type(&api, &collector_id, "config_failed").await;
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let message = refusals[0]["message"].as_str().expect("message");
    assert!(message.contains("exporters kafka") && !message.contains("otlphttp"), "{message}");
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["config"]["remote_status"], "failed", "{collector}");
    send(&server, &token, &heartbeat(2)).await;

    // Without the Kafka destination the config runs on this build: offered.
    let path = format!("{base}/routes/{}", route["id"].as_str().expect("id"));
    let (status, body) = api
        .request(Method::PUT, &path, Some(json!({"name": "all", "destination_ids": [vendor["id"]]})))
        .await;
    assert_eq!(status, 200, "{body}");
    let reply = send(&server, &token, &heartbeat(3)).await;
    let (body, _) = offered_config(&reply).expect("offered once it runs on the build");
    assert!(body.contains("otlphttp/") && !body.contains("kafka/"), "{body}");
    // Events are written in order: once the delivery is, a second refusal would be too.
    api.wait_for_event(&collector_id, "config_delivered", 1).await;
    assert_eq!(events_of_type(&api, &collector_id, "config_failed").await.len(), 1, "said once per version");
}

/// `POST /collectors/{id}/restart`: the agent's next reply carries `command{type: Restart}` (once);
/// the outcome is read from the first health report that is not a transition; an Alloy collector
/// is refused.
#[tokio::test]
async fn a_restart_reaches_the_agent_once_and_its_outcome_comes_from_its_health() {
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let collector_id = create_opamp_collector(&api, "otel-restart").await;
    let token = api.mint_token(&collector_id).await;
    let reply = send(&server, &token, &first_message()).await;
    assert!(reply.command.is_none());

    let path = format!("/api/v1/collectors/{collector_id}/restart");
    let (status, body) = api.request(Method::POST, &path, None).await;
    assert_eq!(status, 202, "{body}");
    api.wait_for_event(&collector_id, "restart_requested", 1).await;
    let reply = send(&server, &token, &heartbeat(1)).await;
    let command = reply.command.expect("the restart command");
    assert_eq!(command.r#type, opamp::CommandType::Restart as i32);
    assert!(send(&server, &token, &heartbeat(2)).await.command.is_none(), "sent once");

    let with_health = |sequence_num, healthy, status: &str| {
        let mut message = heartbeat(sequence_num);
        message.health =
            Some(opamp::ComponentHealth { healthy, status: status.to_owned(), ..Default::default() });
        message
    };
    send(&server, &token, &with_health(3, false, "Stopping")).await;
    send(&server, &token, &with_health(4, true, "StatusOK")).await;
    api.wait_for_event(&collector_id, "restart_outcome", 1).await;
    let outcome = &events_of_type(&api, &collector_id, "restart_outcome").await[0];
    assert_eq!(outcome["data"]["healthy"], true, "{outcome}");
    assert!(outcome["message"].as_str().expect("message").contains("healthy (StatusOK)"), "{outcome}");

    let alloy = api.create_collector("alloy-restart").await;
    let (status, body) =
        api.request(Method::POST, &format!("/api/v1/collectors/{alloy}/restart"), None).await;
    assert_eq!(status, 409, "{body}");
}

/// Minting (or rotating) an `opamp` collector's own token answers, with the token, the ready-to-paste
/// `supervisor.yaml` that carries it (this server's OpAMP endpoint over WebSocket); an Alloy
/// collector's answer has its `config.alloy` instead. The rotated token is the one in the new file.
#[tokio::test]
async fn minting_an_opamp_collectors_token_answers_its_supervisor_config() {
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let collector_id = create_opamp_collector(&api, "otel-by-hand").await;
    let endpoint = format!("endpoint: \"{}/v1/opamp\"", server.base_url.replacen("http://", "ws://", 1));
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let minted = api.mint(&collector_id).await;
        let token = minted["token"].as_str().expect("token").to_owned();
        assert!(minted["config_alloy"].is_null(), "{minted}");
        let config = minted["supervisor_config"].as_str().expect("supervisor_config");
        assert!(config.contains(&format!("Authorization: [\"Bearer {token}\"]")), "{config}");
        assert!(config.contains(&endpoint), "{config}");
        assert!(config.contains("accepts_remote_config: true"), "{config}");
        assert!(config.contains("that collector's agent only"), "not an enrollment token's: {config}");
        tokens.push(token);
    }
    // The agent of the latest file connects; the rotated-out token does not.
    for (token, expected) in [(&tokens[1], 200), (&tokens[0], 401)] {
        let body = first_message().encode_to_vec();
        let response = post_raw(&server, Some(token), "application/x-protobuf", body).await;
        assert_eq!(response.status(), expected);
    }

    let alloy = api.create_collector("alloy-edge").await;
    let minted = api.mint(&alloy).await;
    assert!(minted["supervisor_config"].is_null(), "{minted}");
    assert!(minted["config_alloy"].as_str().is_some(), "{minted}");
}
