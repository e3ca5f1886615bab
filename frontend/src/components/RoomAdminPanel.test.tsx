import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { ServerEndpoints } from '../lib/config';
import { setToken } from '../lib/token';
import { FakeSocket } from '../test/fakeSocket';
import { useRoomAdmin } from '../hooks/useRoomAdmin';
import { useV2Chat, type V2Session } from '../hooks/useV2Chat';
import { RoomsView } from './RoomsView';

const ep: ServerEndpoints = { http: 'http://h', ws: 'ws://h', label: 'h' };
const session: V2Session = { userId: 'me', username: 'Me', rooms: ['lobby'] };
const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
const TOKEN = `${b64({ alg: 'HS256' })}.${b64({ sub: 'me', name: 'Me' })}.sig`;

function Harness({ me = 'me' }: { me?: string | null }) {
  const chat = useV2Chat(session, undefined, ep);
  const admin = useRoomAdmin(chat, me);
  return <RoomsView chat={chat} admin={admin} username="Me" onLeave={() => {}} />;
}

const room = (roomId: string, name: string, visibility = 'private', members = [{ userId: 'me', role: 'admin' }]) => ({
  roomId,
  name,
  visibility,
  owner: 'me',
  createdAt: '2026-12-03T13:00:00.000Z',
  memberCount: members.length,
  members,
  seq: 0,
  epoch: 'e',
});
const reply = (status: number, body?: unknown) => Promise.resolve(new Response(body === undefined ? null : JSON.stringify(body), { status }));

type Route = (method: string, url: string, body: unknown) => Promise<Response> | undefined;
let route: Route = () => undefined;
const fetchMock = vi.fn((url: string, init?: RequestInit) => {
  const method = init?.method ?? 'GET';
  const body = init?.body ? JSON.parse(String(init.body)) : undefined;
  const got = route(method, url, body);
  if (got) return got;
  if (method === 'GET' && url === 'http://h/api/users/me/rooms')
    return reply(200, { userId: 'me', rooms: [{ roomId: 'r-dm', name: 'bob & me', visibility: 'group', role: 'member', seq: 0, lastRead: 0, unread: 0 }] });
  if (url.endsWith('/presence')) return reply(200, { online: 1, truncated: false, users: [] });
  return reply(404, { error: 'not_found', message: 'no route' });
});
const calls = () => fetchMock.mock.calls.map(([url, init]) => [init?.method ?? 'GET', url, init?.body ? JSON.parse(String(init.body)) : undefined] as const);
const apiCalls = () => calls().filter(([m, u]) => !u.endsWith('/presence') && !(m === 'GET' && u.includes('/api/presence')));

const sent = (ws: FakeSocket) => ws.sent.map((s) => JSON.parse(s) as Record<string, unknown>);
const subId = (ws: FakeSocket, r: string) => sent(ws).filter((f) => f.type === 'subscribe' && f.roomId === r).at(-1)!.id;
const rooms = () => screen.queryAllByTestId('room-item').map((b) => b.dataset.room);
const item = (r: string) => screen.getAllByTestId('room-item').find((b) => b.dataset.room === r)!;
const notices = () => screen.queryAllByTestId('inline-error').map((e) => [e.dataset.code, e.querySelector('.err-text')?.textContent]);

function connect() {
  const ws = FakeSocket.last();
  act(() => {
    ws.open();
    ws.frame({ type: 'hello', proto: 2, userId: 'me', username: 'Me', connectionId: 'k', node: 'n', limits: { subscriptions: 64 } });
    ws.frame({ type: 'subscribed', id: subId(ws, 'lobby'), roomId: 'lobby', epoch: 'e', seq: 0, recovered: false, lastRead: 0, online: 1 });
  });
  return ws;
}
const subscribedTo = (ws: FakeSocket, r: string) =>
  act(() => ws.frame({ type: 'subscribed', id: subId(ws, r), roomId: r, epoch: 'e', seq: 0, recovered: false, lastRead: 0, online: 1 }));

beforeEach(() => {
  vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockReturnValue(600);
  vi.spyOn(HTMLElement.prototype, 'clientWidth', 'get').mockReturnValue(800);
  FakeSocket.reset();
  fetchMock.mockClear();
  route = () => undefined;
  setToken(TOKEN);
  vi.stubGlobal('WebSocket', FakeSocket);
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => {
  vi.unstubAllGlobals();
  setToken(null);
});

describe('rooms management in the v2 view', () => {
  it('once connected, adds the rooms the server lists for us (named), without leaving the room on screen', async () => {
    render(<Harness />);
    expect(screen.getByTestId('rooms-panel').dataset.listed).toBe('pending');
    connect();
    await waitFor(() => expect(rooms()).toEqual(['lobby', 'r-dm']));
    const [, init] = fetchMock.mock.calls.find(([u]) => u === 'http://h/api/users/me/rooms')!;
    expect((init?.headers as Record<string, string>).Authorization).toBe(`Bearer ${TOKEN}`);
    expect(screen.getByTestId('rooms-panel').dataset.listed).toBe('ok');
    expect(item('r-dm').querySelector('.room-name')?.textContent).toBe('bob & me');
    expect(screen.getByTestId('v2-room-title').textContent).toBe('#lobby');
    const ws = FakeSocket.last();
    expect(sent(ws).filter((f) => f.type === 'subscribe').map((f) => f.roomId)).toEqual(['lobby', 'r-dm']);
  });

  it('creates a room (name, visibility, members) and opens it; invites to it; refusals show the server\'s code and message', async () => {
    route = (m, u, body) => {
      if (m === 'POST' && u === 'http://h/api/rooms') return reply(201, room('r-new', (body as { name: string }).name, 'group'));
      if (m === 'PUT' && u === 'http://h/api/rooms/r-new/members/bob') return reply(200, room('r-new', 'Team'));
      if (m === 'PUT' && u === 'http://h/api/rooms/r-new/members/zed') return reply(403, { error: 'forbidden', message: 'only a room admin may add members' });
      return undefined;
    };
    render(<Harness />);
    const ws = connect();
    await waitFor(() => expect(rooms()).toContain('r-dm'));
    fireEvent.change(screen.getByTestId('room-create-name'), { target: { value: '  Team  ' } });
    fireEvent.change(screen.getByTestId('room-create-visibility'), { target: { value: 'group' } });
    fireEvent.change(screen.getByTestId('room-create-members'), { target: { value: 'bob, carol' } });
    fireEvent.click(screen.getByTestId('room-create-submit'));
    await waitFor(() => expect(screen.getByTestId('v2-room-title').textContent).toBe('#r-new'));
    expect(apiCalls().find(([m]) => m === 'POST')).toEqual(['POST', 'http://h/api/rooms', { name: 'Team', visibility: 'group', members: ['bob', 'carol'] }]);
    expect(sent(ws).filter((f) => f.type === 'subscribe').map((f) => f.roomId)).toContain('r-new');
    expect(screen.getByTestId('v2-room-name').textContent).toContain('Team');
    expect((screen.getByTestId('room-create-name') as HTMLInputElement).value).toBe('');
    expect(screen.getByTestId('room-admin-done').textContent).toBe('Created Team.');

    fireEvent.change(screen.getByTestId('room-invite-user'), { target: { value: 'bob' } });
    fireEvent.click(screen.getByTestId('room-invite-submit'));
    await waitFor(() => expect(screen.getByTestId('room-admin-done').textContent).toBe('Invited bob to Team.'));
    expect(apiCalls().at(-1)).toEqual(['PUT', 'http://h/api/rooms/r-new/members/bob', { role: 'member' }]);

    fireEvent.change(screen.getByTestId('room-invite-user'), { target: { value: 'zed' } });
    fireEvent.click(screen.getByTestId('room-invite-submit'));
    await waitFor(() => expect(notices()).toEqual([['forbidden', 'only a room admin may add members']]));
    expect((screen.getByTestId('room-invite-user') as HTMLInputElement).value).toBe('zed'); // kept, to fix
  });

  it('leaves the open room: removes us as a member, drops it, and the server\'s "removed" for it brings no notice', async () => {
    route = (m, u) => (m === 'DELETE' && u === 'http://h/api/rooms/r-dm/members/me' ? reply(200, room('r-dm', 'bob & me')) : undefined);
    render(<Harness />);
    const ws = connect();
    await waitFor(() => expect(rooms()).toContain('r-dm'));
    subscribedTo(ws, 'r-dm');
    fireEvent.click(item('r-dm'));
    expect(screen.queryByTestId('room-delete')).toBeNull(); // a member, not an admin
    fireEvent.click(screen.getByTestId('room-leave'));
    // the server's frame may come before the HTTP answer
    act(() => ws.frame({ type: 'unsubscribed', roomId: 'r-dm', reason: 'removed' }));
    await waitFor(() => expect(screen.getByTestId('room-admin-done').textContent).toBe('You left bob & me.'));
    expect(apiCalls().at(-1)).toEqual(['DELETE', 'http://h/api/rooms/r-dm/members/me', undefined]);
    expect(rooms()).toEqual(['lobby']);
    expect(screen.getByTestId('v2-room-title').textContent).toBe('#lobby');
    expect(notices()).toEqual([]);
  });

  it('the owner cannot leave: the refusal is shown and the room stays', async () => {
    route = (m, u) => (m === 'DELETE' && u === 'http://h/api/rooms/lobby/members/me' ? reply(400, { error: 'invalid_member', message: 'the owner cannot leave' }) : undefined);
    render(<Harness />);
    const ws = connect();
    await waitFor(() => expect(rooms()).toContain('r-dm'));
    fireEvent.click(screen.getByTestId('room-leave'));
    await waitFor(() => expect(notices()).toEqual([['invalid_member', 'the owner cannot leave']]));
    expect(rooms()).toEqual(['lobby', 'r-dm']);
    expect(sent(ws).filter((f) => f.type === 'unsubscribe')).toEqual([]);
  });

  it('a room we are removed from, or that is deleted, leaves the list with a notice saying why', async () => {
    render(<Harness />);
    const ws = connect();
    await waitFor(() => expect(rooms()).toContain('r-dm'));
    subscribedTo(ws, 'r-dm');
    act(() => ws.frame({ type: 'unsubscribed', roomId: 'r-dm', reason: 'removed' }));
    await waitFor(() => expect(rooms()).toEqual(['lobby']));
    expect(notices()).toEqual([['removed', 'You were removed from #r-dm.']]);
    act(() => ws.frame({ type: 'unsubscribed', roomId: 'lobby', reason: 'room_deleted' }));
    await waitFor(() => expect(rooms()).toEqual([]));
    // no room left: the notices are still on screen
    expect(notices()).toEqual([
      ['removed', 'You were removed from #r-dm.'],
      ['room_deleted', '#lobby was deleted.'],
    ]);
  });

  it('a subscribe refused as forbidden says we are not a member of the room', async () => {
    render(<Harness />);
    const ws = connect();
    fireEvent.change(screen.getByTestId('add-room-input'), { target: { value: 'r-secret' } });
    fireEvent.click(screen.getByTestId('add-room'));
    act(() => ws.frame({ type: 'error', id: subId(ws, 'r-secret'), roomId: 'r-secret', code: 'forbidden', message: 'forbidden' }));
    await waitFor(() => expect(notices()).toEqual([['forbidden', 'you are not a member of #r-secret']]));
    // the error bar is told at once, the room list with the client's next snapshot (30 ms batches)
    await waitFor(() => expect(item('r-secret').dataset.state).toBe('failed'));
    expect(screen.getByTestId('room-error').textContent).toContain('you are not a member of #r-secret');
  });

  it('messages a user directly: a group room "<me> & <other>", opened', async () => {
    route = (m, u) => (m === 'POST' && u === 'http://h/api/rooms' ? reply(201, room('r-dm2', 'me & bob', 'group', [{ userId: 'me', role: 'admin' }, { userId: 'bob', role: 'member' }])) : undefined);
    render(<Harness />);
    connect();
    await waitFor(() => expect(rooms()).toContain('r-dm'));
    fireEvent.change(screen.getByTestId('dm-user'), { target: { value: 'bob' } });
    fireEvent.click(screen.getByTestId('dm-submit'));
    await waitFor(() => expect(screen.getByTestId('v2-room-title').textContent).toBe('#r-dm2'));
    expect(apiCalls().find(([m]) => m === 'POST')).toEqual(['POST', 'http://h/api/rooms', { name: 'me & bob', visibility: 'group', members: ['bob'] }]);
    expect(item('r-dm2').querySelector('.room-name')?.textContent).toBe('me & bob');
  });

  it('the owner deletes the open room after a second click; the server\'s room_deleted then brings no notice', async () => {
    route = (m, u) => {
      if (m === 'POST' && u === 'http://h/api/rooms') return reply(201, room('r-new', 'Team'));
      if (m === 'DELETE' && u === 'http://h/api/rooms/r-new') return reply(204);
      return undefined;
    };
    render(<Harness />);
    const ws = connect();
    await waitFor(() => expect(rooms()).toContain('r-dm'));
    fireEvent.change(screen.getByTestId('room-create-name'), { target: { value: 'Team' } });
    fireEvent.click(screen.getByTestId('room-create-submit'));
    await waitFor(() => expect(screen.getByTestId('v2-room-title').textContent).toBe('#r-new'));
    subscribedTo(ws, 'r-new');
    const del = screen.getByTestId('room-delete');
    fireEvent.click(del);
    expect(del.dataset.armed).toBe('true');
    expect(apiCalls().filter(([m]) => m === 'DELETE')).toEqual([]);
    fireEvent.click(del);
    await waitFor(() => expect(screen.getByTestId('room-admin-done').textContent).toBe('Deleted Team.'));
    expect(apiCalls().at(-1)).toEqual(['DELETE', 'http://h/api/rooms/r-new', undefined]);
    expect(rooms()).not.toContain('r-new');
    act(() => ws.frame({ type: 'unsubscribed', roomId: 'r-new', reason: 'room_deleted' }));
    expect(notices()).toEqual([]);
  });

  it('without a token there is no panel and no listing', () => {
    setToken(null);
    render(<Harness me={null} />);
    connect();
    expect(screen.queryByTestId('rooms-panel')).toBeNull();
    expect(within(screen.getByTestId('room-list')).getAllByTestId('room-item')).toHaveLength(1);
    expect(apiCalls()).toEqual([]);
  });
});
