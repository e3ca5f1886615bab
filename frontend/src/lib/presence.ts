import type { PresenceFrame } from './types';

/** Who is in the room: userId -> display name and number of open connections. */
export interface Member {
  userId: string;
  username: string;
  /** Connections counted from join/leave frames (1 for a user known from a snapshot only). */
  connections: number;
  /** When the user arrived (RFC 3339), from the presence endpoint. */
  since?: string;
}

export interface Presence {
  members: ReadonlyMap<string, Member>;
  /**
   * Users the server counted in its last snapshot (`online`) but did not list
   * (`truncated`): they are in the count, not in `members`.
   */
  unlisted: number;
}

export const emptyPresence: Presence = { members: new Map(), unlisted: 0 };

/** Users in the room: the ones we know by name plus the ones only counted. */
export function presenceCount(p: Presence): number {
  return p.members.size + p.unlisted;
}

export function applyPresence(p: Presence, frames: readonly PresenceFrame[]): Presence {
  if (frames.length === 0) return p;
  const next = new Map(p.members);
  for (const f of frames) {
    const cur = next.get(f.userId);
    if (f.type === 'join') {
      next.set(f.userId, {
        userId: f.userId,
        username: f.username || cur?.username || f.userId,
        connections: (cur?.connections ?? 0) + 1,
        since: cur?.since ?? f.timestamp,
      });
    } else if (cur) {
      if (cur.connections <= 1) next.delete(f.userId);
      else next.set(f.userId, { ...cur, connections: cur.connections - 1 });
    }
  }
  return { members: next, unlisted: p.unlisted };
}

/** One answer of `GET /api/rooms/{id}/presence`. */
export interface PresenceSnapshot {
  roomId: string;
  /** Distinct users connected to the room (may be more than `users`). */
  online: number;
  users: { userId: string; username: string; since: string }[];
  truncated: boolean;
}

/** Validate the presence endpoint's body. Returns null for anything unusable. */
export function parsePresenceSnapshot(raw: unknown): PresenceSnapshot | null {
  if (!raw || typeof raw !== 'object') return null;
  const o = raw as Record<string, unknown>;
  if (!Array.isArray(o.users)) return null;
  const seen = new Set<string>();
  const users: PresenceSnapshot['users'] = [];
  for (const u of o.users) {
    if (!u || typeof u !== 'object') continue;
    const r = u as Record<string, unknown>;
    if (typeof r.userId !== 'string' || r.userId === '' || seen.has(r.userId)) continue;
    seen.add(r.userId);
    users.push({
      userId: r.userId,
      username: typeof r.username === 'string' && r.username !== '' ? r.username : r.userId,
      since: typeof r.since === 'string' ? r.since : '',
    });
  }
  const online = typeof o.online === 'number' && Number.isFinite(o.online) ? Math.floor(o.online) : users.length;
  return {
    roomId: typeof o.roomId === 'string' ? o.roomId : '',
    // never fewer than listed, whatever the server says
    online: Math.max(online, users.length),
    users,
    truncated: o.truncated === true || online > users.length,
  };
}

/**
 * The list after a snapshot whose fetch started before the frames of the users in
 * `touched` arrived. For those users the frames are newer than (or as new as) the
 * snapshot, so their current entry (present or gone) stays; every other user is
 * present exactly when the snapshot lists them. Known connection counts and names are
 * kept, so an unchanged user does not change. `self` is always listed.
 */
export function mergeSnapshot(
  p: Presence,
  snap: PresenceSnapshot,
  touched: ReadonlySet<string>,
  self: { userId: string; username: string },
): Presence {
  const next = new Map<string, Member>();
  for (const u of snap.users) {
    if (touched.has(u.userId)) continue;
    const cur = p.members.get(u.userId);
    next.set(u.userId, {
      userId: u.userId,
      username: cur?.username ?? u.username,
      connections: cur?.connections ?? 1,
      since: u.since || cur?.since,
    });
  }
  for (const id of touched) {
    const cur = p.members.get(id);
    if (cur) next.set(id, cur);
  }
  let unlisted = Math.max(0, snap.online - snap.users.length);
  if (!next.has(self.userId)) {
    const cur = p.members.get(self.userId);
    next.set(self.userId, cur ?? { ...self, connections: 1 });
    // in a truncated answer we are most likely one of the users counted, not listed
    if (!snap.users.some((u) => u.userId === self.userId) && unlisted > 0) unlisted--;
  }
  return { members: next, unlisted };
}

/** Make sure `self` is listed (we know our own connection is open). */
export function ensureMember(p: Presence, self: { userId: string; username: string }): Presence {
  if (p.members.has(self.userId)) return p;
  const next = new Map(p.members);
  next.set(self.userId, { ...self, connections: 1 });
  return { members: next, unlisted: p.unlisted };
}

export function sortedMembers(p: Presence, selfId: string): Member[] {
  return Array.from(p.members.values()).sort((a, b) => {
    if (a.userId === selfId) return -1;
    if (b.userId === selfId) return 1;
    return a.username.localeCompare(b.username) || a.userId.localeCompare(b.userId);
  });
}
