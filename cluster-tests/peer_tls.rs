//! Peers with mTLS on (`[cluster.tls]` with a CA and `require_client_cert`): three nodes form one
//! cluster over it, replicate writes taken on any node and forward a collector's polls to its owner.
//! (A peer whose certificate another CA signed is refused: `tests/cluster_port.rs`.)

use crate::harness::{config, members_with_role, Cluster};
use crate::support::pki::Pki;
use crate::support::{poll_request, Api};

#[tokio::test]
async fn three_nodes_form_a_cluster_and_forward_over_mutual_tls() {
    let pki_dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::new("linkmesh test cluster ca");
    let (cert, key) = pki.node_certificate("member");
    let write = |name: &str, contents: &str| {
        let path = pki_dir.path().join(name);
        std::fs::write(&path, contents).expect("write pem");
        path.display().to_string()
    };
    let (cert, key, ca) = (write("node.pem", &cert), write("node.key", &key), write("ca.pem", &pki.ca.pem()));
    let tls =
        format!("\n[cluster.tls]\ncert = {cert:?}\nkey = {key:?}\nca = {ca:?}\nrequire_client_cert = true\n");
    let cluster = Cluster::start_with_config(3, config(3) + &tls).await;
    cluster
        .wait_for_views("three voters over mTLS", |view| members_with_role(view, "voter").len() == 3)
        .await;
    for node in &cluster.nodes {
        assert!(node.log().contains("tls=true"), "{} did not serve its cluster port with tls", node.name);
    }

    // A write through the last node (a follower: forwarded to the leader over mTLS), read there at once.
    let last = &cluster.nodes[2];
    let through_last =
        Api { http: reqwest::Client::new(), base_url: last.url(""), token: cluster.admin.token.clone() };
    let collector_id = through_last.create_collector("over-mtls").await;
    let token = through_last.mint_token(&collector_id).await;
    assert_eq!(through_last.get(&format!("/api/v1/collectors/{collector_id}")).await["name"], "over-mtls");

    // Its polls answered through every node: by the owner, or forwarded to it over mTLS.
    let poll = prost::Message::encode_to_vec(&poll_request("host-mtls", ""));
    for node in &cluster.nodes {
        let answered = crate::support::wait_until(crate::harness::CONVERGE_DEADLINE, || async {
            reqwest::Client::new()
                .post(node.url("/collector.v1.CollectorService/GetConfig"))
                .header("content-type", "application/proto")
                .header("connect-protocol-version", "1")
                .bearer_auth(&token)
                .body(poll.clone())
                .send()
                .await
                .is_ok_and(|response| response.status() == 200)
        })
        .await;
        assert!(answered, "a poll through {} was never answered; log:\n{}", node.name, node.log());
    }
}
