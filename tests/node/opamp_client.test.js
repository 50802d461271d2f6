// The Node OpAMP client (npm `@elastic/opamp-client-node`, plain HTTP only) against the real linkmesh
// binary: its own transport and message building do the talking; the test reads what linkmesh shows
// through its REST API.
//
// What this client supports (shared/reference/opamp-and-self-telemetry.md §3.2): plain HTTP, an agent
// description, heartbeats at its own interval (it ignores the server's offer), remote config with
// APPLIED/FAILED reports. No effective config, no health, no own metrics, no goodbye (its shutdown
// sends nothing), no WebSocket, and it never accepts OpAMP connection settings (no such capability),
// so an agent it enrolled keeps presenting the enrollment token. So the steps here:
// - with the collector token: description shown, nothing offered while nothing is configured, config
//   offered → APPLIED, a change → offered again → APPLIED, a FAILED report shown with the client's
//   message and not offered again, an unknown token refused with 401;
// - with an enrollment token (`lmet_…`): the first message enrolls the agent as a new opamp collector
//   named `service.name@host.name` with the token's labels, keyed by its instance uid; the fleet-wide
//   config those labels select is offered and reported APPLIED; a second agent (another instance uid)
//   with the same multi-use token gets a collector of its own (the name made unique with its uid);
//   revoking the token makes each agent's next call fail with 401. The client surfaces that only as a
//   failed send: its log says "unexpected OpAMP response: statusCode=401" and, with `diagEnabled`, the
//   `opamp-client.send.fail` diagnostics channel carries {instanceUidStr, err} (what the test reads);
//   it re-enqueues the message and backs off 30 s … 5 min.
// Through any node of a three-node cluster: opamp_cluster.test.js (the collector-token steps pass; the
// enrollment steps through a node that does not own the enrolled collector are an expected failure, a
// server bug described there).
//
// Needs: target/debug/linkmesh (cargo build) or LINKMESH_BIN, `npm ci` here.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const diagnostics = require('node:diagnostics_channel');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const {
  createOpAMPClient,
  AgentCapabilities,
  RemoteConfigStatuses,
} = require('@elastic/opamp-client-node');

const REPO = path.resolve(__dirname, '..', '..');
const BINARY = process.env.LINKMESH_BIN || path.join(REPO, 'target', 'debug', 'linkmesh');
const PASSWORD = 'node-opamp-admin-password';
const DEADLINE_MS = 20000;
// The client heartbeats every 200 ms; its calls stay inside a call bucket sized for that (the Node
// client treats a 429 as a failure and backs off for 30 s or more).
const SERVER_CONFIG = `
activity_flush_interval = "30ms"
shutdown_timeout = "5s"

[collectors]
default_poll_interval = "2s"
min_poll_interval = "100ms"
stale_after_missed_polls = 5
tick_interval = "100ms"
poll_burst = 20
polls_per_second = 20.0
`;

const server = {};

before(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkmesh-node-opamp-'));
  fs.writeFileSync(path.join(dir, 'linkmesh.toml'), SERVER_CONFIG);
  server.log = [];
  server.process = spawn(
    BINARY,
    ['serve', '--config', path.join(dir, 'linkmesh.toml'), '--data-dir', path.join(dir, 'data'),
      '--http-addr', '127.0.0.1:0', '--rpc-addr', '127.0.0.1:0'],
    { env: { ...process.env, LINKMESH_ADMIN_PASSWORD: PASSWORD, LINKMESH_LOG: 'info' } },
  );
  server.process.stderr.on('data', (chunk) => server.log.push(chunk.toString()));
  const lines = readline.createInterface({ input: server.process.stdout });
  server.base = await new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      if (line.startsWith('listening on ')) resolve(`http://${line.slice('listening on '.length).split(',')[0].trim()}`);
    });
    server.process.on('exit', (code) => reject(new Error(`linkmesh exited (${code}):\n${server.log.join('')}`)));
  });
  const login = await fetch(`${server.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: PASSWORD }),
  });
  assert.equal(login.status, 200, await login.text());
  server.cookie = login.headers.getSetCookie().map((cookie) => cookie.split(';')[0]).join('; ');
});

after(() => {
  server.process?.kill('SIGTERM');
});

async function api(method, url, body) {
  const response = await fetch(`${server.base}/api/v1${url}`, {
    method,
    headers: { Cookie: server.cookie, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  assert.ok(response.status < 300, `${method} ${url}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function opampCollector(name) {
  const created = await api('POST', '/collectors', { name, mode: 'opamp' });
  const { token } = await api('POST', `/collectors/${created.id}/token`);
  return { id: created.id, token };
}

async function configure(collectorId, sourceName) {
  const base = `/collectors/${collectorId}`;
  await api('POST', `${base}/sources`, { name: sourceName, type: 'otlp' });
}

async function configureFirst(collectorId) {
  const base = `/collectors/${collectorId}`;
  await configure(collectorId, 'apps');
  const destination = await api('POST', `${base}/destinations`, {
    name: 'vendor', type: 'otlp_http', settings: { endpoint: 'https://otlp.example' },
  });
  await api('POST', `${base}/routes`, { name: 'all', destination_ids: [destination.id] });
}

async function waitFor(description, condition) {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${description}\n--- server stderr (tail) ---\n${server.log.join('').slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function events(collectorId) {
  return (await api('GET', `/collectors/${collectorId}/events?limit=1000`)).events;
}

async function count(collectorId, type) {
  return (await events(collectorId)).filter((event) => event.type === type).length;
}

/** A Node client whose remote configs arrive in `configs`, answered with `answer(config)`. */
function startClient(token, answer, { host = 'node-host' } = {}) {
  const configs = [];
  const client = createOpAMPClient({
    endpoint: `${server.base}/v1/opamp`,
    headers: { Authorization: `Bearer ${token}` },
    capabilities: AgentCapabilities.AgentCapabilities_AcceptsRemoteConfig
      | AgentCapabilities.AgentCapabilities_ReportsRemoteConfig,
    heartbeatIntervalSeconds: 0.2,
    diagEnabled: true,
    onMessage: ({ remoteConfig }) => {
      if (!remoteConfig) return;
      const file = remoteConfig.config.configMap[''];
      configs.push({ hash: Buffer.from(remoteConfig.configHash).toString(), file });
      client.setRemoteConfigStatus({ lastRemoteConfigHash: remoteConfig.configHash, ...answer(file) });
    },
  });
  client.setAgentDescription({
    identifyingAttributes: { 'service.name': 'node-agent', 'service.version': '0.5.0' },
    nonIdentifyingAttributes: { 'host.name': host },
  });
  client.start();
  return { client, configs };
}

const applied = () => ({ status: RemoteConfigStatuses.RemoteConfigStatuses_APPLIED });

test('the Node client is offered its config, reports it applied, and gets every change', async () => {
  const collector = await opampCollector('node-agent');
  const { client, configs } = startClient(collector.token, applied);
  try {
    const shown = await waitFor('connected', async () => {
      const current = await api('GET', `/collectors/${collector.id}`);
      return current.status === 'connected' && current;
    });
    assert.equal(shown.local_attributes['service.name'], 'node-agent');
    assert.equal(shown.local_attributes['host.name'], 'node-host');
    await new Promise((resolve) => setTimeout(resolve, 600)); // three heartbeats
    assert.equal(configs.length, 0, 'nothing configured: nothing offered');

    await configureFirst(collector.id);
    await waitFor('the first config', () => configs.length >= 1);
    assert.equal(configs[0].file.contentType, 'text/yaml');
    assert.match(Buffer.from(configs[0].file.body).toString(), /receivers:/);
    await waitFor('config_applied', async () => (await count(collector.id, 'config_applied')) === 1);

    await configure(collector.id, 'more');
    await waitFor('the changed config', () => configs.length >= 2);
    assert.notEqual(configs[1].hash, configs[0].hash);
    assert.match(Buffer.from(configs[1].file.body).toString(), /more/);
    await waitFor('the second config_applied', async () => (await count(collector.id, 'config_applied')) === 2);
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(configs.length, 2, 'applied: not offered again');
    assert.equal((await api('GET', `/collectors/${collector.id}`)).status, 'connected');
  } finally {
    await client.shutdown();
  }
});

test('a failure the Node client reports is shown with its message and not offered again', async () => {
  const collector = await opampCollector('node-agent-failing');
  await configureFirst(collector.id);
  const { client, configs } = startClient(collector.token, () => ({
    status: RemoteConfigStatuses.RemoteConfigStatuses_FAILED,
    errorMessage: 'cannot start: unknown exporter "vendor"',
  }));
  try {
    await waitFor('config_failed', async () => (await count(collector.id, 'config_failed')) >= 1);
    const failed = (await events(collector.id)).find((event) => event.type === 'config_failed');
    assert.match(failed.message, /unknown exporter "vendor"/);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // five heartbeats
    assert.equal(configs.length, 1, 'a failed config is not offered again until it changes');
    assert.equal((await api('GET', `/collectors/${collector.id}`)).status, 'degraded');
  } finally {
    await client.shutdown();
  }
});

test('the Node client is refused with 401 for a token linkmesh does not know', async () => {
  const failures = [];
  const onFail = ({ err }) => failures.push(String(err));
  diagnostics.subscribe('opamp-client.send.fail', onFail);
  const { client, configs } = startClient('lmct_not_a_token', applied);
  try {
    await waitFor('a refused send', () => failures.length >= 1);
    assert.match(failures[0], /statusCode=401/);
    assert.equal(configs.length, 0);
  } finally {
    diagnostics.unsubscribe('opamp-client.send.fail', onFail);
    await client.shutdown();
  }
});

// --- enrollment tokens ------------------------------------------------------------------------------

/** The feature level enrollment needs (src/model/feature_level.rs). */
const ENROLLMENT_LEVEL = 4;

/** An instance uid (16 bytes) as linkmesh shows it (`host_id`): the hyphenated UUID. */
function uidString(bytes) {
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function collectorWithUid(uid) {
  const found = (await api('GET', '/collectors?mode=opamp&limit=1000')).collectors
    .filter((collector) => collector.host_id === uid);
  assert.ok(found.length <= 1, JSON.stringify(found));
  return found[0] ?? null;
}

async function tokenView(id) {
  const listed = (await api('GET', '/enrollment-tokens')).enrollment_tokens;
  assert.ok(listed.every((token) => !('token' in token)), 'the list never shows a token');
  return listed.find((token) => token.id === id);
}

/** The collector once linkmesh shows its current config applied as reported, else null. */
async function appliedView(collectorId) {
  const collector = await api('GET', `/collectors/${collectorId}`);
  const { remote_status: remote, apply } = collector.config;
  return remote === 'applied' && apply.state === 'applied' && (await count(collectorId, 'config_applied')) >= 1
    ? collector : null;
}

/** Records the Node client's failed sends (the `opamp-client.send.fail` diagnostics channel) by instance. */
function recordFailures() {
  const failures = [];
  const onFail = ({ instanceUidStr, err }) => failures.push({ uid: instanceUidStr, err: String(err) });
  diagnostics.subscribe('opamp-client.send.fail', onFail);
  return { failures, stop: () => diagnostics.unsubscribe('opamp-client.send.fail', onFail) };
}

test('Node agents enroll with an enrollment token, get their own collectors and are refused once it is revoked', async () => {
  await waitFor('the enrollment feature level', async () => (await api('GET', '/cluster')).feature_level === ENROLLMENT_LEVEL);
  const selector = 'fleet=node-enrolled';
  await api('POST', '/sources', { selector, name: 'apps', type: 'otlp', settings: {} });
  const destination = await api('POST', '/destinations', {
    selector, name: 'vendor', type: 'otlp_http', settings: { endpoint: 'https://otlp.example' },
  });
  await api('POST', '/routes', { selector, name: 'all', destination_ids: [destination.id] });
  const created = await api('POST', '/enrollment-tokens', { labels: { fleet: 'node-enrolled' }, uses: 5 });
  assert.match(created.token, /^lmet_/);

  const recorded = recordFailures();
  const first = startClient(created.token, applied, { host: 'enrolled-host' });
  let second;
  try {
    const uid = uidString(first.client.getInstanceUid());
    await waitFor('the fleet config offered', () => first.configs.length >= 1);
    const body = Buffer.from(first.configs[0].file.body).toString();
    assert.match(body, /otlphttp\/dst_/);
    assert.match(body, /https:\/\/otlp\.example/);
    const collector = await waitFor('the enrolled collector', () => collectorWithUid(uid));
    assert.equal(collector.name, 'node-agent@enrolled-host');
    assert.deepEqual(collector.labels, { fleet: 'node-enrolled' });
    const enrolled = (await events(collector.id)).filter((event) => event.type === 'enrolled');
    assert.equal(enrolled.length, 1);
    assert.equal(enrolled[0].data.instance_uid, uid);
    const shown = await waitFor('APPLIED shown', () => appliedView(collector.id));
    assert.equal(shown.config.hash, first.configs[0].hash);
    assert.equal(shown.status, 'connected');
    assert.deepEqual((({ used, collectors, state }) => ({ used, collectors, state }))(await tokenView(created.id)),
      { used: 1, collectors: 1, state: 'active' });

    // A second agent (the client generates another UUIDv7 instance uid), same description, same token.
    second = startClient(created.token, applied, { host: 'enrolled-host' });
    const secondUid = uidString(second.client.getInstanceUid());
    assert.notEqual(secondUid, uid);
    const other = await waitFor('the second collector', () => collectorWithUid(secondUid));
    assert.notEqual(other.id, collector.id);
    assert.equal(other.name, `node-agent@enrolled-host-${secondUid.replaceAll('-', '').slice(0, 8)}`);
    assert.deepEqual(other.labels, { fleet: 'node-enrolled' });
    await waitFor('the second APPLIED shown', () => appliedView(other.id));
    assert.equal(second.configs.length, 1);
    const view = await tokenView(created.id);
    assert.deepEqual([view.used, view.collectors], [2, 2]);
    assert.deepEqual(recorded.failures, [], 'no failed send before the revocation');

    const revoked = await fetch(`${server.base}/api/v1/enrollment-tokens/${created.id}`, {
      method: 'DELETE', headers: { Cookie: server.cookie },
    });
    assert.equal(revoked.status, 204);
    assert.equal((await tokenView(created.id)).state, 'revoked');
    // Each agent's next heartbeat (every 200 ms) is refused.
    for (const refusedUid of [uid, secondUid]) {
      const failure = await waitFor(`a refused send of ${refusedUid}`,
        () => recorded.failures.find((entry) => entry.uid === refusedUid));
      assert.match(failure.err, /statusCode=401/);
    }
    assert.equal((await collectorWithUid(uid)).id, collector.id, 'the collector stays');
    assert.equal(first.configs.length, 1, 'offered once');
  } finally {
    recorded.stop();
    await first.client.shutdown();
    await second?.client.shutdown();
  }
});
