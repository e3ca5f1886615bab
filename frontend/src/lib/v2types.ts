// Wire types of protocol v2 (docs/PROTOCOL.md §7). Unknown fields are ignored, and so
// is every frame that is not one of these (v1 join/leave are never sent to v2).
import { isMessage, parseFrame, type ChatMessage } from './types';

export interface UserRef {
  userId: string;
  username: string;
}

export interface HelloFrame {
  type: 'hello';
  proto: number;
  userId: string;
  username: string;
  connectionId: string;
  node: string;
  limits: { subscriptions: number; contentChars: number; frameBytes: number; clientMsgIdChars: number };
}

export interface SubscribedFrame {
  type: 'subscribed';
  id?: number;
  roomId: string;
  epoch: string;
  /** The room's last seq when the subscription began. */
  seq: number;
  recovered: boolean;
  /** This user's read marker in the room (0: none). */
  lastRead: number;
  /** Distinct users connected to the room, this one included. */
  online: number;
  /**
   * Within PRESENCE_MAX_MEMBERS: who was online as of the room's last `presence` frame,
   * the set the next frame's `joined`/`left` change. Absent above the bound (or with
   * PRESENCE off): then only `GET /api/rooms/{id}/presence` lists the room.
   */
  users?: UserRef[];
}

export interface UnsubscribedFrame {
  type: 'unsubscribed';
  id?: number;
  roomId: string;
  /**
   * `server`: the server API ended the subscription; `removed`: we are no longer a member
   * of the room; `room_deleted`: the room was deleted (Rooms API).
   */
  reason?: string;
}

export interface AckFrame {
  type: 'ack';
  id?: number;
  roomId: string;
  seq: number;
  messageId: string;
  clientMsgId?: string;
  duplicate: boolean;
}

export interface V2PresenceFrame {
  type: 'presence';
  roomId: string;
  online: number;
  joined: UserRef[];
  left: { userId: string; lastSeen: string | null }[];
  /**
   * Everyone online now, on the first frame after the room was over PRESENCE_MAX_MEMBERS
   * (the joins and leaves in between went unannounced): replaces the set, and then
   * `joined`/`left` apply.
   */
  users?: UserRef[];
  /** The frame carried no `joined`/`left` (above PRESENCE_MAX_MEMBERS: a count only). */
  countOnly?: true;
}

export interface TypingFrame {
  type: 'typing';
  roomId: string;
  /** At most ten of them (PROTOCOL.md §7.1). */
  users: UserRef[];
  /** How many type in all (`users.length` from a server that does not say). */
  count: number;
}

export interface ReadFrame {
  type: 'read';
  roomId: string;
  userId: string;
  seq: number;
}

export interface V2ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  id?: number;
  roomId?: string;
}

export type V2Frame =
  | HelloFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | ChatMessage
  | AckFrame
  | V2PresenceFrame
  | TypingFrame
  | ReadFrame
  | V2ErrorFrame;

const isStr = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const optId = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);
const num = (v: unknown, d: number): number => (isCount(v) ? v : d);

function users(v: unknown): UserRef[] {
  if (!Array.isArray(v)) return [];
  const out: UserRef[] = [];
  for (const u of v) {
    if (!u || typeof u !== 'object') continue;
    const r = u as Record<string, unknown>;
    if (!isStr(r.userId) || r.userId === '') continue;
    out.push({ userId: r.userId, username: isStr(r.username) && r.username !== '' ? r.username : r.userId });
  }
  return out;
}

/** Validate and narrow one v2 text frame. Returns null for anything unusable or unknown. */
export function parseV2Frame(raw: unknown): V2Frame | null {
  let v: unknown = raw;
  if (typeof raw === 'string') {
    try {
      v = JSON.parse(raw);
    } catch {
      return null;
    }
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  switch (o.type) {
    case 'hello': {
      const l = (o.limits && typeof o.limits === 'object' ? o.limits : {}) as Record<string, unknown>;
      return {
        type: 'hello',
        proto: num(o.proto, 2),
        userId: isStr(o.userId) ? o.userId : '',
        username: isStr(o.username) ? o.username : '',
        connectionId: isStr(o.connectionId) ? o.connectionId : '',
        node: isStr(o.node) ? o.node : '',
        limits: {
          subscriptions: num(l.subscriptions, 64),
          contentChars: num(l.contentChars, 1000),
          frameBytes: num(l.frameBytes, 8192),
          clientMsgIdChars: num(l.clientMsgIdChars, 64),
        },
      };
    }
    case 'subscribed': {
      if (!isStr(o.roomId) || !isCount(o.seq)) return null;
      const f: SubscribedFrame = {
        type: 'subscribed',
        id: optId(o.id),
        roomId: o.roomId,
        epoch: isStr(o.epoch) ? o.epoch : '',
        seq: o.seq,
        recovered: o.recovered === true,
        lastRead: num(o.lastRead, 0),
        online: num(o.online, 0),
      };
      if (Array.isArray(o.users)) f.users = users(o.users);
      return f;
    }
    case 'unsubscribed':
      if (!isStr(o.roomId)) return null;
      return { type: 'unsubscribed', id: optId(o.id), roomId: o.roomId, reason: isStr(o.reason) ? o.reason : undefined };
    case 'chat':
    case 'system': {
      const m = parseFrame(o);
      return m && isMessage(m) && m.roomId !== '' ? m : null;
    }
    case 'ack':
      if (!isStr(o.roomId) || !isCount(o.seq)) return null;
      return {
        type: 'ack',
        id: optId(o.id),
        roomId: o.roomId,
        seq: o.seq,
        messageId: isStr(o.messageId) ? o.messageId : '',
        clientMsgId: isStr(o.clientMsgId) ? o.clientMsgId : undefined,
        duplicate: o.duplicate === true,
      };
    case 'presence': {
      if (!isStr(o.roomId)) return null;
      const left: V2PresenceFrame['left'] = [];
      if (Array.isArray(o.left)) {
        for (const u of o.left) {
          if (!u || typeof u !== 'object') continue;
          const r = u as Record<string, unknown>;
          if (!isStr(r.userId) || r.userId === '') continue;
          left.push({ userId: r.userId, lastSeen: isStr(r.lastSeen) ? r.lastSeen : null });
        }
      }
      const f: V2PresenceFrame = { type: 'presence', roomId: o.roomId, online: num(o.online, -1), joined: users(o.joined), left };
      if (Array.isArray(o.users)) f.users = users(o.users);
      if (!Array.isArray(o.joined) && !Array.isArray(o.left) && !f.users) f.countOnly = true;
      return f;
    }
    case 'typing':
      if (!isStr(o.roomId)) return null;
    {
      const list = users(o.users);
      const count = isCount(o.count) ? Math.max(o.count, list.length) : list.length;
      return { type: 'typing', roomId: o.roomId, users: list, count };
    }
    case 'read':
      if (!isStr(o.roomId) || !isStr(o.userId) || !isCount(o.seq)) return null;
      return { type: 'read', roomId: o.roomId, userId: o.userId, seq: o.seq };
    case 'error':
      return {
        type: 'error',
        code: isStr(o.code) ? o.code : 'unknown',
        message: isStr(o.message) ? o.message : '',
        id: optId(o.id),
        roomId: isStr(o.roomId) ? o.roomId : undefined,
      };
    default:
      return null;
  }
}
