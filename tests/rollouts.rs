//! Rollouts over real HTTP with Alloy-like collectors (Connect GetConfig, reporting APPLIED or
//! FAILED the way Alloy ≥ 1.12 does on the poll after a delivery): a staged pipeline change reaches
//! its first batch, then the rest once they applied; a change the collectors refuse pauses itself
//! on the first FAILED collector with the others still on the previous config; rollback returns
//! everyone to the previous config; who started a rollout is recorded.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{get_config, pb, Api, Server};

/// A fake Alloy ≥ 1.12, following its remotecfg client (`shared/reference/remotecfg-and-connect.md`
/// §3.4): it polls with the last hash it received, skips a content equal to the last received one,
/// turns APPLIED again on the content it already runs, loads any other unless it carries `refuse`
/// (then its status turns FAILED with an error), sends its status only when it changed since it last sent
/// one, and its effective config (the exact loaded bytes) when that changed.
struct FakeAlloy {
    token: String,
    host: String,
    hash: String,
    /// The loaded content (what `running` looks at).
    content: String,
    /// The content last received, loaded or not.
    received: String,
    status: (pb::RemoteConfigStatuses, String),
    sent_status: Option<(pb::RemoteConfigStatuses, String)>,
    effective_unsent: bool,
}

impl FakeAlloy {
    async fn poll(&mut self, server: &Server, refuse: &str) {
        let status = (self.sent_status.as_ref() != Some(&self.status)).then(|| pb::RemoteConfigStatus {
            status: self.status.0 as i32,
            error_message: self.status.1.clone(),
        });
        let effective_config = self.effective_unsent.then(|| pb::EffectiveConfig {
            config_map: Some(pb::AgentConfigMap {
                config_map: [(
                    String::new(),
                    pb::AgentConfigFile {
                        body: self.content.as_bytes().to_vec(),
                        content_type: "text/plain".into(),
                    },
                )]
                .into(),
            }),
        });
        let request = pb::GetConfigRequest {
            id: self.host.clone(),
            hash: self.hash.clone(),
            remote_config_status: status,
            effective_config,
            ..Default::default()
        };
        let reply = get_config(server, &self.token, &request).await;
        self.sent_status = Some(self.status.clone());
        self.effective_unsent = false;
        if reply.not_modified {
            return;
        }
        if !reply.hash.is_empty() {
            self.hash = reply.hash;
        }
        if reply.content == self.received {
            return;
        }
        self.received = reply.content.clone();
        if reply.content == self.content {
            self.status = (pb::RemoteConfigStatuses::Applied, String::new());
        } else if reply.content.contains(refuse) {
            self.status = (pb::RemoteConfigStatuses::Failed, format!("refusing {refuse}"));
        } else {
            self.content = reply.content;
            self.status = (pb::RemoteConfigStatuses::Applied, String::new());
            self.effective_unsent = true;
        }
    }
}

fn pipeline(level: &str) -> Value {
    json!({"name": "shared", "signals": ["logs"],
           "steps": [{"type": "attributes", "settings": {"insert": {"level": level}}}]})
}

async fn fleet(api: &Api, count: usize) -> (String, Vec<FakeAlloy>) {
    let (status, created) = api.request(Method::POST, "/api/v1/pipelines", Some(pipeline("v1"))).await;
    assert_eq!(status, 201, "{created}");
    let pipeline_id = created["id"].as_str().unwrap_or_default().to_owned();
    let mut collectors = Vec::new();
    for index in 0..count {
        let id = api.create_collector(&format!("sim-{index}")).await;
        let base = format!("/api/v1/collectors/{id}");
        api.create(&format!("{base}/sources"), json!({"name": "in", "type": "otlp"})).await;
        let destination =
            api.create(&format!("{base}/destinations"), json!({"name": "out", "type": "debug"})).await;
        api.create(
            &format!("{base}/routes"),
            json!({"name": "all", "pipeline_id": pipeline_id, "destination_ids": [destination["id"]]}),
        )
        .await;
        let token = api.mint_token(&id).await;
        collectors.push(FakeAlloy {
            token,
            host: format!("sim-{index}"),
            hash: String::new(),
            content: String::new(),
            received: String::new(),
            status: (pb::RemoteConfigStatuses::Unset, String::new()),
            sent_status: None,
            effective_unsent: false,
        });
    }
    (pipeline_id, collectors)
}

async fn poll_all(server: &Server, collectors: &mut [FakeAlloy], refuse: &str) {
    for collector in collectors.iter_mut() {
        collector.poll(server, refuse).await;
    }
}

async fn latest_rollout(api: &Api) -> Value {
    let list = api.get("/api/v1/rollouts?limit=1").await;
    let id = list["rollouts"][0]["id"].as_str().unwrap_or_default().to_owned();
    api.get(&format!("/api/v1/rollouts/{id}")).await
}

/// Polls every collector until the latest rollout reaches `state`; the rollout then.
async fn poll_until(
    server: &Server,
    api: &Api,
    collectors: &mut [FakeAlloy],
    refuse: &str,
    state: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + support::WAIT_DEADLINE * 2;
    loop {
        poll_all(server, collectors, refuse).await;
        let rollout = latest_rollout(api).await;
        if rollout["state"] == state {
            return rollout;
        }
        assert!(tokio::time::Instant::now() < deadline, "rollout never became {state}: {rollout}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn running(collectors: &[FakeAlloy], level: &str) -> usize {
    collectors.iter().filter(|collector| collector.content.contains(&format!("\"{level}\""))).count()
}

#[tokio::test]
async fn a_staged_change_goes_batch_by_batch_pauses_on_failure_and_rolls_back() {
    // The fake collectors poll much faster than Alloy's 10 s minimum.
    let server = Server::start_with_config(
        &support::FAST_CONFIG
            .replace("[collectors]\n", "[collectors]\npoll_burst = 1000\npolls_per_second = 100.0\n"),
    );
    let api = Api::admin(&server).await;
    let (pipeline_id, mut collectors) = fleet(&api, 10).await;
    poll_until(&server, &api, &mut collectors, "never", "done").await;
    assert_eq!(running(&collectors, "v1"), 10);
    assert_eq!(api.get(&format!("/api/v1/pipelines/{pipeline_id}")).await["used_by"], 10);

    // The impact, before saving: ten collectors' configs change.
    let path = format!("/api/v1/pipelines/{pipeline_id}");
    let (status, preview) =
        api.request(Method::PUT, &format!("{path}?validate_only=true"), Some(pipeline("v2"))).await;
    assert_eq!((status, preview["changes"].clone()), (200, json!(10)), "{preview}");

    // Staged: 20% first. Before anyone polls, two collectors have the new version, eight are held.
    let (status, body) = api
        .request(Method::PUT, &format!("{path}?rollout=staged&first_batch=20%25"), Some(pipeline("v2")))
        .await;
    assert_eq!(status, 200, "{body}");
    let rollout = latest_rollout(&api).await;
    assert_eq!(rollout["strategy"], "staged");
    assert!(rollout["started_by"].as_str().is_some_and(|who| who.starts_with("test-admin")), "{rollout}");
    assert_eq!(
        rollout["batches"]
            .as_array()
            .map(|batches| batches.iter().map(|b| b["size"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(2), json!(8)])
    );
    poll_all(&server, &mut collectors, "never").await;
    assert_eq!(running(&collectors, "v2"), 2, "only the first batch got it");
    let done = poll_until(&server, &api, &mut collectors, "never", "done").await;
    assert_eq!(done["counts"]["applied"], 10, "{done}");
    assert_eq!(running(&collectors, "v2"), 10);

    // A change the collectors refuse pauses on the first FAILED one; the rest keep v2.
    let (status, body) = api
        .request(Method::PUT, &format!("{path}?rollout=staged&first_batch=1"), Some(pipeline("bad")))
        .await;
    assert_eq!(status, 200, "{body}");
    let paused = poll_until(&server, &api, &mut collectors, "bad", "paused").await;
    assert!(paused["paused_reason"].as_str().unwrap_or_default().contains("refusing bad"), "{paused}");
    assert_eq!(paused["counts"]["failed"], 1, "{paused}");
    assert_eq!(paused["counts"]["pending"], 9, "{paused}");
    assert_eq!(paused["collectors"][0]["progress"], "failed", "failed collectors first: {paused}");
    poll_all(&server, &mut collectors, "bad").await;
    assert_eq!(running(&collectors, "v2"), 10, "nobody runs the refused change");
    let (status, refused) = api.request(Method::PUT, &path, Some(pipeline("v3"))).await;
    assert_eq!(status, 409, "one rollout per pipeline at a time: {refused}");

    // Rollback: the previous config for everyone, tracked as a rollout of its own.
    let id = paused["id"].as_str().unwrap_or_default().to_owned();
    let (status, rolled_back) =
        api.request(Method::POST, &format!("/api/v1/rollouts/{id}/rollback"), None).await;
    assert_eq!(status, 200, "{rolled_back}");
    assert_eq!(rolled_back["state"], "aborted");
    let undo = rolled_back["rolled_back_by"].as_str().unwrap_or_default().to_owned();
    let undone = poll_until(&server, &api, &mut collectors, "bad", "done").await;
    assert_eq!(undone["id"], undo.as_str());
    assert_eq!(undone["rollback_of"], id.as_str());
    assert_eq!(api.get(&path).await["steps"][0]["settings"]["insert"]["level"], "v2");
    poll_all(&server, &mut collectors, "bad").await;
    assert_eq!(running(&collectors, "v2"), 10);
    let (status, twice) = api.request(Method::POST, &format!("/api/v1/rollouts/{id}/rollback"), None).await;
    assert_eq!(status, 409, "{twice}");
}

#[tokio::test]
async fn staging_is_refused_where_it_cannot_apply_and_bad_options_name_their_field() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let id = api.create_collector("edge-1").await;
    let (status, body) = api
        .request(
            Method::POST,
            &format!("/api/v1/collectors/{id}/sources?rollout=staged"),
            Some(json!({"name": "in", "type": "otlp"})),
        )
        .await;
    assert_eq!(status, 400, "a collector's own item is not staged: {body}");
    for (query, field) in [
        ("rollout=slow", "rollout"),
        ("rollout=staged&first_batch=0%25", "first_batch"),
        ("rollout=staged&soak=soon", "soak"),
        ("first_batch=5", "rollout"),
    ] {
        let (status, body) =
            api.request(Method::POST, &format!("/api/v1/pipelines?{query}"), Some(pipeline("v1"))).await;
        assert_eq!(
            (status, body["error"]["details"]["field"].clone()),
            (400, json!(field)),
            "{query}: {body}"
        );
    }
    let viewer = Api::with_role(&server, "viewer").await;
    let (status, _) = viewer.request(Method::POST, "/api/v1/rollouts/ro_000001/abort", None).await;
    assert_eq!(status, 403);
    let (status, _) = api.request(Method::POST, "/api/v1/rollouts/ro_999999/abort", None).await;
    assert_eq!(status, 404);
    let (status, _) = api.request(Method::GET, "/api/v1/rollouts/ro_999999", None).await;
    assert_eq!(status, 404);
    for (query, field) in [("state=bogus", "state"), ("limit=0", "limit"), ("limit=501", "limit")] {
        let (status, body) = api.request(Method::GET, &format!("/api/v1/rollouts?{query}"), None).await;
        assert_eq!(
            (status, body["error"]["details"]["field"].clone()),
            (400, json!(field)),
            "{query}: {body}"
        );
    }
    let (status, _) = api.request(Method::GET, "/api/v1/rollouts?limit=x", None).await;
    assert_eq!(status, 400, "a limit that is not a number");
}
