import { afterEach, describe, expect, it, vi } from 'vitest';
import { dmName, parseMembers, roomsApi, RoomsApiError } from './roomsApi';
import { setToken } from './token';

const ROOM = {
  roomId: 'r-0123456789abcdef',
  name: 'Team',
  visibility: 'private',
  owner: 'alice',
  createdAt: '2026-12-03T13:00:00.000Z',
  memberCount: 2,
  members: [
    { userId: 'alice', role: 'admin' },
    { userId: 'bob', role: 'member' },
  ],
  seq: 0,
  epoch: 'e1',
};

const answer = (status: number, body?: unknown) =>
  vi.fn((_url: RequestInfo | URL, _init?: RequestInit) =>
    Promise.resolve(new Response(body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body), { status })),
  );
type Mock = ReturnType<typeof answer>;
const api = (f: Mock) => roomsApi('http://h', { fetchImpl: f as unknown as typeof fetch });
const req = (f: Mock, i = 0) => {
  const [url, init] = f.mock.calls[i];
  return { url: String(url), method: init?.method, headers: init?.headers as Record<string, string>, body: init?.body === undefined ? undefined : JSON.parse(String(init.body)) };
};

describe('roomsApi', () => {
  afterEach(() => setToken(null));

  it('createRoom posts the room as JSON with the Bearer token and answers the room', async () => {
    setToken('a.b.c');
    const f = answer(201, ROOM);
    const got = await api(f).createRoom({ name: 'Team', visibility: 'private', members: ['bob'] });
    expect(got).toEqual(ROOM);
    expect(req(f)).toEqual({
      url: 'http://h/api/rooms',
      method: 'POST',
      headers: { Accept: 'application/json', Authorization: 'Bearer a.b.c', 'Content-Type': 'application/json' },
      body: { name: 'Team', visibility: 'private', members: ['bob'] },
    });
  });

  it('createRoom sends a roomId only when given one, and no empty members list', async () => {
    const f = answer(201, ROOM);
    await api(f).createRoom({ name: 'Team', visibility: 'public', members: [] });
    await api(f).createRoom({ roomId: 'team', name: 'Team', visibility: 'public' });
    expect(req(f, 0).body).toEqual({ name: 'Team', visibility: 'public' });
    expect(req(f, 1).body).toEqual({ roomId: 'team', name: 'Team', visibility: 'public' });
    // no token: no Authorization header
    expect(req(f, 0).headers.Authorization).toBeUndefined();
  });

  it('getRoom, inviteMember, removeMember and deleteRoom use their method and path, ids escaped', async () => {
    setToken('tok');
    const f = answer(200, ROOM);
    const a = api(f);
    await a.getRoom('a b');
    await a.inviteMember('r-1', 'bob');
    await a.inviteMember('r-1', 'carol/x', 'admin');
    await a.removeMember('r-1', 'bob');
    const calls = f.mock.calls.map((_, i) => req(f, i));
    expect(calls.map((c) => [c.method, c.url, c.body])).toEqual([
      ['GET', 'http://h/api/rooms/a%20b', undefined],
      ['PUT', 'http://h/api/rooms/r-1/members/bob', { role: 'member' }],
      ['PUT', 'http://h/api/rooms/r-1/members/carol%2Fx', { role: 'admin' }],
      ['DELETE', 'http://h/api/rooms/r-1/members/bob', undefined],
    ]);
    for (const c of calls) expect(c.headers.Authorization).toBe('Bearer tok');
    expect(calls[0].headers['Content-Type']).toBeUndefined();
    expect(calls[1].headers['Content-Type']).toBe('application/json');

    const d = answer(204);
    await expect(api(d).deleteRoom('r-1')).resolves.toBeUndefined();
    expect([req(d).method, req(d).url, req(d).body]).toEqual(['DELETE', 'http://h/api/rooms/r-1', undefined]);
  });

  it('userRooms lists the user\'s rooms, skipping entries it cannot use', async () => {
    setToken('tok');
    const f = answer(200, {
      userId: 'alice',
      rooms: [
        { roomId: 'r-1', name: 'Team', visibility: 'private', role: 'admin', seq: 4, lastRead: 1, unread: 3 },
        { roomId: 'r-2', name: 'alice & bob', visibility: 'group', role: 'member', seq: 0, lastRead: 0, unread: 0 },
        { name: 'no id', visibility: 'public' },
        { roomId: 'r-3', visibility: 'secret' },
      ],
    });
    const rooms = await api(f).userRooms('alice');
    expect(req(f)).toMatchObject({ url: 'http://h/api/users/alice/rooms', method: 'GET', headers: { Authorization: 'Bearer tok' } });
    expect(rooms).toEqual([
      { roomId: 'r-1', name: 'Team', visibility: 'private', role: 'admin', seq: 4, lastRead: 1, unread: 3 },
      { roomId: 'r-2', name: 'alice & bob', visibility: 'group', role: 'member', seq: 0, lastRead: 0, unread: 0 },
    ]);
    await expect(api(answer(200, { userId: 'alice' })).userRooms('alice')).rejects.toMatchObject({ code: 'invalid_response' });
  });

  it('directMessage makes a group room "<me> & <other>" with the other as member', async () => {
    const f = answer(201, { ...ROOM, visibility: 'group', name: 'alice & bob' });
    const got = await api(f).directMessage('alice', 'bob');
    expect(got.visibility).toBe('group');
    expect(req(f)).toMatchObject({ url: 'http://h/api/rooms', method: 'POST', body: { name: 'alice & bob', visibility: 'group', members: ['bob'] } });
    expect(req(f).body).not.toHaveProperty('roomId');
    expect(Array.from(dmName('a'.repeat(80), 'b'.repeat(80)))).toHaveLength(100);
  });

  it('a refusal is a RoomsApiError with the server\'s code, message and status', async () => {
    for (const [status, code, message] of [
      [409, 'room_exists', 'room r-1 exists'],
      [403, 'forbidden', 'not a member'],
      [404, 'room_not_found', 'no room r-9'],
      [403, 'auth_disabled', 'token auth is off'],
    ] as const) {
      const f = answer(status, { error: code, message });
      const e = await api(f).getRoom('r-1').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(RoomsApiError);
      expect(e).toMatchObject({ code, message, status });
    }
    // the code without a message: a text of our own
    await expect(api(answer(400, { error: 'invalid_member' })).removeMember('r-1', 'alice')).rejects.toMatchObject({ code: 'invalid_member', message: 'The owner cannot leave the room.' });
    // no JSON at all
    await expect(api(answer(502, '<html>bad gateway</html>')).deleteRoom('r-1')).rejects.toMatchObject({ code: 'http_502', status: 502 });
    // a 200 that is not a room
    await expect(api(answer(200, { roomId: 7 })).getRoom('r-1')).rejects.toMatchObject({ code: 'invalid_response' });
  });

  it('no answer is a network error; a slow one a timeout', async () => {
    const down = vi.fn(() => Promise.reject(new TypeError('Failed to fetch')));
    await expect(roomsApi('', { fetchImpl: down as unknown as typeof fetch }).getRoom('r')).rejects.toMatchObject({ code: 'network', status: null });
    const slow = vi.fn((_u: RequestInfo | URL, init?: RequestInit) => new Promise<Response>((_, rej) => init?.signal?.addEventListener('abort', () => rej(new DOMException('aborted', 'AbortError')))));
    await expect(roomsApi('', { fetchImpl: slow as unknown as typeof fetch, timeoutMs: 10 }).getRoom('r')).rejects.toMatchObject({ code: 'timeout' });
    expect(String(slow.mock.calls[0][0])).toBe('/api/rooms/r');
  });
});

describe('parseMembers', () => {
  it('splits on commas, trims, once each', () => {
    expect(parseMembers(' bob, carol ,,bob, ')).toEqual(['bob', 'carol']);
    expect(parseMembers('')).toEqual([]);
  });
});
