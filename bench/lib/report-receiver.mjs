/**
 * BENCHMARKS.md, figures 1 and 2 and what bounds the receiver: the throughput and latency tables, the
 * durability comparison, the diagnosis (disk, tmpfs, profile) and the receiver's part of the closing note.
 */
import { fmt, fmtRange, median, ms, pct, ratio, summarize, table } from './stats.mjs';
import { pairedRatios, valid } from '../sections/throughput.mjs';

const RECEIVER_NAMES = {
  plain: 'plain node:http (ceiling)',
  eventsubd: 'eventsubd, group commit (as shipped)',
  'eventsubd-each': 'eventsubd, one commit per notification',
  twurple: 'Twurple EventSubHttpListener',
  'eventsubd-redis': 'eventsubd, Redis journal (appendfsync always)',
  'eventsubd on tmpfs': 'eventsubd, state on tmpfs (no disk)',
};

function receiverRows(runs, connections, base) {
  const targets = [...new Set(runs.map((x) => x.target))].filter((target) => runs.some((x) => x.target === target && x.connections === connections));
  return targets.map((target) => {
    const ok = valid(runs, target, connections);
    const all = runs.filter((x) => x.target === target && x.connections === connections);
    const rps = summarize(ok.map((x) => x.rps));
    const vs = target === 'plain' ? { median: 1 } : base ? pairedRatios(runs, target, connections) : undefined;
    return [
      RECEIVER_NAMES[target] ?? target,
      fmtRange(rps),
      vs ? (target === 'plain' ? '1' : `${ratio(vs.median)}`) : '—',
      ms(median(ok.map((x) => x.p50)), 2),
      ms(median(ok.map((x) => x.p99)), 2),
      `${pct(median(ok.map((x) => x.mainCpu)))} + ${pct(median(ok.map((x) => x.otherCpu)))}`,
      pct(median(ok.map((x) => x.wrkCpu))),
      `${ok.length}/${all.length}`,
    ];
  });
}

export function throughputSection(r) {
  const t = r.sections.throughput;
  if (!t) return '';
  const o = r.options;
  const out = [
    '## 1. Receiver throughput and latency',
    '',
    `Each run starts the receiver fresh in its own process on 127.0.0.1, warms it up for ${o.warmSeconds} s, then wrk sends signed ` +
      `\`stream.online\` notifications for ${o.seconds} s over 32 or 64 keep-alive connections. The notifications come from a corpus ` +
      'signed just before each round (`bench/lib/corpus.mjs`): complete requests as Twitch sends them, each with a unique message id, a ' +
      'unique event id and a fresh timestamp; wrk (`bench/wrk/cycle.lua`) cycles through it without ever resending one. The corpus ' +
      'files live on tmpfs (/dev/shm) when there is one, so that their writeback does not compete with the journal\'s fdatasyncs. Rounds alternate ' +
      'the order of the receivers and of the two concurrencies; the tables give the median of the valid runs and, for req/s, the ' +
      'min–max; "× plain" is the median of the per-round ratios to the plain server at the same concurrency.',
    '',
    'A run is **void** (left out, and counted in the last column) unless wrk saw no socket error and no status ≥ 400, no request was ' +
      'resent, the receiver rejected nothing (eventsubd\'s /metrics outcomes other than `notification` stay 0), and the receiver ' +
      'accepted at least every request wrk completed and at most every request it sent: journaled for eventsubd (journal appends), ' +
      'a handler call for Twurple (which answers 202 before it looks at a message, even a stale or duplicate one), an answer for the ' +
      'plain server. "Receiver CPU" is its JavaScript thread + its other threads (libuv\'s pool, which runs the journal\'s write and ' +
      'fdatasync; V8\'s helpers), as a share of one core, from /proc.',
    '',
    'The receivers and the exact commands (PORT is a free port; CORPUS the round\'s corpus):',
    '',
    '```sh',
    'node bench/servers/plain.mjs PORT                  # node:http: read the body, answer 204',
    '# eventsubd as shipped, fresh state directory, against an in-process emulator for its token:',
    'EVENTSUB_CALLBACK_URL=https://events.example.com/event/stream.online.1337 EVENTSUB_SECRET=… EVENTSUBD_LISTEN=127.0.0.1:PORT \\',
    '  EVENTSUBD_STATE_DIR=$(mktemp -d) EVENTSUBD_JOURNAL_FSYNC=group TWITCH_CLIENT_ID=… TWITCH_CLIENT_SECRET=… \\',
    '  TWITCH_AUTH_URL=… TWITCH_API_URL=… EVENTSUBD_LOG_LEVEL=warn node dist/main.js run   # …FSYNC=each for figure 2',
    'node bench/servers/twurple.mjs PORT SECRET         # EventSubHttpListener, managed: false, onStreamOnline(\'1337\')',
    '# eventsubd with its journal in Redis: the same, plus a redis-server started by the bench on a free loopback port in a',
    '# temporary dir (redis-server --appendonly yes --appendfsync always --save \'\'), a key prefix per run:',
    '#   EVENTSUBD_REDIS_URL=redis://127.0.0.1:RPORT EVENTSUBD_REDIS_PREFIX=bench-PORT-TIME EVENTSUBD_REDIS_DURABILITY=fsync',
    `${t.runs[0]?.command ?? 'wrk …'}`,
    '```',
    '',
  ];
  if (t.redis?.missing) out.push(`**No Redis journal figure in this run**: ${t.redis.missing}.`, '');
  else if (t.redis?.version) out.push(`Redis: ${t.redis.version}.`, '');
  for (const c of o.connections) {
    out.push(`### ${c} connections`, '');
    out.push(table(['receiver', 'req/s', '× plain', 'p50', 'p99', 'receiver CPU', 'wrk CPU', 'valid runs'], receiverRows(t.runs, c, true)), '');
  }
  const voids = t.runs.filter((x) => x.void);
  if (voids.length) out.push(`Void runs: ${voids.map((x) => `${x.target} c=${x.connections} round ${x.round}: ${x.void}`).join('; ')}.`, '');
  const paced = t.paced;
  const ok = paced.runs.filter((x) => !x.void);
  out.push(
    `### eventsubd at half of its maximum rate`,
    '',
    `Its maximum is the higher of its two medians above (${fmt(paced.maxRate)} req/s); half is ${fmt(paced.rate)} req/s. wrk sends at ` +
      `that constant rate over up to ${paced.connections} connections (\`bench/wrk/cycle-paced.lua\`: each answered connection takes ` +
      'the next free slot of a fixed schedule, as wrk2 does), warm-up included. A request whose slot comes while every connection ' +
      'is busy waits, and that wait is not counted: with this many connections it only happens if answers take longer than ' +
      `${ms((paced.connections * 1000) / paced.rate, 0)}.`,
    '',
    table(
      ['target rate', 'achieved req/s', 'p50', 'p99', 'valid runs'],
      [[`${fmt(paced.rate)} req/s`, fmtRange(summarize(ok.map((x) => x.rps))), ms(median(ok.map((x) => x.p50)), 2), ms(median(ok.map((x) => x.p99)), 2), `${ok.length}/${paced.runs.length}`]],
    ),
    '',
    `Command: \`${paced.runs[0]?.command ?? ''}\` (the last two arguments: the rate in req/s, requests read).`,
    '',
  );
  return out.join('\n');
}

export function durabilitySection(r) {
  const t = r.sections.throughput;
  if (!t) return '';
  const rows = [];
  for (const c of r.options.connections) {
    const g = valid(t.runs, 'eventsubd', c);
    const e = valid(t.runs, 'eventsubd-each', c);
    if (e.length === 0) continue;
    const paired = pairedRatios(t.runs, 'eventsubd-each', c, 'eventsubd');
    rows.push([
      `${c} connections`,
      `${fmt(median(g.map((x) => x.rps)))} req/s, p99 ${ms(median(g.map((x) => x.p99)), 1)}, ${fmt(median(g.map((x) => x.perFsync)), 1)} per commit`,
      `${fmt(median(e.map((x) => x.rps)))} req/s, p99 ${ms(median(e.map((x) => x.p99)), 1)}, ${fmt(median(e.map((x) => x.perFsync)), 1)} per commit`,
      `${ratio(paired.median)} (${ratio(paired.min)}–${ratio(paired.max)})`,
      `${ratio(pairedRatios(t.runs, 'eventsubd-each', c).median)}`,
    ]);
  }
  return [
    '## 2. Durability cost: one commit per notification vs group commit',
    '',
    'From the runs of figure 1 (one commit per notification is measured at 32 connections only). A commit is one write to the active segment, opened with O_DSYNC: it returns once the data is on disk, as a write and an fdatasync would. ' +
      '`EVENTSUBD_JOURNAL_FSYNC=each` makes the journal commit every notification with its own durable write, one commit ' +
      'at a time; the default, `group`, lets every append that arrives while a commit is in flight share the next one. Both ' +
      'answer only after the commit that covers the notification, so they are equally durable.',
    '',
    table(['', 'group commit (default)', 'one commit each', 'each / group', 'each / plain'], rows),
    '',
  ].join('\n');
}

export function boundsSection(r) {
  const t = r.sections.throughput;
  if (!t) return '';
  const [c1, c2] = r.options.connections;
  const out = ['## What bounds the receiver', ''];
  const fs = t.fsync;
  const g1 = valid(t.runs, 'eventsubd', c1);
  const g2 = valid(t.runs, 'eventsubd', c2);
  const plain1 = valid(t.runs, 'plain', c1);
  const cycle = (runs) => median(runs.map((x) => (1000 / x.rps) * x.perFsync));
  const tmpfsRows = r.options.connections.map((c) => {
    const runs = t.tmpfs.filter((x) => x.connections === c && !x.void);
    const rps = median(runs.map((x) => x.rps));
    const plain = median(valid(t.runs, 'plain', c).map((x) => x.rps));
    const disk = median(valid(t.runs, 'eventsubd', c).map((x) => x.rps));
    return [
      `${c} connections`,
      `${fmt(rps)} req/s`,
      ratio(rps / plain),
      ratio(rps / disk),
      `${pct(median(runs.map((x) => x.mainCpu)))} + ${pct(median(runs.map((x) => x.otherCpu)))}`,
      ms(median(runs.map((x) => x.p99)), 2),
    ];
  });
  const commitLabel = (c) => `${c.mode === 'append' ? 'appended to a growing file' : 'over a pre-zeroed file'}, ${c.overlap === 1 ? 'one at a time' : 'two overlapping'}`;
  out.push(
    '**The disk.** ' +
      `An idle write + fdatasync of 10 KB on the state directory's file system takes ${ms(fs.p50, 2)} (p50), ${ms(fs.p99, 2)} (p99) ` +
      `over ${fs.n} tries. Under load, eventsubd commits ${fmt(median(g1.map((x) => x.perFsync)), 1)} notifications per commit at ` +
      `${c1} connections and ${fmt(median(g2.map((x) => x.perFsync)), 1)} at ${c2}, one commit every ${ms(cycle(g1), 2)} and ` +
      `${ms(cycle(g2), 2)}. It runs one commit at a time, each taking everything that arrived during the previous one, so the ` +
      'rate is at most (connections waiting) / (commit time); overlapping two commits was measured to halve the batches and ' +
      'cost more CPU per notification than it saved in waiting (`PIPELINE_DEPTH` in src/journal/writer.ts).',
    '',
  );
  if (t.commits?.length) {
    out.push(
      'What the file system allows, idle (5 KB per commit, median of the rounds): appending changes the file\'s size, which on ' +
        'ext4 makes each fdatasync commit the file-system journal, and those commits queue behind each other; overwriting a file ' +
        'that was pre-zeroed and fsynced leaves only data to flush.',
      '',
      table(['commits', 'per second', 'fdatasync p50'], t.commits.map((c) => [commitLabel(c), fmt(c.perSecond), ms(c.p50, 2)])),
      '',
    );
  }
  out.push(
    `**Without the disk.** The same daemon with its state directory on tmpfs (/dev/shm, where fdatasync returns at once), ` +
      `${r.options.tmpfsRounds} round(s), compared with the medians of figure 1:`,
    '',
    table(['', 'eventsubd on tmpfs', '× plain', '× eventsubd on disk', 'receiver CPU', 'p99'], tmpfsRows),
    '',
  );
  const p = t.profile;
  if (p?.profile) {
    const main = p.run.mainCpu;
    out.push(
      `**A profile.** eventsubd at ${c1} connections (${fmt(p.run.rps)} req/s in this run), V8's CPU profiler started through the ` +
        `inspector for the measured ${r.options.seconds} s only. Its JavaScript thread was idle ${pct(p.profile.idleShare)} of the run ` +
        `(/proc: ${pct(main)} busy; its other threads ${pct(p.run.otherCpu)} of a core; the plain server's JavaScript thread: ` +
        `${pct(median(plain1.map((x) => x.mainCpu)))}). Where the busy time went:`,
      '',
      table(
        ['area', 'share of busy time'],
        p.profile.byArea.filter((a) => !a.name.startsWith('idle')).slice(0, 10).map((a) => [a.name, pct(a.busy, 1)]),
      ),
      '',
      table(
        ['function (self time)', 'share of busy time'],
        p.profile.byFunction.filter((f) => !f.area.startsWith('idle')).slice(0, 10).map((f) => [`\`${f.name}\``, pct(f.busy, 1)]),
      ),
      '',
    );
  }
  return out.join('\n');
}

/** The receiver's part of the closing note, from what this run measured. */
export function receiverStep(r) {
  const t = r.sections.throughput;
  const [c1] = r.options.connections;
  const disk = median(valid(t.runs, 'eventsubd', c1).map((x) => x.rps));
  const plain = median(valid(t.runs, 'plain', c1).map((x) => x.rps));
  const tmpfsRuns = t.tmpfs.filter((x) => x.connections === c1 && !x.void);
  const tmpfs = median(tmpfsRuns.map((x) => x.rps));
  const gain = tmpfs / disk;
  const tmpfsVsPlain = tmpfs / plain;
  const g1 = valid(t.runs, 'eventsubd', c1);
  const prof = t.profile?.profile;
  const busy = prof ? prof.byArea.filter((a) => !a.name.startsWith('idle')).slice(0, 3).map((a) => `${a.name} ${pct(a.busy)}`).join(', ') : undefined;
  const parts = [`**Receiver throughput and latency.** At ${c1} connections eventsubd reaches ${ratio(pairedRatios(t.runs, 'eventsubd', c1).median)} plain.`];
  const next = [];
  if (gain >= 1.2) {
    const rate = (mode, overlap) => t.commits?.find((c) => c.mode === mode && c.overlap === overlap)?.perSecond;
    const [a2, o2] = [rate('append', 2), rate('overwrite', 2)];
    parts.push(
      `The disk is one bound: with its state on tmpfs the same daemon does ${ratio(gain)} its rate. Its commits carry ` +
        `${fmt(median(g1.map((x) => x.perFsync)), 1)} notifications each, one every ` +
        `${ms(median(g1.map((x) => (1000 / x.rps) * x.perFsync)), 2)}` +
        (a2 && o2 ? `; the file system allows ${fmt(a2)} overlapping appends a second but ${fmt(o2)} overlapping overwrites of a pre-zeroed file (table above).` : '.'),
    );
    parts.push(
      'The active segment is already kept ahead with zeros (`ZERO_AHEAD_BYTES` in src/journal/writer.ts), so commits overwrite ' +
        'and need no file-system journal commit; what is left of this bound is the commit itself, whose share per notification ' +
        'only larger batches (more connections waiting) lower.',
    );
  }
  if (tmpfsVsPlain < 0.5) {
    const main = median(tmpfsRuns.map((x) => x.mainCpu));
    parts.push(
      `Without the disk it still reaches only ${ratio(tmpfsVsPlain)} plain (ratio of medians), its JavaScript thread ${pct(main)} busy` +
        (main < 0.9 ? ' and the rest of the time waiting' : '') +
        '.',
    );
    if (busy) parts.push(`Its busy time on disk goes to ${busy} (profile above).`);
    next.push(
      'cut the per-request work the profile shows on the JavaScript thread: what is left beside the answer\'s socket write (the ' +
        'same for every server) is the HMAC (about 3 µs, OpenSSL\'s own cost here; precomputed key pads with hash copies were ' +
        'slower), the scan of the body, the dedup digest and the journal line; and on libuv\'s pool, the kernel time of each ' +
        'durable write (the "+" in receiver CPU), which only larger batches reduce now that the active segment is pre-zeroed',
    );
  } else if (prof) {
    parts.push(`Its JavaScript thread was idle ${pct(prof.idleShare)} of the run: the rate is set by waiting, not by CPU.`);
  }
  if (next.length) parts.push(`Next steps: ${next.join('; ')}; then re-measure, including the p99 at half rate.`);
  return parts.join(' ');
}
