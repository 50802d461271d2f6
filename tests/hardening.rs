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
        .args(["serve", "--http-addr", "127.0.0.1:0", "--rpc-addr", "127.0.0.1:0", "--data-dir"])
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

// ---------------------------------------------------------------- finding 9: slow bodies

/// Opens a raw connection and sends `head` (without the blank line) and the first bytes of a body.
async fn start_request(server: &Server, head: &str, body_start: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let addr = server.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(format!("{head}\r\nHost: {addr}\r\n\r\n").as_bytes()).await.expect("head");
    stream.write_all(body_start).await.expect("body start");
    stream
}

/// The status line of the response, then whether the server closed the connection after it.
async fn response_and_close(stream: &mut tokio::net::TcpStream) -> (String, bool) {
    use tokio::io::AsyncReadExt as _;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(support::WAIT_DEADLINE, read_all).await.unwrap_or(false);
    let text = String::from_utf8_lossy(&received).into_owned();
    (text.lines().next().unwrap_or_default().to_owned(), closed)
}

#[tokio::test]
async fn wrong_collector_tokens_are_refused_before_the_body_is_read() {
    let server = Server::start();
    for (path, content_type) in [
        ("/collector.v1.CollectorService/GetConfig", "application/proto"),
        ("/v1/metrics", "application/x-protobuf"),
    ] {
        for (authorization, framing) in [
            ("Authorization: Bearer lmct_wrong", "Content-Length: 1000000"),
            ("X-No-Token: 1", "Content-Length: 1000000"),
            ("Authorization: Bearer lmct_wrong", "Transfer-Encoding: chunked"),
        ] {
            let head = format!(
                "POST {path} HTTP/1.1\r\nContent-Type: {content_type}\r\n{authorization}\r\n{framing}"
            );
            let body_start: &[u8] = if framing.starts_with("Transfer") { b"400\r\nsome" } else { b"some" };
            let mut stream = start_request(&server, &head, body_start).await;
            let (status, closed) = response_and_close(&mut stream).await;
            assert!(status.starts_with("HTTP/1.1 401"), "{path} {authorization} {framing}: {status:?}");
            assert!(closed, "{path} {framing}: the unread body is not drained; the connection is closed");
        }
    }
}

#[tokio::test]
async fn a_trickled_body_is_cut_at_its_deadline() {
    use tokio::io::AsyncWriteExt as _;
    let server = Server::start_with_config(&with_sections("[http]\nbody_read_timeout = \"1s\"\n"));
    let admin = support::Api::admin(&server).await;
    let collector_id = admin.create_collector("trickler").await;
    let token = admin.mint_token(&collector_id).await;
    for (head, error_shape) in [
        ("POST /api/v1/auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100000".to_owned(), "\"error\""),
        (
            format!(
                "POST /collector.v1.CollectorService/GetConfig HTTP/1.1\r\nContent-Type: application/proto\r\n\
                 Authorization: Bearer {token}\r\nContent-Length: 100000"
            ),
            "\"code\":\"deadline_exceeded\"",
        ),
    ] {
        let stream = start_request(&server, &head, b"{").await;
        let (mut reader, mut writer) = stream.into_split();
        // One byte at a time for far longer than the deadline, or until the server hangs up.
        let trickle = tokio::spawn(async move {
            for _ in 0..1000 {
                if writer.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        let mut received = Vec::new();
        let read = tokio::time::timeout(support::WAIT_DEADLINE, async {
            use tokio::io::AsyncReadExt as _;
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buffer[..n]);
            }
        })
        .await;
        trickle.abort();
        let text = String::from_utf8_lossy(&received);
        assert!(read.is_ok(), "{head}: still open, got {text:?}");
        assert!(text.starts_with("HTTP/1.1 408"), "{head}: {text:?}");
        assert!(text.contains(error_shape), "{head}: the adapter's own error shape: {text:?}");
    }
}

#[tokio::test]
async fn bodies_in_flight_are_capped_per_client_address() {
    let server = Server::start_with_config(&with_sections(
        "[http]\nmax_body_reads_per_client = 2\nbody_read_timeout = \"60s\"\n",
    ));
    let stalled_login =
        "POST /api/v1/auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000";
    let mut stalled = Vec::new();
    for _ in 0..2 {
        stalled.push(start_request(&server, stalled_login, b"{\"user").await);
    }
    // A complete push with a wrong token is answered 401 at once, unless the address is over its cap.
    let probe = |client: reqwest::Client| {
        let url = server.url("/v1/metrics");
        async move {
            let response = client
                .post(url)
                .header("content-type", "application/x-protobuf")
                .bearer_auth("lmct_wrong")
                .body(vec![0u8; 16])
                .send()
                .await
                .expect("probe");
            (response.status().as_u16(), response.headers().contains_key("retry-after"))
        }
    };
    let capped = support::wait_until(support::WAIT_DEADLINE, || async {
        probe(client_from(Ipv4Addr::new(127, 0, 0, 1))).await == (429, true)
    })
    .await;
    assert!(capped, "a third body from the same address must be refused while two are stalled");
    assert_eq!(
        probe(client_from(Ipv4Addr::new(127, 0, 0, 2))).await.0,
        401,
        "other addresses are not capped"
    );
    drop(stalled);
    let released = support::wait_until(support::WAIT_DEADLINE, || async {
        probe(client_from(Ipv4Addr::new(127, 0, 0, 1))).await.0 == 401
    })
    .await;
    assert!(released, "slots come back when the stalled clients leave");
}

// ---------------------------------------------------------------- finding 10: live streams

#[tokio::test]
async fn live_streams_are_capped_per_principal_and_per_node() {
    let server =
        Server::start_with_config(&with_sections("[http]\nmax_streams_per_principal = 2\nmax_streams = 3\n"));
    let viewer = support::Api::with_role(&server, "viewer").await;
    let admin = support::Api::admin(&server).await;
    let collector_id = admin.create_collector("streamed").await;
    let open = |api: &support::Api, path: String| {
        let request = api.http.get(format!("{}{path}", api.base_url)).bearer_auth(&api.token);
        async move { request.send().await.expect("stream") }
    };
    let list = || "/api/v1/stream/collectors".to_owned();
    let one = || format!("/api/v1/stream/collectors/{collector_id}");

    let first = open(&viewer, list()).await;
    let second = open(&viewer, one()).await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let refused = open(&viewer, list()).await;
    assert_eq!(refused.status(), 429, "a principal's third stream");
    assert!(refused.headers().contains_key("retry-after"));

    let admins = open(&admin, list()).await;
    assert_eq!(admins.status(), 200, "another principal still gets one");
    assert_eq!(open(&admin, one()).await.status(), 429, "the node is full");

    drop(first);
    let reopened =
        support::wait_until(support::WAIT_DEADLINE, || async { open(&viewer, list()).await.status() == 200 })
            .await;
    assert!(reopened, "a closed stream gives its place back");
    drop((second, admins));
}

#[tokio::test]
async fn list_streams_share_one_sample_and_still_see_changes() {
    let server = Server::start();
    let admin = support::Api::admin(&server).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let response = admin
            .http
            .get(server.url("/api/v1/stream/collectors"))
            .bearer_auth(&admin.token)
            .send()
            .await
            .expect("stream");
        assert_eq!(response.status(), 200);
        streams.push(response);
    }
    admin.create_collector("appears-live").await;
    for stream in &mut streams {
        let mut seen = String::new();
        let found = tokio::time::timeout(support::WAIT_DEADLINE, async {
            while let Ok(Some(chunk)) = stream.chunk().await {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains("appears-live") {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        assert!(found, "every stream sees the new collector: {seen}");
    }
}
