//! Many collectors at once: `POST /api/v1/collectors:bulk` (label, rotate, delete by ids or label
//! selector, all or none, at most 1000) and `POST /api/v1/collectors:prune` (inactive ones; a dry run
//! unless `"dry_run":false`). Real binary, real HTTP.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const BULK: &str = "/api/v1/collectors:bulk";
const PRUNE: &str = "/api/v1/collectors:prune";

async fn labels_of(api: &Api, collector_id: &str) -> Value {
    api.collector(collector_id).await["labels"].clone()
}

/// The audit entries whose route is `action` (`POST /api/v1/collectors:bulk`, say).
async fn audit_entries(api: &Api, action: &str) -> Vec<Value> {
    let log = api.get("/api/v1/audit?tail=1000").await;
    log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| entry["action"] == action)
        .cloned()
        .collect()
}

#[tokio::test]
async fn bulk_labels_many_collectors_by_ids_and_then_by_selector() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let a = api.create_collector("edge-a").await;
    let b = api.create_collector("edge-b").await;
    let c = api.create_collector("edge-c").await;

    let (status, body) = api
        .request(
            Method::POST,
            BULK,
            Some(json!({"ids": [&b, &a], "action": "label", "labels": {"set": {"tier": "edge", "env": "dev"}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"action": "label", "count": 2, "collector_ids": [&b, &a]}));
    assert_eq!(labels_of(&api, &a).await, json!({"tier": "edge", "env": "dev"}));
    assert_eq!(labels_of(&api, &c).await, json!({}));
    // The literal `:bulk` path lives beside `/collectors/{id}` without shadowing it.
    assert_eq!(api.collector(&a).await["name"], "edge-a");

    let (status, body) = api
        .request(
            Method::POST,
            BULK,
            Some(json!({"selector": "tier=edge", "action": "label", "labels": {"set": {"env": "prod"}, "remove": ["tier"]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["collector_ids"], json!([&a, &b]), "a selection by selector is by name");
    assert_eq!(labels_of(&api, &b).await, json!({"env": "prod"}));

    // Exactly the labelled ones match now.
    let (status, body) = api
        .request(
            Method::POST,
            BULK,
            Some(json!({"selector": "env=prod", "action": "delete", "dry_run": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["collector_ids"], json!([&a, &b]));
    assert_eq!(body["dry_run"], true);
    assert_eq!(api.collector(&a).await["id"], a.as_str(), "a dry run deletes nothing");

    // The selection changed since the caller counted it: refused, nothing changed.
    let (status, body) = api
        .request(
            Method::POST,
            BULK,
            Some(json!({"selector": "env=prod", "expected_count": 3, "action": "label", "labels": {"set": {"env": "x"}}})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["details"]["count"], 2, "{body}");
    assert_eq!(labels_of(&api, &a).await, json!({"env": "prod"}));

    // Labels the command would make invalid are refused for all.
    let (status, body) = api
        .request(
            Method::POST,
            BULK,
            Some(json!({"ids": [&a], "action": "label", "labels": {"set": {"bad key": "x"}}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["field"], "labels.set", "{body}");

    // A dry run commits nothing: its record is written with the node's next audit flush.
    let summary = || async {
        let entries = audit_entries(&api, "POST /api/v1/collectors:bulk").await;
        entries
            .iter()
            .map(|entry| (entry["operation"].clone(), entry["count"].clone(), entry["outcome"].clone()))
            .collect::<Vec<_>>()
    };
    let dry_run = (json!("delete_dry_run"), json!(2), json!("ok"));
    assert!(
        wait_until(WAIT_DEADLINE, || async { summary().await.contains(&dry_run) }).await,
        "{:?}",
        summary().await
    );
    let summary = summary().await;
    assert!(summary.contains(&(json!("label"), json!(2), json!("ok"))), "{summary:?}");
    assert!(
        summary.contains(&(Value::Null, Value::Null, json!("failed_precondition"))),
        "the 409: {summary:?}"
    );
}

#[tokio::test]
async fn bulk_rotation_returns_working_tokens_and_the_old_ones_stop_working() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let mut old_tokens = Vec::new();
    let mut ids = Vec::new();
    for name in ["rot-1", "rot-2"] {
        let id = api.create_collector(name).await;
        let token = api.mint_token(&id).await;
        get_config(&server, &token, &poll_request(name, "")).await;
        old_tokens.push(token);
        ids.push(id);
    }
    let (status, body) =
        api.request(Method::POST, BULK, Some(json!({"ids": &ids, "action": "rotate"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 2);
    let tokens = body["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 2);
    for (index, token) in tokens.iter().enumerate() {
        assert_eq!(token["collector_id"], ids[index].as_str());
        assert_eq!(token["name"], format!("rot-{}", index + 1).as_str());
        let new_token = token["token"].as_str().expect("token");
        assert!(new_token.starts_with(token["prefix"].as_str().expect("prefix")), "{token}");
        let refused =
            connect_post(&server, "GetConfig", Some(&old_tokens[index]), &poll_request("h", "")).await;
        assert_eq!(refused.status(), 401, "the rotated-out token is refused at once");
        get_config(&server, new_token, &poll_request(&format!("rot-{}", index + 1), "")).await;
        assert_eq!(api.collector(&ids[index]).await["token"]["prefix"], token["prefix"]);
    }
    let log = std::fs::read_to_string(&server.stderr_path).unwrap_or_default();
    for token in tokens {
        assert!(!log.contains(token["token"].as_str().expect("token")), "a new token is never logged");
    }
}

#[tokio::test]
async fn bulk_delete_by_selector_deletes_the_matching_ones_and_their_tokens_stop_working() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let keep = api.create_collector("keep").await;
    let doomed = [api.create_collector("doomed-1").await, api.create_collector("doomed-2").await];
    let token = api.mint_token(&doomed[0]).await;
    get_config(&server, &token, &poll_request("d1", "")).await;
    let (status, body) = api
        .request(
            Method::POST,
            BULK,
            Some(json!({"ids": &doomed, "action": "label", "labels": {"set": {"fate": "doomed"}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = api
        .request(
            Method::POST,
            BULK,
            Some(json!({"selector": "fate=doomed", "expected_count": 2, "action": "delete"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"action": "delete", "count": 2, "collector_ids": &doomed}));
    for id in &doomed {
        let (status, _) = api.request(Method::GET, &format!("/api/v1/collectors/{id}"), None).await;
        assert_eq!(status, 404);
    }
    assert_eq!(api.collector(&keep).await["name"], "keep");
    let refused = connect_post(&server, "GetConfig", Some(&token), &poll_request("d1", "")).await;
    assert_ne!(refused.status(), 200, "a deleted collector's token stops working");

    let entries = audit_entries(&api, "POST /api/v1/collectors:bulk").await;
    let last = entries.last().expect("the delete is audited");
    assert_eq!(
        (&last["operation"], &last["count"], &last["outcome"]),
        (&json!("delete"), &json!(2), &json!("ok"))
    );
}

#[tokio::test]
async fn bulk_refuses_unclear_or_oversized_selections_and_viewers() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let id = api.create_collector("only").await;
    let cases = [
        (json!({}), 400),
        (json!({"action": "delete"}), 400),
        (json!({"ids": [], "action": "delete"}), 400),
        (json!({"ids": [&id], "selector": "", "action": "delete"}), 400),
        (json!({"ids": [&id, &id], "action": "delete"}), 400),
        (json!({"ids": [&id], "action": "explode"}), 400),
        (json!({"ids": [&id], "action": "label"}), 400),
        (json!({"ids": [&id], "action": "delete", "labels": {"set": {"a": "b"}}}), 400),
        (json!({"selector": "env in (", "action": "delete"}), 400),
        (json!({"ids": ["col_nope"], "action": "delete"}), 404),
    ];
    for (body, expected) in cases {
        let (status, answer) = api.request(Method::POST, BULK, Some(body.clone())).await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    let many: Vec<String> = (0..1001).map(|index| format!("col_{index}")).collect();
    let (status, body) =
        api.request(Method::POST, BULK, Some(json!({"ids": many, "action": "rotate"}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["count"], 1001, "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("1001"), "{body}");

    let viewer = Api::with_role(&server, "viewer").await;
    let (status, _) =
        viewer.request(Method::POST, BULK, Some(json!({"ids": [&id], "action": "delete"}))).await;
    assert_eq!(status, 403);
    let (status, _) = viewer.request(Method::POST, PRUNE, Some(json!({"inactive_for": "30d"}))).await;
    assert_eq!(status, 403);
    assert_eq!(api.collector(&id).await["name"], "only", "nothing refused deleted anything");

    // `"selector":""` is every collector, and only when sent.
    let (status, body) =
        api.request(Method::POST, BULK, Some(json!({"selector": "", "action": "delete"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["collector_ids"], json!([&id]));
}

/// A fleet whose collectors were created or last seen weeks ago: built on one server, backed up with
/// its times moved back, and restored into a new one (the only way a real server holds old times).
async fn server_with_aged_fleet() -> (tempfile::TempDir, Server, Api, Vec<String>, String) {
    let first = Server::start();
    let api = Api::admin(&first).await;
    let never_seen = api.create_collector("never-seen").await;
    let long_gone = api.create_collector("long-gone").await;
    let connected = api.create_collector("still-connected").await;
    let fresh = api.create_collector("fresh").await;
    let other = api.create_collector("other-team").await;
    let token = api.mint_token(&connected).await;
    let (status, body) = api
        .request(Method::POST, BULK, Some(json!({"ids": [&never_seen, &long_gone, &connected, &fresh], "action": "label", "labels": {"set": {"team": "a"}}})))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut backup = api.get("/api/v1/backup").await;
    let day = 86_400_000u64;
    let now = backup["fleet"]["collectors"][&fresh]["created_at"].as_u64().expect("created_at millis");
    let collectors = &mut backup["fleet"]["collectors"];
    for id in [&never_seen, &long_gone, &connected, &other] {
        collectors[id]["created_at"] = json!(now - 60 * day);
    }
    collectors[&long_gone]["last_seen_at"] = json!(now - 40 * day);
    collectors[&connected]["last_seen_at"] = json!(now - 40 * day);
    drop(first);
    let (temp, server) = restored(&backup);
    let api = Api::admin(&server).await;
    get_config(&server, &token, &poll_request("connected-host", "")).await;
    api.wait_for_status(&connected, "connected").await;
    (temp, server, api, vec![never_seen, long_gone, connected, fresh], other)
}

/// A new server restored from `backup` (edited), on a data dir in the returned temp dir.
fn restored(backup: &Value) -> (tempfile::TempDir, Server) {
    let temp = tempfile::tempdir().expect("temp dir");
    let file = temp.path().join("backup.json");
    std::fs::write(&file, serde_json::to_vec(&backup).expect("json")).expect("write backup");
    let data_dir = temp.path().join("restored");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .args([
            "restore",
            "--from",
            file.to_str().expect("path"),
            "--data-dir",
            data_dir.to_str().expect("path"),
        ])
        .env_remove("LINKMESH_DATA_KEY")
        .output()
        .expect("run linkmesh restore");
    assert!(output.status.success(), "restore: {}", String::from_utf8_lossy(&output.stderr));
    let server = Server::start_on_data_dir(&data_dir);
    (temp, server)
}

#[tokio::test]
async fn prune_lists_exactly_the_inactive_collectors_and_deletes_only_when_asked() {
    // `_temp` holds the restored data dir; it is dropped after the server.
    let (_temp, server, api, ids, other) = server_with_aged_fleet().await;
    let [never_seen, long_gone, connected, fresh] = [&ids[0], &ids[1], &ids[2], &ids[3]];

    let (status, body) =
        api.request(Method::POST, PRUNE, Some(json!({"inactive_for": "30d", "selector": "team=a"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dry_run"], true, "a dry run unless asked otherwise");
    assert_eq!((&body["count"], &body["remaining"]), (&json!(2), &json!(0)), "{body}");
    let listed: Vec<&str> = body["collectors"]
        .as_array()
        .expect("collectors")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, [never_seen.as_str(), long_gone.as_str()], "least recently active first: {body}");
    assert_eq!(body["collectors"][0]["status"], "awaiting_connection");
    assert_eq!(body["collectors"][0]["last_seen_at"], Value::Null);
    assert_eq!(body["collectors"][0]["labels"], json!({"team": "a"}));
    assert!(body["collectors"][1]["last_seen_at"].is_string(), "{body}");
    for id in [never_seen, long_gone] {
        assert_eq!(api.collector(id).await["id"], id.as_str(), "a dry run deletes nothing");
    }
    let (status, body) = api.request(Method::POST, PRUNE, Some(json!({"inactive_for": "30d"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 3, "without a selector the other team's old collector too: {body}");

    for (request, field) in [
        (json!({"inactive_for": "10m"}), "inactive_for"),
        (json!({"inactive_for": "soon"}), "inactive_for"),
        (json!({"inactive_for": "30d", "selector": "team in ("}), "selector"),
    ] {
        let (status, body) = api.request(Method::POST, PRUNE, Some(request.clone())).await;
        assert_eq!(status, 400, "{request}: {body}");
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
    }

    let (status, body) = api
        .request(
            Method::POST,
            PRUNE,
            Some(json!({"inactive_for": "30d", "selector": "team=a", "dry_run": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["dry_run"], &body["count"]), (&json!(false), &json!(2)), "{body}");
    assert_eq!((&body["deleted"], &body["skipped"]), (&json!(2), &json!([])), "{body}");
    for id in [never_seen, long_gone] {
        let (status, _) = api.request(Method::GET, &format!("/api/v1/collectors/{id}"), None).await;
        assert_eq!(status, 404, "pruned");
    }
    for id in [connected, fresh, &other] {
        assert_eq!(api.collector(id).await["id"], id.as_str(), "kept");
    }
    let entries = audit_entries(&api, "POST /api/v1/collectors:prune").await;
    let pruned = entries.iter().find(|entry| entry["operation"] == "prune").expect("the prune is audited");
    assert_eq!((&pruned["count"], &pruned["outcome"]), (&json!(2), &json!("ok")), "{pruned}");
    assert!(pruned["actor"].as_str().expect("actor").starts_with("test-admin"), "{pruned}");
    assert!(
        entries.iter().any(|entry| entry["operation"] == "prune_dry_run"),
        "dry runs are audited as such"
    );
    drop(server);
}

#[tokio::test]
async fn a_prune_racing_other_deletions_skips_what_they_deleted_and_never_fails() {
    // Groups of old collectors; each round prunes one group three times at once while each of its
    // collectors is also deleted on its own. A prune that selected a collector deleted before its
    // deletion applies must skip it ("gone"), not fail whole.
    const GROUPS: usize = 8;
    const PER_GROUP: usize = 8;
    let first = Server::start();
    let api = Api::admin(&first).await;
    let mut groups: Vec<Vec<String>> = Vec::new();
    for group in 0..GROUPS {
        let mut ids = Vec::new();
        for index in 0..PER_GROUP {
            ids.push(api.create_collector(&format!("old-{group}-{index}")).await);
        }
        let labels = json!({"set": {"group": format!("g{group}")}});
        let (status, body) = api
            .request(Method::POST, BULK, Some(json!({"ids": ids, "action": "label", "labels": labels})))
            .await;
        assert_eq!(status, 200, "{body}");
        groups.push(ids);
    }
    let mut backup = api.get("/api/v1/backup").await;
    let collectors = backup["fleet"]["collectors"].as_object_mut().expect("collectors");
    for record in collectors.values_mut() {
        let created = record["created_at"].as_u64().expect("created_at millis");
        record["created_at"] = json!(created - 60 * 86_400_000);
    }
    drop(first);
    let (_temp, server) = restored(&backup);
    let api = Api::admin(&server).await;

    let mut rounds_with_gone = 0;
    for (group, ids) in groups.iter().enumerate() {
        let prune = json!({"inactive_for": "30d", "selector": format!("group=g{group}"), "dry_run": false});
        let prunes = (0..3).map(|_| api.request(Method::POST, PRUNE, Some(prune.clone())));
        let paths: Vec<String> = ids.iter().map(|id| format!("/api/v1/collectors/{id}")).collect();
        let deletes = paths.iter().map(|path| api.request(Method::DELETE, path, None));
        let (prunes, deletes) =
            tokio::join!(futures_util::future::join_all(prunes), futures_util::future::join_all(deletes));
        let mut deleted = 0;
        let mut gone = 0;
        for (status, body) in &prunes {
            assert_eq!(*status, 200, "a prune never fails on what others deleted: {body}");
            assert_eq!(body["deleted"], body["count"], "{body}");
            deleted += body["deleted"].as_u64().expect("deleted");
            for skip in body["skipped"].as_array().expect("skipped") {
                assert_eq!(skip["reason"], "gone", "nothing reconnected: {body}");
                assert!(ids.contains(&skip["id"].as_str().expect("id").to_owned()), "{body}");
                gone += 1;
            }
        }
        for (status, body) in &deletes {
            assert!(*status == 204 || *status == 200 || *status == 404, "{status}: {body}");
            if *status != 404 {
                deleted += 1;
            }
        }
        assert_eq!(deleted, PER_GROUP as u64, "each collector deleted exactly once (round {group})");
        for id in ids {
            let (status, _) = api.request(Method::GET, &format!("/api/v1/collectors/{id}"), None).await;
            assert_eq!(status, 404, "{id} is gone");
        }
        if gone > 0 {
            rounds_with_gone += 1;
        }
    }
    eprintln!("{rounds_with_gone} of {GROUPS} rounds had a prune skip collectors deleted meanwhile");
    assert!(rounds_with_gone > 0, "no round raced: the test did not exercise the skip");
    drop(server);
}
