import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from '../../src/lib/metrics.js';

test('Registry.render() writes counters, gauges and histograms in the Prometheus text format', () => {
  const r = new Registry();
  const c = r.counter('x_requests_total', 'Requests');
  c.inc({ outcome: 'ok' });
  c.inc({ outcome: 'ok' });
  c.inc({ outcome: 'bad "quote"' });
  r.gauge('x_head', 'Head', (g) => g.set(42));
  r.collectedHistogram('x_fsync_seconds', 'Fsync', () => ({ bounds: [0.001, 0.01], counts: [3, 5], count: 6, sum: 0.05 }));
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
