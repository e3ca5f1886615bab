import { useMemo, useRef, useState } from 'react';
import type uPlot from 'uplot';
import type { AnalyticsState } from '../hooks/useAnalytics';
import { columns } from '../lib/timeseries';
import { formatBytes, formatInt, formatMs, formatUptime } from '../lib/text';
import type { ActiveUserDetail, AnalyticsSnapshot } from '../lib/types';
import { barSeries, categoryOptions, COLORS, fmtCompact, lineSeries, timeOptions } from './chartOptions';
import { UChart } from './UChart';

const TABLE_CAP = 200;
const TOP_ROOMS = 12;

function Card({ label, value, sub, testId, tone }: { label: string; value: string; sub?: string; testId?: string; tone?: 'warn' | 'danger' }) {
  return (
    <div className={`card stat${tone ? ` stat-${tone}` : ''}`}>
      <div className="stat-label">{label}</div>
      <div className="stat-value" data-testid={testId}>
        {value}
      </div>
      {sub && <div className="stat-sub">{sub}</div>}
    </div>
  );
}

function Panel({ title, subtitle, children, wide, right }: { title: string; subtitle?: string; children: React.ReactNode; wide?: boolean; right?: React.ReactNode }) {
  return (
    <section className={`card panel${wide ? ' panel-wide' : ''}`} aria-label={title}>
      <header className="panel-head">
        <div>
          <h2>{title}</h2>
          {subtitle && <p className="panel-sub">{subtitle}</p>}
        </div>
        {right}
      </header>
      {children}
    </section>
  );
}

function Empty({ text }: { text: string }) {
  return <div className="chart-empty">{text}</div>;
}

function LiveBadge({ state }: { state: AnalyticsState }) {
  const { error, lastOkAt, paused, snapshot } = state;
  let cls = 'live-ok';
  let text = 'Live';
  if (paused) {
    cls = 'live-paused';
    text = 'Paused (tab hidden)';
  } else if (error) {
    cls = 'live-err';
    text = snapshot ? `Stale — ${error}` : `Unavailable — ${error}`;
  } else if (!lastOkAt) {
    cls = 'live-paused';
    text = 'Loading…';
  }
  return (
    <span className={`live ${cls}`} role="status" aria-live="polite">
      <span className="dot" aria-hidden="true" />
      {text}
    </span>
  );
}

export function AnalyticsView({ state }: { state: AnalyticsState }) {
  const snap = state.snapshot;
  const samples = state.series.samples;

  // ----- time series -----
  const latData = useMemo(() => columns(samples, ['p50', 'p95', 'p99']) as uPlot.AlignedData, [samples]);
  const connData = useMemo(() => columns(samples, ['connections', 'users']) as uPlot.AlignedData, [samples]);
  const rateData = useMemo(() => columns(samples, ['msgRate']) as uPlot.AlignedData, [samples]);
  const persistData = useMemo(() => columns(samples, ['queueDepth', 'writeRate']) as uPlot.AlignedData, [samples]);

  const latOpts = useMemo(
    () => timeOptions([lineSeries('p50', COLORS.green, { fill: undefined }), lineSeries('p95', COLORS.amber, { fill: undefined }), lineSeries('p99', COLORS.red, { fill: undefined })], 'ms', (v) => (v < 10 ? v.toFixed(1) : fmtCompact(v))),
    [],
  );
  const connOpts = useMemo(
    () => timeOptions([lineSeries('connections', COLORS.accent), lineSeries('users', COLORS.cyan)], 'count', (v) => fmtCompact(v)),
    [],
  );
  const rateOpts = useMemo(() => timeOptions([lineSeries('msg/s', COLORS.violet)], 'msg/s', (v) => fmtCompact(v)), []);
  const persistOpts = useMemo(() => {
    const o = timeOptions([lineSeries('queue depth', COLORS.amber), lineSeries('writes/s', COLORS.green, { scale: 'rate' })], 'queued', (v) => fmtCompact(v));
    o.scales = { ...o.scales, rate: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] } };
    o.axes = [...(o.axes ?? []), { ...o.axes![1], scale: 'rate', side: 1, grid: { show: false }, label: 'writes/s' }];
    return o;
  }, []);

  // ----- messages per minute -----
  const mpm = snap?.messagesPerMinute ?? [];
  const mpmLabels = useRef<string[]>([]);
  mpmLabels.current = mpm.map((_, i) => (i === mpm.length - 1 ? 'now' : `-${mpm.length - 1 - i}m`));
  const mpmData = useMemo(() => [mpm.map((_, i) => i), mpm.slice()] as uPlot.AlignedData, [snap]); // eslint-disable-line react-hooks/exhaustive-deps
  const mpmOpts = useMemo(() => categoryOptions([barSeries('messages', COLORS.accent, 0, 0.7)], () => mpmLabels.current, { yLabel: 'msgs/min', xLabel: 'minute' }), []);

  // ----- rooms -----
  const rooms = useMemo(
    () => (snap?.roomActivity ?? []).slice().sort((a, b) => b.messages - a.messages || b.connections - a.connections).slice(0, TOP_ROOMS),
    [snap],
  );
  const roomLabels = useRef<string[]>([]);
  roomLabels.current = rooms.map((r) => r.roomId);
  const roomData = useMemo(
    () => [rooms.map((_, i) => i), rooms.map((r) => r.messages), rooms.map((r) => r.connections)] as uPlot.AlignedData,
    [rooms],
  );
  const roomOpts = useMemo(
    () =>
      categoryOptions(
        [barSeries('messages', COLORS.violet, -1, 0.38), barSeries('connections', COLORS.cyan, 1, 0.38, { scale: 'conns' })],
        () => roomLabels.current,
        { secondScale: 'conns', yLabel: 'messages', y2Label: 'connections', xLabel: 'room' },
      ),
    [],
  );

  // ----- workers -----
  const workers = snap?.workers ?? [];
  const workerLabels = useRef<string[]>([]);
  workerLabels.current = workers.map((w) => `worker ${w.id}`);
  const workerData = useMemo(
    () => [workers.map((_, i) => i), workers.map((w) => w.connections), workers.map((w) => w.messages)] as uPlot.AlignedData,
    [snap], // eslint-disable-line react-hooks/exhaustive-deps
  );
  const workerOpts = useMemo(
    () =>
      categoryOptions(
        [barSeries('connections', COLORS.accent, -1, 0.38), barSeries('messages', COLORS.green, 1, 0.38, { scale: 'msgs' })],
        () => workerLabels.current,
        { secondScale: 'msgs', yLabel: 'connections', y2Label: 'messages', xLabel: 'worker' },
      ),
    [],
  );

  const p = snap?.persistence;
  const persistOn = !!p && p.enabled === true;

  if (!snap) {
    return (
      <main className="analytics" id="main" tabIndex={-1}>
        <div className="page-head">
          <h1>Analytics</h1>
          <LiveBadge state={state} />
        </div>
        <div className="card empty-state">{state.error ? `Could not reach the server: ${state.error}. Retrying…` : 'Loading analytics…'}</div>
      </main>
    );
  }

  const lat = `${formatMs(snap.latencyP50Ms)} · ${formatMs(snap.latencyP95Ms)} · ${formatMs(snap.latencyP99Ms)}`;
  const sc = snap.slowConsumerDisconnects ?? 0;
  const lastRate = samples.length ? samples[samples.length - 1].msgRate : null;

  return (
    <main className="analytics" id="main" tabIndex={-1}>
      <div className="page-head">
        <div>
          <h1>Analytics</h1>
          <p className="muted small">
            Server started {new Date(snap.serverStartTime).toLocaleString()} · polling every second
          </p>
        </div>
        <LiveBadge state={state} />
      </div>

      <div className="stats">
        <Card label="Total messages" value={formatInt(snap.totalMessages)} testId="total-messages" sub={lastRate != null ? `${lastRate.toFixed(1)} msg/s now` : undefined} />
        <Card label="Connections / users" value={`${formatInt(snap.activeConnections)} / ${formatInt(snap.activeUsers)}`} sub="sockets / distinct users" />
        <Card label="Peak connections" value={formatInt(snap.peakConnections)} />
        <Card label="Uptime" value={formatUptime(snap.uptimeSeconds)} />
        <Card label="Slow-consumer disconnects" value={formatInt(sc)} tone={sc > 0 ? 'warn' : undefined} sub="closed with 1008" />
        <Card label="Fan-out p50 · p95 · p99" value={formatMs(snap.latencyP99Ms)} sub={lat} />
        {snap.totalDeliveries != null && <Card label="Deliveries" value={formatInt(snap.totalDeliveries)} sub="frames written to sockets" />}
        {(snap.rateLimited != null || snap.rejected != null) && (
          <Card
            label="Rate-limited / rejected"
            value={`${formatInt(snap.rateLimited ?? 0)} / ${formatInt(snap.rejected ?? 0)}`}
            tone={(snap.overloaded ?? 0) > 0 ? 'warn' : undefined}
            sub={snap.overloaded != null ? `${formatInt(snap.overloaded)} overloaded` : 'dropped / refused frames'}
          />
        )}
        {snap.presenceWithheld != null && (
          <Card
            label="Presence withheld"
            value={formatInt(snap.presenceWithheld)}
            testId="presence-withheld"
            sub="joins/leaves in rooms over PRESENCE_MAX_MEMBERS"
          />
        )}
        {(snap.typingDropped != null || snap.duplicatesAcked != null) && (
          <Card
            label="v2 duplicates acked / typing dropped / recovered from store"
            value={`${formatInt(snap.duplicatesAcked ?? 0)} / ${formatInt(snap.typingDropped ?? 0)} / ${formatInt(snap.recoveredFromStore ?? 0)}`}
            testId="v2-counters"
            sub="resent clientMsgIds not broadcast again / typing frames over the bucket / recoveries past the memory ring"
          />
        )}
        {workers.some((w) => w.historyBytes != null) && (
          <Card
            label="History in memory"
            value={formatBytes(workers.reduce((sum, w) => sum + (w.historyBytes ?? 0), 0))}
            testId="history-bytes"
            sub="retained for backlogs and since, MAX_HISTORY_BYTES per worker"
          />
        )}
        {p && (
          <Card
            label="Persistence"
            value={persistOn ? (p.status ?? 'on') : 'off'}
            tone={persistOn && p.status !== 'ok' ? 'danger' : undefined}
            sub={persistOn ? `queue ${formatInt(p.queueDepth)} · written ${formatInt(p.written)}` : 'in-memory history only'}
          />
        )}
      </div>

      <div className="panels">
        <Panel title="Messages per minute" subtitle="last 15 minutes, current minute last">
          {mpm.length ? <UChart label="Messages per minute, last 15 minutes" optionsKey="mpm" options={mpmOpts} data={mpmData} /> : <Empty text="No data" />}
        </Panel>
        <Panel title="Fan-out latency" subtitle="p50 / p95 / p99 in ms, sampled each second (10 min)">
          <UChart label="Fan-out latency percentiles over time" optionsKey="lat" options={latOpts} data={latData} />
        </Panel>
        <Panel title="Connections and users" subtitle="open connections vs distinct users (10 min)">
          <UChart label="Connections and users over time" optionsKey="conn" options={connOpts} data={connData} />
        </Panel>
        <Panel title="Message rate" subtitle="messages per second between polls (10 min)">
          <UChart label="Message rate over time" optionsKey="rate" options={rateOpts} data={rateData} />
        </Panel>
        <Panel
          title="Room activity"
          subtitle={`top ${Math.min(TOP_ROOMS, rooms.length || TOP_ROOMS)} rooms by messages${snap.rooms != null ? ` · ${formatInt(snap.rooms)} active rooms` : ''}`}
        >
          {rooms.length ? (
            <UChart label="Messages and connections per room" optionsKey={`rooms`} options={roomOpts} data={roomData} />
          ) : (
            <Empty text={snap.roomActivity ? 'No active rooms' : 'Not reported by this server'} />
          )}
        </Panel>
        <Panel title="Worker load" subtitle="connections and messages per worker thread">
          {workers.length ? (
            <UChart label="Connections and messages per worker" optionsKey="workers" options={workerOpts} data={workerData} />
          ) : (
            <Empty text="Not reported by this server" />
          )}
        </Panel>
        {persistOn && (
          <Panel
            title="Persistence"
            subtitle="queue depth and writes per second"
            wide
            right={<span className={`badge ${p!.status === 'ok' ? 'badge-ok' : 'badge-danger'}`}>{p!.status ?? 'unknown'}</span>}
          >
            <dl className="kv">
              {(['queued', 'written', 'retried', 'failed', 'dropped', 'queueDepth'] as const).map((k) => (
                <div key={k}>
                  <dt>{k === 'queueDepth' ? 'queue depth' : k}</dt>
                  <dd className={(k === 'failed' || k === 'dropped') && (p![k] ?? 0) > 0 ? 'danger' : undefined}>{formatInt(p![k])}</dd>
                </div>
              ))}
              <div>
                <dt>batch p99</dt>
                <dd>{formatMs(p!.batchP99Ms)}</dd>
              </div>
            </dl>
            <UChart label="Persistence queue depth and write rate" optionsKey="persist" options={persistOpts} data={persistData} />
          </Panel>
        )}
      </div>

      <UsersTable users={snap.activeUserDetails ?? []} truncated={!!snap.activeUserDetailsTruncated} total={snap.activeConnections} />
    </main>
  );
}

function UsersTable({ users, truncated, total }: { users: ActiveUserDetail[]; truncated: boolean; total: number }) {
  const [filter, setFilter] = useState('');
  const f = filter.trim().toLowerCase();
  const matched = f
    ? users.filter((u) => u.username.toLowerCase().includes(f) || u.userId.toLowerCase().includes(f) || (u.roomId ?? '').toLowerCase().includes(f))
    : users;
  const shown = matched.slice(0, TABLE_CAP);
  return (
    <section className="card panel panel-wide" aria-label="Active users">
      <header className="panel-head">
        <div>
          <h2>Active connections</h2>
          <p className="panel-sub">
            {matched.length > TABLE_CAP ? `showing ${TABLE_CAP} of ${formatInt(matched.length)}` : `${formatInt(matched.length)} connection${matched.length === 1 ? '' : 's'}`}
            {truncated && ` · the server listed ${formatInt(users.length)} of ${formatInt(total)}`}
          </p>
        </div>
        <label className="filter">
          <span className="sr-only">Filter users</span>
          <input type="search" placeholder="Filter by name, id or room" value={filter} onChange={(e) => setFilter(e.target.value)} />
        </label>
      </header>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Active connections table">
        <table>
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">User id</th>
              <th scope="col">Room</th>
              <th scope="col">Joined</th>
              <th scope="col">Client</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((u) => (
              <tr key={u.clientId}>
                <td>{u.username}</td>
                <td className="mono">{u.userId}</td>
                <td>{u.roomId ?? '—'}</td>
                <td title={u.joinedAt}>{new Date(u.joinedAt).toLocaleTimeString()}</td>
                <td className="mono muted">{u.clientId}</td>
              </tr>
            ))}
            {shown.length === 0 && (
              <tr>
                <td colSpan={5} className="muted center">
                  No one is connected
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export type { AnalyticsSnapshot };
