//! Fleet-wide sources, destinations and routes attached by label selector: a collector's config is
//! the merge of its own items and the fleet-wide ones its operator-set labels select, with the reason
//! for each in `GET …/config`; a fleet-wide route sends to the fleet-wide destinations that apply to
//! each collector; a label change re-renders; what a collector reports about itself never selects
//! anything. Real binary, real HTTP.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{connect_post, pb, Api, Server};

async fn labelled(api: &Api, name: &str, labels: Value) -> String {
    let id = api.create_collector(name).await;
    let (status, body) = api
        .request(Method::PATCH, &format!("/api/v1/collectors/{id}"), Some(json!({ "labels": labels })))
        .await;
    assert_eq!(status, 200, "{body}");
    id
}

async fn config(api: &Api, collector_id: &str) -> Value {
    api.get(&format!("/api/v1/collectors/{collector_id}/config")).await
}

fn content(config: &Value) -> &str {
    config["content"].as_str().unwrap_or_default()
}

fn item<'a>(config: &'a Value, name: &str) -> &'a Value {
    config["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["name"] == name))
        .unwrap_or_else(|| panic!("no item {name} in {}", config["items"]))
}

async fn fleet_create(api: &Api, kind: &str, body: Value) -> Value {
    let (status, created) = api.request(Method::POST, &format!("/api/v1/{kind}"), Some(body)).await;
    assert_eq!(status, 201, "{kind}: {created}");
    created
}

#[tokio::test]
async fn fleet_wide_items_reach_exactly_the_collectors_their_selectors_match() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let eu = labelled(&api, "edge-eu", json!({"env": "prod", "region": "eu"})).await;
    let us = labelled(&api, "edge-us", json!({"env": "prod", "region": "us"})).await;
    let dev = labelled(&api, "edge-dev", json!({"env": "dev"})).await;

    let source = fleet_create(
        &api,
        "sources",
        json!({"selector": "env=prod", "name": "otlp-in", "type": "otlp", "settings": {}}),
    )
    .await;
    assert_eq!(source["selector"], "env=prod");
    assert_eq!(source["collectors"], 2, "{source}");
    let loki_eu = fleet_create(
        &api,
        "destinations",
        json!({"selector": "region=eu", "name": "loki-eu", "type": "loki",
               "settings": {"url": "https://loki-eu.example.com/loki/api/v1/push"}}),
    )
    .await;
    let loki_us = fleet_create(
        &api,
        "destinations",
        json!({"selector": "region in (us)", "name": "loki-us", "type": "loki",
               "settings": {"url": "https://loki-us.example.com/loki/api/v1/push"}}),
    )
    .await;
    let route = fleet_create(
        &api,
        "routes",
        json!({"selector": "", "name": "to-regional-loki", "destination_ids": [loki_eu["id"], loki_us["id"]]}),
    )
    .await;
    assert_eq!(route["collectors"], 3, "an empty selector attaches to every collector");

    let eu_config = config(&api, &eu).await;
    assert!(content(&eu_config).contains("loki-eu.example.com"), "{}", content(&eu_config));
    assert!(!content(&eu_config).contains("loki-us.example.com"), "{}", content(&eu_config));
    assert_eq!(item(&eu_config, "otlp-in")["reason"], "fleet-wide, applies because of selector env=prod");
    assert_eq!(item(&eu_config, "loki-eu")["scope"], "fleet");
    assert_eq!(item(&eu_config, "to-regional-loki")["rendered"], true);
    let us_config = config(&api, &us).await;
    assert!(content(&us_config).contains("loki-us.example.com") && !content(&us_config).contains("loki-eu"));

    let dev_config = config(&api, &dev).await;
    assert!(!content(&dev_config).contains("loki"), "{}", content(&dev_config));
    let left_out = item(&dev_config, "to-regional-loki");
    assert_eq!(left_out["rendered"], false, "{left_out}");
    assert!(left_out["reason"].as_str().unwrap_or_default().contains("none of its destinations applies"));

    // What a collector reports about itself selects nothing: it cannot pull itself into region=eu.
    let token = api.mint_token(&dev).await;
    let register = pb::RegisterCollectorRequest {
        id: "dev-host".into(),
        name: "dev-host".into(),
        local_attributes: [("region".to_owned(), "eu".to_owned()), ("env".to_owned(), "prod".to_owned())]
            .into(),
        ..Default::default()
    };
    assert_eq!(connect_post(&server, "RegisterCollector", Some(&token), &register).await.status(), 200);
    let reported = support::wait_until(support::WAIT_DEADLINE, || async {
        api.collector(&dev).await["local_attributes"]["region"] == "eu"
    })
    .await;
    assert!(reported, "the reported attributes reach the record");
    assert!(!content(&config(&api, &dev).await).contains("loki"), "reported attributes select nothing");

    // An operator's label change does: a new version with the eu destination.
    let before = config(&api, &dev).await["version"].as_u64().unwrap_or_default();
    let (status, _) = api
        .request(
            Method::PATCH,
            &format!("/api/v1/collectors/{dev}"),
            Some(json!({"labels": {"env": "prod", "region": "eu"}})),
        )
        .await;
    assert_eq!(status, 200);
    let relabelled = config(&api, &dev).await;
    assert!(relabelled["version"].as_u64().unwrap_or_default() > before);
    assert!(content(&relabelled).contains("loki-eu.example.com"));

    // Narrowing the source's selector takes it away from the collectors it no longer matches.
    let source_path = format!("/api/v1/sources/{}", source["id"].as_str().unwrap_or_default());
    let (status, replaced) = api
        .request(
            Method::PUT,
            &source_path,
            Some(json!({"selector": "region=us", "name": "otlp-in", "type": "otlp", "settings": {}})),
        )
        .await;
    assert_eq!((status, replaced["collectors"].clone()), (200, json!(1)), "{replaced}");
    assert!(!content(&config(&api, &eu).await).contains("otelcol.receiver.otlp"));
    assert!(content(&config(&api, &us).await).contains("otelcol.receiver.otlp"));
}

#[tokio::test]
async fn fleet_wide_writes_are_checked_like_a_collectors_own() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    labelled(&api, "edge-1", json!({"env": "prod"})).await;
    let body = |selector: Value| json!({"selector": selector, "name": "d", "type": "debug"});

    let (status, missing) =
        api.request(Method::POST, "/api/v1/destinations", Some(json!({"name": "d", "type": "debug"}))).await;
    assert_eq!(status, 400, "a selector must be given, never assumed: {missing}");
    let (status, bad) =
        api.request(Method::POST, "/api/v1/destinations", Some(body(json!("env in prod")))).await;
    assert_eq!((status, bad["error"]["details"]["field"].clone()), (400, json!("selector")), "{bad}");
    let (status, long) = api
        .request(Method::POST, "/api/v1/destinations", Some(body(json!(format!("env={}", "x".repeat(5000))))))
        .await;
    assert_eq!((status, long["error"]["details"]["field"].clone()), (400, json!("selector")), "{long}");
    let (status, _) = api.request(Method::POST, "/api/v1/destinations", Some(body(json!(7)))).await;
    assert_eq!(status, 400, "a selector that is not text");

    fleet_create(&api, "sources", json!({"selector": "env=prod", "name": "in", "type": "otlp"})).await;
    let destination = fleet_create(&api, "destinations", body(json!("env=prod"))).await;
    let destination_id = destination["id"].as_str().unwrap_or_default().to_owned();
    let (status, refused) = api
        .request(
            Method::POST,
            "/api/v1/routes",
            Some(json!({"selector": "env=prod", "name": "r", "condition": "severity_text == \"ERROR\"",
                        "destination_ids": [destination_id]})),
        )
        .await;
    assert_eq!(status, 400, "a log-only condition on an all-signal debug destination is refused: {refused}");
    let (status, unknown) = api
        .request(
            Method::POST,
            "/api/v1/routes",
            Some(json!({"selector": "", "name": "r", "destination_ids": ["dst_nope"]})),
        )
        .await;
    assert_eq!(status, 400, "{unknown}");
    fleet_create(&api, "routes", json!({"selector": "", "name": "r", "destination_ids": [destination_id]}))
        .await;
    let (status, in_use) =
        api.request(Method::DELETE, &format!("/api/v1/destinations/{destination_id}"), None).await;
    assert_eq!(status, 409, "{in_use}");
    let listed = api.get("/api/v1/routes").await;
    assert_eq!(listed["routes"].as_array().map(Vec::len), Some(1));

    let viewer = Api::with_role(&server, "viewer").await;
    let (status, _) = viewer.request(Method::POST, "/api/v1/destinations", Some(body(json!("")))).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn during_a_staged_change_the_config_explains_which_revision_each_collector_renders() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let mut ids = Vec::new();
    for name in ["edge-a", "edge-b"] {
        let id = labelled(&api, name, json!({"env": "prod"})).await;
        // Connected collectors expect polls: the rollout waits for the first batch to poll.
        let token = api.mint_token(&id).await;
        let request = pb::GetConfigRequest { id: format!("{name}.host"), ..Default::default() };
        support::get_config(&server, &token, &request).await;
        // The rollout driver reads the record, which says `connected` once the activity write
        // carrying the status change (and its event) commits; before that a collector holds no batch.
        api.wait_for_event(&id, "status_changed", 1).await;
        ids.push(id);
    }
    fleet_create(
        &api,
        "sources",
        json!({"selector": "env=prod", "name": "otlp-in", "type": "otlp", "settings": {}}),
    )
    .await;
    let gateway = fleet_create(
        &api,
        "destinations",
        json!({"selector": "env=prod", "name": "gateway", "type": "otlp_http",
               "settings": {"endpoint": "https://gw-1.example.com/otlp"}}),
    )
    .await;
    let gateway_id = gateway["id"].as_str().expect("id");
    fleet_create(
        &api,
        "routes",
        json!({"selector": "env=prod", "name": "everything", "condition": "true", "priority": 1,
               "is_final": true, "destination_ids": [gateway_id]}),
    )
    .await;
    let (status, body) = api
        .request(
            Method::PUT,
            &format!("/api/v1/destinations/{gateway_id}?rollout=staged&first_batch=1"),
            Some(json!({"selector": "env=prod", "name": "gateway", "type": "otlp_http",
                        "settings": {"endpoint": "https://gw-2.example.com/otlp"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    ids.sort();
    let (released, held) = (config(&api, &ids[0]).await, config(&api, &ids[1]).await);
    assert!(content(&released).contains("gw-2.example.com"), "{}", content(&released));
    assert!(content(&held).contains("gw-1.example.com"), "{}", content(&held));
    let released_reason = item(&released, "gateway")["reason"].as_str().unwrap_or_default().to_owned();
    let held_reason = item(&held, "gateway")["reason"].as_str().unwrap_or_default().to_owned();
    assert!(!released_reason.contains("previous revision"), "{released_reason}");
    assert_eq!(item(&released, "gateway").get("held"), None);
    assert_eq!(item(&held, "gateway")["held"], true);
    assert!(
        held_reason.contains("applies because of selector env=prod")
            && held_reason.contains("at its previous revision"),
        "{held_reason}"
    );
}
