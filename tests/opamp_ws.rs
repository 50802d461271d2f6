//! OpAMP over WebSocket on `/v1/opamp` (issue 18), against an independent agent: `tools/opampwsclient`,
//! built from the published `github.com/open-telemetry/opamp-go` module (the library the
//! opampsupervisor and the collector's opamp extension are written with). A real server, a real
//! WebSocket; the agent's events arrive as JSON lines on its stdout.

mod support;

use std::time::Duration;

use serde_json::json;
use support::opamp_agent::{configure_something_to_run, Agent};
use support::{Api, Server, FAST_CONFIG, QUIET_OPAMP_CONFIG};

/// How long a test waits for a frame from the server (a deadline, not a measurement).
const FRAME_DEADLINE: Duration = Duration::from_secs(60);

async fn opamp_collector(api: &Api, name: &str) -> (String, String) {
    let collector = api.create("/api/v1/collectors", json!({ "name": name, "mode": "opamp" })).await;
    let collector_id = collector["id"].as_str().expect("id").to_owned();
    let token = api.mint_token(&collector_id).await;
    (collector_id, token)
}

/// The agent connects, is offered its config in the answer to its first message and acknowledges
/// it; then, with heartbeats off (and the server offering an hour), it sends nothing more — so the
/// changed config that reaches it was pushed by the server. Its goodbye makes the collector offline.
#[tokio::test]
async fn an_opamp_go_agent_over_websocket_gets_its_config_and_every_change_pushed() {
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let api = Api::admin(&server).await;
    let (collector_id, token) = opamp_collector(&api, "otel-ws").await;
    configure_something_to_run(&api, &collector_id).await;

    let agent = Agent::start(&server.base_url, &token, &["-configs", "3", "-heartbeat", "0s"]);
    agent.next("connected");
    let first = agent.next("config");
    let body = first["body"].as_str().expect("body");
    assert!(body.contains("receivers:") && body.contains("otlphttp"), "{body}");
    api.wait_for_event(&collector_id, "config_applied", 1).await;
    let collector = api.wait_for_status(&collector_id, "connected").await;
    assert_eq!(collector["local_attributes"]["service.name"], "opampwsclient", "{collector}");

    // The agent is silent now: the change reaches it only if the server pushes it.
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "more", "type": "otlp"})).await;
    let second = agent.next_without("config", "connected");
    assert_ne!(second["hash"], first["hash"]);
    assert!(second["body"].as_str().expect("body").contains("more"), "{second}");
    api.wait_for_event(&collector_id, "config_applied", 2).await;
    api.wait_for_event(&collector_id, "config_delivered", 2).await;

    // Again, to see that a push does not depend on anything the first one left behind.
    api.create(&format!("{base}/sources"), json!({"name": "third", "type": "otlp"})).await;
    let third = agent.next_without("config", "connected");
    assert!(third["body"].as_str().expect("body").contains("third"), "{third}");
    agent.next("stopped");
    api.wait_for_status(&collector_id, "offline").await;
}

/// A token that stops being current closes the connections made with it at once (no waiting for
/// the agent's next message), and the agent's reconnection is refused with 401.
#[tokio::test]
async fn rotating_the_token_closes_the_connection_and_the_old_token_is_refused() {
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let api = Api::admin(&server).await;
    let (collector_id, token) = opamp_collector(&api, "otel-rotated").await;
    configure_something_to_run(&api, &collector_id).await;

    let agent = Agent::start(
        &server.base_url,
        &token,
        &["-configs", "100", "-heartbeat", "0s", "-connect-failures", "2"],
    );
    agent.next("connected");
    agent.next("config");
    api.wait_for_event(&collector_id, "config_applied", 1).await;

    api.mint_token(&collector_id).await;
    agent.next_error_log("status=401");
    agent.next("stopped");
    assert_eq!(agent.stop(), Some(3), "it stopped after its connections were refused");
}

#[tokio::test]
async fn an_agent_with_an_unknown_token_is_refused_before_the_upgrade() {
    let server = Server::start_with_config(FAST_CONFIG);
    // opamp-go reports a refused upgrade twice, around the log line with its status: stopping after
    // the second keeps the log line before the agent's "stopped".
    let agent = Agent::start(&server.base_url, "lmct_not_a_token", &["-connect-failures", "2"]);
    agent.next_error_log("status=401");
    agent.next("stopped");
    assert_eq!(agent.stop(), Some(3));
}

/// The server offers its heartbeat interval (1 s here) and the agent keeps it: it stays `connected`
/// with an expected interval of 1 s, though it was started with opamp-go's usual 30 s. Killed (no
/// goodbye, the connection just drops), it turns `stale` once three heartbeats are missed — not after
/// the minutes a learned 30 s cadence or the 60 s default would take.
#[tokio::test]
async fn an_agent_keeps_the_offered_heartbeat_and_turns_stale_when_it_stops_without_a_goodbye() {
    let server = Server::start_with_config(
        "activity_flush_interval = \"30ms\"\n[collectors]\ntick_interval = \"50ms\"\nopamp_heartbeat_interval = \"1s\"\n",
    );
    let api = Api::admin(&server).await;
    let (collector_id, token) = opamp_collector(&api, "otel-heartbeat").await;
    configure_something_to_run(&api, &collector_id).await;

    let agent = Agent::start(&server.base_url, &token, &["-configs", "100", "-heartbeat", "30s"]);
    agent.next("config");
    api.wait_for_status(&collector_id, "connected").await;
    let status_changes = async || {
        let types = api.event_types(&collector_id).await;
        types.iter().filter(|kind| *kind == "status_changed").count()
    };
    api.wait_for_event(&collector_id, "status_changed", 1).await; // awaiting_connection → connected
    let before = status_changes().await;
    // Six offered intervals: an agent still at 30 s would have been called stale after three.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["status"], "connected", "{collector}");
    assert_eq!(status_changes().await, before, "no status change while it kept the heartbeat");

    drop(agent); // SIGKILL: no agent_disconnect, no close frame
    let stale = api.wait_for_status(&collector_id, "stale").await;
    assert_eq!(stale["status"], "stale");
}

/// The heartbeat interval goes out in `connection_settings.opamp` once per stream — in the answer to
/// the agent's first message, not to the next (an agent reporting connection settings statuses would
/// otherwise answer every offer with a message, and loop) — and never to an agent that accepts OpAMP
/// connection settings (it would reconnect with the offer's empty headers).
#[tokio::test]
async fn the_heartbeat_interval_is_offered_once_per_stream_and_only_to_agents_it_cannot_disconnect() {
    use linkmesh::proto::opamp::v1 as opamp;
    use prost::Message;
    const REPORTS_STATUS: u64 = 0x1;
    const ACCEPTS_OPAMP_SETTINGS: u64 = 0x100;
    const REPORTS_HEARTBEAT: u64 = 0x2000;
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let (_collector_id, token) = opamp_collector(&api, "otel-offers").await;
    let exchange = async |socket: &mut RawWebSocket, uid: u8, sequence_num: u64, capabilities: u64| {
        let message = opamp::AgentToServer {
            instance_uid: vec![uid; 16],
            sequence_num,
            capabilities,
            agent_description: (sequence_num == 0).then(opamp::AgentDescription::default),
            ..Default::default()
        };
        let frame = linkmesh::opamp::frame::encode(&message);
        socket.send_frame(0x2, frame.len(), &frame).await;
        let (_, reply) = socket.read_frame().await;
        let reply = opamp::ServerToAgent::decode(&reply[1..]).expect("a ServerToAgent");
        reply
            .connection_settings
            .and_then(|offers| offers.opamp)
            .map(|opamp| opamp.heartbeat_interval_seconds)
    };
    // One connection is one agent: each uid below speaks on a connection of its own.
    let mut first = RawWebSocket::connect(&server, &token).await;
    assert_eq!(
        exchange(&mut first, 1, 0, REPORTS_STATUS | REPORTS_HEARTBEAT).await,
        Some(30),
        "the default, 30 s"
    );
    assert_eq!(exchange(&mut first, 1, 1, REPORTS_STATUS | REPORTS_HEARTBEAT).await, None, "once");
    assert_eq!(exchange(&mut first, 1, 2, REPORTS_STATUS).await, None, "not to an agent without heartbeats");
    let mut second = RawWebSocket::connect(&server, &token).await;
    let settable = REPORTS_STATUS | REPORTS_HEARTBEAT | ACCEPTS_OPAMP_SETTINGS;
    assert_eq!(exchange(&mut second, 2, 0, settable).await, None);
    let mut third = RawWebSocket::connect(&server, &token).await;
    assert_eq!(
        exchange(&mut third, 3, 0, REPORTS_STATUS | REPORTS_HEARTBEAT).await,
        Some(30),
        "a new stream"
    );
}

/// A WebSocket client written out by hand (RFC 6455 framing), for what no agent library sends on
/// purpose: oversized and text frames, and pings.
struct RawWebSocket {
    stream: tokio::net::TcpStream,
}

impl RawWebSocket {
    async fn connect(server: &Server, token: &str) -> RawWebSocket {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = server.base_url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
        let upgrade = format!(
            "GET /v1/opamp HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(upgrade.as_bytes()).await.expect("upgrade request");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(stream.read_u8().await.expect("response head"));
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        RawWebSocket { stream }
    }

    /// A masked, final client frame whose header announces `length` bytes; `payload` follows it.
    async fn send_frame(&mut self, opcode: u8, length: usize, payload: &[u8]) {
        self.send_fragment(true, opcode, length, payload).await;
    }

    async fn send_fragment(&mut self, fin: bool, opcode: u8, length: usize, payload: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = linkmesh::http::ws_limit::client_frame_header(fin, opcode, length as u64, mask);
        frame.extend(payload.iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]));
        self.stream.write_all(&frame).await.expect("send frame");
    }

    /// The server's next frame (unmasked): its opcode and payload.
    async fn read_frame(&mut self) -> (u8, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let read = async {
            let first = self.stream.read_u8().await.expect("frame");
            let length = match self.stream.read_u8().await.expect("length") & 0x7f {
                126 => usize::from(self.stream.read_u16().await.expect("length")),
                127 => usize::try_from(self.stream.read_u64().await.expect("length")).expect("fits"),
                short => usize::from(short),
            };
            let mut payload = vec![0; length];
            self.stream.read_exact(&mut payload).await.expect("payload");
            (first & 0x0f, payload)
        };
        tokio::time::timeout(FRAME_DEADLINE, read).await.expect("a frame from the server")
    }

    /// Reads past pings until a close frame; its status code.
    async fn close_code(&mut self) -> u16 {
        loop {
            let (opcode, payload) = self.read_frame().await;
            if opcode == 0x8 {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    }
}

/// Binary frames carry `0x00` and a protobuf message both ways; pings are answered; a frame larger
/// than `max_request_body` closes the connection with 1009 (Message Too Big) and a text frame with
/// 1003 (Unsupported Data), as the spec asks.
#[tokio::test]
async fn frames_pings_and_oversized_or_text_messages() {
    use linkmesh::proto::opamp::v1 as opamp;
    use prost::Message;
    let server = Server::start_with_config(&format!("max_request_body = \"64KiB\"\n{FAST_CONFIG}"));
    let api = Api::admin(&server).await;
    let (_collector_id, token) = opamp_collector(&api, "otel-raw").await;

    let mut socket = RawWebSocket::connect(&server, &token).await;
    let hello = opamp::AgentToServer { instance_uid: vec![7; 16], capabilities: 1, ..Default::default() };
    let hello = linkmesh::opamp::frame::encode(&hello);
    socket.send_frame(0x2, hello.len(), &hello).await;
    let (opcode, reply) = socket.read_frame().await;
    assert_eq!((opcode, reply.first()), (0x2, Some(&0x00)), "a binary frame, header first");
    let reply = opamp::ServerToAgent::decode(&reply[1..]).expect("a ServerToAgent");
    assert_eq!((reply.instance_uid, reply.capabilities), (vec![7; 16], 0x27));

    socket.send_frame(0x9, 5, b"hello").await;
    assert_eq!(socket.read_frame().await, (0xA, b"hello".to_vec()), "the pong echoes the ping");

    // Only the header of an 8 GiB frame: refused on what it announces, before any payload (actix
    // alone would buffer the whole frame before checking its size).
    socket.send_frame(0x2, 8 << 30, &[]).await;
    assert_eq!(socket.close_code().await, 1009);

    // A message in fragments, each under the limit, is refused once they add up to more.
    let mut socket = RawWebSocket::connect(&server, &token).await;
    let fragment = vec![0u8; 40 << 10];
    socket.send_fragment(false, 0x2, fragment.len(), &fragment).await;
    socket.send_frame(0x0, 40 << 10, &[]).await;
    assert_eq!(socket.close_code().await, 1009);

    let mut socket = RawWebSocket::connect(&server, &token).await;
    socket.send_frame(0x1, 4, b"{}{}").await;
    assert_eq!(socket.close_code().await, 1003);
}

/// Bad messages inside a good connection: a binary frame that is not an `AgentToServer`, and an
/// instance uid of the wrong length, are answered `BadRequest` (which agents do not retry) and the
/// connection stays open; a message without the header byte (agents from before it existed) is
/// answered as any; messages beyond the collector's call bucket wait for it, and are answered.
#[tokio::test]
async fn bad_messages_are_refused_in_protocol_and_the_call_bucket_holds_over_websocket() {
    use linkmesh::proto::opamp::v1 as opamp;
    use prost::Message;
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let (_collector_id, token) = opamp_collector(&api, "otel-bad-frames").await;
    let mut socket = RawWebSocket::connect(&server, &token).await;
    let mut exchange = async |frame: Vec<u8>| {
        socket.send_frame(0x2, frame.len(), &frame).await;
        let (opcode, reply) = socket.read_frame().await;
        assert_eq!(opcode, 0x2);
        opamp::ServerToAgent::decode(&reply[1..]).expect("a ServerToAgent")
    };
    let bad_request = opamp::ServerErrorResponseType::BadRequest as i32;

    let garbage = exchange(vec![0x00, 0xff, 0xff, 0xff]).await;
    assert_eq!(garbage.error_response.map(|error| error.r#type), Some(bad_request), "not protobuf");
    let short_uid = opamp::AgentToServer { instance_uid: vec![7; 5], capabilities: 1, ..Default::default() };
    let refused = exchange(linkmesh::opamp::frame::encode(&short_uid)).await;
    let refused = refused.error_response.expect("refused");
    assert_eq!(refused.r#type, bad_request);
    assert!(refused.error_message.contains("instance_uid"), "{}", refused.error_message);

    let hello = opamp::AgentToServer { instance_uid: vec![7; 16], capabilities: 1, ..Default::default() };
    let bare = exchange(hello.encode_to_vec()).await;
    assert!(bare.error_response.is_none(), "a message without the header byte is answered: {bare:?}");
    assert_eq!(bare.instance_uid, vec![7; 16]);
    // One connection is one agent: another uid on it is refused (linkmesh never assigns a new one).
    let other = opamp::AgentToServer { instance_uid: vec![8; 16], ..hello.clone() };
    let refused = exchange(linkmesh::opamp::frame::encode(&other)).await.error_response.expect("refused");
    assert_eq!(refused.r#type, bad_request);
    assert!(refused.error_message.contains("instance_uid changed"), "{}", refused.error_message);

    // The bucket allows a burst of 10 calls (the upgrade and the messages above were four); the
    // full reports past it wait for it to refill (2 per second) and are answered, none refused: an
    // agent does not send a refused message again.
    let started = tokio::time::Instant::now();
    let described =
        opamp::AgentToServer { agent_description: Some(opamp::AgentDescription::default()), ..hello.clone() };
    for sequence_num in 1..17 {
        let message = opamp::AgentToServer { sequence_num, ..described.clone() };
        let reply = exchange(linkmesh::opamp::frame::encode(&message)).await;
        assert!(reply.error_response.is_none(), "message {sequence_num} refused: {reply:?}");
    }
    // Sixteen messages with at most eight tokens left: the last ones waited for the bucket (at least
    // four waits of a second at 2 per second), which is the rate limit holding.
    assert!(started.elapsed() >= Duration::from_secs(2), "the bucket did not hold: {:?}", started.elapsed());
    // Status-only messages (and the goodbye) are answered too, bucket empty or not (they are not held
    // for it: tests/opamp_supervisor.rs has the supervisor's burst of health reports before its goodbye).
    for sequence_num in 17..30 {
        let message = opamp::AgentToServer { sequence_num, ..hello.clone() };
        assert!(exchange(linkmesh::opamp::frame::encode(&message)).await.error_response.is_none());
    }
    // They have an allowance of their own (64 at once, then 16 a second): 96 more in a row are all
    // answered, and the 32 or more past the burst waited for it (two seconds at 16 a second).
    let flooding = tokio::time::Instant::now();
    for sequence_num in 30..126 {
        let message = opamp::AgentToServer { sequence_num, ..hello.clone() };
        assert!(exchange(linkmesh::opamp::frame::encode(&message)).await.error_response.is_none());
    }
    assert!(
        flooding.elapsed() >= Duration::from_secs(1),
        "status-only messages were not held: {:?}",
        flooding.elapsed()
    );
}

/// A node that stops (SIGTERM) closes its OpAMP connections with 1001 (Going Away) as it begins its
/// graceful shutdown, so agents reconnect elsewhere instead of holding the shutdown open.
#[tokio::test]
async fn a_stopping_node_closes_its_connections_with_going_away() {
    use linkmesh::proto::opamp::v1 as opamp;
    let mut server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let (_collector_id, token) = opamp_collector(&api, "otel-going-away").await;
    let mut socket = RawWebSocket::connect(&server, &token).await;
    let hello = linkmesh::opamp::frame::encode(&opamp::AgentToServer {
        instance_uid: vec![9; 16],
        capabilities: 1,
        ..Default::default()
    });
    socket.send_frame(0x2, hello.len(), &hello).await;
    assert_eq!(socket.read_frame().await.0, 0x2, "answered");
    assert!(server.terminate().success());
    assert_eq!(socket.close_code().await, 1001);
}

/// A restart requested through the API is pushed to an agent connected over WebSocket at once (its
/// heartbeats are off, so nothing else would carry it); its health afterwards is the outcome.
#[tokio::test]
async fn a_restart_is_pushed_over_websocket_and_its_outcome_recorded() {
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let api = Api::admin(&server).await;
    let (collector_id, token) = opamp_collector(&api, "otel-ws-restart").await;
    configure_something_to_run(&api, &collector_id).await;
    let agent =
        Agent::start(&server.base_url, &token, &["-configs", "100", "-heartbeat", "0s", "-accept-restart"]);
    agent.next("connected");
    agent.next("config");
    api.wait_for_event(&collector_id, "config_applied", 1).await;

    let path = format!("/api/v1/collectors/{collector_id}/restart");
    let (status, body) = api.request(reqwest::Method::POST, &path, None).await;
    assert_eq!(status, 202, "{body}");
    let command = agent.next_without("command", "connected");
    assert_eq!(command["type"], "CommandType_Restart");
    api.wait_for_event(&collector_id, "restart_outcome", 1).await;
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["opamp"]["health"]["healthy"], true, "{collector}");
}
