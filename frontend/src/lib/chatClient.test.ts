import { FakeSocket, msg, replay } from '../test/fakeSocket';
import { ChatClient, type StatusInfo } from './chatClient';
import { emptyLog, mergeMessages, type LogState } from './messageLog';
import type { ChatMessage, ServerFrame } from './types';

function setup(random: () => number = () => 0.5, extra: Partial<ConstructorParameters<typeof ChatClient<ServerFrame>>[0]> = {}) {
  let log: LogState = emptyLog();
  const frames: ServerFrame[] = [];
  const statuses: StatusInfo[] = [];
  const reconnected = vi.fn();
  const client = new ChatClient({
    url: (since) => `ws://h/ws?userId=u&username=U&room=r${since == null ? '' : `&since=${since}`}`,
    resumeSeq: () => log.lastSeq,
    onFrame: (f) => {
      frames.push(f);
      if (f.type === 'chat') log = mergeMessages(log, [f]);
    },
    onStatus: (s) => statuses.push(s),
    onReconnected: reconnected,
    createSocket: (u) => new FakeSocket(u),
    random,
    ...extra,
  });
  return { client, frames, statuses, reconnected, log: () => log };
}

const contents = (l: LogState) => l.items.map((i) => (i.kind === 'message' ? i.msg.seq : 'div'));

describe('ChatClient', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.reset();
  });
  afterEach(() => vi.useRealTimers());

  it('connects without since, goes open, ignores unparsable frames', () => {
    const t = setup();
    t.client.start();
    expect(t.client.status).toBe('connecting');
    const ws = FakeSocket.last();
    expect(ws.since).toBeNull();
    ws.open();
    expect(t.client.status).toBe('open');
    ws.onmessage?.({ data: 'not json' });
    ws.onmessage?.({ data: '{"type":"mystery"}' });
    ws.frame({ type: 'error', code: 'rate_limited', message: 'slow down' });
    expect(t.frames).toEqual([{ type: 'error', code: 'rate_limited', message: 'slow down' }]);
  });

  it('reconnects after a 1001 with full-jitter delay and resumes with since=<last seq>', () => {
    const t = setup(() => 0.5);
    t.client.start();
    const ws1 = FakeSocket.last();
    ws1.open();
    for (const s of [1, 2, 3]) ws1.frame(msg(s));
    ws1.drop(1001, 'going away');
    expect(t.client.status).toBe('reconnecting');
    expect(t.statuses.at(-1)).toMatchObject({ status: 'reconnecting', retryInMs: 250, lastClose: { code: 1001 } });
    vi.advanceTimersByTime(249);
    expect(FakeSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.instances).toHaveLength(2);
    const ws2 = FakeSocket.last();
    expect(ws2.since).toBe('3');
    expect(t.client.status).toBe('reconnecting');
    ws2.open();
    expect(t.client.status).toBe('open');
    expect(t.reconnected).toHaveBeenCalledTimes(1);
  });

  it('shows no duplicate and no gap when the server replays an overlap after reconnect', () => {
    const t = setup(() => 0);
    const all: ChatMessage[] = Array.from({ length: 8 }, (_, i) => msg(i + 1));
    t.client.start();
    const ws1 = FakeSocket.last();
    ws1.open();
    all.slice(0, 5).forEach((m) => ws1.frame(m));
    ws1.drop(1008, 'slow consumer');
    vi.advanceTimersByTime(0);
    const ws2 = FakeSocket.last();
    expect(ws2.since).toBe('5');
    ws2.open();
    // a sloppy server replays 4 and 5 again before 6..8
    all.slice(3).forEach((m) => ws2.frame(replay(m)));
    expect(contents(t.log())).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(t.log().duplicates).toBe(2);
  });

  it('backs off exponentially up to the cap while the server stays down', () => {
    const t = setup(() => 0.999999);
    t.client.start();
    FakeSocket.last().drop(1006); // never opened
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const d = t.statuses.at(-1)!.retryInMs!;
      delays.push(d);
      vi.advanceTimersByTime(d);
      FakeSocket.last().drop(1006);
    }
    expect(delays).toEqual([499, 999, 1999, 3999, 7999, 14999, 14999, 14999]);
    // the first connection never opened, so retries start from the backlog (no since)
    expect(FakeSocket.instances.every((s) => s.since === null)).toBe(true);
  });

  it('jitter draws a new random value per attempt and stays within the bounds', () => {
    const values = [0.1, 0.9, 0.3, 0.7];
    let i = 0;
    const t = setup(() => values[i++ % values.length]);
    t.client.start();
    FakeSocket.last().drop(1006);
    const got: number[] = [];
    for (let k = 0; k < 4; k++) {
      const d = t.statuses.at(-1)!.retryInMs!;
      got.push(d);
      vi.advanceTimersByTime(d);
      FakeSocket.last().drop(1006);
    }
    expect(got).toEqual([50, 900, 600, 2800]);
  });

  it('resets the attempt counter after a connection that stayed up', () => {
    const t = setup(() => 0.999999, { stableMs: 5000 });
    t.client.start();
    FakeSocket.last().drop(1006);
    vi.advanceTimersByTime(499);
    FakeSocket.last().drop(1006);
    vi.advanceTimersByTime(999);
    const ws = FakeSocket.last();
    ws.open();
    vi.advanceTimersByTime(6000);
    ws.drop(1001);
    expect(t.statuses.at(-1)!.retryInMs).toBe(499);
  });

  it('does not reset the counter on a connection that flaps right after opening', () => {
    const t = setup(() => 0.999999, { stableMs: 5000 });
    t.client.start();
    FakeSocket.last().drop(1006);
    vi.advanceTimersByTime(499);
    const ws = FakeSocket.last();
    ws.open();
    vi.advanceTimersByTime(100);
    ws.drop(1008);
    // second failure in a row: attempt 1 -> [0, 1000), not back to [0, 500)
    expect(t.statuses.at(-1)!.retryInMs).toBe(999);
  });

  it('resumes with since=0 when it was open but saw no messages', () => {
    const t = setup(() => 0);
    t.client.start();
    FakeSocket.last().open();
    FakeSocket.last().drop(1009);
    vi.advanceTimersByTime(0);
    expect(FakeSocket.last().since).toBe('0');
  });

  it('never reconnects after the user leaves', () => {
    const t = setup(() => 0);
    t.client.start();
    const ws = FakeSocket.last();
    ws.open();
    t.client.stop();
    expect(t.client.status).toBe('closed');
    expect(ws.closedByClient).toEqual({ code: 1000, reason: 'user left' });
    ws.drop(1000); // a late close event must not revive it
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('passes system messages on as messages', () => {
    const t = setup();
    t.client.start();
    const ws = FakeSocket.last();
    ws.open();
    ws.frame({ ...msg(1), type: 'system', userId: 'system', username: 'System', content: 'Deploy at 5' });
    expect(t.frames).toMatchObject([{ type: 'system', seq: 1, content: 'Deploy at 5' }]);
  });

  it('stays closed after 4003 (removed from the room) but reconnects after 4002', () => {
    const t = setup(() => 0);
    t.client.start();
    FakeSocket.last().open();
    FakeSocket.last().drop(4002, 'disconnected');
    expect(t.client.status).toBe('reconnecting');
    vi.advanceTimersByTime(1_000);
    expect(FakeSocket.instances).toHaveLength(2);
    FakeSocket.last().open();
    FakeSocket.last().drop(4003, 'unsubscribed');
    expect(t.client.status).toBe('closed');
    expect(t.statuses.at(-1)).toMatchObject({ status: 'closed', lastClose: { code: 4003 } });
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.instances).toHaveLength(2);
  });

  it('stays closed after 4001 (token expired): the same token would be refused', () => {
    const t = setup(() => 0);
    t.client.start();
    FakeSocket.last().open();
    FakeSocket.last().drop(4001, 'token_expired');
    expect(t.client.status).toBe('closed');
    expect(t.statuses.at(-1)).toMatchObject({ status: 'closed', lastClose: { code: 4001 } });
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('leaving while a retry is pending cancels it', () => {
    const t = setup(() => 0.5);
    t.client.start();
    FakeSocket.last().drop(1006);
    t.client.stop();
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(t.client.status).toBe('closed');
  });

  it('retryNow skips the wait', () => {
    const t = setup(() => 0.999999);
    t.client.start();
    FakeSocket.last().drop(1006);
    t.client.retryNow();
    expect(FakeSocket.instances).toHaveLength(2);
  });

  it('gives up on a socket that does not open in time and retries', () => {
    const t = setup(() => 0, { connectTimeoutMs: 3000 });
    t.client.start();
    const ws = FakeSocket.last();
    vi.advanceTimersByTime(3000);
    expect(ws.closedByClient).not.toBeNull();
    expect(t.client.status).toBe('reconnecting');
    vi.advanceTimersByTime(1);
    expect(FakeSocket.instances).toHaveLength(2);
  });

  it('sends only while open, as {"type":"chat","content"}', () => {
    const t = setup();
    t.client.start();
    expect(t.client.send('early')).toBe(false);
    const ws = FakeSocket.last();
    ws.open();
    expect(t.client.send('hi 😀')).toBe(true);
    expect(ws.sent.map((s) => JSON.parse(s))).toEqual([{ type: 'chat', content: 'hi 😀' }]);
  });
});
