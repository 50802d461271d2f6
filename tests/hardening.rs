//! Security hardening (issue 10, findings 3, 5, 9, 10, 11), each reproduced over real HTTP against the
//! real binary. Resource findings assert the mechanism (429, a cut-off body), never a time or a size.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use serde_json::{json, Value};
use support::{Server, ADMIN_PASSWORD, FAST_CONFIG};

/// A client whose TCP connections come from `source` (any 127.x.y.z reaches the server on Linux).
fn client_from(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(source)).build().expect("client")
}

/// `POST /api/v1/auth/login`; returns the status and the `Retry-After` header.
async fn login(
    client: &reqwest::Client,
    server: &Server,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (u16, Option<u64>) {
    let mut request = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    let response = request.send().await.expect("login");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().expect("ascii").parse::<u64>().expect("seconds"));
    (response.status().as_u16(), retry_after)
}

fn with_sections(extra: &str) -> String {
    format!("{FAST_CONFIG}\n{extra}")
}

// ---------------------------------------------------------------- finding 3: login throttling

const THROTTLE_CONFIG: &str = r#"
[auth]
login_free_attempts = 3
login_backoff_base = "60s"
login_backoff_max = "120s"
login_throttle_window = "300s"
"#;

#[tokio::test]
async fn failed_logins_back_off_per_address_and_never_lock_the_user_out() {
    let server = Server::start_with_config(&with_sections(THROTTLE_CONFIG));
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 1));
    for attempt in 0..3 {
        let (status, _) = login(&attacker, &server, "admin", "wrong-guess", None).await;
        assert_eq!(status, 401, "attempt {attempt} is free");
    }
    let (status, retry_after) = login(&attacker, &server, "admin", "wrong-guess", None).await;
    assert_eq!(status, 429, "the fourth guess must wait");
    assert!(retry_after.is_some_and(|seconds| seconds >= 1), "Retry-After: {retry_after:?}");
    let (status, _) = login(&attacker, &server, "admin", ADMIN_PASSWORD, None).await;
    assert_eq!(status, 429, "while waiting even the right password is not checked");
    let (status, _) = login(&attacker, &server, "admin", ADMIN_PASSWORD, Some("198.51.100.1")).await;
    assert_eq!(status, 429, "X-Forwarded-For from an untrusted peer is ignored");

    let admin_elsewhere = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let (status, _) = login(&admin_elsewhere, &server, "admin", ADMIN_PASSWORD, None).await;
    assert_eq!(status, 200, "the real admin, from another address, signs in at once");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_last_untrusted_forwarded_hop_is_the_client() {
    let config = THROTTLE_CONFIG.replace("[auth]", "[http]\ntrusted_proxies = [\"127.0.0.1\"]\n\n[auth]");
    let server = Server::start_with_config(&with_sections(&config));
    let proxy = reqwest::Client::new();
    for _ in 0..3 {
        let (status, _) = login(&proxy, &server, "admin", "wrong-guess", Some("203.0.113.7")).await;
        assert_eq!(status, 401);
    }
    let (status, _) = login(&proxy, &server, "admin", "wrong-guess", Some("203.0.113.7")).await;
    assert_eq!(status, 429);
    // The attacker writes a different address first; the proxy appends the one it saw.
    let (status, _) =
        login(&proxy, &server, "admin", ADMIN_PASSWORD, Some("198.51.100.1, 203.0.113.7")).await;
    assert_eq!(status, 429, "a client-written hop does not change who the client is");
    let (status, _) = login(&proxy, &server, "admin", ADMIN_PASSWORD, Some("198.51.100.1")).await;
    assert_eq!(status, 200, "another client behind the same proxy is not affected");
}

#[tokio::test]
async fn logins_beyond_the_hashing_slots_get_429_instead_of_hashing() {
    let server = Server::start_with_config(&with_sections(
        "[auth]\nmax_concurrent_password_hashes = 1\npassword_hash_wait = \"1ms\"\n",
    ));
    let client = reqwest::Client::new();
    let attempts = (0..16).map(|index| {
        let (client, server) = (&client, &server);
        async move { login(client, server, &format!("nobody-{index}"), "wrong-guess", None).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let refused: Vec<_> = results.iter().filter(|(status, _)| *status == 429).collect();
    assert!(results.iter().any(|(status, _)| *status == 401), "one login was checked: {results:?}");
    assert!(!refused.is_empty(), "logins beyond the single slot must not hash: {results:?}");
    assert!(refused.iter().all(|(_, retry_after)| retry_after.is_some()), "{results:?}");
}

#[tokio::test]
async fn overlong_passwords_are_refused_before_hashing() {
    let server = Server::start();
    let client = reqwest::Client::new();
    let response = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": "x".repeat(4096) }))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["details"]["field"], "password");
}

// ---------------------------------------------------------------- finding 5: cross-site request forgery

/// A browser-like client signed in as `admin` (cookie jar), and an admin bearer token.
async fn signed_in_browser(server: &Server) -> reqwest::Client {
    let browser = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let (status, _) = login(&browser, server, "admin", ADMIN_PASSWORD, None).await;
    assert_eq!(status, 200);
    browser
}

/// `POST /api/v1/collectors/{id}/token` (it rotates the token) with the given browser headers.
async fn mint_with(
    client: &reqwest::Client,
    server: &Server,
    collector_id: &str,
    headers: &[(&str, &str)],
) -> u16 {
    let mut request = client
        .post(server.url(&format!("/api/v1/collectors/{collector_id}/token")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("mint").status().as_u16()
}

#[tokio::test]
async fn cookie_authenticated_writes_from_other_sites_are_refused() {
    let server =
        Server::start_with_config(&format!("external_url = \"https://linkmesh.example\"\n{FAST_CONFIG}"));
    let admin = support::Api::admin(&server).await;
    let collector_id = admin.create_collector("csrf-target").await;
    let minted = admin.mint(&collector_id).await;
    let browser = signed_in_browser(&server).await;

    for headers in [
        &[("origin", "http://evil.example")][..],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site"), ("origin", "http://sub.linkmesh.example")],
    ] {
        assert_eq!(mint_with(&browser, &server, &collector_id, headers).await, 403, "{headers:?}");
    }
    let collector = admin.collector(&collector_id).await;
    assert_eq!(collector["token"]["prefix"], minted["prefix"], "a refused request rotated nothing");

    let own_origin = server.base_url.clone();
    let own = [("origin", own_origin.as_str()), ("sec-fetch-site", "same-origin")];
    assert_eq!(mint_with(&browser, &server, &collector_id, &own).await, 201, "the UI itself");
    let external = [("origin", "https://linkmesh.example")];
    assert_eq!(mint_with(&browser, &server, &collector_id, &external).await, 201, "external_url's origin");
    assert_eq!(mint_with(&browser, &server, &collector_id, &[]).await, 201, "curl sends neither header");

    let bearer = reqwest::Client::new()
        .post(server.url(&format!("/api/v1/collectors/{collector_id}/token")))
        .bearer_auth(&admin.token)
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("mint");
    assert_eq!(bearer.status(), 201, "bearer tokens are never sent by a browser on its own");

    let forged_logout = browser
        .post(server.url("/api/v1/auth/logout"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("logout");
    assert_eq!(forged_logout.status(), 403);
    let forged_login = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(forged_login.status(), 403, "a forged login would sign the victim in as someone else");
}

// ---------------------------------------------------------------- finding 11: the smaller ones

#[tokio::test]
async fn after_login_only_paths_on_this_server_are_followed() {
    let server = Server::start();
    let page = |next: &'static str| {
        let url = server.url(&format!("/login?next={next}"));
        async move { reqwest::get(url).await.expect("login page").text().await.expect("html") }
    };
    for hostile in [
        "/%09/evil.example",
        "/%0A/evil.example",
        "//evil.example",
        "/%5Cevil.example",
        "https://evil.example",
    ] {
        let html = page(hostile).await;
        assert!(html.contains(r#"data-next="/collectors""#), "{hostile}: {html}");
    }
    let html = page("%2Fcollectors%2Fcol_1%3Ftab%3Devents").await;
    assert!(html.contains(r#"data-next="/collectors/col_1?tab=events""#), "{html}");

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    let (status, _) = login(&no_redirects, &server, "admin", ADMIN_PASSWORD, None).await;
    assert_eq!(status, 200);
    let signed_in = no_redirects.get(server.url("/login?next=/%09/evil.example")).send().await.expect("page");
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/collectors");
}

#[tokio::test]
async fn usernames_are_logged_escaped_so_they_cannot_forge_log_lines() {
    let server = Server::start();
    let forged =
        "mallory\n2026-01-01T00:00:00.000000Z  INFO linkmesh: login succeeded username=admin\u{1b}[8m";
    let (status, _) = login(&reqwest::Client::new(), &server, forged, "wrong-guess", None).await;
    assert_eq!(status, 401);
    assert!(
        support::wait_until(support::WAIT_DEADLINE, || async { server.log().contains("login rejected") })
            .await,
        "no rejection logged: {}",
        server.log()
    );
    let log = server.log();
    assert!(!log.contains("\n2026-01-01T00:00:00.000000Z"), "a forged line reached the log:\n{log}");
    assert!(!log.contains("admin\u{1b}[8m"), "a raw escape sequence reached the log:\n{log}");
    assert!(log.contains(r"mallory\u{a}2026"), "{log}");
}

#[tokio::test]
async fn unauthenticated_calls_cannot_write_collector_events() {
    let server = Server::start();
    let admin = support::Api::admin(&server).await;
    let collector_id = admin.create_collector("victim").await;
    let first_token = admin.mint_token(&collector_id).await;
    support::get_config(&server, &first_token, &support::poll_request("host-a", "")).await;
    admin.wait_for_event(&collector_id, "config_delivered", 1).await;

    // A stranger names the collector's host with a made-up token.
    let forged = support::connect_post(
        &server,
        "GetConfig",
        Some("lmct_forged-by-a-stranger"),
        &support::poll_request("host-a", ""),
    )
    .await;
    assert_eq!(forged.status(), 401);

    // The collector itself, still on its rotated-out token, is worth telling the operator about.
    admin.mint_token(&collector_id).await;
    let stale =
        support::connect_post(&server, "GetConfig", Some(&first_token), &support::poll_request("host-a", ""))
            .await;
    assert_eq!(stale.status(), 401);
    let types = admin.wait_for_event(&collector_id, "auth_failed", 1).await;
    assert_eq!(
        types
            .iter()
            .filter(|kind| kind.as_str() == "auth_failed" || kind.as_str() == "token_rotated")
            .collect::<Vec<_>>(),
        ["token_rotated", "auth_failed"],
        "the stranger's call left no event: {types:?}"
    );
    let events = admin.get(&format!("/api/v1/collectors/{collector_id}/events?limit=1000")).await;
    let auth_failed = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|event| event["type"] == "auth_failed")
        .expect("auth_failed")
        .clone();
    assert!(!auth_failed.to_string().contains("host-a"), "no caller text is stored: {auth_failed}");
    assert_eq!(auth_failed["data"]["count"], 1, "{auth_failed}");
}

#[tokio::test]
async fn names_with_bidi_or_invisible_characters_are_refused() {
    let server = Server::start();
    let admin = support::Api::admin(&server).await;
    for name in ["invoice\u{202E}fdp.exe", "web\u{200B}01", "\u{2066}prod\u{2069}"] {
        let (status, body) = admin
            .request(
                reqwest::Method::POST,
                "/api/v1/collectors",
                Some(json!({ "name": name, "mode": "alloy-remotecfg" })),
            )
            .await;
        assert_eq!(
            (status, body["error"]["details"]["field"].as_str()),
            (400, Some("name")),
            "{name:?}: {body}"
        );
    }
    let (status, body) = admin
        .request(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(
                json!({ "username": "ad\u{200D}min", "password": "long enough password", "role": "viewer" }),
            ),
        )
        .await;
    assert_eq!((status, body["error"]["details"]["field"].as_str()), (400, Some("username")), "{body}");
    admin.create_collector("café-東京-01").await;
}

#[tokio::test]
async fn service_account_token_labels_are_bounded() {
    let server = Server::start();
    let admin = support::Api::admin(&server).await;
    let (status, account) = admin
        .request(
            reqwest::Method::POST,
            "/api/v1/service-accounts",
            Some(json!({ "name": "ci", "role": "viewer" })),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    let path = format!("/api/v1/service-accounts/{}/tokens", account["id"].as_str().expect("id"));
    let (status, body) =
        admin.request(reqwest::Method::POST, &path, Some(json!({ "label": "x".repeat(900_000) }))).await;
    assert_eq!((status, body["error"]["details"]["field"].as_str()), (400, Some("label")), "{status}");
    let (status, body) =
        admin.request(reqwest::Method::POST, &path, Some(json!({ "label": "deploy bot" }))).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn an_overlong_bootstrap_password_stops_the_start_with_exit_1() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .args(["serve", "--http-addr", "127.0.0.1:0", "--data-dir"])
        .arg(temp.path().join("data"))
        .env("LINKMESH_ADMIN_PASSWORD", "p".repeat(5000))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let exited = support::wait_until(support::WAIT_DEADLINE, || {
        let done = child.try_wait().expect("wait").is_some();
        async move { done }
    })
    .await;
    if !exited {
        child.kill().expect("kill");
    }
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(exited, "the server started anyway");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("LINKMESH_ADMIN_PASSWORD is 5000 bytes long"), "{stderr}");
    assert!(!temp.path().join("data").join("raft").exists(), "nothing was created");
}

#[tokio::test]
async fn api_responses_are_never_cached_or_sniffed() {
    let server = Server::start();
    let admin = support::Api::admin(&server).await;
    let collector_id = admin.create_collector("headers").await;
    let client = reqwest::Client::new();
    let responses = [
        client.get(server.url("/api/v1/auth/me")).send().await.expect("me"),
        client.get(server.url("/api/v1/collectors")).bearer_auth(&admin.token).send().await.expect("list"),
        client
            .post(server.url(&format!("/api/v1/collectors/{collector_id}/token")))
            .bearer_auth(&admin.token)
            .send()
            .await
            .expect("mint"),
    ];
    for response in responses {
        let what = format!("{} {}", response.status(), response.url().path());
        assert_eq!(
            response.headers().get("cache-control").map(|v| v.to_str().expect("ascii")),
            Some("no-store"),
            "{what}"
        );
        assert_eq!(
            response.headers().get("x-content-type-options").map(|v| v.to_str().expect("ascii")),
            Some("nosniff"),
            "{what}"
        );
    }
}
