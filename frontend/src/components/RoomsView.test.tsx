import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { ServerEndpoints } from '../lib/config';
import { FakeSocket, msg } from '../test/fakeSocket';
import { FakeXhr } from '../test/fakeXhr';
import { useV2Chat, type V2Session } from '../hooks/useV2Chat';
import { parseRoomList, RoomsView } from './RoomsView';

const ep: ServerEndpoints = { http: 'http://h', ws: 'ws://h', label: 'h' };
const session: V2Session = { userId: 'me', username: 'Me', rooms: ['a', 'b'] };

function Harness({ onRooms }: { onRooms?: (r: string[]) => void }) {
  const chat = useV2Chat(session, onRooms, ep);
  return <RoomsView chat={chat} username="Me" onLeave={() => {}} />;
}

function json(body: unknown) {
  return Promise.resolve(new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } }));
}
const fetchMock = vi.fn((url: string) => {
  if (url === 'http://h/api/rooms/a/presence')
    return json({ roomId: 'a', online: 2, truncated: false, users: [{ userId: 'bob', username: 'Bob', since: '2026-11-21T09:00:00.000Z' }, { userId: 'me', username: 'Me', since: '' }] });
  if (url === 'http://h/api/rooms/b/presence') return json({ roomId: 'b', online: 1, truncated: false, users: [{ userId: 'me', username: 'Me', since: '' }] });
  if (url.startsWith('http://h/api/presence?users=')) return json({ users: { ann: { online: false, lastSeen: '2026-11-21T08:00:00.000Z' } } });
  return Promise.resolve(new Response('{}', { status: 404 }));
});
const urls = () => fetchMock.mock.calls.map(([u]) => u);

const sent = (ws: FakeSocket) => ws.sent.map((s) => JSON.parse(s) as Record<string, unknown>);
const subId = (ws: FakeSocket, room: string) => sent(ws).find((f) => f.type === 'subscribe' && f.roomId === room)!.id;
const item = (room: string) => screen.getAllByTestId('room-item').find((b) => b.dataset.room === room)!;

beforeEach(() => {
  // the message list is virtualized: give its scroll box a size, or jsdom renders no row
  vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockReturnValue(600);
  vi.spyOn(HTMLElement.prototype, 'clientWidth', 'get').mockReturnValue(800);
  FakeSocket.reset();
  fetchMock.mockClear();
  vi.stubGlobal('WebSocket', FakeSocket);
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

describe('RoomsView with useV2Chat', () => {
  it('shows rooms with unread counts, typing, seen-by markers, and who is online or was last seen', async () => {
    render(<Harness />);
    expect(FakeSocket.instances).toHaveLength(1);
    const ws = FakeSocket.last();
    expect(ws.url).toBe('ws://h/ws?proto=2&userId=me&username=Me');
    act(() => {
      ws.open();
      ws.frame({ type: 'hello', proto: 2, userId: 'me', username: 'Me', connectionId: 'k', node: 'n', limits: { subscriptions: 64 } });
      ws.frame({ type: 'subscribed', id: subId(ws, 'a'), roomId: 'a', epoch: 'e', seq: 0, recovered: false, lastRead: 0, online: 2 });
      ws.frame({ type: 'subscribed', id: subId(ws, 'b'), roomId: 'b', epoch: 'e', seq: 2, recovered: false, lastRead: 0, online: 1 });
      ws.frame(msg(1, { roomId: 'b', messageId: 'b1', userId: 'ann', username: 'Ann', content: 'b one' }));
      ws.frame(msg(2, { roomId: 'b', messageId: 'b2', userId: 'ann', username: 'Ann', content: 'b two' }));
    });
    // a is open; b has 2 unread
    await waitFor(() => expect(item('b').dataset.unread).toBe('2'));
    expect(within(item('b')).getByTestId('unread').textContent).toBe('2');
    expect(item('a').getAttribute('aria-current')).toBe('true');
    expect(screen.getByTestId('v2-room-title').textContent).toBe('#a');
    // who is online in a, from the presence endpoint
    await waitFor(() => expect(screen.getAllByTestId('v2-member').map((li) => li.dataset.user)).toEqual(['me', 'bob']));
    expect(urls()).toEqual(expect.arrayContaining(['http://h/api/rooms/a/presence', 'http://h/api/rooms/b/presence']));

    // a message in a, on screen: our read marker follows
    act(() => ws.frame(msg(1, { roomId: 'a', messageId: 'a1', userId: 'bob', username: 'Bob', content: 'hi' })));
    await waitFor(() => expect(sent(ws).filter((f) => f.type === 'read')).toEqual([{ type: 'read', roomId: 'a', seq: 1, id: expect.any(Number) }]));
    await waitFor(() => expect(item('a').dataset.unread).toBe('0'));

    // typing
    act(() => ws.frame({ type: 'typing', roomId: 'a', users: [{ userId: 'bob', username: 'Bob' }] }));
    await waitFor(() => expect(screen.getByTestId('typing').textContent).toBe('Bob is typing…'));
    act(() => ws.frame({ type: 'typing', roomId: 'a', users: [] }));
    await waitFor(() => expect(screen.getByTestId('typing').textContent).toBe(''));

    // our typing goes out, and stops on blur
    const composer = screen.getByTestId('composer');
    fireEvent.change(composer, { target: { value: 'h' } });
    fireEvent.change(composer, { target: { value: 'he' } });
    expect(sent(ws).filter((f) => f.type === 'typing')).toEqual([{ type: 'typing', roomId: 'a' }]);
    fireEvent.blur(composer);
    expect(sent(ws).filter((f) => f.type === 'typing').at(-1)).toEqual({ type: 'typing', roomId: 'a', stop: true });

    // Bob read our room up to 1
    act(() => ws.frame({ type: 'read', roomId: 'a', userId: 'bob', seq: 1 }));
    await waitFor(() => expect(screen.getByTestId('seen-by').textContent).toBe('seen by Bob'));
    expect(screen.getByTestId('seen-by').closest('[data-testid="message"]')?.getAttribute('data-seq')).toBe('1');

    // Bob leaves: offline, with his last seen
    act(() => ws.frame({ type: 'presence', roomId: 'a', online: 1, joined: [], left: [{ userId: 'bob', lastSeen: '2026-11-21T10:00:00.000Z' }] }));
    await waitFor(() => expect(within(screen.getByTestId('offline-list')).getByTestId('v2-member').dataset.user).toBe('bob'));
    expect(within(screen.getByTestId('offline-list')).getByTestId('last-seen').textContent).toMatch(/^last seen /);

    // open b: its messages, its unread count gone once read, Ann's last seen asked for
    fireEvent.click(item('b'));
    expect(screen.getByTestId('v2-room-title').textContent).toBe('#b');
    expect(screen.getAllByTestId('message').map((m) => m.querySelector('.msg-content')?.textContent)).toEqual(['b one', 'b two']);
    await waitFor(() => expect(sent(ws).filter((f) => f.type === 'read' && f.roomId === 'b')).toMatchObject([{ seq: 2 }]));
    await waitFor(() => expect(item('b').dataset.unread).toBe('0'));
    expect(within(item('b')).queryByTestId('unread')).toBeNull();
    await waitFor(() => expect(urls()).toContain('http://h/api/presence?users=ann'));
    await waitFor(() => expect(within(screen.getByTestId('offline-list')).getByTestId('last-seen').getAttribute('title')).toBe('2026-11-21T08:00:00.000Z'));

    // a message sent shows as pending until acknowledged
    fireEvent.change(screen.getByTestId('composer'), { target: { value: 'yo' } });
    fireEvent.click(screen.getByTestId('send'));
    const chat = sent(ws).find((f) => f.type === 'chat')!;
    expect(chat).toMatchObject({ roomId: 'b', content: 'yo', clientMsgId: expect.any(String) });
    await waitFor(() => expect(screen.getByTestId('pending').textContent).toContain('yo'));
    act(() => {
      ws.frame(msg(3, { roomId: 'b', messageId: 'b3', userId: 'me', username: 'Me', content: 'yo' }));
      ws.frame({ type: 'ack', id: chat.id, roomId: 'b', seq: 3, messageId: 'b3', clientMsgId: chat.clientMsgId, duplicate: false });
    });
    await waitFor(() => expect(screen.queryByTestId('pending')).toBeNull());
  });

  it('adds and leaves rooms over the same connection', async () => {
    const onRooms = vi.fn();
    render(<Harness onRooms={onRooms} />);
    const ws = FakeSocket.last();
    act(() => ws.open());
    fireEvent.change(screen.getByTestId('add-room-input'), { target: { value: 'c' } });
    fireEvent.click(screen.getByTestId('add-room'));
    expect(sent(ws).filter((f) => f.type === 'subscribe').map((f) => f.roomId)).toEqual(['a', 'b', 'c']);
    expect(onRooms).toHaveBeenLastCalledWith(['a', 'b', 'c']);
    await waitFor(() => expect(screen.getByTestId('v2-room-title').textContent).toBe('#c'));
    act(() => ws.frame({ type: 'subscribed', id: subId(ws, 'a'), roomId: 'a', epoch: 'e', seq: 0, recovered: false, lastRead: 0, online: 1 }));
    fireEvent.click(within(item('a').parentElement!).getByTestId('room-close'));
    expect(sent(ws).filter((f) => f.type === 'unsubscribe')).toMatchObject([{ roomId: 'a' }]);
    expect(onRooms).toHaveBeenLastCalledWith(['b', 'c']);
    expect(screen.getAllByTestId('room-item').map((b) => b.dataset.room)).toEqual(['b', 'c']);
    expect(FakeSocket.instances).toHaveLength(1);
  });
});

describe('RoomsView history', () => {
  it('pages back through the room on screen from its oldest message, then shows the beginning', async () => {
    const older = Array.from({ length: 50 }, (_, i) => msg(i + 1, { roomId: 'a', messageId: `a${i + 1}`, content: `old ${i + 1}` }));
    const base = fetchMock.getMockImplementation()!;
    onTestFinished(() => void fetchMock.mockImplementation(base));
    fetchMock.mockImplementation((url: string) => (url === 'http://h/api/rooms/a/messages?limit=50&before=51' ? json({ roomId: 'a', count: 50, messages: older }) : base(url)));
    render(<Harness />);
    const ws = FakeSocket.last();
    act(() => {
      ws.open();
      ws.frame({ type: 'hello', proto: 2, userId: 'me', username: 'Me', connectionId: 'k', node: 'n', limits: { subscriptions: 64 } });
      ws.frame({ type: 'subscribed', id: subId(ws, 'a'), roomId: 'a', epoch: 'e', seq: 60, recovered: false, lastRead: 60, online: 1 });
      for (let s = 51; s <= 60; s++) ws.frame(msg(s, { roomId: 'a', messageId: `a${s}`, content: `new ${s}` }));
    });
    await waitFor(() => expect(screen.getAllByTestId('message').length).toBe(10));
    fireEvent.click(screen.getByTestId('load-older'));
    await screen.findByTestId('history-start');
    expect(urls()).toContain('http://h/api/rooms/a/messages?limit=50&before=51');
    const shown = screen.getAllByTestId('message').map((m) => Number(m.dataset.seq));
    shown.forEach((s, i) => expect(s).toBe(shown[0] + i));
    expect(shown.at(-1)).toBe(60);
    expect(screen.queryByTestId('load-older')).toBeNull();
    // the other room has its own history
    fireEvent.click(item('b'));
    expect(screen.queryByTestId('history-start')).toBeNull();
  });
});

describe('RoomsView file sharing', () => {
  const TICKET = { fileId: 'f-cat', method: 'PUT', url: '/api/files/f-cat/content?expires=1&sig=s', headers: { 'Content-Type': 'image/png' }, expiresAt: '2026-12-03T17:00:00.000Z' };
  const { createObjectURL } = URL;
  afterEach(() => {
    URL.createObjectURL = createObjectURL;
  });

  async function connect() {
    render(<Harness />);
    const ws = FakeSocket.last();
    act(() => {
      ws.open();
      ws.frame({ type: 'hello', proto: 2, userId: 'me', username: 'Me', connectionId: 'k', node: 'n', limits: { subscriptions: 64 } });
      ws.frame({ type: 'subscribed', id: subId(ws, 'a'), roomId: 'a', epoch: 'e', seq: 0, recovered: false, lastRead: 0, online: 1 });
      ws.frame({ type: 'subscribed', id: subId(ws, 'b'), roomId: 'b', epoch: 'e', seq: 0, recovered: false, lastRead: 0, online: 1 });
    });
    await waitFor(() => expect(item('a').dataset.state).toBe('subscribed'));
    return ws;
  }

  it('a file dropped on the room is uploaded (progress shown) and sent with the message; the other side previews it', async () => {
    const base = fetchMock.getMockImplementation()!;
    onTestFinished(() => void fetchMock.mockImplementation(base));
    fetchMock.mockImplementation((url: string) => {
      if (url === 'http://h/api/rooms/a/uploads') return Promise.resolve(new Response(JSON.stringify(TICKET), { status: 201 }));
      if (url === 'http://h/api/files/f-cat') return Promise.resolve(new Response(new Uint8Array([137, 80, 78, 71]), { status: 200 }));
      return base(url);
    });
    FakeXhr.all = [];
    vi.stubGlobal('XMLHttpRequest', FakeXhr);
    URL.createObjectURL = vi.fn(() => 'blob:http://h/cat');
    const ws = await connect();
    const target = screen.getByTestId('drop-target');
    const cat = new File([new Uint8Array(67)], 'cat.png', { type: 'image/png' });
    const dataTransfer = { types: ['Files'], files: [cat], dropEffect: 'none' };
    fireEvent.dragEnter(target, { dataTransfer });
    expect(screen.getByTestId('drop-zone').textContent).toContain('#a');
    fireEvent.dragOver(target, { dataTransfer });
    fireEvent.drop(target, { dataTransfer });
    expect(screen.queryByTestId('drop-zone')).toBeNull();
    // the upload: asked for, then the bytes
    await waitFor(() => expect(FakeXhr.all).toHaveLength(1));
    const post = fetchMock.mock.calls.find(([u]) => u === 'http://h/api/rooms/a/uploads') as unknown as [string, RequestInit];
    expect(JSON.parse(String(post[1].body))).toEqual({ name: 'cat.png', contentType: 'image/png', size: 67 });
    const xhr = FakeXhr.all[0];
    expect([xhr.method, xhr.url, xhr.headers]).toEqual(['PUT', 'http://h/api/files/f-cat/content?expires=1&sig=s', { 'Content-Type': 'image/png' }]);
    act(() => xhr.progress(30, 67));
    expect(screen.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('44');
    expect((screen.getByTestId('send') as HTMLButtonElement).disabled).toBe(true);
    act(() => xhr.answer(201, { fileId: 'f-cat', size: 67 }));
    await waitFor(() => expect(screen.getByTestId('pending-file').dataset.state).toBe('done'));
    fireEvent.change(screen.getByTestId('composer'), { target: { value: 'a cat' } });
    fireEvent.click(screen.getByTestId('send'));
    const chat = sent(ws).find((f) => f.type === 'chat')!;
    expect(chat).toMatchObject({ roomId: 'a', content: 'a cat', attachments: [{ fileId: 'f-cat' }] });
    await waitFor(() => expect(screen.queryByTestId('pending-file')).toBeNull());
    expect((await screen.findByTestId('pending')).textContent).toContain('cat.png');
    // the broadcast carries the file: a preview
    act(() => {
      ws.frame({ ...msg(1, { roomId: 'a', messageId: 'a1', userId: 'me', username: 'Me', content: 'a cat' }), attachments: [{ fileId: 'f-cat', name: 'cat.png', contentType: 'image/png', size: 67 }] });
      ws.frame({ type: 'ack', id: chat.id, roomId: 'a', seq: 1, messageId: 'a1', clientMsgId: chat.clientMsgId, duplicate: false });
    });
    const img = await screen.findByTestId('attachment-image');
    expect([img.getAttribute('alt'), img.getAttribute('src')]).toEqual(['cat.png', 'blob:http://h/cat']);
  });

  it('a refused upload is shown on its chip and nothing is sent; a refused message shows in the error bar', async () => {
    const base = fetchMock.getMockImplementation()!;
    onTestFinished(() => void fetchMock.mockImplementation(base));
    fetchMock.mockImplementation((url: string) =>
      url === 'http://h/api/rooms/a/uploads' ? Promise.resolve(new Response(JSON.stringify({ error: 'unsupported_type', message: 'no' }), { status: 415 })) : base(url),
    );
    FakeXhr.all = [];
    vi.stubGlobal('XMLHttpRequest', FakeXhr);
    const ws = await connect();
    fireEvent.change(screen.getByTestId('attach-input'), { target: { files: [new File(['MZ'], 'evil.exe', { type: 'application/x-msdownload' })] } });
    expect((await screen.findByTestId('upload-error')).textContent).toBe('evil.exe: this type of file is not accepted');
    expect(FakeXhr.all).toHaveLength(0);
    expect((screen.getByTestId('send') as HTMLButtonElement).disabled).toBe(true);
    expect(sent(ws).filter((f) => f.type === 'chat')).toEqual([]);
    // the chip goes with its ✕
    fireEvent.click(screen.getByTestId('pending-file-remove'));
    expect(screen.queryByTestId('pending-file')).toBeNull();
    // an error frame answering a message with files
    fireEvent.change(screen.getByTestId('composer'), { target: { value: 'x' } });
    fireEvent.click(screen.getByTestId('send'));
    const chat = sent(ws).find((f) => f.type === 'chat')!;
    act(() => ws.frame({ type: 'error', code: 'file_not_found', message: 'no such file', id: chat.id }));
    await waitFor(() => expect(screen.getByTestId('inline-error').dataset.code).toBe('file_not_found'));
    expect(screen.getByTestId('inline-error').textContent).toContain('the message was not sent');
  });

  it('switching rooms starts the composer without the other room\'s files', async () => {
    const base = fetchMock.getMockImplementation()!;
    onTestFinished(() => void fetchMock.mockImplementation(base));
    fetchMock.mockImplementation((url: string) => (url === 'http://h/api/rooms/a/uploads' ? new Promise<Response>(() => {}) : base(url)));
    await connect();
    fireEvent.change(screen.getByTestId('attach-input'), { target: { files: [new File(['x'], 'x.txt', { type: 'text/plain' })] } });
    expect(screen.getAllByTestId('pending-file')).toHaveLength(1);
    fireEvent.click(item('b'));
    await waitFor(() => expect(screen.queryByTestId('pending-file')).toBeNull());
  });
});

describe('parseRoomList', () => {
  it('splits on commas and spaces, once each', () => {
    expect(parseRoomList(' a, b  c,,a ')).toEqual(['a', 'b', 'c']);
    expect(parseRoomList('')).toEqual([]);
  });
});
