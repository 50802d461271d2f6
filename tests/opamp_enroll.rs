//! OpAMP enrollment (issue 18 item 2, docs/adr/0010): agents that present an enrollment token
//! (`lmet_…`) get a collector of their own, found again by their instance uid; agents that accept
//! OpAMP connection settings are handed their collector's derived credential (`lmoc_…`) and
//! reconnect with it; revoking the token disconnects and refuses the agents still using it. Over
//! WebSocket with `tools/opampwsclient` (the opamp-go module), over plain HTTP with messages built
//! from the OpAMP proto.

mod support;

use std::time::Duration;

use linkmesh::proto::opamp::v1 as opamp;
use reqwest::Method;
use serde_json::{json, Value};
use support::opamp_agent::Agent;
use support::opamp_wire::{first_message, heartbeat, offered_config, post_raw, send, with_status, AGENT_UID};
use support::{wait_until, Api, Server, QUIET_OPAMP_CONFIG};

/// The feature level enrollment needs (`model/feature_level.rs`).
const ENROLLMENT_LEVEL: u64 = 4;

/// A started server at the enrollment level, with fleet-wide items for collectors labelled
/// `fleet=otel` (what an enrolled collector runs).
async fn enrollment_ready(server: &Server) -> Api {
    let api = Api::admin(server).await;
    support::wait_for_level(&api, ENROLLMENT_LEVEL).await;
    let selector = "fleet=otel";
    api.create(
        "/api/v1/sources",
        json!({"selector": selector, "name": "apps", "type": "otlp", "settings": {}}),
    )
    .await;
    let destination = api
        .create(
            "/api/v1/destinations",
            json!({"selector": selector, "name": "vendor", "type": "otlp_http",
                   "settings": {"endpoint": "https://otlp.example"}}),
        )
        .await;
    api.create(
        "/api/v1/routes",
        json!({"selector": selector, "name": "all", "destination_ids": [destination["id"]]}),
    )
    .await;
    api
}

async fn enrollment_token(api: &Api, body: Value) -> (String, String) {
    let created = api.create("/api/v1/enrollment-tokens", body).await;
    let token = created["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("lmet_"), "{created}");
    (token, created["id"].as_str().expect("id").to_owned())
}

async fn token_view(api: &Api, id: &str) -> Value {
    let list = api.get("/api/v1/enrollment-tokens").await;
    let tokens = list["enrollment_tokens"].as_array().expect("a list");
    assert!(tokens.iter().all(|token| token.get("token").is_none()), "never the token itself: {list}");
    tokens.iter().find(|token| token["id"] == id).cloned().expect("listed")
}

/// The one collector whose name starts with `name`.
async fn collector_named(api: &Api, name: &str) -> Value {
    let list = api.get("/api/v1/collectors?mode=opamp").await;
    let found: Vec<&Value> = list["collectors"]
        .as_array()
        .expect("collectors")
        .iter()
        .filter(|collector| collector["name"].as_str().is_some_and(|found| found.starts_with(name)))
        .collect();
    assert_eq!(found.len(), 1, "{list}");
    found[0].clone()
}

/// An opamp-go agent that accepts connection settings enrolls with the token, is handed its
/// collector's own credential and reconnects with it; from then on revoking the enrollment token does
/// not concern it, and rotating its collector's token ends the credential.
#[tokio::test]
async fn an_agent_accepting_connection_settings_enrolls_and_moves_to_its_own_credential() {
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let api = enrollment_ready(&server).await;
    let (token, token_id) = enrollment_token(&api, json!({"labels": {"fleet": "otel"}, "uses": 3})).await;

    let agent = Agent::start(
        &server.base_url,
        &token,
        &[
            "-configs",
            "100",
            "-heartbeat",
            "0s",
            "-accept-settings",
            "-name",
            "otelcol-a",
            "-connect-failures",
            "2",
        ],
    );
    let first = agent.next("connected");
    assert_eq!(first["authorization_prefix"], "Bearer lmet_");
    let settings = agent.next("connection_settings");
    assert_eq!(settings["authorization_prefix"], "Bearer lmoc_", "{settings}");
    let endpoint = settings["endpoint"].as_str().expect("endpoint");
    assert_eq!(endpoint, format!("{}/v1/opamp", server.base_url.replacen("http://", "ws://", 1)));
    assert_eq!(settings["heartbeat_seconds"], 3600, "every opamp settings offer carries the interval");
    let again = agent.next("connected");
    assert_eq!(again["authorization_prefix"], "Bearer lmoc_", "reconnected with its own credential");

    let collector = collector_named(&api, "otelcol-a@test-host").await;
    let collector_id = collector["id"].as_str().expect("id").to_owned();
    assert_eq!(collector["labels"], json!({"fleet": "otel"}), "the token's labels: {collector}");
    api.wait_for_event(&collector_id, "enrolled", 1).await;
    api.wait_for_event(&collector_id, "config_applied", 1).await;
    let view = token_view(&api, &token_id).await;
    assert_eq!(
        (view["used"].clone(), view["collectors"].clone(), view["state"].clone()),
        (json!(1), json!(1), json!("active"))
    );

    // The agent is on its own credential: revoking the enrollment token leaves it connected, and a
    // change is still pushed to it.
    let (status, _) =
        api.request(Method::DELETE, &format!("/api/v1/enrollment-tokens/{token_id}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(token_view(&api, &token_id).await["state"], "revoked");
    api.create(
        &format!("/api/v1/collectors/{collector_id}/sources"),
        json!({"name": "more", "type": "otlp"}),
    )
    .await;
    // (The agent may first be offered the config again on its new connection: opamp-go's new client
    // does not know the hash its predecessor acknowledged.)
    loop {
        let pushed = agent.next_without("config", "connected");
        if pushed["body"].as_str().expect("body").contains("more") {
            break;
        }
    }

    // Rotating the collector's token ends the derived credential: closed, then refused.
    api.mint_token(&collector_id).await;
    agent.next_error_log("status=401");
    agent.next("stopped");
}

/// An agent that does not accept connection settings keeps the enrollment token: its collector is
/// found again by its instance uid after a reconnection, and revoking the token closes its connection
/// at once and refuses the next one.
#[tokio::test]
async fn revoking_an_enrollment_token_disconnects_and_refuses_the_agents_still_using_it() {
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let api = enrollment_ready(&server).await;
    let (token, token_id) = enrollment_token(&api, json!({"labels": {"fleet": "otel"}})).await;

    let agent = Agent::start(
        &server.base_url,
        &token,
        &["-configs", "100", "-heartbeat", "0s", "-name", "otelcol-b", "-connect-failures", "2"],
    );
    agent.next("connected");
    let config = agent.next("config");
    assert!(config["body"].as_str().expect("body").contains("otlphttp"), "{config}");
    let collector = collector_named(&api, "otelcol-b@test-host").await;
    let collector_id = collector["id"].as_str().expect("id").to_owned();
    api.wait_for_event(&collector_id, "config_applied", 1).await;
    assert_eq!(token_view(&api, &token_id).await["collectors"], 1, "the UI warns before revoking it");

    let (status, _) =
        api.request(Method::DELETE, &format!("/api/v1/enrollment-tokens/{token_id}"), None).await;
    assert_eq!(status, 204);
    agent.next_error_log("status=401");
    agent.next("stopped");

    // An unknown token is refused before the upgrade.
    let stranger = Agent::start(&server.base_url, "lmet_unknown", &["-connect-failures", "1"]);
    stranger.next_error_log("status=401");
}

/// Over plain HTTP: the first message enrolls (a new collector named from the agent's description,
/// with the token's labels, offered its config), the next ones are the same collector without taking
/// another use; a used-up token enrolls no other agent; an expired one still authenticates the agents
/// it enrolled.
#[tokio::test]
async fn plain_http_agents_enroll_once_per_instance_uid_and_a_used_up_token_enrolls_no_more() {
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let api = enrollment_ready(&server).await;
    let (token, token_id) =
        enrollment_token(&api, json!({"labels": {"fleet": "otel"}, "uses": 1, "ttl_seconds": 4})).await;

    let reply = send(&server, &token, &first_message()).await;
    assert_eq!(reply.instance_uid, AGENT_UID.to_vec());
    assert!(reply.error_response.is_none(), "{reply:?}");
    let (body, _hash) = offered_config(&reply).expect("the enrolled collector's config is offered at once");
    assert!(body.contains("otlphttp"), "{body}");
    let settings = reply.connection_settings.and_then(|offers| offers.opamp).expect("the heartbeat interval");
    assert_eq!(settings.heartbeat_interval_seconds, 3600);
    assert!(settings.headers.is_none(), "the supervisor does not accept settings: no credential offered");
    let collector = collector_named(&api, "otelcol-contrib@edge-7").await;
    assert_eq!(collector["labels"], json!({"fleet": "otel"}));

    let reply = send(&server, &token, &heartbeat(1)).await;
    assert!(reply.error_response.is_none(), "{reply:?}");
    assert_eq!(token_view(&api, &token_id).await["used"], 1, "the same agent takes no second use");

    let mut other = first_message();
    other.instance_uid = [7; 16].to_vec();
    let response =
        post_raw(&server, Some(&token), "application/x-protobuf", prost::Message::encode_to_vec(&other))
            .await;
    assert_eq!(response.status(), 401);
    let refusal: Value = response.json().await.expect("json");
    assert!(
        refusal["error"]["message"].as_str().is_some_and(|message| message.contains("used up")),
        "{refusal}"
    );

    // Past its TTL the token enrolls nobody, and still lets its agent in.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(token_view(&api, &token_id).await["state"], "expired");
    let reply = send(&server, &token, &heartbeat(2)).await;
    assert!(reply.error_response.is_none(), "{reply:?}");
    let unknown = opamp::AgentToServer { instance_uid: [9; 16].to_vec(), ..first_message() };
    let response =
        post_raw(&server, Some(&token), "application/x-protobuf", prost::Message::encode_to_vec(&unknown))
            .await;
    assert_eq!(response.status(), 401);
}

/// Viewers may list enrollment tokens but not create them; bad bounds and labels are refused by field.
#[tokio::test]
async fn creating_enrollment_tokens_needs_a_role_that_manages_collectors() {
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let admin = enrollment_ready(&server).await;
    let viewer = Api::with_role(&server, "viewer").await;
    let (status, _) = viewer.request(Method::POST, "/api/v1/enrollment-tokens", Some(json!({}))).await;
    assert_eq!(status, 403);
    let (status, body) =
        admin.request(Method::POST, "/api/v1/enrollment-tokens", Some(json!({"uses": 0}))).await;
    assert_eq!((status, body["error"]["details"]["field"].clone()), (400, json!("uses")), "{body}");
    let (status, body) = admin
        .request(Method::POST, "/api/v1/enrollment-tokens", Some(json!({"labels": {"bad key!": "x"}})))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = admin.request(Method::DELETE, "/api/v1/enrollment-tokens/et_missing", None).await;
    assert_eq!(status, 404);
    let listed = viewer.get("/api/v1/enrollment-tokens").await;
    assert_eq!(listed["enrollment_tokens"], json!([]));
}

/// An agent that reports own metrics (the supervisor does by default) is offered linkmesh's
/// `/v1/metrics` with its collector's derived credential, once per stream, and never while a config
/// is on its way (the supervisor restarts its collector for each: two in a row make v0.149 report a
/// good config FAILED); the credential is taken there, and echoed back in the effective config it is
/// stored redacted.
#[tokio::test]
async fn the_own_metrics_destination_is_offered_with_the_collectors_credential() {
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let api = enrollment_ready(&server).await;
    let (token, _) = enrollment_token(&api, json!({"labels": {"fleet": "otel"}})).await;

    let first = send(&server, &token, &first_message()).await;
    let (_, hash) = offered_config(&first).expect("the fleet's config offered");
    let own_metrics_of = |reply: &opamp::ServerToAgent| {
        reply.connection_settings.as_ref().and_then(|offers| offers.own_metrics.clone())
    };
    assert!(own_metrics_of(&first).is_none(), "not with a config: {first:?}");
    let applying = with_status(heartbeat(1), &hash, opamp::RemoteConfigStatuses::Applying, "");
    let reply = send(&server, &token, &applying).await;
    assert!(own_metrics_of(&reply).is_none(), "not while the config is applied: {reply:?}");
    let applied = with_status(heartbeat(2), &hash, opamp::RemoteConfigStatuses::Applied, "");
    let reply = send(&server, &token, &applied).await;
    let own_metrics = own_metrics_of(&reply).expect("own_metrics offered");
    assert_eq!(own_metrics.destination_endpoint, server.url("/v1/metrics"));
    let header = &own_metrics.headers.expect("headers").headers[0];
    assert_eq!(header.key, "Authorization");
    let credential = header.value.strip_prefix("Bearer ").expect("a bearer").to_owned();
    assert!(
        credential.starts_with("lmoc_"),
        "the collector's derived credential, never the enrollment token"
    );
    let again = send(&server, &token, &heartbeat(3)).await;
    assert!(again.connection_settings.is_none(), "once per stream: {again:?}");

    let collector = collector_named(&api, "otelcol-contrib@edge-7").await;
    let collector_id = collector["id"].as_str().expect("id").to_owned();
    api.wait_for_event(&collector_id, "own_metrics_offered", 1).await;

    // The collector pushes with exactly the offered header (OTLP/JSON here).
    let push = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "name": "otelcol_receiver_accepted_spans",
        "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [{
            "attributes": [{"key": "receiver", "value": {"stringValue": "otlp/src_1"}}],
            "startTimeUnixNano": "1", "timeUnixNano": "2000000000", "asDouble": 10.0}]}}]}]}]});
    let response = reqwest::Client::new()
        .post(&own_metrics.destination_endpoint)
        .header("authorization", &header.value)
        .json(&push)
        .send()
        .await
        .expect("push");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    api.wait_for_event(&collector_id, "own_metrics_first_seen", 1).await;

    // The supervisor reports its merged config, own-metrics header included, in clear.
    let mut report = heartbeat(4);
    let echoed = format!("service:\n  telemetry:\n    headers:\n      Authorization: {}\n", header.value);
    report.effective_config = Some(opamp::EffectiveConfig {
        config_map: Some(opamp::AgentConfigMap {
            config_map: [(
                String::new(),
                opamp::AgentConfigFile { body: echoed.into_bytes(), content_type: "text/yaml".into() },
            )]
            .into(),
        }),
    });
    send(&server, &token, &report).await;
    let stored = wait_until(Duration::from_secs(30), || async {
        let collector = api.collector(&collector_id).await;
        collector["config"]["effective_config"].as_str().is_some_and(|text| text.contains("lmoc_<redacted>"))
    })
    .await;
    assert!(stored, "{}", api.collector(&collector_id).await);
    let shown = api.collector(&collector_id).await.to_string();
    assert!(!shown.contains(&credential), "the credential never reaches the API");
}
