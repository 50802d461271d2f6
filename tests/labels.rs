//! Operator-set labels on collectors: set with `PATCH /collectors/{id}` `{"labels":{…}}` (replaced
//! whole), checked (keys, values, count), never taken from what a collector reports. Real binary,
//! real HTTP.

mod support;

use reqwest::Method;
use serde_json::json;
use support::{Api, Server};

#[tokio::test]
async fn labels_are_set_by_operators_replaced_whole_and_checked() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("edge-1").await;
    let path = format!("/api/v1/collectors/{collector_id}");
    assert_eq!(api.collector(&collector_id).await["labels"], json!({}));

    let (status, body) = api
        .request(Method::PATCH, &path, Some(json!({"labels": {"env": "prod", "team": "a \"quoted\" ${x}"}})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["labels"], json!({"env": "prod", "team": "a \"quoted\" ${x}"}));

    let (status, body) = api.request(Method::PATCH, &path, Some(json!({"labels": {"region": "eu"}}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(api.collector(&collector_id).await["labels"], json!({"region": "eu"}), "replaced whole");

    for bad in [json!({"bad key": "x"}), json!({"env": "line\nbreak"}), json!({"-env": "x"})] {
        let (status, body) = api.request(Method::PATCH, &path, Some(json!({ "labels": bad }))).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["details"]["field"], "labels", "{body}");
    }
    let (status, _) = api.request(Method::PATCH, &path, Some(json!({"labels": "env=prod"}))).await;
    assert_eq!(status, 400, "labels that are not an object");
    let many: serde_json::Map<String, serde_json::Value> =
        (0..65).map(|index| (format!("k{index}"), json!("v"))).collect();
    let (status, _) = api.request(Method::PATCH, &path, Some(json!({ "labels": many }))).await;
    assert_eq!(status, 400, "more than 64 labels");
    let (status, _) = api.request(Method::PATCH, &path, Some(json!({}))).await;
    assert_eq!(status, 400, "an empty PATCH changes nothing and says so");
    assert_eq!(api.collector(&collector_id).await["labels"], json!({"region": "eu"}));

    let viewer = Api::with_role(&server, "viewer").await;
    let (status, _) = viewer.request(Method::PATCH, &path, Some(json!({"labels": {"env": "dev"}}))).await;
    assert_eq!(status, 403);
}
