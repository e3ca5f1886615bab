import type { AnalyticsSnapshot } from './types';

/** One poll, reduced to the numbers the over-time charts need. */
export interface Sample {
  /** Client clock, seconds since epoch (uPlot's time unit). */
  t: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  connections: number | null;
  users: number | null;
  totalMessages: number | null;
  /** Messages per second since the previous sample (null after a counter reset). */
  msgRate: number | null;
  queueDepth: number | null;
  written: number | null;
  /** Persistence writes per second since the previous sample. */
  writeRate: number | null;
}

export interface Series {
  samples: Sample[];
  windowSec: number;
  serverStartTime: string | null;
}

export const DEFAULT_WINDOW_SEC = 600;

export function emptySeries(windowSec = DEFAULT_WINDOW_SEC): Series {
  return { samples: [], windowSec, serverStartTime: null };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function rate(cur: number | null, prev: number | null, dt: number): number | null {
  if (cur == null || prev == null || dt <= 0) return null;
  const d = cur - prev;
  if (d < 0) return null; // counter reset (server restart)
  return d / dt;
}

/**
 * Append one snapshot taken at `nowMs`; drop samples older than the window.
 * A server restart (serverStartTime changed) keeps the history but breaks the rates.
 */
export function addSample(s: Series, snap: AnalyticsSnapshot, nowMs: number): Series {
  const t = nowMs / 1000;
  const prevAll = s.samples;
  const restarted = s.serverStartTime != null && snap.serverStartTime !== s.serverStartTime;
  const prev = restarted ? undefined : prevAll[prevAll.length - 1];
  // A clock that went backwards (or a duplicate timestamp) would break uPlot's sorted x.
  if (prev && t <= prev.t) return s;
  const dt = prev ? t - prev.t : 0;
  const p = snap.persistence;
  const persistenceOn = !!p && p.enabled === true;
  const totalMessages = num(snap.totalMessages);
  const written = persistenceOn ? num(p!.written) : null;
  const sample: Sample = {
    t,
    p50: num(snap.latencyP50Ms),
    p95: num(snap.latencyP95Ms),
    p99: num(snap.latencyP99Ms),
    connections: num(snap.activeConnections),
    users: num(snap.activeUsers),
    totalMessages,
    msgRate: prev ? rate(totalMessages, prev.totalMessages, dt) : null,
    queueDepth: persistenceOn ? num(p!.queueDepth) : null,
    written,
    writeRate: prev ? rate(written, prev.written, dt) : null,
  };
  const cutoff = t - s.windowSec;
  let start = 0;
  while (start < prevAll.length && prevAll[start].t < cutoff) start++;
  const samples = prevAll.slice(start);
  samples.push(sample);
  return { ...s, samples, serverStartTime: snap.serverStartTime ?? s.serverStartTime };
}

/** Column-oriented data for uPlot: [xs, ...ys]. */
export function columns(samples: readonly Sample[], keys: readonly (keyof Sample)[]): (number | null)[][] {
  const out: (number | null)[][] = [samples.map((x) => x.t)];
  for (const k of keys) out.push(samples.map((x) => x[k] as number | null));
  return out;
}
