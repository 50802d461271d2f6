"""The Python OpAMP client (PyPI `opentelemetry-opamp-client`, HTTP only) against the real linkmesh binary.

What this client supports (shared/reference/opamp-and-self-telemetry.md §3.1): plain HTTP, a full-state first
message, heartbeats, remote config with APPLIED/FAILED reports, effective config, the goodbye. No health, no
own metrics, no available components. Its own message builders and its own transport (`requests`) do the
talking; the test only reads what linkmesh shows through its REST API.
"""

import uuid

import pytest
from opentelemetry._opamp.client import OpAMPClient
from opentelemetry._opamp.proto import opamp_pb2

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
