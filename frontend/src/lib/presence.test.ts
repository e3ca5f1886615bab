import { applyPresence, emptyPresence, ensureMember, presenceFromDetails, sortedMembers } from './presence';
import type { PresenceFrame } from './types';

const ev = (type: 'join' | 'leave', userId: string, username = userId): PresenceFrame => ({
  type,
  userId,
  username,
  roomId: 'r',
  timestamp: '2026-11-21T10:00:00.000Z',
});

describe('presence', () => {
  it('counts connections per user: a user with two tabs stays until both leave', () => {
    let p = applyPresence(emptyPresence, [ev('join', 'a', 'Alice'), ev('join', 'a', 'Alice'), ev('join', 'b', 'Bob')]);
    expect(p.get('a')?.connections).toBe(2);
    p = applyPresence(p, [ev('leave', 'a')]);
    expect(p.get('a')?.connections).toBe(1);
    p = applyPresence(p, [ev('leave', 'a'), ev('leave', 'nobody')]);
    expect(p.has('a')).toBe(false);
    expect([...p.keys()]).toEqual(['b']);
  });

  it('seeds from activeUserDetails of this room only', () => {
    const p = presenceFromDetails(
      [
        { clientId: '1', userId: 'a', username: 'Alice', roomId: 'r', joinedAt: '' },
        { clientId: '2', userId: 'a', username: 'Alice', roomId: 'r', joinedAt: '' },
        { clientId: '3', userId: 'b', username: 'Bob', roomId: 'other', joinedAt: '' },
      ],
      'r',
    );
    expect(p.size).toBe(1);
    expect(p.get('a')?.connections).toBe(2);
  });

  it('lists self first, then by name', () => {
    let p = applyPresence(emptyPresence, [ev('join', 'z', 'Zed'), ev('join', 'b', 'Bob')]);
    p = ensureMember(p, { userId: 'me', username: 'Me' });
    expect(sortedMembers(p, 'me').map((m) => m.username)).toEqual(['Me', 'Bob', 'Zed']);
  });
});
