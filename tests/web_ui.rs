//! The web UI's server side over real HTTP: which pages are public, asset caching, the live streams
//! (SSE) and the users API behind Settings. The browser flow itself is `e2e/ui.e2e.test.js`.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

#[tokio::test]
async fn only_login_and_assets_are_public_and_pages_redirect_to_login() {
    let server = Server::start();
    let http = no_redirects();
    for path in [
        "/",
        "/collectors",
        "/collectors/new",
        "/collectors/enroll",
        "/collectors/col_x",
        "/pipelines",
        "/settings",
        "/cluster",
        "/rollouts",
        "/fleet",
        "/api-reference",
    ] {
        let response = http.get(server.url(path)).send().await.expect("get");
        assert_eq!(response.status(), 303, "{path}");
        let location = response.headers()["location"].to_str().expect("location");
        assert!(location.starts_with("/login?next="), "{path} -> {location}");
    }
    let login = http.get(server.url("/login")).send().await.expect("login page");
    assert_eq!(login.status(), 200);
    let csp = login.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = login.text().await.expect("html");
    let css = html
        .split("href=\"")
        .find_map(|rest| rest.split('"').next().filter(|href| href.ends_with("/app.css")));
    let css = css.expect("stylesheet link").to_owned();

    let asset = http.get(server.url(&css)).send().await.expect("asset");
    assert_eq!(asset.status(), 200);
    assert!(asset.headers()["cache-control"].to_str().expect("cache").contains("immutable"));
    assert!(asset.headers()["content-type"].to_str().expect("type").starts_with("text/css"));
    let stale = http.get(server.url("/assets/000000000000/app.css")).send().await.expect("stale asset");
    assert_eq!(stale.headers()["cache-control"], "no-cache");
    assert_eq!(http.get(server.url("/assets/x/nope.js")).send().await.expect("missing").status(), 404);
}

#[tokio::test]
async fn a_session_opens_the_pages_and_a_bearer_token_works_too() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("edge-1").await;
    let http = no_redirects();
    let page = http
        .get(server.url(&format!("/collectors/{collector_id}")))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("collector page");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.expect("html");
    assert!(html.contains("edge-1") && html.contains("awaiting_connection"));
    assert!(!html.contains("<script>"), "no inline script");
    let cluster =
        http.get(server.url("/cluster")).bearer_auth(&api.token).send().await.expect("cluster page");
    assert_eq!(cluster.status(), 200);
    let html = cluster.text().await.expect("cluster html");
    assert!(html.contains("data-page=\"cluster\"") && html.contains("id=\"members-table\""), "{html}");
    assert!(html.contains("href=\"/cluster\" aria-current=\"page\""), "the Cluster tab is current");
    let missing =
        http.get(server.url("/collectors/col_nope")).bearer_auth(&api.token).send().await.expect("missing");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn an_opamp_collectors_overview_has_the_agent_panel_and_an_alloy_collectors_does_not() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let http = no_redirects();
    let page = |collector_id: String| {
        let (http, url) = (http.clone(), server.url(&format!("/collectors/{collector_id}")));
        let token = api.token.clone();
        async move {
            let response = http.get(url).bearer_auth(token).send().await.expect("collector page");
            assert_eq!(response.status(), 200);
            response.text().await.expect("html")
        }
    };
    let opamp = api.create("/api/v1/collectors", json!({ "name": "otel-1", "mode": "opamp" })).await;
    let html = page(opamp["id"].as_str().expect("id").to_owned()).await;
    assert!(
        html.contains(r#"<section class="panel agent-panel" id="agent" aria-labelledby="agent-title" data-testid="agent-panel">"#),
        "{html}"
    );
    assert!(html.contains(r#"<h2 class="panel-title" id="agent-title">Agent</h2>"#));
    assert!(html.contains(r#"id="agent-health" aria-live="polite""#), "health changes are announced");
    for part in [r#"id="agent-description""#, r#"id="agent-capabilities""#, r#"id="agent-components-counts""#]
    {
        assert!(html.contains(part), "the frame keeps a place for {part}");
    }
    assert!(
        html.contains(r#"<details class="agent-components" id="agent-components">"#),
        "the components, collapsed"
    );
    assert!(
        html.contains("What the agent reports its collector runs"),
        "the effective config, as OpAMP reports it"
    );

    let alloy = api.create_collector("edge-1").await;
    let html = page(alloy).await;
    assert!(!html.contains("agent-panel") && !html.contains("id=\"agent-"), "no Agent panel for Alloy");
    assert!(html.contains("What the collector reports it runs (Alloy 1.12 and later)."));
}

#[tokio::test]
async fn unknown_pages_get_the_html_404_page_and_unknown_api_paths_stay_json() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let http = no_redirects();
    let page = http
        .get(server.url("/collectors/col_1/nope"))
        .header("accept", "text/html,application/xhtml+xml")
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("unknown page");
    assert_eq!(page.status(), 404);
    assert!(page.headers()["content-security-policy"].to_str().expect("csp").contains("script-src 'self'"));
    let html = page.text().await.expect("html");
    assert!(html.contains("Page not found") && html.contains("data-testid=\"whoami\""), "{html}");
    assert!(html.contains("/collectors/col_1/nope"), "names the path");
    let api_path = http
        .get(server.url("/api/v1/nope"))
        .header("accept", "text/html")
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("unknown api path");
    assert_eq!(api_path.status(), 404);
    let body: serde_json::Value = api_path.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "not_found");
    let machine = http.get(server.url("/nope")).send().await.expect("no accept");
    assert_eq!(machine.status(), 404);
    assert!(machine.text().await.expect("body").is_empty(), "a client not asking for html gets no page");
}

/// Reads SSE messages until one of `event` arrives; returns its data.
async fn next_event(stream: &mut reqwest::Response, buffer: &mut String, event: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT_DEADLINE;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            let mut name = "message";
            let mut data = String::new();
            for line in message.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = value;
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            if name == event {
                return serde_json::from_str(&data).expect("event data is JSON");
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {event} event before the deadline"))
            .expect("chunk")
            .unwrap_or_else(|| panic!("stream ended before a {event} event"));
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn collector_streams_need_credentials_and_send_changes() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(server.url("/api/v1/stream/collectors")).send().await.expect("get").status(), 401);

    let collector_id = api.create_collector("edge-1").await;
    let response = http
        .get(server.url("/api/v1/stream/collectors"))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().expect("type").starts_with("text/event-stream"));
    let mut list = response;
    let mut buffer = String::new();
    let first = next_event(&mut list, &mut buffer, "collectors").await;
    assert_eq!(first["collectors"][0]["status"], "awaiting_connection");

    let mut one = http
        .get(server.url(&format!("/api/v1/stream/collectors/{collector_id}")))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("collector stream");
    let mut one_buffer = String::new();
    let collector = next_event(&mut one, &mut one_buffer, "collector").await;
    assert_eq!(collector["name"], "edge-1");
    let events = next_event(&mut one, &mut one_buffer, "events").await;
    assert_eq!(events["events"][0]["type"], "collector_created");

    let token = api.mint_token(&collector_id).await;
    register(&server, &token, "host-a").await;
    get_config(&server, &token, &poll_request("host-a", "")).await;
    let changed = next_event(&mut list, &mut buffer, "collectors").await;
    let changed = if changed["collectors"][0]["status"] == "connected" {
        changed
    } else {
        next_event(&mut list, &mut buffer, "collectors").await
    };
    assert_eq!(changed["collectors"][0]["status"], "connected");
    let mut seen = Vec::new();
    while !seen.iter().any(|t| t == "remotecfg_registered") {
        let batch = next_event(&mut one, &mut one_buffer, "events").await;
        seen.extend(
            batch["events"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| e["type"].to_string().replace('"', "")),
        );
    }

    let (status, _) =
        api.request(reqwest::Method::DELETE, &format!("/api/v1/collectors/{collector_id}"), None).await;
    assert_eq!(status, 204);
    next_event(&mut one, &mut one_buffer, "gone").await;
}

#[tokio::test]
async fn signing_out_ends_the_stream() {
    let server = Server::start();
    let cookies = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let login = cookies
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let mut stream = cookies.get(server.url("/api/v1/stream/collectors")).send().await.expect("stream");
    let mut buffer = String::new();
    next_event(&mut stream, &mut buffer, "collectors").await;
    let logout = cookies.post(server.url("/api/v1/auth/logout")).send().await.expect("logout");
    assert_eq!(logout.status(), 204);
    next_event(&mut stream, &mut buffer, "signed_out").await;
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.expect("stream ends");
    assert!(!matches!(ended, Ok(Some(_))), "no more data after signed_out");
}

#[tokio::test]
async fn admins_add_users_who_can_then_sign_in_with_their_role() {
    let server = Server::start();
    let admin = Api::admin(&server).await;
    let (status, body) = admin
        .request(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({ "username": "dana", "password": "short", "role": "viewer" })),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"]["field"], "password");
    let (status, body) = admin
        .request(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({ "username": "dana", "password": "a-long-enough-password", "role": "viewer" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["role"], "viewer");
    let (status, _) = admin
        .request(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({ "username": "dana", "password": "another-long-password", "role": "admin" })),
        )
        .await;
    assert_eq!(status, 409);
    let users = admin.get("/api/v1/users").await;
    let names: Vec<&str> =
        users["users"].as_array().expect("users").iter().filter_map(|u| u["username"].as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"admin") && names.contains(&"dana"));

    let dana = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let login = dana
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "dana", "password": "a-long-enough-password" }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    assert_eq!(dana.get(server.url("/api/v1/users")).send().await.expect("users").status(), 403);
    let create = dana
        .post(server.url("/api/v1/collectors"))
        .json(&json!({ "name": "nope", "mode": "opamp" }))
        .send()
        .await
        .expect("create");
    assert_eq!(create.status(), 403);
    assert_eq!(dana.get(server.url("/collectors")).send().await.expect("page").status(), 200);

    let viewer = Api::with_role(&server, "viewer").await;
    let (status, _) = viewer.request(reqwest::Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn operators_get_the_prune_dialog_viewers_do_not() {
    let server = Server::start();
    let http = no_redirects();
    let page = |token: String| {
        let (http, url) = (http.clone(), server.url("/collectors"));
        async move {
            let response = http.get(url).bearer_auth(token).send().await.expect("collectors page");
            assert_eq!(response.status(), 200);
            response.text().await.expect("html")
        }
    };
    let operator = Api::with_role(&server, "operator").await;
    let html = page(operator.token.clone()).await;
    assert!(html.contains(r#"id="prune-open""#), "the Prune… action");
    assert!(html.contains(r#"<dialog id="prune-dialog""#), "its dialog");
    assert!(
        html.contains(r#"name="inactive_for" type="text" class="mono" value="7d""#),
        "asks how long inactive, 7 days by default"
    );
    assert!(html.contains(r#"data-field="inactive_for""#), "the server's field error lands next to it");
    assert!(html.contains(r#"id="prune-use-selector""#), "may use the list's label filter");
    assert!(
        html.contains(r#"id="prune-confirm" hidden"#),
        "no deletion before the dry run has shown what would go"
    );
    let script = html
        .split("src=\"")
        .find_map(|rest| rest.split('"').next().filter(|src| src.ends_with("/app.js")))
        .expect("app.js")
        .to_owned();
    let js = http.get(server.url(&script)).send().await.expect("app.js").text().await.expect("js");
    assert!(
        js.contains("'/api/v1/collectors:prune', pruneBody(true)"),
        "the dialog's first call is a dry run"
    );

    let viewer = Api::with_role(&server, "viewer").await;
    let html = page(viewer.token.clone()).await;
    assert!(!html.contains("prune-open") && !html.contains("prune-dialog"), "viewers cannot prune");
}

#[tokio::test]
async fn operators_get_the_enrollment_token_form_and_viewers_only_the_list() {
    let server = Server::start();
    let http = no_redirects();
    let page = |path: &'static str, token: String| {
        let (http, url) = (http.clone(), server.url(path));
        async move {
            let response = http.get(url).bearer_auth(token).send().await.expect("page");
            assert_eq!(response.status(), 200, "{path}");
            response.text().await.expect("html")
        }
    };
    let operator = Api::with_role(&server, "operator").await;
    // Enrollment tokens need the cluster's feature level 4, which a single node raises after start.
    let ready = wait_until(Duration::from_secs(30), || async {
        operator.get("/api/v1/cluster").await["feature_level"] == 4
    })
    .await;
    assert!(ready, "the feature level for enrollment tokens");
    let created = operator
        .create("/api/v1/enrollment-tokens", json!({ "ttl_seconds": 3600, "labels": { "env": "prod" } }))
        .await;
    let token = created["token"].as_str().expect("token").to_owned();
    let html = page("/collectors/enroll", operator.token.clone()).await;
    assert!(html.contains(r#"data-page="enroll""#), "the script's enrollment page");
    assert!(html.contains("<h1>Enroll OpenTelemetry Collectors</h1>"));
    assert!(html.contains(r#"<form id="enroll-token-form""#), "the create form");
    assert!(
        html.contains(r#"<option value="86400" selected>1 day</option>"#),
        "a day, the API's default TTL"
    );
    assert!(html.contains(r#"<option value="3600">1 hour</option>"#) && html.contains(">30 days</option>"));
    for field in ["ttl_seconds", "uses", "labels"] {
        assert!(
            html.contains(&format!(r#"data-field="{field}""#)),
            "the server's {field} error lands next to it"
        );
    }
    assert!(html.contains(r#"id="enroll-created" hidden"#), "no token before one is created");
    assert!(html.contains(r#"id="supervisor-config-box" hidden"#), "nor a supervisor.yaml");
    assert!(
        html.contains("sudo opampsupervisor --config /etc/otelcol-supervisor/supervisor.yaml"),
        "the run step"
    );
    assert!(html.contains("otelcol-contrib_${OTEL_VERSION}_linux_$ARCH.tar.gz"), "the install step");
    assert!(html.contains(r#"data-can-manage="true""#) && html.contains(r#"<dialog id="revoke-dialog""#));
    assert!(!html.contains(&token), "a token is shown only by the answer that created it");
    let list = page("/collectors", operator.token.clone()).await;
    assert!(
        list.contains(r#"href="/collectors/enroll" data-testid="enroll-collectors""#),
        "linked from the list"
    );
    let add = page("/collectors/new", operator.token.clone()).await;
    assert!(add.contains(r#"id="opamp-enroll" role="note" hidden"#), "the enrollment path, shown for opamp");

    let viewer = Api::with_role(&server, "viewer").await;
    let html = page("/collectors/enroll", viewer.token.clone()).await;
    assert!(html.contains(r#"id="enrollment-tokens-table""#) && html.contains(r#"data-can-manage="false""#));
    assert!(html.contains("cannot create or revoke enrollment tokens"), "says why there is no form");
    assert!(!html.contains("enroll-token-form") && !html.contains("revoke-dialog"), "no create or revoke");
    let list = page("/collectors", viewer.token.clone()).await;
    assert!(!list.contains("enroll-collectors"), "no link where nothing can be done");
}

/// A collector's page as `token` sees it (200 expected).
async fn collector_page(http: &reqwest::Client, server: &Server, collector_id: &str, token: &str) -> String {
    let url = server.url(&format!("/collectors/{collector_id}"));
    let response = http.get(url).bearer_auth(token).send().await.expect("collector page");
    assert_eq!(response.status(), 200);
    response.text().await.expect("html")
}

/// An `opamp` collector's Agent panel carries the restart action for roles that manage collectors:
/// a button the script shows once the agent reports it accepts restart commands, and a dialog that
/// says what a restart does before anything is sent. The page's own request (cookie, same origin)
/// is what the API records as `restart_requested`; a cross-site one and a viewer's are refused.
#[tokio::test]
async fn operators_restart_an_opamp_collector_from_its_agent_panel_after_a_dialog() {
    let server = Server::start();
    let http = no_redirects();
    let operator = Api::with_role(&server, "operator").await;
    wait_for_level(&operator, 4).await; // restart requests are recorded from feature level 4
    let opamp = operator.create("/api/v1/collectors", json!({ "name": "otel-1", "mode": "opamp" })).await;
    let opamp_id = opamp["id"].as_str().expect("id").to_owned();

    let html = collector_page(&http, &server, &opamp_id, &operator.token).await;
    assert!(
        html.contains(
            r#"<button type="button" class="btn btn-small" data-action="restart-collector" id="agent-restart" hidden>Restart collector</button>"#
        ),
        "in the Agent panel, hidden until the agent is known to accept restart commands: {html}"
    );
    assert!(html.contains(r#"<dialog id="restart-dialog""#), "asked in a dialog");
    assert!(
        html.contains("restarts the collector process on its host: the collector's pipelines stop briefly"),
        "the dialog says what a restart does"
    );
    assert!(html.contains(r#"id="restart-confirm">Restart collector</button>"#));
    assert!(html.contains(r#"id="agent-restart-status" role="status""#), "where the outcome is shown");
    let script = html
        .split("src=\"")
        .find_map(|rest| rest.split('"').next().filter(|src| src.ends_with("/app.js")))
        .expect("app.js")
        .to_owned();
    let js = http.get(server.url(&script)).send().await.expect("app.js").text().await.expect("js");
    assert!(js.contains("agent.capabilities.includes('accepts restart command')"), "shown by capability");
    assert!(js.contains("api('POST', `${base}/restart`)"), "sent from the dialog's confirmation");

    let viewer = Api::with_role(&server, "viewer").await;
    let html = collector_page(&http, &server, &opamp_id, &viewer.token).await;
    assert!(html.contains(r#"data-testid="agent-panel""#), "viewers see the Agent panel");
    assert!(html.contains(r#"id="agent-restart-status""#), "and how a restart went");
    assert!(!html.contains("agent-restart\"") && !html.contains("restart-dialog"), "but cannot restart");
    let (status, _) =
        viewer.request(reqwest::Method::POST, &format!("/api/v1/collectors/{opamp_id}/restart"), None).await;
    assert_eq!(status, 403);

    let alloy = operator.create_collector("edge-1").await;
    let html = collector_page(&http, &server, &alloy, &operator.token).await;
    assert!(!html.contains("restart-dialog"), "Alloy collectors are not restarted over OpAMP");

    // The page's request: the session cookie, from linkmesh's own origin.
    let browser = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let login = browser
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let restart = |collector_id: &str, fetch_site: &str| {
        browser
            .post(server.url(&format!("/api/v1/collectors/{collector_id}/restart")))
            .header("origin", server.base_url.trim_end_matches('/'))
            .header("sec-fetch-site", fetch_site)
            .header("accept", "application/json")
            .send()
    };
    let forged = restart(&opamp_id, "cross-site").await.expect("cross-site restart");
    assert_eq!(forged.status(), 403, "a cross-site request is refused");
    let sent = restart(&opamp_id, "same-origin").await.expect("restart");
    assert_eq!(sent.status(), 202);
    let body: serde_json::Value = sent.json().await.expect("json");
    assert_eq!(body["restart_requested"], opamp_id.as_str());
    let types = operator.wait_for_event(&opamp_id, "restart_requested", 1).await;
    assert_eq!(
        types.iter().filter(|kind| *kind == "restart_requested").count(),
        1,
        "only the page's own request was recorded: {types:?}"
    );
    let refused = restart(&alloy, "same-origin").await.expect("restart an Alloy collector");
    assert_eq!(refused.status(), 409, "restart commands go to OpAMP agents only");
}

/// An `opamp` collector added by hand gets its own token on its page, in the OpenTelemetry Collector
/// steps: the mint button for roles that may mint, and places for the token and the ready-to-paste
/// `supervisor.yaml` the mint answer carries (filled by the script, never rendered with a token).
#[tokio::test]
async fn an_opamp_collectors_page_mints_its_token_with_the_supervisor_config() {
    let server = Server::start();
    let http = no_redirects();
    let operator = Api::with_role(&server, "operator").await;
    let opamp = operator.create("/api/v1/collectors", json!({ "name": "otel-1", "mode": "opamp" })).await;
    let opamp_id = opamp["id"].as_str().expect("id").to_owned();
    let html = collector_page(&http, &server, &opamp_id, &operator.token).await;
    let otel_tab = html.split(r#"id="enroll-otel""#).nth(1).expect("the OpenTelemetry Collector steps");
    assert!(otel_tab.contains(r#"data-action="mint-token" id="mint-button""#), "minted here: {otel_tab}");
    assert!(otel_tab.contains(r#"id="minted" data-config-file="supervisor.yaml" hidden"#));
    assert!(otel_tab.contains(r#"id="supervisor-config-box" hidden"#), "no supervisor.yaml before a mint");
    assert!(otel_tab.contains(r#"<code id="supervisor-config"></code>"#));
    assert!(otel_tab.contains("Mint the token to see the ready-to-paste supervisor.yaml."));
    assert_eq!(html.matches(r#"id="minted""#).count(), 1, "one place for the token");
    assert_eq!(html.matches(r#"id="mint-button""#).count(), 1);
    let script = html
        .split("src=\"")
        .find_map(|rest| rest.split('"').next().filter(|src| src.ends_with("/app.js")))
        .expect("app.js")
        .to_owned();
    let js = http.get(server.url(&script)).send().await.expect("app.js").text().await.expect("js");
    assert!(js.contains("$('#supervisor-config').textContent = minted.supervisor_config;"));

    let alloy = operator.create_collector("edge-1").await;
    let html = collector_page(&http, &server, &alloy, &operator.token).await;
    assert!(html.contains(r#"id="minted" data-config-file="config.alloy" hidden"#), "Alloy's token");
    assert!(!html.contains("supervisor-config"), "and no supervisor.yaml for Alloy");

    let viewer = Api::with_role(&server, "viewer").await;
    let html = collector_page(&http, &server, &opamp_id, &viewer.token).await;
    assert!(!html.contains("mint-button"), "viewers cannot mint");
    assert!(html.contains("Your role cannot mint tokens"));
}
