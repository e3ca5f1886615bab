// What the v2 room view shows, computed from a room snapshot (pure, so it is unit-tested).
import type { RoomView, V2State } from './v2client';
import type { UserRef } from './v2types';

/**
 * "seen by" markers: each other user's name under the newest message (of the current
 * epoch) at or before their read marker. Item key → "Alice, Bob" (names sorted).
 */
export function seenByMarkers(room: RoomView, selfId: string, names: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  if (room.readers.size === 0) return out;
  const epoch = room.items.reduce((e, it) => Math.max(e, it.epoch), 0);
  const msgs: { seq: number; key: string }[] = [];
  for (const it of room.items) if (it.kind === 'message' && it.epoch === epoch) msgs.push({ seq: it.msg.seq, key: it.key });
  if (msgs.length === 0) return out;
  const byKey = new Map<string, string[]>();
  for (const [userId, seq] of room.readers) {
    if (userId === selfId) continue;
    // the last message with msg.seq <= seq
    let lo = 0;
    let hi = msgs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (msgs[mid].seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) continue; // read up to before anything shown
    const key = msgs[lo - 1].key;
    const list = byKey.get(key) ?? [];
    list.push(names.get(userId) ?? room.members.get(userId)?.username ?? userId);
    byKey.set(key, list);
  }
  for (const [k, list] of byKey) out.set(k, list.sort((a, b) => a.localeCompare(b)).join(', '));
  return out;
}

/** "Alice is typing…", "Alice and Bob are typing…", "Alice, Bob and 2 others are typing…"; '' when nobody else. */
export function typingText(users: readonly UserRef[], selfId: string, count: number = users.length): string {
  const others = users.filter((u) => u.userId !== selfId).map((u) => u.username);
  // the frame names at most ten; `count` is everyone (us too, when we are among the named)
  const total = Math.max(others.length, count - (users.length - others.length));
  if (total === 0 || others.length === 0) return '';
  if (total === 1) return `${others[0]} is typing…`;
  if (total === 2 && others.length === 2) return `${others[0]} and ${others[1]} are typing…`;
  if (total === 3 && others.length === 3) return `${others[0]}, ${others[1]} and ${others[2]} are typing…`;
  const more = (n: number) => `${n} other${n === 1 ? '' : 's'}`;
  if (others.length === 1) return `${others[0]} and ${more(total - 1)} are typing…`;
  return `${others[0]}, ${others[1]} and ${more(total - 2)} are typing…`;
}

export interface PersonRow {
  userId: string;
  username: string;
  online: boolean;
  lastSeen: string | null;
  self: boolean;
}

/**
 * Everyone the room's view knows: online members (us first), then the others — members
 * who left, authors of messages shown, readers — newest last seen first.
 */
export function roomPeople(room: RoomView, state: Pick<V2State, 'selfId' | 'names' | 'directory'>): { online: PersonRow[]; offline: PersonRow[] } {
  const rows = new Map<string, PersonRow>();
  const nameOf = (id: string) => room.members.get(id)?.username ?? state.names.get(id) ?? id;
  for (const m of room.members.values()) {
    rows.set(m.userId, {
      userId: m.userId,
      username: m.username,
      online: m.online,
      lastSeen: m.online ? null : (m.lastSeen ?? state.directory.get(m.userId)?.lastSeen ?? null),
      self: m.userId === state.selfId,
    });
  }
  const add = (id: string, name?: string) => {
    if (rows.has(id)) return;
    rows.set(id, { userId: id, username: state.names.get(id) ?? name ?? nameOf(id), online: false, lastSeen: state.directory.get(id)?.lastSeen ?? null, self: id === state.selfId });
  };
  for (const it of room.items) if (it.kind === 'message') add(it.msg.userId, it.msg.username);
  for (const id of room.readers.keys()) add(id);
  const all = [...rows.values()];
  const byName = (a: PersonRow, b: PersonRow) => a.username.localeCompare(b.username) || a.userId.localeCompare(b.userId);
  const online = all.filter((p) => p.online || p.self).sort((a, b) => (a.self ? -1 : b.self ? 1 : byName(a, b)));
  const offline = all
    .filter((p) => !p.online && !p.self)
    .sort((a, b) => (b.lastSeen ?? '').localeCompare(a.lastSeen ?? '') || byName(a, b));
  return { online, offline };
}

/** "last seen 10:32:05" today, "last seen 21 Nov, 10:32" before; "offline" when unknown. */
export function lastSeenLabel(iso: string | null, now: Date = new Date()): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (!Number.isFinite(t)) return 'offline';
  const d = new Date(t);
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? `last seen ${d.toLocaleTimeString()}`
    : `last seen ${d.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })}, ${d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}`;
}

/**
 * What a v2 error about a room says to the user: the refusals of the Rooms API in words
 * ("you are not a member of #team"), anything else as the server put it, after the room.
 */
export function roomErrorText(code: string, roomId: string | undefined, message: string): string {
  if (!roomId) return message;
  return roomRefusalText(code, roomId) ?? `#${roomId}: ${message}`;
}

/** A refused subscription of the Rooms API in words (null: some other error). */
export function roomRefusalText(code: string, roomId: string): string | null {
  if (code === 'forbidden') return `you are not a member of #${roomId}`;
  if (code === 'room_not_found') return `#${roomId} does not exist (any more)`;
  return null;
}

/** The notice when the server ended a subscription because the room is no longer ours. */
export function roomEndedText(reason: 'removed' | 'room_deleted', roomId: string, name?: string): string {
  const room = name && name !== roomId ? `${name} (#${roomId})` : `#${roomId}`;
  return reason === 'room_deleted' ? `${room} was deleted.` : `You were removed from ${room}.`;
}
