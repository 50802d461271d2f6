// linkmesh UI: fills the server-rendered pages from the REST API (/api/v1) and keeps them live over
// server-sent events. Plain browser JavaScript, no dependencies, no build step. Every text from the
// server goes through textContent (never innerHTML), so names and configs cannot inject markup.
'use strict';

(() => {
  const page = document.body.dataset.page;
  const role = document.body.dataset.role;

  // ------------------------------------------------------------------ helpers

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  /** h('a', {href: '/x', class: 'y'}, 'text', child) — builds elements without innerHTML. */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2).toLowerCase(), value);
      else if (key === 'class') node.className = value;
      else if (value === true) node.setAttribute(key, '');
      else node.setAttribute(key, String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `request failed with status ${status}`);
      this.status = status;
      this.code = error.code || 'unknown';
      this.details = error.details || {};
      this.field = this.details.field || null;
      // Every invalid field when the server reports several (`details.fields`), else just this one.
      this.fields = Array.isArray(this.details.fields) ? this.details.fields : null;
    }

    /** The message without its leading `field: `. */
    get problem() {
      const prefix = this.field ? `${this.field}: ` : '';
      return prefix && this.message.startsWith(prefix) ? this.message.slice(prefix.length) : this.message;
    }
  }

  function goToLogin() {
    const next = location.pathname + location.search + location.hash;
    location.href = `/login?next=${encodeURIComponent(next)}`;
  }

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
    if (response.status === 401 && page !== 'login') {
      goToLogin();
    }
    if (!response.ok) throw new ApiError(response.status, json);
    return json;
  }

  function ago(iso) {
    if (!iso) return 'never';
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return `${seconds} s ago`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return `${hours} h ago`;
    return `${Math.floor(hours / 24)} d ago`;
  }

  function absolute(iso) {
    if (!iso) return '';
    const date = new Date(iso);
    return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  }

  /** A <time> that keeps saying how long ago it was (see the ticker below). */
  function timeAgo(iso) {
    if (!iso) return h('span', { class: 'muted' }, 'never');
    return h('time', { datetime: iso, 'data-rel': iso, title: absolute(iso) }, ago(iso));
  }

  function tickTimes() {
    for (const node of $$('time[data-rel]')) {
      const text = ago(node.dataset.rel);
      if (node.textContent !== text) node.textContent = text;
      if (!node.title) node.title = absolute(node.dataset.rel);
    }
  }
  setInterval(tickTimes, 1000);
  tickTimes();

  function toast(message, kind) {
    const box = $('#toasts');
    if (!box) return;
    const item = h('div', { class: `toast${kind === 'error' ? ' error' : ''}` }, message);
    box.appendChild(item);
    setTimeout(() => item.remove(), kind === 'error' ? 7000 : 3500);
  }

  const STATUS_LABELS = {
    awaiting_connection: 'awaiting_connection',
    connected: 'connected',
    degraded: 'degraded',
    stale: 'stale',
    offline: 'offline',
  };

  function statusBadge(status) {
    return h('span', { class: `badge status-${status}`, 'data-status': status },
      h('span', { class: 'dot', 'aria-hidden': 'true' }), STATUS_LABELS[status] || status);
  }

  // Whether a collector runs its delivered config, and where that comes from (config.apply).
  const APPLY_LABELS = {
    applied: 'Applied', failed: 'Failed', applying: 'Applying', pending: 'Waiting for metrics',
    unknown: 'Unknown', not_delivered: 'Not delivered',
  };
  const APPLY_SOURCES = {
    reported: 'reported by Alloy', inferred: "inferred from Alloy's own metrics", none: 'no source',
  };
  const APPLY_TONES = { applied: 't-good', failed: 't-bad', applying: 't-warn', pending: 't-warn' };

  function applyBadge(apply) {
    if (!apply) return h('span', { class: 'muted' }, '—');
    const tone = APPLY_TONES[apply.state] || 't-muted';
    return h('span', { class: `apply apply-${apply.state} ${tone}`, 'data-apply': apply.state, 'data-source': apply.source,
      title: `${APPLY_LABELS[apply.state] || apply.state}: ${APPLY_SOURCES[apply.source] || apply.source}` },
      APPLY_LABELS[apply.state] || apply.state,
      apply.source === 'inferred' ? h('span', { class: 'apply-source' }, ' (inferred)') : null);
  }

  /** " (expected to poll every 60 s)": how often the collector is expected to poll, so "last seen" can be judged. */
  function pollIntervalNote(collector) {
    const seconds = collector.expected_poll_interval_seconds;
    if (typeof seconds !== 'number') return '';
    const every = seconds < 120 ? `${seconds} s` : seconds % 60 ? `${Math.floor(seconds / 60)} min ${seconds % 60} s` : `${seconds / 60} min`;
    return ` (expected to poll every ${every})`;
  }

  // A collector whose owner node could not be asked in time shows its replicated state: say so.
  function notAskedNote(collector) {
    if (collector.live !== false) return null;
    return h('span', { class: 'muted not-asked', title: `node ${collector.owner_node} did not answer in time; showing the last replicated state` },
      ' · owner node not answering');
  }

  function modePill(mode) {
    const alloy = mode === 'alloy-remotecfg';
    const icon = alloy ? document.body.dataset.iconAlloy : document.body.dataset.iconOtel;
    return h('span', { class: 'mode-pill' },
      icon ? h('img', { src: icon, alt: '' }) : null,
      h('span', {}, alloy ? 'Grafana Alloy' : 'OTel Collector'),
      h('span', { class: 'row-sub' }, mode));
  }

  function labelChips(labels) {
    const entries = Object.entries(labels || {});
    if (!entries.length) return h('span', { class: 'muted' }, '—');
    return entries.map(([key, value]) => h('span', { class: 'label-chip', title: `${key}=${value}` },
      h('span', { class: 'label-key' }, key), h('span', { class: 'label-value' }, value)));
  }

  function shortHash(hash) {
    return hash ? String(hash).slice(0, 12) : '—';
  }

  function kvList(dl, rows) {
    dl.replaceChildren(...rows.filter(Boolean).flatMap(([key, value]) => [h('dt', {}, key), h('dd', {}, value ?? '—')]));
  }

  // Copy buttons: data-copy="#selector" copies that input's value or element's text.
  document.addEventListener('click', async (event) => {
    const button = event.target.closest('[data-copy]');
    if (!button) return;
    const target = $(button.dataset.copy);
    if (!target) return;
    const value = 'value' in target && target.tagName !== 'BUTTON' ? target.value : target.textContent;
    let copied = false;
    try {
      await navigator.clipboard.writeText(value);
      copied = true;
    } catch (_) {
      const scratch = h('textarea', { class: 'visually-hidden' });
      scratch.value = value;
      document.body.appendChild(scratch);
      scratch.select();
      try { copied = document.execCommand('copy'); } catch (__) { copied = false; }
      scratch.remove();
    }
    const original = Array.from(button.childNodes);
    button.replaceChildren(copied ? 'Copied ✓' : 'Copy failed');
    setTimeout(() => button.replaceChildren(...original), 1600);
  });

  document.addEventListener('click', async (event) => {
    if (event.target.closest('[data-action="sign-out"]')) {
      try { await api('POST', '/api/v1/auth/logout'); } catch (_) { /* signed out either way */ }
      location.href = '/login';
    }
    const closer = event.target.closest('[data-action="close-dialog"]');
    if (closer) closer.closest('dialog')?.close();
  });

  // ------------------------------------------------------------------ forms and field errors

  function clearErrors(form) {
    for (const box of $$('.form-error', form)) { box.hidden = true; box.textContent = ''; }
    for (const field of $$('.has-error', form)) field.classList.remove('has-error');
    for (const input of $$('[aria-invalid]', form)) input.removeAttribute('aria-invalid');
    for (const message of $$('.field-error', form)) { message.hidden = true; message.textContent = ''; }
  }

  /** Candidate data-field names for a server field path, most specific first. */
  function fieldCandidates(field) {
    const out = [field];
    let current = field;
    for (;;) {
      const next = current.replace(/\[\d+\]$/, '') !== current
        ? current.replace(/\[\d+\]$/, '')
        : current.includes('.') ? current.slice(0, current.lastIndexOf('.')) : null;
      if (!next || next === current) break;
      out.push(next);
      current = next;
    }
    return out;
  }

  /** Marks the field a server field path names (or its nearest enclosing one); false when none is shown. */
  function markField(form, field, problem, focus) {
    for (const candidate of fieldCandidates(field)) {
      const wrap = form.querySelector(`[data-field="${CSS.escape(candidate)}"]`);
      if (!wrap) continue;
      wrap.classList.add('has-error');
      const message = $(':scope > .field-error', wrap) || $('.field-error', wrap);
      if (message) {
        const text = candidate === field ? capitalise(problem) : `${field.slice(candidate.length).replace(/^\./, '') || candidate}: ${problem}`;
        // Several problems may land on one enclosing field (list items): keep them all.
        message.textContent = message.hidden || !message.textContent ? text : `${message.textContent} ${text}`;
        message.hidden = false;
      }
      const input = $('input:not([type=hidden]), select, textarea', wrap);
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        if (focus) input.focus();
      }
      return true;
    }
    return false;
  }

  /** Shows a server (or client) error next to the field(s) it names, else at the top of the form. */
  function showError(form, error) {
    if (error.fields && error.fields.length > 1) {
      // Focus goes to the first field marked; a problem no field shows goes to the top of the form.
      let focused = false;
      const unshown = [];
      for (const { field, problem } of error.fields) {
        if (markField(form, field, problem, !focused)) focused = true;
        else unshown.push(`${field}: ${problem}`);
      }
      if (unshown.length) showFormError(form, unshown.join('; '));
      return;
    }
    let field = error.field;
    if (!field && error.code === 'already_exists' && /named|user /.test(error.message)) field = $('[data-field="username"]', form) ? 'username' : 'name';
    const problem = error.problem || error.message;
    if (field && markField(form, field, problem, true)) return;
    showFormError(form, error.message || String(error));
  }

  function showFormError(form, message) {
    const box = form && $('.form-error', form);
    if (box) {
      box.textContent = capitalise(message);
      box.hidden = false;
    } else {
      toast(message, 'error');
    }
  }

  /** A refused delete, naming the item as the user knows it (the server's message names its id). */
  function inUseMessage(what, error) {
    const usedBy = error.details && Array.isArray(error.details.used_by) ? error.details.used_by : null;
    if (!usedBy) return error.message;
    return `Cannot delete ${what}: still used by ${usedBy.join(', ')}.`;
  }

  function capitalise(text) {
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  }

  class FieldProblem extends Error {
    constructor(field, problem) {
      super(`${field}: ${problem}`);
      this.field = field;
      this.problem = problem;
      this.code = 'invalid_argument';
    }
  }

  function parseKind(kind) {
    const match = /^Enum\((.*)\)$/.exec(kind || '');
    if (match) {
      let values = [];
      try { values = JSON.parse(match[1]); } catch (_) { values = []; }
      return { type: 'Enum', values };
    }
    return { type: kind || 'String', values: [] };
  }

  function defaultText(spec) {
    if (spec.default === undefined || spec.default === null) return '';
    try {
      const value = typeof spec.default === 'string' ? JSON.parse(spec.default) : spec.default;
      return Array.isArray(value) ? value.join(', ') : String(value);
    } catch (_) {
      return String(spec.default);
    }
  }

  let idCounter = 0;

  /** Input fields for an entry's settings schema; `prefix` is the server's field path prefix. */
  function settingsFields(entry, values, prefix) {
    const fields = [];
    for (const spec of entry.settings || []) {
      const kind = parseKind(spec.kind);
      const id = `setting-${idCounter += 1}`;
      const value = values ? values[spec.name] : undefined;
      const fallback = defaultText(spec);
      const helpId = `${id}-help`;
      const help = h('p', { class: 'help', id: helpId }, spec.description || '',
        fallback ? ` Default: ${fallback}.` : '',
        kind.type === 'StringList' ? ' One per line.' : '',
        kind.type === 'StringMap' ? ' One key=value per line.' : '');
      const common = { id, 'data-setting': spec.name, 'data-kind': kind.type, 'aria-describedby': helpId };
      let input;
      switch (kind.type) {
        case 'Boolean':
          input = h('input', { ...common, type: 'checkbox', checked: value === true || (value === undefined && fallback === 'true') });
          break;
        case 'Integer':
          input = h('input', { ...common, type: 'number', step: '1', placeholder: fallback || null, value: value ?? null });
          break;
        case 'StringList':
          input = h('textarea', { ...common, rows: '3', placeholder: fallback ? fallback.split(', ').join('\n') : null });
          input.value = Array.isArray(value) ? value.join('\n') : '';
          break;
        case 'StringMap':
          input = h('textarea', { ...common, rows: '3', placeholder: 'key=value' });
          input.value = value && typeof value === 'object' ? Object.entries(value).map(([k, v]) => `${k}=${v}`).join('\n') : '';
          break;
        case 'Enum':
          input = h('select', common,
            spec.required ? null : h('option', { value: '' }, fallback ? `default (${fallback})` : '—'),
            kind.values.map((option) => h('option', { value: option, selected: value === option }, option)));
          break;
        default:
          input = h('input', {
            ...common, type: 'text', autocomplete: 'off', spellcheck: 'false',
            placeholder: fallback || (kind.type === 'Duration' ? 'e.g. 30s' : null),
            value: typeof value === 'string' ? value : null,
          });
      }
      if (spec.required) input.setAttribute('aria-required', 'true');
      const labelText = [spec.name, spec.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, '*') : null];
      const field = kind.type === 'Boolean'
        ? h('div', { class: 'field', 'data-field': `${prefix}settings.${spec.name}` },
          h('label', { class: 'check', for: id }, input, spec.name), help, h('p', { class: 'field-error', hidden: true }))
        : h('div', { class: 'field', 'data-field': `${prefix}settings.${spec.name}` },
          h('label', { for: id }, labelText), input, help, h('p', { class: 'field-error', hidden: true }));
      fields.push(field);
    }
    if (!fields.length) fields.push(h('p', { class: 'muted' }, 'This type has no settings.'));
    return fields;
  }

  /** Reads the settings inputs inside `container` (not nested deeper than `scope`). */
  function readSettings(container, prefix) {
    const settings = {};
    for (const input of $$('[data-setting]', container)) {
      const name = input.dataset.setting;
      const raw = input.type === 'checkbox' ? null : input.value.trim();
      switch (input.dataset.kind) {
        case 'Boolean':
          settings[name] = input.checked;
          break;
        case 'Integer':
          if (raw) settings[name] = /^-?\d+$/.test(raw) ? Number(raw) : raw;
          break;
        case 'StringList': {
          const items = raw.split('\n').map((line) => line.trim()).filter(Boolean);
          if (items.length) settings[name] = items;
          break;
        }
        case 'StringMap': {
          const map = {};
          for (const line of raw.split('\n').map((l) => l.trim()).filter(Boolean)) {
            const at = line.indexOf('=');
            if (at <= 0) throw new FieldProblem(`${prefix}settings.${name}`, `"${line}" is not key=value`);
            map[line.slice(0, at).trim()] = line.slice(at + 1).trim();
          }
          if (Object.keys(map).length) settings[name] = map;
          break;
        }
        default:
          if (raw) settings[name] = raw;
      }
    }
    return settings;
  }

  function parsePairs(text, field) {
    const map = {};
    for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
      const at = line.indexOf('=');
      if (at <= 0) throw new FieldProblem(field, `"${line}" is not key=value`);
      map[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    return map;
  }

  function summariseSettings(settings) {
    const parts = Object.entries(settings || {}).map(([key, value]) => {
      const shown = Array.isArray(value) ? value.join(', ') : value && typeof value === 'object'
        ? Object.entries(value).map(([k, v]) => `${k}=${v}`).join(', ') : String(value);
      return `${key}=${shown}`;
    });
    return parts.length ? parts.join('  ') : 'defaults';
  }

  let cataloguePromise = null;
  function catalogue() {
    if (!cataloguePromise) {
      cataloguePromise = api('GET', '/api/v1/catalogue').then((body) => body.entries || []);
      cataloguePromise.catch(() => { cataloguePromise = null; });
    }
    return cataloguePromise;
  }

  // ------------------------------------------------------------------ tabs (WAI-ARIA tabs pattern)

  function setupTabs(tablist, onSelect) {
    const tabs = $$('[role="tab"]', tablist);
    function select(tab, focus) {
      for (const other of tabs) {
        const on = other === tab;
        other.setAttribute('aria-selected', on ? 'true' : 'false');
        other.tabIndex = on ? 0 : -1;
        const panel = document.getElementById(other.getAttribute('aria-controls'));
        if (panel) panel.hidden = !on;
      }
      if (focus) tab.focus();
      if (onSelect) onSelect(tab);
    }
    tablist.addEventListener('click', (event) => {
      const tab = event.target.closest('[role="tab"]');
      if (tab) select(tab);
    });
    tablist.addEventListener('keydown', (event) => {
      const index = tabs.indexOf(document.activeElement);
      if (index < 0) return;
      let next = null;
      if (event.key === 'ArrowRight') next = tabs[(index + 1) % tabs.length];
      else if (event.key === 'ArrowLeft') next = tabs[(index - 1 + tabs.length) % tabs.length];
      else if (event.key === 'Home') next = tabs[0];
      else if (event.key === 'End') next = tabs[tabs.length - 1];
      if (next) { event.preventDefault(); select(next, true); }
    });
    return { select, tabs };
  }

  function liveIndicator(state, text) {
    const indicator = $('#live-indicator');
    if (!indicator) return;
    indicator.dataset.state = state;
    $('.live-text', indicator).textContent = text;
  }

  /** An EventSource that sends the user to the login page when the session ends. */
  function stream(path, handlers) {
    const source = new EventSource(path);
    for (const [event, handler] of Object.entries(handlers)) {
      source.addEventListener(event, (message) => handler(message.data ? JSON.parse(message.data) : null, message));
    }
    source.addEventListener('signed_out', () => { source.close(); goToLogin(); });
    source.addEventListener('open', () => liveIndicator('live', 'Live'));
    source.addEventListener('error', async () => {
      liveIndicator('error', 'Reconnecting…');
      if (source.readyState === EventSource.CLOSED) {
        try { await api('GET', '/api/v1/auth/me'); setTimeout(() => stream(path, handlers), 3000); } catch (_) { /* api() redirected */ }
      }
    });
    return source;
  }

  // ------------------------------------------------------------------ login

  function loginPage() {
    const form = $('#login-form');
    const error = $('#login-error');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.hidden = true;
      const button = $('button[type="submit"]', form);
      button.disabled = true;
      try {
        await api('POST', '/api/v1/auth/login', { username: form.username.value.trim(), password: form.password.value });
        // The server vetted ?next= (src/ui/login.rs: a path on this server, no tab, newline or backslash).
        // A page's redirect to /login keeps the fragment (#topology) in the address bar but never sends
        // it to the server, so it is carried over here: a fragment cannot leave this origin.
        const next = form.dataset.next || '/collectors';
        location.href = !next.includes('#') && location.hash ? `${next}${location.hash}` : next;
      } catch (failure) {
        error.textContent = failure.status === 401 ? 'Invalid username or password.' : capitalise(failure.message);
        error.hidden = false;
        form.password.select();
        button.disabled = false;
      }
    });
  }

  // ------------------------------------------------------------------ collectors list

  /**
   * The fleet list at any size: pages of `GET /api/v1/collectors` (limit + cursor) fetched as the
   * table scrolls, only the rows in view in the DOM (fixed row height, spacer rows for the rest),
   * filters and sort in the URL, and a live stream that follows the rows in view (`?ids=`).
   */
  function collectorsPage() {
    const ROW_HEIGHT = 56;
    const PAGE = 100;
    const OVERSCAN = 8;
    const FILTERS = ['q', 'status', 'mode', 'selector', 'attr'];
    const SORTS = ['name', 'mode', 'status', 'last_seen_at', 'created_at'];
    const canManage = ['admin', 'operator'].includes(role);
    const body = $('#collectors-body');
    const scroller = $('#collectors-scroll');
    const form = $('#collector-filters');
    const columns = $$('#collectors-table thead th').length;

    let sort = 'name';
    let items = [];
    let next = null;
    let total = null;
    let statusCounts = {};
    let generation = 0;
    let loading = null;
    let source = null;
    let streamKey = '';
    let streamTimer = null;
    let countsTimer = null;
    const selected = new Set();
    let allMatching = false;

    function readUrl() {
      const params = new URLSearchParams(location.search);
      for (const key of FILTERS) form[key].value = params.get(key) || '';
      const wanted = params.get('sort') || 'name';
      sort = SORTS.includes(wanted.replace(/^-/, '')) ? wanted : 'name';
    }

    function filterParams() {
      const params = new URLSearchParams();
      for (const key of FILTERS) {
        const value = form[key].value.trim();
        if (value) params.set(key, value);
      }
      return params;
    }

    function writeUrl() {
      const params = filterParams();
      if (sort !== 'name') params.set('sort', sort);
      const query = params.toString();
      const url = query ? `?${query}` : location.pathname;
      if (url !== location.search && !(url === location.pathname && !location.search)) history.replaceState(null, '', url);
    }

    function listPath(extra) {
      const params = filterParams();
      params.set('sort', sort);
      for (const [key, value] of Object.entries(extra)) if (value !== null && value !== undefined) params.set(key, value);
      return `/api/v1/collectors?${params}`;
    }

    function showFilterError(error) {
      for (const field of ['selector', 'attr']) {
        const box = $(`[data-field="${field}"]`, form);
        const message = $('.field-error', box);
        const bad = error && error.field === field;
        box.classList.toggle('has-error', bad);
        message.hidden = !bad;
        message.textContent = bad ? capitalise(error.problem) : '';
        $('input', box).setAttribute('aria-invalid', bad ? 'true' : 'false');
      }
    }

    /** Starts the list again from its first page (filters or sort changed). */
    async function reload() {
      generation += 1;
      const mine = generation;
      loading = null;
      selected.clear();
      allMatching = false;
      try {
        const page = await api('GET', listPath({ limit: PAGE }));
        if (mine !== generation) return;
        showFilterError(null);
        items = page.collectors || [];
        next = page.next;
        total = page.total;
        statusCounts = page.status_counts || {};
        scroller.scrollTop = 0;
        render();
      } catch (error) {
        if (mine !== generation) return;
        if (error.field === 'selector' || error.field === 'attr') {
          showFilterError(error);
          items = []; next = null; total = 0;
          render();
        } else {
          toast(`Cannot list collectors: ${error.message}`, 'error');
        }
      }
    }

    /** Fetches pages until `wanted` rows are loaded (or the list ends). */
    function ensureLoaded(wanted) {
      if (loading || !next || items.length >= wanted) return;
      const mine = generation;
      const limit = wanted - items.length > PAGE ? 1000 : PAGE;
      loading = api('GET', listPath({ limit, cursor: next })).then((page) => {
        if (mine !== generation) return;
        const known = new Set(items.map((item) => item.id));
        items.push(...(page.collectors || []).filter((item) => !known.has(item.id)));
        next = page.next;
        total = page.total;
        statusCounts = page.status_counts || statusCounts;
        loading = null;
        render();
      }).catch((error) => {
        loading = null;
        toast(`Cannot load more collectors: ${error.message}`, 'error');
      });
    }

    function visibleRange() {
      // The box grows with its rows up to its max-height: plan for the full height from the start.
      const height = Math.max(scroller.clientHeight, parseFloat(getComputedStyle(scroller).maxHeight) || 600);
      const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_HEIGHT) - OVERSCAN);
      const last = Math.ceil((scroller.scrollTop + height) / ROW_HEIGHT) + OVERSCAN;
      return [first, last];
    }

    function spacer(rows) {
      const cell = h('td', { colspan: columns });
      // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
      cell.style.height = `${rows * ROW_HEIGHT}px`;
      return h('tr', { class: 'spacer', 'aria-hidden': 'true' }, cell);
    }

    function render() {
      const size = Math.max(total || 0, items.length);
      const [first, last] = visibleRange();
      const end = Math.min(last, items.length);
      const rows = [];
      if (first > 0) rows.push(spacer(Math.min(first, items.length)));
      for (let index = first; index < end; index += 1) rows.push(row(items[index], index));
      const after = size - Math.max(end, Math.min(first, items.length));
      if (after > 0) rows.push(spacer(after));
      body.replaceChildren(...rows);
      ensureLoaded(last + PAGE / 2);
      renderHeader();
      renderSelection();
      scheduleStream();
    }

    function renderHeader() {
      for (const chip of $$('#status-chips .chip')) {
        $('.chip-count', chip).textContent = String(statusCounts[chip.dataset.status] || 0);
        chip.setAttribute('aria-pressed', chip.dataset.status === form.status.value ? 'true' : 'false');
      }
      const filtered = FILTERS.some((key) => form[key].value.trim());
      const fleet = Object.values(statusCounts).reduce((sum, count) => sum + count, 0);
      const shown = total || 0;
      const connected = statusCounts.connected || 0;
      $('#collectors-summary').textContent = total === null ? 'Loading…'
        : !filtered && !shown ? 'No collectors yet'
          : `${shown.toLocaleString()} collector${shown === 1 ? '' : 's'}` +
            (filtered ? (shown === 1 ? ' matches' : ' match') : '') + ` · ${connected.toLocaleString()} connected` +
            (filtered && fleet !== shown ? ` (of ${fleet.toLocaleString()} matching the other filters)` : '');
      $('#collectors-empty').hidden = !(total === 0 && !filtered);
      $('#collectors-nomatch').hidden = !(total === 0 && filtered);
      $('#collectors-scroll').hidden = total === 0;
      for (const th of $$('#collectors-table th[data-sort]')) {
        const key = th.dataset.sort;
        const state = sort === key ? 'ascending' : sort === `-${key}` ? 'descending' : 'none';
        th.setAttribute('aria-sort', state);
        $('.sort-mark', th).textContent = state === 'ascending' ? '▲' : state === 'descending' ? '▼' : '';
      }
    }

    function row(collector, index) {
      const config = collector.config || {};
      const delivered = config.delivered_hash && config.delivered_hash === config.hash;
      const checked = allMatching || selected.has(collector.id);
      return h('tr', {
        'data-collector-id': collector.id, 'data-status': collector.status, 'aria-rowindex': index + 2,
        class: checked ? 'selected' : null,
      },
        canManage ? h('td', { class: 'col-check' }, h('input', {
          type: 'checkbox', checked, 'aria-label': `Select ${collector.name}`, 'data-select': collector.id,
        })) : null,
        h('td', { class: 'col-name' },
          h('a', { class: 'row-name', href: `/collectors/${encodeURIComponent(collector.id)}` }, collector.name),
          h('div', { class: 'row-sub' }, collector.id)),
        h('td', {}, modePill(collector.mode)),
        h('td', { class: 'col-status' }, statusBadge(collector.status), notAskedNote(collector)),
        h('td', { class: 'col-labels' }, labelChips(collector.labels)),
        h('td', { class: 'mono col-host' }, collector.host_id || h('span', { class: 'muted' }, '—')),
        h('td', {}, timeAgo(collector.last_seen_at)),
        h('td', { class: 'num' },
          h('span', { title: `hash ${config.hash || ''}` }, `v${config.version ?? '?'}`), ' ',
          delivered
            ? h('span', { class: 'delivered', title: `delivered ${absolute(config.delivered_at)}` }, '✓')
            : collector.status === 'awaiting_connection' ? null
              : h('span', { class: 'pending', title: 'not yet delivered' }, '…'),
          config.apply && ['applied', 'failed', 'applying'].includes(config.apply.state)
            ? [' ', applyBadge(config.apply)] : null));
    }

    // ---- live: the stream follows the rows in view

    function visibleIds() {
      const [first, last] = visibleRange();
      return items.slice(first, Math.min(last, items.length)).map((item) => item.id);
    }

    function scheduleStream() {
      clearTimeout(streamTimer);
      streamTimer = setTimeout(subscribe, 300);
    }

    function subscribe() {
      const ids = visibleIds();
      const params = filterParams();
      params.set('sort', sort);
      params.set('ids', ids.join(','));
      const key = params.toString();
      if (key === streamKey && source && source.readyState !== EventSource.CLOSED) return;
      streamKey = key;
      if (source) source.close();
      const mine = new EventSource(`/api/v1/stream/collectors?${key}`);
      source = mine;
      mine.addEventListener('collectors', (message) => {
        if (source !== mine) return;
        update(JSON.parse(message.data));
      });
      mine.addEventListener('signed_out', () => { mine.close(); goToLogin(); });
      mine.addEventListener('open', () => { if (source === mine) liveIndicator('live', 'Live'); });
      mine.addEventListener('error', async () => {
        if (source !== mine) return;
        liveIndicator('error', 'Reconnecting…');
        if (mine.readyState === EventSource.CLOSED) {
          try {
            await api('GET', '/api/v1/auth/me');
            setTimeout(() => { if (source === mine) { streamKey = ''; subscribe(); } }, 3000);
          } catch (_) { /* api() redirected */ }
        }
      });
    }

    function update(data) {
      const byId = new Map((data.collectors || []).map((collector) => [collector.id, collector]));
      const removed = new Set(data.removed || []);
      let changed = false;
      if (byId.size || removed.size) {
        items = items.filter((item) => !removed.has(item.id)).map((item) => byId.get(item.id) || item);
        for (const id of removed) selected.delete(id);
        changed = true;
      }
      if (typeof data.total === 'number' && data.total !== total) {
        // New or deleted collectors elsewhere in the list: a short list is fetched again whole, a
        // long one learns its new size (rows appear as they are scrolled to).
        if (!next && items.length <= 1000) refetchLoaded();
        else total = data.total;
        changed = true;
      }
      if (changed) {
        const keepScroll = scroller.scrollTop;
        render();
        scroller.scrollTop = keepScroll;
        clearTimeout(countsTimer);
        countsTimer = setTimeout(refreshCounts, 1500);
      }
    }

    async function refetchLoaded() {
      const mine = generation;
      try {
        const page = await api('GET', listPath({ limit: Math.min(1000, Math.max(PAGE, items.length + PAGE)) }));
        if (mine !== generation) return;
        items = page.collectors || [];
        next = page.next;
        total = page.total;
        statusCounts = page.status_counts || statusCounts;
        render();
      } catch (_) { /* the next change tries again */ }
    }

    async function refreshCounts() {
      const mine = generation;
      try {
        const page = await api('GET', listPath({ limit: 1 }));
        if (mine !== generation) return;
        statusCounts = page.status_counts || statusCounts;
        total = Math.max(page.total, 0);
        renderHeader();
      } catch (_) { /* kept as they were */ }
    }

    // ---- selection and bulk actions

    function selectionCount() { return allMatching ? (total || 0) : selected.size; }

    function renderSelection() {
      if (!canManage) return;
      const count = selectionCount();
      $('#bulk-bar').hidden = count === 0;
      $('#bulk-count').textContent = `${count.toLocaleString()} selected`;
      const all = $('#bulk-all');
      all.hidden = allMatching || !total || count >= total;
      all.textContent = `Select all ${(total || 0).toLocaleString()} matching`;
      const pageBox = $('#select-page');
      const ids = visibleIds();
      const inView = ids.filter((id) => allMatching || selected.has(id)).length;
      pageBox.checked = ids.length > 0 && inView === ids.length;
      pageBox.indeterminate = inView > 0 && inView < ids.length;
    }

    function collectorsWord(count) {
      return `${count.toLocaleString()} collector${count === 1 ? '' : 's'}`;
    }

    /** What the bulk API is asked to act on: the selector alone when it says all, else the ids. */
    async function bulkTarget() {
      if (!allMatching) return { ids: [...selected], expected_count: selected.size };
      const params = filterParams();
      const onlySelector = [...params.keys()].every((key) => key === 'selector');
      if (onlySelector && params.get('selector')) return { selector: params.get('selector'), expected_count: total };
      const ids = [];
      let cursor = null;
      do {
        const page = await api('GET', listPath({ limit: 1000, cursor }));
        ids.push(...(page.collectors || []).map((collector) => collector.id));
        cursor = page.next;
      } while (cursor);
      return { ids, expected_count: ids.length };
    }

    function parseLabelLines(text) {
      const set = {};
      for (const line of text.split(/\n|,/).map((part) => part.trim()).filter(Boolean)) {
        const at = line.indexOf('=');
        if (at <= 0) throw new FieldProblem('labels.set', `"${line}" is not key=value`);
        set[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      return set;
    }

    function openBulk(action) {
      const dialog = $('#bulk-dialog');
      const bulkForm = $('#bulk-form');
      const count = selectionCount();
      clearErrors(bulkForm);
      bulkForm.reset();
      const titles = {
        label: `Label ${collectorsWord(count)}?`,
        rotate: `Rotate the tokens of ${collectorsWord(count)}?`,
        delete: `Delete ${collectorsWord(count)}?`,
      };
      const texts = {
        label: 'Set or remove labels on every selected collector. Selectors, and with them what these collectors receive, follow at once.',
        rotate: 'Each selected collector gets a new token; its current token stops working at once. The new tokens are shown once, to download.',
        delete: 'The selected collectors are deleted and their tokens stop working at once. This cannot be undone.',
      };
      $('#bulk-dialog-title').textContent = titles[action];
      $('#bulk-dialog-text').textContent = texts[action];
      $('#bulk-label-fields').hidden = action !== 'label';
      $('#bulk-tokens').hidden = true;
      const confirm = $('#bulk-confirm');
      confirm.hidden = false;
      confirm.disabled = false;
      confirm.textContent = { label: `Label ${collectorsWord(count)}`, rotate: `Rotate ${collectorsWord(count)}`, delete: `Delete ${collectorsWord(count)}` }[action];
      confirm.className = action === 'delete' ? 'btn btn-danger' : 'btn btn-primary';
      $('#bulk-cancel').textContent = 'Cancel';
      dialog.dataset.action = action;
      dialog.showModal();
    }

    function tokensCsv(tokens) {
      const quote = (value) => `"${String(value ?? '').replaceAll('"', '""')}"`;
      const lines = ['collector_id,name,token', ...tokens.map((t) => [t.collector_id, t.name, t.token].map(quote).join(','))];
      return `${lines.join('\r\n')}\r\n`;
    }

    async function runBulk(event) {
      event.preventDefault();
      const dialog = $('#bulk-dialog');
      const bulkForm = $('#bulk-form');
      const action = dialog.dataset.action;
      const confirm = $('#bulk-confirm');
      clearErrors(bulkForm);
      let body;
      try {
        body = { action, ...(await bulkTarget()) };
        if (action === 'label') {
          const remove = bulkForm.remove.value.split(',').map((key) => key.trim()).filter(Boolean);
          body.labels = { set: parseLabelLines(bulkForm.set.value), remove };
          if (!Object.keys(body.labels.set).length && !remove.length) throw new FieldProblem('labels.set', 'set or remove at least one label');
        }
      } catch (error) {
        showError(bulkForm, error);
        return;
      }
      confirm.disabled = true;
      try {
        const answer = await api('POST', '/api/v1/collectors:bulk', body);
        const done = answer.count ?? (answer.collector_ids || []).length;
        const verbs = { label: 'Labelled', rotate: 'Rotated the tokens of', delete: 'Deleted' };
        toast(`${verbs[action]} ${collectorsWord(done)}.`);
        selected.clear();
        allMatching = false;
        if (action === 'rotate' && Array.isArray(answer.tokens)) {
          const link = $('#bulk-tokens-download');
          if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
          link.href = URL.createObjectURL(new Blob([tokensCsv(answer.tokens)], { type: 'text/csv' }));
          $('#bulk-tokens').hidden = false;
          $('#bulk-label-fields').hidden = true;
          $('#bulk-dialog-text').textContent = `New tokens for ${collectorsWord(answer.tokens.length)}.`;
          confirm.hidden = true;
          $('#bulk-cancel').textContent = 'Done';
        } else {
          dialog.close();
        }
        reload();
      } catch (error) {
        confirm.disabled = false;
        if (error.status === 409) showFormError(bulkForm, 'The selection changed meanwhile (collectors were added or removed). Check it and try again.');
        else if (error.status === 404) showFormError(bulkForm, 'This server does not offer bulk actions yet.');
        else showError(bulkForm, error);
      }
    }

    // ---- prune (operators): a dry run first, then a confirm naming the count, then the outcome

    const PRUNE_SHOWN = 10;

    function pruneBody(dryRun) {
      const pruneForm = $('#prune-form');
      const request = { inactive_for: pruneForm.inactive_for.value.trim(), dry_run: dryRun };
      const selector = form.selector.value.trim();
      if (selector && pruneForm.use_selector.checked) request.selector = selector;
      return request;
    }

    function fillList(list, lines) {
      list.replaceChildren(...lines.map((line) => h('li', {}, ...line)));
    }

    /** Back to the question: an answer stops holding once the inputs change. */
    function resetPrune() {
      $('#prune-preview').hidden = true;
      $('#prune-result').hidden = true;
      const check = $('#prune-check');
      check.hidden = false;
      check.disabled = false;
      const confirm = $('#prune-confirm');
      confirm.hidden = true;
      confirm.disabled = false;
      $('#prune-cancel').textContent = 'Cancel';
    }

    function openPrune() {
      const pruneForm = $('#prune-form');
      clearErrors(pruneForm);
      pruneForm.reset();
      const selector = form.selector.value.trim();
      $('#prune-selector-field').hidden = !selector;
      $('#prune-selector').textContent = selector;
      resetPrune();
      $('#prune-dialog').showModal();
    }

    async function checkPrune() {
      const pruneForm = $('#prune-form');
      const check = $('#prune-check');
      clearErrors(pruneForm);
      check.disabled = true;
      try {
        const answer = await api('POST', '/api/v1/collectors:prune', pruneBody(true));
        const count = answer.count || 0;
        const found = answer.collectors || [];
        const lines = found.slice(0, PRUNE_SHOWN).map((c) => [h('strong', {}, c.name), ` · ${c.status.replaceAll('_', ' ')}, last seen `, timeAgo(c.last_seen_at)]);
        if (count > PRUNE_SHOWN) lines.push([`… and ${(count - PRUNE_SHOWN).toLocaleString()} more`]);
        const beyond = answer.remaining ? ` ${answer.remaining.toLocaleString()} more are inactive: prune again afterwards.` : '';
        $('#prune-preview-text').textContent = count
          ? `${collectorsWord(count)} would be deleted, least recently active first.${beyond}`
          : 'No collector has been inactive that long.';
        fillList($('#prune-preview-names'), lines);
        $('#prune-preview').hidden = false;
        const confirm = $('#prune-confirm');
        confirm.textContent = `Delete ${collectorsWord(count)}`;
        confirm.hidden = count === 0;
        check.hidden = count > 0;
        if (count > 0) confirm.focus();
      } catch (error) {
        showError(pruneForm, error);
      } finally {
        check.disabled = false;
      }
    }

    async function runPrune(event) {
      event.preventDefault();
      const confirm = $('#prune-confirm');
      if (confirm.hidden) {
        // Enter in a field: the dry run, never the deletion.
        if (!$('#prune-check').hidden) checkPrune();
        return;
      }
      const pruneForm = $('#prune-form');
      clearErrors(pruneForm);
      confirm.disabled = true;
      try {
        const answer = await api('POST', '/api/v1/collectors:prune', pruneBody(false));
        const deleted = answer.deleted ?? answer.count ?? 0;
        const skipped = answer.skipped || [];
        const why = { active: 'reconnected meanwhile, kept', gone: 'already deleted by someone else' };
        $('#prune-result-text').textContent = `Deleted ${collectorsWord(deleted)}.${skipped.length ? ` Skipped ${skipped.length.toLocaleString()}:` : ''}`;
        const lines = skipped.slice(0, PRUNE_SHOWN).map((s) => [h('strong', {}, s.name), ` · ${why[s.reason] || s.reason}`]);
        if (skipped.length > PRUNE_SHOWN) lines.push([`… and ${(skipped.length - PRUNE_SHOWN).toLocaleString()} more`]);
        fillList($('#prune-result-skipped'), lines);
        $('#prune-preview').hidden = true;
        $('#prune-result').hidden = false;
        confirm.hidden = true;
        $('#prune-cancel').textContent = 'Done';
        toast(`Pruned ${collectorsWord(deleted)}${skipped.length ? `, skipped ${skipped.length.toLocaleString()}` : ''}.`);
        reload();
      } catch (error) {
        confirm.disabled = false;
        showError(pruneForm, error);
      }
    }

    if (canManage) {
      $('#prune-open').addEventListener('click', openPrune);
      $('#prune-check').addEventListener('click', checkPrune);
      $('#prune-form').addEventListener('submit', runPrune);
      $('#prune-form').addEventListener('input', resetPrune);
      body.addEventListener('change', (event) => {
        const box = event.target.closest('[data-select]');
        if (!box) return;
        if (allMatching) {
          // Leaving "all matching": keep what is loaded, less this one.
          allMatching = false;
          for (const item of items) selected.add(item.id);
        }
        if (box.checked) selected.add(box.dataset.select); else selected.delete(box.dataset.select);
        box.closest('tr').classList.toggle('selected', box.checked);
        renderSelection();
      });
      $('#select-page').addEventListener('change', (event) => {
        if (allMatching && !event.target.checked) { allMatching = false; selected.clear(); }
        for (const id of visibleIds()) if (event.target.checked) selected.add(id); else selected.delete(id);
        render();
      });
      $('#bulk-all').addEventListener('click', () => { allMatching = true; render(); });
      $('#bulk-clear').addEventListener('click', () => { allMatching = false; selected.clear(); render(); });
      for (const button of $$('#bulk-bar [data-bulk]')) button.addEventListener('click', () => openBulk(button.dataset.bulk));
      $('#bulk-form').addEventListener('submit', runBulk);
      $('#bulk-dialog').addEventListener('close', () => {
        const link = $('#bulk-tokens-download');
        if (link.href.startsWith('blob:')) { URL.revokeObjectURL(link.href); link.href = '#'; }
      });
    }

    // ---- filters, sort, scrolling, history

    let inputTimer = null;
    function filtersChanged(delay) {
      clearTimeout(inputTimer);
      inputTimer = setTimeout(() => { writeUrl(); reload(); }, delay);
    }
    form.addEventListener('input', (event) => filtersChanged(event.target.tagName === 'SELECT' ? 0 : 350));
    form.addEventListener('submit', (event) => { event.preventDefault(); filtersChanged(0); });
    for (const chip of $$('#status-chips .chip')) {
      chip.addEventListener('click', () => {
        form.status.value = form.status.value === chip.dataset.status ? '' : chip.dataset.status;
        filtersChanged(0);
      });
    }
    document.addEventListener('click', (event) => {
      if (event.target.closest('[data-action="clear-filters"]')) {
        for (const key of FILTERS) form[key].value = '';
        filtersChanged(0);
      }
    });
    for (const th of $$('#collectors-table th[data-sort]')) {
      $('.sort-button', th).addEventListener('click', () => {
        const key = th.dataset.sort;
        sort = sort === key ? `-${key}` : key;
        writeUrl();
        renderHeader();
        reload();
      });
    }
    let scrollFrame = 0;
    scroller.addEventListener('scroll', () => {
      cancelAnimationFrame(scrollFrame);
      scrollFrame = requestAnimationFrame(render);
    }, { passive: true });
    window.addEventListener('resize', () => render());
    window.addEventListener('popstate', () => { readUrl(); reload(); });

    readUrl();
    reload();
  }

  // ------------------------------------------------------------------ add collector

  function newCollectorPage() {
    const form = $('#add-collector-form');
    // An OpenTelemetry Collector run by the supervisor need not be added here: it enrolls itself.
    const enrollHint = $('#opamp-enroll');
    const showEnrollHint = () => { enrollHint.hidden = form.mode.value !== 'opamp'; };
    form.addEventListener('change', showEnrollHint);
    showEnrollHint();
    if (!['admin', 'operator'].includes(role)) {
      for (const control of form.elements) control.disabled = true;
      return;
    }
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      const name = form.name.value.trim();
      if (!name) {
        showError(form, new FieldProblem('name', 'give the collector a name'));
        return;
      }
      const button = $('button[type="submit"]', form);
      button.disabled = true;
      try {
        const created = await api('POST', '/api/v1/collectors', { name, mode: form.mode.value });
        location.href = `/collectors/${encodeURIComponent(created.id)}`;
      } catch (error) {
        showError(form, error);
        button.disabled = false;
      }
    });
  }

  // ------------------------------------------------------------------ enroll OpenTelemetry Collectors

  /** "in 23 h" for a moment ahead, "5 min ago" for one past (expiries). */
  function fromNow(iso) {
    const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
    if (seconds <= 0) return ago(iso);
    if (seconds < 60) return `in ${seconds} s`;
    // Rounded, not floored: a 7-day token reads "in 7 d" for its first half day, not "in 6 d".
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `in ${minutes} min`;
    const hours = Math.round(seconds / 3600);
    if (hours < 48) return `in ${hours} h`;
    return `in ${Math.round(seconds / 86400)} d`;
  }

  function enrollPage() {
    const REFRESH_MS = 10000;
    const STATE_TONES = { active: 'connected', expired: 'stale', revoked: 'offline' };
    const table = $('#enrollment-tokens-table');
    const canManage = table.dataset.canManage === 'true';
    const columns = canManage ? 9 : 8;
    let tokens = [];
    let shown = null; // the list as last rendered (JSON), so an unchanged list is not redrawn under the user
    let timer = null;

    const collectorsText = (count) => `${count.toLocaleString()} collector${count === 1 ? '' : 's'}`;

    function stateBadge(state) {
      return h('span', { class: `badge status-${STATE_TONES[state] || 'stale'}`, 'data-state': state },
        h('span', { class: 'dot', 'aria-hidden': 'true' }), state);
    }

    function expiry(iso) {
      return h('time', { datetime: iso, 'data-from-now': iso, title: absolute(iso) }, fromNow(iso));
    }

    function row(token) {
      const name = `${token.prefix}…`;
      return h('tr', { 'data-token-id': token.id, 'data-state': token.state },
        h('td', {}, h('code', { class: 'row-name' }, name), h('div', { class: 'row-sub' }, token.id)),
        h('td', {}, stateBadge(token.state)),
        h('td', { class: 'num', title: `${token.used} enrolled${token.uses == null ? ', no limit' : ` of at most ${token.uses}`}` },
          token.uses == null ? `${token.used} / no limit` : `${token.used} / ${token.uses}`),
        h('td', {}, labelChips(token.labels)),
        h('td', { class: 'num', 'data-testid': 'token-collectors' }, String(token.collectors)),
        h('td', {}, timeAgo(token.created_at)),
        h('td', { class: token.state === 'revoked' ? 'muted' : null }, expiry(token.expires_at)),
        h('td', {}, token.revoked_at ? timeAgo(token.revoked_at) : h('span', { class: 'muted' }, '—')),
        canManage ? h('td', { class: 'cell-actions' }, token.state === 'revoked' ? null : h('button', {
          type: 'button', class: 'link-button danger', 'data-revoke': token.id, 'aria-label': `Revoke ${name}`,
          onclick: () => askRevoke(token.id),
        }, 'Revoke')) : null);
    }

    function render() {
      const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.revoke : null;
      $('tbody', table).replaceChildren(...(tokens.length ? tokens.map(row) : [h('tr', {}, h('td', { colspan: columns, class: 'muted' },
        canManage ? 'No enrollment tokens yet. Create one above.' : 'No enrollment tokens yet.'))]));
      if (focused) $(`[data-revoke="${CSS.escape(focused)}"]`, table)?.focus();
    }

    async function refresh() {
      clearTimeout(timer);
      try {
        const body = await api('GET', '/api/v1/enrollment-tokens');
        tokens = body.enrollment_tokens || [];
        const json = JSON.stringify(tokens);
        if (json !== shown) {
          shown = json;
          render();
        } else {
          for (const node of $$('time[data-from-now]', table)) node.textContent = fromNow(node.dataset.fromNow);
        }
      } catch (error) {
        if (shown === null) {
          $('tbody', table).replaceChildren(h('tr', {}, h('td', { colspan: columns, class: 'form-error' }, `Could not load enrollment tokens: ${error.message}`)));
        }
      }
      if (!document.hidden) timer = setTimeout(refresh, REFRESH_MS);
    }
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) clearTimeout(timer); else refresh();
    });
    $('#enrollment-tokens-refresh').addEventListener('click', refresh);

    // ---- create (operators): the token and supervisor.yaml are shown from this one answer

    const createForm = $('#enroll-token-form');

    function readLabels(text) {
      const labels = {};
      for (const line of text.split('\n').map((part) => part.trim()).filter(Boolean)) {
        const at = line.indexOf('=');
        if (at <= 0) throw new FieldProblem('labels', `"${line}" is not key=value`);
        const key = line.slice(0, at).trim();
        if (key in labels) throw new FieldProblem('labels', `"${key}" is given twice`);
        labels[key] = line.slice(at + 1).trim();
      }
      return labels;
    }

    function createBody() {
      const body = { ttl_seconds: Number(createForm.ttl_seconds.value) };
      const uses = createForm.uses;
      if (uses.validity.badInput || (uses.value.trim() && !/^\d+$/.test(uses.value.trim()))) {
        throw new FieldProblem('uses', 'give a whole number of agents, or leave it empty for no limit');
      }
      if (uses.value.trim()) body.uses = Number(uses.value.trim());
      const labels = readLabels(createForm.labels.value);
      if (Object.keys(labels).length) body.labels = labels;
      return body;
    }

    createForm?.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(createForm);
      let body;
      try {
        body = createBody();
      } catch (error) {
        showError(createForm, error);
        return;
      }
      const button = $('button[type="submit"]', createForm);
      button.disabled = true;
      try {
        const created = await api('POST', '/api/v1/enrollment-tokens', body);
        $('#enroll-token').value = created.token;
        $('#enroll-created-expiry').textContent = `It enrolls new agents until ${absolute(created.expires_at)}` +
          `${body.uses ? `, ${body.uses} at most` : ''}.`;
        $('#enroll-created').hidden = false;
        if (created.supervisor_config) {
          $('#supervisor-config').textContent = created.supervisor_config;
          $('#supervisor-config-box').hidden = false;
          $('#supervisor-config-placeholder').hidden = true;
        }
        $('#enroll-token').focus();
        $('#enroll-token').select();
        refresh();
      } catch (error) {
        showError(createForm, error);
      } finally {
        button.disabled = false;
      }
    });

    // ---- revoke (operators): the dialog says how many collectors' agents are disconnected

    const dialog = $('#revoke-dialog');
    const revokeForm = $('#revoke-form');

    async function askRevoke(id) {
      await refresh(); // the count of collectors using it, as of now
      const token = tokens.find((candidate) => candidate.id === id);
      if (!token || token.state === 'revoked') {
        toast(token ? 'This token is already revoked.' : 'This token is no longer listed.');
        return;
      }
      const count = token.collectors;
      clearErrors(revokeForm);
      $('#revoke-dialog-title').textContent = `Revoke enrollment token ${token.prefix}…?`;
      $('#revoke-dialog-text').textContent = count === 0
        ? 'No collector uses this token: revoking it disconnects no agent.'
        : `${collectorsText(count)} still ${count === 1 ? 'uses' : 'use'} this token: ${count === 1 ? 'its agent is' : 'their agents are'} ` +
          `disconnected at once and refused from then on, until given another token.`;
      const confirm = $('#revoke-confirm');
      confirm.disabled = false;
      confirm.textContent = count === 0 ? 'Revoke token' : `Revoke and disconnect ${collectorsText(count)}`;
      dialog.dataset.tokenId = token.id;
      dialog.dataset.prefix = token.prefix;
      dialog.dataset.collectors = String(count);
      dialog.showModal();
    }

    revokeForm?.addEventListener('submit', async (event) => {
      event.preventDefault();
      const confirm = $('#revoke-confirm');
      clearErrors(revokeForm);
      confirm.disabled = true;
      const count = Number(dialog.dataset.collectors);
      try {
        await api('DELETE', `/api/v1/enrollment-tokens/${encodeURIComponent(dialog.dataset.tokenId)}`);
        dialog.close();
        toast(`Token ${dialog.dataset.prefix}… revoked${count ? `; ${collectorsText(count)} disconnected` : ''}`);
        await refresh();
        table.focus();
      } catch (error) {
        confirm.disabled = false;
        showError(revokeForm, error);
      }
    });

    refresh();
  }

  // ------------------------------------------------------------------ collector page

  function collectorPage() {
    const root = $('#collector-root');
    const id = root.dataset.collectorId;
    const base = `/api/v1/collectors/${encodeURIComponent(id)}`;
    const canEdit = root.dataset.canEdit === 'true';
    const state = {
      collector: null,
      events: [],
      configVersion: null,
      enrollChoice: null, // the user's explicit show/hide, overriding the automatic banner
      activeTab: 'overview',
      followingHistory: false, // a tab selected by Back/Forward adds no history entry
      topologyTimer: null,
      agentParts: {}, // what each part of the Agent panel shows, to redraw it only when that changes
      restartSentAt: null, // a restart this page asked for, until its restart_requested event arrives
    };

    // Tabs, with the selected one in the URL hash (#events) so it can be linked and survives reload;
    // each switch is a history entry, so Back and Forward move between tabs.
    const tabs = setupTabs($('#collector-tabs'), (tab) => {
      state.activeTab = tab.dataset.tab;
      if (!state.followingHistory && location.hash !== `#${state.activeTab}`) history.pushState(null, '', `#${state.activeTab}`);
      if (state.activeTab === 'config') loadConfig();
      if (state.activeTab === 'topology') startTopology(); else stopTopology();
    });
    const tabOfHash = () => tabs.tabs.find((tab) => `#${tab.dataset.tab}` === location.hash) || (location.hash ? null : tabs.tabs[0]);
    window.addEventListener('popstate', () => {
      const tab = tabOfHash();
      if (!tab || tab.dataset.tab === state.activeTab) return;
      // Back to the entry without a hash selects Overview without adding an entry (Forward still works).
      state.followingHistory = true;
      try { tabs.select(tab); } finally { state.followingHistory = false; }
    });

    // Enrollment banner.
    const banner = $('#enroll');
    const enrollTabs = $('#enroll [role="tablist"]');
    if (enrollTabs) setupTabs(enrollTabs);
    function updateBanner() {
      const awaiting = state.collector ? state.collector.status === 'awaiting_connection' : root.querySelector('#collector-status [data-status="awaiting_connection"]') !== null;
      const show = state.enrollChoice === null ? awaiting : state.enrollChoice;
      banner.hidden = !show;
      for (const toggle of $$('[data-action="toggle-enroll"]')) toggle.setAttribute('aria-expanded', show ? 'true' : 'false');
      $('#enroll-status').textContent = awaiting
        ? 'This collector has not connected yet. Follow the steps on the host it runs on.'
        : 'This collector is connected. Mint a new token only to rotate it.';
    }
    document.addEventListener('click', (event) => {
      if (event.target.closest('[data-action="toggle-enroll"]')) {
        state.enrollChoice = banner.hidden;
        updateBanner();
        if (!banner.hidden) banner.scrollIntoView({ block: 'nearest' });
      }
    });
    updateBanner();

    $('[data-action="mint-token"]')?.addEventListener('click', async (event) => {
      const button = event.currentTarget;
      const hasToken = root.dataset.hasToken === 'true';
      const configFile = $('#minted').dataset.configFile || 'config.alloy';
      if (hasToken && !confirm(`Rotate the token? The current token stops working immediately; update ${configFile} on the host.`)) return;
      button.disabled = true;
      try {
        const minted = await api('POST', `${base}/token`);
        root.dataset.hasToken = 'true';
        $('#minted').hidden = false;
        $('#minted-token').value = minted.token;
        if (minted.config_alloy) {
          $('#config-alloy').textContent = minted.config_alloy;
          $('#config-alloy-box').hidden = false;
          $('#config-alloy-placeholder').hidden = true;
        }
        if (minted.supervisor_config) {
          $('#supervisor-config').textContent = minted.supervisor_config;
          $('#supervisor-config-box').hidden = false;
          $('#supervisor-config-placeholder').hidden = true;
        }
        button.replaceChildren(...$$('svg', button), 'Rotate token');
        $('#mint-warning').replaceChildren(...$$('svg', $('#mint-warning')),
          `Token ${minted.prefix}… minted just now. Minting again rotates it: this token stops working at once.`);
        $('#minted-token').focus();
        $('#minted-token').select();
      } catch (error) {
        toast(`Could not mint a token: ${error.message}`, 'error');
      } finally {
        button.disabled = false;
      }
    });

    $('[data-action="delete-collector"]')?.addEventListener('click', async () => {
      const name = state.collector ? state.collector.name : id;
      if (!confirm(`Delete collector "${name}"? Its token stops working at once.`)) return;
      try {
        await api('DELETE', base);
        location.href = '/collectors';
      } catch (error) {
        toast(error.message, 'error');
      }
    });

    // ---- live collector state and events
    function renderCollector() {
      const c = state.collector;
      $('#collector-status').replaceChildren(...[statusBadge(c.status), notAskedNote(c)].filter(Boolean));
      const lastSeen = $('#collector-last-seen');
      if (c.last_seen_at) { lastSeen.dataset.rel = c.last_seen_at; lastSeen.textContent = ago(c.last_seen_at); }
      $('#collector-poll-interval').textContent = pollIntervalNote(c);
      $('#collector-version').textContent = `config v${c.config.version}`;
      updateBanner();
      renderOverview();
      if (state.configVersion !== null && state.configVersion !== c.config.version) {
        state.configVersion = c.config.version;
        if (state.activeTab === 'config') loadConfig();
        if (state.activeTab === 'topology') loadTopology();
      }
      state.configVersion = c.config.version;
    }

    function lastStatusChange() {
      for (let i = state.events.length - 1; i >= 0; i -= 1) {
        if (state.events[i].type === 'status_changed') return state.events[i];
      }
      return null;
    }

    function renderOverview() {
      const c = state.collector;
      const config = c.config || {};
      kvList($('#overview-status'), [
        ['Status', [statusBadge(c.status), notAskedNote(c)]],
        ['Mode', modePill(c.mode)],
        c.mode === 'alloy-remotecfg'
          ? ['Stability level', [h('code', {}, c.stability_level || 'generally-available'),
            h('span', { class: 'muted' }, " · Alloy's --stability.level; configs needing a lower one are refused")]]
          : null,
        ['Host ID', c.host_id ? h('code', {}, c.host_id) : 'not reported yet'],
        ['Last seen', [timeAgo(c.last_seen_at), h('span', { class: 'muted', 'data-testid': 'overview-poll-interval' }, pollIntervalNote(c))]],
        lastStatusChange() ? ['Last change', [lastStatusChange().message, ' · ', timeAgo(lastStatusChange().ts)]] : null,
        ['Created', timeAgo(c.created_at)],
        ['Token', c.token ? [h('code', {}, `${c.token.prefix}…`), ' minted ', timeAgo(c.token.created_at)] : 'not minted'],
        ['Collector id', h('code', {}, c.id)],
      ]);
      const delivered = config.delivered_hash && config.delivered_hash === config.hash;
      kvList($('#overview-config'), [
        ['Version', `v${config.version}`],
        ['Hash', h('code', { title: config.hash }, shortHash(config.hash))],
        ['Delivered', delivered
          ? [h('span', { class: 'delivered' }, '✓ current version'), ' ', timeAgo(config.delivered_at)]
          : config.delivered_hash
            ? h('span', { class: 'pending' }, 'an older version; the next poll fetches this one')
            : h('span', { class: 'muted' }, 'never')],
        ...applyRows(config.apply),
      ]);
      const attributes = (title, map) => {
        const entries = Object.entries(map || {});
        return [h('h3', { class: 'section-label' }, title),
          entries.length
            ? h('dl', { class: 'kv' }, entries.flatMap(([k, v]) => [h('dt', {}, h('code', {}, k)), h('dd', {}, v)]))
            : h('p', { class: 'muted' }, 'none')];
      };
      const labels = Object.entries(c.labels || {});
      $('#overview-labels').replaceChildren(labels.length
        ? h('div', { class: 'label-chips' }, labels.map(([k, v]) => h('span', { class: 'label-chip', title: `${k}=${v}` },
          h('span', { class: 'label-key' }, k), h('span', { class: 'label-value' }, v))))
        : h('p', { class: 'muted' }, 'No labels.'));
      $('#overview-attributes').replaceChildren(
        ...attributes('Reported by the collector', c.local_attributes),
        ...attributes('Set at creation', c.remote_attributes));
      $('#overview-attributes .section-label')?.classList.add('first');
      $('#overview-effective').replaceChildren(config.effective_config
        ? h('pre', { class: 'code' }, h('code', {}, config.effective_config))
        : h('p', { class: 'muted' }, c.mode === 'opamp' ? agentEffectiveConfigNote(c) : 'Not reported.'));
      if (c.mode === 'opamp') renderAgent();
    }

    // ---- the Agent panel (opamp collectors): what the agent reported of itself over OpAMP
    const COMPONENT_KINDS = ['receivers', 'processors', 'exporters', 'connectors', 'extensions'];

    function agentEffectiveConfigNote(c) {
      if (!canEdit) return 'Shown to operators and admins only.';
      const capabilities = c.opamp ? c.opamp.capabilities || [] : null;
      if (capabilities && !capabilities.includes('reports effective config')) return 'The agent does not report its effective config.';
      return 'Not reported yet.';
    }

    function healthBadge(kind, text) {
      return h('span', { class: `badge health-${kind}`, 'data-health': kind }, h('span', { class: 'dot', 'aria-hidden': 'true' }), text);
    }

    /** Why there is no agent state: not connected yet, the owner did not answer, or no message since the actor started. */
    function agentWaiting(c) {
      if (c.live === false) {
        return [healthBadge('unknown', 'unknown'),
          h('span', { class: 'muted' }, `Node ${c.owner_node} did not answer in time; the agent's live state is not available.`)];
      }
      if (c.status === 'awaiting_connection') {
        return [healthBadge('unknown', 'not connected'),
          h('span', { class: 'muted' }, "The agent has not connected yet; it reports its health, description and capabilities once it does.")];
      }
      return [healthBadge('unknown', 'waiting'),
        h('span', { class: 'muted' }, "The agent has not reported since this server's collector actor started: waiting for the agent's next message.")];
    }

    function agentHealth(c, agent) {
      const health = agent.health;
      if (!health) {
        return [healthBadge('unknown', 'not reported'), h('span', { class: 'muted' }, agent.capabilities.includes('reports health')
          ? 'The agent has not reported its health yet.' : 'The agent does not report health.')];
      }
      const parts = [health.healthy ? healthBadge('healthy', 'healthy') : healthBadge('unhealthy', 'unhealthy'),
        health.status ? h('code', { class: 'agent-status', title: 'Status as the agent reports it' }, health.status) : null];
      // A collector no longer in touch shows what its agent said last, and says so.
      if (c.status === 'stale' || c.status === 'offline') {
        parts.push(h('span', { class: 'muted' }, 'as the agent last reported it, ', timeAgo(c.last_seen_at)));
      }
      if (health.last_error) {
        parts.push(h('div', { class: `agent-error${health.healthy ? ' agent-error-past' : ''}`, 'data-testid': 'agent-last-error' },
          h('span', { class: 'agent-error-label' }, health.healthy ? 'Last error (now healthy)' : 'Last error'),
          h('pre', {}, health.last_error)));
      }
      return parts;
    }

    function agentDescription(attributes) {
      const attr = (key) => (attributes[key] || '').trim();
      const joined = (...values) => values.filter(Boolean).join(' ');
      const notReported = () => h('span', { class: 'muted' }, 'not reported');
      const service = joined(attr('service.name'), attr('service.version'));
      const host = attr('host.name');
      const os = attr('os.description') || attr('os.type');
      return [
        ['Service', service ? h('span', { 'data-testid': 'agent-service' }, service) : notReported()],
        ['Host', host ? [h('span', { 'data-testid': 'agent-host' }, host), attr('host.arch') ? h('span', { class: 'muted' }, ` · ${attr('host.arch')}`) : null] : notReported()],
        ['OS', os ? h('span', { 'data-testid': 'agent-os' }, os) : notReported()],
        attr('service.instance.id') ? ['Instance', h('code', {}, attr('service.instance.id'))] : null,
      ];
    }

    function componentKinds(available) {
      const extra = Object.keys(available).filter((kind) => !COMPONENT_KINDS.includes(kind)).sort();
      return COMPONENT_KINDS.concat(extra);
    }

    function countText(count, kind) {
      return `${count} ${count === 1 ? kind.replace(/s$/, '') : kind}`;
    }

    // Each part is redrawn only when what it shows changed: the stream sends the whole collector on every
    // change, and redrawing the same health would announce it again (aria-live) and lose a text selection.
    function redrawAgentPart(part, inputs, draw) {
      const key = JSON.stringify(inputs);
      if (state.agentParts[part] === key) return;
      state.agentParts[part] = key;
      draw();
    }

    function renderAgent() {
      const panel = $('#agent');
      if (!panel) return;
      const c = state.collector;
      const agent = c.opamp ? { ...c.opamp, capabilities: c.opamp.capabilities || [] } : null;
      const attributes = c.local_attributes || {};
      panel.dataset.reported = agent ? 'true' : 'false';

      const outOfTouch = c.status === 'stale' || c.status === 'offline';
      redrawAgentPart('health', agent
        ? [agent.health, agent.capabilities.includes('reports health'), outOfTouch && c.last_seen_at]
        : [null, c.live === false && c.owner_node, c.status === 'awaiting_connection'],
      () => $('#agent-health').replaceChildren(...(agent ? agentHealth(c, agent) : agentWaiting(c)).filter(Boolean)));

      redrawAgentPart('description', attributes, () => kvList($('#agent-description'), agentDescription(attributes)));

      redrawAgentPart('capabilities', agent && agent.capabilities, () => {
        const capabilities = $('#agent-capabilities');
        if (!agent) capabilities.replaceChildren(h('p', { class: 'muted' }, 'Not reported yet.'));
        else if (!agent.capabilities.length) capabilities.replaceChildren(h('p', { class: 'muted' }, 'None reported.'));
        else {
          capabilities.replaceChildren(...[h('ul', { class: 'cap-chips', 'aria-labelledby': 'agent-capabilities-title' },
            agent.capabilities.map((name) => h('li', { class: 'cap-chip' }, name))),
          agent.capabilities.includes('accepts remote config')
            ? null
            : h('p', { class: 'help' }, 'It does not accept remote config: linkmesh cannot deliver configs to it.')].filter(Boolean));
        }
      });

      // Offered only when the agent accepts the command: the server sends none to another agent.
      const restartButton = $('#agent-restart');
      if (restartButton) restartButton.hidden = !(agent && agent.capabilities.includes('accepts restart command'));
      renderRestart();

      const available = agent && agent.available_components;
      const unreported = agent !== null && !agent.capabilities.includes('reports available components');
      // The details element itself is never replaced, so it stays open or closed as the user left it.
      redrawAgentPart('components', [available, unreported], () => {
        const counts = $('#agent-components-counts');
        const body = $('#agent-components-body');
        if (available) {
          const kinds = componentKinds(available);
          counts.replaceChildren(...kinds.map((kind, i) => [i ? ' · ' : '',
            h('span', { 'data-kind': kind }, countText((available[kind] || []).length, kind))]).flat());
          body.replaceChildren(h('dl', { class: 'kv' }, kinds.flatMap((kind) => [
            h('dt', {}, kind),
            h('dd', {}, (available[kind] || []).length
              ? h('ul', { class: 'component-list', 'aria-label': kind }, available[kind].map((type) => h('li', {}, h('code', {}, type))))
              : h('span', { class: 'muted' }, 'none')),
          ])));
        } else {
          counts.textContent = unreported ? 'not reported' : 'not listed yet';
          body.replaceChildren(h('p', { class: 'muted' }, unreported
            ? 'The agent does not report its components; configs are offered without checking its build.'
            : "Listed once the agent sends them (linkmesh asks for the list when the agent reports only its components' hash)."));
        }
      });
    }

    // ---- restart (operators, agents that accept restart commands): asked in a dialog, then followed
    // through the events: restart_requested, then restart_outcome from the agent's next health report.

    /** The last restart asked for and, once known, its outcome (the first restart_outcome after it). */
    function lastRestart() {
      let requested = null;
      let outcome = null;
      for (const event of state.events) {
        if (event.type === 'restart_requested') { requested = event; outcome = null; }
        else if (event.type === 'restart_outcome' && requested && !outcome) outcome = event;
      }
      return { requested, outcome };
    }

    function renderRestart() {
      const status = $('#agent-restart-status');
      if (!status) return;
      const { requested, outcome } = lastRestart();
      const sentAt = requested ? requested.ts : state.restartSentAt;
      redrawAgentPart('restart', [sentAt, outcome && outcome.id], () => {
        if (!sentAt) { status.hidden = true; status.replaceChildren(); return; }
        const data = (outcome && outcome.data) || {};
        const tone = !outcome ? 'pending' : data.restarted && data.healthy ? 'good' : 'bad';
        status.dataset.outcome = tone;
        status.hidden = false;
        status.replaceChildren(
          h('span', { class: 'agent-restart-label' }, 'Restart'), ' ',
          'requested ', timeAgo(sentAt), ' · ',
          outcome
            ? h('span', { class: `restart-outcome t-${tone}`, 'data-testid': 'agent-restart-outcome' }, outcome.message)
            : h('span', { class: 'muted' }, "waiting for the agent's next health report"));
      });
    }

    const restartDialog = $('#restart-dialog');
    const restartForm = $('#restart-form');
    $('#agent-restart')?.addEventListener('click', () => {
      clearErrors(restartForm);
      $('#restart-confirm').disabled = false;
      const name = state.collector ? state.collector.name : id;
      $('#restart-dialog-title').textContent = `Restart collector ${name}?`;
      restartDialog.showModal();
    });
    restartForm?.addEventListener('submit', async (event) => {
      event.preventDefault();
      const confirmButton = $('#restart-confirm');
      clearErrors(restartForm);
      confirmButton.disabled = true;
      try {
        await api('POST', `${base}/restart`);
        restartDialog.close();
        state.restartSentAt = new Date().toISOString();
        renderRestart();
        toast('Restart requested; the Agent panel shows how it went');
      } catch (error) {
        confirmButton.disabled = false;
        showError(restartForm, error);
      }
    });

    function labelsText(labels) {
      return Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join('\n');
    }

    $('[data-action="edit-labels"]')?.addEventListener('click', () => {
      $('#labels-text').value = labelsText(state.collector.labels);
      $('#labels-error').textContent = '';
      $('#labels-form').hidden = false;
      $('#labels-text').focus();
    });
    $('[data-action="cancel-labels"]')?.addEventListener('click', () => { $('#labels-form').hidden = true; });
    $('#labels-form')?.addEventListener('submit', async (event) => {
      event.preventDefault();
      const labels = {};
      for (const line of $('#labels-text').value.split('\n').map((l) => l.trim()).filter(Boolean)) {
        const at = line.indexOf('=');
        if (at < 1) { $('#labels-error').textContent = `"${line}" is not key=value`; return; }
        labels[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      try {
        await api('PATCH', base, { labels });
        state.collector = await api('GET', base);
        $('#labels-form').hidden = true;
        renderCollector();
        toast('Labels saved');
      } catch (error) {
        $('#labels-error').textContent = error.message;
      }
    });

    function applyRows(apply) {
      if (!apply) return [];
      const versionNote = apply.version ? ` · v${apply.version}` : '';
      return [
        ['Applied', [applyBadge(apply), h('span', { class: 'muted' }, ` ${APPLY_SOURCES[apply.source] || apply.source}${versionNote}`),
          apply.decided_at ? [' · ', timeAgo(apply.decided_at)] : null]],
        apply.reason ? ['Why', h('span', { class: 'apply-reason' }, apply.reason)] : null,
        apply.signals && apply.signals.length
          ? ['Signals', apply.signals.map((signal, i) => [i ? ', ' : '', h('code', {}, signal)])] : null,
        apply.error ? ['Error', h('pre', { class: 'remote-error' }, apply.error)] : null,
        apply.disagreement ? ['Disagreement', h('span', { class: 'pending' }, apply.disagreement)] : null,
        apply.alloy_version
          ? ['Alloy', [h('code', {}, apply.alloy_version),
            apply.alloy_release_row ? h('span', { class: 'muted' }, ` · signal table row ${apply.alloy_release_row}`) : null]]
          : null,
        ...(apply.limits || []).map((limit, i) => [i ? '' : 'Cannot know', h('span', { class: 'muted apply-limit' }, limit)]),
      ];
    }

    const EVENT_TONES = {
      remotecfg_registered: 't-good', config_delivered: 't-good', config_applied: 't-good',
      config_failed: 't-bad', auth_failed: 't-bad', host_id_conflict: 't-warn', token_rotated: 't-warn',
      unregistered: 't-warn',
    };

    function renderEvents(fresh) {
      const select = $('#events-type');
      const types = Array.from(new Set(state.events.map((event) => event.type))).sort();
      const chosen = select.value;
      select.replaceChildren(h('option', { value: '' }, 'All types'),
        ...types.map((type) => h('option', { value: type, selected: type === chosen }, type)));
      const freshIds = new Set((fresh || []).map((event) => event.id));
      const shown = state.events.filter((event) => !chosen || event.type === chosen).slice().reverse();
      $('#events-list').replaceChildren(...shown.map((event) => h('li', {
        class: freshIds.has(event.id) && fresh.length < state.events.length ? 'fresh' : null,
        'data-event-type': event.type,
      },
      h('time', { datetime: event.ts, title: absolute(event.ts) }, absolute(event.ts)),
      h('span', { class: `event-type ${EVENT_TONES[event.type] || ''}` }, event.type),
      h('span', {}, event.message,
        event.data && Object.keys(event.data).length
          ? h('span', { class: 'event-data' }, Object.entries(event.data).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('  '))
          : null))));
      $('#events-empty').hidden = shown.length !== 0;
      const count = $('#events-count');
      count.textContent = String(state.events.length);
      count.hidden = state.events.length === 0;
    }
    $('#events-type').addEventListener('change', () => renderEvents([]));

    stream(`${base.replace('/api/v1/collectors', '/api/v1/stream/collectors')}`, {
      collector: (collector) => { state.collector = collector; renderCollector(); },
      events: (data) => {
        const known = new Set(state.events.map((event) => event.id));
        const fresh = (data.events || []).filter((event) => !known.has(event.id));
        state.events.push(...fresh);
        renderEvents(fresh);
        if (state.collector && fresh.some((event) => event.type === 'status_changed')) renderOverview();
        if (fresh.some((event) => event.type.startsWith('restart_'))) renderRestart();
      },
      gone: () => { toast('This collector was deleted.', 'error'); setTimeout(() => { location.href = '/collectors'; }, 1500); },
    });

    // The stream answers at once; if a proxy holds it back, load the page's state anyway.
    setTimeout(async () => {
      if (state.collector) return;
      try {
        const [collector, events] = await Promise.all([api('GET', base), api('GET', `${base}/events?limit=1000`)]);
        if (state.collector) return;
        state.collector = collector;
        renderCollector();
        state.events = events.events || [];
        renderEvents([]);
        renderRestart();
      } catch (_) { /* the indicator and toasts say enough */ }
    }, 3000);

    // ---- config tab
    let configLoading = null;
    async function loadConfig() {
      if (configLoading) return configLoading;
      configLoading = (async () => {
        try {
          const [current, versions] = await Promise.all([api('GET', `${base}/config`), api('GET', `${base}/config/versions`)]);
          $('#config-meta').replaceChildren(
            h('strong', { 'data-testid': 'config-version' }, `Version ${current.version}`),
            ` · ${current.format} · hash `, h('code', { title: current.hash }, shortHash(current.hash)));
          $('#config-content').replaceChildren(...(current.content || '').replace(/\n$/, '').split('\n').map((line) => h('span', { class: 'line' }, line, '\n')));
          const items = current.items || [];
          $('#config-items tbody').replaceChildren(...(items.length ? items.map((item) => h('tr', { class: item.rendered ? null : 'muted' },
            h('td', {}, item.name),
            h('td', {}, item.kind, item.scope === 'fleet' ? h('span', { class: 'tag' }, 'fleet-wide') : null),
            h('td', {}, item.selector ? [item.reason.replace(/ because of selector .*$/, ' because of selector '), h('code', {}, item.selector),
              item.rendered ? null : ' — left out: none of its destinations applies here',
              item.held ? h('span', { class: 'tag', title: 'A staged rollout has not reached this collector yet' }, 'previous revision') : null] : item.reason))) : [h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'Nothing is configured for this collector yet.'))]));
          const list = versions.versions || [];
          const from = $('#diff-from');
          const to = $('#diff-to');
          const fromValue = from.value;
          const toValue = to.value;
          const option = (v) => h('option', { value: v.version }, `v${v.version} · ${absolute(v.created_at)}`);
          from.replaceChildren(...list.map(option));
          to.replaceChildren(...list.map(option));
          const newest = list[0];
          const previous = list[1];
          from.value = fromValue && list.some((v) => String(v.version) === fromValue) && state.diffPinned ? fromValue : String(previous ? previous.version : newest ? newest.version : '');
          to.value = toValue && list.some((v) => String(v.version) === toValue) && state.diffPinned ? toValue : String(newest ? newest.version : '');
          $('#versions-table tbody').replaceChildren(...list.map((v) => h('tr', {},
            h('td', {}, `v${v.version} `, v.version === versions.current ? h('span', { class: 'tag' }, 'current') : null),
            h('td', {}, absolute(v.created_at)),
            h('td', {}, h('code', { title: v.hash }, shortHash(v.hash))),
            h('td', {}, v.format))));
          if (previous) await showDiff();
          else $('#config-diff').replaceChildren(h('p', { class: 'muted' }, 'Only one version so far; changes to sources, routes or destinations create new versions.'));
        } catch (error) {
          $('#config-meta').textContent = `Could not load the config: ${error.message}`;
        } finally {
          configLoading = null;
        }
      })();
      return configLoading;
    }

    async function showDiff() {
      const from = $('#diff-from').value;
      const to = $('#diff-to').value;
      if (!from || !to) return;
      try {
        const diff = await api('GET', `${base}/config/diff?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
        const lines = (diff.diff || '').split('\n').filter((line, index, all) => line || index < all.length - 1);
        $('#config-diff').replaceChildren(lines.length
          ? h('pre', { 'aria-label': `Changes from version ${diff.from} to version ${diff.to}` }, lines.map((line) => h('span', {
            class: `dl ${line.startsWith('+++') || line.startsWith('---') ? 'hdr' : line.startsWith('@@') ? 'hunk' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : ''}`,
          }, line || ' ')))
          : h('p', { class: 'muted' }, `Versions ${diff.from} and ${diff.to} are identical.`));
      } catch (error) {
        $('#config-diff').replaceChildren(h('p', { class: 'form-error' }, error.message));
      }
    }
    $('#diff-form').addEventListener('submit', (event) => { event.preventDefault(); state.diffPinned = true; showDiff(); });

    // ---- topology tab
    function startTopology() {
      loadTopology();
      if (!state.topologyTimer) state.topologyTimer = setInterval(() => { if (!document.hidden) loadTopology(); }, 3000);
    }
    function stopTopology() {
      if (state.topologyTimer) clearInterval(state.topologyTimer);
      state.topologyTimer = null;
    }

    async function loadTopology() {
      const canvas = $('#topology-canvas');
      const empty = $('#topology-empty');
      const meta = $('#topology-meta');
      let topology;
      try {
        topology = await api('GET', `${base}/topology`);
      } catch (error) {
        if (error.status === 404 && /no such route/.test(error.message)) {
          meta.textContent = 'Unavailable';
          empty.replaceChildren(h('p', {}, 'This server does not serve the topology API yet.'));
          empty.hidden = false;
          canvas.replaceChildren();
          stopTopology();
        } else {
          meta.textContent = `Could not load the topology: ${error.message}`;
        }
        return;
      }
      const nodes = topology.nodes || [];
      const hasRates = nodes.some((node) => [node.in_rate, node.out_rate, node.error_rate].some((rate) => typeof rate === 'number')) ||
        (topology.edges || []).some((edge) => typeof edge.rate === 'number');
      const summary = topology.collector || {};
      const fmt = window.LinkmeshTopology.formatRate;
      meta.replaceChildren(`${nodes.length} components · `,
        ...(topology.live === false ? [h('span', { class: 'muted not-asked' }, 'rates unknown: the owner node is not answering')]
          : topology.updated_at ? ['own_metrics received ', timeAgo(topology.updated_at)] : ['no own_metrics yet']),
        typeof summary.received_rate === 'number' ? ` · received ${fmt(summary.received_rate)}` : '',
        typeof summary.sent_rate === 'number' ? ` · sent ${fmt(summary.sent_rate)}` : '',
        typeof summary.error_rate === 'number' && summary.error_rate > 0 ? h('span', { class: 'error-rate' }, ` · errors ${fmt(summary.error_rate)}`) : '');
      if (!nodes.length) {
        canvas.replaceChildren(h('div', { class: 'empty-state' },
          h('h3', {}, 'Nothing to draw yet'),
          h('p', {}, 'Add a source, a destination and a route; the canvas shows the pipeline the collector receives.')));
      } else {
        window.LinkmeshTopology.renderTopology(canvas, topology);
      }
      if (!hasRates && nodes.length) {
        empty.replaceChildren(
          h('p', {}, h('strong', {}, 'own_metrics are not arriving yet.'), ' The canvas shows the rendered pipeline; throughput appears once the collector pushes its own metrics (every 30 s with the enrollment config).'),
          h('p', {}, 'If nothing arrives: the own_metrics block (',
            h('code', {}, 'prometheus.exporter.self'), ' → ', h('code', {}, 'otelcol.exporter.otlphttp'),
            ') is missing from config.alloy, or its ', h('code', {}, 'Authorization'), ' token differs from ',
            h('code', {}, 'remotecfg.bearer_token'), ' — they must match. Re-copy the config from the Enrollment banner.'));
        empty.hidden = false;
      } else {
        empty.hidden = true;
      }
    }

    itemEditor({ base, canEdit, scope: 'collector' }).load();
    // Last, once everything a tab's first load uses is defined (a deep link to #config loads it now).
    const initial = tabs.tabs.find((tab) => `#${tab.dataset.tab}` === location.hash);
    if (initial) tabs.select(initial);
  }

  // ------------------------------------------------------------------ sources, destinations, routes

  // The lists and the add/edit dialog of sources, destinations and routes, for one collector
  // (`scope: 'collector'`, base `/api/v1/collectors/{id}`) or fleet-wide (`scope: 'fleet'`, base
  // `/api/v1`): fleet-wide items also carry a label selector and say how many collectors they apply
  // to, and a write that changes collectors' configs first asks how to roll it out. The page holds the
  // `#sources-list`, `#destinations-list`, `#routes-list` panels and the `#item-dialog`.
  function itemEditor({ base, canEdit, scope }) {
    const fleet = scope === 'fleet';
    const state = { sources: [], destinations: [], routes: [], pipelines: [] };

    async function load() {
      try {
        const [sources, destinations, routes, pipelines] = await Promise.all([
          api('GET', `${base}/sources`), api('GET', `${base}/destinations`), api('GET', `${base}/routes`),
          api('GET', '/api/v1/pipelines'),
        ]);
        state.sources = sources.sources || [];
        state.destinations = destinations.destinations || [];
        state.routes = routes.routes || [];
        state.pipelines = pipelines.pipelines || [];
        render();
      } catch (error) {
        for (const kind of ['sources', 'destinations', 'routes']) {
          $(`#${kind}-list`).replaceChildren(h('p', { class: 'form-error' }, `Could not load: ${error.message}`));
        }
      }
    }

    function actions(kind, item) {
      if (!canEdit) return null;
      return h('td', { class: 'cell-actions' },
        h('button', { type: 'button', class: 'link-button', onclick: () => openDialog(kind, item), 'aria-label': `Edit ${item.name}` }, 'Edit'),
        h('button', { type: 'button', class: 'link-button danger', onclick: () => deleteItem(kind, item), 'aria-label': `Delete ${item.name}` }, 'Delete'));
    }

    // Fleet-wide items show their selector and how many collectors it matches now.
    const scopeHead = fleet ? ['Selector', 'Collectors'] : [];
    function scopeCells(item) {
      if (!fleet) return [];
      return [
        h('td', {}, item.selector ? h('code', { class: 'selector' }, item.selector) : h('span', { class: 'muted' }, 'every collector')),
        h('td', { class: 'num', 'data-testid': 'item-collectors' }, String(item.collectors ?? 0)),
      ];
    }

    function table(head, rows, empty) {
      if (!rows.length) return h('div', { class: 'empty-state' }, empty);
      return h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, head.map((title) => h('th', { scope: 'col' }, title)), canEdit ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
        h('tbody', {}, rows));
    }

    function render() {
      const destinationName = (destinationId) => (state.destinations.find((d) => d.id === destinationId) || {}).name || destinationId;
      const pipelineName = (pipelineId) => (state.pipelines.find((p) => p.id === pipelineId) || {}).name || pipelineId;
      const where = fleet ? ' fleet-wide' : '';
      $('#sources-list').replaceChildren(table(['Name', 'Type', 'Settings', ...scopeHead], state.sources.map((source) =>
        h('tr', { 'data-item-id': source.id },
          h('td', { class: 'row-name' }, source.name),
          h('td', {}, h('code', {}, source.type)),
          h('td', {}, h('div', { class: 'settings-summary', title: summariseSettings(source.settings) }, summariseSettings(source.settings))),
          ...scopeCells(source),
          actions('sources', source))),
      `No${where} sources yet. Add one to receive telemetry.`));
      $('#destinations-list').replaceChildren(table(['Name', 'Type', 'Settings', 'Credentials', ...scopeHead], state.destinations.map((destination) =>
        h('tr', { 'data-item-id': destination.id },
          h('td', { class: 'row-name' }, destination.name),
          h('td', {}, h('code', {}, destination.type)),
          h('td', {}, h('div', { class: 'settings-summary', title: summariseSettings(destination.settings) }, summariseSettings(destination.settings))),
          h('td', {}, Object.keys(destination.credentials || {}).map((key) => h('span', { class: 'tag' }, `${key} ••••`))),
          ...scopeCells(destination),
          actions('destinations', destination))),
      `No${where} destinations yet.`));
      $('#routes-list').replaceChildren(table(['Priority', 'Name', 'Condition', 'Pipeline', 'Destinations', 'Final', ...scopeHead], state.routes.map((route) =>
        h('tr', { 'data-item-id': route.id },
          h('td', { class: 'num' }, String(route.priority)),
          h('td', { class: 'row-name' }, route.name),
          h('td', {}, h('code', {}, route.condition)),
          h('td', {}, route.pipeline_id ? pipelineName(route.pipeline_id) : h('span', { class: 'muted' }, 'none')),
          h('td', {}, route.destination_ids.map((d) => h('span', { class: 'tag' }, destinationName(d)))),
          h('td', {}, route.is_final ? 'final' : h('span', { class: 'muted' }, 'continue')),
          ...scopeCells(route),
          actions('routes', route))),
      `No${where} routes yet. A route sends what sources receive to destinations.`));
    }

    // Fleet-wide writes may change many collectors' configs: preview the write, and when it changes
    // any, ask how to roll it out. Returns the query string to write with, or null when cancelled.
    async function rolloutFor(method, path, body) {
      if (!fleet) return '';
      const preview = await api(method, `${path}?validate_only=true`, body);
      return preview.changes ? askRollout(preview.changes) : '';
    }

    async function deleteItem(kind, item) {
      const singular = kind.slice(0, -1);
      const reach = fleet
        ? `It is attached to ${item.collectors ?? 0} collector${item.collectors === 1 ? '' : 's'}; their configs change on their next poll.`
        : "The collector's config changes on its next poll.";
      if (!confirm(`Delete ${singular} "${item.name}"? ${reach}`)) return;
      try {
        await api('DELETE', `${base}/${kind}/${encodeURIComponent(item.id)}`);
        toast(`Deleted ${item.name}`);
        load();
      } catch (error) {
        toast(inUseMessage(`${singular} ${item.name}`, error), 'error');
      }
    }

    if (canEdit) {
      for (const button of $$('[data-action="add-item"]')) {
        button.addEventListener('click', () => openDialog(button.dataset.kind, null));
      }
    }

    const dialog = $('#item-dialog');
    const itemForm = $('#item-form');
    let submitItem = null;
    itemForm?.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!submitItem) return;
      clearErrors(itemForm);
      const button = $('#item-submit');
      button.disabled = true;
      try {
        await submitItem();
      } catch (error) {
        showError(itemForm, error);
      } finally {
        button.disabled = false;
      }
    });

    function field(name, label, input, help) {
      if (!input.id) input.id = `item-${name}`;
      const helpId = help ? `${input.id}-help` : null;
      if (helpId) input.setAttribute('aria-describedby', helpId);
      return h('div', { class: 'field', 'data-field': name },
        h('label', { for: input.id }, label), input,
        help ? h('p', { class: 'help', id: helpId }, help) : null,
        h('p', { class: 'field-error', hidden: true }));
    }

    // The selector of a fleet-wide item: empty means every collector, which the API wants said.
    function selectorField(item) {
      if (!fleet) return { fields: [], read: () => ({}), confirmed: () => true };
      const input = h('input', {
        type: 'text', name: 'selector', class: 'mono', spellcheck: 'false', autocomplete: 'off',
        placeholder: 'env=prod,region in (eu,us)', value: item ? item.selector : null,
      });
      return {
        fields: [field('selector', 'Label selector', input,
          'Attaches this to every collector whose labels match: key=value, key!=value, key in (a,b), key notin (a,b), key, !key, comma-separated (all must hold). Empty: every collector.')],
        read: () => ({ selector: input.value.trim() }),
        confirmed: () => input.value.trim() !== '' || confirm('The selector is empty: attach this to every collector?'),
      };
    }

    // Writes `body` (create when `item` is null), asking how to roll a fleet-wide change out first.
    async function save(kind, item, body) {
      const path = item ? `${base}/${kind}/${encodeURIComponent(item.id)}` : `${base}/${kind}`;
      const method = item ? 'PUT' : 'POST';
      const rollout = await rolloutFor(method, path, body);
      if (rollout === null) return false;
      await api(method, `${path}${rollout}`, body);
      if (rollout) toast('Rolling out in stages: see Rollouts');
      return true;
    }

    async function openDialog(kind, item) {
      const singular = { sources: 'source', destinations: 'destination', routes: 'route' }[kind];
      const prefix = fleet ? 'fleet-wide ' : '';
      $('#item-dialog-title').textContent = item ? `Edit ${prefix}${singular} ${item.name}` : `Add ${prefix}${singular}`;
      clearErrors(itemForm);
      const container = $('#item-fields');
      container.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
      if (!dialog.open) dialog.showModal();
      let entries;
      try {
        entries = await catalogue();
      } catch (error) {
        container.replaceChildren(h('p', { class: 'form-error' }, `Could not load the catalogue: ${error.message}`));
        return;
      }
      const nameInput = h('input', { type: 'text', name: 'name', required: true, maxlength: '128', autocomplete: 'off', value: item ? item.name : null });
      if (kind === 'routes') {
        buildRouteForm(container, item, nameInput);
      } else {
        buildTypedForm(container, kind, singular, entries, item, nameInput);
      }
      nameInput.focus();
    }

    // Credentials are write-only either way; only these are not secret, so they are typed in the clear.
    const NOT_SECRET_CREDENTIALS = new Set(['username']);

    function buildTypedForm(container, kind, singular, entries, item, nameInput) {
      const choices = entries.filter((entry) => entry.kind === singular);
      const typeSelect = h('select', { name: 'type', id: 'item-type' },
        choices.map((entry) => h('option', { value: entry.type, selected: item && item.type === entry.type }, entry.type)));
      const typeDescription = h('p', { class: 'type-desc', id: 'item-type-desc' });
      const settingsBox = h('div', { id: 'item-settings' });
      const credentialsBox = h('div', { id: 'item-credentials' });
      const selector = selectorField(item);
      const attributes = kind === 'sources'
        ? h('textarea', { name: 'resource_attributes', id: 'item-resource-attributes', rows: '2', placeholder: 'env=prod' })
        : null;
      if (attributes && item) attributes.value = Object.entries(item.resource_attributes || {}).map(([k, v]) => `${k}=${v}`).join('\n');
      const current = () => choices.find((entry) => entry.type === typeSelect.value) || choices[0];
      function renderType() {
        const entry = current();
        typeDescription.textContent = `${entry.description} Signals: ${(entry.signals || []).join(', ')}.`;
        const values = item && item.type === entry.type ? item.settings : null;
        settingsBox.replaceChildren(h('h3', { class: 'section-label' }, 'Settings'), ...settingsFields(entry, values, ''));
        if (kind === 'destinations' && (entry.credentials || []).length) {
          credentialsBox.replaceChildren(h('h3', { class: 'section-label' }, 'Credentials'),
            h('p', { class: 'help' }, 'Write-only: stored encrypted and never shown again.', item ? ' Leave empty to keep a stored value.' : ''),
            ...entry.credentials.map((key) => {
              const stored = item && item.credentials && key in item.credentials;
              const secret = !NOT_SECRET_CREDENTIALS.has(key);
              const input = h('input', {
                type: secret ? 'password' : 'text', id: `item-credential-${key}`, 'data-credential': key,
                autocomplete: secret ? 'new-password' : 'off', spellcheck: 'false', placeholder: stored ? '•••• stored' : null,
              });
              return h('div', { class: 'field', 'data-field': `credentials.${key}` },
                h('label', { for: input.id }, key), input, h('p', { class: 'field-error', hidden: true }));
            }));
        } else {
          credentialsBox.replaceChildren();
        }
      }
      typeSelect.addEventListener('change', renderType);
      container.replaceChildren(
        field('name', 'Name', nameInput),
        ...selector.fields,
        h('div', { class: 'field', 'data-field': 'type' },
          h('label', { for: 'item-type' }, 'Type'), typeSelect, typeDescription, h('p', { class: 'field-error', hidden: true })),
        settingsBox,
        credentialsBox,
        // replaceChildren() would print a null as the text "null": leave the section out instead.
        ...(attributes ? [h('h3', { class: 'section-label' }, 'Resource attributes'),
          field('resource_attributes', 'Added to every record from this source', attributes, 'One key=value per line.')] : []));
      renderType();
      submitItem = async () => {
        if (!selector.confirmed()) return;
        const body = { name: nameInput.value.trim(), ...selector.read(), type: typeSelect.value, settings: readSettings(settingsBox, '') };
        if (attributes) body.resource_attributes = parsePairs(attributes.value, 'resource_attributes');
        if (kind === 'destinations') {
          body.credentials = {};
          for (const input of $$('[data-credential]', credentialsBox)) {
            if (input.value) body.credentials[input.dataset.credential] = input.value;
          }
        }
        if (!await save(kind, item, body)) return;
        dialog.close();
        toast(`${capitalise(singular)} ${body.name} ${item ? 'saved' : 'added'}`);
        load();
      };
    }

    function buildRouteForm(container, item, nameInput) {
      const condition = h('input', { type: 'text', name: 'condition', class: 'mono', spellcheck: 'false', value: item ? item.condition : 'true' });
      const priority = h('input', { type: 'number', name: 'priority', step: '1', min: '0', value: item ? item.priority : 100 });
      const isFinal = h('input', { type: 'checkbox', id: 'item-is-final', checked: item ? item.is_final : true });
      const selector = selectorField(item);
      const pipeline = h('select', { name: 'pipeline_id' },
        h('option', { value: '' }, 'none — send records as they are'),
        state.pipelines.map((p) => h('option', { value: p.id, selected: item && item.pipeline_id === p.id }, p.name)));
      const destinations = h('fieldset', { class: 'field checks', 'data-field': 'destination_ids' },
        h('legend', {}, fleet ? 'Fleet-wide destinations' : 'Destinations'),
        fleet ? h('p', { class: 'help' }, 'Each collector gets those of them that apply to it; the route is left out where none does.') : null,
        state.destinations.length
          ? state.destinations.map((d) => h('label', { class: 'check' },
            h('input', { type: 'checkbox', value: d.id, 'data-destination': d.id, checked: item ? item.destination_ids.includes(d.id) : state.destinations.length === 1 }),
            `${d.name} (${d.type})`))
          : h('p', { class: 'muted' }, `No${fleet ? ' fleet-wide' : ''} destinations yet — add one first.`),
        h('p', { class: 'field-error', hidden: true }));
      container.replaceChildren(
        field('name', 'Name', nameInput),
        ...selector.fields,
        field('condition', 'Condition', condition, 'An OTTL condition on each record; "true" matches everything.'),
        field('priority', 'Priority', priority, 'Lower runs first.'),
        h('div', { class: 'field', 'data-field': 'is_final' },
          h('label', { class: 'check', for: 'item-is-final' }, isFinal, 'Final: records this route matches are not offered to later routes')),
        field('pipeline_id', 'Pipeline', pipeline),
        destinations);
      submitItem = async () => {
        if (!selector.confirmed()) return;
        const body = {
          name: nameInput.value.trim(),
          ...selector.read(),
          condition: condition.value.trim(),
          priority: priority.value === '' ? 100 : Number(priority.value),
          is_final: isFinal.checked,
          destination_ids: $$('[data-destination]', destinations).filter((box) => box.checked).map((box) => box.value),
        };
        if (pipeline.value) body.pipeline_id = pipeline.value;
        if (!await save('routes', item, body)) return;
        dialog.close();
        toast(`Route ${body.name} ${item ? 'saved' : 'added'}`);
        load();
      };
    }

    return { load };
  }

  // The impact of a change that gives `changes` collectors a new config, and how to roll it out: ''
  // (all at once), a staged query string, or null (cancelled).
  function askRollout(changes) {
    return new Promise((resolve) => {
      const first = h('input', { type: 'text', name: 'first_batch', value: '10%', size: '5', 'aria-label': 'First batch' });
      const staged = h('input', { type: 'radio', name: 'rollout', value: 'staged', checked: '' });
      const all = h('input', { type: 'radio', name: 'rollout', value: 'all' });
      const dialog = h('dialog', { class: 'dialog', 'data-testid': 'impact-dialog' },
        h('form', { method: 'dialog' },
          h('div', { class: 'dialog-header' }, h('h2', { class: 'panel-title' }, `This changes the config of ${changes} collector${changes === 1 ? '' : 's'}`)),
          h('div', { class: 'dialog-body' },
            h('p', { class: 'muted' }, 'A staged rollout gives the change to a first batch, then to the rest once those applied it; a collector that reports FAILED pauses it.'),
            h('label', { class: 'radio' }, staged, ' Staged: first batch ', first),
            h('label', { class: 'radio' }, all, ' All at once')),
          h('div', { class: 'dialog-footer' },
            h('button', { type: 'submit', class: 'btn', value: 'cancel' }, 'Cancel'),
            h('button', { type: 'submit', class: 'btn btn-primary', value: 'ok' }, 'Save and roll out'))));
      dialog.addEventListener('close', () => {
        dialog.remove();
        if (dialog.returnValue !== 'ok') return resolve(null);
        resolve(staged.checked ? `?rollout=staged&first_batch=${encodeURIComponent(first.value.trim() || '10%')}` : '');
      });
      document.body.append(dialog);
      dialog.showModal();
    });
  }

  // ------------------------------------------------------------------ fleet-wide items

  function fleetPage() {
    const root = $('#fleet-root');
    itemEditor({ base: '/api/v1', canEdit: root.dataset.canEdit === 'true', scope: 'fleet' }).load();
  }

  // ------------------------------------------------------------------ pipelines

  function pipelinesPage() {
    const root = $('#pipelines-root');
    const canEdit = root.dataset.canEdit === 'true';
    const form = $('#pipeline-form');
    const list = $('#pipeline-list');
    const stepList = $('#step-list');
    const state = { pipelines: [], entries: [], current: null, steps: [] };

    async function load(selectId) {
      try {
        const [entries, body] = await Promise.all([catalogue(), api('GET', '/api/v1/pipelines')]);
        state.entries = entries.filter((entry) => entry.kind === 'step');
        state.pipelines = (body.pipelines || []).slice().sort((a, b) => a.name.localeCompare(b.name));
        $('#add-step-type').replaceChildren(...state.entries.map((entry) => h('option', { value: entry.type }, `${entry.type} — ${entry.description}`)));
        renderList();
        const wanted = selectId || location.hash.slice(1);
        const found = state.pipelines.find((p) => p.id === wanted);
        if (found) edit(found);
      } catch (error) {
        list.replaceChildren(h('li', { class: 'form-error' }, `Could not load pipelines: ${error.message}`));
      }
    }

    function renderList() {
      list.replaceChildren(...(state.pipelines.length ? state.pipelines.map((pipeline) => h('li', {},
        h('a', {
          href: `#${pipeline.id}`,
          'aria-current': state.current && state.current.id === pipeline.id ? 'true' : null,
          onclick: (event) => { event.preventDefault(); history.replaceState(null, '', `#${pipeline.id}`); edit(pipeline); },
        }, pipeline.name,
        h('span', { class: 'sub' }, `${pipeline.steps.length} step${pipeline.steps.length === 1 ? '' : 's'} · ${pipeline.signals.join(', ')}`))))
        : [h('li', { class: 'muted' }, 'No pipelines yet.')]));
    }

    function edit(pipeline) {
      state.current = pipeline;
      state.steps = pipeline ? pipeline.steps.map((step) => ({ type: step.type, settings: { ...step.settings } })) : [];
      $('#pipeline-placeholder').hidden = true;
      form.hidden = false;
      clearErrors(form);
      $('#pipeline-form-title').textContent = pipeline ? `Edit ${pipeline.name}` : 'New pipeline';
      form.name.value = pipeline ? pipeline.name : '';
      form.description.value = pipeline ? pipeline.description : '';
      for (const box of $$('input[name="signals"]', form)) box.checked = pipeline ? pipeline.signals.includes(box.value) : true;
      $('[data-action="delete-pipeline"]').hidden = !pipeline || !canEdit;
      renderSteps();
      renderList();
      if (!canEdit) for (const control of form.elements) control.disabled = true;
      form.name.focus();
    }

    /** Copies what the user typed into the step cards back into state.steps. */
    function captureSteps() {
      $$('.step-card', stepList).forEach((card, index) => {
        try { state.steps[index].settings = readSettings($('.step-card-body', card), `steps[${index}].`); } catch (_) { /* kept as typed on save */ }
      });
    }

    function renderSteps() {
      stepList.replaceChildren(...state.steps.map((step, index) => {
        const entry = state.entries.find((e) => e.type === step.type) || { type: step.type, settings: [], description: '' };
        const move = (delta) => {
          captureSteps();
          const [moved] = state.steps.splice(index, 1);
          state.steps.splice(index + delta, 0, moved);
          renderSteps();
          $$('.step-card', stepList)[index + delta]?.querySelector('button')?.focus();
        };
        return h('li', { class: 'step-card', 'data-field': `steps[${index}]` },
          h('div', { class: 'step-card-head' },
            h('strong', {}, step.type), h('span', { class: 'desc' }, entry.description),
            h('button', { type: 'button', class: 'btn btn-small', disabled: index === 0, 'aria-label': `Move step ${index + 1} (${step.type}) up`, onclick: () => move(-1) }, '↑'),
            h('button', { type: 'button', class: 'btn btn-small', disabled: index === state.steps.length - 1, 'aria-label': `Move step ${index + 1} (${step.type}) down`, onclick: () => move(1) }, '↓'),
            h('button', {
              type: 'button', class: 'btn btn-small btn-danger-ghost', 'aria-label': `Remove step ${index + 1} (${step.type})`,
              onclick: () => { captureSteps(); state.steps.splice(index, 1); renderSteps(); },
            }, 'Remove')),
          h('div', { class: 'step-card-body' }, settingsFields(entry, step.settings, `steps[${index}].`),
            h('p', { class: 'field-error', hidden: true })));
      }));
      if (!state.steps.length) stepList.replaceChildren(h('li', { class: 'muted' }, 'No steps: records pass through unchanged.'));
    }

    $('[data-action="add-step"]').addEventListener('click', () => {
      captureSteps();
      state.steps.push({ type: $('#add-step-type').value, settings: {} });
      renderSteps();
      const cards = $$('.step-card', stepList);
      cards[cards.length - 1]?.querySelector('input, textarea, select')?.focus();
    });
    $('[data-action="new-pipeline"]')?.addEventListener('click', () => { history.replaceState(null, '', location.pathname); edit(null); });

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      try {
        const steps = $$('.step-card', stepList).map((card, index) => ({
          type: state.steps[index].type,
          settings: readSettings($('.step-card-body', card), `steps[${index}].`),
        }));
        const body = {
          name: form.name.value.trim(),
          description: form.description.value.trim(),
          signals: $$('input[name="signals"]', form).filter((box) => box.checked).map((box) => box.value),
          steps,
        };
        let saved;
        if (state.current) {
          const path = `/api/v1/pipelines/${encodeURIComponent(state.current.id)}`;
          const preview = await api('PUT', `${path}?validate_only=true`, body);
          const rollout = preview.changes ? await askRollout(preview.changes) : '';
          if (rollout === null) return;
          saved = await api('PUT', `${path}${rollout}`, body);
          if (preview.changes) toast(`Rolling out to ${preview.changes} collector${preview.changes === 1 ? '' : 's'}: see Rollouts`);
        } else {
          saved = await api('POST', '/api/v1/pipelines', body);
        }
        toast(`Pipeline ${saved.name} saved`);
        history.replaceState(null, '', `#${saved.id}`);
        await load(saved.id);
      } catch (error) {
        showError(form, error);
        const card = error.field && /^steps\[\d+\]/.test(error.field) ? form.querySelector(`[data-field="${CSS.escape(error.field.match(/^steps\[\d+\]/)[0])}"]`) : null;
        if (card) card.classList.add('has-error');
      }
    });

    $('[data-action="delete-pipeline"]').addEventListener('click', async () => {
      if (!state.current || !confirm(`Delete pipeline "${state.current.name}"?`)) return;
      try {
        await api('DELETE', `/api/v1/pipelines/${encodeURIComponent(state.current.id)}`);
        toast(`Deleted ${state.current.name}`);
        state.current = null;
        form.hidden = true;
        $('#pipeline-placeholder').hidden = false;
        history.replaceState(null, '', location.pathname);
        load();
      } catch (error) {
        toast(inUseMessage(`pipeline ${state.current.name}`, error), 'error');
      }
    });

    load();
  }

  // ------------------------------------------------------------------ settings

  function settingsPage() {
    const tokenDialog = $('#token-dialog');
    const tokenForm = $('#token-form');
    let tokenAccount = null;

    async function loadAccounts() {
      try {
        const body = await api('GET', '/api/v1/service-accounts');
        const accounts = (body.service_accounts || []).slice().sort((a, b) => a.name.localeCompare(b.name));
        $('#sa-table tbody').replaceChildren(...(accounts.length ? accounts.map((account) => h('tr', {},
          h('td', { class: 'row-name' }, account.name, h('div', { class: 'row-sub' }, account.id)),
          h('td', {}, h('code', {}, account.role)),
          h('td', {}, timeAgo(account.created_at)),
          h('td', { class: 'cell-actions' }, h('button', {
            type: 'button', class: 'btn btn-small', 'aria-label': `Create a token for ${account.name}`,
            onclick: () => { tokenAccount = account; clearErrors(tokenForm); tokenForm.reset(); $('#token-dialog-title').textContent = `New token for ${account.name}`; tokenDialog.showModal(); },
          }, 'Create token'),
          h('button', { type: 'button', class: 'link-button', 'aria-label': `Tokens of ${account.name}`, onclick: () => loadTokens(account) }, 'Tokens'),
          h('button', { type: 'button', class: 'link-button danger', 'aria-label': `Delete ${account.name}`, onclick: () => deleteAccount(account) }, 'Delete'))))
          : [h('tr', {}, h('td', { colspan: '4', class: 'muted' }, 'No service accounts yet.'))]));
      } catch (error) {
        toast(error.message, 'error');
      }
    }

    async function loadUsers() {
      try {
        const body = await api('GET', '/api/v1/users');
        const users = (body.users || []).slice().sort((a, b) => a.username.localeCompare(b.username));
        $('#users-table tbody').replaceChildren(...users.map((user) => h('tr', {},
          h('td', { class: 'row-name' }, user.username),
          h('td', {}, h('code', {}, user.role)),
          h('td', {}, user.disabled ? h('span', { class: 'badge' }, 'disabled') : 'enabled'),
          h('td', {}, timeAgo(user.created_at)),
          h('td', { class: 'cell-actions' },
            h('button', { type: 'button', class: 'link-button', 'aria-label': `${user.disabled ? 'Enable' : 'Disable'} ${user.username}`, onclick: () => setDisabled(user, !user.disabled) }, user.disabled ? 'Enable' : 'Disable'),
            h('button', { type: 'button', class: 'link-button danger', 'aria-label': `Delete ${user.username}`, onclick: () => deleteUser(user) }, 'Delete')))));
      } catch (error) {
        $('#users-table tbody').replaceChildren(h('tr', {}, h('td', { colspan: '5', class: 'form-error' }, `Could not load users: ${error.message}`)));
      }
    }

    async function setDisabled(user, disabled) {
      if (disabled && !confirm(`Disable ${user.username}? Their sessions end at once and they cannot sign in.`)) return;
      try {
        await api('PATCH', `/api/v1/users/${encodeURIComponent(user.id)}`, { disabled });
        toast(`${user.username} ${disabled ? 'disabled' : 'enabled'}`);
      } catch (error) {
        toast(error.message, 'error');
      }
      loadUsers();
      loadAudit();
    }

    async function deleteUser(user) {
      if (!confirm(`Delete user ${user.username}? Their sessions end at once.`)) return;
      try {
        await api('DELETE', `/api/v1/users/${encodeURIComponent(user.id)}`);
        toast(`${user.username} deleted`);
      } catch (error) {
        toast(error.message, 'error');
      }
      loadUsers();
      loadAudit();
    }

    let tokensAccount = null;
    async function loadTokens(account) {
      tokensAccount = account;
      const box = $('#sa-tokens');
      $('#sa-tokens-title').textContent = `Tokens of ${account.name}`;
      box.hidden = false;
      try {
        const body = await api('GET', `/api/v1/service-accounts/${encodeURIComponent(account.id)}/tokens`);
        const tokens = body.tokens || [];
        $('#sa-tokens-table tbody').replaceChildren(...(tokens.length ? tokens.map((token) => h('tr', {},
          h('td', { class: 'row-name' }, token.label || '—', h('div', { class: 'row-sub' }, token.id)),
          h('td', {}, h('code', {}, token.prefix ? `${token.prefix}…` : '—')),
          h('td', {}, timeAgo(token.created_at)),
          h('td', {}, token.expires_at ? absolute(token.expires_at) : 'never'),
          h('td', {}, timeAgo(token.last_used_at)),
          h('td', { class: 'cell-actions' }, h('button', {
            type: 'button', class: 'link-button danger', 'aria-label': `Revoke ${token.label || token.id}`,
            onclick: () => revokeToken(account, token),
          }, 'Revoke'))))
          : [h('tr', {}, h('td', { colspan: '6', class: 'muted' }, 'No tokens.'))]));
      } catch (error) {
        toast(error.message, 'error');
      }
    }

    async function revokeToken(account, token) {
      if (!confirm(`Revoke token ${token.label || token.id}? Anything using it is refused from the next request on.`)) return;
      try {
        await api('DELETE', `/api/v1/service-accounts/${encodeURIComponent(account.id)}/tokens/${encodeURIComponent(token.id)}`);
        toast('Token revoked');
      } catch (error) {
        toast(error.message, 'error');
      }
      loadTokens(account);
      loadAudit();
    }

    async function deleteAccount(account) {
      if (!confirm(`Delete service account ${account.name}? All of its tokens stop working at once.`)) return;
      try {
        await api('DELETE', `/api/v1/service-accounts/${encodeURIComponent(account.id)}`);
        toast(`${account.name} deleted`);
        if (tokensAccount && tokensAccount.id === account.id) $('#sa-tokens').hidden = true;
      } catch (error) {
        toast(error.message, 'error');
      }
      loadAccounts();
      loadAudit();
    }

    async function loadAudit() {
      try {
        const body = await api('GET', '/api/v1/audit?tail=100');
        const entries = (body.entries || []).slice().reverse();
        $('#audit-table tbody').replaceChildren(...(entries.length ? entries.map((entry) => h('tr', {},
          h('td', {}, timeAgo(entry.ts)),
          h('td', { class: 'row-name' }, entry.actor, h('div', { class: 'row-sub' }, entry.actor_kind === 'user' ? 'user' : 'service account')),
          h('td', {}, h('code', {}, entry.remote_addr)),
          h('td', {}, h('code', {}, entry.action)),
          h('td', {}, h('code', {}, entry.target)),
          h('td', {}, entry.outcome === 'ok' ? 'ok' : h('span', { class: 'badge' }, entry.outcome))))
          : [h('tr', {}, h('td', { colspan: '6', class: 'muted' }, 'Nothing recorded yet.'))]));
      } catch (error) {
        $('#audit-table tbody').replaceChildren(h('tr', {}, h('td', { colspan: '6', class: 'form-error' }, `Could not load the audit log: ${error.message}`)));
      }
    }
    $('#audit-refresh').addEventListener('click', loadAudit);

    const saForm = $('#sa-form');
    saForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(saForm);
      try {
        const created = await api('POST', '/api/v1/service-accounts', { name: saForm.name.value.trim(), role: saForm.role.value });
        toast(`Service account ${created.name} created`);
        saForm.reset();
        loadAccounts();
      } catch (error) {
        showError(saForm, error);
      }
    });

    tokenForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(tokenForm);
      const days = tokenForm.expires_in_days.value.trim();
      const body = { label: tokenForm.label.value.trim() };
      if (days) body.expires_in_days = /^\d+$/.test(days) ? Number(days) : days;
      try {
        const minted = await api('POST', `/api/v1/service-accounts/${encodeURIComponent(tokenAccount.id)}/tokens`, body);
        tokenDialog.close();
        $('#sa-token-account').textContent = tokenAccount.name;
        $('#sa-token').value = minted.token;
        $('#sa-token-box').hidden = false;
        $('#sa-token').focus();
        $('#sa-token').select();
        if (tokensAccount && tokensAccount.id === tokenAccount.id) loadTokens(tokenAccount);
        loadAudit();
      } catch (error) {
        showError(tokenForm, error);
      }
    });

    const userForm = $('#user-form');
    userForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(userForm);
      try {
        const created = await api('POST', '/api/v1/users', {
          username: userForm.username.value.trim(), role: userForm.role.value, password: userForm.password.value,
        });
        toast(`User ${created.username} added`);
        userForm.reset();
        loadUsers();
      } catch (error) {
        showError(userForm, error);
      }
    });

    loadAccounts();
    loadUsers();
    loadAudit();
    accountPanel();
  }

  /** "Your account" on the settings page (every role): change one's password, see and end sessions. */
  function accountPanel() {
    const panel = $('#account-panel');
    if (!panel) return;
    const userId = panel.dataset.userId;
    const form = $('#password-form');

    async function loadSessions() {
      try {
        const body = await api('GET', `/api/v1/auth/sessions?user_id=${encodeURIComponent(userId)}`);
        const sessions = (body.sessions || []).slice().sort((a, b) => b.created_at.localeCompare(a.created_at));
        $('#sessions-table tbody').replaceChildren(...sessions.map((session) => h('tr', {},
          h('td', {}, timeAgo(session.created_at), session.current ? h('div', { class: 'row-sub' }, 'this browser') : null),
          h('td', {}, h('code', {}, session.remote_addr || '—')),
          h('td', {}, absolute(session.expires_at)),
          h('td', { class: 'cell-actions' }, session.current ? null : h('button', {
            type: 'button', class: 'link-button danger', 'aria-label': `End the session from ${session.remote_addr || 'elsewhere'}`,
            onclick: async () => {
              try {
                await api('DELETE', `/api/v1/auth/sessions/${encodeURIComponent(session.id)}`);
                toast('Session ended');
              } catch (error) {
                toast(error.message, 'error');
              }
              loadSessions();
            },
          }, 'End')))));
      } catch (error) {
        toast(error.message, 'error');
      }
    }

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(form);
      try {
        await api('POST', `/api/v1/users/${encodeURIComponent(userId)}/password`, {
          current_password: form.current_password.value, new_password: form.new_password.value,
        });
        form.reset();
        toast('Password changed; your other sessions ended');
        loadSessions();
      } catch (error) {
        showError(form, error);
      }
    });

    loadSessions();
  }

  // ------------------------------------------------------------------ cluster

  /** Distinct, readable colours for the slot bar, by member position. */
  const NODE_COLOURS = ['#1f60c4', '#1a7f37', '#b35900', '#7a4fd0', '#c4162a', '#0e7c86', '#8a6d00', '#5b6472'];

  function clusterPage() {
    const REFRESH_MS = 2000;

    function memberLabel(member) {
      return member.name ? member.name : `node ${member.id}`;
    }

    function stateBadge(member) {
      const state = member.state || 'unknown';
      const tone = { leader: 'connected', follower: 'connected', learner: 'awaiting_connection', candidate: 'degraded', unreachable: 'offline' }[state] || 'stale';
      return h('span', { class: `badge status-${tone}`, 'data-state': state }, h('span', { class: 'dot', 'aria-hidden': 'true' }), state);
    }

    function figure(value, unit) {
      if (value === null || value === undefined) return h('span', { class: 'muted', title: 'only the leader knows this figure' }, '—');
      return unit ? `${value} ${unit}` : String(value);
    }

    function render(cluster) {
      $('#cluster-id').textContent = cluster.cluster_id || '—';
      const leader = (cluster.members || []).find((member) => member.id === cluster.leader_id);
      $('#cluster-leader').textContent = leader ? memberLabel(leader) : (cluster.leader_id ? `node ${cluster.leader_id}` : 'none (election in progress)');
      $('#cluster-term').textContent = String(cluster.term ?? '—');
      $('#cluster-commit').textContent = String(cluster.commit_index ?? '—');

      const members = cluster.members || [];
      const rows = members.map((member) => h('tr', { 'data-member': member.id },
        h('td', {}, h('div', { class: 'row-name' }, memberLabel(member), member.id === cluster.leader_id ? h('span', { class: 'tag' }, 'leader') : null),
          h('div', { class: 'row-sub' }, String(member.id))),
        h('td', {}, member.role || '—'),
        h('td', {}, stateBadge(member)),
        h('td', { class: 'mono' }, member.http_addr || '—'),
        h('td', { class: 'mono' }, member.rpc_addr || '—'),
        h('td', { class: 'num' }, figure(member.last_contact_ms, 'ms')),
        h('td', { class: 'num' }, figure(member.lag)),
        h('td', { class: 'num' }, figure(member.applied_index)),
        h('td', { class: 'num' }, figure(member.slots))));
      $('#members-table tbody').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'No members.'))]));

      const total = members.reduce((sum, member) => sum + (member.slots || 0), 0);
      const bar = $('#slot-bar');
      const legend = $('#slot-legend');
      // Colours and widths through the CSSOM: the CSP refuses style attributes.
      const colour = (index) => NODE_COLOURS[index % NODE_COLOURS.length];
      bar.replaceChildren(...members.map((member, index) => {
        if (!member.slots) return null;
        const share = h('span', { class: 'slot-share', title: `${memberLabel(member)}: ${member.slots} slots` });
        share.style.flexGrow = String(member.slots);
        share.style.background = colour(index);
        return share;
      }).filter(Boolean));
      legend.replaceChildren(...members.map((member, index) => {
        const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
        swatch.style.background = colour(index);
        return h('li', {}, swatch, `${memberLabel(member)}: ${member.slots || 0} slots`,
          total ? ` (${Math.round((100 * (member.slots || 0)) / total)}%)` : '');
      }));
    }

    async function refresh() {
      try {
        render(await api('GET', '/api/v1/cluster'));
        $('#cluster-error').hidden = true;
        liveIndicator('live', 'Live');
      } catch (error) {
        const box = $('#cluster-error');
        box.textContent = `Cannot read the cluster's state from this node: ${error.message}`;
        box.hidden = false;
        liveIndicator('error', 'Retrying…');
      }
      setTimeout(refresh, REFRESH_MS);
    }
    refresh();
  }

  function rolloutsPage() {
    const REFRESH_MS = 2000;
    const detail = $('#rollout-detail');
    const canEdit = detail.dataset.canEdit === 'true';
    let selected = new URLSearchParams(location.search).get('id');
    const TONES = { running: 'connected', paused: 'degraded', done: 'awaiting_connection', aborted: 'offline' };
    const PROGRESS = ['applied', 'delivered', 'pending', 'unknown', 'failed'];

    function stateBadge(state) {
      return h('span', { class: `badge status-${TONES[state] || 'stale'}`, 'data-state': state }, h('span', { class: 'dot', 'aria-hidden': 'true' }), state);
    }

    function progressBar(counts) {
      const total = PROGRESS.reduce((sum, key) => sum + (counts[key] || 0), 0);
      const bar = h('span', { class: 'progress-bar', role: 'img',
        'aria-label': PROGRESS.map((key) => `${counts[key] || 0} ${key}`).join(', ') });
      for (const key of PROGRESS) {
        if (!counts[key]) continue;
        const part = h('span', { class: `progress-part progress-${key}`, title: `${counts[key]} ${key}` });
        part.style.flexGrow = String(counts[key]);
        bar.append(part);
      }
      return h('span', { class: 'progress-cell' }, bar, h('span', { class: 'muted' },
        ` ${counts.applied || 0}/${total} applied`, counts.failed ? `, ${counts.failed} failed` : ''));
    }

    function renderList(rollouts) {
      const rows = rollouts.map((rollout) => {
        const row = h('tr', { 'data-rollout': rollout.id, class: rollout.id === selected ? 'selected' : null, tabindex: '0' },
          h('td', {}, h('div', { class: 'row-name' }, rollout.change, rollout.strategy === 'staged' ? h('span', { class: 'tag' }, 'staged') : null),
            h('div', { class: 'row-sub' }, rollout.id)),
          h('td', {}, stateBadge(rollout.state)),
          h('td', {}, progressBar(rollout.counts)),
          h('td', {}, rollout.started_by || '—'),
          h('td', {}, timeAgo(rollout.created_at)));
        const open = () => { selected = rollout.id; history.replaceState(null, '', `?id=${encodeURIComponent(rollout.id)}`); refresh(); };
        row.addEventListener('click', open);
        row.addEventListener('keydown', (event) => { if (event.key === 'Enter') open(); });
        return row;
      });
      $('#rollouts-table tbody').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No rollouts yet: changes to pipelines, sources, routes and destinations appear here.'))]));
    }

    function renderDetail(rollout) {
      detail.hidden = false;
      $('#rollout-title').replaceChildren(rollout.change, ' ', stateBadge(rollout.state));
      $('#rollout-meta').textContent = [rollout.id,
        rollout.strategy === 'staged' ? `staged: first batch ${rollout.first_batch}, soak ${rollout.soak_seconds}s` : 'all at once',
        rollout.rollback_of ? `rolls back ${rollout.rollback_of}` : null,
        rollout.rolled_back_by ? `rolled back by ${rollout.rolled_back_by}` : null,
        rollout.superseded_by ? `superseded by ${rollout.superseded_by}` : null].filter(Boolean).join(' · ');
      const paused = $('#rollout-paused');
      paused.hidden = !rollout.paused_reason;
      paused.textContent = rollout.paused_reason ? `Paused: ${rollout.paused_reason}` : '';
      if (canEdit) {
        $('[data-action="rollout-resume"]').hidden = rollout.state !== 'paused';
        $('[data-action="rollout-abort"]').hidden = !['running', 'paused'].includes(rollout.state);
        $('[data-action="rollout-rollback"]').hidden = !rollout.item || !!rollout.rolled_back_by;
      }
      $('#rollout-batches').replaceChildren(...rollout.batches.map((batch) => h('div', { class: 'rollout-batch' },
        h('strong', {}, `Batch ${batch.index + 1}`), ` · ${batch.size} collector${batch.size === 1 ? '' : 's'} · `,
        batch.released_at ? ['released ', timeAgo(batch.released_at)] : h('span', { class: 'muted' }, 'waiting'),
        ' ', progressBar(batch.counts))));
      $('#rollout-collectors tbody').replaceChildren(...(rollout.collectors || []).map((collector) => h('tr', {},
        h('td', {}, h('a', { href: `/collectors/${encodeURIComponent(collector.id)}` }, collector.name)),
        h('td', { class: 'num' }, String(collector.batch + 1)),
        h('td', {}, h('span', { class: `progress-label progress-${collector.progress}` }, collector.progress)),
        h('td', {}, statusBadge(collector.status)),
        h('td', {}, collector.error ? h('code', {}, collector.error) : ''))));
    }

    async function act(action, question) {
      if (question && !window.confirm(question)) return;
      try {
        await api('POST', `/api/v1/rollouts/${encodeURIComponent(selected)}/${action}`);
        toast(`Rollout ${action === 'rollback' ? 'rolled back' : `${action}d`}`);
        refresh();
      } catch (error) {
        toast(error.message, 'error');
      }
    }
    if (canEdit) {
      $('[data-action="rollout-resume"]').addEventListener('click', () => act('resume'));
      $('[data-action="rollout-abort"]').addEventListener('click', () => act('abort', 'Abort this rollout? Every collector it reached gets the previous version back.'));
      $('[data-action="rollout-rollback"]').addEventListener('click', () => act('rollback', 'Roll back this change for every collector?'));
    }

    let timer = null;
    async function refresh() {
      clearTimeout(timer);
      try {
        const list = await api('GET', '/api/v1/rollouts?limit=50');
        renderList(list.rollouts || []);
        if (selected) renderDetail(await api('GET', `/api/v1/rollouts/${encodeURIComponent(selected)}`));
        $('#rollouts-error').hidden = true;
      } catch (error) {
        $('#rollouts-error').hidden = false;
        $('#rollouts-error').textContent = `Could not load rollouts: ${error.message}`;
      }
      timer = setTimeout(refresh, REFRESH_MS);
    }
    refresh();
  }

  const pages = {
    login: loginPage,
    collectors: collectorsPage,
    'new-collector': newCollectorPage,
    enroll: enrollPage,
    collector: collectorPage,
    pipelines: pipelinesPage,
    settings: settingsPage,
    cluster: clusterPage,
    rollouts: rolloutsPage,
    fleet: fleetPage,
    'settings-denied': accountPanel,
  };
  if (pages[page]) pages[page]();
})();
