// Wire types, exactly as PROTOCOL.md defines them. Unknown fields are ignored.
import { parseAttachments, type Attachment } from './attachments';

export interface ChatMessage {
  messageId: string;
  roomId: string;
  /** `system`: an announcement made through the server API, not a user's words. */
  type: 'chat' | 'system';
  userId: string;
  username: string;
  content: string;
  timestamp: string; // RFC 3339, always .mmmZ
  seq: number;
  /** Files shared with the message (absent when none). */
  attachments?: Attachment[];
}

export interface PresenceFrame {
  type: 'join' | 'leave';
  roomId: string;
  userId: string;
  username: string;
  timestamp: string;
}

export type ErrorCode =
  | 'invalid_json'
  | 'invalid_type'
  | 'empty_content'
  | 'content_too_long'
  | 'rate_limited'
  | 'overloaded';

export interface ErrorFrame {
  type: 'error';
  code: ErrorCode | string;
  message: string;
}

export type ServerFrame = ChatMessage | PresenceFrame | ErrorFrame;

export interface RoomSummary {
  roomId: string;
  connections: number;
  users: number;
}

export interface ActiveUserDetail {
  clientId: string;
  userId: string;
  username: string;
  roomId?: string;
  joinedAt: string;
}

export interface WorkerLoad {
  id: number;
  connections: number;
  messages: number;
  deliveries?: number;
  /** Bytes of room history the worker retains (bounded by MAX_HISTORY_BYTES). */
  historyBytes?: number;
}

export interface RoomActivity {
  roomId: string;
  connections: number;
  users: number;
  messages: number;
}

export interface PersistenceStats {
  enabled: boolean;
  status?: 'ok' | 'unavailable' | string;
  queued?: number;
  written?: number;
  retried?: number;
  failed?: number;
  dropped?: number;
  queueDepth?: number;
  batchP99Ms?: number;
}

export interface AnalyticsSnapshot {
  totalMessages: number;
  activeConnections: number;
  activeUsers: number;
  peakConnections: number;
  messagesPerMinute: number[];
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
  activeUserDetails: ActiveUserDetail[];
  uptimeSeconds: number;
  serverStartTime: string;
  slowConsumerDisconnects?: number;
  /** Joins and leaves not announced: their room was over PRESENCE_MAX_MEMBERS. */
  presenceWithheld?: number;
  /** v2 typing frames dropped by their connection's typing bucket. */
  typingDropped?: number;
  /** v2 sends acknowledged as duplicates of an earlier clientMsgId (not broadcast again). */
  duplicatesAcked?: number;
  /** v2 recoveries that went past the memory ring to the durable store. */
  recoveredFromStore?: number;
  // hubbub extras, all optional
  workers?: WorkerLoad[];
  roomActivity?: RoomActivity[];
  totalDeliveries?: number;
  rateLimited?: number;
  rejected?: number;
  overloaded?: number;
  /** Number of rooms with at least one connection. */
  rooms?: number;
  activeUserDetailsTruncated?: boolean;
  persistence?: PersistenceStats;
}

/** A chat or system message (the frames that carry a `seq`). */
export function isMessage(f: { type: string }): f is ChatMessage {
  return f.type === 'chat' || f.type === 'system';
}

/** Validate and narrow one parsed text frame. Returns null for anything unusable. */
export function parseFrame(raw: unknown): ServerFrame | null {
  let v: unknown = raw;
  if (typeof raw === 'string') {
    try {
      v = JSON.parse(raw);
    } catch {
      return null;
    }
  }
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  switch (o.type) {
    case 'chat':
    case 'system':
      if (
        typeof o.messageId === 'string' &&
        typeof o.content === 'string' &&
        typeof o.userId === 'string' &&
        typeof o.timestamp === 'string' &&
        typeof o.seq === 'number' &&
        Number.isFinite(o.seq)
      ) {
        const m: ChatMessage = {
          messageId: o.messageId,
          roomId: String(o.roomId ?? ''),
          type: o.type,
          userId: o.userId,
          username: typeof o.username === 'string' ? o.username : o.userId,
          content: o.content,
          timestamp: o.timestamp,
          seq: o.seq,
        };
        const attachments = parseAttachments(o.attachments);
        if (attachments) m.attachments = attachments;
        return m;
      }
      return null;
    case 'join':
    case 'leave':
      if (typeof o.userId !== 'string') return null;
      return {
        type: o.type,
        roomId: String(o.roomId ?? ''),
        userId: o.userId,
        username: typeof o.username === 'string' ? o.username : o.userId,
        timestamp: typeof o.timestamp === 'string' ? o.timestamp : new Date().toISOString(),
      };
    case 'error':
      return {
        type: 'error',
        code: typeof o.code === 'string' ? o.code : 'unknown',
        message: typeof o.message === 'string' ? o.message : '',
      };
    default:
      return null;
  }
}
