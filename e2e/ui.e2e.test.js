// End-to-end test of the web UI in headless Chromium, doing what a person does on the product page
// "Onboard Alloy via remotecfg": sign in → add an Alloy collector → mint a token → a test client polls
// with it → the list shows `connected` and the Events tab `remotecfg_registered` without a reload →
// add a source, a destination and a route through the forms → the Config tab shows the new version →
// own_metrics are pushed → the topology canvas shows rates. And OpenTelemetry Collectors: the Add
// collector page points them to enrollment, where an enrollment token with labels is created (token and
// supervisor.yaml shown once), listed, and revoked after a dialog naming the collectors still using it.
//
// Needs: target/debug/linkmesh (cargo build), Debian's /usr/bin/chromium, `npm ci` here.
// Screenshots: e2e/artifacts/ (always), and docs/screenshots/ with UPDATE_SCREENSHOTS=1.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const { chromium } = require('playwright-core');

const REPO = path.resolve(__dirname, '..');
const BINARY = process.env.LINKMESH_BIN || path.join(REPO, 'target', 'debug', 'linkmesh');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, 'artifacts');
const DOC_SCREENSHOTS = path.join(REPO, 'docs', 'screenshots');
const PASSWORD = 'e2e-admin-password-0123';
const HOST_ID = 'edge-1.example.internal';
const WAIT = 20000;

// Fast liveness so `connected` shows within a second, and the client's 1 s polls keep it there.
const SERVER_CONFIG = `
activity_flush_interval = "30ms"
shutdown_timeout = "5s"

[collectors]
default_poll_interval = "2s"
min_poll_interval = "1s"
stale_after_missed_polls = 5
tick_interval = "100ms"
`;

const ctx = {};
let failed = false;

function step(name, body) {
  test(name, { timeout: 90000 }, async (t) => {
    if (failed) {
      t.skip('an earlier step failed');
      return;
    }
    try {
      await body();
    } catch (error) {
      failed = true;
      await snapshot(`failure-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`).catch(() => {});
      if (ctx.serverLog) console.log(`--- server stderr (tail) ---\n${ctx.serverLog.join('').slice(-4000)}`);
      throw error;
    }
  });
}

async function snapshot(name, { page = ctx.page, doc = false, fullPage = false } = {}) {
  if (!page) return;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.evaluate(() => {
    for (const toast of document.querySelectorAll('.toast')) toast.remove();
    for (const input of document.querySelectorAll('input[type="text"], textarea')) {
      try { input.setSelectionRange(0, 0); } catch (_) { /* not selectable */ }
    }
    window.getSelection().removeAllRanges();
    const active = document.activeElement;
    if (active && active !== document.body) active.blur();
  }).catch(() => {});
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  if (doc && process.env.UPDATE_SCREENSHOTS === '1') {
    fs.mkdirSync(DOC_SCREENSHOTS, { recursive: true });
    fs.copyFileSync(file, path.join(DOC_SCREENSHOTS, `${name}.png`));
  }
}

// ---------------------------------------------------------------- the real server

function startServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkmesh-e2e-'));
  const configPath = path.join(dir, 'linkmesh.toml');
  fs.writeFileSync(configPath, SERVER_CONFIG);
  const child = spawn(BINARY, ['serve', '--config', configPath, '--data-dir', path.join(dir, 'data'), '--http-addr', '127.0.0.1:0', '--rpc-addr', '127.0.0.1:0', '--node-name', 'e2e-node'], {
    env: { ...process.env, LINKMESH_ADMIN_PASSWORD: PASSWORD, LINKMESH_LOG: 'warn,linkmesh=info', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  ctx.serverLog = [];
  child.stderr.on('data', (chunk) => { ctx.serverLog.push(chunk.toString()); if (ctx.serverLog.length > 2000) ctx.serverLog.shift(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not print "listening on" within 30 s')), 30000);
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line.startsWith('listening on ')) {
        clearTimeout(timer);
        resolve({ child, dir, base: `http://${line.slice('listening on '.length).split(',')[0].trim()}` });
      }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}) before listening:\n${ctx.serverLog.join('')}`)); });
  });
}

// ---------------------------------------------------------------- a remotecfg client, by hand

function varint(value) {
  const out = [];
  let n = value;
  while (n > 127) { out.push((n & 127) | 128); n = Math.floor(n / 128); }
  out.push(n);
  return out;
}
const bytesOf = (text) => Array.from(Buffer.from(text, 'utf8'));
const lengthDelimited = (fieldNumber, bytes) => [(fieldNumber << 3) | 2, ...varint(bytes.length), ...bytes];
const mapEntry = (fieldNumber, key, value) => lengthDelimited(fieldNumber, [...lengthDelimited(1, bytesOf(key)), ...lengthDelimited(2, bytesOf(value))]);

/** collector.v1.GetConfigRequest: id = 1, hash = 3, local_attributes = 4, remote_config_status = 5. */
function getConfigRequest({ id, hash, applied, failed }) {
  const out = [...lengthDelimited(1, bytesOf(id))];
  if (hash) out.push(...lengthDelimited(3, bytesOf(hash)));
  out.push(...mapEntry(4, 'collector.os', 'linux'));
  if (failed) out.push(...lengthDelimited(5, [0x08, 0x03, ...lengthDelimited(2, bytesOf(failed))])); // FAILED + error
  else if (applied) out.push(...lengthDelimited(5, [0x08, 0x01])); // RemoteConfigStatus{status: APPLIED}
  return Buffer.from(out);
}

/** collector.v1.RegisterCollectorRequest: id = 1, name = 3, local_attributes = 4. */
function registerRequest({ id, name }) {
  return Buffer.from([...lengthDelimited(1, bytesOf(id)), ...lengthDelimited(3, bytesOf(name)),
    ...mapEntry(4, 'collector.os', 'linux'), ...mapEntry(4, 'collector.version', 'v1.12.0')]);
}

/** collector.v1.GetConfigResponse: content = 1, hash = 2, not_modified = 3. */
function decodeGetConfigResponse(buffer) {
  const out = { content: '', hash: '', notModified: false };
  let at = 0;
  const readVarint = () => {
    let result = 0;
    let shift = 1;
    for (;;) {
      const byte = buffer[at];
      at += 1;
      result += (byte & 127) * shift;
      if (byte < 128) return result;
      shift *= 128;
    }
  };
  while (at < buffer.length) {
    const tag = readVarint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 2) {
      const length = readVarint();
      const text = buffer.subarray(at, at + length).toString('utf8');
      at += length;
      if (field === 1) out.content = text;
      if (field === 2) out.hash = text;
    } else if (wire === 0) {
      const value = readVarint();
      if (field === 3) out.notModified = value !== 0;
    } else {
      throw new Error(`unexpected wire type ${wire}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- an OpAMP agent's message, by hand

const varintField = (fieldNumber, value) => [fieldNumber << 3, ...varint(value)];
/** KeyValue{key = 1, value = 2: AnyValue{string_value = 1}}. */
const keyValue = (key, value) => [...lengthDelimited(1, bytesOf(key)), ...lengthDelimited(2, lengthDelimited(1, bytesOf(value)))];

/**
 * opamp.v1.AgentToServer with what the Agent panel shows: instance_uid = 1, sequence_num = 2,
 * agent_description = 3 {identifying = 1, non_identifying = 2}, capabilities = 4,
 * health = 5 {healthy = 1, last_error = 3, status = 4}, available_components = 14
 * {components = 1: map<kind, ComponentDetails{sub_component_map = 2: map<type, ComponentDetails>}>, hash = 2}.
 * Map entries are messages {key = 1, value = 2}.
 */
function agentToServer({ uid, sequence, capabilities, description, health, components }) {
  const out = [...lengthDelimited(1, uid), ...varintField(2, sequence)];
  if (description) {
    out.push(...lengthDelimited(3, [
      ...Object.entries(description.identifying).flatMap(([key, value]) => lengthDelimited(1, keyValue(key, value))),
      ...Object.entries(description.nonIdentifying).flatMap(([key, value]) => lengthDelimited(2, keyValue(key, value))),
    ]));
  }
  out.push(...varintField(4, capabilities));
  if (health) {
    out.push(...lengthDelimited(5, [...varintField(1, health.healthy ? 1 : 0),
      ...(health.lastError ? lengthDelimited(3, bytesOf(health.lastError)) : []), ...lengthDelimited(4, bytesOf(health.status))]));
  }
  if (components) {
    const kinds = Object.entries(components).flatMap(([kind, types]) => lengthDelimited(1, [
      ...lengthDelimited(1, bytesOf(kind)),
      ...lengthDelimited(2, types.flatMap((type) => lengthDelimited(2, [...lengthDelimited(1, bytesOf(type)), ...lengthDelimited(2, [])]))),
    ]));
    out.push(...lengthDelimited(14, [...kinds, ...lengthDelimited(2, Array.from({ length: 32 }, () => 7))]));
  }
  return Buffer.from(out);
}

/** The field numbers of a protobuf message's top level (ServerToAgent: command = 9). */
function topLevelFields(buffer) {
  const fields = new Set();
  let at = 0;
  const readVarint = () => {
    let result = 0;
    let shift = 1;
    for (;;) {
      const byte = buffer[at];
      at += 1;
      result += (byte & 127) * shift;
      if (byte < 128) return result;
      shift *= 128;
    }
  };
  while (at < buffer.length) {
    const tag = readVarint();
    fields.add(Math.floor(tag / 8));
    const wire = tag & 7;
    if (wire === 0) readVarint();
    else if (wire === 2) { const length = readVarint(); at += length; }
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Error(`unexpected wire type ${wire}`);
  }
  return fields;
}

async function sendOpamp(token, message) {
  const response = await fetch(`${ctx.base}/v1/opamp`, {
    method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/x-protobuf' }, body: message,
  });
  const body = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`/v1/opamp: HTTP ${response.status} ${body.toString('utf8')}`);
  assert.equal(response.headers.get('content-type'), 'application/x-protobuf');
  return body;
}

async function connectCall(method, token, body) {
  const response = await fetch(`${ctx.base}/collector.v1.CollectorService/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/proto', 'Connect-Protocol-Version': '1', Authorization: `Bearer ${token}` },
    body,
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`${method}: HTTP ${response.status} ${bytes.toString('utf8')}`);
  return bytes;
}

/** Polls like Alloy: GetConfig with the last hash, reporting APPLIED once per new config. */
function startPolling(token, { hostId = HOST_ID, failWith = null, maxPolls = Infinity } = {}) {
  const client = { hash: '', polls: 0, lastError: null, stopped: false, appliedHash: '' };
  ctx.clients = (ctx.clients || []).concat([client]);
  const poll = async () => {
    if (client.stopped || client.polls >= maxPolls) return;
    try {
      const applied = client.hash && client.appliedHash !== client.hash;
      const failed = applied && failWith ? failWith : null;
      const reply = decodeGetConfigResponse(await connectCall('GetConfig', token, getConfigRequest({ id: hostId, hash: client.hash, applied, failed })));
      if (applied) client.appliedHash = client.hash;
      if (!reply.notModified && reply.hash) client.hash = reply.hash;
      client.polls += 1;
      client.lastError = null;
    } catch (error) {
      client.lastError = error;
    }
    if (!client.stopped) client.timer = setTimeout(poll, 1000);
  };
  poll();
  return client;
}

// ---------------------------------------------------------------- own_metrics, shaped like Alloy's

/** An OTLP/JSON ExportMetricsServiceRequest as Alloy's own_metrics chain sends it (cumulative sums). */
const METRICS_EPOCH_NANOS = BigInt(Date.now()) * 1000000n;

/** The enrollment config's own_metrics chain, which no rendered node claims: `local` on the canvas. */
const SELF_TELEMETRY_CHAIN = ['prometheus.exporter.self.default', 'prometheus.scrape.linkmesh_self',
  'otelcol.receiver.prometheus.linkmesh', 'otelcol.exporter.otlphttp.linkmesh'];

function ownMetrics(components, seconds, { selfTelemetry = false } = {}) {
  // One process start for every push: a changed start time would read as a counter reset.
  const nowNanos = METRICS_EPOCH_NANOS;
  const start = (nowNanos - 3600n * 1000000000n).toString();
  const time = (nowNanos - BigInt(60 - seconds) * 1000000000n).toString();
  const metrics = [];
  const sum = (name, componentId, value) => metrics.push({
    name,
    sum: {
      aggregationTemporality: 2,
      isMonotonic: true,
      dataPoints: [{
        attributes: [
          { key: 'component_id', value: { stringValue: `remotecfg/linkmesh_pipeline.default/${componentId}` } },
          { key: 'instance', value: { stringValue: HOST_ID } },
        ],
        startTimeUnixNano: start,
        timeUnixNano: time,
        asDouble: value,
      }],
    },
  });
  for (const id of components) {
    const rate = 40; // items/s
    const total = 100000 + rate * seconds;
    if (id.startsWith('otelcol.receiver.')) sum('otelcol_receiver_accepted_log_records_total', id, total);
    else if (id.startsWith('otelcol.processor.')) {
      sum('otelcol_processor_incoming_items_total', id, total);
      sum('otelcol_processor_outgoing_items_total', id, total - seconds * 2);
    } else if (id.startsWith('otelcol.exporter.')) {
      sum('otelcol_exporter_sent_log_records_total', id, total - seconds * 2);
      sum('otelcol_exporter_send_failed_log_records_total', id, 10 + seconds * 0.5);
    }
  }
  if (selfTelemetry) {
    const local = (name, componentId, value) => metrics.push({
      name,
      sum: {
        aggregationTemporality: 2,
        isMonotonic: true,
        dataPoints: [{ attributes: [{ key: 'component_id', value: { stringValue: componentId } }, { key: 'component_path', value: { stringValue: '/' } }],
          startTimeUnixNano: start, timeUnixNano: time, asDouble: value }],
      },
    });
    local('prometheus_forwarded_samples_total', 'prometheus.scrape.linkmesh_self', 5000 + 120 * seconds);
    local('otelcol_receiver_accepted_metric_points_total', 'otelcol.receiver.prometheus.linkmesh', 5000 + 120 * seconds);
    local('otelcol_exporter_sent_metric_points_total', 'otelcol.exporter.otlphttp.linkmesh', 5000 + 120 * seconds);
    const connections = SELF_TELEMETRY_CHAIN.slice(1).map((to, index) => ({
      timeUnixNano: time,
      asDouble: 1,
      attributes: [{ key: 'controller_path', value: { stringValue: '/' } }, { key: 'controller_id', value: { stringValue: '' } },
        { key: 'from', value: { stringValue: SELF_TELEMETRY_CHAIN[index] } }, { key: 'to', value: { stringValue: to } }],
    }));
    metrics.push({ name: 'alloy_component_graph_connection', gauge: { dataPoints: connections } });
  }
  metrics.push({ name: 'alloy_build_info', gauge: { dataPoints: [{ timeUnixNano: time, asDouble: 1, attributes: [{ key: 'version', value: { stringValue: 'v1.12.0' } }] }] } });
  return {
    resourceMetrics: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'alloy' } }, { key: 'service.instance.id', value: { stringValue: HOST_ID } }] },
      scopeMetrics: [{ scope: { name: 'github.com/grafana/alloy' }, metrics }],
    }],
  };
}

// ---------------------------------------------------------------- helpers on pages

async function expectText(locator, pattern, timeout = WAIT) {
  await locator.first().waitFor({ state: 'visible', timeout });
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = await locator.first().evaluate((node) => (node instanceof HTMLElement ? node.innerText : node.textContent)).catch(() => '');
    if (pattern instanceof RegExp ? pattern.test(last) : last.includes(pattern)) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`expected ${pattern} in ${locator}, last saw ${JSON.stringify(last)}`);
}

async function apiAsBrowser(method, url, body) {
  const response = await ctx.page.request.fetch(`${ctx.base}${url}`, { method, data: body });
  return { status: response.status(), body: await response.json().catch(() => null) };
}

async function openTab(page, name) {
  await page.locator(`[role="tab"][data-tab="${name.toLowerCase()}"]`).click();
  await page.locator(`#panel-${name.toLowerCase()}`).waitFor({ state: 'visible' });
}

// ---------------------------------------------------------------- the steps

before(async () => {
  assert.ok(fs.existsSync(BINARY), `${BINARY} missing: run cargo build first`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install chromium`);
  const server = await startServer();
  Object.assign(ctx, server);
  ctx.browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  ctx.context = await ctx.browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  await ctx.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ctx.base });
  ctx.page = await ctx.context.newPage();
  ctx.page.on('dialog', (dialog) => dialog.accept());
  ctx.consoleErrors = [];
  ctx.page.on('console', (message) => { if (message.type() === 'error') ctx.consoleErrors.push(message.text()); });
  ctx.page.on('pageerror', (error) => ctx.consoleErrors.push(String(error)));
});

after(async () => {
  for (const client of ctx.clients || []) { client.stopped = true; clearTimeout(client.timer); }
  if (ctx.fleet && ctx.fleet.exitCode === null) ctx.fleet.kill('SIGKILL');
  await ctx.browser?.close().catch(() => {});
  if (ctx.child && ctx.child.exitCode === null) {
    ctx.child.kill('SIGTERM');
    await new Promise((resolve) => { ctx.child.once('exit', resolve); setTimeout(resolve, 8000); });
    if (ctx.child.exitCode === null) ctx.child.kill('SIGKILL');
  }
  if (ctx.dir) fs.rmSync(ctx.dir, { recursive: true, force: true });
});

step('pages and live streams require a session; only /login and /assets are public', async () => {
  for (const url of ['/collectors', '/collectors/new', '/collectors/enroll', '/pipelines', '/settings', '/cluster', '/collectors/col_x']) {
    const response = await fetch(`${ctx.base}${url}`, { redirect: 'manual' });
    assert.equal(response.status, 303, url);
    assert.match(response.headers.get('location'), /^\/login\?next=/);
  }
  assert.equal((await fetch(`${ctx.base}/api/v1/stream/collectors`)).status, 401);
  const login = await fetch(`${ctx.base}/login`);
  assert.equal(login.status, 200);
  const html = await login.text();
  const css = html.match(/href="(\/assets\/[0-9a-f]+\/app\.css)"/);
  assert.ok(css, 'stylesheet under a content hash');
  const asset = await fetch(`${ctx.base}${css[1]}`);
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get('cache-control'), /immutable/);
  assert.match(login.headers.get('content-security-policy'), /script-src 'self'/);
});

step('sign in', async () => {
  const { page } = ctx;
  await page.goto(`${ctx.base}/collectors`);
  await page.waitForURL(/\/login\?next=/);
  await page.getByLabel('Username', { exact: true }).fill('admin');
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectText(page.locator('#login-error'), 'Invalid username or password');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Username', { exact: true }).fill('admin');
  await page.locator('#login-error').evaluate((node) => { node.hidden = true; });
  await snapshot('login', { doc: true });
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/collectors$/);
  await expectText(page.getByTestId('whoami'), /Signed in as admin\s+\(admin\)/);
  await expectText(page.locator('#collectors-summary'), 'No collectors yet');
});

step('the Add collector page offers OpenTelemetry Collectors run by the supervisor the enrollment path', async () => {
  const { page } = ctx;
  await page.getByTestId('enroll-collectors').waitFor({ state: 'visible' });
  await page.goto(`${ctx.base}/collectors/new`);
  const hint = page.locator('#opamp-enroll');
  assert.ok(await hint.isHidden(), 'not while Grafana Alloy is chosen');
  await page.getByRole('radio', { name: /OpenTelemetry Collector/ }).check();
  await expectText(hint, /enrolls itself with an enrollment token[\s\S]*service\.name@host\.name/);
  await snapshot('add-collector-opamp');
  await page.getByRole('radio', { name: /Grafana Alloy/ }).check();
  await hint.waitFor({ state: 'hidden' });
  await page.getByRole('radio', { name: /OpenTelemetry Collector/ }).check();
  await page.getByTestId('go-enroll').click();
  await page.waitForURL(/\/collectors\/enroll$/);
  await expectText(page.locator('h1'), 'Enroll OpenTelemetry Collectors');
});

step('enroll OpenTelemetry Collectors: a token with labels shows the token and supervisor.yaml once, and is listed active', async () => {
  const { page } = ctx;
  // Enrollment tokens need the cluster's feature level 4, which the node raises shortly after it starts.
  await eventually('feature level 4', async () => (await apiAsBrowser('GET', '/api/v1/cluster')).body.feature_level >= 4 || 'lower', 30000);
  const tokens = page.getByTestId('enrollment-tokens');
  await expectText(tokens, 'No enrollment tokens yet');
  await expectText(page.locator('#install-otelcol'), /otelcol-contrib_[\s\S]*opampsupervisor_/);
  await expectText(page.locator('#run-supervisor'), 'opampsupervisor --config /etc/otelcol-supervisor/supervisor.yaml');
  assert.ok(await page.locator('#supervisor-config-box').isHidden(), 'no supervisor.yaml before a token exists');

  // Labels are checked as elsewhere, next to the field.
  await page.getByLabel('Enrolls new agents for').selectOption({ label: '7 days' });
  await page.getByLabel('Labels', { exact: true }).fill('env=prod\nteam edge');
  await page.getByRole('button', { name: 'Create token' }).click();
  await expectText(page.locator('[data-field="labels"] .field-error'), '"team edge" is not key=value');
  assert.equal(await page.getByLabel('Labels', { exact: true }).getAttribute('aria-invalid'), 'true');
  await page.getByLabel('Labels', { exact: true }).fill('env=prod\nteam=edge');
  await page.getByRole('button', { name: 'Create token' }).click();

  await page.locator('#enroll-created').waitFor({ state: 'visible' });
  await expectText(page.locator('#enroll-created'), 'not shown again');
  const token = await page.locator('#enroll-token').inputValue();
  assert.match(token, /^lmet_/);
  const config = await expectText(page.locator('#supervisor-config'), 'server:');
  assert.ok(config.includes(`Authorization: ["Bearer ${token}"]`), 'the token in the Authorization header');
  assert.ok(config.includes(`endpoint: "${ctx.base.replace(/^http/, 'ws')}/v1/opamp"`), `this server's OpAMP endpoint: ${config}`);
  assert.ok(config.includes('accepts_remote_config: true') && config.includes('reports_remote_config: true'));
  assert.ok(await page.locator('#supervisor-config-placeholder').isHidden());
  await page.getByTestId('copy-supervisor-config').click();
  await expectText(page.getByTestId('copy-supervisor-config'), /Copied|Copy failed/);
  const clipboard = await page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
  if (clipboard !== null) assert.equal(clipboard.trim(), config.trim());

  const row = tokens.locator('tbody tr[data-token-id]');
  await waitForCount(row, 1);
  ctx.enrollmentTokenId = await row.getAttribute('data-token-id');
  await expectText(row, 'active');
  await expectText(row, /env\s*prod/);
  await expectText(row, /team\s*edge/);
  await expectText(row, '0 / no limit');
  await expectText(row.getByTestId('token-collectors'), '0');
  const prefix = (await row.locator('code').first().innerText()).replace(/…$/, '');
  assert.ok(token.startsWith(prefix), `the listed prefix ${prefix} is the token's start`);
  ctx.enrollmentPrefix = prefix;
  ctx.enrollmentToken = token;
  const listed = (await apiAsBrowser('GET', '/api/v1/enrollment-tokens')).body.enrollment_tokens[0];
  assert.deepEqual(listed.labels, { env: 'prod', team: 'edge' });
  const ttlDays = (Date.parse(listed.expires_at) - Date.parse(listed.created_at)) / 86400000;
  assert.ok(Math.abs(ttlDays - 7) < 0.01, `7 days to enroll, got ${ttlDays}`);
  await expectText(page.getByTestId('copy-supervisor-config'), /^\s*Copy\s*$/);
  await page.evaluate(() => {
    const created = document.querySelector('#enroll-created');
    window.scrollTo(0, created.getBoundingClientRect().top + window.scrollY - 120);
  });
  await page.mouse.move(0, 0);
  await snapshot('enroll-opentelemetry-collectors', { doc: true });

  // Shown once: a reload has neither the token nor its config.
  await page.reload();
  await expectText(row, 'active');
  assert.ok(await page.locator('#enroll-created').isHidden());
  assert.ok(!(await page.content()).includes(token), 'the token is not in the page any more');
});

step('revoking an enrollment token asks first, naming how many collectors use it', async () => {
  const { page } = ctx;
  const row = page.locator(`tr[data-token-id="${ctx.enrollmentTokenId}"]`);
  const dialog = page.locator('#revoke-dialog');
  await row.getByRole('button', { name: `Revoke ${ctx.enrollmentPrefix}…` }).click();
  await dialog.waitFor({ state: 'visible' });
  await expectText(dialog.locator('#revoke-dialog-title'), `Revoke enrollment token ${ctx.enrollmentPrefix}…?`);
  await expectText(dialog.locator('#revoke-dialog-text'), 'No collector uses this token');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await expectText(row, 'active');

  await row.getByRole('button', { name: `Revoke ${ctx.enrollmentPrefix}…` }).click();
  await dialog.waitFor({ state: 'visible' });
  await expectText(dialog.locator('#revoke-dialog-text'), 'No collector uses this token');
  await page.mouse.move(0, 0);
  await snapshot('enroll-revoke-dialog', { doc: true });
  await dialog.getByRole('button', { name: 'Revoke token' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await expectText(row.locator('[data-state]'), 'revoked');
  assert.equal(await row.getByRole('button', { name: /Revoke/ }).count(), 0, 'nothing left to revoke');
  assert.notEqual((await row.locator('td').nth(7).innerText()).trim(), '—', 'when it was revoked');
  // And refused: an agent presenting it is turned away before anything is read.
  const refused = await fetch(`${ctx.base}/v1/opamp`, {
    method: 'POST', headers: { Authorization: `Bearer ${ctx.enrollmentToken}`, 'Content-Type': 'application/x-protobuf' }, body: Buffer.alloc(0),
  });
  assert.equal(refused.status, 401);
});

step('add a Grafana Alloy collector from the header and land on its page', async () => {
  const { page } = ctx;
  await page.getByTestId('add-collector-header').click();
  await page.waitForURL(/\/collectors\/new$/);
  await page.getByRole('button', { name: 'Create collector' }).click();
  await expectText(page.locator('[data-field="name"] .field-error'), /name/i);
  await page.getByRole('radio', { name: /Grafana Alloy/ }).check();
  await page.getByLabel('Name', { exact: true }).fill('edge-1');
  await page.getByRole('button', { name: 'Create collector' }).click();
  await page.waitForURL(/\/collectors\/col_[0-9a-f]+$/);
  ctx.collectorUrl = page.url();
  ctx.collectorId = ctx.collectorUrl.split('/').pop();
  await expectText(page.locator('h1'), 'edge-1');
  await expectText(page.locator('#collector-status'), 'awaiting_connection');
  await page.locator('#enroll').waitFor({ state: 'visible' });
  await expectText(page.locator('#enroll'), 'Mint token');
  // Install step: Grafana's apt repository set up before `apt-get install alloy`, as the product page shows, copyable.
  const apt = await expectText(page.locator('#install-alloy-apt'), 'apt-get install -y alloy');
  const aptLines = apt.trim().split('\n');
  assert.deepEqual(aptLines, [
    'sudo mkdir -p /etc/apt/keyrings',
    'curl -fsSL https://apt.grafana.com/gpg.key | sudo gpg --dearmor -o /etc/apt/keyrings/grafana.gpg',
    'echo "deb [signed-by=/etc/apt/keyrings/grafana.gpg] https://apt.grafana.com stable main" | sudo tee /etc/apt/sources.list.d/grafana.list',
    'sudo apt-get update && sudo apt-get install -y alloy',
  ]);
  await expectText(page.locator('#install-alloy-rpm'), /baseurl=https:\/\/rpm\.grafana\.com[\s\S]*sudo dnf install -y alloy/);
  await snapshot('collector-enrollment-banner', { doc: true });
  await page.getByRole('button', { name: 'Copy the Debian / Ubuntu commands' }).click();
  const copied = await page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
  if (copied !== null) assert.equal(copied.trim(), apt.trim());
});

step('mint a token: shown once with the ready-to-paste config.alloy and a copy button', async () => {
  const { page } = ctx;
  await page.getByRole('button', { name: 'Mint token' }).click();
  await page.locator('#minted').waitFor({ state: 'visible' });
  ctx.token = await page.locator('#minted-token').inputValue();
  assert.match(ctx.token, /^lmct_/);
  const config = await page.locator('#config-alloy').innerText();
  assert.ok(config.includes('remotecfg {'), 'config.alloy has the remotecfg block');
  assert.ok(config.includes(`bearer_token = "${ctx.token}"`), 'the token is in bearer_token');
  assert.ok(config.includes(`"Authorization" = "Bearer ${ctx.token}"`), 'and in the own_metrics header');
  assert.ok(config.includes(`url            = "${ctx.base}"`), 'pointing at this server');
  await expectText(page.locator('#mint-warning'), /rotates/);
  await page.getByTestId('copy-config').click();
  await expectText(page.getByTestId('copy-config'), /Copied|Copy failed/);
  const clipboard = await page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
  if (clipboard !== null) assert.equal(clipboard.trim(), config.trim());
  await page.evaluate(() => {
    const step = document.querySelector('#enroll .steps > li:nth-child(2)');
    window.scrollTo(0, step.getBoundingClientRect().top + window.scrollY - 70);
  });
  await page.locator('#enroll').screenshot({ path: path.join(ARTIFACTS, 'enrollment-minted.png') }).catch(() => {});
  await snapshot('collector-token-minted', { doc: true });
});

step('a remotecfg client polls with the token; the list and the Events tab update without a reload', async () => {
  const { page } = ctx;
  // A few more collectors, so the list shows a fleet: one polling, one failing to apply its config,
  // one that polled once and went quiet (stale), and two never connected.
  for (const [name, mode] of [['db-eu-2', 'alloy-remotecfg'], ['otel-gateway-1', 'opamp'], ['web-us-1', 'alloy-remotecfg'],
    ['web-eu-1', 'alloy-remotecfg'], ['web-ap-1', 'alloy-remotecfg']]) {
    const created = await apiAsBrowser('POST', '/api/v1/collectors', { name, mode });
    assert.equal(created.status, 201);
    if (name.startsWith('web-')) {
      const minted = await apiAsBrowser('POST', `/api/v1/collectors/${created.body.id}/token`);
      const hostId = `${name}.example.internal`;
      await connectCall('RegisterCollector', minted.body.token, registerRequest({ id: hostId, name }));
      if (name === 'web-us-1') startPolling(minted.body.token, { hostId });
      if (name === 'web-ap-1') startPolling(minted.body.token, { hostId, failWith: 'component "otelcol.exporter.otlphttp.dst_1" failed: connection refused' });
      if (name === 'web-eu-1') startPolling(minted.body.token, { hostId, maxPolls: 1 });
    }
  }

  // The list in a second tab, open before the collector connects.
  const list = await ctx.context.newPage();
  ctx.listPage = list;
  list.on('dialog', (dialog) => dialog.accept());
  await list.goto(`${ctx.base}/collectors`);
  const row = list.locator(`tr[data-collector-id="${ctx.collectorId}"]`);
  await expectText(row, 'awaiting_connection');
  await expectText(list.locator('#live-indicator'), 'Live');
  await list.evaluate(() => { window.__noReload = true; });
  await openTab(page, 'Events');
  await page.evaluate(() => { window.__noReload = true; });

  await connectCall('RegisterCollector', ctx.token, registerRequest({ id: HOST_ID, name: 'edge-1' }));
  ctx.client = startPolling(ctx.token);

  await expectText(row.locator('td.col-status'), 'connected');
  await expectText(row, HOST_ID);
  await expectText(row.locator('time'), /s ago/);
  assert.equal(await list.evaluate(() => window.__noReload), true, 'the list page was not reloaded');
  await expectText(page.locator('#events-list'), 'remotecfg_registered');
  await expectText(page.locator('#collector-status'), 'connected');
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the collector page was not reloaded');
  assert.ok(await page.locator('#enroll').isHidden(), 'the enrollment banner goes away once connected');

  // Filters: status, mode and search narrow the list; a status chip toggles the filter.
  await list.getByLabel('Status', { exact: true }).selectOption('offline');
  await list.locator('#collectors-nomatch').waitFor({ state: 'visible' });
  await list.getByRole('button', { name: 'Clear filters' }).click();
  await list.getByLabel('Search', { exact: true }).fill('edge');
  await row.waitFor({ state: 'visible' });
  await list.getByLabel('Search', { exact: true }).fill('');
  await list.getByLabel('Mode', { exact: true }).selectOption('alloy-remotecfg');
  await row.waitFor({ state: 'visible' });
  await list.getByLabel('Mode', { exact: true }).selectOption('');
  await list.mouse.move(0, 0);
  await snapshot('collectors-list-live', { page: list });

  await expectText(page.locator('#events-list li').first(), /config_|remotecfg_registered|status_changed/);
  await page.getByLabel('Type', { exact: true }).selectOption('remotecfg_registered');
  await expectText(page.locator('#events-list'), 'remotecfg_registered');
  assert.equal(await page.locator('#events-list li').count(), 1);
  await page.getByLabel('Type', { exact: true }).selectOption('');
  await page.mouse.move(0, 0);
  await snapshot('collector-events', { doc: true });
});

step('the forms show the server\'s validation errors next to the field', async () => {
  const { page } = ctx;
  await openTab(page, 'Inputs');
  await page.getByRole('button', { name: 'Add source' }).click();
  const dialog = page.locator('#item-dialog');
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByLabel('Name', { exact: true }).fill('otlp-in');
  await dialog.getByLabel('Type', { exact: true }).selectOption('otlp');
  await dialog.getByLabel('grpc_endpoint').fill('not a host port');
  await dialog.getByLabel('http_endpoint').fill('0.0.0.0:99999');
  await dialog.getByRole('button', { name: 'Save' }).click();
  // Every invalid field at once, not one per Save; ports are 1–65535.
  const error = dialog.locator('[data-field="settings.grpc_endpoint"] .field-error');
  await expectText(error, /host:port/);
  assert.equal(await dialog.locator('[data-field="settings.grpc_endpoint"] input').getAttribute('aria-invalid'), 'true');
  await expectText(dialog.locator('[data-field="settings.http_endpoint"] .field-error'), /between 1 and 65535/);
  assert.equal(await dialog.locator('[data-field="settings.http_endpoint"] input').getAttribute('aria-invalid'), 'true');
  await snapshot('source-form-validation', { doc: true });
});

step('add a source, a destination and a route through the forms', async () => {
  const { page } = ctx;
  const before = await apiAsBrowser('GET', `/api/v1/collectors/${ctx.collectorId}`);
  ctx.versionBefore = before.body.config.version;
  const dialog = page.locator('#item-dialog');
  // An empty host in a listen address means every interface.
  await dialog.getByLabel('grpc_endpoint').fill(':4317');
  await dialog.getByLabel('http_endpoint').fill('');
  await dialog.getByLabel('Added to every record from this source').fill('env=prod\nteam=edge');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await expectText(page.locator('#sources-list'), 'otlp-in');
  await expectText(page.locator('#sources-list'), 'grpc_endpoint=:4317');

  await openTab(page, 'Destinations');
  await page.getByRole('button', { name: 'Add destination' }).click();
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByLabel('Name', { exact: true }).fill('grafana-cloud-otlp');
  await dialog.getByLabel('Type', { exact: true }).selectOption('otlp_http');
  // Credentials: no stray "null" text for any type; only secrets are masked.
  for (const type of await dialog.getByLabel('Type', { exact: true }).locator('option').evaluateAll((options) => options.map((o) => o.value))) {
    await dialog.getByLabel('Type', { exact: true }).selectOption(type);
    assert.ok(!/null|undefined/.test(await dialog.locator('#item-fields').innerText()), `no "null" in the ${type} form`);
  }
  await dialog.getByLabel('Type', { exact: true }).selectOption('otlp_http');
  assert.equal(await dialog.getByLabel('username').getAttribute('type'), 'text', 'username is not a secret');
  assert.equal(await dialog.getByLabel('password').getAttribute('type'), 'password');
  assert.equal(await dialog.getByLabel('bearer_token').getAttribute('type'), 'password');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expectText(dialog.locator('[data-field="settings.endpoint"] .field-error'), /required/);
  await dialog.getByLabel(/^endpoint/).fill('https://otlp-gateway.example.com/otlp');
  await dialog.getByLabel('headers').fill('X-Scope-OrgID=tenant-1');
  await dialog.getByLabel('bearer_token').fill('glc_secret_value');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await expectText(page.locator('#destinations-list'), 'grafana-cloud-otlp');
  await expectText(page.locator('#destinations-list'), 'bearer_token ••••');

  await openTab(page, 'Routing');
  await page.getByRole('button', { name: 'Add route' }).click();
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByLabel('Name', { exact: true }).fill('everything');
  assert.ok(await dialog.getByLabel(/grafana-cloud-otlp/).isChecked(), 'the only destination is preselected');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await expectText(page.locator('#routes-list'), 'everything');

  // Deleting a destination a route uses is refused; the toast names it as the user knows it.
  await openTab(page, 'Destinations');
  await page.getByRole('button', { name: 'Delete grafana-cloud-otlp' }).click();
  const refusal = await expectText(page.locator('.toast.error').last(), /grafana-cloud-otlp/);
  assert.ok(!/dst_/.test(refusal), `the toast names the destination, not its id: ${refusal}`);
  assert.match(refusal, /route "everything"/);
  await page.evaluate(() => { for (const toast of document.querySelectorAll('.toast')) toast.remove(); });
});

step('the Config tab shows the new version and the diff', async () => {
  const { page } = ctx;
  const current = (await apiAsBrowser('GET', `/api/v1/collectors/${ctx.collectorId}`)).body.config.version;
  assert.ok(current > ctx.versionBefore, `config version moved from ${ctx.versionBefore} to ${current}`);
  await openTab(page, 'Config');
  await expectText(page.getByTestId('config-version'), `Version ${current}`);
  await expectText(page.locator('#config-content'), 'otelcol.receiver.otlp');
  await expectText(page.locator('#config-content'), 'otelcol.exporter.otlphttp');
  assert.ok(!(await page.locator('#config-content').innerText()).includes('glc_secret_value'), 'credentials never shown');
  await page.locator('#config-diff .dl.add').first().waitFor({ state: 'visible' });
  await expectText(page.locator('#collector-version'), `config v${current}`);
  // The header (live) and the list (live) agree once the client fetched it.
  await expectText(ctx.listPage.locator(`tr[data-collector-id="${ctx.collectorId}"] td.num`), `v${current}`);
  await page.locator('#panel-config').scrollIntoViewIfNeeded();
  await page.mouse.move(0, 0);
  await snapshot('collector-config-first-diff');

  // A reload, or a deep link straight to the tab, loads the config too.
  await page.reload();
  assert.equal(await page.getByRole('tab', { name: 'Config' }).getAttribute('aria-selected'), 'true');
  await expectText(page.getByTestId('config-version'), `Version ${current}`);
  const deepLink = await ctx.context.newPage();
  const deepLinkErrors = [];
  deepLink.on('pageerror', (error) => deepLinkErrors.push(String(error)));
  await deepLink.goto(`${ctx.collectorUrl}#config`);
  await expectText(deepLink.getByTestId('config-version'), `Version ${current}`);
  await expectText(deepLink.locator('#config-content'), 'otelcol.receiver.otlp');
  assert.deepEqual(deepLinkErrors, [], 'no script errors on a deep link');
  await deepLink.close();
});

step('collector tabs are history entries: Back and Forward switch tabs', async () => {
  const { page } = ctx;
  await page.goto(`${ctx.collectorUrl}#overview`);
  await openTab(page, 'Inputs');
  await openTab(page, 'Events');
  assert.ok(page.url().endsWith('#events'));
  const selected = () => page.locator('#collector-tabs [role="tab"][aria-selected="true"]').getAttribute('data-tab');
  await page.goBack();
  await page.locator('#panel-inputs').waitFor({ state: 'visible' });
  assert.equal(await selected(), 'inputs');
  assert.ok(page.url().startsWith(ctx.collectorUrl), 'Back stays on the collector');
  await page.goBack();
  await page.locator('#panel-overview').waitFor({ state: 'visible' });
  assert.equal(await selected(), 'overview');
  await page.goForward();
  await page.locator('#panel-inputs').waitFor({ state: 'visible' });
  assert.equal(await selected(), 'inputs');
  await page.goForward();
  await page.locator('#panel-events').waitFor({ state: 'visible' });
  assert.equal(await selected(), 'events');
});

step('an unknown page is the app\'s 404 page; an unknown API path stays JSON', async () => {
  const { page } = ctx;
  const response = await page.goto(`${ctx.base}/collectors/col_1/nope`);
  assert.equal(response.status(), 404);
  await expectText(page.locator('main h1'), 'Page not found');
  await expectText(page.locator('main'), '/collectors/col_1/nope');
  await expectText(page.getByTestId('whoami'), /admin/);
  await page.mouse.move(0, 0);
  await snapshot('not-found');
  await page.getByRole('link', { name: 'All collectors' }).click();
  await page.waitForURL(/\/collectors$/);
  const api = await page.request.get(`${ctx.base}/api/v1/nope`, { headers: { Accept: 'text/html' } });
  assert.equal(api.status(), 404);
  assert.equal((await api.json()).error.code, 'not_found');
  const signedOut = await fetch(`${ctx.base}/nope`, { headers: { Accept: 'text/html' } });
  assert.equal(signedOut.status, 404);
  assert.match(await signedOut.text(), /Page not found/);
});

step('a pipeline with steps, built in the step editor, is used by the route', async () => {
  const { page } = ctx;
  await page.goto(`${ctx.base}/pipelines`);
  await page.getByRole('button', { name: 'New pipeline' }).click();
  await page.getByLabel('Name', { exact: true }).fill('drop-debug-logs');
  await page.getByLabel('Description').fill('Drops debug logs, masks e-mail addresses and batches before export.');
  await page.getByLabel('Step type').selectOption('filter');
  await page.getByRole('button', { name: 'Add step' }).click();
  await page.getByLabel('Step type').selectOption('mask');
  await page.getByRole('button', { name: 'Add step' }).click();
  await page.getByLabel('Step type').selectOption('batch');
  await page.getByRole('button', { name: 'Add step' }).click();
  await page.getByRole('button', { name: 'Save pipeline' }).click();
  // Server validation on a step field: filter needs conditions; mask needs something to mask.
  await expectText(page.locator('[data-field="steps[0].settings.conditions"] .field-error'), /required|at least one/);
  // An OTTL typo and an invalid regular expression are refused on the server, next to their fields,
  // before any collector could receive them.
  await page.locator('[data-field="steps[0].settings.conditions"] textarea').fill('attributes["level"] ==');
  await page.locator('[data-field="steps[1].settings.patterns"] textarea').fill('password=([a-z');
  await page.getByRole('button', { name: 'Save pipeline' }).click();
  await expectText(page.locator('[data-field="steps[0].settings.conditions"] .field-error'), /refused for logs.*expected a value/);
  await expectText(page.locator('[data-field="steps[1].settings.patterns"] .field-error'), /regular expression/);
  await page.locator('[data-field="steps[0].settings.conditions"]').scrollIntoViewIfNeeded();
  await page.mouse.move(0, 0);
  await snapshot('pipeline-ottl-validation', { doc: true });
  assert.equal((await apiAsBrowser('GET', '/api/v1/pipelines')).body.pipelines.filter((p) => p.name === 'drop-debug-logs').length, 0);
  await page.locator('[data-field="steps[1].settings.patterns"] textarea').fill('');
  await page.locator('[data-field="steps[0].settings.conditions"] textarea').fill('attributes["level"] == "debug"');
  await page.getByRole('button', { name: 'Save pipeline' }).click();
  await expectText(page.locator('[data-field="steps[1].settings.patterns"] .field-error'), /emails|pattern/);
  await page.locator('[data-field="steps[1].settings.emails"] input').check();
  await page.getByRole('button', { name: 'Move step 3 (batch) up' }).click();
  await page.getByRole('button', { name: 'Save pipeline' }).click();
  await expectText(page.locator('#pipeline-list'), 'drop-debug-logs');
  await expectText(page.locator('#pipeline-list'), '3 steps');
  const saved = (await apiAsBrowser('GET', '/api/v1/pipelines')).body.pipelines.find((p) => p.name === 'drop-debug-logs');
  assert.deepEqual(saved.steps.map((s) => s.type), ['filter', 'batch', 'mask']);
  ctx.pipelineId = saved.id;
  await page.mouse.move(0, 0);
  await snapshot('pipelines', { doc: true });

  await page.goto(`${ctx.collectorUrl}#routing`);
  await page.getByRole('button', { name: 'Edit everything' }).click();
  const dialog = page.locator('#item-dialog');
  // A log-only path on a route that also carries metrics and traces: refused, naming the signal.
  const versionBeforeTypo = (await apiAsBrowser('GET', `/api/v1/collectors/${ctx.collectorId}`)).body.config.version;
  await dialog.getByLabel('Condition').fill('severity_text == "ERROR"');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expectText(dialog.locator('[data-field="condition"] .field-error'), /severity_text.*(metrics|traces)|(metrics|traces).*severity_text/);
  assert.equal((await apiAsBrowser('GET', `/api/v1/collectors/${ctx.collectorId}`)).body.config.version, versionBeforeTypo);
  await dialog.getByLabel('Condition').fill('true');
  await dialog.getByLabel('Pipeline').selectOption(ctx.pipelineId);
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await expectText(page.locator('#routes-list'), 'drop-debug-logs');

  // The Config tab follows live: the route's new pipeline is a new version, diffed against the last.
  const current = (await apiAsBrowser('GET', `/api/v1/collectors/${ctx.collectorId}`)).body.config.version;
  await openTab(page, 'Config');
  await expectText(page.getByTestId('config-version'), `Version ${current}`);
  await expectText(page.locator('#config-diff'), 'otelcol.processor.filter');
  await page.evaluate(() => {
    const panel = document.querySelector('#config-diff').closest('.panel');
    window.scrollTo(0, panel.getBoundingClientRect().top + window.scrollY - 64);
  });
  await snapshot('collector-config-diff', { doc: true });
});

step('the topology canvas shows the pipeline, then rates once own_metrics arrive', async () => {
  const { page } = ctx;
  await openTab(page, 'Topology');
  const probe = await fetch(`${ctx.base}/api/v1/collectors/${ctx.collectorId}/topology`, { headers: { Cookie: '' } });
  const topology = await apiAsBrowser('GET', `/api/v1/collectors/${ctx.collectorId}/topology`);
  if (topology.status === 404) {
    console.log('# SKIP topology: GET /api/v1/collectors/{id}/topology is not served by this build');
    return;
  }
  assert.equal(probe.status, 401, 'topology needs a session');
  await page.locator('[data-testid="topology-svg"]').waitFor({ state: 'visible' });
  const nodes = await page.locator('.topo-node').count();
  assert.ok(nodes >= 4, `source, route, steps and destination drawn (${nodes})`);
  await expectText(page.locator('#topology-empty'), 'own_metrics are not arriving yet');
  await snapshot('topology-waiting-for-metrics', { doc: true });

  const metricsProbe = await fetch(`${ctx.base}/v1/metrics`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  if (metricsProbe.status === 404) {
    console.log('# SKIP own_metrics: POST /v1/metrics is not served by this build; the canvas stays without rates');
    return;
  }
  // A second source, route and destination (through the API), so the canvas shows a real graph.
  const base = `/api/v1/collectors/${ctx.collectorId}`;
  assert.equal((await apiAsBrowser('POST', `${base}/sources`, { name: 'host', type: 'hostmetrics', settings: { collection_interval: '30s' } })).status, 201);
  // The collector runs Alloy's default stability level, which refuses the experimental debug exporter:
  // a debug destination previews with its generally-available alternative instead.
  const previewed = await apiAsBrowser('POST', `${base}/routes?validate_only=true`, {
    name: 'host-debug', priority: 10, is_final: false, destination_ids: [(await apiAsBrowser('POST', `${base}/destinations`, { name: 'local-debug', type: 'debug', settings: {} })).body.id],
  });
  assert.equal(previewed.status, 200, JSON.stringify(previewed.body));
  const previewContent = previewed.body.configs[0].content;
  assert.match(previewContent, /loki\.echo/);
  assert.doesNotMatch(previewContent, /otelcol\.exporter\.debug/);
  const mimir = await apiAsBrowser('POST', `${base}/destinations`, { name: 'mimir', type: 'prometheus_remote_write', settings: { url: 'https://mimir.example/api/v1/push' } });
  assert.equal(mimir.status, 201);
  assert.equal((await apiAsBrowser('POST', `${base}/routes`, {
    name: 'host-metrics', condition: 'resource.attributes["linkmesh.source.name"] == "host"', priority: 50, is_final: false,
    destination_ids: [mimir.body.id],
  })).status, 201);
  const grown = await apiAsBrowser('GET', `${base}/topology`);
  await page.locator('.topo-node[data-kind="source"]').nth(1).waitFor({ state: 'visible', timeout: WAIT });
  const components = grown.body.nodes.flatMap((node) => node.components || []);
  assert.ok(components.length, 'the topology names the rendered components');
  for (const seconds of [0, 30]) {
    const response = await fetch(`${ctx.base}/v1/metrics`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${ctx.token}` },
      body: JSON.stringify(ownMetrics(components, seconds, { selfTelemetry: true })),
    });
    assert.equal(response.status, 200, `own_metrics push: ${await response.text()}`);
  }
  await expectText(page.locator('[data-testid="node-rates"]', { hasText: /in \d/ }), /in \d/);
  await page.locator('[data-testid="edge-rate"]').first().waitFor({ state: 'visible', timeout: WAIT });
  await page.locator('#topology-empty').waitFor({ state: 'hidden', timeout: WAIT });
  await expectText(page.locator('#topology-meta'), /own_metrics received/);

  // The enrollment config's own chain is drawn apart, as local components, with rates on its edges that
  // sit between the nodes, never on one.
  await page.locator('.topo-node[data-kind="local"]').nth(SELF_TELEMETRY_CHAIN.length - 1).waitFor({ state: 'visible', timeout: WAIT });
  const deadline = Date.now() + WAIT;
  while (await page.locator('[data-testid="edge-rate"]').count() < SELF_TELEMETRY_CHAIN.length - 1 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const covered = await page.evaluate(() => {
    const nodes = Array.from(document.querySelectorAll('.topo-node rect.body')).map((rect) => rect.getBoundingClientRect());
    const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    const labels = Array.from(document.querySelectorAll('[data-testid="edge-rate"]'));
    return { labels: labels.length, covered: labels.filter((label) => nodes.some((node) => hit(label.getBoundingClientRect(), node))).map((label) => label.textContent) };
  });
  assert.ok(covered.labels >= SELF_TELEMETRY_CHAIN.length - 1, `edge rates drawn (${covered.labels})`);
  assert.deepEqual(covered.covered, [], 'no edge rate label lies on a node');

  // Keyboard: every node is a Tab stop with a name and a visible focus ring.
  const first = page.getByRole('img', { name: /^source .* \(otlp\): in / }).first();
  await first.focus();
  assert.equal(await page.evaluate(() => document.activeElement.classList.contains('topo-node')), true, 'a node takes focus');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => {
    const node = document.activeElement;
    return { isNode: node.classList.contains('topo-node'), name: node.getAttribute('aria-label'), stroke: getComputedStyle(node.querySelector('rect.body')).strokeWidth };
  });
  assert.ok(focused.isNode, 'Tab moves to the next node');
  assert.match(focused.name, /^\w+ .+ \(.+\): in .+, out .+, errors .+$/);
  assert.equal(focused.stroke, '3px', 'the focused node shows a focus ring');
  await page.evaluate(() => document.activeElement.blur());
  await page.mouse.move(0, 0);
  await snapshot('topology', { doc: true });
});

step('settings: a service account token is shown once; an admin adds a user', async () => {
  const { page } = ctx;
  await page.goto(`${ctx.base}/settings`);
  await page.getByLabel('Name', { exact: true }).fill('ci-deployer');
  await page.locator('#sa-role').selectOption('operator');
  await page.getByRole('button', { name: 'Create', exact: true }).click();
  await page.getByRole('button', { name: 'Create a token for ci-deployer' }).click();
  await page.getByLabel('Label').fill('github-actions');
  await page.getByLabel('Expires after (days)').fill('90');
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.locator('#sa-token-box').waitFor({ state: 'visible' });
  const token = await page.locator('#sa-token').inputValue();
  assert.match(token, /^lmsat_/);
  const me = await fetch(`${ctx.base}/api/v1/auth/me`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal((await me.json()).name, 'ci-deployer');

  await page.getByLabel('Username', { exact: true }).fill('dana');
  await page.locator('#user-role').selectOption('viewer');
  await page.getByLabel('Initial password').fill('short');
  await page.getByRole('button', { name: 'Add user' }).click();
  await expectText(page.locator('[data-field="password"] .field-error'), /12 characters/);
  await page.getByLabel('Initial password').fill('a-long-enough-password');
  await page.getByRole('button', { name: 'Add user' }).click();
  await expectText(page.locator('#users-table'), 'dana');
  await page.mouse.move(0, 0);
  await snapshot('settings', { doc: true });
});

step('the Cluster page shows this node as the leader holding every slot, live', async () => {
  const { page } = ctx;
  await page.getByRole('link', { name: 'Cluster', exact: true }).click();
  await page.waitForURL(/\/cluster$/);
  await expectText(page.locator('#members-table tbody'), /e2e-node\s*leader/);
  await expectText(page.locator('#members-table tbody'), /voter/);
  await expectText(page.locator('#slot-legend'), 'e2e-node: 1024 slots (100%)');
  await expectText(page.locator('#live-indicator'), 'Live');
  assert.match(await page.locator('#cluster-id').innerText(), /^clu_/);
  await page.mouse.move(0, 0);
  await snapshot('cluster', { doc: true });
});

step('the API reference lists every route of the served OpenAPI document, from this server only', async () => {
  const { page } = ctx;
  await page.getByRole('link', { name: 'API', exact: true }).click();
  await page.waitForURL(/\/api-reference$/);
  await expectText(page.getByRole('heading', { level: 1 }), 'API reference');
  const minting = page.locator('article[data-verb="POST"][data-path="/api/v1/collectors/{id}/token"]');
  await expectText(minting, /Mint or rotate a collector's token/);
  await expectText(minting, /Role operator or above/);
  // The body's fields, from the handler's type, and a link to its schema.
  const create = page.locator('article[data-verb="POST"][data-path="/api/v1/collectors"]');
  await expectText(create, /stability_level/);
  await create.getByRole('link', { name: 'CreateCollector' }).click();
  await page.waitForURL(/#schema-CreateCollector$/);
  // Every operation of the document the server serves is on the page, once.
  const description = (await apiAsBrowser('GET', '/api/v1/openapi.json')).body;
  const operations = Object.entries(description.paths).flatMap(([path, item]) => Object.keys(item).map((verb) => [verb.toUpperCase(), path]));
  assert.ok(operations.length > 50, `only ${operations.length} operations`);
  for (const [verb, path] of operations) {
    assert.equal(await page.locator(`article[data-verb="${verb}"][data-path="${path}"]`).count(), 1, `${verb} ${path}`);
  }
  // Nothing is loaded from anywhere else.
  const foreign = await page.evaluate(() => Array.from(document.querySelectorAll('script[src], link[href], img[src]'))
    .map((node) => node.src || node.href)
    .filter((url) => new URL(url, location.href).origin !== location.origin));
  assert.deepEqual(foreign, []);
  await page.goto(`${ctx.base}/api-reference`);
  await page.mouse.move(0, 0);
  await snapshot('api-reference', { doc: true });
});

step('a viewer sees the fleet but no edit controls or settings', async () => {
  const context = await ctx.browser.newContext({ viewport: { width: 1440, height: 900 } });
  const viewer = await context.newPage();
  await viewer.goto(`${ctx.base}/login`);
  await viewer.getByLabel('Username', { exact: true }).fill('dana');
  await viewer.getByLabel('Password').fill('a-long-enough-password');
  await viewer.getByRole('button', { name: 'Sign in' }).click();
  await viewer.waitForURL(/\/collectors$/);
  await expectText(viewer.getByTestId('whoami'), /dana\s+\(viewer\)/);
  assert.equal(await viewer.getByRole('link', { name: 'Settings' }).count(), 0);
  assert.equal(await viewer.getByTestId('add-collector-header').count(), 0);
  assert.equal(await viewer.getByTestId('enroll-collectors').count(), 0);
  await viewer.goto(ctx.collectorUrl);
  assert.equal(await viewer.getByRole('button', { name: 'Add source' }).count(), 0);
  // Enrollment tokens: the list (the one created and revoked above), without create or revoke.
  await viewer.goto(`${ctx.base}/collectors/enroll`);
  await expectText(viewer.locator(`tr[data-token-id="${ctx.enrollmentTokenId}"]`), 'revoked');
  assert.equal(await viewer.locator('#enroll-token-form').count(), 0);
  assert.equal(await viewer.getByRole('button', { name: /Revoke/ }).count(), 0);
  const settings = await viewer.goto(`${ctx.base}/settings`);
  assert.equal(settings.status(), 403);
  await context.close();
});

step('signing in from a link to a tab lands on that tab', async () => {
  const context = await ctx.browser.newContext({ viewport: { width: 1440, height: 900 } });
  const visitor = await context.newPage();
  await visitor.goto(`${ctx.collectorUrl}#topology`);
  await visitor.waitForURL(/\/login\?next=/);
  await visitor.getByLabel('Username', { exact: true }).fill('admin');
  await visitor.getByLabel('Password').fill(PASSWORD);
  await visitor.getByRole('button', { name: 'Sign in' }).click();
  await visitor.waitForURL((url) => url.pathname === new URL(ctx.collectorUrl).pathname);
  assert.equal(new URL(visitor.url()).hash, '#topology');
  await visitor.locator('#panel-topology').waitFor({ state: 'visible' });
  assert.equal(await visitor.getByRole('tab', { name: 'Topology' }).getAttribute('aria-selected'), 'true');
  await context.close();
});

step('keyboard: tabs move with the arrow keys', async () => {
  const { page } = ctx;
  await page.goto(`${ctx.collectorUrl}#overview`);
  await page.getByRole('tab', { name: 'Overview' }).focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getByRole('tab', { name: 'Inputs' }).getAttribute('aria-selected'), 'true');
  await page.keyboard.press('End');
  assert.equal(await page.getByRole('tab', { name: 'Topology' }).getAttribute('aria-selected'), 'true');
  await page.keyboard.press('Home');
  await expectText(page.locator('#overview-status'), HOST_ID);
  // "Last seen" can be judged against how often the collector is expected to poll (its cadence: ~1 s here).
  const collector = (await apiAsBrowser('GET', `/api/v1/collectors/${ctx.collectorId}`)).body;
  assert.equal(typeof collector.expected_poll_interval_seconds, 'number');
  await expectText(page.locator('#collector-poll-interval'), /expected to poll every \d+ s/);
  await expectText(page.getByTestId('overview-poll-interval'), `expected to poll every ${collector.expected_poll_interval_seconds} s`);
  await expectText(page.locator('#overview-config'), /current version/);
  // Alloy 1.12 reports APPLIED itself: the overview says so, and where it came from.
  await expectText(page.locator('#overview-config'), /Applied\s*reported by Alloy/);
  await expectText(page.locator('#overview-status'), /Stability level\s*generally-available/);
  await snapshot('collector-overview', { doc: true });
});

step('the fleet list at a glance: every status, live', async () => {
  const list = ctx.listPage;
  await expectText(list.locator('tr', { hasText: 'web-eu-1' }).locator('td.col-status'), /stale|offline/, 40000);
  await expectText(list.locator('tr', { hasText: 'web-ap-1' }).locator('td.col-status'), 'degraded');
  await expectText(list.locator('tr', { hasText: 'web-us-1' }).locator('td.col-status'), 'connected');
  const rows = list.locator('#collectors-body tr[data-collector-id]');
  await list.locator('#status-chips .chip[data-status="awaiting_connection"]').click();
  await waitForCount(rows, 2);
  await list.locator('#status-chips .chip[data-status="awaiting_connection"]').click();
  await waitForCount(rows, 6);
  await list.mouse.move(0, 0);
  await snapshot('collectors-list', { page: list, doc: true });
});

async function waitForCount(locator, count, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let last = -1;
  while (Date.now() < deadline) {
    last = await locator.count();
    if (last === count) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`expected ${count} of ${locator}, last saw ${last}`);
}

async function rowNames(page) {
  return page.locator('#collectors-body tr[data-collector-id] .row-name').allInnerTexts();
}

step('the list at scale: 200 collectors in natural order, fetched page by page as the table scrolls', async () => {
  const list = ctx.listPage;
  const names = Array.from({ length: 200 }, (_, index) => `sim-${index + 1}`);
  ctx.simIds = {};
  for (let start = 0; start < names.length; start += 25) {
    const created = await Promise.all(names.slice(start, start + 25).map((name) =>
      apiAsBrowser('POST', '/api/v1/collectors', { name, mode: 'alloy-remotecfg' })));
    for (const answer of created) {
      assert.equal(answer.status, 201);
      ctx.simIds[answer.body.name] = answer.body.id;
    }
  }
  await list.goto(`${ctx.base}/collectors?q=sim-`);
  await expectText(list.locator('#collectors-summary'), '200 collectors match');
  const first = await rowNames(list);
  assert.deepEqual(first.slice(0, 11), names.slice(0, 11), 'natural order: sim-2 before sim-10');
  assert.ok(first.length < 100, `only the rows in view are in the DOM (${first.length})`);
  // The first page holds 100; scrolling to the end fetches the next one.
  const pages = [];
  list.on('request', (request) => { if (request.url().includes('/api/v1/collectors?') && request.url().includes('cursor=')) pages.push(request.url()); });
  await list.locator('#collectors-scroll').evaluate((node) => { node.scrollTop = node.scrollHeight; });
  await list.locator('#collectors-body tr', { hasText: 'sim-200' }).waitFor({ state: 'visible' });
  assert.ok(pages.length >= 1, 'a page was fetched with the cursor');
  const last = await rowNames(list);
  assert.equal(last[last.length - 1], 'sim-200');
  assert.ok(last.length < 100, `still only the rows in view (${last.length})`);
  const height = await list.locator('#collectors-body tr[data-collector-id]').first().evaluate((node) => node.getBoundingClientRect().height);
  assert.equal(Math.round(height), 56, 'rows keep the fixed height the virtual table computes with');
});

step('sortable columns: a click sorts, a second click reverses; the sort is in the URL', async () => {
  const list = ctx.listPage;
  await list.locator('#collectors-scroll').evaluate((node) => { node.scrollTop = 0; });
  const nameHeader = list.locator('th[data-sort="name"]');
  assert.equal(await nameHeader.getAttribute('aria-sort'), 'ascending');
  await nameHeader.getByRole('button').click();
  await expectText(list.locator('#collectors-body tr[data-collector-id]').first(), 'sim-200');
  await list.locator('th[data-sort="name"][aria-sort="descending"]').waitFor();
  assert.equal(new URL(list.url()).searchParams.get('sort'), '-name');
  assert.deepEqual((await rowNames(list)).slice(0, 3), ['sim-200', 'sim-199', 'sim-198']);
  const statusHeader = list.locator('th[data-sort="status"]');
  await statusHeader.getByRole('button').click();
  await list.waitForURL((url) => url.searchParams.get('sort') === 'status');
  await list.locator('th[data-sort="status"][aria-sort="ascending"]').waitFor();
  assert.equal(await nameHeader.getAttribute('aria-sort'), 'none');
  await nameHeader.getByRole('button').click();
  await list.waitForURL((url) => !url.searchParams.has('sort'));
  await expectText(list.locator('#collectors-body tr[data-collector-id]').first(), 'sim-1');
});

step('filter by label selector and attribute: kept in the URL, restored on reload and on Back', async () => {
  const list = ctx.listPage;
  for (const name of ['sim-2', 'sim-10', 'sim-33']) {
    const patched = await apiAsBrowser('PATCH', `/api/v1/collectors/${ctx.simIds[name]}`, { labels: { env: 'prod', team: name === 'sim-33' ? 'db' : 'web' } });
    assert.equal(patched.status, 200);
  }
  await list.getByLabel('Labels', { exact: true }).fill('env=prod,team=web');
  await expectText(list.locator('#collectors-summary'), '2 collectors match');
  assert.deepEqual(await rowNames(list), ['sim-2', 'sim-10']);
  await expectText(list.locator('#collectors-body tr', { hasText: 'sim-10' }).locator('td.col-labels'), /env\s*prod/);
  const url = new URL(list.url());
  assert.equal(url.searchParams.get('selector'), 'env=prod,team=web');
  assert.equal(url.searchParams.get('q'), 'sim-');
  await list.reload();
  assert.equal(await list.getByLabel('Labels', { exact: true }).inputValue(), 'env=prod,team=web');
  await expectText(list.locator('#collectors-summary'), '2 collectors match');
  assert.deepEqual(await rowNames(list), ['sim-2', 'sim-10']);
  // A selector that does not parse is shown at the field.
  await list.getByLabel('Labels', { exact: true }).fill('env in prod');
  await expectText(list.locator('#filter-selector-error'), /./);
  await list.getByLabel('Labels', { exact: true }).fill('env=prod,team=web');
  await expectText(list.locator('#collectors-summary'), '2 collectors match');
  assert.ok(await list.locator('#filter-selector-error').isHidden());
  // Reported attributes: the remote attribute given at creation.
  const tagged = await apiAsBrowser('POST', '/api/v1/collectors', { name: 'sim-attr', mode: 'opamp', attributes: { os: 'linux' } });
  assert.equal(tagged.status, 201);
  await list.goto(`${ctx.base}/collectors?attr=os%3Dlinux`);
  await expectText(list.locator('#collectors-summary'), '1 collector matches');
  assert.deepEqual(await rowNames(list), ['sim-attr']);
  await list.goBack();
  assert.equal(await list.getByLabel('Labels', { exact: true }).inputValue(), 'env=prod,team=web');
  await list.getByLabel('Labels', { exact: true }).fill('env=prod');
  await expectText(list.locator('#collectors-summary'), '3 collectors match');
  await list.mouse.move(0, 0);
  await snapshot('collectors-list-selector', { page: list, doc: true });
});

step('bulk select: the confirmation names the count; actions go to the bulk API', async () => {
  const list = ctx.listPage;
  const rows = list.locator('#collectors-body tr[data-collector-id]');
  await waitForCount(rows, 3);
  await rows.nth(0).locator('input[type="checkbox"]').check();
  await rows.nth(1).locator('input[type="checkbox"]').check();
  await expectText(list.locator('#bulk-count'), '2 selected');
  await list.locator('#bulk-bar').getByRole('button', { name: 'Delete' }).click();
  await expectText(list.locator('#bulk-dialog-title'), 'Delete 2 collectors?');
  await list.locator('#bulk-dialog').getByRole('button', { name: 'Cancel' }).click();
  await list.locator('#bulk-bar').getByRole('button', { name: 'Select all 3 matching' }).click();
  await expectText(list.locator('#bulk-count'), '3 selected');
  await list.locator('#bulk-bar').getByRole('button', { name: 'Label…' }).click();
  await expectText(list.locator('#bulk-dialog-title'), 'Label 3 collectors?');
  await list.mouse.move(0, 0);
  await snapshot('collectors-bulk-label', { page: list, doc: true });
  const probe = await apiAsBrowser('POST', '/api/v1/collectors:bulk', {});
  if (probe.status === 404) {
    // The bulk API is not on this branch yet: the dialog says so instead of pretending.
    await list.getByLabel('Set labels').fill('tier=gold');
    await list.locator('#bulk-confirm').click();
    await expectText(list.locator('#bulk-dialog .form-error'), 'does not offer bulk actions');
    await list.locator('#bulk-dialog').getByRole('button', { name: 'Cancel' }).click();
    return;
  }
  await list.getByLabel('Set labels').fill('tier=gold');
  await list.locator('#bulk-confirm').click();
  await list.locator('#bulk-dialog').waitFor({ state: 'hidden' });
  for (const name of ['sim-2', 'sim-10', 'sim-33']) {
    const collector = await apiAsBrowser('GET', `/api/v1/collectors/${ctx.simIds[name]}`);
    assert.equal(collector.body.labels.tier, 'gold', name);
  }
  await rows.nth(0).locator('input[type="checkbox"]').check();
  await list.locator('#bulk-bar').getByRole('button', { name: 'Rotate tokens' }).click();
  await expectText(list.locator('#bulk-dialog-title'), 'Rotate the tokens of 1 collector?');
  await list.locator('#bulk-confirm').click();
  await list.locator('#bulk-tokens-download').waitFor({ state: 'visible' });
  const [download] = await Promise.all([list.waitForEvent('download'), list.locator('#bulk-tokens-download').click()]);
  const csv = fs.readFileSync(await download.path(), 'utf8');
  assert.match(csv, /^collector_id,name,token\r\n"col_[0-9a-f]+","sim-2?[0-9]*","lmct_/);
  await list.locator('#bulk-dialog').getByRole('button', { name: 'Done' }).click();
  await rows.nth(2).locator('input[type="checkbox"]').check();
  await list.locator('#bulk-bar').getByRole('button', { name: 'Delete' }).click();
  await expectText(list.locator('#bulk-dialog-title'), 'Delete 1 collector?');
  await list.locator('#bulk-confirm').click();
  await expectText(list.locator('#collectors-summary'), '2 collectors match');
});

// ---------------------------------------------------------------- fleet-wide items and a staged rollout

// A fleet of Alloy-compatible clients (`linkmesh simulate`, following Alloy's remotecfg client rules):
// a delivered config containing FAIL_MARKER fails to load, and the client reports FAILED as Alloy does.
const FLEET_SIZE = 200;
const FAIL_MARKER = 'broken-gateway.invalid';
const POOL = 'edge';

function startFleet() {
  const child = spawn(BINARY, ['simulate', '--url', ctx.base, '--collectors', String(FLEET_SIZE), '--name-prefix', 'fleet-',
    '--admin-password', PASSWORD, '--poll-interval', '1s', '--metrics-interval', '0s', '--duration', '900s',
    '--ramp-up', '1s', '--connections', '32', '--tokens-file', path.join(ctx.dir, 'fleet-tokens.tsv'),
    '--fail-when-contains', FAIL_MARKER], {
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  ctx.fleetLog = [];
  const keep = (chunk) => { ctx.fleetLog.push(chunk.toString()); if (ctx.fleetLog.length > 500) ctx.fleetLog.shift(); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  ctx.fleet = child;
}

async function fleetCollectors(query = '') {
  const answer = await apiAsBrowser('GET', `/api/v1/collectors?q=fleet-&limit=1000${query}`);
  assert.equal(answer.status, 200);
  return answer.body.items || answer.body.collectors;
}

// Delivered the collector's current version and reported it APPLIED.
const runsCurrent = (item) => item.config.remote_status === 'applied' && item.config.delivered_hash === item.config.hash;

async function eventually(what, check, timeout = 60000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last === true) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what}: still ${JSON.stringify(last)}\n--- simulate (tail) ---\n${(ctx.fleetLog || []).join('').slice(-3000)}`);
}

// Saves the item dialog. A change that alters collectors' configs asks how to roll out first:
// `rollout` says how ('all' or 'staged'), and `expectImpact` whether the question must come.
async function saveFleetItem(page, { rollout = 'all', firstBatch, expectImpact } = {}) {
  const dialog = page.locator('#item-dialog');
  const impact = page.getByTestId('impact-dialog');
  await dialog.getByRole('button', { name: 'Save' }).click();
  const outcome = await Promise.race([
    impact.waitFor({ state: 'visible' }).then(() => 'impact'),
    dialog.waitFor({ state: 'hidden' }).then(() => 'saved'),
  ]);
  if (expectImpact !== undefined) assert.equal(outcome === 'impact', expectImpact, `impact question: ${outcome}`);
  if (outcome === 'impact') {
    await expectText(impact, `This changes the config of ${FLEET_SIZE} collectors`);
    if (rollout === 'staged') {
      await impact.getByLabel(/Staged/).check();
      await impact.getByLabel('First batch', { exact: true }).fill(firstBatch);
    } else {
      await impact.getByLabel('All at once').check();
    }
    await impact.getByRole('button', { name: 'Save and roll out' }).click();
    await dialog.waitFor({ state: 'hidden' });
  }
}

step(`fleet-wide: ${FLEET_SIZE} simulated Alloy collectors connect and are labelled in bulk from the list`, async () => {
  startFleet();
  await eventually(`${FLEET_SIZE} fleet collectors connected`, async () => {
    const items = await fleetCollectors();
    const connected = items.filter((item) => item.status === 'connected').length;
    return connected === FLEET_SIZE || `${connected} of ${items.length} connected`;
  }, 120000);
  const list = ctx.listPage;
  await list.goto(`${ctx.base}/collectors?q=fleet-`);
  await expectText(list.locator('#collectors-summary'), `${FLEET_SIZE} collectors match`);
  await list.locator('#collectors-body tr[data-collector-id]').first().locator('input[type="checkbox"]').check();
  await list.locator('#bulk-bar').getByRole('button', { name: `Select all ${FLEET_SIZE} matching` }).click();
  await expectText(list.locator('#bulk-count'), `${FLEET_SIZE} selected`);
  await list.locator('#bulk-bar').getByRole('button', { name: 'Label…' }).click();
  await expectText(list.locator('#bulk-dialog-title'), `Label ${FLEET_SIZE} collectors?`);
  await list.getByLabel('Set labels').fill(`pool=${POOL}`);
  await list.locator('#bulk-confirm').click();
  await list.locator('#bulk-dialog').waitFor({ state: 'hidden' });
  await list.getByLabel('Labels', { exact: true }).fill(`pool=${POOL}`);
  await expectText(list.locator('#collectors-summary'), `${FLEET_SIZE} collectors match`);
});

step('fleet-wide: a source, a destination and a route attached by selector reach every labelled collector', async () => {
  const { page } = ctx;
  await page.goto(`${ctx.base}/fleet`);
  await page.getByRole('link', { name: 'Fleet-wide' }).waitFor();
  const dialog = page.locator('#item-dialog');

  await page.getByRole('button', { name: 'Add destination' }).click();
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByLabel('Name', { exact: true }).fill('prod-gateway');
  await dialog.getByLabel('Label selector').fill(`pool=${POOL}`);
  await dialog.getByLabel('Type', { exact: true }).selectOption('otlp_http');
  await dialog.getByLabel(/^endpoint/).fill('https://gateway.example.com/otlp');
  await dialog.getByLabel('bearer_token').fill('fleet-secret-value');
  await saveFleetItem(page);
  await expectText(page.locator('#destinations-list tr', { hasText: 'prod-gateway' }), `pool=${POOL}`);
  await expectText(page.locator('#destinations-list tr', { hasText: 'prod-gateway' }).getByTestId('item-collectors'), String(FLEET_SIZE));

  await page.getByRole('button', { name: 'Add source' }).click();
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByLabel('Name', { exact: true }).fill('prod-otlp-in');
  await dialog.getByLabel('Label selector').fill(`pool=${POOL}`);
  await dialog.getByLabel('Type', { exact: true }).selectOption('otlp');
  await dialog.getByLabel('grpc_endpoint').fill(':4317');
  await dialog.getByLabel('http_endpoint').fill('');
  await saveFleetItem(page);

  await page.getByRole('button', { name: 'Add route' }).click();
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByLabel('Name', { exact: true }).fill('prod-everything');
  await dialog.getByLabel('Label selector').fill(`pool=${POOL}`);
  assert.ok(await dialog.getByLabel(/prod-gateway/).isChecked(), 'the only fleet-wide destination is preselected');
  await saveFleetItem(page, { expectImpact: true });
  await expectText(page.locator('#routes-list'), 'prod-everything');
  await page.mouse.move(0, 0);
  await snapshot('fleet-wide-items', { doc: true });

  await eventually('every fleet collector runs the gateway config', async () => {
    const items = await fleetCollectors();
    const applied = items.filter(runsCurrent).length;
    return applied === FLEET_SIZE || `${applied} applied`;
  });
  // The Config tab of one of them says why the destination is there.
  const [one] = await fleetCollectors(`&selector=pool%3D${POOL}`);
  await page.goto(`${ctx.base}/collectors/${one.id}#config`);
  await expectText(page.getByTestId('config-items').locator('tr', { hasText: 'prod-gateway' }), new RegExp(`because of selector\\s*pool=${POOL}`));
  ctx.gatewayVersion = (await apiAsBrowser('GET', `/api/v1/collectors/${one.id}`)).body.config.version;
});

step('fleet-wide: a staged change pauses itself when its first batch reports FAILED, and rolls back', async () => {
  const { page } = ctx;
  await page.goto(`${ctx.base}/fleet`);
  await page.getByRole('button', { name: 'Edit prod-gateway' }).click();
  const dialog = page.locator('#item-dialog');
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByLabel(/^endpoint/).fill(`https://${FAIL_MARKER}/otlp`);
  await saveFleetItem(page, { rollout: 'staged', firstBatch: '10%', expectImpact: true });

  await page.getByRole('link', { name: 'Rollouts' }).click();
  await page.locator('#rollouts-table tbody tr[data-rollout]').first().click();
  await expectText(page.locator('#rollout-title'), 'paused', 60000);
  await expectText(page.locator('#rollout-paused'), /FAILED|failed/);
  await expectText(page.locator('#rollout-collectors tbody tr').first(), /failed/);
  await page.mouse.move(0, 0);
  await snapshot('rollout-paused', { doc: true });
  // Only the first batch got the broken config; the others still run the gateway version.
  const items = await fleetCollectors();
  const failed = items.filter((item) => item.config.remote_status === 'failed');
  assert.equal(failed.length, FLEET_SIZE / 10, 'the first batch (10 %) failed, nobody else got the change');
  const changed = items.filter((item) => item.config.version > ctx.gatewayVersion).length;
  assert.equal(changed, failed.length, 'the rest are held at the version they run');

  await page.locator('[data-action="rollout-rollback"]').click();
  await eventually('every fleet collector applied the previous config again', async () => {
    const now = await fleetCollectors();
    const applied = now.filter(runsCurrent).length;
    return applied === FLEET_SIZE || `${applied} applied`;
  });
  await expectText(page.locator('#rollout-meta'), /rolled back by/);
  const destination = (await apiAsBrowser('GET', '/api/v1/destinations')).body.destinations.find((d) => d.name === 'prod-gateway');
  assert.equal(destination.settings.endpoint, 'https://gateway.example.com/otlp', 'the rollback restored the destination');
});

step('an OpenTelemetry Collector\'s page shows its agent: health with the last error, description, capabilities and components, live', async () => {
  const { page } = ctx;
  const created = await apiAsBrowser('POST', '/api/v1/collectors', { name: 'otel-agent-1', mode: 'opamp' });
  assert.equal(created.status, 201);
  const token = (await apiAsBrowser('POST', `/api/v1/collectors/${created.body.id}/token`)).body.token;
  await page.goto(`${ctx.base}/collectors/${created.body.id}`);
  const panel = page.getByTestId('agent-panel');
  const health = panel.locator('#agent-health [data-health]');
  await expectText(panel.locator('#agent-health'), 'The agent has not connected yet');
  assert.equal(await health.getAttribute('data-health'), 'unknown');
  await expectText(panel.locator('#agent-capabilities'), 'Not reported yet');
  await expectText(panel.locator('#agent-components-counts'), 'not listed yet');
  await panel.scrollIntoViewIfNeeded();
  await snapshot('collector-agent-panel-not-connected');
  await page.evaluate(() => { window.__noReload = true; });

  // opampsupervisor v0.149's capability bits (0x7C47), an unhealthy collector and its build's components.
  const uid = Array.from({ length: 16 }, (_, i) => 0x40 + i);
  await sendOpamp(token, agentToServer({
    uid,
    sequence: 1,
    capabilities: 0x7C47,
    description: {
      identifying: { 'service.name': 'otelcol-contrib', 'service.version': '0.149.0' },
      nonIdentifying: { 'host.name': 'web-7.example.internal', 'os.type': 'linux' },
    },
    health: { healthy: false, status: 'StatusRecoverableError', lastError: 'Agent process PID=42 exited unexpectedly' },
    components: {
      receivers: ['otlp', 'hostmetrics'], processors: ['batch'], exporters: ['otlp_grpc', 'otlp_http', 'debug'], extensions: ['health_check'],
    },
  }));

  await expectText(health, /^\s*unhealthy\s*$/);
  assert.equal(await health.getAttribute('data-health'), 'unhealthy');
  await expectText(panel.getByTestId('agent-last-error'), 'Agent process PID=42 exited unexpectedly');
  await expectText(panel.locator('#agent-health'), 'StatusRecoverableError');
  await expectText(panel.getByTestId('agent-service'), 'otelcol-contrib 0.149.0');
  await expectText(panel.getByTestId('agent-host'), 'web-7.example.internal');
  await expectText(panel.getByTestId('agent-os'), 'linux');
  assert.deepEqual(await panel.locator('#agent-capabilities .cap-chip').allInnerTexts(), ['reports status', 'accepts remote config',
    'reports effective config', 'reports own metrics', 'accepts restart command', 'reports health', 'reports remote config status',
    'reports heartbeats', 'reports available components']);
  await expectText(panel.locator('#agent-components-counts'), '2 receivers · 1 processor · 3 exporters · 0 connectors · 1 extension');
  assert.ok(!/\bnull\b|undefined/.test(await panel.innerText()), 'no "null" or "undefined" in the panel');
  const components = panel.locator('#agent-components');
  assert.equal(await components.getAttribute('open'), null, 'the components start collapsed');
  assert.ok(await panel.locator('#agent-components-body').isHidden());
  await components.locator('summary').click();
  await expectText(panel.locator('#agent-components-body'), /exporters\s*debug\s*otlp_grpc\s*otlp_http/);
  await panel.scrollIntoViewIfNeeded();
  await page.mouse.move(0, 0);
  await snapshot('collector-agent-panel');

  // Healthy again, in a message without description or components (agents leave out what did not
  // change): the health is redrawn, the rest stays, and so does the open components list.
  await sendOpamp(token, agentToServer({ uid, sequence: 2, capabilities: 0x7C47, health: { healthy: true, status: 'StatusOK' } }));
  await expectText(health, /^\s*healthy\s*$/);
  assert.equal(await panel.getByTestId('agent-last-error').count(), 0, 'no error once healthy');
  await expectText(panel.locator('#agent-health'), 'StatusOK');
  await expectText(panel.getByTestId('agent-service'), 'otelcol-contrib 0.149.0');
  await expectText(panel.locator('#agent-components-counts'), '3 exporters');
  assert.equal(await components.getAttribute('open'), '', 'still open');
  assert.equal(await page.evaluate(() => window.__noReload), true, 'updated without a reload');

  // The agent accepts restart commands (0x7C47): the restart is asked in a dialog that says what it
  // does, goes to the agent in its next reply, and the health report after it is the outcome.
  const restart = panel.getByRole('button', { name: 'Restart collector' });
  await restart.waitFor({ state: 'visible', timeout: WAIT });
  await restart.click();
  const dialog = page.locator('#restart-dialog');
  await expectText(dialog, 'pipelines stop briefly');
  await expectText(dialog.locator('#restart-dialog-title'), 'Restart collector otel-agent-1?');
  await snapshot('collector-restart-dialog');
  await dialog.getByRole('button', { name: 'Restart collector' }).click();
  await eventually('the dialog closes once the restart is requested', async () => !(await dialog.isVisible()) || 'still open');
  const restartStatus = panel.getByTestId('agent-restart-status');
  await expectText(restartStatus, "waiting for the agent's next health report");
  const reply = await sendOpamp(token, agentToServer({ uid, sequence: 3, capabilities: 0x7C47 }));
  assert.ok(topLevelFields(reply).has(9), 'the reply carries the restart command');
  await sendOpamp(token, agentToServer({ uid, sequence: 4, capabilities: 0x7C47, health: { healthy: true, status: 'StatusStarting' } }));
  await sendOpamp(token, agentToServer({ uid, sequence: 5, capabilities: 0x7C47, health: { healthy: true, status: 'StatusOK' } }));
  await expectText(panel.getByTestId('agent-restart-outcome'), 'the agent restarted its collector, healthy (StatusOK)');
  assert.equal(await restartStatus.getAttribute('data-outcome'), 'good');
  await panel.scrollIntoViewIfNeeded();
  await snapshot('collector-agent-restarted');
});

step('sign out ends the session', async () => {
  const { page } = ctx;
  await page.getByRole('button', { name: 'Sign out' }).click();
  // The sign-out handler navigates to /login, and so may a request of the page that the ended session
  // turns into a 401 (to /login?next=…): one navigation can abort the other, and `waitForURL` then
  // throws although the page lands where it should. What counts is where it lands.
  await eventually('the sign-in page after signing out', async () => /\/login/.test(page.url()) || page.url(), 15000);
  await page.waitForLoadState();
  await page.goto(`${ctx.base}/collectors`);
  await page.waitForURL(/\/login\?next=/);
  const unexpected = ctx.consoleErrors.filter((text) => !/401|Failed to load resource|EventSource/.test(text));
  assert.deepEqual(unexpected, [], 'no script errors in the console');
});
