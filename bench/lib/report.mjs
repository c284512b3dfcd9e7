/**
 * Renders BENCHMARKS.md from the results of scripts/bench.mjs: the machine, how to run, the goals, one
 * part per figure with its method and exact commands, what bounds each missed goal (from the profiles
 * and counters measured in the same run), and a closing note naming the next steps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fmt, median, mib, ms, pct, ratio, sec, table } from './stats.mjs';
import { pairedRatios } from '../sections/throughput.mjs';
import { conduitSection, memorySection, memoryStep, startupSection, syncSection, tokensSection } from './report-figures.mjs';
import { boundsSection, durabilitySection, receiverStep, throughputSection } from './report-receiver.mjs';

const MIB = 1024 * 1024;

/** A goal row: `atLeast` goals are met when measured ≥ goal, others when measured ≤ goal. */
function goalRow(text, measured, goal, { atLeast, shown, exact = false }) {
  if (!Number.isFinite(measured)) return { text, shown: 'not measured', status: '—', met: undefined };
  const met = exact ? measured === goal : atLeast ? measured >= goal : measured <= goal;
  const off = exact ? '' : atLeast ? (goal - measured) / goal : (measured - goal) / goal;
  const status = met ? 'met' : exact ? 'missed' : `missed by ${pct(off)}`;
  return { text, shown: shown ?? fmt(measured, 2), status, met };
}

/** Everything the goal table and the closing note need, computed once. */
function evaluate(r) {
  const goals = [];
  const t = r.sections.throughput;
  const g = r.options.goals;
  const facts = {};
  if (t) {
    const [c1, c2] = r.options.connections;
    const e1 = pairedRatios(t.runs, 'eventsubd', c1);
    const e2 = pairedRatios(t.runs, 'eventsubd', c2);
    const vsTw1 = pairedRatios(t.runs, 'eventsubd', c1, 'twurple');
    const vsTw2 = pairedRatios(t.runs, 'eventsubd', c2, 'twurple');
    Object.assign(facts, { e1, e2, vsTw1, vsTw2 });
    goals.push(goalRow(`eventsubd ≥ 0.5 × plain at ${c1} connections`, e1.median, 0.5, { atLeast: true, shown: `${ratio(e1.median)} (${ratio(e1.min)}–${ratio(e1.max)})` }));
    goals.push(goalRow(`eventsubd ≥ 0.65 × plain at ${c2} connections`, e2.median, 0.65, { atLeast: true, shown: `${ratio(e2.median)} (${ratio(e2.min)}–${ratio(e2.max)})` }));
    goals.push(goalRow(`eventsubd ≥ 1.3 × Twurple at ${c1} connections`, vsTw1.median, 1.3, { atLeast: true, shown: `${ratio(vsTw1.median)} (${ratio(vsTw1.min)}–${ratio(vsTw1.max)})` }));
    goals.push(goalRow(`eventsubd ≥ 1.5 × Twurple at ${c2} connections`, vsTw2.median, 1.5, { atLeast: true, shown: `${ratio(vsTw2.median)} (${ratio(vsTw2.min)}–${ratio(vsTw2.max)})` }));
    // The floor under both: durable and still not slower than Twurple, which keeps nothing on disk.
    goals.push(goalRow(`eventsubd ≥ 1.0 × Twurple at ${c1} connections (the least)`, vsTw1.median, 1, { atLeast: true, shown: ratio(vsTw1.median) }));
    goals.push(goalRow(`eventsubd ≥ 1.0 × Twurple at ${c2} connections (the least)`, vsTw2.median, 1, { atLeast: true, shown: ratio(vsTw2.median) }));
    const paced = t.paced.runs.filter((x) => !x.void);
    const p99 = median(paced.map((x) => x.p99));
    facts.pacedP99 = p99;
    goals.push(
      goalRow(`eventsubd p99 ≤ ${g.p99Ms} ms at half of its maximum rate (${fmt(t.paced.rate)} req/s)`, p99, g.p99Ms, {
        atLeast: false,
        shown: ms(p99, 2),
      }),
    );
  }
  const s = r.sections.sync;
  if (s) {
    const [first, noop] = s.phases;
    goals.push(goalRow(`first sync of ${fmt(s.count)} ≤ 1.05 × the bucket's bound`, first.ms / first.boundMs, 1.05, { atLeast: false, shown: `${sec(first.ms)} = ${ratio(first.ms / first.boundMs)} the bound (${sec(first.boundMs)})` }));
    goals.push(goalRow('first sync draws zero 429s', first.rateLimited, 0, { exact: true, shown: fmt(first.rateLimited) }));
    if (noop) {
      const exact = noop.calls === noop.listPages && noop.writes === 0 ? 1 : 0;
      goals.push(goalRow('re-sync with nothing to do: exactly the list pages, zero writes', exact, 1, { exact: true, shown: `${fmt(noop.calls)} calls for ${fmt(noop.listPages)} pages, ${fmt(noop.writes)} writes` }));
    }
  }
  const k = r.sections.tokens;
  if (k) goals.push(goalRow(`token mints for ${fmt(k.count)} concurrent 401s = 1`, k.eventsubd.mints, 1, { exact: true, shown: `${fmt(k.eventsubd.mints)} (Twurple: ${fmt(k.twurple.mints)})` }));
  const m = r.sections.memory?.notifications;
  if (m) {
    goals.push(goalRow(`RSS idle ≤ ${mib(g.idleBytes)} MiB`, m.idle / MIB, g.idleBytes / MIB, { atLeast: false, shown: `${mib(m.idle)} MiB` }));
    const n = m.journaled;
    const label = n >= 1_000_000 ? 'after 1,000,000 notifications' : `after ${fmt(n)} notifications (the goal is for 1,000,000: \`--million\`)`;
    goals.push(goalRow(`RSS ${label} ≤ ${mib(g.afterBytes)} MiB`, m.after / MIB, g.afterBytes / MIB, { atLeast: false, shown: `${mib(m.after)} MiB` }));
    if (m.restart) goals.push(goalRow(`restart on ${fmt(n)} recent records to READY=1 (after a graceful stop) ≤ ${g.restartMs} ms`, m.restart.ms, g.restartMs, { atLeast: false, shown: ms(m.restart.ms, 0) }));
  }
  const st = r.sections.startup;
  if (st) {
    const ready = median(st.cached.map((x) => x.readyMs));
    goals.push(goalRow(`start to READY=1 with a cached token ≤ ${g.readyMs} ms`, ready, g.readyMs, { atLeast: false, shown: ms(ready, 0) }));
  }
  return { goals, facts };
}

function header(r) {
  const o = r.options;
  // PSI is not a test of quiet: the benchmark's own processes contend for the two cores. Load before it starts is.
  const noisy = r.stealShare > 0.03 || r.loadBefore[0] > 0.5;
  const lines = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` (\`scripts/bench.mjs\`) on ${r.startedAt.slice(0, 10)}: a **${o.mode}** run that took ${fmt(r.seconds / 60, 1)} minutes. ` +
      'Do not edit it by hand: run the benchmark again. Absolute numbers drift between machines, and between runs on a shared ' +
      'one (single runs here vary by up to 1.5×), so the figures to compare are the **ratios**, each taken between runs of the same round.',
    '',
  ];
  const caveats = [];
  if (o.mode === 'quick') caveats.push(`This is a \`--quick\` run (${o.rounds} rounds of ${o.seconds} s, ${fmt(o.notifications)} notifications, ${fmt(o.subscriptions)} subscriptions): indicative only.`);
  if (noisy) {
    caveats.push(
      `The machine was not quiet: its load average was ${fmt(r.loadBefore[0], 2)} before the run (other processes on its two cores); ` +
        `during the run some task was waiting for a CPU ${pct(r.pressure?.cpu)} of the time and for I/O ${pct(r.pressure?.io)} ` +
        `(pressure stall information, /proc/pressure; the benchmark's own processes count too), and the hypervisor took ` +
        `${pct(r.stealShare, 1)} of the CPU time (steal). ` +
        'Absolute figures are therefore low and noisy, and the ratios less certain than on a quiet machine: run it again there ' +
        'before drawing conclusions.',
    );
  }
  caveats.push(
    'The load generator shares the machine\'s two cores with the receiver: wrk runs one thread on loopback, and its CPU use is shown beside each figure.',
  );
  for (const c of caveats) lines.push(`> ${c}`, '>');
  lines.pop();
  lines.push('');
  return lines.join('\n');
}

function summarySection(r, evaluation) {
  const errors = Object.entries(r.errors ?? {});
  const rows = evaluation.goals.map((g) => [g.text, g.shown, g.met === undefined ? '—' : g.met ? 'met' : `**${g.status}**`]);
  const out = ['## Goals', '', table(['goal', 'measured', ''], rows), ''];
  if (errors.length) out.push(`Sections that failed in this run: ${errors.map(([k, v]) => `${k} (${String(v).split('\n')[0]})`).join('; ')}.`, '');
  return out.join('\n');
}

function machineSection(r) {
  const m = r.machine;
  const o = r.options;
  return [
    '## The machine and how to run',
    '',
    table(
      ['', ''],
      [
        ['CPU', `${m.cpu}, ${m.cores} cores`],
        ['memory', `${fmt(m.memoryGiB, 1)} GiB`],
        ['kernel', m.kernel],
        ['state directories', `${m.tmpdir}: ${m.stateFs}`],
        ['Node.js', m.node],
        ['load generator', `${m.wrk}, one thread, on the same two cores`],
        ['Twurple', `@twurple/eventsub-http, @twurple/api, @twurple/auth ${m.twurple}`],
        ['eventsubd', m.eventsubd],
        ['load average before / after', `${r.loadBefore.map((x) => fmt(x, 2)).join(' ')} / ${r.loadAfter.map((x) => fmt(x, 2)).join(' ')}`],
        ['during the run: CPU steal; some task waiting for CPU; for I/O', `${pct(r.stealShare, 1)}; ${pct(r.pressure?.cpu)}; ${pct(r.pressure?.io)}`],
      ],
    ),
    '',
    '```sh',
    'apt-get install wrk                # Debian\'s wrk 4.1, the load generator',
    'npm ci                             # includes the dev dependencies: @twurple/eventsub-http, @twurple/api, @twurple/auth',
    'npm run bench                      # builds, runs every figure (under 10 minutes on a quiet machine), rewrites BENCHMARKS.md',
    'npm run bench -- --quick           # about 3 minutes: fewer and shorter rounds, smaller sets',
    'npm run bench -- --million         # the memory figure with the full 1,000,000 notifications',
    'npm run bench -- --only throughput --out -   # one section, report on stdout',
    '```',
    '',
    `This run: ${o.rounds} rounds, measured runs of ${o.seconds} s after ${o.warmSeconds} s of warm-up, ${fmt(o.notifications)} notifications, ` +
      `${fmt(o.subscriptions)} subscriptions. Everything listens on and talks to 127.0.0.1 only.`,
    '',
  ].join('\n');
}

/** The closing note: one next step per missed goal, with the evidence from this run. */
function closingSection(r, evaluation) {
  const missed = evaluation.goals.filter((g) => g.met === false);
  const out = ['## Closing note', ''];
  const measured = evaluation.goals.filter((g) => g.met !== undefined && g.met !== null);
  if (measured.length === 0) {
    out.push('No goal was measured in this run (only these sections ran: ' + Object.keys(r.sections).join(', ') + ').', '');
    return out.join('\n');
  }
  if (missed.length === 0) {
    out.push('Every goal was met in this run. Next: run it on a quiet machine and watch the ratios between releases.', '');
    return out.join('\n');
  }
  const t = r.sections.throughput;
  const steps = [];
  if (t && missed.some((g) => /plain|Twurple|p99/.test(g.text))) steps.push(receiverStep(r));
  if (missed.some((g) => /first sync/.test(g.text))) {
    const s = r.sections.sync;
    const first = s.phases[0];
    const control = s.control?.phases[0];
    steps.push(
      `**Sync.** The first sync took ${ratio(first.ms / first.boundMs)} the bucket's bound while the emulator used ` +
        `${pct(first.emulatorCpu)} of a core and the client ${pct(first.clientCpu)}` +
        (control ? `; with ${fmt(s.control.count)} subscriptions, where the emulator keeps up, eventsubd took ${ratio(control.ms / control.boundMs)} the bound` : '') +
        (first.emulatorCpu > 0.8
          ? '. The emulator (indexed: a create costs the same at any size) was still the busier process: this figure measures ' +
            'it as much as eventsubd. Next step: run the emulator on its own core (or a faster one) to see the client\'s bound.'
          : '. The emulator kept up, so the client\'s pacing is what overshoots: it spaces requests by the points left until ' +
            '`Ratelimit-Reset`, in whole seconds, and adds a safety margin. Next step: compare the pacer\'s waits with the ' +
            'bucket\'s refill times in the emulator\'s log, and trim the margin or pace from the refill rate instead.'),
    );
  }
  if (missed.some((g) => /RSS/.test(g.text))) steps.push(memoryStep(r));
  if (missed.some((g) => /READY/.test(g.text))) {
    const st = r.sections.startup;
    const row = (re) => st.imports?.find((x) => re.test(x.name))?.ms;
    const restart = r.sections.memory?.notifications?.restart;
    steps.push(
      `**Start-up.** READY=1 came after ${ms(median(st.cached.map((x) => x.readyMs)), 0)} with a cached token. A bare \`node\` takes ` +
        `${ms(row(/^`node -e 0`/), 0)}; what \`run\` loads before READY=1 (the receiver, journal, dedup and settings; the Twitch ` +
        `side, sync and forwarder load after it) adds ${ms(row(/daemon\.js/), 0)}, of which zod alone, which the settings use, is ` +
        `${ms(row(/'zod'/), 0)} (each measured alone: figure 6): mostly Node reading its many files, locale files included. Next ` +
        'step: validate the settings without zod (they are flat strings) or load a bundled zod, then re-measure.' +
        (restart?.rebuildMs !== undefined
          ? ` Note also the restart after a burst without a dedup snapshot (after \`kill -9\`): rebuilding the dedup window from ` +
            `${fmt(r.sections.memory.notifications.journaled)} journaled notifications took ${ms(restart.rebuildMs, 0)} before READY=1 ` +
            `(a JSON parse per record); after a graceful stop, ${ms(restart.ms, 0)}.`
          : ''),
    );
  }
  if (missed.some((g) => /mints/.test(g.text))) {
    steps.push('**Token churn.** More than one mint for one expired token: look at the single-flight in `TokenManager.tokenRejected`.');
  }
  for (const s of steps) out.push(`- ${s}`);
  out.push('');
  return out.join('\n');
}

/** The hand-kept log of the hot path's steps (bench/steps.md), copied in as it is; none when the file is absent. */
function stepsSection() {
  const path = fileURLToPath(new URL('../steps.md', import.meta.url));
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

/** The whole BENCHMARKS.md. */
export function renderReport(r) {
  const evaluation = evaluate(r);
  return [
    header(r),
    summarySection(r, evaluation),
    machineSection(r),
    throughputSection(r),
    durabilitySection(r),
    boundsSection(r),
    syncSection(r),
    tokensSection(r),
    memorySection(r),
    startupSection(r),
    conduitSection(r),
    stepsSection(),
    closingSection(r, evaluation),
  ]
    .filter(Boolean)
    .join('\n');
}
