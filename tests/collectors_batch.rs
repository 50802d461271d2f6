//! Batch provisioning: `POST /api/v1/collectors:batch` (up to 1000 collectors, tokens minted on
//! request and shown once, all or none), and `linkmesh collectors import` on top of it. Real binary,
//! real HTTP.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const BATCH: &str = "/api/v1/collectors:batch";

async fn collector_count(api: &Api) -> usize {
    api.get("/api/v1/collectors").await["collectors"].as_array().expect("collectors").len()
}

async fn names(api: &Api) -> Vec<String> {
    api.get("/api/v1/collectors").await["collectors"]
        .as_array()
        .expect("collectors")
        .iter()
        .map(|collector| collector["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn a_batch_creates_its_collectors_in_order_and_their_tokens_poll_at_once() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let items: Vec<Value> = (0..25)
        .map(|n| match n % 3 {
            0 => json!({"name": format!("batch-{n}"), "mode": "alloy-remotecfg", "labels": {"env": "prod", "rack": format!("r{n}")}}),
            1 => json!({"name": format!("batch-{n}"), "mode": "alloy-remotecfg"}),
            _ => json!({"name": format!("batch-{n}"), "mode": "opamp", "labels": {}}),
        })
        .collect();
    let (status, body) =
        api.request(Method::POST, BATCH, Some(json!({"collectors": items, "mint_tokens": true}))).await;
    assert_eq!(status, 201, "{body}");
    let created = body["collectors"].as_array().expect("collectors");
    assert_eq!(created.len(), 25);
    let mut tokens = Vec::new();
    for (n, collector) in created.iter().enumerate() {
        assert_eq!(collector["name"], format!("batch-{n}"), "request order");
        let token = collector["token"].as_str().expect("token").to_owned();
        assert!(token.starts_with("lmct_"), "{token}");
        tokens.push((collector["id"].as_str().expect("id").to_owned(), token));
    }

    // Each minted token works on the poll path as soon as the answer is back.
    for (n, (_, token)) in tokens.iter().enumerate().filter(|(n, _)| n % 3 != 2) {
        get_config(&server, token, &poll_request(&format!("host-{n}"), "")).await;
    }

    let (first_id, first_token) = &tokens[0];
    let record = api.collector(first_id).await;
    assert_eq!(record["labels"], json!({"env": "prod", "rack": "r0"}));
    assert_eq!(record["mode"], "alloy-remotecfg");
    assert_eq!(api.collector(&tokens[2].0).await["mode"], "opamp");
    let prefix = record["token"]["prefix"].as_str().expect("prefix");
    assert!(first_token.starts_with(prefix), "the stored prefix is the minted token's");
    let events = api.event_types(first_id).await;
    assert_eq!(&events[..2], ["collector_created", "token_minted"], "{events:?}");

    // Shown once: no later read holds a token.
    let list = api.get("/api/v1/collectors").await.to_string();
    let audit = api.get("/api/v1/audit?tail=1000").await;
    for (id, token) in &tokens {
        let secret = &token["lmct_".len()..];
        assert!(!api.collector(id).await.to_string().contains(secret));
        assert!(!list.contains(secret));
        assert!(!audit.to_string().contains(secret));
    }
    let batch_entries: Vec<&Value> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| entry["action"] == "POST /api/v1/collectors:batch")
        .collect();
    assert_eq!(batch_entries.len(), 1, "one audit entry for the batch: {batch_entries:?}");
    let entry = batch_entries[0];
    assert_eq!(
        (&entry["operation"], &entry["count"], &entry["outcome"]),
        (&json!("create_with_tokens"), &json!(25), &json!("ok"))
    );

    // Without mint_tokens: collectors without tokens, and no token in the answer.
    let (status, body) = api
        .request(Method::POST, BATCH, Some(json!({"collectors": [{"name": "plain-1", "mode": "opamp"}]})))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["collectors"][0].get("token").is_none(), "{body}");
    let plain = api.collector(body["collectors"][0]["id"].as_str().expect("id")).await;
    assert_eq!(plain["token"], Value::Null);
}

#[tokio::test]
async fn one_bad_item_refuses_the_whole_batch_and_the_answer_names_it() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    api.create_collector("taken").await;
    let good = |n: usize| json!({"name": format!("good-{n}"), "mode": "alloy-remotecfg"});
    let refusals = [
        (json!({"name": "", "mode": "alloy-remotecfg"}), 400, "collectors[2].name"),
        (json!({"name": "x", "mode": "fluentd"}), 400, "collectors[2].mode"),
        (json!({"name": "x", "mode": "opamp", "labels": {"bad key": "v"}}), 400, "collectors[2].labels"),
        (json!({"name": "taken", "mode": "opamp"}), 409, "collectors[2].name"),
        (json!({"name": "good-0", "mode": "opamp"}), 409, "collectors[2].name"),
    ];
    for (bad, expected_status, field) in refusals {
        let body = json!({"collectors": [good(0), good(1), bad, good(3)], "mint_tokens": true});
        let (status, answer) = api.request(Method::POST, BATCH, Some(body)).await;
        assert_eq!(status, expected_status, "{answer}");
        assert_eq!(answer["error"]["details"]["index"], 2, "{answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        assert!(answer["error"]["message"].as_str().expect("message").starts_with(field), "{answer}");
    }
    let (status, answer) =
        api.request(Method::POST, BATCH, Some(json!({"collectors": [good(0), good(0)]}))).await;
    assert_eq!((status, &answer["error"]["code"]), (409, &json!("already_exists")), "{answer}");
    assert_eq!(
        (&answer["error"]["details"]["index"], &answer["error"]["details"]["first_index"]),
        (&json!(1), &json!(0))
    );
    let (status, answer) =
        api.request(Method::POST, BATCH, Some(json!({"collectors": [good(0)], "unknown": true}))).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = api.request(Method::POST, BATCH, Some(json!({"collectors": []}))).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(names(&api).await, ["taken"], "no refused batch created anything");
}

#[tokio::test]
async fn a_full_batch_of_1000_large_items_fits_and_1001_items_are_refused() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    // About 1.5 MB of JSON: above the REST API's usual 1 MiB body limit, within the batch's.
    let labels: serde_json::Map<String, Value> =
        (0..8).map(|n| (format!("key-{n}"), Value::from("v".repeat(150)))).collect();
    let item = |n: usize| json!({"name": format!("{}-{n}", "n".repeat(100)), "mode": "alloy-remotecfg", "labels": labels});
    let (status, answer) = api
        .request(Method::POST, BATCH, Some(json!({"collectors": (0..1001).map(item).collect::<Vec<_>>()})))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["details"]["field"], "collectors", "{answer}");
    assert_eq!(collector_count(&api).await, 0);

    let full = json!({"collectors": (0..1000).map(item).collect::<Vec<_>>(), "mint_tokens": true});
    assert!(full.to_string().len() > 1024 * 1024);
    let (status, answer) = api.request(Method::POST, BATCH, Some(full)).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["collectors"].as_array().expect("collectors").len(), 1000);
    assert_eq!(collector_count(&api).await, 1000);

    // A body over the batch limit is refused before it is read whole.
    let huge =
        json!({"collectors": [{"name": "h", "mode": "opamp", "labels": {"k": "v".repeat(5 * 1024 * 1024)}}]});
    let (status, answer) = api.request(Method::POST, BATCH, Some(huge)).await;
    assert_eq!(status, 413, "{answer}");
}

#[tokio::test]
async fn strangers_get_401_and_viewers_403_and_nothing_is_created() {
    let server = Server::start();
    let body = json!({"collectors": [{"name": "nope", "mode": "opamp"}], "mint_tokens": true});
    let anonymous = reqwest::Client::new().post(server.url(BATCH)).json(&body).send().await.expect("request");
    assert_eq!(anonymous.status(), 401);
    let viewer = Api::with_role(&server, "viewer").await;
    let (status, answer) = viewer.request(Method::POST, BATCH, Some(body.clone())).await;
    assert_eq!(status, 403, "{answer}");
    let operator = Api::with_role(&server, "operator").await;
    assert_eq!(collector_count(&operator).await, 0);
    let (status, answer) = operator.request(Method::POST, BATCH, Some(body)).await;
    assert_eq!(status, 201, "operators create collectors: {answer}");
}

#[tokio::test]
async fn cli_imports_a_csv_with_quoted_labels_and_writes_a_private_tokens_file() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("fleet.csv");
    let mut text = String::from("name,mode,labels\n");
    text.push_str("\"edge, one\",alloy-remotecfg,\"site=paris, 3rd floor;env=prod\"\n");
    for n in 2..=5 {
        text.push_str(&format!("edge-{n},,env=dev\n"));
    }
    std::fs::write(&csv, &text).expect("write csv");
    let tokens = dir.path().join("tokens.csv");
    let csv_arg = csv.to_str().expect("path");
    let tokens_arg = tokens.to_str().expect("path");

    let (ok, _, stderr) =
        linkmesh_cli(&server, &api.token, &["collectors", "import", csv_arg, "--mint-tokens"]);
    assert!(!ok && stderr.contains("--tokens-out"), "tokens are shown once, so a file is required: {stderr}");

    let (ok, stdout, stderr) = linkmesh_cli(
        &server,
        &api.token,
        &["collectors", "import", csv_arg, "--mint-tokens", "--tokens-out", tokens_arg, "--batch-size", "2"],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("created 5 collectors"), "{stdout}");
    assert!(stderr.contains("imported 2/5 (40.0%)") && stderr.contains("imported 5/5 (100.0%)"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&tokens).expect("tokens file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let written = std::fs::read_to_string(&tokens).expect("tokens file");
    let mut lines = written.lines();
    assert_eq!(lines.next(), Some("id,name,token"));
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0][1], "edge, one");
    let record = api.collector(&rows[0][0]).await;
    assert_eq!(record["labels"], json!({"site": "paris, 3rd floor", "env": "prod"}));
    get_config(&server, &rows[0][2], &poll_request("edge-one-host", "")).await;

    // The tokens file is never overwritten; re-running skips what exists.
    let (ok, _, stderr) = linkmesh_cli(
        &server,
        &api.token,
        &["collectors", "import", csv_arg, "--mint-tokens", "--tokens-out", tokens_arg],
    );
    assert!(!ok && stderr.contains("never overwritten"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&tokens).expect("tokens file"), written);
    let (ok, stdout, stderr) =
        linkmesh_cli(&server, &api.token, &["collectors", "import", csv_arg, "--skip-existing"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("created 0 collectors, skipped 5 that exist"), "{stdout}");
}

#[tokio::test]
async fn cli_import_stops_at_a_refused_batch_and_says_what_was_created() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let json_file = dir.path().join("fleet.json");
    let items: Vec<Value> = (1..=5)
        .map(|n| json!({"name": format!("j-{n}"), "mode": if n == 4 { "fluentd" } else { "opamp" }}))
        .collect();
    std::fs::write(&json_file, Value::from(items).to_string()).expect("write json");
    let file_arg = json_file.to_str().expect("path");
    let (ok, _, stderr) =
        linkmesh_cli(&server, &api.token, &["collectors", "import", file_arg, "--batch-size", "2"]);
    assert!(!ok);
    assert!(stderr.contains("batch 2 (item 3 to item 4) was refused at item 4 (name \"j-4\")"), "{stderr}");
    assert!(stderr.contains("2 of 5 collectors were created"), "{stderr}");
    assert_eq!(names(&api).await, ["j-1", "j-2"], "the refused batch and those after it created nothing");
}

/// The fields of one CSV line (the test's own reader, independent of the CLI's).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().expect("field").push(c),
        }
    }
    fields
}
