//! `GET /api/v1/openapi.json` on the real binary: it describes exactly the route table, it is valid
//! OpenAPI by an independent validator (the Python `openapi-spec-validator` package), and real answers
//! of the running server match the schemas it gives them (checked with the Python `jsonschema`
//! package). Both packages are installed by `.ci/run` from `tests/python/requirements.txt`; without
//! them these tests fail, they never skip.

mod support;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};

use linkmesh::http::api::routes::API_ROUTES;
use reqwest::Method;
use serde_json::{json, Value};
use support::*;

async fn fetch_document(server: &Server, api: &Api) -> (String, Value) {
    let response = api
        .http
        .get(server.url("/api/v1/openapi.json"))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("get openapi.json");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("content type").to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let text = response.text().await.expect("body");
    let document = serde_json::from_str(&text).expect("the document is JSON");
    (text, document)
}

/// Runs a Python script with `input` on standard input; panics with its output when it fails.
fn python(script: &str, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 (installed with tests/python/requirements.txt)");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write input");
    child.wait_with_output().expect("python3 output")
}

/// `python3 -m openapi_spec_validator FILE`: whether the validator accepts `text`, and what it said.
fn spec_validator_accepts(text: &str) -> (bool, String) {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("openapi.json");
    std::fs::write(&path, text).expect("write document");
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&path)
        .output()
        .expect("run python3 -m openapi_spec_validator (pip install -r tests/python/requirements.txt)");
    let said =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!said.contains("No module named"), "openapi-spec-validator is not installed: {said}");
    (output.status.success(), said)
}

#[tokio::test]
async fn the_document_describes_every_route_once_and_nothing_else() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let (text, document) = fetch_document(&server, &api).await;

    let mut served = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for verb in item.as_object().expect("path item").keys() {
            assert!(served.insert((path.clone(), verb.to_ascii_uppercase())), "{verb} {path} twice");
        }
    }
    let table: BTreeSet<(String, String)> =
        API_ROUTES.iter().map(|route| (route.full_path(), route.verb.as_str().to_owned())).collect();
    assert_eq!(table.len(), API_ROUTES.len());
    assert_eq!(served, table, "the document's operations are not the route table's");

    for route in API_ROUTES {
        let operation = &document["paths"][route.full_path()][route.verb.as_str().to_ascii_lowercase()];
        let name = format!("{} {}", route.verb.as_str(), route.path);
        assert_eq!(operation["summary"], route.summary, "{name}");
        match route.access.min_role() {
            None => assert_eq!(operation["security"], json!([]), "{name}"),
            Some(role) => {
                assert_eq!(operation["security"], json!([{ "session": [] }, { "bearer": [] }]), "{name}");
                assert_eq!(operation["x-linkmesh-min-role"], role.as_str(), "{name}");
                assert!(operation["responses"]["401"].is_object(), "{name}");
            }
        }
    }

    // The same bytes on every call; strangers learn nothing about the API's shape.
    let (again, _) = fetch_document(&server, &api).await;
    assert_eq!(text, again);
    let stranger = reqwest::get(server.url("/api/v1/openapi.json")).await.expect("get");
    assert_eq!(stranger.status(), 401);
}

#[tokio::test]
async fn the_document_passes_an_independent_openapi_validator() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let (text, document) = fetch_document(&server, &api).await;
    assert_eq!(document["openapi"], "3.1.0");

    let (accepted, said) = spec_validator_accepts(&text);
    assert!(accepted, "openapi-spec-validator rejected the served document: {said}");

    // The check can fail: a response without its required description is refused.
    let mut broken = document.clone();
    let created = &mut broken["paths"]["/api/v1/collectors"]["post"]["responses"]["201"];
    created.as_object_mut().expect("201 response").remove("description");
    let (accepted, _) = spec_validator_accepts(&broken.to_string());
    assert!(!accepted, "the validator accepted a response without a description");
}

/// Checks `(name, schema, instance)` triples with `jsonschema`'s Draft 2020-12 validator, each schema
/// resolved against the document's components.
fn validate_instances(document: &Value, checks: &[(String, Value, Value)]) {
    const SCRIPT: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
payload = json.load(sys.stdin)
components = payload["components"]
failures = []
for check in payload["checks"]:
    schema = dict(check["schema"])
    schema["components"] = components
    Draft202012Validator.check_schema(schema)
    for error in Draft202012Validator(schema).iter_errors(check["instance"]):
        failures.append(f'{check["name"]}: {error.message} at {list(error.absolute_path)}')
if failures:
    print("\n".join(failures))
    sys.exit(1)
"#;
    let checks: Vec<Value> = checks
        .iter()
        .map(|(name, schema, instance)| json!({ "name": name, "schema": schema, "instance": instance }))
        .collect();
    let payload = json!({ "components": document["components"], "checks": checks });
    let output = python(SCRIPT, &[], &payload.to_string());
    assert!(
        output.status.success(),
        "answers do not match their schemas:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The schema of an operation's typed answer with `status`.
fn typed_answer(document: &Value, verb: &str, path: &str, status: u16) -> Value {
    let pointer = format!(
        "/paths/{}/{}/responses/{status}/content/application~1json/schema",
        path.replace('~', "~0").replace('/', "~1"),
        verb.to_ascii_lowercase()
    );
    let schema =
        document.pointer(&pointer).unwrap_or_else(|| panic!("no answer schema at {pointer}")).clone();
    assert!(schema.get("$ref").is_some(), "{verb} {path} {status} is not typed: {schema}");
    schema
}

#[tokio::test]
async fn real_answers_match_their_schemas() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let (_, document) = fetch_document(&server, &api).await;
    let collector_id = api.create_collector("schema-check").await;
    let opamp_collector =
        api.create("/api/v1/collectors", json!({ "name": "schema-check-otel", "mode": "opamp" })).await;
    let opamp_collector_id = opamp_collector["id"].as_str().expect("id").to_owned();
    api.create("/api/v1/pipelines", json!({ "name": "p", "signals": ["logs"], "steps": [] })).await;

    // Every GET with a typed answer whose path has at most a collector id.
    let mut checks = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        let Some(schema) =
            item["get"]["responses"]["200"]["content"]["application/json"]["schema"].as_object()
        else {
            continue;
        };
        if !schema.contains_key("$ref") || path.contains("{item}") || path.contains("/stream/") {
            continue;
        }
        let url_path = if path.starts_with("/api/v1/collectors/{id}") {
            path.replace("{id}", &collector_id)
        } else if path.contains('{') {
            continue;
        } else {
            path.clone()
        };
        let (status, body) = api.request(Method::GET, &url_path, None).await;
        assert_eq!(status, 200, "GET {url_path}: {body}");
        checks.push((format!("GET {url_path}"), Value::Object(schema.clone()), body));
    }
    assert!(checks.len() >= 8, "too few typed answers to check: {}", checks.len());

    // Writes with typed answers.
    let writes = [
        (
            Method::POST,
            "/api/v1/collectors/{id}/token",
            format!("/api/v1/collectors/{collector_id}/token"),
            None,
            201,
        ),
        (
            Method::POST,
            "/api/v1/collectors/{id}/token",
            format!("/api/v1/collectors/{opamp_collector_id}/token"),
            None,
            201,
        ),
        (
            Method::PATCH,
            "/api/v1/collectors/{id}",
            format!("/api/v1/collectors/{collector_id}"),
            Some(json!({ "stability_level": "experimental" })),
            200,
        ),
        (
            Method::POST,
            "/api/v1/users",
            "/api/v1/users".to_owned(),
            Some(
                json!({ "username": "schema-user", "password": "a-long-enough-password", "role": "viewer" }),
            ),
            201,
        ),
        (
            Method::POST,
            "/api/v1/cluster/join-tokens",
            "/api/v1/cluster/join-tokens".to_owned(),
            Some(json!({})),
            201,
        ),
    ];
    for (method, template, url_path, body, expected) in writes {
        let (status, answer) = api.request(method.clone(), &url_path, body).await;
        assert_eq!(status, expected, "{method} {url_path}: {answer}");
        let schema = typed_answer(&document, method.as_str(), template, status);
        checks.push((format!("{method} {url_path}"), schema, answer));
    }
    let (_, account) = api
        .request(
            Method::POST,
            "/api/v1/service-accounts",
            Some(json!({ "name": "schema-sa", "role": "viewer" })),
        )
        .await;
    checks.push((
        "POST service account".into(),
        typed_answer(&document, "POST", "/api/v1/service-accounts", 201),
        account.clone(),
    ));
    let tokens = format!("/api/v1/service-accounts/{}/tokens", account["id"].as_str().expect("account id"));
    let (status, minted) = api.request(Method::POST, &tokens, Some(json!({ "label": "schema" }))).await;
    assert_eq!(status, 201, "{minted}");
    checks.push((
        "POST token".into(),
        typed_answer(&document, "POST", "/api/v1/service-accounts/{id}/tokens", 201),
        minted,
    ));
    let listed = api.get(&tokens).await;
    checks.push((
        "GET tokens".into(),
        typed_answer(&document, "GET", "/api/v1/service-accounts/{id}/tokens", 200),
        listed,
    ));

    // Errors share one envelope.
    let error_schema =
        document["components"]["responses"]["Error"]["content"]["application/json"]["schema"].clone();
    let (status, not_found) = api.request(Method::GET, "/api/v1/collectors/col_nope", None).await;
    assert_eq!(status, 404);
    checks.push(("404".into(), error_schema.clone(), not_found));
    let (status, invalid) =
        api.request(Method::POST, "/api/v1/collectors", Some(json!({ "name": "" }))).await;
    assert_eq!(status, 400);
    checks.push(("400".into(), error_schema, invalid));
    validate_instances(&document, &checks);
}

#[tokio::test]
async fn the_reference_page_lists_every_route_and_loads_nothing_from_elsewhere() {
    let server = Server::start();
    let api = Api::with_role(&server, "viewer").await;
    let response = api
        .http
        .get(server.url("/api-reference"))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("get the reference page");
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'"), "{csp}");
    let page = response.text().await.expect("page");
    for route in API_ROUTES {
        let marker = format!("data-verb=\"{}\" data-path=\"{}\"", route.verb.as_str(), route.full_path());
        assert_eq!(page.matches(&marker).count(), 1, "{marker}");
    }
    // Body fields come from the handlers' types: the collector's creation body names `stability_level`.
    assert!(page.contains("id=\"schema-CreateCollector\""), "no CreateCollector schema");
    assert!(page.contains(">stability_level<"), "no stability_level field");
    for attribute in ["src=\"", "href=\""] {
        for (index, _) in page.match_indices(attribute) {
            let value = &page[index + attribute.len()..];
            assert!(
                value.starts_with('/') || value.starts_with('#'),
                "a reference outside this server: {}",
                &value[..value.len().min(60)]
            );
        }
    }

    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(server.url("/api-reference"))
        .send()
        .await
        .expect("get");
    assert_eq!(stranger.status(), 303);
}
