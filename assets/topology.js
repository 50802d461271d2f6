// Topology canvas: a layered (Sugiyama-style) layout of a collector's rendered pipeline and its SVG
// drawing. `layoutTopology` is pure (tested by e2e/layout.test.js under node); `renderTopology`
// draws into a container. No dependencies.
//
// Layout, left to right: sources → route → steps → destinations.
// 1. Layers: longest path from the nodes without inputs (back edges of any cycle are ignored);
//    destinations are pulled to the last layer so they line up on the right.
// 2. Edges spanning several layers get one dummy node per layer crossed, so nothing is drawn
//    through a node and the ordering sees them.
// 3. Order within a layer: barycenter heuristic, alternating down and up sweeps, keeping the order
//    with the fewest crossings.
// 4. Vertical positions: nodes move towards the mean of their neighbours, keeping their order and a
//    minimum gap (so nodes never overlap).
// `local` nodes (components linkmesh does not manage) are laid out apart, in a band below.
'use strict';

(function (root) {
  const NODE_WIDTH = 176;
  const NODE_HEIGHT = 66;
  const DUMMY_HEIGHT = 14;
  const COLUMN_GAP = 64;
  const ROW_GAP = 22;
  const MARGIN = 24;
  const LOCAL_BAND_GAP = 56;
  // Wide and tall enough for an edge's rate label ("999.9k/s") between two local nodes.
  const LOCAL_COLUMN_GAP = 88;
  const LOCAL_ROW_GAP = 40;
  const SWEEPS = 12;
  const MIN_SCALE = 0.6;

  const KIND_ORDER = { source: 0, route: 1, processor: 2, destination: 3, local: 4 };

  /** Local nodes in the order of the edges between them (depth first from those without a local input). */
  function chainOrder(localNodes, edges) {
    const byLabel = (a, b) => String(a.label).localeCompare(String(b.label)) || String(a.id).localeCompare(String(b.id));
    const ids = new Set(localNodes.map((node) => node.id));
    const next = new Map(localNodes.map((node) => [node.id, []]));
    const hasInput = new Set();
    const byId = new Map(localNodes.map((node) => [node.id, node]));
    for (const edge of edges) {
      if (!ids.has(edge.from) || !ids.has(edge.to) || edge.from === edge.to) continue;
      next.get(edge.from).push(byId.get(edge.to));
      hasInput.add(edge.to);
    }
    const ordered = [];
    const seen = new Set();
    const visit = (node) => {
      if (seen.has(node.id)) return;
      seen.add(node.id);
      ordered.push(node);
      for (const following of next.get(node.id).slice().sort(byLabel)) visit(following);
    };
    const sorted = localNodes.slice().sort(byLabel);
    for (const node of sorted.filter((candidate) => !hasInput.has(candidate.id))) visit(node);
    for (const node of sorted) visit(node); // what is left sits on a cycle
    return ordered;
  }

  function layoutTopology(topology) {
    const allNodes = (topology && topology.nodes) || [];
    const allEdges = ((topology && topology.edges) || []).filter((edge) => edge.from !== edge.to);
    const known = new Map(allNodes.map((node) => [node.id, node]));
    const mainNodes = allNodes.filter((node) => node.kind !== 'local');
    const localNodes = allNodes.filter((node) => node.kind === 'local');
    const isMain = (id) => known.has(id) && known.get(id).kind !== 'local';
    const mainEdges = allEdges.filter((edge) => isMain(edge.from) && isMain(edge.to));

    // Stable initial order: by kind, then label, then id.
    const sorted = mainNodes.slice().sort((a, b) =>
      (KIND_ORDER[a.kind] ?? 9) - (KIND_ORDER[b.kind] ?? 9) ||
      String(a.label).localeCompare(String(b.label)) || String(a.id).localeCompare(String(b.id)));

    const outgoing = new Map(sorted.map((node) => [node.id, []]));
    const incoming = new Map(sorted.map((node) => [node.id, []]));
    const acyclic = withoutBackEdges(sorted, mainEdges);
    for (const edge of acyclic) {
      outgoing.get(edge.from).push(edge.to);
      incoming.get(edge.to).push(edge.from);
    }

    // 1. Longest-path layering (topological order via Kahn).
    const layerOf = new Map();
    const indegree = new Map(sorted.map((node) => [node.id, incoming.get(node.id).length]));
    const queue = sorted.filter((node) => indegree.get(node.id) === 0).map((node) => node.id);
    for (const id of queue) layerOf.set(id, 0);
    while (queue.length) {
      const id = queue.shift();
      for (const next of outgoing.get(id)) {
        layerOf.set(next, Math.max(layerOf.get(next) ?? 0, layerOf.get(id) + 1));
        indegree.set(next, indegree.get(next) - 1);
        if (indegree.get(next) === 0) queue.push(next);
      }
    }
    // A node without edges sits in the column of its kind.
    for (const node of sorted) {
      if (!incoming.get(node.id).length && !outgoing.get(node.id).length) {
        layerOf.set(node.id, node.kind === 'route' ? 1 : node.kind === 'processor' ? 2 : 0);
      }
    }
    let lastLayer = 0;
    for (const value of layerOf.values()) lastLayer = Math.max(lastLayer, value);
    if (sorted.some((node) => node.kind === 'destination')) {
      lastLayer = Math.max(lastLayer, 1);
      for (const node of sorted) {
        if (node.kind === 'destination' && !outgoing.get(node.id).length) layerOf.set(node.id, lastLayer);
      }
    }

    // 2. Dummy nodes along long edges.
    const layers = Array.from({ length: lastLayer + 1 }, () => []);
    const vertices = new Map();
    for (const node of sorted) {
      const vertex = { id: node.id, node, dummy: false, layer: layerOf.get(node.id), up: [], down: [] };
      vertices.set(node.id, vertex);
      layers[vertex.layer].push(vertex);
    }
    const routes = [];
    let dummyCount = 0;
    for (const edge of mainEdges) {
      let from = vertices.get(edge.from);
      let to = vertices.get(edge.to);
      let reversed = false;
      if (from.layer > to.layer) { [from, to] = [to, from]; reversed = true; }
      const chain = [from];
      for (let layer = from.layer + 1; layer < to.layer; layer += 1) {
        const dummy = { id: `__dummy${dummyCount += 1}`, dummy: true, layer, up: [], down: [] };
        vertices.set(dummy.id, dummy);
        layers[layer].push(dummy);
        chain.push(dummy);
      }
      chain.push(to);
      for (let i = 0; i + 1 < chain.length; i += 1) {
        if (chain[i].layer === chain[i + 1].layer) continue;
        chain[i].down.push(chain[i + 1]);
        chain[i + 1].up.push(chain[i]);
      }
      routes.push({ edge, chain: reversed ? chain.slice().reverse() : chain, reversed });
    }

    // 3. Barycenter ordering.
    const position = (vertex) => vertex.index;
    const reindex = () => layers.forEach((layer) => layer.forEach((vertex, index) => { vertex.index = index; }));
    reindex();
    let best = layers.map((layer) => layer.slice());
    let bestCrossings = crossingsOf(layers);
    for (let sweep = 0; sweep < SWEEPS && bestCrossings > 0; sweep += 1) {
      const down = sweep % 2 === 0;
      const range = down ? rangeOf(1, layers.length) : rangeOf(layers.length - 2, -1);
      for (const l of range) {
        const neighbours = (vertex) => (down ? vertex.up : vertex.down);
        const keyed = layers[l].map((vertex) => {
          const around = neighbours(vertex);
          const key = around.length ? around.reduce((sum, n) => sum + position(n), 0) / around.length : vertex.index;
          return { vertex, key };
        });
        keyed.sort((a, b) => a.key - b.key || a.vertex.index - b.vertex.index);
        layers[l] = keyed.map((entry) => entry.vertex);
        layers[l].forEach((vertex, index) => { vertex.index = index; });
      }
      const crossings = crossingsOf(layers);
      if (crossings < bestCrossings) {
        bestCrossings = crossings;
        best = layers.map((layer) => layer.slice());
      }
    }
    for (let l = 0; l < layers.length; l += 1) layers[l] = best[l];
    reindex();

    // 4. Coordinates: start from a top-aligned grid, then sweep right (align each node with its
    //    predecessors) and left (with its successors); the last sweep is rightwards, so chains from
    //    the sources run straight.
    const heightOf = (vertex) => (vertex.dummy ? DUMMY_HEIGHT : NODE_HEIGHT);
    const slot = NODE_HEIGHT + ROW_GAP;
    for (const layer of layers) {
      layer.forEach((vertex, index) => { vertex.y = index * slot + (NODE_HEIGHT - heightOf(vertex)) / 2; });
    }
    const centre = (vertex) => vertex.y + heightOf(vertex) / 2;
    const align = (layer, neighbours) => {
      const wanted = layer.map((vertex) => {
        const around = neighbours(vertex);
        if (!around.length) return vertex.y;
        return around.reduce((sum, n) => sum + centre(n), 0) / around.length - heightOf(vertex) / 2;
      });
      placeInOrder(layer, wanted, heightOf);
    };
    for (let round = 0; round < 4; round += 1) {
      for (let l = 1; l < layers.length; l += 1) align(layers[l], (vertex) => vertex.up);
      for (let l = layers.length - 2; l >= 0; l -= 1) align(layers[l], (vertex) => vertex.down);
    }
    for (let l = 1; l < layers.length; l += 1) align(layers[l], (vertex) => vertex.up);
    let minY = Infinity;
    let maxY = 0;
    for (const layer of layers) for (const vertex of layer) {
      minY = Math.min(minY, vertex.y);
      maxY = Math.max(maxY, vertex.y + heightOf(vertex));
    }
    if (!Number.isFinite(minY)) { minY = 0; maxY = 0; }

    const placed = [];
    layers.forEach((layer, l) => {
      for (const vertex of layer) {
        vertex.x = MARGIN + l * (NODE_WIDTH + COLUMN_GAP);
        vertex.y = vertex.y - minY + MARGIN;
        if (!vertex.dummy) {
          placed.push({ ...vertex.node, x: vertex.x, y: vertex.y, width: NODE_WIDTH, height: NODE_HEIGHT, layer: l });
        }
      }
    });
    const mainWidth = layers.length ? MARGIN * 2 + layers.length * NODE_WIDTH + (layers.length - 1) * COLUMN_GAP : 0;
    const mainHeight = placed.length ? maxY - minY + MARGIN * 2 : 0;

    // Local components: rows (wrapping) below the main graph, in the order of their own edges, so a
    // chain reads left to right and each edge's rate label sits in a gap, not on a node.
    const local = [];
    const bandTop = mainHeight ? mainHeight + LOCAL_BAND_GAP : MARGIN + 20;
    const perRow = Math.max(1, Math.floor((Math.max(mainWidth, 3 * (NODE_WIDTH + COLUMN_GAP)) - MARGIN) / (NODE_WIDTH + LOCAL_COLUMN_GAP)));
    chainOrder(localNodes, allEdges).forEach((node, index) => {
      local.push({
        ...node,
        x: MARGIN + (index % perRow) * (NODE_WIDTH + LOCAL_COLUMN_GAP),
        y: bandTop + Math.floor(index / perRow) * (NODE_HEIGHT + LOCAL_ROW_GAP),
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
        layer: -1,
      });
    });
    const all = placed.concat(local);
    const byId = new Map(all.map((node) => [node.id, node]));

    const edges = [];
    for (const route of routes) {
      const points = [];
      route.chain.forEach((vertex, index) => {
        const isFirst = index === 0;
        const isLast = index === route.chain.length - 1;
        const mid = vertex.y + heightOf(vertex) / 2;
        if (vertex.dummy) {
          points.push({ x: vertex.x, y: mid }, { x: vertex.x + NODE_WIDTH, y: mid });
        } else if (isFirst) {
          points.push({ x: vertex.x + NODE_WIDTH, y: mid });
        } else if (isLast) {
          points.push({ x: vertex.x, y: mid });
        }
      });
      edges.push({ ...route.edge, points });
    }
    for (const edge of allEdges) {
      if (isMain(edge.from) && isMain(edge.to)) continue;
      const from = byId.get(edge.from);
      const to = byId.get(edge.to);
      if (!from || !to) continue;
      edges.push({ ...edge, points: [{ x: from.x + NODE_WIDTH, y: from.y + NODE_HEIGHT / 2 }, { x: to.x, y: to.y + NODE_HEIGHT / 2 }] });
    }

    const width = Math.max(mainWidth, local.length ? MARGIN * 2 + Math.min(local.length, perRow) * (NODE_WIDTH + LOCAL_COLUMN_GAP) : 0);
    const height = local.length ? bandTop + Math.ceil(local.length / perRow) * (NODE_HEIGHT + LOCAL_ROW_GAP) + MARGIN : mainHeight;
    return {
      nodes: placed,
      local,
      edges,
      width,
      height,
      localBandTop: local.length ? bandTop - 28 : null,
      crossings: bestCrossings,
      layers: layers.map((layer) => layer.filter((vertex) => !vertex.dummy).map((vertex) => vertex.id)),
    };

    function layerHeight(layer) {
      return layer.reduce((sum, vertex) => sum + heightOf(vertex), 0) + Math.max(0, layer.length - 1) * ROW_GAP;
    }
  }

  function rangeOf(from, toExclusive) {
    const out = [];
    if (from <= toExclusive) for (let i = from; i < toExclusive; i += 1) out.push(i);
    else for (let i = from; i > toExclusive; i -= 1) out.push(i);
    return out;
  }

  /// Drops the edges that close a cycle (found by depth-first search in the given node order).
  function withoutBackEdges(nodes, edges) {
    const next = new Map(nodes.map((node) => [node.id, []]));
    edges.forEach((edge, index) => next.get(edge.from).push({ to: edge.to, index }));
    const state = new Map();
    const back = new Set();
    const visit = (start) => {
      const stack = [{ id: start, i: 0 }];
      state.set(start, 1);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const list = next.get(top.id);
        if (top.i >= list.length) { state.set(top.id, 2); stack.pop(); continue; }
        const { to, index } = list[top.i];
        top.i += 1;
        if (state.get(to) === 1) back.add(index);
        else if (!state.get(to)) { state.set(to, 1); stack.push({ id: to, i: 0 }); }
      }
    };
    for (const node of nodes) if (!state.get(node.id)) visit(node.id);
    return edges.filter((_, index) => !back.has(index));
  }

  /// Crossings between adjacent layers: pairs of edges whose ends are in opposite orders.
  function crossingsOf(layers) {
    let total = 0;
    for (let l = 0; l + 1 < layers.length; l += 1) {
      const pairs = [];
      layers[l].forEach((vertex, upper) => {
        for (const below of vertex.down) if (below.layer === l + 1) pairs.push([upper, below.index]);
      });
      pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      for (let i = 0; i < pairs.length; i += 1) {
        for (let j = i + 1; j < pairs.length; j += 1) {
          if (pairs[i][0] < pairs[j][0] && pairs[i][1] > pairs[j][1]) total += 1;
        }
      }
    }
    return total;
  }

  /// Places a layer's vertices as close as possible (least squares) to `wanted`, keeping their order
  /// and at least ROW_GAP between neighbours: isotonic regression by pool-adjacent-violators on the
  /// positions relative to each vertex's minimum offset from the first.
  function placeInOrder(layer, wanted, heightOf) {
    if (!layer.length) return;
    const offsets = [];
    let offset = 0;
    layer.forEach((vertex, i) => {
      offsets.push(offset);
      offset += heightOf(vertex) + ROW_GAP;
      if (i === layer.length - 1) offsets.length = layer.length;
    });
    const blocks = [];
    wanted.forEach((y, i) => {
      blocks.push({ sum: y - offsets[i], count: 1 });
      while (blocks.length > 1) {
        const last = blocks[blocks.length - 1];
        const previous = blocks[blocks.length - 2];
        if (previous.sum / previous.count <= last.sum / last.count) break;
        previous.sum += last.sum;
        previous.count += last.count;
        blocks.pop();
      }
    });
    let i = 0;
    for (const block of blocks) {
      const value = block.sum / block.count;
      for (let k = 0; k < block.count; k += 1, i += 1) layer[i].y = value + offsets[i];
    }
  }

  function formatRate(rate) {
    if (rate === null || rate === undefined || Number.isNaN(rate)) return '–';
    const value = Number(rate);
    if (value === 0) return '0/s';
    if (value < 0.1) return '<0.1/s';
    if (value < 10) return `${value.toFixed(1)}/s`;
    if (value < 1000) return `${Math.round(value)}/s`;
    if (value < 1e6) return `${(value / 1000).toFixed(value < 1e4 ? 1 : 0)}k/s`;
    return `${(value / 1e6).toFixed(1)}M/s`;
  }

  // ---------------------------------------------------------------- drawing

  const SVG = 'http://www.w3.org/2000/svg';

  function el(name, attrs, children) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(key, String(value));
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }

  function text(attrs, content) {
    const node = el('text', attrs);
    node.textContent = content;
    return node;
  }

  function truncate(value, max) {
    const s = String(value ?? '');
    return s.length > max ? `${s.slice(0, max - 1)}…` : s;
  }

  function pathOf(points) {
    if (points.length < 2) return '';
    let d = `M${points[0].x},${points[0].y}`;
    for (let i = 1; i < points.length; i += 1) {
      const p = points[i - 1];
      const q = points[i];
      if (Math.abs(p.y - q.y) < 0.5) { d += ` L${q.x},${q.y}`; continue; }
      const dx = Math.max(24, (q.x - p.x) / 2);
      d += ` C${p.x + dx},${p.y} ${q.x - dx},${q.y} ${q.x},${q.y}`;
    }
    return d;
  }

  /// What a node box says: a pipeline step (`pipeline #2: batch`) reads as `2. batch` over its pipeline.
  function title_of(node) {
    const step = node.kind === 'processor' ? /^(.*) #(\d+): (.*)$/.exec(String(node.label)) : null;
    if (step) return { label: `${step[2]}. ${step[3]}`, subtitle: `step · ${step[1]}` };
    return { label: String(node.label), subtitle: `${KIND_NAMES[node.kind] || node.kind} · ${node.type}` };
  }

  const KIND_NAMES = { source: 'source', processor: 'step', route: 'route', destination: 'destination', local: 'local' };

  function renderTopology(container, topology) {
    const layout = layoutTopology(topology);
    const svg = el('svg', {
      width: layout.width,
      height: layout.height,
      viewBox: `0 0 ${layout.width} ${layout.height}`,
      role: 'group',
      'aria-label': `Pipeline topology: ${layout.nodes.length + layout.local.length} components, ${layout.edges.length} connections`,
      'data-testid': 'topology-svg',
    });
    svg.appendChild(el('defs', {}, [
      el('marker', { id: 'topo-arrow', viewBox: '0 0 8 8', refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, [
        el('path', { d: 'M0,0 L8,4 L0,8 z', class: 'topo-arrow' }),
      ]),
    ]));
    if (layout.localBandTop !== null) {
      svg.appendChild(el('g', { class: 'topo-band' }, [
        el('line', { x1: MARGIN, x2: layout.width - MARGIN, y1: layout.localBandTop - 10, y2: layout.localBandTop - 10 }),
        text({ x: MARGIN, y: layout.localBandTop + 8 }, 'Local components (not managed by linkmesh)'),
      ]));
    }
    const edgeLayer = el('g', { class: 'topo-edges' });
    const labelLayer = el('g', { class: 'topo-labels' });
    for (const edge of layout.edges) {
      const active = typeof edge.rate === 'number' && edge.rate > 0;
      edgeLayer.appendChild(el('path', {
        d: pathOf(edge.points),
        class: `topo-edge${active ? ' active' : ''}`,
        'marker-end': 'url(#topo-arrow)',
        'data-from': edge.from,
        'data-to': edge.to,
      }));
      if (typeof edge.rate === 'number') {
        const p = edge.points[0];
        const q = edge.points[1] || p;
        const mx = (p.x + q.x) / 2;
        const my = (p.y + q.y) / 2;
        const label = formatRate(edge.rate);
        const w = 10 + label.length * 6.4;
        labelLayer.appendChild(el('g', { class: 'topo-edge-label', 'data-testid': 'edge-rate' }, [
          el('rect', { x: mx - w / 2, y: my - 9, width: w, height: 18, rx: 9 }),
          text({ x: mx, y: my + 4, 'text-anchor': 'middle' }, label),
        ]));
      }
    }
    svg.appendChild(edgeLayer);
    // A node without metrics of its own (a route) shows what flows along its edges.
    const edgeSum = (ids, pick) => {
      const rates = layout.edges.filter((edge) => pick(edge) === ids && typeof edge.rate === 'number').map((edge) => edge.rate);
      return rates.length ? rates.reduce((a, b) => a + b, 0) : null;
    };
    const nodeLayer = el('g', { class: 'topo-nodes' });
    for (const drawn of layout.nodes.concat(layout.local)) {
      const node = { ...drawn };
      if (node.in_rate === null || node.in_rate === undefined) node.in_rate = edgeSum(node.id, (edge) => edge.to);
      if (node.out_rate === null || node.out_rate === undefined) node.out_rate = edgeSum(node.id, (edge) => edge.from);
      const errors = typeof node.error_rate === 'number' && node.error_rate > 0;
      const title = el('title');
      title.textContent = `${KIND_NAMES[node.kind] || node.kind} ${node.label} (${node.type})\n` +
        `in ${formatRate(node.in_rate)} · out ${formatRate(node.out_rate)} · errors ${formatRate(node.error_rate)}`;
      // Focusable, one Tab stop per node, named by what its box and tooltip show.
      const group = el('g', {
        class: `topo-node kind-${node.kind}${errors ? ' has-errors' : ''}`,
        transform: `translate(${node.x},${node.y})`,
        'data-node-id': node.id,
        'data-kind': node.kind,
        tabindex: 0,
        role: 'img',
        'aria-label': `${KIND_NAMES[node.kind] || node.kind} ${node.label} (${node.type}): ` +
          `in ${formatRate(node.in_rate)}, out ${formatRate(node.out_rate)}, errors ${formatRate(node.error_rate)}`,
      }, [
        title,
        el('rect', { class: 'body', width: node.width, height: node.height, rx: 6 }),
        el('rect', { class: 'stripe', width: 4, height: node.height - 2, x: 1, y: 1, rx: 1.5 }),
        text({ class: 'label', x: 14, y: 20 }, truncate(title_of(node).label, 22)),
        text({ class: 'type', x: 14, y: 37 }, truncate(title_of(node).subtitle, 24)),
        text({ class: 'rates', x: 14, y: 55, 'data-testid': 'node-rates' },
          `in ${formatRate(node.in_rate)}  out ${formatRate(node.out_rate)}`),
      ]);
      if (errors) {
        group.appendChild(text({ class: 'errors', x: node.width - 10, y: 55, 'text-anchor': 'end' }, `err ${formatRate(node.error_rate)}`));
      }
      nodeLayer.appendChild(group);
    }
    svg.appendChild(nodeLayer);
    svg.appendChild(labelLayer);
    // The canvas is redrawn every few seconds: a keyboard user's focus stays on the node it was on.
    const focused = container.contains(document.activeElement) ? document.activeElement.getAttribute('data-node-id') : null;
    container.replaceChildren(svg);
    if (focused) {
      const again = Array.from(svg.querySelectorAll('.topo-node')).find((group) => group.getAttribute('data-node-id') === focused);
      if (again) again.focus({ preventScroll: true });
    }
    // Shrink to fit the container down to MIN_SCALE; below that, keep the size and let it scroll.
    const available = container.clientWidth - 2;
    if (available > 0 && layout.width > available && available / layout.width >= MIN_SCALE) {
      const scale = available / layout.width;
      svg.setAttribute('width', String(Math.floor(available)));
      svg.setAttribute('height', String(Math.ceil(layout.height * scale)));
    }
    return layout;
  }

  const api = { layoutTopology, renderTopology, formatRate, NODE_WIDTH, NODE_HEIGHT };
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
  else root.LinkmeshTopology = api;
})(typeof window !== 'undefined' ? window : globalThis);
