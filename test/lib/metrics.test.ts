import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, Registry } from '../../src/lib/metrics.js';
import { parsePrometheusText, sampleValue } from '../helpers/prom-text.js';

test('Registry.render() writes counters, gauges and histograms in the Prometheus text format', () => {
  const r = new Registry();
  const c = r.counter('x_requests_total', 'Requests');
  c.inc({ outcome: 'ok' });
  c.inc({ outcome: 'ok' });
  c.inc({ outcome: 'bad "quote"' });
  r.gauge('x_head', 'Head', (g) => g.set(42));
  r.histogram('x_fsync_seconds', 'Fsync', () => ({ bounds: [0.001, 0.01], counts: [3, 5], count: 6, sum: 0.05 }));
  assert.equal(
    r.render(),
    [
      '# HELP x_requests_total Requests',
      '# TYPE x_requests_total counter',
      'x_requests_total{outcome="ok"} 2',
      'x_requests_total{outcome="bad \\"quote\\""} 1',
      '# HELP x_head Head',
      '# TYPE x_head gauge',
      'x_head 42',
      '# HELP x_fsync_seconds Fsync',
      '# TYPE x_fsync_seconds histogram',
      'x_fsync_seconds_bucket{le="0.001"} 3',
      'x_fsync_seconds_bucket{le="0.01"} 5',
      'x_fsync_seconds_bucket{le="+Inf"} 6',
      'x_fsync_seconds_sum 0.05',
      'x_fsync_seconds_count 6',
      '',
    ].join('\n'),
  );
});

test('Registry refuses names that break Prometheus conventions: a counter without _total, anything else with it, a repeat', () => {
  const r = new Registry();
  assert.throws(() => r.counter('x_requests', 'Requests'), /'x_requests' is a counter: only a counter's name ends in _total/);
  assert.throws(() => r.gauge('x_appends_total', 'Appends'), /'x_appends_total' is a gauge/);
  assert.throws(() => r.histogram('x_total', 'H', () => ({ bounds: [], counts: [], count: 0, sum: 0 })), /is a histogram/);
  r.gauge('x_head', 'Head');
  assert.throws(() => r.gauge('x_head', 'Again'), /registered twice/);
  assert.throws(() => r.gauge('x-head', 'Dash'), /not a Prometheus name/);
});

test('Registry renders what a strict text-format parser accepts: collected counters, one-hot gauges, histograms', () => {
  const r = new Registry();
  let total = 5;
  r.counter('x_appends_total', 'Appends', (c) => c.set(total));
  r.gauge('x_state', 'State', (g) => ['ok', 'bad'].forEach((s) => g.set(s === 'ok' ? 1 : 0, { state: s })));
  const h = new Histogram([0.5, 1]);
  for (const v of [0.1, 0.7, 3]) h.observe(v);
  r.histogram('x_latency_seconds', 'Latency', () => h.snapshot());
  total = 6;
  const parsed = parsePrometheusText(r.render());
  assert.equal(parsed.get('x_appends_total')?.type, 'counter');
  assert.equal(sampleValue(parsed, 'x_appends_total'), 6);
  assert.equal(sampleValue(parsed, 'x_state', { state: 'ok' }), 1);
  assert.equal(sampleValue(parsed, 'x_latency_seconds_bucket', { le: '0.5' }), 1);
  assert.equal(sampleValue(parsed, 'x_latency_seconds_bucket', { le: '+Inf' }), 3);
  assert.equal(sampleValue(parsed, 'x_latency_seconds_sum'), 3.8);
});

test('parsePrometheusText() rejects what a scraper would: a counter typed gauge, a gauge named _total, split families, a broken histogram', () => {
  assert.throws(() => parsePrometheusText('# HELP a_total A\n# TYPE a_total gauge\na_total 1\n'), /ends in _total but is a gauge/);
  assert.throws(() => parsePrometheusText('# HELP a A\n# TYPE a counter\na 1\n'), /does not end in _total/);
  assert.throws(() => parsePrometheusText('# HELP a A\n# TYPE a gauge\na 1\n# HELP b B\n# TYPE b gauge\nb 1\na{x="1"} 2\n'), /not grouped/);
  assert.throws(
    () => parsePrometheusText('# HELP h H\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'),
    /not increasing and cumulative/,
  );
  assert.throws(() => parsePrometheusText('# TYPE a gauge\na 1\n'), /no HELP/);
  assert.throws(() => parsePrometheusText('# HELP a A\n# TYPE a gauge\na{b="x} 1\n'), /Unterminated|Not a sample/);
});
