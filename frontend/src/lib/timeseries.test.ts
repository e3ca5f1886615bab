import { addSample, columns, emptySeries } from './timeseries';
import type { AnalyticsSnapshot } from './types';

const snap = (over: Partial<AnalyticsSnapshot> = {}): AnalyticsSnapshot => ({
  totalMessages: 0,
  activeConnections: 1,
  activeUsers: 1,
  peakConnections: 1,
  messagesPerMinute: new Array(15).fill(0),
  latencyP50Ms: 0.1,
  latencyP95Ms: 0.2,
  latencyP99Ms: 0.3,
  activeUserDetails: [],
  uptimeSeconds: 1,
  serverStartTime: '2026-11-21T10:00:00.000Z',
  slowConsumerDisconnects: 0,
  ...over,
});

describe('analytics time series', () => {
  it('accumulates one sample per poll with rates from counter deltas', () => {
    let s = emptySeries();
    s = addSample(s, snap({ totalMessages: 100 }), 10_000);
    s = addSample(s, snap({ totalMessages: 150, latencyP99Ms: 2 }), 11_000);
    s = addSample(s, snap({ totalMessages: 250 }), 13_000);
    expect(s.samples.map((x) => x.t)).toEqual([10, 11, 13]);
    expect(s.samples.map((x) => x.msgRate)).toEqual([null, 50, 50]);
    expect(s.samples[1].p99).toBe(2);
  });

  it('keeps only the window (10 minutes by default)', () => {
    let s = emptySeries();
    for (let i = 0; i <= 1200; i++) s = addSample(s, snap({ totalMessages: i }), i * 1000);
    expect(s.samples[s.samples.length - 1].t).toBe(1200);
    expect(s.samples[0].t).toBe(600);
    expect(s.samples).toHaveLength(601);
  });

  it('breaks the rate on a counter reset or server restart, not negative', () => {
    let s = emptySeries();
    s = addSample(s, snap({ totalMessages: 500 }), 1000);
    s = addSample(s, snap({ totalMessages: 10 }), 2000); // counter went down
    expect(s.samples[1].msgRate).toBeNull();
    s = addSample(s, snap({ totalMessages: 20, serverStartTime: '2026-11-21T11:00:00.000Z' }), 3000);
    expect(s.samples[2].msgRate).toBeNull();
    s = addSample(s, snap({ totalMessages: 30, serverStartTime: '2026-11-21T11:00:00.000Z' }), 4000);
    expect(s.samples[3].msgRate).toBe(10);
  });

  it('ignores samples that do not move forward in time', () => {
    let s = addSample(emptySeries(), snap(), 5000);
    const same = addSample(s, snap(), 5000);
    expect(same).toBe(s);
    s = addSample(s, snap(), 4000);
    expect(s.samples).toHaveLength(1);
  });

  it('tracks persistence only when enabled, and tolerates missing extras', () => {
    let s = emptySeries();
    s = addSample(s, snap({ persistence: { enabled: false } }), 1000);
    expect(s.samples[0].queueDepth).toBeNull();
    s = addSample(s, snap({ persistence: { enabled: true, status: 'ok', written: 100, queueDepth: 7 } }), 2000);
    s = addSample(s, snap({ persistence: { enabled: true, status: 'ok', written: 160, queueDepth: 3 } }), 4000);
    expect(s.samples.map((x) => x.queueDepth)).toEqual([null, 7, 3]);
    expect(s.samples[2].writeRate).toBe(30);
    expect(columns(s.samples, ['queueDepth'])).toEqual([[1, 2, 4], [null, 7, 3]]);
  });
});
