/**
 * BENCHMARKS.md, figures 3 to 6: sync, token churn, memory and start-up, and the memory part of the
 * closing note.
 */
import { fmt, fmtRange, mib, ms, pct, ratio, sec, summarize, table } from './stats.mjs';

export function syncSection(r) {
  const s = r.sections.sync;
  if (!s) return '';
  const rows = s.phases.map((p) => [
    p.name,
    Object.entries(p.byMethod).map(([k, v]) => `${fmt(v)} ${k}`).join(', ') || '0',
    fmt(p.rateLimited),
    sec(p.ms),
    sec(p.boundMs),
    p.boundMs > 0 ? ratio(p.ms / p.boundMs) : '—',
    pct(p.emulatorCpu),
    pct(p.clientCpu),
  ]);
  if (s.control) {
    const p = s.control.phases[0];
    rows.push([`control: first sync of ${fmt(s.control.count)}`, Object.entries(p.byMethod).map(([k, v]) => `${fmt(v)} ${k}`).join(', '), fmt(p.rateLimited), sec(p.ms), sec(p.boundMs), ratio(p.ms / p.boundMs), pct(p.emulatorCpu), pct(p.clientCpu)]);
  }
  const out = [
    '## 3. Sync efficiency',
    '',
    `${fmt(s.count)} desired \`stream.online\` subscriptions against the emulator, run as its own process (\`${s.command}\`), with ` +
      `its bucket at ${s.limit} points per ${fmt(s.windowMs / 1000)} s (Twitch: per 60 s; time scaled down 10×). eventsubd's ` +
      'token manager and Helix client run in the benchmark\'s process, built as `buildTwitchStack` builds them but with the ' +
      `same ${fmt(s.windowMs / 1000)} s window given to the pacer, and \`syncSubscriptions\` with prune on. Every phase starts with a ` +
      `full bucket. The bucket's bound for N requests is max(0, N − ${s.limit}) × ${fmt(s.windowMs / 1000)} s / ${s.limit}: no ` +
      'client can go faster without drawing 429s. "10% changed": the file\'s first ' +
      `${fmt(s.changed)} subscriptions are replaced by others, so ${fmt(s.changed)} are pruned and ${fmt(s.changed)} created.`,
    '',
    table(['phase', 'Helix calls', '429s', 'wall time', 'bucket bound', 'time / bound', 'emulator CPU', 'client CPU'], rows),
    '',
  ];
  const prof = s.emulatorProfile;
  if (prof) {
    out.push(
      `The emulator's own CPU profile over the whole run (\`node --cpu-prof\`), by share of its busy time:`,
      '',
      table(['function (self time)', 'share of busy time'], prof.byFunction.filter((f) => !f.area.startsWith('idle')).slice(0, 6).map((f) => [`\`${f.name}\``, pct(f.busy, 1)])),
      '',
    );
  }
  return out.join('\n');
}

export function tokensSection(r) {
  const k = r.sections.tokens;
  if (!k) return '';
  const row = (name, f) => [name, f(k.eventsubd), f(k.twurple)];
  return [
    '## 4. Token churn',
    '',
    `A token is minted and used once; then the emulator expires every token and ${fmt(k.count)} Helix calls ` +
      '(`GET /eventsub/subscriptions`) start at once, so every first try gets 401. eventsubd: its `TokenManager` and ' +
      '`HelixEventSubClient` in the benchmark\'s process. Twurple: an `ApiClient` with an `AppTokenAuthProvider` in a child process ' +
      '(`bench/servers/twurple-churn.mjs`), pointed at the emulator by its mock mode (`TWURPLE_MOCK_API_PORT`: it then mints at ' +
      '`/auth/token` and calls `/eventsub/subscriptions`, both served by the emulator). Each gets a fresh emulator ' +
      '(`eventsubd emulate --bucket 1000000/60000`: the bucket is not the bound). Counted by the emulator.',
    '',
    table(
      ['', 'eventsubd', 'Twurple'],
      [
        row('token mints', (x) => `**${fmt(x.mints)}**`),
        row('401 answers', (x) => fmt(x.unauthorized)),
        row('Helix requests in all', (x) => fmt(x.helix)),
        row('calls that failed', (x) => `${fmt(x.failed)}${x.error ? ` (${x.error})` : ''}`),
        row('wall time', (x) => ms(x.ms, 0)),
      ],
    ),
    '',
  ].join('\n');
}

export function memorySection(r) {
  const mem = r.sections.memory?.notifications;
  const subs = r.sections.sync?.memory;
  if (!mem && !subs) return '';
  const out = ['## 5. Memory', ''];
  const rows = [];
  if (mem) {
    if (mem.baseline) {
      rows.push(['for comparison: a bare `node` process, idle', `${mib(mem.baseline.bare)} MiB`]);
      rows.push(["for comparison: `node` that has imported dist/daemon/daemon.js, idle", `${mib(mem.baseline.imported)} MiB`]);
    }
    rows.push(['eventsubd idle (token minted, 2 s quiet)', `${mib(mem.idle)} MiB`]);
    rows.push([`after ${fmt(mem.journaled)} notifications (2 s quiet)`, `${mib(mem.after)} MiB`]);
    rows.push(['peak during them (VmHWM)', `${mib(mem.peak)} MiB`]);
    if (mem.usage) rows.push(['after a forced full garbage collection', `${mib(mem.usage.rssAfterGc)} MiB`]);
  }
  if (subs) rows.push([`managing ${fmt(subs.count)} subscriptions (first sync done: ${subs.result}, ${Object.entries(subs.counts ?? {}).filter(([, v]) => v).map(([k, v]) => `${fmt(v)} ${k}`).join(', ')})`, `${mib(subs.rss)} MiB`]);
  out.push(
    'Resident set size (VmRSS) of `eventsubd run`, from /proc. ' +
      (mem
        ? `The notifications are sent at full speed (wrk, 64 connections, ${fmt(mem.run.rps)} req/s here) from a corpus of unique ` +
          `messages; the run stops once the journal holds ${fmt(r.options.notifications)}. ` +
          (mem.problems?.length
            ? `**This run is void:** ${mem.problems.join('; ')}. `
            : `All ${fmt(mem.run.requests)} answered requests were journaled, none rejected. `) +
          `Command: \`${mem.run.command}\` (stopped with SIGINT once the journal holds enough). `
        : '') +
      (subs ? 'The subscriptions are the ones figure 3 left on its emulator, declared in the daemon\'s subscriptions file.' : ''),
    '',
    table(['state', 'RSS'], rows),
    '',
  );
  if (mem) {
    out.push(
      'RSS as the notifications arrive:',
      '',
      table(['notifications journaled', ...mem.samples.map((x) => fmt(x.notifications))], [['RSS', ...mem.samples.map((x) => `${mib(x.rss)} MiB`)]]),
      '',
    );
    if (mem.usage) {
      const u = mem.usage;
      out.push(
        "Inside the daemon after them (`process.memoryUsage()`, read through the inspector), as it was and after a forced full GC:",
        '',
        table(
          ['', 'rss', 'V8 heap total', 'V8 heap used', 'external', 'array buffers'],
          [
            ['as it was', ...['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'].map((k) => `${mib(u.before[k])} MiB`)],
            ['after full GC', ...['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'].map((k) => `${mib(u.afterGc[k])} MiB`)],
          ],
        ),
        '',
      );
    }
    if (mem.heap?.error) out.push(`The heap snapshot could not be summarised: ${mem.heap.error}.`, '');
    if (mem.heap && !mem.heap.error) {
      const reach = mem.heap.reachable ?? [];
      out.push(
        `What the V8 heap holds: a heap snapshot taken after them (SIGUSR2, \`--heapsnapshot-signal\`), ` +
          `${mib(mem.heap.totalBytes)} MiB of live objects. ` +
          reach.map((x) => `Reachable from ${x.label}: **${mib(x.bytes)} MiB** in ${fmt(x.count)} objects. `).join('') +
          'The largest groups by self size:',
        '',
        table(['group', 'objects', 'MiB'], mem.heap.rows.map((x) => [x.name, fmt(x.count), mib(x.bytes)])),
        '',
      );
    }
  }
  return out.join('\n');
}

export function startupSection(r) {
  const st = r.sections.startup;
  const mem = r.sections.memory?.notifications;
  if (!st && !mem?.restart) return '';
  const rows = [];
  if (st) {
    rows.push(['cached token (validated at start)', fmtRange(summarize(st.cached.map((x) => x.readyMs))), fmtRange(summarize(st.cached.map((x) => x.tokenMs)))]);
    rows.push(['no cached token (mints)', fmtRange(summarize(st.mint.map((x) => x.readyMs))), fmtRange(summarize(st.mint.map((x) => x.tokenMs)))]);
  }
  if (mem?.restart) {
    const bytes = mem.restart.snapshotBytes === undefined ? 'no snapshot was saved' : `a snapshot of ${mib(mem.restart.snapshotBytes)} MiB`;
    rows.push([`restart on a journal of ${fmt(mem.journaled)} notifications from the last minutes, after a graceful stop (dedup window restored from ${bytes})`, fmt(mem.restart.ms), '—']);
    if (mem.restart.rebuildMs !== undefined) {
      rows.push([`the same without the snapshot, as after \`kill -9\` (dedup window rebuilt from every journal record)`, fmt(mem.restart.rebuildMs), '—']);
    }
  }
  const out = [
    '## 6. Start-up',
    '',
    'From spawning `node dist/main.js run` to the `READY=1` datagram on `NOTIFY_SOCKET` (a unix datagram socket the benchmark binds ' +
      'with the unix-dgram addon, as systemd does), and to the token being usable (`/status` shows `token.state` `ok`, polled every ' +
      '5 ms). The daemon sends READY=1 once its receiver and journal are up; the token comes after, in the background, so a token ' +
      'outage never delays receiving. ' +
      (st ? `Rounds alternate the two kinds (${st.cached.length} each); median (min–max), in ms.` : 'In ms.'),
    '',
    table(['state directory', 'to READY=1', 'to token usable'], rows),
    '',
  ];
  if (st?.imports) {
    out.push(
      'Where the time goes: a fresh `node` costs the first row; each other row is what importing that module adds to it, alone in a ' +
        'fresh process (median of 3, ms). Modules shared by several rows are counted in each.',
      '',
      table(['', 'ms'], st.imports.map((x) => [x.name, fmt(x.ms)])),
      '',
    );
  }
  const prof = st?.profile?.profile;
  if (prof) {
    out.push(
      `A CPU profile of one start (\`node --cpu-prof\`), its samples up to READY=1 (${fmt(st.profile.readyMs)} ms in that run), by area:`,
      '',
      table(['area', 'share'], prof.byArea.slice(0, 8).map((a) => [a.name, pct(a.share, 1)])),
      '',
    );
  }
  return out.join('\n');
}

/** The memory part of the closing note. */
export function memoryStep(r) {
  const mem = r.sections.memory?.notifications;
  const g = r.options.goals;
  const parts = ['**Memory.**'];
  if (mem && mem.idle > g.idleBytes) {
    const b = mem.baseline;
    parts.push(
      `Idle, the daemon takes ${mib(mem.idle)} MiB, ${mib(mem.idle - g.idleBytes)} MiB over the goal` +
        (b ? `; a bare \`node\` takes ${mib(b.bare)} MiB and one that has only imported the daemon's modules ${mib(b.imported)} MiB, so loading code accounts for ${mib(b.imported - b.bare)} MiB (the modules of figure 6)` : '') +
        '. Next step: load less before READY=1 (figure 6: the settings\' zod is the largest part).',
    );
  }
  if (mem && mem.after > g.afterBytes) {
    const dedup = mem.heap?.reachable?.[0];
    const u = mem.usage;
    parts.push(
      `After ${fmt(mem.journaled)} notifications RSS is ${mib(mem.after)} MiB` +
        (u
          ? `; a forced full GC brings it to ${mib(u.rssAfterGc)} MiB, with ${mib(u.afterGc.heapUsed)} MiB of live V8 heap and ` +
            `${mib(u.afterGc.arrayBuffers)} MiB of array buffers`
          : '') +
        (dedup ? `; the dedup window reaches ${mib(dedup.bytes)} MiB (heap snapshot)` : '') +
        '. The dedup window holds a 96-bit digest and a time per key (two keys per notification) in typed arrays, about 30 ' +
        'bytes a key, up to 2,000,000 keys.' +
        (u
          ? ` A forced full GC frees ${mib(mem.after - u.rssAfterGc)} MiB of RSS (garbage not yet collected); after it the V8 heap ` +
            `takes ${mib(u.afterGc.heapTotal)} MiB and the rest, ${mib(u.rssAfterGc - u.afterGc.heapTotal)} MiB, is the array ` +
            'buffers, Node\'s native memory and code.'
          : ''),
    );
    parts.push(
      'Next steps: what a full GC frees is garbage V8 had not collected yet; try a smaller young generation ' +
        '(`--max-semi-space-size`, e.g. in the unit\'s `NODE_OPTIONS`) and measure what it costs in throughput; store the ' +
        'dedup times as 32-bit seconds (4 bytes a key less).',
    );
  }
  return parts.join(' ');
}

export function conduitSection(r) {
  const c = r.sections.conduit;
  if (!c) return '';
  const rows = c.results.map((x) => {
    const sendRates = x.runs.map((run) => run.sent / (run.sendMs / 1000));
    const journalRates = x.runs.map((run) => (run.sent - run.dropped) / (run.journalMs / 1000));
    return [
      `${x.shards} shard${x.shards === 1 ? '' : 's'}`,
      fmtRange(summarize(sendRates)),
      fmtRange(summarize(journalRates)),
      fmtRange(summarize(x.runs.map((run) => run.journalMs))),
      fmt(x.runs.reduce((n, run) => n + run.dropped, 0)),
      fmt(x.duplicates),
    ];
  });
  return [
    '## 7. Conduit mode (WebSocket shards)',
    '',
    `The daemon in conduit mode (\`EVENTSUBD_TRANSPORT=conduit\`) holds 1, then 4, WebSocket shards of a conduit on the emulator. ` +
      `The emulator, in the benchmark's process, sends bursts of ${fmt(c.events)} \`stream.online\` notifications spread over 16 ` +
      'conduit subscriptions (routed to the shards by hashing the broadcaster id, as Twitch does). "Emulator send rate" is how fast ' +
      'it wrote the frames; "journaled rate" runs from the first frame sent until `/status` shows the journal head covering the ' +
      'whole burst, every record on disk (group-committed fdatasync). The emulator and the polling share the machine with the ' +
      `daemon. ${c.rounds} bursts per row after a warm-up; median (min–max).`,
    '',
    table(['shards', 'emulator send rate (events/s)', 'journaled rate (events/s)', 'burst journaled in (ms)', 'dropped by the emulator', 'duplicates seen'], rows),
    '',
  ].join('\n');
}
