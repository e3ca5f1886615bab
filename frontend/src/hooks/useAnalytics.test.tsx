import { act, renderHook } from '@testing-library/react';
import type { ServerEndpoints } from '../lib/config';
import { useAnalytics } from './useAnalytics';

const ep: ServerEndpoints = { http: 'http://h', ws: 'ws://h', label: 'h' };

function snapshot(total: number) {
  return {
    totalMessages: total,
    activeConnections: 2,
    activeUsers: 1,
    peakConnections: 3,
    messagesPerMinute: new Array(15).fill(0),
    latencyP50Ms: 0.1,
    latencyP95Ms: 0.2,
    latencyP99Ms: 0.3,
    activeUserDetails: [],
    uptimeSeconds: 5,
    serverStartTime: '2026-11-21T10:00:00.000Z',
    slowConsumerDisconnects: 0,
  };
}

function setVisibility(v: 'visible' | 'hidden') {
  Object.defineProperty(document, 'visibilityState', { value: v, configurable: true });
  document.dispatchEvent(new Event('visibilitychange'));
}

describe('useAnalytics', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    setVisibility('visible');
  });
  afterEach(() => {
    vi.useRealTimers();
    setVisibility('visible');
  });

  it('keeps one request in flight, polls about once a second, and accumulates samples', async () => {
    const pending: ((r: Response) => void)[] = [];
    const fetchImpl = vi.fn(() => new Promise<Response>((res) => pending.push(res)));
    const { result, unmount } = renderHook(() => useAnalytics(true, ep, { fetchImpl: fetchImpl as unknown as typeof fetch, timeoutMs: 60_000 }));
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    expect(fetchImpl.mock.calls[0]).toEqual(['http://h/api/analytics', expect.anything()]);
    // a slow response: no second request while the first is outstanding
    await act(() => vi.advanceTimersByTimeAsync(3500));
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    await act(async () => pending[0](new Response(JSON.stringify(snapshot(10)))));
    expect(result.current.snapshot?.totalMessages).toBe(10);
    // it took longer than the interval: the next one starts at once
    await act(() => vi.advanceTimersByTimeAsync(0));
    expect(fetchImpl).toHaveBeenCalledTimes(2);
    await act(() => vi.advanceTimersByTimeAsync(100));
    await act(async () => pending[1](new Response(JSON.stringify(snapshot(25)))));
    // a fast response (100 ms): the next waits for the rest of the second
    await act(() => vi.advanceTimersByTimeAsync(800));
    expect(fetchImpl).toHaveBeenCalledTimes(2);
    await act(() => vi.advanceTimersByTimeAsync(150));
    expect(fetchImpl).toHaveBeenCalledTimes(3);
    expect(result.current.series.samples.map((s) => s.totalMessages)).toEqual([10, 25]);
    unmount();
  });

  it('pauses while the tab is hidden and resumes when visible', async () => {
    const fetchImpl = vi.fn(() => Promise.resolve(new Response(JSON.stringify(snapshot(1)))));
    const { result, unmount } = renderHook(() => useAnalytics(true, ep, { fetchImpl: fetchImpl as unknown as typeof fetch }));
    await act(() => vi.advanceTimersByTimeAsync(10));
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    act(() => setVisibility('hidden'));
    await act(() => vi.advanceTimersByTimeAsync(10_000));
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    expect(result.current.paused).toBe(true);
    act(() => setVisibility('visible'));
    await act(() => vi.advanceTimersByTimeAsync(10));
    expect(fetchImpl).toHaveBeenCalledTimes(2);
    expect(result.current.paused).toBe(false);
    unmount();
  });

  it('reports errors, keeps the last snapshot, and keeps polling', async () => {
    let n = 0;
    const fetchImpl = vi.fn(() => {
      n++;
      if (n === 2) return Promise.resolve(new Response('oops', { status: 503 }));
      return Promise.resolve(new Response(JSON.stringify(snapshot(n))));
    });
    const { result, unmount } = renderHook(() => useAnalytics(true, ep, { fetchImpl: fetchImpl as unknown as typeof fetch }));
    await act(() => vi.advanceTimersByTimeAsync(10));
    expect(result.current.snapshot?.totalMessages).toBe(1);
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(result.current.error).toBe('HTTP 503');
    expect(result.current.snapshot?.totalMessages).toBe(1);
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(result.current.error).toBeNull();
    expect(result.current.snapshot?.totalMessages).toBe(3);
    unmount();
  });

  it('does not poll while inactive', async () => {
    const fetchImpl = vi.fn();
    const { unmount } = renderHook(() => useAnalytics(false, ep, { fetchImpl: fetchImpl as unknown as typeof fetch }));
    await act(() => vi.advanceTimersByTimeAsync(5000));
    expect(fetchImpl).not.toHaveBeenCalled();
    unmount();
  });
});
