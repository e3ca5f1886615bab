import { msg } from '../test/fakeSocket';
import type { LogItem } from './messageLog';
import type { RoomView, V2Member } from './v2client';
import { lastSeenLabel, roomEndedText, roomErrorText, roomPeople, roomRefusalText, seenByMarkers, typingText } from './v2view';

function room(over: Partial<RoomView> = {}): RoomView {
  return {
    roomId: 'a',
    status: 'subscribed',
    error: null,
    epoch: 'e1',
    seq: 0,
    lastRead: 0,
    unread: 0,
    recovered: true,
    items: [],
    newestSeq: null,
    online: 1,
    members: new Map(),
    typing: [],
    typingCount: 0,
    readers: new Map(),
    pending: [],
    subscriptions: 1,
    duplicates: 0,
    ...over,
  };
}
const item = (seq: number, epoch = 0, userId = 'alice'): LogItem => ({ kind: 'message', key: `${epoch}:${seq}`, epoch, msg: msg(seq, { userId, username: userId[0].toUpperCase() + userId.slice(1) }) });
const member = (userId: string, online: boolean, lastSeen: string | null = null): [string, V2Member] => [userId, { userId, username: userId[0].toUpperCase() + userId.slice(1), online, lastSeen }];

describe('seenByMarkers', () => {
  it('puts each other reader under the newest message at or before their marker, names sorted, never us', () => {
    const r = room({
      items: [item(1), item(2), item(4), item(5)],
      readers: new Map([
        ['bob', 4],
        ['ann', 4],
        ['cy', 3], // 3 is not shown: under 2
        ['dee', 0], // before everything shown: nowhere
        ['me', 5],
      ]),
    });
    const names = new Map([
      ['bob', 'Bob'],
      ['ann', 'Ann'],
      ['cy', 'Cy'],
    ]);
    expect([...seenByMarkers(r, 'me', names)]).toEqual([
      ['0:4', 'Ann, Bob'],
      ['0:2', 'Cy'],
    ]);
  });

  it('only counts messages of the current epoch', () => {
    const r = room({ items: [item(1, 0), item(2, 0), { kind: 'divider', key: 'd', epoch: 1, text: 'x' }, item(1, 1)], readers: new Map([['bob', 2]]) });
    expect([...seenByMarkers(r, 'me', new Map())]).toEqual([['1:1', 'bob']]);
  });
});

describe('typingText', () => {
  const u = (n: string) => ({ userId: n.toLowerCase(), username: n });
  it('names the others typing, not us', () => {
    expect(typingText([], 'me')).toBe('');
    expect(typingText([u('Me')], 'me')).toBe('');
    expect(typingText([u('Alice'), u('Me')], 'me')).toBe('Alice is typing…');
    expect(typingText([u('Alice'), u('Bob')], 'me')).toBe('Alice and Bob are typing…');
    expect(typingText([u('A'), u('B'), u('C')], 'me')).toBe('A, B and C are typing…');
    expect(typingText([u('A'), u('B'), u('C'), u('D'), u('E')], 'me')).toBe('A, B and 3 others are typing…');
  });
  it('counts the typists a long frame does not name', () => {
    const ten = 'ABCDEFGHIJ'.split('').map(u);
    expect(typingText(ten, 'me', 42)).toBe('A, B and 40 others are typing…');
    expect(typingText([u('Me'), ...ten.slice(0, 9)], 'me', 42)).toBe('A, B and 39 others are typing…');
    expect(typingText([u('A'), u('B')], 'me', 3)).toBe('A, B and 1 other are typing…');
  });
});

describe('roomPeople', () => {
  it('lists us first among the online, then everyone else known with the newest last seen first', () => {
    const r = room({
      members: new Map([member('me', true), member('zed', true), member('bob', false, '2026-11-21T10:00:00.000Z'), member('old', false)]),
      items: [item(1, 0, 'ann'), item(2, 0, 'zed')],
      readers: new Map([['cy', 1]]),
    });
    const directory = new Map([
      ['ann', { online: false, lastSeen: '2026-11-21T11:00:00.000Z' }],
      ['old', { online: false, lastSeen: '2026-11-20T09:00:00.000Z' }],
    ]);
    const { online, offline } = roomPeople(r, { selfId: 'me', names: new Map([['cy', 'Cy']]), directory });
    expect(online.map((p) => p.userId)).toEqual(['me', 'zed']);
    expect(offline.map((p) => [p.username, p.lastSeen])).toEqual([
      ['Ann', '2026-11-21T11:00:00.000Z'],
      ['Bob', '2026-11-21T10:00:00.000Z'],
      ['Old', '2026-11-20T09:00:00.000Z'],
      ['Cy', null],
    ]);
  });
});

describe('lastSeenLabel', () => {
  it('says when, or offline when unknown', () => {
    const now = new Date('2026-11-21T12:00:00.000Z');
    expect(lastSeenLabel(null, now)).toBe('offline');
    expect(lastSeenLabel('garbage', now)).toBe('offline');
    expect(lastSeenLabel('2026-11-21T11:59:00.000Z', now)).toMatch(/^last seen /);
    expect(lastSeenLabel('2026-11-01T11:59:00.000Z', now)).toMatch(/^last seen .+, /);
  });
});

describe('room errors and notices (Rooms API)', () => {
  it('a refused subscription says what it means; other errors keep the server\'s words after the room', () => {
    expect(roomErrorText('forbidden', 'team', 'not a member')).toBe('you are not a member of #team');
    expect(roomErrorText('room_not_found', 'team', 'no room')).toBe('#team does not exist (any more)');
    expect(roomErrorText('rate_limited', 'team', 'slow down')).toBe('#team: slow down');
    expect(roomErrorText('forbidden', undefined, 'not allowed')).toBe('not allowed');
    expect(roomRefusalText('invalid_room', 'x')).toBeNull();
  });

  it('says why a room went away, by its name when it has one', () => {
    expect(roomEndedText('removed', 'r-1')).toBe('You were removed from #r-1.');
    expect(roomEndedText('room_deleted', 'r-1', 'Team')).toBe('Team (#r-1) was deleted.');
    expect(roomEndedText('room_deleted', 'team', 'team')).toBe('#team was deleted.');
  });
});
