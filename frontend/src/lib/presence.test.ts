import {
  applyPresence,
  emptyPresence,
  ensureMember,
  mergeSnapshot,
  parsePresenceSnapshot,
  presenceCount,
  sortedMembers,
  type Presence,
  type PresenceSnapshot,
} from './presence';
import type { PresenceFrame } from './types';

const ev = (type: 'join' | 'leave', userId: string, username = userId): PresenceFrame => ({
  type,
  userId,
  username,
  roomId: 'r',
  timestamp: '2026-11-21T10:00:00.000Z',
});

const me = { userId: 'me', username: 'Me' };
const since = '2026-11-21T09:00:00.000Z';
const snapshot = (ids: string[], online = ids.length): PresenceSnapshot => ({
  roomId: 'r',
  online,
  users: ids.map((id) => ({ userId: id, username: id.toUpperCase(), since })),
  truncated: online > ids.length,
});
const ids = (p: Presence) => [...p.members.keys()].sort();

describe('presence', () => {
  it('counts connections per user: a user with two tabs stays until both leave', () => {
    let p = applyPresence(emptyPresence, [ev('join', 'a', 'Alice'), ev('join', 'a', 'Alice'), ev('join', 'b', 'Bob')]);
    expect(p.members.get('a')?.connections).toBe(2);
    p = applyPresence(p, [ev('leave', 'a')]);
    expect(p.members.get('a')?.connections).toBe(1);
    p = applyPresence(p, [ev('leave', 'a'), ev('leave', 'nobody')]);
    expect(p.members.has('a')).toBe(false);
    expect([...p.members.keys()]).toEqual(['b']);
  });

  it('lists self first, then by name', () => {
    let p = applyPresence(emptyPresence, [ev('join', 'z', 'Zed'), ev('join', 'b', 'Bob')]);
    p = ensureMember(p, me);
    expect(sortedMembers(p, 'me').map((m) => m.username)).toEqual(['Me', 'Bob', 'Zed']);
  });
});

describe('parsePresenceSnapshot', () => {
  it('reads the endpoint answer as it is', () => {
    const answer = {
      roomId: 'r',
      online: 2,
      users: [
        { userId: 'a', username: 'Alice', since },
        { userId: 'b', username: 'Bob', since },
      ],
      truncated: false,
    };
    expect(parsePresenceSnapshot(JSON.parse(JSON.stringify(answer)))).toEqual(answer);
  });

  it('rejects what is not a presence answer', () => {
    for (const bad of [null, 'x', 42, [], {}, { online: 3 }, { users: 'a' }]) expect(parsePresenceSnapshot(bad)).toBeNull();
  });

  it('skips unusable and repeated users, names a nameless one by id', () => {
    const s = parsePresenceSnapshot({
      online: 2,
      users: [null, 'a', { username: 'no id' }, { userId: '' }, { userId: 'a', username: '' }, { userId: 'a', username: 'Again' }, { userId: 'b', username: 'Bob' }],
    });
    expect(s?.users.map((u) => [u.userId, u.username])).toEqual([
      ['a', 'a'],
      ['b', 'Bob'],
    ]);
    expect(s?.truncated).toBe(false);
  });

  it('keeps online for a truncated answer, and never counts fewer than it lists', () => {
    const big = parsePresenceSnapshot({ online: 1500, users: [{ userId: 'a', username: 'A', since }], truncated: true });
    expect(big?.online).toBe(1500);
    expect(big?.truncated).toBe(true);
    // truncated though the flag is missing
    expect(parsePresenceSnapshot({ online: 7, users: [{ userId: 'a' }] })?.truncated).toBe(true);
    // a missing or nonsensical online is the number listed
    expect(parsePresenceSnapshot({ users: [{ userId: 'a' }, { userId: 'b' }] })?.online).toBe(2);
    expect(parsePresenceSnapshot({ online: -1, users: [{ userId: 'a' }] })?.online).toBe(1);
    expect(parsePresenceSnapshot({ online: 0, users: [{ userId: 'a' }] })?.online).toBe(1);
  });
});

describe('mergeSnapshot', () => {
  it('follows the snapshot for users with no frame since the fetch started', () => {
    // local: a (2 tabs, from frames) and gone (left without a frame: a big room)
    const local = applyPresence(emptyPresence, [ev('join', 'a', 'Alice'), ev('join', 'a', 'Alice'), ev('join', 'gone')]);
    const p = mergeSnapshot(local, snapshot(['a', 'new', 'me']), new Set(), me);
    expect(ids(p)).toEqual(['a', 'me', 'new']);
    // what the frames knew of a user is kept: name and connection count
    expect(p.members.get('a')).toMatchObject({ username: 'Alice', connections: 2, since });
    expect(p.members.get('new')).toMatchObject({ username: 'NEW', connections: 1, since });
    expect(presenceCount(p)).toBe(3);
  });

  it('lets frames received after the fetch started win for their users', () => {
    const local0 = applyPresence(emptyPresence, [ev('join', 'me', 'Me'), ev('join', 'b', 'Bob')]);
    // in flight: b leaves and z joins; the snapshot was taken before both
    const local = applyPresence(local0, [ev('leave', 'b'), ev('join', 'z', 'Zoe')]);
    const p = mergeSnapshot(local, snapshot(['b', 'me']), new Set(['b', 'z']), me);
    expect(ids(p)).toEqual(['me', 'z']);
    expect(presenceCount(p)).toBe(2);
  });

  it('always lists self, counted once', () => {
    const p = mergeSnapshot(emptyPresence, snapshot(['a']), new Set(), me);
    expect(ids(p)).toEqual(['a', 'me']);
    expect(presenceCount(p)).toBe(2);
    // our own leave in flight (another tab of ours closed) does not remove us
    const q = mergeSnapshot(emptyPresence, snapshot(['a', 'me']), new Set(['me']), me);
    expect(ids(q)).toEqual(['a', 'me']);
  });

  it('counts the users a truncated answer does not list', () => {
    const p = mergeSnapshot(emptyPresence, snapshot(['a', 'me'], 1500), new Set(), me);
    expect(p.members.size).toBe(2);
    expect(p.unlisted).toBe(1498);
    expect(presenceCount(p)).toBe(1500);
    // self not among those listed: one of the counted ones, not one more
    const q = mergeSnapshot(emptyPresence, snapshot(['a', 'b'], 1500), new Set(), me);
    expect(ids(q)).toEqual(['a', 'b', 'me']);
    expect(presenceCount(q)).toBe(1500);
    // and frames keep the count
    expect(presenceCount(applyPresence(q, [ev('join', 'c')]))).toBe(1501);
  });
});
