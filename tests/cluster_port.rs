//! The cluster port of a real node, spoken to by a tonic client built from the same proto: calls
//! without the cluster credential, or with another cluster's, are refused and change nothing; bytes
//! that are not HTTP/2 hurt neither port; with `[cluster.tls]` and mTLS, a client whose certificate
//! comes from another CA is refused. Each refusal has a positive control that passes the same way.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use linkmesh::cluster::admin::{AdminAnswer, AdminCall};
use linkmesh::cluster::credential::ClusterCredential;
use linkmesh::cluster::peers::PeerPool;
use linkmesh::cluster::tls::ClusterTls;
use linkmesh::config::ClusterTlsSettings;
use linkmesh::model::{Command, Role, UnixMillis};
use linkmesh::proto::cluster::v1::cluster_service_client::ClusterServiceClient;
use linkmesh::proto::cluster::v1::{
    propose_reply, AdminRequest, ForwardRequest, LiveStateRequest, ProposeRequest, RaftRequest,
    WaitAppliedRequest,
};
use linkmesh::secrets::DataKey;
use serde_json::Value;
use support::pki::Pki;
use support::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

type Client = ClusterServiceClient<Channel>;

/// The credential of the node's own cluster, derived as a member would: from its data key and id.
fn credential_of(server: &Server) -> ClusterCredential {
    let key = DataKey::load_or_create(None, &server.data_dir).expect("the node's data key");
    let identity = std::fs::read_to_string(server.data_dir.join("identity.json")).expect("identity.json");
    let record: Value = serde_json::from_str(identity.lines().next().expect("record line")).expect("json");
    let cluster_id = record["identity"]["cluster_id"].as_str().expect("cluster id");
    ClusterCredential::derive(&key, cluster_id)
}

fn another_clusters_credential(server: &Server) -> ClusterCredential {
    let identity = std::fs::read_to_string(server.data_dir.join("identity.json")).expect("identity.json");
    let record: Value = serde_json::from_str(identity.lines().next().expect("record line")).expect("json");
    let cluster_id = record["identity"]["cluster_id"].as_str().expect("cluster id");
    // The right cluster id under another data key: what a node of another cluster would send.
    ClusterCredential::derive(&DataKey::from_bytes(&[0x5a; 32]).expect("key"), cluster_id)
}

async fn client(addr: &str) -> Client {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect to the cluster port");
    ClusterServiceClient::new(channel)
}

fn with_credential<T>(message: T, credential: Option<&ClusterCredential>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(10));
    if let Some(credential) = credential {
        request.metadata_mut().insert("authorization", credential.bearer().parse().expect("header"));
    }
    request
}

fn create_user(username: &str) -> ProposeRequest {
    let command = Command::CreateUser {
        id: format!("usr_{username}"),
        username: username.to_owned(),
        role: Role::Admin,
        password_hash: linkmesh::secrets::hash_password("a-password-nobody-knows").expect("hash"),
        at: UnixMillis(1_800_000_000_000),
    };
    ProposeRequest { command: serde_json::to_vec(&command).expect("json") }
}

async fn usernames(api: &Api) -> Vec<String> {
    let users = api.get("/api/v1/users").await;
    users["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|user| user["username"].as_str().expect("username").to_owned())
        .collect()
}

/// Every RPC of the service, called with `credential`; returns the status code of each failure
/// (or `Ok` for a call that succeeded).
async fn call_every_rpc(
    client: &mut Client,
    credential: Option<&ClusterCredential>,
) -> Vec<(&'static str, tonic::Code)> {
    let raft = || RaftRequest { payload_format: 1, payload: b"{}".to_vec(), snapshot_data: Vec::new() };
    let code =
        |result: Result<(), tonic::Status>| result.map_or_else(|status| status.code(), |()| tonic::Code::Ok);
    vec![
        ("append_entries", code(client.append_entries(with_credential(raft(), credential)).await.map(drop))),
        ("vote", code(client.vote(with_credential(raft(), credential)).await.map(drop))),
        (
            "install_snapshot",
            code(client.install_snapshot(with_credential(raft(), credential)).await.map(drop)),
        ),
        ("propose", code(client.propose(with_credential(create_user("probe"), credential)).await.map(drop))),
        (
            "wait_applied",
            code(
                client
                    .wait_applied(with_credential(
                        WaitAppliedRequest { index: 1, timeout_ms: 10 },
                        credential,
                    ))
                    .await
                    .map(drop),
            ),
        ),
        (
            "admin",
            code(
                client
                    .admin(with_credential(AdminRequest { request: b"{}".to_vec() }, credential))
                    .await
                    .map(drop),
            ),
        ),
        (
            "forward",
            code(client.forward(with_credential(ForwardRequest::default(), credential)).await.map(drop)),
        ),
        (
            "live_state",
            code(client.live_state(with_credential(LiveStateRequest::default(), credential)).await.map(drop)),
        ),
    ]
}

#[tokio::test]
async fn every_call_without_the_cluster_credential_is_refused_unauthenticated() {
    let server = Server::start();
    let mut client = client(&server.cluster_addr).await;
    for (rpc, code) in call_every_rpc(&mut client, None).await {
        assert_eq!(code, tonic::Code::Unauthenticated, "{rpc} without a credential");
    }
    // A bearer that is not the credential at all, and the scheme without a value.
    for header in ["Bearer ", "Bearer lmsat_not-a-cluster-credential", "Basic YWRtaW46YWRtaW4="] {
        let mut request = tonic::Request::new(WaitAppliedRequest { index: 1, timeout_ms: 10 });
        request.metadata_mut().insert("authorization", header.parse().expect("header"));
        let status = client.wait_applied(request).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{header}");
    }
    // Control: with the credential, the same calls reach the handlers (which judge the payloads).
    let credential = credential_of(&server);
    for (rpc, code) in call_every_rpc(&mut client, Some(&credential)).await {
        assert_ne!(code, tonic::Code::Unauthenticated, "{rpc} with the credential");
    }

    // The check comes before the message is read: a message over the size limit is refused for its
    // missing credential, not for its size; with the credential the limit refuses it.
    let oversized = || RaftRequest {
        payload_format: 1,
        payload: Vec::new(),
        snapshot_data: vec![0x42; linkmesh::cluster::peers::MAX_MESSAGE_BYTES + 1],
    };
    let status = client.install_snapshot(with_credential(oversized(), None)).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let status = client
        .install_snapshot(with_credential(oversized(), Some(&credential)))
        .await
        .expect_err("too large");
    assert!(matches!(status.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted), "{status:?}");
    let health = reqwest::get(server.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn another_clusters_credential_is_refused_and_changes_nothing() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let mut client = client(&server.cluster_addr).await;

    let wrong = another_clusters_credential(&server);
    for (rpc, code) in call_every_rpc(&mut client, Some(&wrong)).await {
        assert_eq!(code, tonic::Code::Unauthenticated, "{rpc} with another cluster's credential");
    }
    let status =
        client.propose(with_credential(create_user("intruder"), Some(&wrong))).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(!status.message().contains(&wrong.bearer()[7..]), "the refusal does not echo what was sent");
    assert!(!usernames(&api).await.contains(&"intruder".to_owned()));
    assert!(!server.log().contains(&wrong.bearer()[7..]), "the log never holds a presented credential");

    // Control: the node's own credential writes the same command through Propose.
    let right = credential_of(&server);
    let reply = client.propose(with_credential(create_user("member"), Some(&right))).await.expect("propose");
    let Some(propose_reply::Result::Applied(applied)) = reply.into_inner().result else {
        panic!("the leader applies a proposal from a member");
    };
    assert!(applied.log_index > 0);
    assert!(usernames(&api).await.contains(&"member".to_owned()));
    assert!(!server.log().contains(&right.bearer()[7..]), "the log never holds the credential");
}

/// Writes `bytes` on a fresh TCP connection to `addr` and reads whatever comes back until the node
/// closes it (or a second passes).
fn send_raw(addr: &str, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
    let _ = stream.write_all(bytes);
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
}

#[tokio::test]
async fn garbage_on_the_cluster_port_hurts_neither_port() {
    let server = Server::start();
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut truncated_frame = preface.to_vec();
    truncated_frame.extend_from_slice(&[0x00, 0xff, 0xff, 0x01, 0x04, 0x00, 0x00, 0x00, 0x01, 0x82]);
    let noise: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let inputs: Vec<&[u8]> = vec![
        b"\x00\x01\x02\x03garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        preface,
        &truncated_frame,
        &noise,
    ];
    for input in &inputs {
        send_raw(&server.cluster_addr, input);
    }
    // Connections opened and left silent, held while the node goes on serving.
    let held: Vec<TcpStream> =
        (0..32).map(|_| TcpStream::connect(&server.cluster_addr).expect("connect")).collect();

    let health = reqwest::get(server.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    let credential = credential_of(&server);
    let mut client = client(&server.cluster_addr).await;
    let reply = client
        .wait_applied(with_credential(WaitAppliedRequest { index: 1, timeout_ms: 1000 }, Some(&credential)))
        .await
        .expect("the cluster port still answers")
        .into_inner();
    assert!(reply.reached && reply.applied_index >= 1, "{reply:?}");
    let admin = client
        .admin(with_credential(
            AdminRequest { request: serde_json::to_vec(&AdminCall::Members).expect("json") },
            Some(&credential),
        ))
        .await
        .expect("admin")
        .into_inner();
    let answer: AdminAnswer = serde_json::from_slice(&admin.reply).expect("answer");
    let AdminAnswer::Members(view) = answer else { panic!("the single node leads: {answer:?}") };
    assert_eq!(view.members.len(), 1);
    assert_eq!(view.members[0].rpc_addr, server.cluster_addr, "the membership names the bound cluster port");
    assert_eq!(view.members[0].http_addr, server.base_url.trim_start_matches("http://"));
    // Payloads that do not decode are refused by the handler, not a crash.
    let bad =
        RaftRequest { payload_format: 1, payload: b"\xff\x00not json".to_vec(), snapshot_data: vec![1, 2] };
    let status =
        client.append_entries(with_credential(bad, Some(&credential))).await.expect_err("bad payload");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let unknown_format =
        RaftRequest { payload_format: 99, payload: b"{}".to_vec(), snapshot_data: Vec::new() };
    let status = client.vote(with_credential(unknown_format, Some(&credential))).await.expect_err("format");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    drop(held);
    let health = reqwest::get(server.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.display().to_string()
}

async fn tls_client(addr: &str, ca_pem: &str, identity: Option<(&str, &str)>) -> Result<Client, String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls config")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|error| format!("{error:?}"))?;
    Ok(ClusterServiceClient::new(channel))
}

async fn wait_applied(client: &mut Client, credential: &ClusterCredential) -> Result<(), tonic::Status> {
    client
        .wait_applied(with_credential(WaitAppliedRequest { index: 1, timeout_ms: 1000 }, Some(credential)))
        .await
        .map(drop)
}

#[tokio::test]
async fn with_mtls_a_client_certificate_from_another_ca_is_refused() {
    let cluster_ca = Pki::new("linkmesh cluster ca");
    let other_ca = Pki::new("someone else's ca");
    let files = tempfile::tempdir().expect("dir");
    let (node_cert, node_key) = cluster_ca.node_certificate("node-1");
    let config = format!(
        "{FAST_CONFIG}\n[cluster.tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\nrequire_client_cert = true\n",
        write(files.path(), "node.pem", &node_cert),
        write(files.path(), "node.key", &node_key),
        write(files.path(), "ca.pem", &cluster_ca.ca.pem()),
    );
    let server = Server::start_with_config(&config);
    let credential = credential_of(&server);
    let cluster_ca_pem = cluster_ca.ca.pem();

    // Control: a member's certificate (signed by the cluster CA) and the credential get through.
    let (member_cert, member_key) = cluster_ca.node_certificate("node-2");
    let mut member = tls_client(&server.cluster_addr, &cluster_ca_pem, Some((&member_cert, &member_key)))
        .await
        .expect("a member connects");
    wait_applied(&mut member, &credential).await.expect("a member's call is served");

    // A certificate from another CA, even with the right credential: no call gets through.
    let (stranger_cert, stranger_key) = other_ca.node_certificate("stranger");
    let refused = match tls_client(
        &server.cluster_addr,
        &cluster_ca_pem,
        Some((&stranger_cert, &stranger_key)),
    )
    .await
    {
        Err(_handshake_failed) => true,
        Ok(mut stranger) => wait_applied(&mut stranger, &credential).await.is_err(),
    };
    assert!(refused, "a client certificate from another ca must be refused");
    // No client certificate at all: refused too.
    let refused = match tls_client(&server.cluster_addr, &cluster_ca_pem, None).await {
        Err(_) => true,
        Ok(mut anonymous) => wait_applied(&mut anonymous, &credential).await.is_err(),
    };
    assert!(refused, "mtls demands a client certificate");
    // Plain HTTP/2 on a TLS port is not served either.
    let refused = match Endpoint::from_shared(format!("http://{}", server.cluster_addr))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => wait_applied(&mut ClusterServiceClient::new(channel), &credential).await.is_err(),
    };
    assert!(refused, "plain http/2 is not served on a tls cluster port");
    // The member is still served after the refusals.
    wait_applied(&mut member, &credential).await.expect("still served");

    // A node's own peer client, built from a `[cluster.tls]` block as the node builds it
    // (`cluster/tls.rs`, `cluster/peers.rs`): served with the member's files, refused with the stranger's.
    let settings = |name: &str, cert: &str, key: &str| ClusterTlsSettings {
        cert: Some(write(files.path(), &format!("{name}.pem"), cert).into()),
        key: Some(write(files.path(), &format!("{name}.key"), key).into()),
        ca: Some(files.path().join("ca.pem")),
        require_client_cert: true,
    };
    let call = |pool: PeerPool| {
        let addr = server.cluster_addr.clone();
        async move {
            let request = WaitAppliedRequest { index: 1, timeout_ms: 1000 };
            pool.call(1, &addr, request, Duration::from_secs(10), |mut client, request| async move {
                client.wait_applied(request).await
            })
            .await
        }
    };
    let pool_with = |settings: ClusterTlsSettings| {
        let tls = ClusterTls::load(&settings).expect("load").expect("tls on");
        PeerPool::new(credential.clone(), Some(tls.client_config()), tokio::runtime::Handle::current())
    };
    let member_pool = pool_with(settings("member", &member_cert, &member_key));
    let reply = call(member_pool.clone()).await.expect("the node's own tls client is served");
    assert!(reply.reached);
    assert!(member_pool.last_contact(1).is_some());
    let stranger_pool = pool_with(settings("stranger", &stranger_cert, &stranger_key));
    assert!(call(stranger_pool.clone()).await.is_err(), "a peer with another ca's certificate is refused");
    assert!(stranger_pool.last_contact(1).is_none());
}
