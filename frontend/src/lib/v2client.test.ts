import { FakeSocket, msg } from '../test/fakeSocket';
import { V2Client, type RoomView, type V2ClientOptions } from './v2client';
import type { ChatMessage } from './types';
import { parseV2Frame, type V2ErrorFrame } from './v2types';

type Sent = Record<string, unknown> & { type: string; id?: number; roomId?: string };

function setup(extra: Partial<V2ClientOptions> = {}) {
  const errors: V2ErrorFrame[] = [];
  const client = new V2Client({
    url: () => 'ws://h/ws?proto=2&userId=me&username=Me',
    self: { userId: 'me', username: 'Me' },
    onError: (e) => errors.push(e),
    createSocket: (u) => new FakeSocket(u),
    random: () => 0, // reconnect at once
    clientMsgIdPrefix: 'c',
    ...extra,
  });
  return { client, errors };
}

const sent = (ws: FakeSocket): Sent[] => ws.sent.map((s) => JSON.parse(s) as Sent);
const sentOf = (ws: FakeSocket, type: string) => sent(ws).filter((f) => f.type === type);
const subscribeOf = (ws: FakeSocket, roomId: string) => {
  const f = sentOf(ws, 'subscribe').filter((s) => s.roomId === roomId).at(-1);
  if (!f) throw new Error(`no subscribe for ${roomId}: ${ws.sent.join(' ')}`);
  return f;
};

function hello(ws: FakeSocket, subscriptions = 64) {
  ws.frame({
    type: 'hello',
    proto: 2,
    userId: 'me',
    username: 'Me',
    connectionId: 'k1',
    node: 'hubbub',
    limits: { subscriptions, contentChars: 1000, frameBytes: 8192, clientMsgIdChars: 64 },
  });
}

/** The server's answer to the client's last subscribe for `roomId`. */
function subscribed(
  ws: FakeSocket,
  roomId: string,
  o: { epoch?: string; seq?: number; recovered?: boolean; lastRead?: number; online?: number; users?: { userId: string; username: string }[] } = {},
) {
  const req = subscribeOf(ws, roomId);
  ws.frame({
    type: 'subscribed',
    id: req.id,
    roomId,
    epoch: o.epoch ?? 'e1',
    seq: o.seq ?? 0,
    recovered: o.recovered ?? false,
    lastRead: o.lastRead ?? 0,
    online: o.online ?? 1,
    ...(o.users ? { users: o.users } : {}),
  });
}

const u = (id: string) => ({ userId: id, username: id.toUpperCase() });
const onlineIds = (r: RoomView | undefined) => [...(r?.members.values() ?? [])].filter((m) => m.online).map((m) => m.userId).sort();
const snapOf = (roomId: string, ids: string[]) => ({ roomId, online: ids.length, truncated: false, users: ids.map((id) => ({ ...u(id), since: '2026-11-21T09:00:00.000Z' })) });

const chat = (roomId: string, seq: number, over: Partial<ChatMessage> = {}) => msg(seq, { roomId, messageId: `${roomId}-${seq}`, ...over });
const seqs = (r: RoomView | undefined) => (r?.items ?? []).map((i) => (i.kind === 'message' ? i.msg.seq : `| ${i.text}`));

/** Start, open, hello, subscribe to the rooms and answer each with `subscribed`. */
function connected(rooms: string[], extra: Partial<V2ClientOptions> = {}) {
  const t = setup(extra);
  for (const r of rooms) t.client.subscribe(r);
  t.client.start();
  const ws = FakeSocket.last();
  ws.open();
  hello(ws);
  for (const r of rooms) subscribed(ws, r);
  return { ...t, ws };
}

describe('V2Client', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.reset();
  });
  afterEach(() => vi.useRealTimers());

  it('opens one proto=2 socket and subscribes to every room over it, each request with its own id, no since the first time', () => {
    const { client } = setup();
    client.subscribe('a');
    client.subscribe('b');
    expect(client.subscribe('a')).toBe(false); // once
    client.start();
    expect(FakeSocket.instances).toHaveLength(1);
    const ws = FakeSocket.last();
    expect(new URL(ws.url).searchParams.get('proto')).toBe('2');
    expect(ws.sent).toEqual([]); // nothing before open
    ws.open();
    client.subscribe('c'); // a room added while open goes at once
    const subs = sentOf(ws, 'subscribe');
    expect(subs.map((s) => s.roomId)).toEqual(['a', 'b', 'c']);
    expect(new Set(subs.map((s) => s.id)).size).toBe(3);
    for (const s of subs) {
      expect(Number.isInteger(s.id)).toBe(true);
      expect(s).not.toHaveProperty('since');
      expect(s).not.toHaveProperty('epoch');
    }
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('takes seq, lastRead and online from subscribed and counts unread as seq − lastRead, live', () => {
    const { client, ws } = connected([]);
    client.subscribe('a');
    expect(client.room('a')).toMatchObject({ status: 'subscribing', unread: 0 });
    subscribed(ws, 'a', { seq: 10, lastRead: 7, online: 3 });
    expect(client.room('a')).toMatchObject({ status: 'subscribed', seq: 10, lastRead: 7, online: 3, unread: 3, epoch: 'e1' });
    ws.frame(chat('a', 11));
    ws.frame(chat('a', 12));
    expect(client.room('a')!.unread).toBe(5);
    // our own marker moved on another connection of ours
    ws.frame({ type: 'read', roomId: 'a', userId: 'me', seq: 11 });
    expect(client.room('a')).toMatchObject({ lastRead: 11, unread: 1 });
    // someone else's marker does not touch our count
    ws.frame({ type: 'read', roomId: 'a', userId: 'bob', seq: 12 });
    expect(client.room('a')!.unread).toBe(1);
  });

  it('markRead sends read (with an id) for the newest seq, only forward, clamped to the room seq', () => {
    const { client, ws } = connected([]);
    client.subscribe('a');
    subscribed(ws, 'a', { seq: 4, lastRead: 1 });
    expect(client.markRead('a', 9)).toBe(true); // clamped to 4
    expect(sentOf(ws, 'read')).toEqual([{ type: 'read', roomId: 'a', seq: 4, id: expect.any(Number) }]);
    expect(client.room('a')).toMatchObject({ lastRead: 4, unread: 0 });
    expect(client.markRead('a', 3)).toBe(false); // backwards: nothing sent
    expect(client.markRead('a', 4)).toBe(false); // same: nothing sent
    expect(sentOf(ws, 'read')).toHaveLength(1);
    expect(client.markRead('nope', 5)).toBe(false);
  });

  it('a rate-limited read lets the next markRead try again', () => {
    const { client, ws } = connected(['a']);
    ws.frame(chat('a', 1));
    ws.frame(chat('a', 2));
    client.markRead('a', 2);
    const r = sentOf(ws, 'read')[0];
    ws.frame({ type: 'error', code: 'rate_limited', message: 'slow', id: r.id, roomId: 'a' });
    expect(client.room('a')!.lastRead).toBe(1);
    expect(client.markRead('a', 2)).toBe(true);
    expect(sentOf(ws, 'read')).toHaveLength(2);
  });

  it('drops chat frames it already holds (same seq or messageId) and puts a late one in order', () => {
    const { client, ws } = connected(['a', 'b']);
    for (const s of [1, 2, 4]) ws.frame(chat('a', s));
    ws.frame(chat('a', 2)); // same seq again
    ws.frame(chat('a', 9, { messageId: 'a-1' })); // same id
    ws.frame(chat('a', 3)); // late
    ws.frame(chat('b', 1)); // another room, its own numbering
    expect(seqs(client.room('a'))).toEqual([1, 2, 3, 4]);
    expect(client.room('a')!.duplicates).toBe(2);
    expect(seqs(client.room('b'))).toEqual([1]);
    expect(client.room('a')!.newestSeq).toBe(4);
    // a frame for a room we are not in is ignored
    ws.frame(chat('zzz', 1));
    expect(client.room('zzz')).toBeUndefined();
  });

  it('after a reconnect subscribes to every room again with since = newest seq held and its epoch', () => {
    const { client, ws } = connected(['a', 'b', 'c']);
    for (const s of [1, 2, 3]) ws.frame(chat('a', s));
    // b: an empty room (seq 0) — since=0 asks for everything from the start
    // c: the room had messages but none reached us — no since, the default backlog
    subscribed(ws, 'c', { seq: 5 });
    ws.drop(1006);
    expect(client.state.status.status).toBe('reconnecting');
    expect(client.room('a')!.status).toBe('subscribing');
    vi.advanceTimersByTime(0);
    expect(FakeSocket.instances).toHaveLength(2);
    const ws2 = FakeSocket.last();
    ws2.open();
    expect(subscribeOf(ws2, 'a')).toMatchObject({ since: 3, epoch: 'e1' });
    expect(subscribeOf(ws2, 'b')).toMatchObject({ since: 0, epoch: 'e1' });
    expect(subscribeOf(ws2, 'c')).not.toHaveProperty('since');
    // recovered: exactly the missed ones follow; nothing twice
    subscribed(ws2, 'a', { seq: 5, recovered: true });
    ws2.frame(chat('a', 3)); // an overlap a server might send
    ws2.frame(chat('a', 4));
    ws2.frame(chat('a', 5));
    expect(seqs(client.room('a'))).toEqual([1, 2, 3, 4, 5]);
    expect(client.room('a')).toMatchObject({ status: 'subscribed', recovered: true, subscriptions: 2 });
  });

  it('a new epoch (the room’s seq started again) keeps the old messages behind a divider and starts over', () => {
    const { client, ws } = connected(['a']);
    for (const s of [1, 2, 3]) ws.frame(chat('a', s));
    ws.frame({ type: 'read', roomId: 'a', userId: 'bob', seq: 3 });
    client.markRead('a', 3);
    ws.drop(1001);
    vi.advanceTimersByTime(0);
    const ws2 = FakeSocket.last();
    ws2.open();
    expect(subscribeOf(ws2, 'a')).toMatchObject({ since: 3, epoch: 'e1' });
    subscribed(ws2, 'a', { epoch: 'e2', seq: 1, recovered: false, lastRead: 0 });
    ws2.frame(chat('a', 1, { messageId: 'new-1' }));
    const r = client.room('a')!;
    expect(seqs(r)).toEqual([1, 2, 3, '| The room’s history restarted (new epoch)', 1]);
    expect(r).toMatchObject({ epoch: 'e2', seq: 1, lastRead: 0, unread: 1, newestSeq: 1 });
    expect(r.readers.size).toBe(0); // markers of the old numbering mean nothing now
    // and the next resume uses the new epoch
    ws2.drop(1006);
    vi.advanceTimersByTime(0);
    FakeSocket.last().open();
    expect(subscribeOf(FakeSocket.last(), 'a')).toMatchObject({ since: 1, epoch: 'e2' });
  });

  it('recovered:false in the same epoch says how many messages could not be recovered', () => {
    const { client, ws } = connected(['a']);
    for (const s of [1, 2]) ws.frame(chat('a', s));
    ws.drop(1006);
    vi.advanceTimersByTime(0);
    const ws2 = FakeSocket.last();
    ws2.open();
    subscribed(ws2, 'a', { seq: 9, recovered: false });
    for (const s of [2, 6, 7, 8, 9]) ws2.frame(chat('a', s)); // the newest few, one we hold
    expect(seqs(client.room('a'))).toEqual([1, 2, '| 3 messages could not be recovered', 6, 7, 8, 9]);
  });

  it('each send carries a fresh clientMsgId and an id; its ack settles it', () => {
    const { client, ws } = connected(['a']);
    const c1 = client.send('a', 'hello');
    const c2 = client.send('a', 'again');
    expect(c1).not.toBe(c2);
    const chats = sentOf(ws, 'chat');
    expect(chats).toEqual([
      { type: 'chat', roomId: 'a', content: 'hello', clientMsgId: c1, id: expect.any(Number) },
      { type: 'chat', roomId: 'a', content: 'again', clientMsgId: c2, id: expect.any(Number) },
    ]);
    expect(client.room('a')!.pending.map((p) => p.content)).toEqual(['hello', 'again']);
    ws.frame(chat('a', 1, { userId: 'me', content: 'hello' }));
    ws.frame({ type: 'ack', id: chats[0].id, roomId: 'a', seq: 1, messageId: 'a-1', clientMsgId: c1, duplicate: false });
    expect(client.room('a')!.pending.map((p) => p.content)).toEqual(['again']);
    // an ack without clientMsgId is matched by its id
    ws.frame({ type: 'ack', id: chats[1].id, roomId: 'a', seq: 2, messageId: 'a-2', duplicate: false });
    expect(client.room('a')!.pending).toEqual([]);
    expect(client.room('a')!.seq).toBe(2);
    expect(client.send('nope', 'x')).toBeNull();
  });

  it('a send with files names their ids (no other field), may have no words, and a resend names them again', () => {
    const { client, ws, errors } = connected(['a']);
    const c1 = client.send('a', '', [{ fileId: 'f-1', name: 'cat.png' }, { fileId: 'f-2' }]);
    const c2 = client.send('a', 'no files', []);
    expect(sentOf(ws, 'chat')).toEqual([
      { type: 'chat', roomId: 'a', content: '', clientMsgId: c1, attachments: [{ fileId: 'f-1' }, { fileId: 'f-2' }], id: expect.any(Number) },
      { type: 'chat', roomId: 'a', content: 'no files', clientMsgId: c2, id: expect.any(Number) },
    ]);
    expect(client.room('a')!.pending[0].attachments).toEqual([{ fileId: 'f-1', name: 'cat.png' }, { fileId: 'f-2' }]);
    ws.drop(1006);
    vi.advanceTimersByTime(0);
    const ws2 = FakeSocket.last();
    ws2.open();
    subscribed(ws2, 'a', { recovered: true });
    const again = sentOf(ws2, 'chat');
    expect(again[0]).toMatchObject({ clientMsgId: c1, attachments: [{ fileId: 'f-1' }, { fileId: 'f-2' }] });
    // refused (the file is gone): the send is dropped and the error reported with its room
    ws2.frame({ type: 'error', code: 'file_not_found', message: 'no such file', id: again[0].id });
    expect(client.room('a')!.pending.map((p) => p.clientMsgId)).toEqual([c2]);
    expect(errors.at(-1)).toMatchObject({ code: 'file_not_found', roomId: 'a' });
  });

  it('chat frames carry their attachments (checked; absent when none)', () => {
    const { client, ws } = connected(['a']);
    const attachments = [{ fileId: 'f-1', name: 'cat.png', contentType: 'image/png', size: 67 }];
    ws.frame({ ...chat('a', 1), attachments });
    ws.frame({ ...chat('a', 2), attachments: [{ name: 'no id' }] });
    ws.frame(chat('a', 3));
    const msgs = client.room('a')!.items.map((i) => (i.kind === 'message' ? i.msg : null));
    expect(msgs[0]!.attachments).toEqual(attachments);
    expect(msgs[1]).not.toHaveProperty('attachments');
    expect(msgs[2]).not.toHaveProperty('attachments');
  });

  it('sends not acknowledged when the connection dropped go again, same clientMsgId, once the room is subscribed again', () => {
    const { client, ws } = connected(['a', 'b']);
    const c1 = client.send('a', 'one'); // reached the server, ack lost
    const c2 = client.send('a', 'two'); // lost on the way
    const cb = client.send('b', 'in b');
    ws.frame(chat('a', 1, { userId: 'me', content: 'one' }));
    ws.drop(1006);
    vi.advanceTimersByTime(0);
    const ws2 = FakeSocket.last();
    ws2.open();
    expect(sentOf(ws2, 'chat')).toEqual([]); // not before the room is subscribed again
    subscribed(ws2, 'a', { seq: 1, recovered: true });
    const again = sentOf(ws2, 'chat');
    expect(again.map((c) => [c.clientMsgId, c.content])).toEqual([
      [c1, 'one'],
      [c2, 'two'],
    ]);
    expect(again[0].id).not.toBe(again[1].id);
    // the server knows c1: the first one's ack, duplicate, no second broadcast
    ws2.frame({ type: 'ack', id: again[0].id, roomId: 'a', seq: 1, messageId: 'a-1', clientMsgId: c1, duplicate: true });
    ws2.frame(chat('a', 2, { userId: 'me', content: 'two' }));
    ws2.frame({ type: 'ack', id: again[1].id, roomId: 'a', seq: 2, messageId: 'a-2', clientMsgId: c2, duplicate: false });
    expect(client.room('a')!.pending).toEqual([]);
    expect(seqs(client.room('a'))).toEqual([1, 2]);
    expect(client.room('a')!.items.filter((i) => i.kind === 'message' && i.msg.content === 'one')).toHaveLength(1);
    // b's send waits for b
    expect(client.room('b')!.pending.map((p) => p.clientMsgId)).toEqual([cb]);
    subscribed(ws2, 'b');
    expect(sentOf(ws2, 'chat').filter((c) => c.roomId === 'b').map((c) => c.clientMsgId)).toEqual([cb]);
  });

  it('a send made while disconnected is sent once the room is subscribed', () => {
    const { client, ws } = connected(['a']);
    ws.drop(1006);
    const c = client.send('a', 'offline');
    expect(client.room('a')!.pending).toMatchObject([{ clientMsgId: c, attempts: 0 }]);
    vi.advanceTimersByTime(0);
    const ws2 = FakeSocket.last();
    ws2.open();
    subscribed(ws2, 'a', { recovered: true });
    expect(sentOf(ws2, 'chat')).toMatchObject([{ clientMsgId: c, content: 'offline' }]);
    expect(client.room('a')!.pending[0].attempts).toBe(1);
  });

  it('an error answering a chat drops that send (and is reported with its room); not_subscribed keeps it', () => {
    const { client, ws, errors } = connected(['a']);
    client.send('a', 'too fast');
    client.send('a', 'early');
    const [c1, c2] = sentOf(ws, 'chat');
    ws.frame({ type: 'error', code: 'rate_limited', message: 'slow down', id: c1.id });
    ws.frame({ type: 'error', code: 'not_subscribed', message: 'no', id: c2.id, roomId: 'a' });
    expect(client.room('a')!.pending.map((p) => p.content)).toEqual(['early']);
    expect(errors.map((e) => [e.code, e.roomId])).toEqual([
      ['rate_limited', 'a'],
      ['not_subscribed', 'a'],
    ]);
  });

  it('a refused subscribe marks the room failed with the code; rate_limited tries again after a while', () => {
    const { client, ws } = connected([]);
    client.subscribe('bad room');
    client.subscribe('busy');
    ws.frame({ type: 'error', code: 'invalid_room', message: 'bad', id: subscribeOf(ws, 'bad room').id, roomId: 'bad room' });
    expect(client.room('bad room')).toMatchObject({ status: 'failed', error: { code: 'invalid_room' } });
    ws.frame({ type: 'error', code: 'rate_limited', message: 'slow', id: subscribeOf(ws, 'busy').id, roomId: 'busy' });
    expect(client.room('busy')!.status).toBe('subscribing');
    expect(sentOf(ws, 'subscribe').filter((s) => s.roomId === 'busy')).toHaveLength(1);
    vi.advanceTimersByTime(1_000);
    expect(sentOf(ws, 'subscribe').filter((s) => s.roomId === 'busy')).toHaveLength(2);
    // subscribing to a failed room again tries again
    expect(client.subscribe('bad room')).toBe(true);
    expect(sentOf(ws, 'subscribe').filter((s) => s.roomId === 'bad room')).toHaveLength(2);
  });

  it('keeps to the subscription limit the hello gives', () => {
    const t = setup();
    t.client.start();
    const ws = FakeSocket.last();
    ws.open();
    hello(ws, 2);
    expect(t.client.subscribe('a')).toBe(true);
    expect(t.client.subscribe('b')).toBe(true);
    expect(t.client.subscribe('c')).toBe(false);
    expect(t.client.state.hello?.limits.subscriptions).toBe(2);
  });

  it('typing: one typing frame per interval while the user types, one stop on stopTyping or after idling, none on send', () => {
    const { client, ws } = connected(['a']);
    const typing = () => sentOf(ws, 'typing');
    client.typing('a');
    vi.advanceTimersByTime(1_000);
    client.typing('a');
    vi.advanceTimersByTime(1_000);
    client.typing('a');
    expect(typing()).toEqual([{ type: 'typing', roomId: 'a' }]);
    vi.advanceTimersByTime(600); // 2.6 s after the first
    client.typing('a');
    expect(typing()).toHaveLength(2);
    client.stopTyping('a');
    client.stopTyping('a'); // once
    expect(typing().at(-1)).toEqual({ type: 'typing', roomId: 'a', stop: true });
    expect(typing()).toHaveLength(3);
    vi.advanceTimersByTime(2_000);
    // typing again after a stop is news at once
    client.typing('a');
    expect(typing()).toHaveLength(4);
    // the chat message itself ends typing on the server: no stop frame
    client.send('a', 'done');
    expect(typing()).toHaveLength(4);
    client.stopTyping('a');
    expect(typing()).toHaveLength(4);
    // idle: stop after 5 s without a keystroke
    vi.advanceTimersByTime(2_000);
    client.typing('a');
    expect(typing()).toHaveLength(5);
    vi.advanceTimersByTime(4_999);
    expect(typing()).toHaveLength(5);
    vi.advanceTimersByTime(1);
    expect(typing()).toHaveLength(6);
    expect(typing().at(-1)).toMatchObject({ stop: true });
    // nothing for a room not subscribed
    client.typing('zzz');
    expect(typing()).toHaveLength(6);
  });

  it('keeps to the server\'s typing bucket (bursts of 3, 1 a second, counted as 1 per 1.25 s): a frame over it waits, and only what is still wanted goes', () => {
    const { client, ws } = connected(['a', 'b']);
    const typing = () => sentOf(ws, 'typing').map((f) => `${f.roomId}${f.stop ? ' stop' : ''}`);
    client.typing('a');
    client.stopTyping('a');
    client.typing('b');
    expect(typing()).toEqual(['a', 'a stop', 'b']);
    client.stopTyping('b'); // over the bucket: waits for a token
    client.typing('a'); // waits too
    expect(typing()).toEqual(['a', 'a stop', 'b']);
    vi.advanceTimersByTime(1_000);
    // the server would have a token now; we leave it a margin for frames held up on the way
    expect(typing()).toEqual(['a', 'a stop', 'b']);
    vi.advanceTimersByTime(250);
    expect(typing()).toEqual(['a', 'a stop', 'b', 'b stop']);
    client.stopTyping('a'); // a changed its mind before its turn: nothing to send for it
    vi.advanceTimersByTime(5_000);
    expect(typing()).toEqual(['a', 'a stop', 'b', 'b stop']);
    // a new connection has a full bucket
    ws.drop(1006);
    vi.advanceTimersByTime(0);
    const ws2 = FakeSocket.last();
    ws2.open();
    subscribed(ws2, 'a', { recovered: true });
    client.typing('a');
    client.stopTyping('a');
    client.typing('a');
    expect(sentOf(ws2, 'typing')).toHaveLength(3);
  });

  it('typing frames replace the whole set; a user who left is dropped from it; a disconnect clears it', () => {
    const { client, ws } = connected(['a']);
    ws.frame({ type: 'typing', roomId: 'a', users: [{ userId: 'bob', username: 'Bob' }, { userId: 'me', username: 'Me' }] });
    expect(client.room('a')!.typing.map((u) => u.userId)).toEqual(['bob', 'me']);
    ws.frame({ type: 'typing', roomId: 'a', users: [] });
    expect(client.room('a')!.typing).toEqual([]);
    ws.frame({ type: 'typing', roomId: 'a', users: [{ userId: 'bob', username: 'Bob' }, { userId: 'cy', username: 'Cy' }] });
    // bob left: not typing any more (the server's set keeps him until his 6 s run out)
    ws.frame({ type: 'presence', roomId: 'a', online: 2, joined: [], left: [{ userId: 'bob', lastSeen: '2026-11-21T10:00:00.000Z' }] });
    expect(client.room('a')!.typing.map((u) => u.userId)).toEqual(['cy']);
    ws.drop(1006);
    expect(client.room('a')!.typing).toEqual([]);
  });

  it('presence frames: joined are online, left offline with their lastSeen; we stay online', () => {
    const { client, ws } = connected(['a']);
    ws.frame({ type: 'presence', roomId: 'a', online: 3, joined: [{ userId: 'bob', username: 'Bob' }, { userId: 'cy', username: 'Cy' }], left: [] });
    let r = client.room('a')!;
    expect(r.online).toBe(3);
    expect([...r.members.values()].filter((m) => m.online).map((m) => m.userId).sort()).toEqual(['bob', 'cy', 'me']);
    ws.frame({ type: 'presence', roomId: 'a', online: 2, joined: [], left: [{ userId: 'bob', lastSeen: '2026-11-21T10:00:00.000Z' }, { userId: 'me', lastSeen: null }] });
    r = client.room('a')!;
    expect(r.members.get('bob')).toMatchObject({ online: false, lastSeen: '2026-11-21T10:00:00.000Z', username: 'Bob' });
    expect(r.members.get('me')!.online).toBe(true);
    // back again
    ws.frame({ type: 'presence', roomId: 'a', online: 3, joined: [{ userId: 'bob', username: 'Bob' }], left: [] });
    expect(client.room('a')!.members.get('bob')).toMatchObject({ online: true, lastSeen: null });
    // above the bound: only a count
    ws.frame({ type: 'presence', roomId: 'a', online: 500, joined: [], left: [] });
    expect(client.room('a')!.online).toBe(500);
  });

  it('a presence snapshot lists who is online; frames received after its request started win over it', () => {
    const { client, ws } = connected(['a']);
    ws.frame({ type: 'presence', roomId: 'a', online: 3, joined: [{ userId: 'bob', username: 'Bob' }, { userId: 'old', username: 'Old' }], left: [] });
    const token = client.presenceToken('a');
    // while the request is out, dee arrives
    ws.frame({ type: 'presence', roomId: 'a', online: 4, joined: [{ userId: 'dee', username: 'Dee' }], left: [] });
    client.applyRoomPresence(
      'a',
      { roomId: 'a', online: 3, truncated: false, users: [{ userId: 'bob', username: 'Bob', since: '2026-11-21T09:00:00.000Z' }, { userId: 'cy', username: 'Cy', since: '' }, { userId: 'me', username: 'Me', since: '' }] },
      token,
    );
    const r = client.room('a')!;
    const online = [...r.members.values()].filter((m) => m.online).map((m) => m.userId).sort();
    expect(online).toEqual(['bob', 'cy', 'dee', 'me']); // dee from the newer frame, old gone
    expect(r.members.get('old')).toMatchObject({ online: false, lastSeen: null });
    expect(r.members.get('bob')!.since).toBe('2026-11-21T09:00:00.000Z');
    expect(r.online).toBe(4); // the newer frame's count
  });

  it('subscribed.users is the online set that presence frames then change', () => {
    const { client } = setup();
    client.subscribe('a');
    client.start();
    const w = FakeSocket.last();
    w.open();
    hello(w);
    subscribed(w, 'a', { online: 3, users: [u('a1'), u('b1'), u('me')] });
    expect(onlineIds(client.room('a'))).toEqual(['a1', 'b1', 'me']);
    expect(client.room('a')!.members.get('a1')!.username).toBe('A1');
    w.frame({ type: 'presence', roomId: 'a', online: 4, joined: [u('c1')], left: [] });
    expect(onlineIds(client.room('a'))).toEqual(['a1', 'b1', 'c1', 'me']);
  });

  it('subscribed.users replaces who is online: others known go offline keeping their lastSeen; we stay online', () => {
    const { client, ws } = connected(['a']);
    ws.frame({ type: 'presence', roomId: 'a', online: 4, joined: [u('ann'), u('bob'), u('cy')], left: [] });
    ws.frame({ type: 'presence', roomId: 'a', online: 3, joined: [], left: [{ userId: 'cy', lastSeen: '2026-11-21T10:00:00.000Z' }] });
    ws.frame({ type: 'typing', roomId: 'a', users: [u('bob')] });
    // a reconnect: bob went meanwhile, dee came; we are not in the list (we joined after the room's last frame)
    ws.drop(1006);
    vi.advanceTimersByTime(0);
    const ws2 = FakeSocket.last();
    ws2.open();
    hello(ws2);
    subscribed(ws2, 'a', { online: 3, recovered: true, users: [u('ann'), u('dee')] });
    const r = client.room('a')!;
    expect(onlineIds(r)).toEqual(['ann', 'dee', 'me']);
    expect(r.members.get('bob')).toMatchObject({ online: false, lastSeen: null });
    expect(r.members.get('cy')).toMatchObject({ online: false, lastSeen: '2026-11-21T10:00:00.000Z' });
    expect(r.online).toBe(3);
  });

  it('a presence frame with users replaces the set, then joined and left apply (after count-only frames)', () => {
    const { client, ws } = connected(['a']);
    ws.frame({ type: 'presence', roomId: 'a', online: 3, joined: [u('ann'), u('bob')], left: [] });
    ws.frame({ type: 'typing', roomId: 'a', users: [u('bob'), u('ann')] });
    // over the bound: counts only (the joins and leaves in between go unannounced)
    ws.frame({ type: 'presence', roomId: 'a', online: 400 });
    ws.frame({ type: 'presence', roomId: 'a', online: 380 });
    expect(onlineIds(client.room('a'))).toEqual(['ann', 'bob', 'me']);
    // back within it: everyone online now, then the interval's own changes
    ws.frame({ type: 'presence', roomId: 'a', online: 2, users: [u('bob'), u('ann'), u('me')], joined: [], left: [{ userId: 'ann', lastSeen: '2026-11-21T11:00:00.000Z' }] });
    let r = client.room('a')!;
    expect(onlineIds(r)).toEqual(['bob', 'me']);
    expect(r.members.get('ann')).toMatchObject({ online: false, lastSeen: '2026-11-21T11:00:00.000Z' });
    expect(r.online).toBe(2);
    // bob no longer listed: offline (lastSeen unknown), and not typing any more
    ws.frame({ type: 'presence', roomId: 'a', online: 2, users: [u('cy')], joined: [u('dee')], left: [] });
    r = client.room('a')!;
    expect(onlineIds(r)).toEqual(['cy', 'dee', 'me']);
    expect(r.members.get('bob')).toMatchObject({ online: false, lastSeen: null });
    expect(r.members.get('ann')).toMatchObject({ online: false, lastSeen: '2026-11-21T11:00:00.000Z' });
    expect(r.typing.map((t) => t.userId)).toEqual([]);
  });

  it('a presence answer whose request started before subscribed.users does not override it', () => {
    const { client } = setup();
    client.subscribe('a');
    client.start();
    const w = FakeSocket.last();
    w.open();
    hello(w);
    subscribed(w, 'a', { online: 2, users: [u('ann'), u('me')] });
    // the request goes out; then the connection drops and the room is subscribed again: ann left, bob came
    const token = client.presenceToken('a');
    w.drop(1006);
    vi.advanceTimersByTime(0);
    const w2 = FakeSocket.last();
    w2.open();
    hello(w2);
    subscribed(w2, 'a', { online: 2, recovered: true, users: [u('bob'), u('me')] });
    // the over-the-bound path too: count-only frames leave the list to the presence endpoint
    w2.frame({ type: 'presence', roomId: 'a', online: 300 });
    client.applyRoomPresence('a', snapOf('a', ['ann', 'me']), token);
    const r = client.room('a')!;
    expect(onlineIds(r)).toEqual(['bob', 'me']); // ann not resurrected, bob not dropped
    expect(r.online).toBe(300);
    // an answer asked for after them is the list (the room is over the bound now)
    client.applyRoomPresence('a', snapOf('a', ['cy', 'me']), client.presenceToken('a'));
    expect(onlineIds(client.room('a'))).toEqual(['cy', 'me']);
  });

  it('while the frames keep the set exactly, a presence answer changes no one\'s online state, only since', () => {
    const { client } = setup();
    client.subscribe('a');
    client.start();
    const w = FakeSocket.last();
    w.open();
    hello(w);
    subscribed(w, 'a', { online: 2, users: [u('ann'), u('me')] });
    const token = client.presenceToken('a');
    // cy came and went within an interval the server has not reported yet: the answer saw cy
    client.applyRoomPresence('a', snapOf('a', ['ann', 'cy', 'me']), token);
    let r = client.room('a')!;
    expect(onlineIds(r)).toEqual(['ann', 'me']);
    expect(r.members.get('ann')!.since).toBe('2026-11-21T09:00:00.000Z');
    // the interval ends: cy in neither list
    w.frame({ type: 'presence', roomId: 'a', online: 2, joined: [], left: [] });
    r = client.room('a')!;
    expect(onlineIds(r)).toEqual(['ann', 'me']);
  });

  it('unknownLastSeen names the users to ask /api/presence about; applyDirectory fills in their lastSeen', () => {
    const { client, ws } = connected(['a']);
    ws.frame(chat('a', 1, { userId: 'ann', username: 'Ann' }));
    ws.frame(chat('a', 2, { userId: 'me', username: 'Me' }));
    ws.frame({ type: 'presence', roomId: 'a', online: 2, joined: [{ userId: 'bob', username: 'Bob' }], left: [] });
    ws.frame({ type: 'presence', roomId: 'a', online: 1, joined: [], left: [{ userId: 'bob', lastSeen: '2026-11-21T10:00:00.000Z' }] });
    expect(client.unknownLastSeen('a')).toEqual(['ann']); // bob's lastSeen came with his leave; never us
    client.applyDirectory({ ann: { online: false, lastSeen: '2026-11-21T08:00:00.000Z' } });
    expect(client.unknownLastSeen('a')).toEqual([]);
    expect(client.state.directory.get('ann')).toEqual({ online: false, lastSeen: '2026-11-21T08:00:00.000Z' });
    expect(client.state.names.get('ann')).toBe('Ann');
  });

  it('read frames of others are kept per user, only forward', () => {
    const { client, ws } = connected(['a']);
    ws.frame({ type: 'read', roomId: 'a', userId: 'bob', seq: 5 });
    ws.frame({ type: 'read', roomId: 'a', userId: 'bob', seq: 3 });
    ws.frame({ type: 'read', roomId: 'a', userId: 'cy', seq: 1 });
    expect([...client.room('a')!.readers]).toEqual([
      ['bob', 5],
      ['cy', 1],
    ]);
  });

  it('unsubscribe sends unsubscribe with an id, forgets the room and ignores its frames until unsubscribed', () => {
    const { client, ws } = connected(['a', 'b']);
    client.send('a', 'unsent');
    expect(client.unsubscribe('a')).toBe(true);
    const u = sentOf(ws, 'unsubscribe');
    expect(u).toEqual([{ type: 'unsubscribe', roomId: 'a', id: expect.any(Number) }]);
    expect(client.state.rooms.map((r) => r.roomId)).toEqual(['b']);
    ws.frame(chat('a', 1)); // still in flight
    ws.frame({ type: 'unsubscribed', id: u[0].id, roomId: 'a' });
    expect(client.room('a')).toBeUndefined();
    // and a server-initiated end of b
    ws.frame({ type: 'unsubscribed', roomId: 'b' });
    expect(client.room('b')).toMatchObject({ status: 'failed', error: { code: 'unsubscribed' } });
  });

  it('an unsubscribed for removed or room_deleted drops the room, its sends and its frames, and says why', () => {
    const ended: { roomId: string; reason: string }[] = [];
    const { client, ws } = connected(['a', 'b', 'c'], { onEnded: (e) => ended.push(e) });
    client.send('a', 'unsent');
    client.typing('a');
    ws.frame({ type: 'unsubscribed', roomId: 'a', reason: 'removed' });
    ws.frame({ type: 'unsubscribed', roomId: 'b', reason: 'room_deleted' });
    expect(ended).toEqual([
      { roomId: 'a', reason: 'removed' },
      { roomId: 'b', reason: 'room_deleted' },
    ]);
    expect(client.state.rooms.map((r) => r.roomId)).toEqual(['c']);
    expect(client.room('a')).toBeUndefined();
    ws.frame(chat('a', 1)); // late: nothing comes back
    expect(client.room('a')).toBeUndefined();
    // no stop typing, no resend, no resubscribe of a room that is gone
    const before = ws.sent.length;
    vi.advanceTimersByTime(10_000);
    expect(sent(ws).slice(before).filter((f) => f.roomId === 'a' || f.roomId === 'b')).toEqual([]);
    ws.drop(1006);
    vi.advanceTimersByTime(0);
    const ws2 = FakeSocket.last();
    expect(ws2).not.toBe(ws);
    ws2.open();
    expect(sentOf(ws2, 'subscribe').map((f) => f.roomId)).toEqual(['c']);
    expect(sentOf(ws2, 'chat')).toEqual([]);
    // a room added again is a new subscription
    expect(client.subscribe('a')).toBe(true);
    // any other server-ended subscription keeps the room, failed
    subscribed(ws2, 'c');
    ws2.frame({ type: 'unsubscribed', roomId: 'c', reason: 'server' });
    expect(client.room('c')).toMatchObject({ status: 'failed', error: { code: 'unsubscribed' } });
    expect(ended).toHaveLength(2);
  });

  it('a subscribe refused as forbidden (not a member) or room_not_found marks the room failed and reports it with its room', () => {
    const { client, ws, errors } = connected([]);
    client.subscribe('secret');
    client.subscribe('gone');
    ws.frame({ type: 'error', code: 'forbidden', message: 'not a member', id: subscribeOf(ws, 'secret').id, roomId: 'secret' });
    ws.frame({ type: 'error', code: 'room_not_found', message: 'no room', id: subscribeOf(ws, 'gone').id });
    expect(client.room('secret')).toMatchObject({ status: 'failed', error: { code: 'forbidden', message: 'not a member' } });
    expect(client.room('gone')).toMatchObject({ status: 'failed', error: { code: 'room_not_found' } });
    expect(errors.map((e) => [e.code, e.roomId])).toEqual([
      ['forbidden', 'secret'],
      ['room_not_found', 'gone'],
    ]);
  });

  it('hands out snapshots that keep a room’s identity while it does not change, and notifies in batches', () => {
    const onChange = vi.fn();
    const { client, ws } = connected(['a', 'b'], { onChange, flushMs: 30 });
    vi.advanceTimersByTime(30);
    onChange.mockClear();
    const before = client.state;
    ws.frame(chat('a', 1));
    ws.frame(chat('a', 2));
    const after = client.state;
    expect(after).not.toBe(before);
    expect(after.rooms[1]).toBe(before.rooms[1]); // b untouched
    expect(after.rooms[0]).not.toBe(before.rooms[0]);
    expect(client.state).toBe(after); // stable until the next change
    expect(onChange).not.toHaveBeenCalled();
    vi.advanceTimersByTime(30);
    expect(onChange).toHaveBeenCalledTimes(1);
    expect(seqs(onChange.mock.calls[0][0].rooms[0])).toEqual([1, 2]);
    // a read marker moving does not copy the items
    const items = client.room('a')!.items;
    ws.frame({ type: 'read', roomId: 'a', userId: 'bob', seq: 1 });
    expect(client.room('a')!.items).toBe(items);
  });

  it('keeps at most maxMessages per room, forgetting the oldest', () => {
    const { client, ws } = connected(['a'], { maxMessages: 3 });
    for (const s of [1, 2, 3, 4, 5]) ws.frame(chat('a', s));
    expect(seqs(client.room('a'))).toEqual([3, 4, 5]);
  });

  it('stop closes with 1000 and never reconnects', () => {
    const { client, ws } = connected(['a']);
    client.stop();
    expect(ws.closedByClient).toEqual({ code: 1000, reason: 'user left' });
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(client.state.status.status).toBe('closed');
  });
});

describe('parseV2Frame', () => {
  it('reads every v2 frame and ignores what v2 never sends or cannot use', () => {
    expect(parseV2Frame('{"type":"subscribed","id":7,"roomId":"dev","epoch":"e7Qx","seq":57,"recovered":true,"lastRead":40,"online":12,"extra":1}')).toEqual({
      type: 'subscribed',
      id: 7,
      roomId: 'dev',
      epoch: 'e7Qx',
      seq: 57,
      recovered: true,
      lastRead: 40,
      online: 12,
    });
    expect(parseV2Frame({ type: 'presence', roomId: 'r', online: 2, joined: [{ userId: 'b', username: 'B' }, { nope: 1 }], left: [{ userId: 'c', lastSeen: '2026-11-21T10:00:00.000Z' }] })).toEqual({
      type: 'presence',
      roomId: 'r',
      online: 2,
      joined: [{ userId: 'b', username: 'B' }],
      left: [{ userId: 'c', lastSeen: '2026-11-21T10:00:00.000Z' }],
    });
    // users: the online set (within PRESENCE_MAX_MEMBERS); a usable list, empty included
    expect(parseV2Frame({ type: 'subscribed', roomId: 'r', epoch: 'e', seq: 0, recovered: false, lastRead: 0, online: 2, users: [{ userId: 'a', username: 'A' }, { userId: '' }, { userId: 'b' }] })).toMatchObject({
      online: 2,
      users: [{ userId: 'a', username: 'A' }, { userId: 'b', username: 'b' }],
    });
    expect(parseV2Frame({ type: 'subscribed', roomId: 'r', seq: 0, users: [] })).toMatchObject({ users: [] });
    expect(parseV2Frame({ type: 'subscribed', roomId: 'r', seq: 0, users: 'x' })).not.toHaveProperty('users');
    expect(parseV2Frame({ type: 'presence', roomId: 'r', online: 1, joined: [], left: [{ userId: 'c', lastSeen: null }], users: [{ userId: 'b', username: 'B' }] })).toEqual({
      type: 'presence',
      roomId: 'r',
      online: 1,
      joined: [],
      left: [{ userId: 'c', lastSeen: null }],
      users: [{ userId: 'b', username: 'B' }],
    });
    // above the bound: a count only
    expect(parseV2Frame('{"type":"presence","roomId":"r","online":300}')).toEqual({ type: 'presence', roomId: 'r', online: 300, joined: [], left: [], countOnly: true });
    expect(parseV2Frame({ type: 'error', code: 'not_subscribed', message: 'm', id: 3, roomId: 'r' })).toEqual({ type: 'error', code: 'not_subscribed', message: 'm', id: 3, roomId: 'r' });
    expect(parseV2Frame({ type: 'ack', id: 1, roomId: 'r', seq: 2, messageId: 'x', clientMsgId: 'c-1', duplicate: true })).toMatchObject({ duplicate: true, clientMsgId: 'c-1' });
    expect(parseV2Frame({ type: 'join', roomId: 'r', userId: 'u' })).toBeNull();
    expect(parseV2Frame({ type: 'chat', content: 'no seq' })).toBeNull();
    expect(parseV2Frame({ type: 'read', roomId: 'r', userId: 'u', seq: -1 })).toBeNull();
    expect(parseV2Frame('nope')).toBeNull();
    expect(parseV2Frame('[1]')).toBeNull();
  });
});
