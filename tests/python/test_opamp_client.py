"""The Python OpAMP client (PyPI `opentelemetry-opamp-client`, HTTP only) against the real linkmesh binary.

What this client supports (shared/reference/opamp-and-self-telemetry.md §3.1): plain HTTP, a full-state first
message, heartbeats, remote config with APPLIED/FAILED reports, effective config, the goodbye. No health, no
own metrics, no available components, and it never accepts OpAMP connection settings (no capability for them),
so an agent it enrolled keeps presenting the enrollment token. Its own message builders, its own transport
(`requests`) and, for the enrolled agent, its own `OpAMPAgent` worker (queue, heartbeats, retries, callbacks) do
the talking; the test only reads what linkmesh shows through its REST API.

Steps, with a collector token: description shown, nothing offered while nothing is configured, config offered
→ APPLIED, FAILED shown with the client's message and not offered again, an unknown token refused (401).
Steps, with an enrollment token (`lmet_…`, `POST /api/v1/enrollment-tokens`): the first message enrolls the agent
as a new opamp collector named `service.name@host.name` with the token's labels, keyed by its instance uid; the
fleet-wide config those labels select is offered in the same answer and reported APPLIED; no credential is
offered (the client does not accept connection settings); a second agent (another instance uid) with the same
two-use token gets a collector of its own (the name made unique with its uid), a third one is refused (401, used
up); revoking the token makes each agent's next call fail with 401 — `OpAMPClient.send` raises `OpAMPException`
("401 Client Error: Unauthorized …", from `requests`' `raise_for_status`), and the `OpAMPAgent` worker hands the
same exception to `on_connect_failed`. Through any node of a three-node cluster: tests/python/test_opamp_cluster.py
(the collector-token steps pass; the enrollment steps through a node that does not own the enrolled collector are
an expected failure, a server bug described there).
"""

import queue
import threading
import uuid

import pytest
from opentelemetry._opamp.agent import OpAMPAgent
from opentelemetry._opamp.callbacks import OpAMPCallbacks
from opentelemetry._opamp.client import OpAMPClient
from opentelemetry._opamp.proto import opamp_pb2
from opentelemetry._opamp.transport.exceptions import OpAMPException

# The real binary and its admin session, one per module (the fixture is module-scoped).
from test_otlp_push import server  # noqa: F401

SERVER_CAPABILITIES = 0x27


def configure(server, collector_id):
    base = f"/collectors/{collector_id}"
    server.api("POST", f"{base}/sources", json={"name": "apps", "type": "otlp"})
    destination = server.api("POST", f"{base}/destinations",
                             json={"name": "vendor", "type": "otlp_http",
                                   "settings": {"endpoint": "https://otlp.example"}})
    server.api("POST", f"{base}/routes", json={"name": "all", "destination_ids": [destination["id"]]})


def event_types(server, collector_id):
    events = server.api("GET", f"/collectors/{collector_id}/events?limit=1000")["events"]
    return [event["type"] for event in events]


def client_for(server, token):
    return OpAMPClient(
        endpoint=f"{server.base_url}/v1/opamp",
        headers={"Authorization": f"Bearer {token}"},
        agent_identifying_attributes={"service.name": "python-agent", "service.version": "1.2.3"},
        agent_non_identifying_attributes={"host.name": "py-host", "host.cpus": 4},
    )


def test_the_python_client_is_offered_its_config_and_reports_it_applied(server):
    collector_id, token = server.collector("opamp")
    client = client_for(server, token)
    agent_uid = str(uuid.UUID(bytes=client._instance_uid))

    first = client.send(client.build_full_state_message())
    assert first.capabilities == SERVER_CAPABILITIES
    assert not first.HasField("remote_config"), "nothing configured: nothing offered"
    assert not first.HasField("error_response")

    collector = server.wait_for("connected", lambda: (
        (c := server.api("GET", f"/collectors/{collector_id}"))["status"] == "connected" and c))
    assert collector["host_id"] == agent_uid
    assert collector["local_attributes"]["host.name"] == "py-host"
    assert collector["local_attributes"]["host.cpus"] == "4"
    assert collector["local_attributes"]["service.name"] == "python-agent"

    configure(server, collector_id)
    offer = client.send(client.build_heartbeat_message())
    assert offer.HasField("remote_config"), offer
    config_file = offer.remote_config.config.config_map[""]
    assert config_file.content_type == "text/yaml"
    assert b"receivers:" in config_file.body
    config_hash = offer.remote_config.config_hash
    assert config_hash

    status = client.update_remote_config_status(
        remote_config_hash=config_hash,
        status=opamp_pb2.RemoteConfigStatuses.RemoteConfigStatuses_APPLIED,
    )
    client.update_effective_config({"": {"receivers": {"otlp": {}}}}, "application/json")
    reply = client.send(client.build_remote_config_status_response_message(status))
    assert not reply.HasField("remote_config"), "applied: not offered again"
    server.wait_for("config_applied", lambda: "config_applied" in event_types(server, collector_id))
    assert not client.send(client.build_heartbeat_message()).HasField("remote_config")

    client.send(client.build_agent_disconnect_message())
    server.wait_for("offline", lambda: server.api("GET", f"/collectors/{collector_id}")["status"] == "offline")


def test_the_python_clients_failure_report_is_shown_and_not_offered_again(server):
    collector_id, token = server.collector("opamp")
    configure(server, collector_id)
    client = client_for(server, token)
    offer = client.send(client.build_full_state_message())
    assert offer.HasField("remote_config"), offer

    status = client.update_remote_config_status(
        remote_config_hash=offer.remote_config.config_hash,
        status=opamp_pb2.RemoteConfigStatuses.RemoteConfigStatuses_FAILED,
        error_message="cannot parse the config: unknown exporter",
    )
    reply = client.send(client.build_remote_config_status_response_message(status))
    assert not reply.HasField("remote_config"), "a failed config is not offered again"
    server.wait_for("config_failed", lambda: "config_failed" in event_types(server, collector_id))
    events = server.api("GET", f"/collectors/{collector_id}/events?limit=1000")["events"]
    failed = [event for event in events if event["type"] == "config_failed"]
    assert "unknown exporter" in failed[0]["message"]


def test_the_python_client_is_refused_without_a_valid_token(server):
    client = client_for(server, "lmct_not_a_token")
    with pytest.raises(Exception) as refused:
        client.send(client.build_full_state_message())
    assert "401" in str(refused.value)


# --- enrollment tokens -------------------------------------------------------------------------------------------

# The feature level enrollment needs (src/model/feature_level.rs); a new node raises it shortly after it starts.
ENROLLMENT_LEVEL = 4
APPLIED = opamp_pb2.RemoteConfigStatuses.RemoteConfigStatuses_APPLIED


def fleet_config_for(api, selector):
    """Fleet-wide items (a source, a destination, a route) for collectors whose labels match `selector`."""
    api("POST", "/sources", json={"selector": selector, "name": "apps", "type": "otlp", "settings": {}})
    destination = api("POST", "/destinations",
                      json={"selector": selector, "name": "vendor", "type": "otlp_http",
                            "settings": {"endpoint": "https://otlp.example"}})
    api("POST", "/routes", json={"selector": selector, "name": "all", "destination_ids": [destination["id"]]})


def token_view(api, token_id):
    listed = api("GET", "/enrollment-tokens")["enrollment_tokens"]
    assert all("token" not in token for token in listed), "the list never shows a token"
    return next(token for token in listed if token["id"] == token_id)


def collector_with_uid(api, agent_uid):
    """The opamp collector enrolled for the agent with this instance uid, if any."""
    found = [c for c in api("GET", "/collectors?mode=opamp&limit=1000")["collectors"] if c["host_id"] == agent_uid]
    assert len(found) <= 1, found
    return found[0] if found else None


def events_of(api, collector_id, event_type):
    events = api("GET", f"/collectors/{collector_id}/events?limit=1000")["events"]
    return [event for event in events if event["type"] == event_type]


def applied_view(api, collector_id):
    """The collector once linkmesh shows its current config as applied (as reported), else None."""
    collector = api("GET", f"/collectors/{collector_id}")
    config = collector["config"]
    applied = config["remote_status"] == "applied" and config["apply"]["state"] == "applied"
    return collector if applied and events_of(api, collector_id, "config_applied") else None


class RecordingCallbacks(OpAMPCallbacks):
    """Keeps what the `OpAMPAgent` worker reports, and acknowledges every remote config APPLIED the way the
    library's own e2e test does (update_remote_config_status, then a status message through the agent)."""

    def __init__(self):
        self.configs = queue.Queue()
        self.failures = queue.Queue()
        self.connected = threading.Event()

    def on_connect(self, agent, client):
        self.connected.set()

    def on_connect_failed(self, agent, client, error):
        self.failures.put(error)

    def on_message(self, agent, client, message):
        if message.remote_config is None:
            return
        self.configs.put(message.remote_config)
        status = client.update_remote_config_status(
            remote_config_hash=message.remote_config.config_hash, status=APPLIED)
        if status is not None:
            agent.send(payload=client.build_remote_config_status_response_message(status))


def wait_for_level(server, level):
    server.wait_for(f"feature level {level}", lambda: server.api("GET", "/cluster")["feature_level"] == level)


def test_the_python_agent_enrolls_with_an_enrollment_token_and_is_refused_once_it_is_revoked(server):
    wait_for_level(server, ENROLLMENT_LEVEL)
    fleet_config_for(server.api, "fleet=py-enrolled")
    created = server.api("POST", "/enrollment-tokens", json={"labels": {"fleet": "py-enrolled"}, "uses": 2})
    token, token_id = created["token"], created["id"]
    assert token.startswith("lmet_"), created

    # The library's own agent: a full-state first message, heartbeats every second after it (inside the
    # server's default call bucket), APPLIED sent from on_message.
    callbacks = RecordingCallbacks()
    client = client_for(server, token)
    agent_uid = str(uuid.UUID(bytes=client._instance_uid))
    agent = OpAMPAgent(interval=1, callbacks=callbacks, client=client, initial_backoff=0.2)
    agent.start()
    try:
        offered = callbacks.configs.get(timeout=15)
        body = offered.config.config_map[""].body.decode()
        assert "otlphttp/dst_" in body and "https://otlp.example" in body, body

        collector = server.wait_for("the enrolled collector", lambda: collector_with_uid(server.api, agent_uid))
        collector_id = collector["id"]
        assert collector["name"] == "python-agent@py-host", collector
        assert collector["labels"] == {"fleet": "py-enrolled"}, collector
        assert collector["mode"] == "opamp"
        enrolled = events_of(server.api, collector_id, "enrolled")
        assert len(enrolled) == 1 and enrolled[0]["data"]["instance_uid"] == agent_uid, enrolled
        assert enrolled[0]["data"]["enrollment_token"] == token[:len(enrolled[0]["data"]["enrollment_token"])]
        shown = server.wait_for("APPLIED shown", lambda: applied_view(server.api, collector_id))
        assert shown["config"]["hash"] == offered.config_hash.decode(), shown
        assert shown["status"] == "connected", shown
        view = token_view(server.api, token_id)
        assert (view["used"], view["collectors"], view["state"]) == (1, 1, "active"), view

        # A second agent (its own instance uid, the same description) with the same token: a collector of
        # its own, offered the same fleet config at once. It does not accept connection settings, so no
        # credential comes with the answer: it keeps the enrollment token.
        second = client_for(server, token)
        second_uid = str(uuid.UUID(bytes=second._instance_uid))
        reply = second.send(second.build_full_state_message())
        assert not reply.HasField("error_response"), reply
        assert reply.HasField("remote_config"), "the token's labels select a config at once"
        # The same fleet-wide config, but for its own collector (the header comment names it).
        second_body = reply.remote_config.config.config_map[""].body.decode()
        assert second_body.split("\n", 1)[1] == body.split("\n", 1)[1], second_body
        assert second_body.split("\n", 1)[0] != body.split("\n", 1)[0], second_body
        assert not reply.connection_settings.opamp.HasField("headers"), reply.connection_settings
        other = server.wait_for("the second collector", lambda: collector_with_uid(server.api, second_uid))
        assert other["id"] != collector_id
        short = "".join(c for c in second_uid if c.isalnum())[:8]
        assert other["name"] == f"python-agent@py-host-{short}", other
        assert other["labels"] == {"fleet": "py-enrolled"}, other
        status = second.update_remote_config_status(remote_config_hash=reply.remote_config.config_hash, status=APPLIED)
        assert not second.send(second.build_remote_config_status_response_message(status)).HasField("remote_config")
        server.wait_for("the second APPLIED shown", lambda: applied_view(server.api, other["id"]))
        view = token_view(server.api, token_id)
        assert (view["used"], view["collectors"]) == (2, 2), view

        # Both uses taken: a third agent is refused.
        third = client_for(server, token)
        with pytest.raises(OpAMPException, match="401"):
            third.send(third.build_full_state_message())
        assert len(server.api("GET", "/collectors?mode=opamp&limit=1000&q=python-agent@py-host")["collectors"]) == 2

        # Revoked: each agent's next call is refused with 401.
        while not callbacks.failures.empty():
            callbacks.failures.get_nowait()
        response = server.session.delete(f"{server.base_url}/api/v1/enrollment-tokens/{token_id}")
        assert response.status_code == 204, response.text
        assert token_view(server.api, token_id)["state"] == "revoked"
        with pytest.raises(OpAMPException, match="401"):
            second.send(second.build_heartbeat_message())
        refused = callbacks.failures.get(timeout=10)  # the agent's next heartbeat
        assert isinstance(refused, OpAMPException) and "401" in str(refused), refused
        assert collector_with_uid(server.api, agent_uid)["id"] == collector_id, "the collector stays"
    finally:
        agent.stop(timeout=5)
