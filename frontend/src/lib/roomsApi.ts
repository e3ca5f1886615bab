import { apiHeaders } from './token';
import { ApiError } from './apiError';

/**
 * Rooms API (issue 14): rooms with an owner, a visibility and members, made and changed
 * over HTTP with the tab's token (`Authorization: Bearer`). Every refusal is a
 * `RoomsApiError` with the server's `error` code (`room_exists`, `forbidden`,
 * `room_not_found`, `auth_disabled`, …) and its message.
 */

export type Visibility = 'public' | 'private' | 'group';
export type RoomRole = 'member' | 'admin';
export const VISIBILITIES: readonly Visibility[] = ['public', 'private', 'group'];

export interface RoomMember {
  userId: string;
  role: RoomRole;
}

export interface Room {
  roomId: string;
  name: string;
  visibility: Visibility;
  owner: string;
  createdAt: string;
  memberCount: number;
  members: RoomMember[];
  seq: number;
  epoch: string;
}

/** A room as `GET /api/users/{id}/rooms` lists it: with that user's role and read state. */
export interface UserRoom {
  roomId: string;
  name: string;
  visibility: Visibility;
  role: RoomRole;
  seq: number;
  lastRead: number;
  unread: number;
}

export interface NewRoom {
  roomId?: string;
  name: string;
  visibility: Visibility;
  members?: string[];
}

/** The longest room name the server takes. */
export const ROOM_NAME_MAX = 100;

/** What a refusal means when the server gives no message of its own. */
const MESSAGES: Record<string, string> = {
  auth_disabled: 'This server has no token auth: rooms cannot be managed.',
  forbidden: 'You may not do that in this room.',
  room_not_found: 'There is no such room.',
  room_exists: 'A room with that id exists already.',
  room_full: 'The room is full.',
  invalid_member: 'The owner cannot leave the room.',
  invalid_body: 'The server could not use that request.',
  invalid_room: 'That is not a valid room id.',
  body_too_large: 'That request is too large.',
  unauthorized: 'Sign in first: the token is missing or expired.',
};

/** A rooms API request that failed (see {@link ApiError}). */
export class RoomsApiError extends ApiError {
  override name = 'RoomsApiError';
}

export interface RoomsApi {
  createRoom(room: NewRoom): Promise<Room>;
  getRoom(roomId: string): Promise<Room>;
  /** Add (or re-role) a member; without a role, a member. */
  inviteMember(roomId: string, userId: string, role?: RoomRole): Promise<Room>;
  /** Remove a member; removing yourself is leaving. */
  removeMember(roomId: string, userId: string): Promise<Room>;
  deleteRoom(roomId: string): Promise<void>;
  userRooms(userId: string): Promise<UserRoom[]>;
  /** A direct message: a group room "<me> & <other>" with `other` as its member. */
  directMessage(me: string, other: string): Promise<Room>;
}

export interface RoomsApiOptions {
  fetchImpl?: typeof fetch;
  /** The token to send (default: the tab's, read on every request). */
  token?: () => string | null;
  timeoutMs?: number;
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
const visibility = (v: unknown): Visibility | null => (VISIBILITIES.includes(v as Visibility) ? (v as Visibility) : null);
const role = (v: unknown): RoomRole => (v === 'admin' ? 'admin' : 'member');

export function parseRoom(v: unknown): Room | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const vis = visibility(o.visibility);
  if (!isStr(o.roomId) || o.roomId === '' || !vis) return null;
  const members: RoomMember[] = [];
  if (Array.isArray(o.members)) {
    for (const m of o.members) {
      if (m && typeof m === 'object' && isStr((m as Record<string, unknown>).userId)) {
        members.push({ userId: (m as Record<string, unknown>).userId as string, role: role((m as Record<string, unknown>).role) });
      }
    }
  }
  return {
    roomId: o.roomId,
    name: isStr(o.name) ? o.name : o.roomId,
    visibility: vis,
    owner: isStr(o.owner) ? o.owner : '',
    createdAt: isStr(o.createdAt) ? o.createdAt : '',
    memberCount: typeof o.memberCount === 'number' ? count(o.memberCount) : members.length,
    members,
    seq: count(o.seq),
    epoch: isStr(o.epoch) ? o.epoch : '',
  };
}

function parseUserRoom(v: unknown): UserRoom | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const vis = visibility(o.visibility);
  if (!isStr(o.roomId) || o.roomId === '' || !vis) return null;
  return { roomId: o.roomId, name: isStr(o.name) ? o.name : o.roomId, visibility: vis, role: role(o.role), seq: count(o.seq), lastRead: count(o.lastRead), unread: count(o.unread) };
}

/** "<me> & <other>", cut to the longest name the server takes. */
export function dmName(me: string, other: string): string {
  return Array.from(`${me} & ${other}`).slice(0, ROOM_NAME_MAX).join('');
}

/** The Rooms API of the server at `http` ("" for same origin, as `server().http`). */
export function roomsApi(http: string, o: RoomsApiOptions = {}): RoomsApi {
  const timeoutMs = o.timeoutMs ?? 8_000;

  async function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers = apiHeaders(o.token ? o.token() : undefined);
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    let r: Response;
    try {
      r = await (o.fetchImpl ?? fetch)(`${http}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: ctl.signal });
    } catch {
      throw ctl.signal.aborted ? new RoomsApiError('timeout', 'The server did not answer in time.') : new RoomsApiError('network', 'The server cannot be reached.');
    } finally {
      clearTimeout(timer);
    }
    if (r.status === 204) return null;
    let json: unknown = null;
    try {
      json = await r.json();
    } catch {
      /* no JSON body */
    }
    if (!r.ok) {
      const b = (json && typeof json === 'object' ? json : {}) as Record<string, unknown>;
      const code = isStr(b.error) && b.error ? b.error : `http_${r.status}`;
      const message = isStr(b.message) && b.message ? b.message : (MESSAGES[code] ?? `The server answered ${r.status}.`);
      throw new RoomsApiError(code, message, r.status);
    }
    return json;
  }

  const room = async (p: Promise<unknown>): Promise<Room> => {
    const got = parseRoom(await p);
    if (!got) throw new RoomsApiError('invalid_response', 'The server answered something unexpected.');
    return got;
  };
  const rid = (id: string) => `/api/rooms/${encodeURIComponent(id)}`;

  const api: RoomsApi = {
    createRoom: (n) => {
      const body: NewRoom = { name: n.name, visibility: n.visibility };
      if (n.roomId) body.roomId = n.roomId;
      if (n.members?.length) body.members = n.members;
      return room(call('POST', '/api/rooms', body));
    },
    getRoom: (id) => room(call('GET', rid(id))),
    inviteMember: (id, userId, r = 'member') => room(call('PUT', `${rid(id)}/members/${encodeURIComponent(userId)}`, { role: r })),
    removeMember: (id, userId) => room(call('DELETE', `${rid(id)}/members/${encodeURIComponent(userId)}`)),
    deleteRoom: async (id) => {
      await call('DELETE', rid(id));
    },
    userRooms: async (userId) => {
      const b = (await call('GET', `/api/users/${encodeURIComponent(userId)}/rooms`)) as { rooms?: unknown } | null;
      if (!b || !Array.isArray(b.rooms)) throw new RoomsApiError('invalid_response', 'The server answered something unexpected.');
      return b.rooms.map(parseUserRoom).filter((x): x is UserRoom => x !== null);
    },
    directMessage: (me, other) => api.createRoom({ name: dmName(me, other), visibility: 'group', members: [other] }),
  };
  return api;
}

/** Members typed as "bob, carol": split on commas, trimmed, de-duplicated, in order. */
export function parseMembers(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(',')) {
    const m = raw.trim();
    if (m && !out.includes(m)) out.push(m);
  }
  return out;
}
