//! `GET /api/v1/collectors` at scale: filters (`selector`, `attr`, `status`, `mode`, `q`), every sort
//! key in both directions with natural name order, and cursor paging that stays exact while
//! collectors are created between pages.

mod support;

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};
use support::{connect_post, pb, Api, Server};

fn names(list: &Value) -> Vec<String> {
    list["collectors"]
        .as_array()
        .expect("collectors")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    list["collectors"]
        .as_array()
        .expect("collectors")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn create(api: &Api, name: &str, mode: &str, attributes: Value) -> String {
    let created = api
        .create("/api/v1/collectors", json!({ "name": name, "mode": mode, "attributes": attributes }))
        .await;
    created["id"].as_str().expect("id").to_owned()
}

async fn label(api: &Api, id: &str, labels: Value) {
    let (status, body) = api
        .request(Method::PATCH, &format!("/api/v1/collectors/{id}"), Some(json!({ "labels": labels })))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Every page of `query` (which must not hold limit or cursor) in order, `limit` at a time.
async fn walk(api: &Api, query: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/collectors?{query}&limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = api.get(&path).await;
        pages += 1;
        let batch = page["collectors"].as_array().expect("collectors").clone();
        assert!(batch.len() <= limit);
        items.extend(batch);
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (items, pages),
        }
    }
}

#[tokio::test]
async fn names_sort_naturally_and_every_key_sorts_both_ways_with_name_then_id_ties() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    for name in ["sim-10", "sim-2", "Sim-1", "sim-100", "alpha"] {
        create(&api, name, "alloy-remotecfg", json!({})).await;
    }
    create(&api, "otel-3", "opamp", json!({})).await;
    let listed = api.get("/api/v1/collectors").await;
    assert_eq!(names(&listed), ["alpha", "otel-3", "Sim-1", "sim-2", "sim-10", "sim-100"]);
    assert_eq!(listed["total"], 6);
    assert_eq!(listed["next"], Value::Null, "without limit the list is complete");
    let descending = api.get("/api/v1/collectors?sort=-name").await;
    assert_eq!(names(&descending), ["sim-100", "sim-10", "sim-2", "Sim-1", "otel-3", "alpha"]);

    // Mode: alloy-remotecfg < opamp; ties by natural name in both directions.
    let by_mode = api.get("/api/v1/collectors?sort=mode").await;
    assert_eq!(names(&by_mode), ["alpha", "Sim-1", "sim-2", "sim-10", "sim-100", "otel-3"]);
    let by_mode_desc = api.get("/api/v1/collectors?sort=-mode").await;
    assert_eq!(names(&by_mode_desc), ["otel-3", "alpha", "Sim-1", "sim-2", "sim-10", "sim-100"]);

    // created_at: creation order (the same millisecond ties by name).
    let created = api.get("/api/v1/collectors?sort=created_at").await;
    let created_desc = api.get("/api/v1/collectors?sort=-created_at").await;
    let stamps = |list: &Value| -> Vec<String> {
        list["collectors"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["created_at"].as_str().expect("at").to_owned())
            .collect()
    };
    let mut sorted = stamps(&created);
    sorted.sort();
    assert_eq!(stamps(&created), sorted);
    let mut reversed = stamps(&created_desc);
    reversed.sort();
    reversed.reverse();
    assert_eq!(stamps(&created_desc), reversed);

    // last_seen_at and status: one collector polls; never-seen ones come first ascending.
    let polled = ids(&api.get("/api/v1/collectors?q=sim-10&limit=1").await)[0].clone();
    let token = api.mint_token(&polled).await;
    support::get_config(&server, &token, &support::poll_request("host-10", "")).await;
    let seen = support::wait_until(support::WAIT_DEADLINE, || async {
        names(&api.get("/api/v1/collectors?sort=-last_seen_at&limit=1").await) == ["sim-10"]
    })
    .await;
    assert!(seen, "the polled collector leads -last_seen_at once its last_seen_at is replicated");
    let by_seen = api.get("/api/v1/collectors?sort=last_seen_at").await;
    assert_eq!(names(&by_seen), ["alpha", "otel-3", "Sim-1", "sim-2", "sim-100", "sim-10"]);
    let connected = support::wait_until(support::WAIT_DEADLINE, || async {
        names(&api.get("/api/v1/collectors?sort=-status&limit=1").await) == ["sim-10"]
    })
    .await;
    assert!(connected, "connected sorts after awaiting_connection");
    let by_status = api.get("/api/v1/collectors?sort=status").await;
    assert_eq!(names(&by_status), ["alpha", "otel-3", "Sim-1", "sim-2", "sim-100", "sim-10"]);
    let paged = api.get("/api/v1/collectors?status=connected&limit=10").await;
    assert_eq!((names(&paged), paged["total"].clone()), (vec!["sim-10".to_owned()], json!(1)));
    assert_eq!(paged["status_counts"]["awaiting_connection"], 5);
    assert_eq!(paged["status_counts"]["connected"], 1);

    // Every sort walks page by page to the same order as the complete list.
    for sort in ["name", "status", "last_seen_at", "created_at", "mode"] {
        for sort in [sort.to_owned(), format!("-{sort}")] {
            let whole = ids(&api.get(&format!("/api/v1/collectors?sort={sort}")).await);
            let (walked, pages) = walk(&api, &format!("sort={sort}"), 2).await;
            let walked: Vec<String> =
                walked.iter().map(|c| c["id"].as_str().expect("id").to_owned()).collect();
            assert_eq!(walked, whole, "sort={sort}");
            assert_eq!(pages, 3, "sort={sort}");
        }
    }
}

#[tokio::test]
async fn paging_sees_every_collector_once_while_collectors_are_created_between_pages() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let mut existing = HashSet::new();
    for index in 0..45 {
        existing.insert(create(&api, &format!("page-{index}"), "alloy-remotecfg", json!({})).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut created_meanwhile = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/collectors?limit=7&cursor={cursor}"),
            None => "/api/v1/collectors?limit=7".to_owned(),
        };
        let page = api.get(&path).await;
        seen.extend(ids(&page));
        // New collectors both before and after the walk's position.
        create(&api, &format!("page-{}", 1000 + created_meanwhile), "alloy-remotecfg", json!({})).await;
        create(&api, &format!("aaa-{created_meanwhile}"), "alloy-remotecfg", json!({})).await;
        created_meanwhile += 1;
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no collector twice");
    for id in &existing {
        assert!(unique.contains(id), "every collector that existed throughout is seen");
    }
    assert!(!seen.is_empty() && created_meanwhile >= 7);
    let names_seen: Vec<String> = {
        let whole = api.get("/api/v1/collectors").await;
        let by_id: std::collections::HashMap<String, String> = whole["collectors"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| (c["id"].as_str().expect("id").to_owned(), c["name"].as_str().expect("name").to_owned()))
            .collect();
        seen.iter().map(|id| by_id[id].clone()).collect()
    };
    assert!(names_seen.iter().all(|name| !name.starts_with("aaa-")), "created before the position: not seen");
    let first_page = api.get("/api/v1/collectors?limit=7").await;
    assert_eq!(first_page["total"], 45 + 2 * created_meanwhile);
}

/// Walks `query` in pages of `limit` from the start; between pages `meanwhile` changes the fleet.
async fn walk_while<F, Fut>(api: &Api, query: &str, limit: usize, mut meanwhile: F) -> Vec<(String, String)>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page_number in 0.. {
        let mut path = format!("/api/v1/collectors?{query}&limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = api.get(&path).await;
        seen.extend(ids(&page).into_iter().zip(names(&page)));
        meanwhile(page_number).await;
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    seen
}

#[tokio::test]
async fn name_order_pages_see_every_stable_collector_once_in_natural_order_while_others_come_and_go() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let mut stable = Vec::new();
    for index in 0..24 {
        stable.push((
            create(&api, &format!("n-{index}"), "alloy-remotecfg", json!({})).await,
            format!("n-{index}"),
        ));
    }
    let mut doomed = Vec::new();
    for index in 0..24 {
        doomed.push(create(&api, &format!("n-{index}-gone"), "alloy-remotecfg", json!({})).await);
    }
    let delete = |id: String| {
        let api = &api;
        async move {
            let (status, body) = api.request(Method::DELETE, &format!("/api/v1/collectors/{id}"), None).await;
            assert_eq!(status, 204, "{body}");
        }
    };
    // Ascending, descending, with a status filter (the index's statuses) and with a text filter that
    // matches nearly all (the filtered walk): between pages a collector goes on each side of the
    // position, one is born on each side, and one is deleted and its name taken by a new collector
    // (a rename as far as the list can tell).
    let queries = ["sort=name", "sort=-name", "status=awaiting_connection", "q=n-"];
    for (round, query) in queries.into_iter().enumerate() {
        let seen = walk_while(&api, query, 5, |page| {
            let (delete, api) = (&delete, &api);
            let victims = [doomed.pop(), doomed.pop()];
            async move {
                for victim in victims.into_iter().flatten() {
                    delete(victim).await;
                }
                for name in [format!("n-{page}-born-{round}"), format!("n-9{page}-born-{round}")] {
                    create(api, &name, "alloy-remotecfg", json!({})).await;
                }
                let renamed =
                    create(api, &format!("n-{page}-renamed-{round}"), "alloy-remotecfg", json!({})).await;
                delete(renamed).await;
                create(api, &format!("n-{page}-renamed-{round}"), "alloy-remotecfg", json!({})).await;
            }
        })
        .await;
        let unique: HashSet<&String> = seen.iter().map(|(id, _)| id).collect();
        assert_eq!(unique.len(), seen.len(), "{query}: no collector twice");
        let stable_seen: Vec<&(String, String)> = seen.iter().filter(|item| stable.contains(item)).collect();
        let mut expected: Vec<&(String, String)> = stable.iter().collect();
        if query == "sort=-name" {
            expected.reverse();
        }
        assert_eq!(stable_seen, expected, "{query}: every stable collector once, in natural order");
        assert!(
            seen.iter().any(|(_, name)| name.ends_with(&format!("-born-{round}"))),
            "{query}: a collector born ahead of the position is seen"
        );
    }
    let whole = api.get("/api/v1/collectors").await;
    let first_page = api.get("/api/v1/collectors?limit=3").await;
    let count = whole["collectors"].as_array().expect("list").len();
    assert_eq!(
        (first_page["total"].clone(), first_page["status_counts"]["awaiting_connection"].clone()),
        (json!(count), json!(count))
    );
    assert_eq!(names(&first_page), names(&whole)[..3]);
}

#[tokio::test]
async fn selector_attr_and_text_filters_find_labels_and_reported_attributes() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let prod_eu = create(&api, "prod-eu", "alloy-remotecfg", json!({})).await;
    let prod_us = create(&api, "prod-us", "opamp", json!({})).await;
    let reports_prod = create(&api, "reports-prod", "alloy-remotecfg", json!({"env": "prod"})).await;
    let staging = create(&api, "staging", "alloy-remotecfg", json!({})).await;
    label(&api, &prod_eu, json!({"env": "prod", "region": "eu"})).await;
    label(&api, &prod_us, json!({"env": "prod", "region": "us"})).await;
    label(&api, &staging, json!({"env": "staging"})).await;

    let list = |query: &str| {
        let path = format!("/api/v1/collectors?{query}");
        let api = &api;
        async move { names(&api.get(&path).await) }
    };
    assert_eq!(list("selector=env%3Dprod").await, ["prod-eu", "prod-us"], "labels only, not attributes");
    assert_eq!(list("selector=env%3Dprod%2Cregion!%3Deu").await, ["prod-us"]);
    assert_eq!(list("selector=region").await, ["prod-eu", "prod-us"]);
    assert_eq!(list("selector=!region").await, ["reports-prod", "staging"]);
    assert_eq!(list("selector=env%3Dprod&mode=opamp").await, ["prod-us"]);
    assert_eq!(list("attr=env%3Dprod").await, ["reports-prod"], "reported attributes only, not labels");
    assert_eq!(list("q=env%3Dprod").await, ["prod-eu", "prod-us", "reports-prod"]);
    assert_eq!(list("q=STAGING").await, ["staging"]);
    let page = api.get("/api/v1/collectors?selector=env%3Dprod&limit=1").await;
    assert_eq!((names(&page), page["total"].clone()), (vec!["prod-eu".to_owned()], json!(2)));

    // A reported local attribute (RegisterCollector's), repeated attr parameters all must match.
    let token = api.mint_token(&staging).await;
    let request = pb::RegisterCollectorRequest {
        id: "host-s".to_owned(),
        name: "host-s".to_owned(),
        local_attributes: [("tier".to_owned(), "edge".to_owned()), ("os".to_owned(), "linux".to_owned())]
            .into(),
        ..Default::default()
    };
    let response = connect_post(&server, "RegisterCollector", Some(&token), &request).await;
    assert_eq!(response.status(), 200);
    let found = support::wait_until(support::WAIT_DEADLINE, || async {
        list("attr=tier%3Dedge&attr=os%3Dlinux&limit=10").await == ["staging"]
    })
    .await;
    assert!(found, "local attributes are matched once replicated");
    assert!(list("attr=tier%3Dedge&attr=os%3Dwindows").await.is_empty());
    assert_eq!(list("q=tier%3Ded").await, ["staging"]);
    let _ = reports_prod;
}

#[tokio::test]
async fn bad_limit_cursor_selector_sort_and_attr_are_400_with_their_field() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    for index in 0..3 {
        create(&api, &format!("c-{index}"), "alloy-remotecfg", json!({})).await;
    }
    let by_name = api.get("/api/v1/collectors?limit=1").await;
    let name_cursor = by_name["next"].as_str().expect("next").to_owned();
    let cases = [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=eyJzb3J0IjoibmFtZSJ9", "cursor"),
        (&format!("limit=1&sort=-created_at&cursor={name_cursor}") as &str, "cursor"),
        ("selector=%3Dprod", "selector"),
        ("selector=env%20in%20(a", "selector"),
        ("attr=env", "attr"),
        ("sort=host", "sort"),
        ("status=sleeping", "status"),
        ("colour=red", "colour"),
    ];
    for (query, field) in cases {
        let (status, body) = api.request(Method::GET, &format!("/api/v1/collectors?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["details"]["field"], field, "{query}: {body}");
    }
    let last = api.get("/api/v1/collectors?limit=1000").await;
    assert_eq!((names(&last).len(), last["next"].clone()), (3, Value::Null));
    let rest = api.get(&format!("/api/v1/collectors?limit=5&cursor={name_cursor}")).await;
    assert_eq!(names(&rest), ["c-1", "c-2"]);
}

async fn next_event(stream: &mut reqwest::Response, buffer: &mut String, event: &str) -> Value {
    let deadline = tokio::time::Instant::now() + support::WAIT_DEADLINE;
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
async fn the_list_stream_follows_the_ids_on_screen_and_counts_the_filtered_list() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let watched = create(&api, "watched", "alloy-remotecfg", json!({})).await;
    let other = create(&api, "other", "alloy-remotecfg", json!({})).await;
    let (status, body) = api
        .request(Method::GET, &format!("/api/v1/stream/collectors?ids={}", ["x"; 1001].join(",")), None)
        .await;
    assert_eq!((status, body["error"]["details"]["field"].clone()), (400, json!("ids")));

    let mut stream = api
        .http
        .get(server.url(&format!("/api/v1/stream/collectors?q=e&ids={watched}")))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let mut buffer = String::new();
    let first = next_event(&mut stream, &mut buffer, "collectors").await;
    assert_eq!(ids(&first), [watched.as_str()], "only the collector on screen");
    assert_eq!((first["ids"].clone(), first["total"].clone()), (json!([watched.clone()]), json!(2)));

    // A change to a collector off screen is not sent; one on screen is, alone.
    label(&api, &other, json!({"seen": "no"})).await;
    label(&api, &watched, json!({"seen": "yes"})).await;
    let changed = next_event(&mut stream, &mut buffer, "collectors").await;
    assert_eq!(ids(&changed), [watched.as_str()]);
    assert_eq!(changed["collectors"][0]["labels"], json!({"seen": "yes"}));

    // A new matching collector changes the total only; a deleted one on screen is "removed".
    let newcomer = create(&api, "newcomer", "alloy-remotecfg", json!({})).await;
    loop {
        let message = next_event(&mut stream, &mut buffer, "collectors").await;
        assert!(!ids(&message).contains(&newcomer), "a collector off screen is never sent");
        if message["total"] == 3 {
            break;
        }
    }
    let (status, _) = api.request(Method::DELETE, &format!("/api/v1/collectors/{watched}"), None).await;
    assert_eq!(status, 204);
    loop {
        let message = next_event(&mut stream, &mut buffer, "collectors").await;
        if message["removed"] == json!([watched.clone()]) {
            assert_eq!((message["ids"].clone(), message["total"].clone()), (json!([]), json!(2)));
            break;
        }
    }

    // Without ids the stream follows the page its parameters select.
    let mut page = api
        .http
        .get(server.url("/api/v1/stream/collectors?sort=-name&limit=1"))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("stream");
    let mut page_buffer = String::new();
    let first = next_event(&mut page, &mut page_buffer, "collectors").await;
    assert_eq!((names(&first), first["total"].clone()), (vec!["other".to_owned()], json!(2)));
}
