import type { ActiveUserDetail, PresenceFrame } from './types';

/** Who is in the room: userId -> display name and number of open connections. */
export interface Member {
  userId: string;
  username: string;
  connections: number;
}

export type Presence = ReadonlyMap<string, Member>;

export const emptyPresence: Presence = new Map();

export function applyPresence(p: Presence, frames: readonly PresenceFrame[]): Presence {
  if (frames.length === 0) return p;
  const next = new Map(p);
  for (const f of frames) {
    const cur = next.get(f.userId);
    if (f.type === 'join') {
      next.set(f.userId, {
        userId: f.userId,
        username: f.username || cur?.username || f.userId,
        connections: (cur?.connections ?? 0) + 1,
      });
    } else if (cur) {
      if (cur.connections <= 1) next.delete(f.userId);
      else next.set(f.userId, { ...cur, connections: cur.connections - 1 });
    }
  }
  return next;
}

/** Baseline from the analytics snapshot's activeUserDetails for one room. */
export function presenceFromDetails(details: readonly ActiveUserDetail[], roomId: string): Presence {
  const next = new Map<string, Member>();
  for (const d of details) {
    if (d.roomId !== roomId) continue;
    const cur = next.get(d.userId);
    next.set(d.userId, {
      userId: d.userId,
      username: d.username || cur?.username || d.userId,
      connections: (cur?.connections ?? 0) + 1,
    });
  }
  return next;
}

/** Make sure `self` is listed (we know our own connection is open). */
export function ensureMember(p: Presence, self: { userId: string; username: string }): Presence {
  if (p.has(self.userId)) return p;
  const next = new Map(p);
  next.set(self.userId, { ...self, connections: 1 });
  return next;
}

export function sortedMembers(p: Presence, selfId: string): Member[] {
  return Array.from(p.values()).sort((a, b) => {
    if (a.userId === selfId) return -1;
    if (b.userId === selfId) return 1;
    return a.username.localeCompare(b.username) || a.userId.localeCompare(b.userId);
  });
}
