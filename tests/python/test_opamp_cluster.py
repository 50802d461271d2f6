"""The Python OpAMP client (PyPI `opentelemetry-opamp-client`, plain HTTP) through any node of a three-node cluster.

Three real linkmesh nodes (tests/python/linkmesh_cluster.py); every REST call that makes something goes through
node 1, the agents talk to other nodes' `/v1/opamp`, and what they did is read back through node 1's API.

- With a collector token: an opamp collector made through node 1 whose slot a node other than node 2 owns (so
  every message node 2 takes is forwarded to the owner); the library's `OpAMPAgent` on node 2 is offered its
  config and reports it APPLIED, its description reaches node 1, its goodbye takes it offline.
- With an enrollment token: an agent enrolls through node 2,
  the fleet config the token's labels select is offered, its messages are answered through every node, it is
  refused with 401 everywhere once the revocation reached every node.

The steps this client supports, and how it surfaces a refusal: see test_opamp_client.py.
"""

import pathlib
import tempfile
import types
import uuid

import pytest
from opentelemetry._opamp.agent import OpAMPAgent
from opentelemetry._opamp.transport.exceptions import OpAMPException

from linkmesh_cluster import Cluster, wait_for
from test_opamp_client import (
    APPLIED,
    ENROLLMENT_LEVEL,
    RecordingCallbacks,
    applied_view,
    client_for,
    collector_with_uid,
    configure,
    events_of,
    fleet_config_for,
    token_view,
)


@pytest.fixture(scope="module")
def cluster():
    with tempfile.TemporaryDirectory(prefix="linkmesh-py-cluster-") as root:
        started = Cluster(pathlib.Path(root))
        try:
            yield started.start()
        finally:
            started.stop()


def node_ids(cluster):
    """Node i's member id, by its HTTP address in node 1's view."""
    by_addr = {member["http_addr"]: member["id"] for member in cluster.api(0)("GET", "/cluster")["members"]}
    return [by_addr[node.base_url[len("http://"):]] for node in cluster.nodes]


def test_the_python_agent_on_node_2_is_offered_a_config_made_through_node_1_and_node_1_shows_it_applied(cluster):
    on_1, on_2 = cluster.api(0), cluster.api(1)
    ids = node_ids(cluster)
    # An opamp collector whose slot node 2 does not own: node 2 forwards each of the agent's messages.
    for attempt in range(64):
        created = on_1("POST", "/collectors", json={"name": f"py-routed-{attempt}", "mode": "opamp"})
        owner = on_1("GET", f"/collectors/{created['id']}")["owner_node"]
        if owner != ids[1]:
            break
    else:
        pytest.fail("64 collectors, all owned by node 2")
    collector_id = created["id"]
    configure(types.SimpleNamespace(api=on_1), collector_id)
    token = on_1("POST", f"/collectors/{collector_id}/token")["token"]
    # Node 2 authenticates the agent from its own replica: wait until the token reached it.
    wait_for("the token on node 2",
             lambda: (on_2("GET", f"/collectors/{collector_id}")["token"] or {}).get("prefix", "-") == token[:11],
             logs=cluster.logs)

    callbacks = RecordingCallbacks()
    client = client_for(types.SimpleNamespace(base_url=cluster.nodes[1].base_url), token)
    agent_uid = str(uuid.UUID(bytes=client._instance_uid))
    agent = OpAMPAgent(interval=1, callbacks=callbacks, client=client, initial_backoff=0.2)
    agent.start()
    try:
        offered = callbacks.configs.get(timeout=30)
        body = offered.config.config_map[""].body.decode()
        assert f'config of collector "py-routed-' in body and "otlphttp/dst_" in body, body
        assert callbacks.failures.empty(), callbacks.failures.get_nowait()
        shown = wait_for("APPLIED shown by node 1", lambda: applied_view(on_1, collector_id), logs=cluster.logs)
        assert shown["config"]["hash"] == offered.config_hash.decode(), shown
        assert shown["status"] == "connected", shown
        assert shown["host_id"] == agent_uid, shown
        assert shown["local_attributes"]["service.name"] == "python-agent", shown
        assert shown["owner_node"] == owner != ids[1], shown
        assert len(events_of(on_1, collector_id, "config_applied")) == 1
    finally:
        agent.stop(timeout=5)  # sends the goodbye (agent_disconnect) through node 2
    wait_for("offline after the goodbye, on node 1",
             lambda: on_1("GET", f"/collectors/{collector_id}")["status"] == "offline", logs=cluster.logs)


def test_a_python_agent_enrolled_through_node_2_is_answered_by_every_node(cluster):
    """An enrollment token made through node 1; the agent's first message through node 2 enrolls it and is
    answered with the config the token's labels select; then the same agent (its instance uid) sends through
    node 3, node 1 and node 2 (as behind a load balancer): each answers, its APPLIED is shown by node 1; once the
    revocation reached every node, each refuses it with 401."""
    on_1, on_2, on_3 = cluster.api(0), cluster.api(1), cluster.api(2)
    wait_for("the enrollment feature level", lambda: on_1("GET", "/cluster")["feature_level"] == ENROLLMENT_LEVEL,
             logs=cluster.logs)
    fleet_config_for(on_1, "fleet=py-cluster")
    created = on_1("POST", "/enrollment-tokens", json={"labels": {"fleet": "py-cluster"}})
    token, token_id = created["token"], created["id"]
    # The nodes the agent calls authenticate it from their own replica: wait until each has the token.
    for api in (on_1, on_2, on_3):
        wait_for(f"the token on {api.base_url}",
                 lambda api=api: any(t["id"] == token_id for t in api("GET", "/enrollment-tokens")["enrollment_tokens"]),
                 logs=cluster.logs)
    through = [client_for(types.SimpleNamespace(base_url=node.base_url), token) for node in cluster.nodes]
    for client in through[1:]:  # one agent: the same instance uid and sequence, whichever node it reaches
        client._instance_uid = through[0]._instance_uid
    agent_uid = str(uuid.UUID(bytes=through[0]._instance_uid))

    reply = through[1].send(through[1].build_full_state_message())
    assert reply.HasField("remote_config"), reply
    assert "otlphttp/dst_" in reply.remote_config.config.config_map[""].body.decode()
    collector = wait_for("the enrolled collector on node 1", lambda: collector_with_uid(on_1, agent_uid),
                         logs=cluster.logs)
    assert collector["name"] == "python-agent@py-host", collector
    assert collector["labels"] == {"fleet": "py-cluster"}, collector

    for index in (2, 0, 1):
        client = through[index]
        client._sequence_num = max(other._sequence_num for other in through)
        answer = client.send(client.build_heartbeat_message())
        assert not answer.HasField("error_response"), (index, answer)
    client = through[2]
    status = client.update_remote_config_status(remote_config_hash=reply.remote_config.config_hash, status=APPLIED)
    client._sequence_num = max(other._sequence_num for other in through)
    client.send(client.build_remote_config_status_response_message(status))
    wait_for("APPLIED shown by node 1", lambda: applied_view(on_1, collector["id"]), logs=cluster.logs)

    response = on_1.request("DELETE", f"/enrollment-tokens/{token_id}")
    assert response.status_code == 204, response.text
    for index, api in enumerate((on_1, on_2, on_3)):
        wait_for(f"the revocation on node {index + 1}", lambda api=api: token_view(api, token_id)["state"] == "revoked",
                 logs=cluster.logs)
        with pytest.raises(OpAMPException, match="401"):
            through[index].send(through[index].build_heartbeat_message())
