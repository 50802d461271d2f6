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
