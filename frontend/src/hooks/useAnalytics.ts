import { useEffect, useRef, useState } from 'react';
import { server, type ServerEndpoints } from '../lib/config';
import { addSample, emptySeries, type Series } from '../lib/timeseries';
import type { AnalyticsSnapshot } from '../lib/types';
import { apiHeaders } from '../lib/token';

export interface AnalyticsState {
  snapshot: AnalyticsSnapshot | null;
  series: Series;
  error: string | null;
  lastOkAt: number | null;
  paused: boolean;
}

export interface PollOptions {
  intervalMs?: number;
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
  now?: () => number;
}

function isSnapshot(v: unknown): v is AnalyticsSnapshot {
  return !!v && typeof v === 'object' && typeof (v as AnalyticsSnapshot).totalMessages === 'number';
}

/**
 * Polls GET /api/analytics about once a second while `active`: one request in flight
 * at a time (the next starts `intervalMs` after the previous one started, or at once if
 * it took longer), paused while the tab is hidden. Samples accumulate across
 * activations, so switching tabs does not lose the history.
 */
export function useAnalytics(active: boolean, endpoints: ServerEndpoints = server(), opts: PollOptions = {}): AnalyticsState {
  const [state, setState] = useState<AnalyticsState>({
    snapshot: null,
    series: emptySeries(),
    error: null,
    lastOkAt: null,
    paused: false,
  });
  const seriesRef = useRef<Series>(state.series);
  const { intervalMs = 1000, timeoutMs = 5000, fetchImpl, now = Date.now } = opts;

  useEffect(() => {
    if (!active) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let inFlight: AbortController | null = null;
    const doFetch = fetchImpl ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));

    const tick = async () => {
      timer = null;
      if (stopped) return;
      if (document.visibilityState === 'hidden') {
        setState((s) => (s.paused ? s : { ...s, paused: true }));
        return; // resumed by visibilitychange
      }
      const started = now();
      const ctl = new AbortController();
      inFlight = ctl;
      const to = setTimeout(() => ctl.abort(), timeoutMs);
      try {
        const r = await doFetch(`${endpoints.http}/api/analytics`, {
          signal: ctl.signal,
          headers: apiHeaders(),
          cache: 'no-store',
        });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        const body: unknown = await r.json();
        if (!isSnapshot(body)) throw new Error('unexpected response');
        if (stopped) return;
        const t = now();
        seriesRef.current = addSample(seriesRef.current, body, t);
        setState({ snapshot: body, series: seriesRef.current, error: null, lastOkAt: t, paused: false });
      } catch (e) {
        if (stopped) return;
        const msg = ctl.signal.aborted ? 'request timed out' : e instanceof Error ? e.message : String(e);
        setState((s) => ({ ...s, error: msg, paused: false }));
      } finally {
        clearTimeout(to);
        inFlight = null;
      }
      if (stopped) return;
      const wait = Math.max(0, intervalMs - (now() - started));
      timer = setTimeout(tick, wait);
    };

    const onVisibility = () => {
      if (document.visibilityState !== 'hidden' && !timer && !inFlight && !stopped) void tick();
    };
    document.addEventListener('visibilitychange', onVisibility);
    void tick();
    return () => {
      stopped = true;
      document.removeEventListener('visibilitychange', onVisibility);
      if (timer) clearTimeout(timer);
      inFlight?.abort();
    };
  }, [active, endpoints, intervalMs, timeoutMs, fetchImpl, now]);

  return state;
}
