import { act, renderHook, waitFor } from '@testing-library/react';
import { FakeSocket, msg, replay } from '../test/fakeSocket';
import type { ServerEndpoints } from '../lib/config';
import { presenceCount, type Presence } from '../lib/presence';
import type { ChatMessage } from '../lib/types';
import { PRESENCE_REFRESH_MS, useChat, type Session } from './useChat';

const ep: ServerEndpoints = { http: 'http://h', ws: 'ws://h', label: 'h' };
const session: Session = { userId: 'me', username: 'Me', room: 'r' };

function jsonResponse(body: unknown) {
  return Promise.resolve(new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } }));
}

let history: ChatMessage[] = [];
type PresentUser = { userId: string; username: string; since: string };
const since = '2026-11-21T09:00:00.000Z';
let present: PresentUser[] = [];
let online: number | null = null; // null: as many as `present`
let presenceGate: Promise<void> | null = null; // while set, presence answers wait for it
const fetchMock = vi.fn((url: string) => {
  if (url.endsWith('/api/analytics')) {
    // not where presence comes from any more
    return jsonResponse({
      totalMessages: 0,
      activeUserDetails: [{ clientId: 'c9', userId: 'ghost', username: 'Ghost', roomId: 'r', joinedAt: '' }],
    });
  }
  if (url.endsWith('/api/rooms/r/presence')) {
    return (presenceGate ?? Promise.resolve()).then(() =>
      jsonResponse({ roomId: 'r', online: online ?? present.length, users: present, truncated: (online ?? 0) > present.length }),
    );
  }
  if (url.includes('/api/rooms/r/messages')) return jsonResponse({ roomId: 'r', count: history.length, messages: history });
  return Promise.resolve(new Response('{}', { status: 404 }));
});
const presenceFetches = () => fetchMock.mock.calls.filter(([u]) => u.endsWith('/presence')).length;
const keys = (p: Presence) => [...p.members.keys()].sort();

const seqs = (items: { kind: string; msg?: { seq: number } }[]) => items.map((i) => (i.kind === 'message' ? i.msg!.seq : 'div'));

beforeEach(() => {
  FakeSocket.reset();
  history = [];
  present = [
    { userId: 'bob', username: 'Bob', since },
    { userId: 'me', username: 'Me', since },
  ];
  online = null;
  presenceGate = null;
  fetchMock.mockClear();
  vi.stubGlobal('WebSocket', FakeSocket);
  vi.stubGlobal('fetch', fetchMock);
  vi.spyOn(Math, 'random').mockReturnValue(0); // retry at once
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('useChat', () => {
  it('shows backlog + live frames, seeds presence, reports errors inline, and resumes without duplicates', async () => {
    const { result, unmount } = renderHook(() => useChat(session, ep));
    const ws1 = FakeSocket.last();
    expect(ws1.url).toBe('ws://h/ws?userId=me&username=Me&room=r');
    act(() => ws1.open());
    await waitFor(() => expect(result.current.status.status).toBe('open'));
    // presence seeded from the room's presence endpoint, not from analytics
    await waitFor(() => expect(keys(result.current.presence)).toEqual(['bob', 'me']));
    expect(fetchMock.mock.calls.map(([u]) => u)).toContain('http://h/api/rooms/r/presence');
    expect(fetchMock.mock.calls.map(([u]) => u)).not.toContain('http://h/api/analytics');

    const msgs = Array.from({ length: 6 }, (_, i) => msg(i + 1, { roomId: 'r' }));
    act(() => {
      msgs.slice(0, 3).forEach((m) => ws1.frame(m));
      ws1.frame({ type: 'join', roomId: 'r', userId: 'zoe', username: 'Zoe', timestamp: msgs[2].timestamp });
      ws1.frame({ type: 'error', code: 'rate_limited', message: 'slow down' });
    });
    await waitFor(() => expect(seqs(result.current.log.items)).toEqual([1, 2, 3]));
    expect(result.current.presence.members.get('zoe')?.username).toBe('Zoe');
    expect(result.current.errors.map((e) => e.code)).toEqual(['rate_limited']);
    // an error never becomes a chat message
    expect(result.current.log.items).toHaveLength(3);

    history = msgs.slice(0, 3);
    act(() => ws1.drop(1001, 'going away'));
    expect(result.current.status.status).toBe('reconnecting');
    await waitFor(() => expect(FakeSocket.instances).toHaveLength(2));
    const ws2 = FakeSocket.last();
    expect(ws2.since).toBe('3');
    act(() => {
      ws2.open();
      // overlap: 2 and 3 again, then new ones
      msgs.slice(1).forEach((m) => ws2.frame(replay(m)));
    });
    await waitFor(() => expect(seqs(result.current.log.items)).toEqual([1, 2, 3, 4, 5, 6]));
    expect(result.current.status.status).toBe('open');

    // sending goes over the current socket
    act(() => {
      expect(result.current.send('hello')).toBe(true);
    });
    expect(JSON.parse(ws2.sent[0])).toEqual({ type: 'chat', content: 'hello' });

    unmount();
    expect(ws2.closedByClient?.code).toBe(1000);
  });

  it('after a restart of a server without a durable store, fills the new sequence from history', async () => {
    const { result } = renderHook(() => useChat(session, ep));
    const ws1 = FakeSocket.last();
    act(() => {
      ws1.open();
      [41, 42].forEach((s) => ws1.frame(msg(s, { roomId: 'r' })));
    });
    await waitFor(() => expect(seqs(result.current.log.items)).toEqual([41, 42]));
    // server restarts: sequence begins again at 1, and two messages were sent before we got back
    history = [msg(1, { roomId: 'r' }), msg(2, { roomId: 'r' })];
    act(() => ws1.drop(1001));
    await waitFor(() => expect(FakeSocket.instances).toHaveLength(2));
    const ws2 = FakeSocket.last();
    expect(ws2.since).toBe('42'); // replays nothing on a fresh server
    act(() => ws2.open());
    await waitFor(() => expect(seqs(result.current.log.items)).toEqual([41, 42, 'div', 1, 2]));
    act(() => ws2.frame(msg(3, { roomId: 'r' })));
    await waitFor(() => expect(seqs(result.current.log.items)).toEqual([41, 42, 'div', 1, 2, 3]));
    // and the next resume point belongs to the new sequence
    act(() => ws2.drop(1006));
    await waitFor(() => expect(FakeSocket.instances).toHaveLength(3));
    expect(FakeSocket.last().since).toBe('3');
  });

  it('refreshes presence from the endpoint periodically: no frames needed, the snapshot wins over older frames', async () => {
    // only the refresh interval is faked; vi.waitFor polls with the real timers (and
    // moves the fake clock by its 50 ms poll), testing-library's waitFor would not poll
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { result } = renderHook(() => useChat(session, ep));
    const ws = FakeSocket.last();
    act(() => ws.open());
    await vi.waitFor(() => expect(keys(result.current.presence)).toEqual(['bob', 'me']));
    // a join we saw before the next fetch starts is older than its answer
    act(() => ws.frame({ type: 'join', roomId: 'r', userId: 'old', username: 'Old', timestamp: since }));
    await vi.waitFor(() => expect(keys(result.current.presence)).toEqual(['bob', 'me', 'old']));
    // a big room: bob and old left, zed came, and nobody got a frame for it
    present = [
      { userId: 'me', username: 'Me', since },
      { userId: 'zed', username: 'Zed', since },
    ];
    online = 1200;
    expect(presenceFetches()).toBe(1);
    act(() => vi.advanceTimersByTime(PRESENCE_REFRESH_MS));
    expect(presenceFetches()).toBe(2);
    await vi.waitFor(() => expect(keys(result.current.presence)).toEqual(['me', 'zed']));
    expect(presenceCount(result.current.presence)).toBe(1200);

    // a join still waiting to be rendered when the next refresh starts (and whose user
    // that answer lists) is counted once: the one leave that follows removes the user
    online = null;
    present = [...present, { userId: 'kim', username: 'Kim', since }];
    act(() => {
      ws.frame({ type: 'join', roomId: 'r', userId: 'kim', username: 'Kim', timestamp: since });
      vi.advanceTimersByTime(PRESENCE_REFRESH_MS);
    });
    await vi.waitFor(() => expect(presenceFetches()).toBe(3));
    await vi.waitFor(() => expect(result.current.presence.members.get('kim')?.connections).toBe(1));
    await new Promise((r) => setTimeout(r, 60)); // past the 40 ms render batch
    act(() => ws.frame({ type: 'leave', roomId: 'r', userId: 'kim', username: 'Kim', timestamp: since }));
    await vi.waitFor(() => expect(keys(result.current.presence)).toEqual(['me', 'zed']));
  });

  it('lets join/leave frames that arrive while a presence fetch is in flight win for their users', async () => {
    let release!: () => void;
    presenceGate = new Promise<void>((r) => (release = r));
    const { result } = renderHook(() => useChat(session, ep));
    const ws = FakeSocket.last();
    act(() => ws.open());
    await waitFor(() => expect(presenceFetches()).toBe(1));
    // the server took its snapshot (bob, carl and me) before these; they reach us before its answer
    present = [
      { userId: 'bob', username: 'Bob', since },
      { userId: 'carl', username: 'Carl', since },
      { userId: 'me', username: 'Me', since },
    ];
    act(() => {
      ws.frame({ type: 'join', roomId: 'r', userId: 'bob', username: 'Bob', timestamp: since });
      ws.frame({ type: 'join', roomId: 'r', userId: 'zoe', username: 'Zoe', timestamp: since });
      ws.frame({ type: 'leave', roomId: 'r', userId: 'bob', username: 'Bob', timestamp: since });
      // another tab of ours closed: we are still here
      ws.frame({ type: 'leave', roomId: 'r', userId: 'me', username: 'Me', timestamp: since });
    });
    await waitFor(() => expect(keys(result.current.presence)).toEqual(['me', 'zoe']));
    act(() => release());
    // the answer is merged (carl, who had no frame, comes from it), and the frames
    // stand for their users: bob stays gone, zoe stays; self is listed
    await waitFor(() => expect(keys(result.current.presence)).toEqual(['carl', 'me', 'zoe']));
    expect(presenceCount(result.current.presence)).toBe(3);
  });

  it('does nothing without a session and closes on leave', async () => {
    const { result, rerender } = renderHook(({ s }: { s: Session | null }) => useChat(s, ep), { initialProps: { s: null as Session | null } });
    expect(FakeSocket.instances).toHaveLength(0);
    expect(result.current.status.status).toBe('closed');
    rerender({ s: session });
    act(() => FakeSocket.last().open());
    await waitFor(() => expect(result.current.status.status).toBe('open'));
    rerender({ s: null });
    expect(result.current.status.status).toBe('closed');
    await new Promise((r) => setTimeout(r, 50));
    expect(FakeSocket.instances).toHaveLength(1);
  });
});
