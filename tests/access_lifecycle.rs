//! Revocable access over real HTTP (issue 10, finding 4): users disabled, demoted and deleted,
//! passwords changed, sessions listed and ended, service-account tokens listed, expired by default and
//! revoked — each refused on the very next request.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const DANA_PASSWORD: &str = "dana-first-password";

/// A browser-like client signed in as `username` (cookie jar).
async fn sign_in(server: &Server, username: &str, password: &str) -> reqwest::Client {
    let client = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let response = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200, "login as {username}: {}", response.text().await.unwrap_or_default());
    client
}

async fn login_status(server: &Server, username: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

async fn call(
    client: &reqwest::Client,
    server: &Server,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, server.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("json") })
}

async fn me_status(client: &reqwest::Client, server: &Server) -> u16 {
    call(client, server, Method::GET, "/api/v1/auth/me", None).await.0
}

async fn create_user(api: &Api, username: &str, role: &str, password: &str) -> String {
    let (status, body) = api
        .request(
            Method::POST,
            "/api/v1/users",
            Some(json!({ "username": username, "password": password, "role": role })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

async fn user_id(api: &Api, username: &str) -> String {
    let users = api.get("/api/v1/users").await;
    let user = users["users"].as_array().expect("users").iter().find(|user| user["username"] == username);
    user.expect("user listed")["id"].as_str().expect("id").to_owned()
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_disabled_demoted_or_deleted_user_is_refused_on_the_very_next_request() {
    let server = Server::start();
    let admin = Api::admin(&server).await;
    let dana_id = create_user(&admin, "dana", "operator", DANA_PASSWORD).await;
    let dana = sign_in(&server, "dana", DANA_PASSWORD).await;
    assert_eq!(me_status(&dana, &server).await, 200);
    let users = admin.get("/api/v1/users").await;
    let listed = users["users"].as_array().expect("users").iter().find(|user| user["id"] == dana_id.as_str());
    assert_eq!(listed.expect("dana listed")["disabled"], false);

    let user_path = format!("/api/v1/users/{dana_id}");
    let (status, body) = admin.request(Method::PATCH, &user_path, Some(json!({ "disabled": true }))).await;
    assert_eq!((status, &body["disabled"]), (200, &json!(true)), "{body}");
    assert_eq!(me_status(&dana, &server).await, 401, "the session ended with the disable");
    assert_eq!(login_status(&server, "dana", DANA_PASSWORD).await, 401, "a disabled user cannot sign in");

    let (status, _) = admin.request(Method::PATCH, &user_path, Some(json!({ "disabled": false }))).await;
    assert_eq!(status, 200);
    let dana = sign_in(&server, "dana", DANA_PASSWORD).await;
    let (status, body) = admin.request(Method::PATCH, &user_path, Some(json!({ "role": "viewer" }))).await;
    assert_eq!((status, body["role"].as_str()), (200, Some("viewer")));
    let (_, me) = call(&dana, &server, Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(me["role"], "viewer", "a new role applies to the next request");
    let (status, _) =
        call(&dana, &server, Method::POST, "/api/v1/collectors", Some(json!({"name": "x", "mode": "opamp"})))
            .await;
    assert_eq!(status, 403);

    // Refusals: bad role, nothing to change, unknown user, non-admin caller.
    let (status, body) = admin.request(Method::PATCH, &user_path, Some(json!({ "role": "root" }))).await;
    assert_eq!((status, body["error"]["details"]["field"].as_str()), (400, Some("role")));
    let (status, _) = admin.request(Method::PATCH, &user_path, Some(json!({}))).await;
    assert_eq!(status, 400);
    let (status, _) =
        admin.request(Method::PATCH, "/api/v1/users/usr_missing", Some(json!({ "disabled": true }))).await;
    assert_eq!(status, 404);
    let operator = Api::with_role(&server, "operator").await;
    let (status, _) = operator.request(Method::PATCH, &user_path, Some(json!({ "disabled": true }))).await;
    assert_eq!(status, 403);
    let (status, _) = operator.request(Method::DELETE, &user_path, None).await;
    assert_eq!(status, 403);

    let (status, _) = admin.request(Method::DELETE, &user_path, None).await;
    assert_eq!(status, 204);
    assert_eq!(me_status(&dana, &server).await, 401, "the session ended with the delete");
    assert_eq!(login_status(&server, "dana", DANA_PASSWORD).await, 401);
    let users = admin.get("/api/v1/users").await;
    assert!(!users.to_string().contains(&dana_id));
    let (status, _) = admin.request(Method::DELETE, &user_path, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_disabled_demoted_or_deleted() {
    let server = Server::start();
    // An admin service account does not count: it cannot sign in to manage users in the UI.
    let api = Api::admin(&server).await;
    let admin_path = format!("/api/v1/users/{}", user_id(&api, "admin").await);
    for (method, body) in [
        (Method::PATCH, Some(json!({ "disabled": true }))),
        (Method::PATCH, Some(json!({ "role": "operator" }))),
        (Method::DELETE, None),
    ] {
        let (status, error) = api.request(method.clone(), &admin_path, body).await;
        assert_eq!((status, error_code(&error)), (409, "failed_precondition"), "{method}: {error}");
        assert!(error["error"]["message"].as_str().unwrap_or_default().contains("last enabled admin"));
    }
    assert_eq!(login_status(&server, "admin", ADMIN_PASSWORD).await, 200, "admin is untouched");

    let erin_id = create_user(&api, "erin", "admin", "erin-long-password").await;
    let (status, _) = api.request(Method::PATCH, &admin_path, Some(json!({ "disabled": true }))).await;
    assert_eq!(status, 200, "with a second enabled admin, the first may be disabled");
    let (status, error) = api.request(Method::DELETE, &format!("/api/v1/users/{erin_id}"), None).await;
    assert_eq!((status, error_code(&error)), (409, "failed_precondition"), "now erin is the last one");
}

#[tokio::test]
async fn a_password_change_ends_the_users_other_sessions_and_keeps_the_callers() {
    let server = Server::start();
    let admin = Api::admin(&server).await;
    let dana_id = create_user(&admin, "dana", "viewer", DANA_PASSWORD).await;
    let here = sign_in(&server, "dana", DANA_PASSWORD).await;
    let elsewhere = sign_in(&server, "dana", DANA_PASSWORD).await;
    let password_path = format!("/api/v1/users/{dana_id}/password");

    // Refusals first: no current password, a wrong one, a short new one, someone else's password.
    let new_password = "dana-second-password";
    let (status, body) =
        call(&here, &server, Method::POST, &password_path, Some(json!({ "new_password": new_password })))
            .await;
    assert_eq!((status, body["error"]["details"]["field"].as_str()), (400, Some("current_password")));
    let wrong = json!({ "current_password": "not-it-at-all", "new_password": new_password });
    let (status, body) = call(&here, &server, Method::POST, &password_path, Some(wrong)).await;
    assert_eq!((status, body["error"]["details"]["field"].as_str()), (400, Some("current_password")));
    let short = json!({ "current_password": DANA_PASSWORD, "new_password": "short" });
    let (status, body) = call(&here, &server, Method::POST, &password_path, Some(short)).await;
    assert_eq!((status, body["error"]["details"]["field"].as_str()), (400, Some("new_password")));
    let admin_password_path = format!("/api/v1/users/{}/password", user_id(&admin, "admin").await);
    let takeover = json!({ "current_password": DANA_PASSWORD, "new_password": "dana-owns-admin-now" });
    let (status, _) = call(&here, &server, Method::POST, &admin_password_path, Some(takeover)).await;
    assert_eq!(status, 403);
    assert_eq!(me_status(&elsewhere, &server).await, 200, "refused changes end nothing");

    let change = json!({ "current_password": DANA_PASSWORD, "new_password": new_password });
    let (status, body) = call(&here, &server, Method::POST, &password_path, Some(change)).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(me_status(&here, &server).await, 200, "the caller's session stays");
    assert_eq!(me_status(&elsewhere, &server).await, 401, "the other session ended at once");
    assert_eq!(login_status(&server, "dana", DANA_PASSWORD).await, 401);
    assert_eq!(login_status(&server, "dana", new_password).await, 200);

    // An admin sets anyone's password without the current one; all of that user's sessions end.
    let (status, _) = admin
        .request(Method::POST, &password_path, Some(json!({ "new_password": "reset-by-an-admin" })))
        .await;
    assert_eq!(status, 204);
    assert_eq!(me_status(&here, &server).await, 401);
    assert_eq!(login_status(&server, "dana", "reset-by-an-admin").await, 200);
}

#[tokio::test]
async fn sessions_are_listed_and_ended_at_once_by_their_user_or_an_admin() {
    let server = Server::start();
    let admin = Api::admin(&server).await;
    let dana_id = create_user(&admin, "dana", "viewer", DANA_PASSWORD).await;
    let laptop = sign_in(&server, "dana", DANA_PASSWORD).await;
    let phone = sign_in(&server, "dana", DANA_PASSWORD).await;
    let admin_browser = sign_in(&server, "admin", ADMIN_PASSWORD).await;

    let (status, listed) = call(&laptop, &server, Method::GET, "/api/v1/auth/sessions", None).await;
    assert_eq!(status, 200);
    let sessions = listed["sessions"].as_array().expect("sessions").clone();
    assert_eq!(sessions.len(), 2, "only dana's own: {listed}");
    assert!(sessions.iter().all(|s| s["user_id"] == dana_id.as_str() && s["remote_addr"] == "127.0.0.1"));
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let phone_id = sessions.iter().find(|s| s["current"] == false).expect("the other")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(!listed.to_string().contains("lmss_"), "no cookie value in the list");

    let (_, everyone) = call(&admin_browser, &server, Method::GET, "/api/v1/auth/sessions", None).await;
    let admin_session = everyone["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["username"] == "admin" && s["current"] == true)
        .expect("admin's own")
        .clone();
    assert_eq!(
        everyone["sessions"].as_array().expect("sessions").len(),
        4,
        "admin sees everyone's: {everyone}"
    );
    let (status, _) = call(
        &laptop,
        &server,
        Method::GET,
        &format!("/api/v1/auth/sessions?user_id={}", admin_session["user_id"].as_str().expect("id")),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &laptop,
        &server,
        Method::DELETE,
        &format!("/api/v1/auth/sessions/{}", admin_session["id"].as_str().expect("id")),
        None,
    )
    .await;
    assert_eq!(status, 404, "another user's session is not found for a non-admin");
    assert_eq!(me_status(&admin_browser, &server).await, 200);

    let (status, _) =
        call(&laptop, &server, Method::DELETE, &format!("/api/v1/auth/sessions/{phone_id}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(me_status(&phone, &server).await, 401, "ended at once");
    assert_eq!(me_status(&laptop, &server).await, 200);
    let (status, _) =
        call(&laptop, &server, Method::DELETE, &format!("/api/v1/auth/sessions/{phone_id}"), None).await;
    assert_eq!(status, 404);

    let (status, _) = call(
        &laptop,
        &server,
        Method::DELETE,
        &format!("/api/v1/users/{}/sessions", admin_session["user_id"].as_str().expect("id")),
        None,
    )
    .await;
    assert_eq!(status, 403, "a viewer cannot sign the admin out");
    let (status, _) = admin.request(Method::DELETE, &format!("/api/v1/users/{dana_id}/sessions"), None).await;
    assert_eq!(status, 204);
    assert_eq!(me_status(&laptop, &server).await, 401, "an admin signed dana out everywhere");
    let again = sign_in(&server, "dana", DANA_PASSWORD).await;
    let (status, _) =
        call(&again, &server, Method::DELETE, &format!("/api/v1/users/{dana_id}/sessions"), None).await;
    assert_eq!(status, 204, "dana may sign herself out everywhere");
    assert_eq!(me_status(&again, &server).await, 401);
    assert_eq!(me_status(&admin_browser, &server).await, 200);
}

async fn create_account(api: &Api, name: &str) -> String {
    let (status, body) = api
        .request(Method::POST, "/api/v1/service-accounts", Some(json!({ "name": name, "role": "viewer" })))
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

async fn mint(api: &Api, account_id: &str, body: Value) -> (u16, Value) {
    api.request(Method::POST, &format!("/api/v1/service-accounts/{account_id}/tokens"), Some(body)).await
}

async fn bearer_status(server: &Server, token: &str) -> u16 {
    reqwest::Client::new()
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("me")
        .status()
        .as_u16()
}

/// Seconds from a listed token's `created_at` to its `expires_at` (both set from one clock reading).
fn lifetime_seconds(token: &Value) -> i64 {
    let parse = |field: &str| {
        let text = token[field].as_str().unwrap_or_else(|| panic!("{field} in {token}"));
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).expect("time")
    };
    (parse("expires_at") - parse("created_at")).whole_seconds()
}

#[tokio::test]
async fn service_account_tokens_expire_by_default_are_listed_without_secrets_and_revoked_at_once() {
    let server = Server::start();
    let admin = Api::admin(&server).await;
    let account = create_account(&admin, "ci").await;

    let (status, first) = mint(&admin, &account, json!({ "label": "laptop" })).await;
    assert_eq!(status, 201, "{first}");
    let first_token = first["token"].as_str().expect("token").to_owned();
    let first_id = first["id"].as_str().expect("id").to_owned();
    assert!(first["expires_at"].is_string(), "a default expiry: {first}");
    let (status, second) = mint(&admin, &account, json!({ "label": "ci", "expires_in_days": 30 })).await;
    assert_eq!(status, 201);
    let second_token = second["token"].as_str().expect("token").to_owned();
    let (status, body) = mint(&admin, &account, json!({ "expires_in_days": 0 })).await;
    assert_eq!(
        (status, body["error"]["details"]["field"].as_str()),
        (400, Some("expires_in_days")),
        "{body}"
    );

    assert_eq!(bearer_status(&server, &first_token).await, 200);
    let tokens_path = format!("/api/v1/service-accounts/{account}/tokens");
    // last_used_at is written in a batch after the first use.
    let deadline = tokio::time::Instant::now() + WAIT_DEADLINE;
    let listed = loop {
        let listed = admin.get(&tokens_path).await;
        if listed["tokens"][0]["last_used_at"].is_string() {
            break listed;
        }
        assert!(tokio::time::Instant::now() < deadline, "last_used_at never written: {listed}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let tokens = listed["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 2);
    assert_eq!(lifetime_seconds(&tokens[0]), 365 * 86_400, "the default lifetime");
    assert_eq!(lifetime_seconds(&tokens[1]), 30 * 86_400);
    let mut fields: Vec<&str> = tokens[0].as_object().expect("object").keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["created_at", "expires_at", "id", "label", "last_used_at", "prefix"]);
    assert_eq!(tokens[0]["id"], first_id.as_str());
    assert_eq!(tokens[0]["label"], "laptop");
    assert!(first_token.starts_with(tokens[0]["prefix"].as_str().expect("prefix")));
    assert!(tokens[1]["last_used_at"].is_null());
    let text = listed.to_string();
    assert!(!text.contains(&first_token) && !text.contains(&second_token), "never the token");

    let (status, _) = admin.request(Method::DELETE, &format!("{tokens_path}/{first_id}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(bearer_status(&server, &first_token).await, 401, "refused on the very next request");
    assert_eq!(bearer_status(&server, &second_token).await, 200, "the account's other token still works");
    let (status, _) = admin.request(Method::DELETE, &format!("{tokens_path}/{first_id}"), None).await;
    assert_eq!(status, 404);
    let other = create_account(&admin, "other").await;
    let second_id = second["id"].as_str().expect("id");
    let (status, _) = admin
        .request(Method::DELETE, &format!("/api/v1/service-accounts/{other}/tokens/{second_id}"), None)
        .await;
    assert_eq!(status, 404, "a token is revoked through its own account only");

    let (status, _) =
        admin.request(Method::DELETE, &format!("/api/v1/service-accounts/{account}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(bearer_status(&server, &second_token).await, 401, "deleting the account revoked its tokens");
    let (status, _) = admin.request(Method::GET, &tokens_path, None).await;
    assert_eq!(status, 404);
    let viewer = Api::with_role(&server, "viewer").await;
    let (status, _) =
        viewer.request(Method::GET, &format!("/api/v1/service-accounts/{other}/tokens"), None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn tokens_that_never_expire_need_the_setting() {
    let server =
        Server::start_with_config(&format!("{FAST_CONFIG}\n[auth]\nallow_non_expiring_tokens = true\n"));
    let admin = Api::admin(&server).await;
    let account = create_account(&admin, "forever").await;
    let (status, body) = mint(&admin, &account, json!({ "expires_in_days": 0 })).await;
    assert_eq!((status, &body["expires_at"]), (201, &Value::Null), "{body}");
    assert_eq!(bearer_status(&server, body["token"].as_str().expect("token")).await, 200);
    let (status, _) = mint(&admin, &account, json!({ "expires_in_days": 3651 })).await;
    assert_eq!(status, 400);
}

/// First start without `LINKMESH_ADMIN_PASSWORD`: the generated password is printed once to stderr
/// (not as a log line) and kept in `initial-admin-password` until the admin changes it.
#[tokio::test]
async fn the_generated_admin_password_file_is_removed_once_the_password_is_changed() {
    let temp = tempfile::tempdir().expect("temp");
    let data_dir = temp.path().join("data");
    let config = temp.path().join("linkmesh.toml");
    std::fs::write(&config, FAST_CONFIG).expect("config");
    let stderr_path = temp.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .args(["serve", "--http-addr", "127.0.0.1:0", "--rpc-addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data_dir)
        .env_remove("LINKMESH_ADMIN_PASSWORD")
        .env("LINKMESH_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("listening on ") => break line,
            Some(Ok(_)) => continue,
            _ => panic!("server exited: {}", std::fs::read_to_string(&stderr_path).unwrap_or_default()),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let base =
        format!("http://{}", listening.trim_start_matches("listening on ").split(',').next().expect("addr"));

    let password_file = data_dir.join("initial-admin-password");
    let password = std::fs::read_to_string(&password_file).expect("password file").trim().to_owned();
    assert!(password.len() >= 16);
    let stderr = std::fs::read_to_string(&stderr_path).expect("stderr");
    let with_password: Vec<&str> = stderr.lines().filter(|line| line.contains(&password)).collect();
    assert_eq!(with_password.len(), 1, "printed once: {stderr}");
    assert!(
        with_password[0].starts_with("linkmesh: created user \"admin\""),
        "not a log line: {}",
        with_password[0]
    );
    assert!(
        stderr.lines().any(|line| line.contains("INFO") && line.contains("initial-admin-password")),
        "the log names the file: {stderr}"
    );

    let browser = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let login = browser
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let admin_id = login.json::<Value>().await.expect("json")["user"]["id"].as_str().expect("id").to_owned();
    let change = browser
        .post(format!("{base}/api/v1/users/{admin_id}/password"))
        .json(&json!({ "current_password": password, "new_password": "a-password-only-the-admin-knows" }))
        .send()
        .await
        .expect("change");
    assert_eq!(change.status(), 204);
    assert!(!password_file.exists(), "the file went with the old password");
    let old = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(old.status(), 401);
    let stderr = std::fs::read_to_string(&stderr_path).expect("stderr");
    assert_eq!(stderr.matches(&password).count(), 1, "the password was never printed again");
    child.kill().expect("kill");
    child.wait().expect("wait");
}

/// `linkmesh …` with `LINKMESH_URL`/`LINKMESH_TOKEN`, optionally writing `stdin`; (success, JSON, stderr).
fn linkmesh(server: &Server, token: &str, args: &[&str], stdin: Option<&str>) -> (bool, Value, String) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .args(args)
        .env("LINKMESH_URL", &server.base_url)
        .env("LINKMESH_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run linkmesh");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let output = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.success(), value, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn the_cli_lists_and_revokes_tokens_and_disables_sets_and_deletes_users() {
    let server = Server::start();
    let admin = Api::admin(&server).await;
    let account = create_account(&admin, "cli-ci").await;
    let (_, minted) = mint(&admin, &account, json!({ "label": "script" })).await;
    let token = minted["token"].as_str().expect("token").to_owned();
    let token_id = minted["id"].as_str().expect("id").to_owned();
    let json_out = ["--output", "json"];

    let (ok, listed, stderr) = linkmesh(
        &server,
        &admin.token,
        &[&["service-accounts", "tokens", "list", &account][..], &json_out].concat(),
        None,
    );
    assert!(ok, "{stderr}");
    assert_eq!(listed["tokens"][0]["id"], token_id.as_str());
    assert!(!listed.to_string().contains(&token));
    let (ok, _, stderr) =
        linkmesh(&server, &admin.token, &["service-accounts", "tokens", "revoke", &account, &token_id], None);
    assert!(ok, "{stderr}");
    assert_eq!(bearer_status(&server, &token).await, 401);

    create_user(&admin, "dana", "viewer", DANA_PASSWORD).await;
    let dana = sign_in(&server, "dana", DANA_PASSWORD).await;
    let (ok, _, stderr) = linkmesh(&server, &admin.token, &["users", "disable", "dana"], None);
    assert!(ok, "{stderr}");
    assert_eq!(me_status(&dana, &server).await, 401);
    let (ok, users, _) = linkmesh(&server, &admin.token, &[&["users", "list"][..], &json_out].concat(), None);
    assert!(ok);
    let listed =
        users["users"].as_array().expect("users").iter().find(|user| user["username"] == "dana").cloned();
    assert_eq!(listed.expect("dana")["disabled"], true);
    let (ok, _, _) = linkmesh(&server, &admin.token, &["users", "enable", "dana"], None);
    assert!(ok);
    let (ok, _, stderr) =
        linkmesh(&server, &admin.token, &["users", "password", "dana"], Some("set-from-the-cli-1\n"));
    assert!(ok, "{stderr}");
    assert_eq!(login_status(&server, "dana", "set-from-the-cli-1").await, 200);
    let (ok, _, stderr) = linkmesh(&server, &admin.token, &["users", "password", "dana"], None);
    assert!(!ok && stderr.contains("standard input"), "{stderr}");
    let (ok, _, stderr) = linkmesh(&server, &admin.token, &["users", "delete", "admin"], None);
    assert!(!ok && stderr.contains("409") && stderr.contains("last enabled admin"), "{stderr}");
    let (ok, _, _) = linkmesh(&server, &admin.token, &["users", "delete", "dana"], None);
    assert!(ok);
    let (ok, audit, stderr) =
        linkmesh(&server, &admin.token, &[&["audit", "--limit", "1000"][..], &json_out].concat(), None);
    assert!(ok, "{stderr}");
    assert!(audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .any(|entry| entry["action"] == "DELETE /api/v1/users/{id}"));
    assert!(!audit.to_string().contains("set-from-the-cli-1"));
}

/// The Settings page offers every signed-in user their own password and sessions (other roles still
/// get 403 for the admin part), and admins the token, user and audit controls.
#[tokio::test]
async fn settings_shows_your_account_to_everyone_and_the_audit_log_to_admins() {
    let server = Server::start();
    let admin = Api::admin(&server).await;
    create_user(&admin, "dana", "viewer", DANA_PASSWORD).await;
    let dana = sign_in(&server, "dana", DANA_PASSWORD).await;
    let page = dana.get(server.url("/settings")).send().await.expect("settings");
    assert_eq!(page.status(), 403);
    let html = page.text().await.expect("html");
    assert!(html.contains("id=\"password-form\"") && html.contains("id=\"sessions-table\""), "{html}");
    assert!(!html.contains("id=\"audit-table\""));

    let admin_browser = sign_in(&server, "admin", ADMIN_PASSWORD).await;
    let html = admin_browser
        .get(server.url("/settings"))
        .send()
        .await
        .expect("settings")
        .text()
        .await
        .expect("html");
    for id in ["password-form", "sa-tokens-table", "users-table", "audit-table"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id} missing");
    }
}
