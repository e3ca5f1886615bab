import { act, renderHook, waitFor } from '@testing-library/react';
import { FakeSocket, msg, replay } from '../test/fakeSocket';
import type { ServerEndpoints } from '../lib/config';
import type { ChatMessage } from '../lib/types';
import { useChat, type Session } from './useChat';

const ep: ServerEndpoints = { http: 'http://h', ws: 'ws://h', label: 'h' };
const session: Session = { userId: 'me', username: 'Me', room: 'r' };

function jsonResponse(body: unknown) {
  return Promise.resolve(new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } }));
}

let history: ChatMessage[] = [];
const fetchMock = vi.fn((url: string) => {
  if (url.endsWith('/api/analytics')) {
    return jsonResponse({
      totalMessages: 0,
      activeUserDetails: [
        { clientId: 'c1', userId: 'bob', username: 'Bob', roomId: 'r', joinedAt: '' },
        { clientId: 'c2', userId: 'me', username: 'Me', roomId: 'r', joinedAt: '' },
        { clientId: 'c3', userId: 'eve', username: 'Eve', roomId: 'elsewhere', joinedAt: '' },
      ],
    });
  }
  if (url.includes('/api/rooms/r/messages')) return jsonResponse({ roomId: 'r', count: history.length, messages: history });
  return Promise.resolve(new Response('{}', { status: 404 }));
});

const seqs = (items: { kind: string; msg?: { seq: number } }[]) => items.map((i) => (i.kind === 'message' ? i.msg!.seq : 'div'));

beforeEach(() => {
  FakeSocket.reset();
  history = [];
  vi.stubGlobal('WebSocket', FakeSocket);
  vi.stubGlobal('fetch', fetchMock);
  vi.spyOn(Math, 'random').mockReturnValue(0); // retry at once
});
afterEach(() => vi.unstubAllGlobals());

describe('useChat', () => {
  it('shows backlog + live frames, seeds presence, reports errors inline, and resumes without duplicates', async () => {
    const { result, unmount } = renderHook(() => useChat(session, ep));
    const ws1 = FakeSocket.last();
    expect(ws1.url).toBe('ws://h/ws?userId=me&username=Me&room=r');
    act(() => ws1.open());
    await waitFor(() => expect(result.current.status.status).toBe('open'));
    // presence seeded from analytics (this room only)
    await waitFor(() => expect([...result.current.presence.keys()].sort()).toEqual(['bob', 'me']));

    const msgs = Array.from({ length: 6 }, (_, i) => msg(i + 1, { roomId: 'r' }));
    act(() => {
      msgs.slice(0, 3).forEach((m) => ws1.frame(m));
      ws1.frame({ type: 'join', roomId: 'r', userId: 'zoe', username: 'Zoe', timestamp: msgs[2].timestamp });
      ws1.frame({ type: 'error', code: 'rate_limited', message: 'slow down' });
    });
    await waitFor(() => expect(seqs(result.current.log.items)).toEqual([1, 2, 3]));
    expect(result.current.presence.get('zoe')?.username).toBe('Zoe');
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
