// The Node OpAMP client (npm `@elastic/opamp-client-node`, plain HTTP only) through any node of a
// three-node cluster of the real linkmesh binary.
//
// Three nodes on loopback, started the way cluster-tests/harness.rs starts them: port 0 everywhere (the
// bound addresses read from the `cluster port listening on` / `listening on` lines), node 1 bootstraps,
// nodes 2 and 3 join through node 1 with a join token its API mints (handed over in
// LINKMESH_JOIN_TOKEN); the tests wait until every node shows the 1024 slots spread evenly over the
// three (no slot moves under the test). Every REST call that makes something goes through node 1 (an
// admin service account's token, valid on every node), the client talks to node 3's /v1/opamp, and
// what it did is read back through node 1's API. Every wait has a deadline; the nodes are stopped after.
//
// - With a collector token: an opamp collector made through node 1 whose slot node 3 does not own (node
//   3 forwards each message to the owner); the client on node 3 is offered its config and reports it
//   APPLIED, which node 1 shows, with the agent's description.
// - With an enrollment token: the agent enrolls through node 3 and is offered the fleet config the
//   token's labels select, and the same agent (its instance uid) is answered through nodes 1 and 2 too:
//   a node that does not own the enrolled collector's slot forwards the message with the enrollment
//   token's hash, which the owner checks as the edge did (src/opamp/credentials.rs).
//
// The steps this client supports, and how it surfaces a 401: see opamp_client.test.js.
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
const PASSWORD = 'node-cluster-admin-password';
const START_DEADLINE_MS = 90000;
const DEADLINE_MS = 60000;
const ENROLLMENT_LEVEL = 4;
// Fast batching, a call bucket roomy enough for a heartbeat every 200 ms, three voters.
const NODE_CONFIG = `
activity_flush_interval = "30ms"
shutdown_timeout = "5s"

[collectors]
default_poll_interval = "5s"
min_poll_interval = "100ms"
stale_after_missed_polls = 5
tick_interval = "50ms"
passivate_after = "600s"
poll_burst = 20
polls_per_second = 20.0

[cluster]
max_voters = 3
`;

const cluster = { nodes: [], token: null, root: null };

function logs() {
  return cluster.nodes.map((node) => `--- ${node.name} (tail) ---\n${fs.existsSync(node.log) ? fs.readFileSync(node.log, 'utf8').slice(-3000) : ''}`).join('\n');
}

async function waitFor(description, condition, deadlineMs = DEADLINE_MS) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${description}\n${logs()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts node `name`; resolves once it printed its HTTP address (a joined node: once caught up). */
function startNode(name, join) {
  const dir = path.join(cluster.root, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'linkmesh.toml'), NODE_CONFIG);
  const node = { name, log: path.join(dir, 'server.log') };
  cluster.nodes.push(node);
  const env = { ...process.env, LINKMESH_ADMIN_PASSWORD: PASSWORD, LINKMESH_LOG: 'info' };
  delete env.LINKMESH_DATA_KEY;
  delete env.LINKMESH_JOIN_TOKEN;
  const args = ['serve', '--config', path.join(dir, 'linkmesh.toml'), '--data-dir', path.join(dir, 'data'),
    '--http-addr', '127.0.0.1:0', '--rpc-addr', '127.0.0.1:0', '--node-name', name];
  if (join) {
    args.push('--join', join.url);
    env.LINKMESH_JOIN_TOKEN = join.token;
  }
  const logFd = fs.openSync(node.log, 'a');
  node.process = spawn(BINARY, args, { env, stdio: ['ignore', 'pipe', logFd] });
  fs.closeSync(logFd);
  const lines = readline.createInterface({ input: node.process.stdout });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in ${START_DEADLINE_MS} ms\n${logs()}`)),
      START_DEADLINE_MS);
    lines.on('line', (line) => {
      if (line.startsWith('listening on ')) {
        clearTimeout(timer);
        node.base = `http://${line.slice('listening on '.length).split(',')[0].trim()}`;
        resolve(node);
      }
    });
    node.process.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code})\n${logs()}`));
    });
  });
}

/** The admin API through node `index` (0-based). */
async function request(index, method, url, body) {
  const response = await fetch(`${cluster.nodes[index].base}/api/v1${url}`, {
    method,
    headers: { Authorization: `Bearer ${cluster.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(20000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function api(index, method, url, body) {
  const { status, body: reply } = await request(index, method, url, body);
  assert.ok(status < 300, `${method} node-${index + 1} ${url}: ${status} ${JSON.stringify(reply)}`);
  return reply;
}

async function slotsEvenEverywhere() {
  const members = (await api(0, 'GET', '/cluster')).members.map((member) => member.id);
  if (members.length !== 3) return false;
  for (let index = 0; index < 3; index += 1) {
    const { status, body } = await request(index, 'GET', '/cluster/slots');
    if (status !== 200) return false;
    const counts = new Map(members.map((id) => [id, 0]));
    for (const entry of body.slots) {
      if (!counts.has(entry.owner)) return false;
      counts.set(entry.owner, counts.get(entry.owner) + 1);
    }
    const held = [...counts.values()];
    if (body.slots.length !== 1024 || Math.min(...held) === 0 || Math.max(...held) - Math.min(...held) > 1) return false;
  }
  return true;
}

before(async () => {
  cluster.root = fs.mkdtempSync(path.join(os.tmpdir(), 'linkmesh-node-cluster-'));
  const first = await startNode('node-1');
  const login = await fetch(`${first.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: PASSWORD }),
  });
  assert.equal(login.status, 200, await login.text());
  const cookie = login.headers.getSetCookie().map((value) => value.split(';')[0]).join('; ');
  const session = async (url, body) => {
    const response = await fetch(`${first.base}/api/v1${url}`, {
      method: 'POST', headers: { Cookie: cookie, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    assert.equal(response.status, 201, `${url}: ${await response.clone().text()}`);
    return response.json();
  };
  const account = await session('/service-accounts', { name: 'node-cluster-test', role: 'admin' });
  cluster.token = (await session(`/service-accounts/${account.id}/tokens`, { label: 'tests/node' })).token;
  for (const name of ['node-2', 'node-3']) {
    const { token } = await api(0, 'POST', '/cluster/join-tokens', {});
    await startNode(name, { url: first.base, token });
  }
  await waitFor('three members and the slots spread evenly on every node', slotsEvenEverywhere);
  const members = (await api(0, 'GET', '/cluster')).members;
  for (const node of cluster.nodes) {
    node.id = members.find((member) => `http://${member.http_addr}` === node.base).id;
  }
});

after(async () => {
  await Promise.all(cluster.nodes.map((node) => new Promise((resolve) => {
    if (!node.process || node.process.exitCode !== null) return resolve();
    const timer = setTimeout(() => node.process.kill('SIGKILL'), 15000);
    node.process.once('exit', () => { clearTimeout(timer); resolve(); });
    node.process.kill('SIGTERM');
  })));
  fs.rmSync(cluster.root, { recursive: true, force: true });
});

/** A Node client on node `index`'s /v1/opamp, acknowledging every config APPLIED. */
function startClient(index, token, instanceUid) {
  const configs = [];
  const client = createOpAMPClient({
    endpoint: `${cluster.nodes[index].base}/v1/opamp`,
    headers: { Authorization: `Bearer ${token}` },
    ...(instanceUid ? { instanceUid } : {}),
    capabilities: AgentCapabilities.AgentCapabilities_AcceptsRemoteConfig
      | AgentCapabilities.AgentCapabilities_ReportsRemoteConfig,
    heartbeatIntervalSeconds: 0.2,
    diagEnabled: true,
    onMessage: ({ remoteConfig }) => {
      if (!remoteConfig) return;
      configs.push({ hash: Buffer.from(remoteConfig.configHash).toString(), file: remoteConfig.config.configMap[''] });
      client.setRemoteConfigStatus({
        lastRemoteConfigHash: remoteConfig.configHash, status: RemoteConfigStatuses.RemoteConfigStatuses_APPLIED,
      });
    },
  });
  client.setAgentDescription({
    identifyingAttributes: { 'service.name': 'node-agent', 'service.version': '0.5.0' },
    nonIdentifyingAttributes: { 'host.name': 'cluster-host' },
  });
  client.start();
  return { client, configs, uid: uidString(client.getInstanceUid()) };
}

function uidString(bytes) {
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The client's sends as the diagnostics channels report them: [{uid, ok, err}]. */
function recordSends() {
  const sends = [];
  const onSuccess = ({ instanceUidStr }) => sends.push({ uid: instanceUidStr, ok: true });
  const onFail = ({ instanceUidStr, err }) => sends.push({ uid: instanceUidStr, ok: false, err: String(err) });
  diagnostics.subscribe('opamp-client.send.success', onSuccess);
  diagnostics.subscribe('opamp-client.send.fail', onFail);
  return {
    sends,
    stop: () => {
      diagnostics.unsubscribe('opamp-client.send.success', onSuccess);
      diagnostics.unsubscribe('opamp-client.send.fail', onFail);
    },
  };
}

async function events(collectorId, type) {
  return (await api(0, 'GET', `/collectors/${collectorId}/events?limit=1000`)).events.filter((event) => event.type === type);
}

/** The collector as node 1 shows it once its config is applied as reported, else null. */
async function appliedOnNode1(collectorId) {
  const collector = await api(0, 'GET', `/collectors/${collectorId}`);
  const applied = collector.config.remote_status === 'applied' && collector.config.apply.state === 'applied';
  return applied && (await events(collectorId, 'config_applied')).length >= 1 ? collector : null;
}

test('the Node client on node 3 is offered a config made through node 1, and node 1 shows it applied', async () => {
  let created;
  let owner;
  for (let attempt = 0; attempt < 64 && !created; attempt += 1) {
    const made = await api(0, 'POST', '/collectors', { name: `node-routed-${attempt}`, mode: 'opamp' });
    owner = (await api(0, 'GET', `/collectors/${made.id}`)).owner_node;
    if (owner !== cluster.nodes[2].id) created = made;
  }
  assert.ok(created, '64 collectors, all owned by node 3');
  const base = `/collectors/${created.id}`;
  await api(0, 'POST', `${base}/sources`, { name: 'apps', type: 'otlp' });
  const destination = await api(0, 'POST', `${base}/destinations`, {
    name: 'vendor', type: 'otlp_http', settings: { endpoint: 'https://otlp.example' },
  });
  await api(0, 'POST', `${base}/routes`, { name: 'all', destination_ids: [destination.id] });
  const { token } = await api(0, 'POST', `${base}/token`);
  // Node 3 authenticates from its own replica; a 401 would send the client into a 30 s back-off.
  await waitFor('the token on node 3', async () => (await api(2, 'GET', base)).token?.prefix === token.slice(0, 11));

  const recorded = recordSends();
  const agent = startClient(2, token);
  try {
    await waitFor('the config offered through node 3', () => agent.configs.length >= 1
      || recorded.sends.some((send) => !send.ok));
    assert.deepEqual(recorded.sends.filter((send) => !send.ok), []);
    const body = Buffer.from(agent.configs[0].file.body).toString();
    assert.match(body, /config of collector "node-routed-/);
    assert.match(body, /otlphttp\/dst_/);
    const shown = await waitFor('APPLIED shown by node 1', () => appliedOnNode1(created.id));
    assert.equal(shown.config.hash, agent.configs[0].hash);
    assert.equal(shown.status, 'connected');
    assert.equal(shown.host_id, agent.uid);
    assert.equal(shown.local_attributes['service.name'], 'node-agent');
    assert.equal(shown.local_attributes['host.name'], 'cluster-host');
    assert.equal(shown.owner_node, owner);
    assert.notEqual(shown.owner_node, cluster.nodes[2].id, 'every message went through a node that forwards it');
    assert.equal(agent.configs.length, 1, 'offered once');
  } finally {
    recorded.stop();
    await agent.client.shutdown();
  }
});

/** The steps with an enrollment token; throws at the first one that does not hold. */
async function enrollThroughNode3ThenEveryNode(recorded) {
  await waitFor('the enrollment feature level', async () => (await api(0, 'GET', '/cluster')).feature_level === ENROLLMENT_LEVEL);
  const selector = 'fleet=node-cluster';
  await api(0, 'POST', '/sources', { selector, name: 'apps', type: 'otlp', settings: {} });
  const destination = await api(0, 'POST', '/destinations', {
    selector, name: 'vendor', type: 'otlp_http', settings: { endpoint: 'https://otlp.example' },
  });
  await api(0, 'POST', '/routes', { selector, name: 'all', destination_ids: [destination.id] });
  const created = await api(0, 'POST', '/enrollment-tokens', { labels: { fleet: 'node-cluster' } });
  for (const index of [0, 1, 2]) {
    await waitFor(`the token on node ${index + 1}`, async () => (await api(index, 'GET', '/enrollment-tokens'))
      .enrollment_tokens.some((token) => token.id === created.id));
  }
  // Through node 3 first, then the same agent (its instance uid) through node 1 and node 2, as behind a
  // load balancer; each must answer.
  const first = startClient(2, created.token);
  let uid;
  try {
    uid = first.uid;
    const outcome = await waitFor('an answer through node 3', () => first.configs.length >= 1
      || recorded.sends.find((send) => send.uid === uid && !send.ok));
    if (outcome !== true) throw new Error(`node 3 refused the enrolled agent: ${outcome.err}`);
    assert.match(Buffer.from(first.configs[0].file.body).toString(), /otlphttp\/dst_/);
    const collector = await waitFor('the enrolled collector on node 1', async () => (await api(0, 'GET', '/collectors?mode=opamp&limit=1000'))
      .collectors.find((found) => found.host_id === uid));
    assert.equal(collector.name, 'node-agent@cluster-host');
    assert.deepEqual(collector.labels, { fleet: 'node-cluster' });
    // The client sends its APPLIED with its next message (its shutdown says no goodbye and drops a
    // send not yet made), so the client runs until node 1 shows it.
    await waitFor('APPLIED shown by node 1', () => appliedOnNode1(collector.id));
  } finally {
    await first.client.shutdown();
  }
  for (const index of [0, 1]) {
    const seen = recorded.sends.length;
    const again = startClient(index, created.token, uid);
    try {
      const outcome = await waitFor(`an answer through node ${index + 1}`, () => recorded.sends.slice(seen).find((send) => send.uid === uid));
      if (!outcome.ok) throw new Error(`node ${index + 1} refused the enrolled agent: ${outcome.err}`);
    } finally {
      await again.client.shutdown();
    }
  }
}

test('an agent enrolled through node 3 is answered by every node', async () => {
  const recorded = recordSends();
  try {
    await enrollThroughNode3ThenEveryNode(recorded);
  } finally {
    recorded.stop();
  }
});
