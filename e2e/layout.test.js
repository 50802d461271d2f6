// Unit tests of the topology layout (assets/topology.js) under node's own test runner.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { layoutTopology, formatRate } = require('../assets/topology.js');

function node(id, kind, extra) {
  return { id, kind, type: kind === 'route' ? 'route' : `${kind}_type`, label: id, in_rate: null, out_rate: null, error_rate: null, ...extra };
}

function assertNoOverlap(layout) {
  const all = layout.nodes.concat(layout.local);
  for (let i = 0; i < all.length; i += 1) {
    for (let j = i + 1; j < all.length; j += 1) {
      const a = all[i];
      const b = all[j];
      const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y;
      assert.ok(apart, `${a.id} overlaps ${b.id}`);
    }
  }
  for (const n of all) {
    assert.ok(n.x >= 0 && n.y >= 0 && n.x + n.width <= layout.width && n.y + n.height <= layout.height, `${n.id} inside the canvas`);
  }
}

test('a typical pipeline flows left to right in kind order', () => {
  const topology = {
    nodes: [
      node('destination:d1', 'destination'), node('source:s1', 'source'), node('route:r1', 'route'),
      node('step:r1:0', 'processor'), node('step:r1:1', 'processor'),
    ],
    edges: [
      { from: 'source:s1', to: 'route:r1', rate: 10 },
      { from: 'route:r1', to: 'step:r1:0', rate: 10 },
      { from: 'step:r1:0', to: 'step:r1:1', rate: 9 },
      { from: 'step:r1:1', to: 'destination:d1', rate: 9 },
    ],
  };
  const layout = layoutTopology(topology);
  const x = (id) => layout.nodes.find((n) => n.id === id).x;
  assert.ok(x('source:s1') < x('route:r1'));
  assert.ok(x('route:r1') < x('step:r1:0'));
  assert.ok(x('step:r1:0') < x('step:r1:1'));
  assert.ok(x('step:r1:1') < x('destination:d1'));
  assert.equal(layout.crossings, 0);
  assertNoOverlap(layout);
});

test('destinations line up in the last column even when reached by short routes', () => {
  const topology = {
    nodes: [
      node('source:a', 'source'), node('route:fast', 'route'), node('route:slow', 'route'),
      node('step:slow:0', 'processor'), node('step:slow:1', 'processor'),
      node('destination:x', 'destination'), node('destination:y', 'destination'),
    ],
    edges: [
      { from: 'source:a', to: 'route:fast' }, { from: 'source:a', to: 'route:slow' },
      { from: 'route:fast', to: 'destination:x' },
      { from: 'route:slow', to: 'step:slow:0' }, { from: 'step:slow:0', to: 'step:slow:1' },
      { from: 'step:slow:1', to: 'destination:y' },
    ],
  };
  const layout = layoutTopology(topology);
  const x = (id) => layout.nodes.find((n) => n.id === id).x;
  assert.equal(x('destination:x'), x('destination:y'));
  // The long edge route:fast → destination:x passes through dummy points, not through nodes.
  const long = layout.edges.find((e) => e.from === 'route:fast');
  assert.ok(long.points.length > 2);
  assertNoOverlap(layout);
});

test('barycenter ordering removes avoidable crossings', () => {
  // Sources listed so that the initial (alphabetical) order crosses: a→r2, b→r1.
  const nodes = [node('source:a', 'source'), node('source:b', 'source'), node('source:c', 'source'),
    node('route:r1', 'route'), node('route:r2', 'route'), node('route:r3', 'route'),
    node('destination:d1', 'destination'), node('destination:d2', 'destination'), node('destination:d3', 'destination')];
  const edges = [
    { from: 'source:a', to: 'route:r3' }, { from: 'source:b', to: 'route:r1' }, { from: 'source:c', to: 'route:r2' },
    { from: 'route:r1', to: 'destination:d3' }, { from: 'route:r2', to: 'destination:d1' }, { from: 'route:r3', to: 'destination:d2' },
  ];
  const layout = layoutTopology({ nodes, edges });
  assert.equal(layout.crossings, 0);
  assertNoOverlap(layout);
});

test('a larger fleet-sized graph stays overlap free with few crossings', () => {
  const nodes = [];
  const edges = [];
  for (let s = 0; s < 6; s += 1) nodes.push(node(`source:s${s}`, 'source'));
  for (let d = 0; d < 5; d += 1) nodes.push(node(`destination:d${d}`, 'destination'));
  for (let r = 0; r < 5; r += 1) {
    nodes.push(node(`route:r${r}`, 'route'));
    for (let s = 0; s < 6; s += 1) edges.push({ from: `source:s${s}`, to: `route:r${r}` });
    let previous = `route:r${r}`;
    for (let k = 0; k < r % 3; k += 1) {
      const step = `step:r${r}:${k}`;
      nodes.push(node(step, 'processor'));
      edges.push({ from: previous, to: step });
      previous = step;
    }
    edges.push({ from: previous, to: `destination:d${(r * 2) % 5}` });
  }
  const layout = layoutTopology({ nodes, edges });
  assertNoOverlap(layout);
  assert.equal(layout.nodes.length, nodes.length);
});

test('local components sit in their own band below the pipeline', () => {
  const layout = layoutTopology({
    nodes: [node('source:s', 'source'), node('destination:d', 'destination'), node('local:x', 'local'), node('local:y', 'local')],
    edges: [{ from: 'source:s', to: 'destination:d', rate: 1 }],
  });
  assert.equal(layout.local.length, 2);
  const bottom = Math.max(...layout.nodes.map((n) => n.y + n.height));
  for (const local of layout.local) assert.ok(local.y > bottom, 'local below main graph');
  assertNoOverlap(layout);
});

test('cycles and self loops do not hang the layout', () => {
  const layout = layoutTopology({
    nodes: [node('a', 'processor'), node('b', 'processor'), node('c', 'processor')],
    edges: [{ from: 'a', to: 'b' }, { from: 'b', to: 'c' }, { from: 'c', to: 'a' }, { from: 'b', to: 'b' }],
  });
  assert.equal(layout.nodes.length, 3);
  assertNoOverlap(layout);
});

test('an empty topology lays out to nothing', () => {
  const layout = layoutTopology({ nodes: [], edges: [] });
  assert.equal(layout.nodes.length, 0);
  assert.equal(layout.edges.length, 0);
});

test('rates read as people say them', () => {
  assert.equal(formatRate(null), '–');
  assert.equal(formatRate(0), '0/s');
  assert.equal(formatRate(0.05), '<0.1/s');
  assert.equal(formatRate(2.345), '2.3/s');
  assert.equal(formatRate(123.4), '123/s');
  assert.equal(formatRate(12345), '12k/s');
  assert.equal(formatRate(1500), '1.5k/s');
});
