import type { AttachmentRef } from './attachments';
import type { BackoffOptions } from './backoff';
import { ChatClient, type SocketLike, type StatusInfo } from './chatClient';
import type { LogItem } from './messageLog';
import type { PresenceSnapshot } from './presence';
import type { ChatMessage } from './types';
import {
  parseV2Frame,
  type AckFrame,
  type HelloFrame,
  type ReadFrame,
  type SubscribedFrame,
  type UserRef,
  type V2ErrorFrame,
  type V2Frame,
  type V2PresenceFrame,
} from './v2types';

/**
 * A protocol v2 chat client (docs/PROTOCOL.md §7): one WebSocket (`proto=2`) carrying
 * several rooms at once.
 *
 * - Every request that the server answers carries an `id`; the answer (or the error) is
 *   matched back to it.
 * - Reconnects like the v1 client (full-jitter backoff, see `ChatClient`) and then
 *   subscribes to every room again with `since` = the newest `seq` it holds of that room
 *   and the `epoch` it was given, so that nothing is missed (`recovered:true`). A new
 *   epoch means the room's `seq` started again: the old messages stay, after a divider.
 * - A send may share uploaded files (`attachments: [{fileId}]`, lib/uploads.ts); a
 *   resend names the same ones.
 * - Each send carries a `clientMsgId`; a send not acknowledged when the connection drops
 *   is sent again (same `clientMsgId`) once its room is subscribed again, and the server
 *   answers a repeat with the first one's ack (`duplicate:true`) instead of a second copy.
 * - Chat frames are deduplicated per room by `seq` (and `messageId`); late ones are put
 *   in order.
 * - Typing: `typing()` on every keystroke sends `typing` at most every
 *   `typingIntervalMs` (2.5 s); `stopTyping()` (blur, emptied composer, another room,
 *   or `typingIdleMs` without a keystroke) sends `stop` once. A send sends no `stop`:
 *   the chat message itself ends typing on the server, and a stop would only spend a
 *   token of the typing bucket. The client keeps to that bucket (1 a second, bursts
 *   of 3, per connection; counted as 1 per 1.25 s for a margin) itself, because the
 *   server drops frames over it without a word: a frame that would be over waits for
 *   a token, and then only what the user still wants is sent (a typing that became a
 *   stop meanwhile is never sent).
 * - Read markers: `markRead(room, seq)` moves ours forward (the caller does it for the
 *   room on screen); `read` frames of others are kept per user for "seen by".
 * - Unread count per room: the room's `seq` − our `lastRead`.
 * - Rooms API: an `unsubscribed` with reason `removed` (no longer a member) or
 *   `room_deleted` drops the room from the list (`onEnded` says which); any other
 *   server-ended subscription leaves it in the list, failed.
 * - Who is online in a room (docs/PROTOCOL.md §7, Presence), per user: the set starts
 *   from `subscribed.users`, is replaced by a `presence` frame's `users` where one carries
 *   it, and then takes the frame's `joined` (online) and `left` (offline, with their
 *   `lastSeen`); a replaced-out member goes offline keeping the lastSeen it had, and we
 *   are always online. Above PRESENCE_MAX_MEMBERS (`subscribed` without `users`,
 *   count-only frames) `GET /api/rooms/{id}/presence` is the only list
 *   (`applyRoomPresence`): an answer loses, user by user, to the frames and `users`
 *   lists that came after its request started (`presenceToken`). While the frames keep
 *   the set exactly an answer changes no one's online state (it is racy against pending
 *   changes); it only tells since when those online have been there.
 *
 * State is kept mutable inside and handed out as immutable snapshots (`state`, and
 * `onChange`, batched every `flushMs`); a room's snapshot object (and its `items`) is
 * only replaced when that room changed, so views can memoize on identity.
 */

export interface V2Member {
  userId: string;
  username: string;
  online: boolean;
  /** When their last connection to the room closed (from a `left` entry or /api/presence). */
  lastSeen: string | null;
  /** When they came (the presence endpoint's `since`, or when we saw them join). */
  since?: string;
}

export interface PendingSend {
  clientMsgId: string;
  roomId: string;
  content: string;
  /** Uploaded files it shares (the request names their ids; the names are for showing). */
  attachments?: PendingAttachment[];
  /** Times it was put on a socket (0: not yet). */
  attempts: number;
}

export interface PendingAttachment extends AttachmentRef {
  name?: string;
}

export type RoomStatus = 'subscribing' | 'subscribed' | 'failed';

export interface RoomView {
  roomId: string;
  status: RoomStatus;
  error: { code: string; message: string } | null;
  epoch: string | null;
  /** The newest seq of the room we know of (from `subscribed`, chat frames and acks). */
  seq: number;
  /** Our read marker. */
  lastRead: number;
  /** seq − lastRead (0 until subscribed). */
  unread: number;
  recovered: boolean | null;
  items: LogItem[];
  /** seq of the newest message held (null: none). */
  newestSeq: number | null;
  /** Distinct users online in the room, as the server counts them. */
  online: number;
  members: ReadonlyMap<string, V2Member>;
  /** Who types, as the server last said (at most ten; our own user included). */
  typing: UserRef[];
  /** How many type in all. */
  typingCount: number;
  /** Other users' read markers: userId → seq. */
  readers: ReadonlyMap<string, number>;
  pending: PendingSend[];
  /** How many `subscribed` answers this room got (changes on each resubscribe). */
  subscriptions: number;
  /** Frames dropped as duplicates (by seq or messageId). */
  duplicates: number;
}

export interface V2State {
  status: StatusInfo;
  hello: HelloFrame | null;
  /** Our user id: `hello`'s (the server's word), else the one we asked for. */
  selfId: string;
  rooms: RoomView[];
  /** userId → display name, from every frame that named them. */
  names: ReadonlyMap<string, string>;
  /** Answers of `GET /api/presence?users=`: userId → whether connected anywhere, and when last seen. */
  directory: ReadonlyMap<string, { online: boolean; lastSeen: string | null }>;
}

export interface V2ClientOptions {
  /** The WebSocket URL (with `proto=2`, user id and name; no room). */
  url: () => string;
  self: UserRef;
  onChange?: (state: V2State) => void;
  /** Every error frame, after the client has dealt with it. */
  onError?: (e: V2ErrorFrame) => void;
  /**
   * The server ended a subscription because the room is no longer ours (`removed`: we are
   * no longer a member; `room_deleted`): the room has been dropped from the list.
   */
  onEnded?: (e: { roomId: string; reason: EndReason }) => void;
  createSocket?: (url: string) => SocketLike;
  random?: () => number;
  now?: () => number;
  backoff?: BackoffOptions;
  stableMs?: number;
  connectTimeoutMs?: number;
  /** Batch `onChange` calls (ms). */
  flushMs?: number;
  typingIntervalMs?: number;
  typingIdleMs?: number;
  maxMessages?: number;
  /** Prefix of our clientMsgIds (unique per page; random by default). */
  clientMsgIdPrefix?: string;
  /** Wait before subscribing again after `rate_limited`. */
  resubscribeDelayMs?: number;
}

/** Reasons of a server-ended subscription after which the room is gone for us (Rooms API). */
export type EndReason = 'removed' | 'room_deleted';
const END_REASONS: ReadonlySet<string> = new Set<EndReason>(['removed', 'room_deleted']);

type Request =
  | { kind: 'subscribe'; roomId: string }
  | { kind: 'unsubscribe'; roomId: string }
  | { kind: 'chat'; roomId: string; clientMsgId: string }
  | { kind: 'read'; roomId: string; seq: number };

const MAX_ID = 4_294_967_295;
/** The server's typing bucket per connection: 1 token a second, bursts of 3 (PROTOCOL.md §7.2). */
const TYPING_BURST = 3;
/**
 * The refill we count with: slower than the server's 1 s, because the server times a
 * frame when it arrives and a frame held up on the way (a busy tab, a loaded link) makes
 * the next one look early to it; a CI run lost a typing frame 1 s after the last so.
 */
const TYPING_REFILL_MS = 1_250;

class Room {
  status: RoomStatus = 'subscribing';
  error: { code: string; message: string } | null = null;
  epoch: string | null = null;
  seq = 0;
  /** Newest chat seq received in the current epoch: the next `since`. */
  seen: number | null = null;
  lastRead = 0;
  recovered: boolean | null = null;
  items: LogItem[] = [];
  held = new Set<number>(); // seqs of the current epoch
  ids = new Set<string>();
  epochIndex = 0;
  /** After a `recovered:false` answer: the seq to compare the next message with. */
  gapAfter: number | null = null;
  online = 0;
  members = new Map<string, V2Member>();
  typing: UserRef[] = [];
  typingCount = 0;
  readers = new Map<string, number>();
  subscriptions = 0;
  duplicates = 0;
  /**
   * Presence events counted (presence frames, and `subscribed` answers with `users`),
   * when each user was last named by one, and when the whole set was last replaced by a
   * `users` list: what is newer than a `GET …/presence` request wins over its answer.
   */
  presenceFrames = 0;
  touched = new Map<string, number>();
  replacedAt = 0;
  /**
   * The frames keep the online set exactly (from a `users` list on, until the room is
   * over PRESENCE_MAX_MEMBERS): `GET …/presence` answers then only fill in `since`.
   */
  exact = false;
  /** What the user is doing, and what the server was last told. */
  typingWanted = false;
  typingSent = false;
  typingSentAt = -Infinity;
  typingIdle: ReturnType<typeof setTimeout> | null = null;
  /** A frame waiting for a token of the typing bucket. */
  typingRetry: ReturnType<typeof setTimeout> | null = null;
  view: RoomView | null = null;
  itemsView: LogItem[] | null = null;
  constructor(readonly roomId: string) {}
}

let prefixCounter = 0;
function randomPrefix(random: () => number): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += Math.floor(random() * 36).toString(36);
  return `${s}${(prefixCounter++).toString(36)}`;
}

export class V2Client {
  private readonly socket: ChatClient<V2Frame>;
  private readonly rooms = new Map<string, Room>();
  /** Rooms unsubscribed whose `unsubscribed` has not come yet: their frames are dropped. */
  private readonly leaving = new Set<string>();
  private readonly requests = new Map<number, Request>();
  private outbox: PendingSend[] = [];
  private readonly names = new Map<string, string>();
  private directory = new Map<string, { online: boolean; lastSeen: string | null }>();
  private status: StatusInfo = { status: 'closed', attempt: 0, retryInMs: null, lastClose: null };
  private hello: HelloFrame | null = null;
  private nextRequestId = 1;
  private msgCounter = 0;
  private readonly prefix: string;
  private snapshot: V2State | null = null;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimers = new Set<ReturnType<typeof setTimeout>>();
  private stopped = false;
  /** The server's typing bucket for this connection, as we spend it. */
  private typingTokens = TYPING_BURST;
  private typingRefilledAt = 0;

  constructor(private readonly o: V2ClientOptions) {
    this.prefix = o.clientMsgIdPrefix ?? randomPrefix(o.random ?? Math.random);
    this.names.set(o.self.userId, o.self.username);
    this.socket = new ChatClient<V2Frame>({
      url: () => o.url(),
      resumeSeq: () => null,
      parse: parseV2Frame,
      onFrame: (f) => this.onFrame(f),
      onStatus: (info) => this.onStatus(info),
      onOpen: () => this.onOpen(),
      createSocket: o.createSocket,
      random: o.random,
      now: o.now,
      backoff: o.backoff,
      stableMs: o.stableMs,
      connectTimeoutMs: o.connectTimeoutMs,
    });
  }

  // ---------------------------------------------------------------- lifecycle

  start(): void {
    this.stopped = false;
    this.socket.start();
  }

  /** Close for good (the user left). */
  stop(): void {
    this.stopped = true;
    for (const r of this.rooms.values()) this.clearTypingTimers(r);
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.socket.stop();
  }

  retryNow(): void {
    this.socket.retryNow();
  }

  /** URLs connected to, in order (diagnostics and tests). */
  get history(): readonly string[] {
    return this.socket.history;
  }

  get selfId(): string {
    return this.hello?.userId || this.o.self.userId;
  }

  // ---------------------------------------------------------------- commands

  /** Enter a room (at once if connected, else on the next open). False if already in it or at the limit. */
  subscribe(roomId: string): boolean {
    const existing = this.rooms.get(roomId);
    if (existing) {
      // a failed subscription is tried again
      if (existing.status !== 'failed') return false;
      existing.error = null;
      if (this.status.status === 'open') this.sendSubscribe(existing);
      else existing.status = 'subscribing';
      this.changed(existing);
      return true;
    }
    const limit = this.hello?.limits.subscriptions;
    if (limit != null && this.rooms.size >= limit) return false;
    this.leaving.delete(roomId);
    const room = new Room(roomId);
    this.rooms.set(roomId, room);
    this.ensureSelf(room);
    if (this.status.status === 'open') this.sendSubscribe(room);
    this.changed(room);
    return true;
  }

  /** Leave a room: it is forgotten at once, with its unsent messages. */
  unsubscribe(roomId: string): boolean {
    const room = this.rooms.get(roomId);
    if (!room) return false;
    this.clearTypingTimers(room);
    this.rooms.delete(roomId);
    this.outbox = this.outbox.filter((p) => p.roomId !== roomId);
    // (also while the subscribe is in flight: the server takes them in order)
    if (this.status.status === 'open' && room.status !== 'failed') {
      this.leaving.add(roomId);
      this.request({ type: 'unsubscribe', roomId }, { kind: 'unsubscribe', roomId });
    }
    this.changed(null);
    return true;
  }

  /**
   * Send a message, with the files it shares (uploaded already; at most
   * `MAX_ATTACHMENTS`). It is kept until acknowledged and sent again after a reconnect.
   * Returns its clientMsgId, or null when the room is unknown.
   */
  send(roomId: string, content: string, attachments: readonly PendingAttachment[] = []): string | null {
    const room = this.rooms.get(roomId);
    if (!room) return null;
    const clientMsgId = `${this.prefix}-${++this.msgCounter}`;
    const p: PendingSend = { clientMsgId, roomId, content, attempts: 0 };
    if (attachments.length) p.attachments = attachments.map((a) => ({ ...a }));
    this.outbox.push(p);
    // a chat message ends typing on the server: no stop frame needed
    this.clearTypingTimers(room);
    room.typingWanted = false;
    if (room.status === 'subscribed' && this.status.status === 'open') {
      room.typingSent = false;
      room.typingSentAt = -Infinity;
    }
    if (this.status.status === 'open' && room.status === 'subscribed') this.transmit(p);
    this.changed(room);
    return clientMsgId;
  }

  /** The user typed in the room's composer. */
  typing(roomId: string): void {
    const room = this.rooms.get(roomId);
    if (!room || room.status !== 'subscribed' || this.status.status !== 'open') return;
    room.typingWanted = true;
    if (room.typingIdle) clearTimeout(room.typingIdle);
    room.typingIdle = setTimeout(() => {
      room.typingIdle = null;
      this.stopTyping(roomId);
    }, this.o.typingIdleMs ?? 5_000);
    this.syncTyping(room);
  }

  /** The user stopped typing (blurred, emptied the composer, left the room on screen). Sends `stop` once. */
  stopTyping(roomId: string): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    if (room.typingIdle) clearTimeout(room.typingIdle);
    room.typingIdle = null;
    room.typingWanted = false;
    this.syncTyping(room);
  }

  private syncTyping(room: Room): void {
    if (room.typingRetry || this.status.status !== 'open' || room.status !== 'subscribed') return;
    const now = this.now();
    const interval = this.o.typingIntervalMs ?? 2_500;
    const due = room.typingWanted ? !room.typingSent || now - room.typingSentAt >= interval : room.typingSent;
    if (!due) return;
    const wait = this.typingTokenWait(now);
    if (wait > 0) {
      room.typingRetry = setTimeout(() => {
        room.typingRetry = null;
        if (this.rooms.get(room.roomId) === room) this.syncTyping(room);
      }, wait);
      return;
    }
    const frame = room.typingWanted ? { type: 'typing', roomId: room.roomId } : { type: 'typing', roomId: room.roomId, stop: true };
    if (!this.socket.sendFrame(frame)) return;
    this.typingTokens -= 1;
    room.typingSent = room.typingWanted;
    room.typingSentAt = room.typingWanted ? now : -Infinity;
  }

  /** ms until the typing bucket has a token (0: it has one now). */
  private typingTokenWait(now: number): number {
    this.typingTokens = Math.min(TYPING_BURST, this.typingTokens + (now - this.typingRefilledAt) / TYPING_REFILL_MS);
    this.typingRefilledAt = now;
    return this.typingTokens >= 1 ? 0 : Math.ceil((1 - this.typingTokens) * TYPING_REFILL_MS);
  }

  private clearTypingTimers(room: Room): void {
    if (room.typingIdle) clearTimeout(room.typingIdle);
    if (room.typingRetry) clearTimeout(room.typingRetry);
    room.typingIdle = room.typingRetry = null;
  }

  /** Move our read marker forward to `seq` (the newest message shown). True if a `read` was sent. */
  markRead(roomId: string, seq: number): boolean {
    const room = this.rooms.get(roomId);
    if (!room || room.status !== 'subscribed' || this.status.status !== 'open') return false;
    const to = Math.min(seq, room.seq);
    if (!(to > room.lastRead)) return false;
    if (!this.request({ type: 'read', roomId, seq: to }, { kind: 'read', roomId, seq: to })) return false;
    room.lastRead = to;
    this.changed(room);
    return true;
  }

  // ---------------------------------------------------------------- HTTP results

  /** A token for `applyRoomPresence`: presence frames after it win over the answer. */
  presenceToken(roomId: string): number {
    return this.rooms.get(roomId)?.presenceFrames ?? 0;
  }

  /**
   * Merge an answer of `GET /api/rooms/{id}/presence` whose request started at `token`.
   * Listed users are online; members it does not list went offline (unless a presence
   * frame or a `users` list since the token said otherwise). While the frames keep the
   * set exactly (`users` seen, room within PRESENCE_MAX_MEMBERS) the answer, which a
   * pending change may already differ from, does not change who is online: it only
   * tells when those online came (`since`).
   */
  applyRoomPresence(roomId: string, snap: PresenceSnapshot, token: number): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    if (room.exact) {
      for (const u of snap.users) {
        this.names.set(u.userId, u.username);
        const cur = room.members.get(u.userId);
        if (cur?.online && u.since && cur.since !== u.since) room.members.set(u.userId, { ...cur, since: u.since });
      }
      this.changed(room);
      return;
    }
    const newer = (id: string) => Math.max(room.touched.get(id) ?? -1, room.replacedAt) > token;
    const listed = new Set<string>();
    for (const u of snap.users) {
      listed.add(u.userId);
      this.names.set(u.userId, u.username);
      if (newer(u.userId)) continue;
      const cur = room.members.get(u.userId);
      room.members.set(u.userId, { userId: u.userId, username: u.username, online: true, lastSeen: null, since: u.since || cur?.since });
    }
    if (!snap.truncated) {
      for (const m of room.members.values()) {
        if (m.online && !listed.has(m.userId) && !newer(m.userId) && m.userId !== this.selfId) {
          room.members.set(m.userId, { ...m, online: false });
        }
      }
    }
    if (room.presenceFrames <= token) room.online = snap.online;
    this.ensureSelf(room);
    this.changed(room);
  }

  /** Merge an answer of `GET /api/presence?users=`. */
  applyDirectory(users: Record<string, { online: boolean; lastSeen: string | null }>): void {
    const next = new Map(this.directory);
    for (const [id, v] of Object.entries(users)) next.set(id, v);
    this.directory = next;
    for (const room of this.rooms.values()) {
      let touched = false;
      for (const m of room.members.values()) {
        const d = users[m.userId];
        if (!m.online && d && d.lastSeen && m.lastSeen == null) {
          room.members.set(m.userId, { ...m, lastSeen: d.lastSeen });
          touched = true;
        }
      }
      if (touched) this.changed(room);
    }
    this.changed(null);
  }

  /**
   * Users of a room we know but who are not online in it and whose last seen we do not
   * know: offline members, authors of messages held, readers.
   */
  unknownLastSeen(roomId: string): string[] {
    const room = this.rooms.get(roomId);
    if (!room) return [];
    const out = new Set<string>();
    const consider = (id: string) => {
      if (id === this.selfId) return;
      const m = room.members.get(id);
      if (m && (m.online || m.lastSeen)) return;
      if (this.directory.has(id)) return;
      out.add(id);
    };
    for (const m of room.members.values()) consider(m.userId);
    for (const it of room.items) if (it.kind === 'message') consider(it.msg.userId);
    for (const id of room.readers.keys()) consider(id);
    return [...out];
  }

  // ---------------------------------------------------------------- state

  get state(): V2State {
    if (!this.snapshot) {
      const rooms: RoomView[] = [];
      for (const r of this.rooms.values()) rooms.push(this.viewOf(r));
      this.snapshot = {
        status: this.status,
        hello: this.hello,
        selfId: this.selfId,
        rooms,
        names: new Map(this.names),
        directory: this.directory,
      };
    }
    return this.snapshot;
  }

  room(roomId: string): RoomView | undefined {
    return this.state.rooms.find((r) => r.roomId === roomId);
  }

  private viewOf(r: Room): RoomView {
    if (r.view) return r.view;
    if (!r.itemsView) r.itemsView = r.items.slice();
    let newestSeq: number | null = null;
    for (let i = r.items.length - 1; i >= 0; i--) {
      const it = r.items[i];
      if (it.kind === 'message' && it.epoch === r.epochIndex) {
        newestSeq = it.msg.seq;
        break;
      }
    }
    const subscribedOnce = r.epoch !== null;
    r.view = {
      roomId: r.roomId,
      status: r.status,
      error: r.error,
      epoch: r.epoch,
      seq: r.seq,
      lastRead: r.lastRead,
      unread: subscribedOnce ? Math.max(0, r.seq - r.lastRead) : 0,
      recovered: r.recovered,
      items: r.itemsView,
      newestSeq,
      online: r.online,
      members: new Map(r.members),
      typing: r.typing,
      typingCount: r.typingCount,
      readers: new Map(r.readers),
      pending: this.outbox.filter((p) => p.roomId === r.roomId),
      subscriptions: r.subscriptions,
      duplicates: r.duplicates,
    };
    return r.view;
  }

  /** Something changed (in `room`, or only outside rooms when null): new snapshot, notify soon. */
  private changed(room: Room | null, itemsChanged = false): void {
    if (room) {
      room.view = null;
      if (itemsChanged) room.itemsView = null;
    }
    this.snapshot = null;
    if (this.stopped || !this.o.onChange || this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      if (!this.stopped) this.o.onChange?.(this.state);
    }, this.o.flushMs ?? 30);
  }

  // ---------------------------------------------------------------- socket

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private onStatus(info: StatusInfo): void {
    const wasOpen = this.status.status === 'open';
    this.status = info;
    if (wasOpen && info.status !== 'open') this.onDisconnected();
    this.changed(null);
  }

  private onDisconnected(): void {
    // Answers to what was in flight will not come; unacked sends stay in the outbox.
    this.requests.clear();
    this.leaving.clear();
    for (const r of this.rooms.values()) {
      if (r.status === 'subscribed') r.status = 'subscribing';
      r.typing = [];
      r.typingCount = 0;
      r.typingWanted = r.typingSent = false;
      r.typingSentAt = -Infinity;
      this.clearTypingTimers(r);
      this.changed(r);
    }
  }

  private onOpen(): void {
    this.hello = null;
    // a new connection, a full typing bucket
    this.typingTokens = TYPING_BURST;
    this.typingRefilledAt = this.now();
    for (const r of this.rooms.values()) {
      if (r.status === 'failed') {
        r.status = 'subscribing';
        r.error = null;
      }
      this.sendSubscribe(r);
      this.changed(r);
    }
  }

  private nextId(): number {
    const id = this.nextRequestId;
    this.nextRequestId = id >= MAX_ID ? 1 : id + 1;
    return id;
  }

  private request(frame: Record<string, unknown>, req: Request): number | null {
    const id = this.nextId();
    if (!this.socket.sendFrame({ ...frame, id })) return null;
    this.requests.set(id, req);
    return id;
  }

  private sendSubscribe(r: Room): void {
    const frame: Record<string, unknown> = { type: 'subscribe', roomId: r.roomId };
    if (r.epoch !== null) {
      // resume: everything after the newest seq we hold, in the epoch we were given
      const since = r.seen ?? (r.seq === 0 ? 0 : null);
      if (since !== null) {
        frame.since = since;
        frame.epoch = r.epoch;
      }
    }
    r.status = 'subscribing';
    this.request(frame, { kind: 'subscribe', roomId: r.roomId });
  }

  private transmit(p: PendingSend): void {
    const frame: Record<string, unknown> = { type: 'chat', roomId: p.roomId, content: p.content, clientMsgId: p.clientMsgId };
    if (p.attachments?.length) frame.attachments = p.attachments.map((a) => ({ fileId: a.fileId }));
    const id = this.request(frame, { kind: 'chat', roomId: p.roomId, clientMsgId: p.clientMsgId });
    if (id !== null) p.attempts++;
  }

  // ---------------------------------------------------------------- frames

  private onFrame(f: V2Frame): void {
    if (f.type === 'hello') {
      this.hello = f;
      if (f.userId && f.username) this.names.set(f.userId, f.username);
      this.changed(null);
      return;
    }
    if (f.type === 'error') {
      this.onError(f);
      return;
    }
    if (f.type === 'unsubscribed') {
      const req = f.id != null ? this.requests.get(f.id) : undefined;
      if (f.id != null) this.requests.delete(f.id);
      this.leaving.delete(f.roomId);
      if (req?.kind === 'unsubscribe') return; // the answer to ours: the room is already gone
      // the server ended the subscription itself
      const r = this.rooms.get(f.roomId);
      if (r && f.reason && END_REASONS.has(f.reason)) {
        // no longer a member, or no room: it leaves the list (subscribing again would be refused)
        this.clearTypingTimers(r);
        this.rooms.delete(f.roomId);
        this.outbox = this.outbox.filter((p) => p.roomId !== f.roomId);
        this.changed(null);
        this.o.onEnded?.({ roomId: f.roomId, reason: f.reason as EndReason });
      } else if (r) {
        r.status = 'failed';
        r.error = {
          code: 'unsubscribed',
          message: f.reason === 'server' ? 'An operator removed you from this room.' : 'The server ended this subscription.',
        };
        this.changed(r);
      }
      return;
    }
    if (this.leaving.has(f.roomId)) return;
    const room = this.rooms.get(f.roomId);
    if (!room) return;
    switch (f.type) {
      case 'subscribed':
        this.onSubscribed(room, f);
        break;
      case 'chat':
      case 'system':
        this.onChat(room, f);
        break;
      case 'ack':
        this.onAck(room, f);
        break;
      case 'presence':
        this.onPresence(room, f);
        break;
      case 'typing':
        for (const u of f.users) this.names.set(u.userId, u.username);
        room.typing = f.users;
        room.typingCount = f.count;
        this.changed(room);
        break;
      case 'read':
        this.onRead(room, f);
        break;
    }
  }

  private onSubscribed(room: Room, f: SubscribedFrame): void {
    if (f.id != null) this.requests.delete(f.id);
    const sameEpoch = room.epoch !== null && room.epoch === f.epoch;
    if (room.epoch !== null && !sameEpoch) {
      // The room's seq started again: what we hold belongs to the old numbering.
      room.epochIndex++;
      if (room.items.some((i) => i.kind === 'message')) {
        room.items.push({
          kind: 'divider',
          key: `epoch:${room.epochIndex}:${f.epoch}`,
          epoch: room.epochIndex,
          text: 'The room’s history restarted (new epoch)',
        });
      }
      room.held.clear();
      room.seen = null;
      room.readers.clear();
      room.lastRead = 0;
      room.gapAfter = null;
    } else if (sameEpoch && !f.recovered && room.seen !== null) {
      room.gapAfter = room.seen;
    }
    room.epoch = f.epoch;
    room.recovered = f.recovered;
    room.seq = Math.max(f.seq, room.seen ?? 0);
    room.lastRead = Math.min(Math.max(sameEpoch ? room.lastRead : 0, f.lastRead), room.seq);
    room.online = f.online;
    if (f.users) {
      // who was online as of the room's last presence frame: the next one changes this set
      room.presenceFrames++;
      this.replaceOnline(room, f.users, room.presenceFrames);
    } else {
      // over PRESENCE_MAX_MEMBERS (or PRESENCE off): GET …/presence is the only list
      room.exact = false;
    }
    room.status = 'subscribed';
    room.error = null;
    room.subscriptions++;
    this.ensureSelf(room);
    this.changed(room, true);
    // what did not get its ack before the connection dropped goes again: the server
    // answers a repeated clientMsgId with the first one's ack instead of a second copy
    for (const p of this.outbox) if (p.roomId === room.roomId) this.transmit(p);
  }

  private onChat(room: Room, m: ChatMessage): void {
    this.names.set(m.userId, m.username);
    if (room.ids.has(m.messageId) || room.held.has(m.seq)) {
      room.duplicates++;
      this.changed(room);
      return;
    }
    const item: LogItem = { kind: 'message', key: `${room.epochIndex}:${m.seq}:${m.messageId}`, epoch: room.epochIndex, msg: m };
    if (room.seen === null || m.seq > room.seen) {
      if (room.gapAfter !== null) {
        // the first new message after a `recovered:false` answer: did we miss some?
        const missing = m.seq - room.gapAfter - 1;
        if (missing > 0) {
          room.items.push({
            kind: 'divider',
            key: `gap:${room.epochIndex}:${m.seq}`,
            epoch: room.epochIndex,
            text: `${missing} message${missing === 1 ? '' : 's'} could not be recovered`,
          });
        }
        room.gapAfter = null;
      }
      room.items.push(item);
      room.seen = m.seq;
    } else {
      // a late one (older than the newest held): in order among the current epoch's
      // messages, after its epoch divider; rare, and near the end, so a scan from the end
      let at = room.items.length;
      while (at > 0) {
        const it = room.items[at - 1];
        if (it.epoch !== room.epochIndex) break;
        if (it.kind === 'message' ? it.msg.seq < m.seq : it.key.startsWith('epoch:')) break;
        at--;
      }
      room.items.splice(at, 0, item);
    }
    room.held.add(m.seq);
    room.ids.add(m.messageId);
    room.seq = Math.max(room.seq, m.seq);
    const max = this.o.maxMessages ?? 5_000;
    if (room.items.length > max) {
      const cut = room.items.splice(0, room.items.length - max);
      for (const it of cut) {
        if (it.kind !== 'message') continue;
        room.ids.delete(it.msg.messageId);
        if (it.epoch === room.epochIndex) room.held.delete(it.msg.seq);
      }
      while (room.items.length > 0 && room.items[0].kind === 'divider') room.items.shift();
    }
    this.changed(room, true);
  }

  private onAck(room: Room, f: AckFrame): void {
    const req = f.id != null ? this.requests.get(f.id) : undefined;
    if (f.id != null) this.requests.delete(f.id);
    const cmid = f.clientMsgId ?? (req?.kind === 'chat' ? req.clientMsgId : undefined);
    if (cmid) this.outbox = this.outbox.filter((p) => p.clientMsgId !== cmid);
    room.seq = Math.max(room.seq, f.seq);
    this.changed(room);
  }

  private onPresence(room: Room, f: V2PresenceFrame): void {
    room.presenceFrames++;
    const mark = room.presenceFrames;
    if (f.online >= 0) room.online = f.online;
    // the first frame after the room was over the bound: everyone online now, then joined/left
    if (f.users) this.replaceOnline(room, f.users, mark);
    else if (f.countOnly) room.exact = false;
    const at = new Date(this.now()).toISOString();
    for (const u of f.joined) {
      this.names.set(u.userId, u.username);
      room.touched.set(u.userId, mark);
      const cur = room.members.get(u.userId);
      room.members.set(u.userId, { userId: u.userId, username: u.username, online: true, lastSeen: null, since: cur?.online ? cur.since : at });
    }
    if (f.left.length) {
      // someone who left is not typing any more, whatever the typing set still says (the
      // server keeps a closed connection's typing until its 6 s run out)
      const gone = new Set(f.left.map((u) => u.userId));
      dropTypists(room, gone);
    }
    for (const u of f.left) {
      room.touched.set(u.userId, mark);
      if (u.userId === this.selfId) continue; // our own connection is open: we are here
      const cur = room.members.get(u.userId);
      room.members.set(u.userId, {
        userId: u.userId,
        username: cur?.username ?? this.names.get(u.userId) ?? u.userId,
        online: false,
        lastSeen: u.lastSeen,
        since: cur?.since,
      });
    }
    this.changed(room);
  }

  private onRead(room: Room, f: ReadFrame): void {
    if (f.userId === this.selfId) {
      // ours, from this or another connection of ours
      if (f.seq > room.lastRead) room.lastRead = f.seq;
      room.seq = Math.max(room.seq, f.seq);
    } else {
      room.readers.set(f.userId, Math.max(room.readers.get(f.userId) ?? 0, f.seq));
    }
    this.changed(room);
  }

  private onError(f: V2ErrorFrame): void {
    const req = f.id != null ? this.requests.get(f.id) : undefined;
    if (f.id != null) this.requests.delete(f.id);
    const roomId = f.roomId ?? req?.roomId;
    const room = roomId ? this.rooms.get(roomId) : undefined;
    if (req?.kind === 'subscribe' && room) {
      if (f.code === 'already_subscribed') {
        room.status = 'subscribed';
      } else if (f.code === 'rate_limited') {
        // the control bucket refills: try again shortly
        const t = setTimeout(() => {
          this.retryTimers.delete(t);
          const r = this.rooms.get(room.roomId);
          if (r === room && r.status === 'subscribing' && this.status.status === 'open') this.sendSubscribe(r);
        }, this.o.resubscribeDelayMs ?? 1_000);
        this.retryTimers.add(t);
      } else {
        room.status = 'failed';
        room.error = { code: f.code, message: f.message };
      }
      this.changed(room);
    } else if (req?.kind === 'chat') {
      // not_subscribed: it goes again once the room is subscribed; anything else is final
      if (f.code !== 'not_subscribed') {
        this.outbox = this.outbox.filter((p) => p.clientMsgId !== req.clientMsgId);
        if (room) this.changed(room);
      }
    } else if (req?.kind === 'read' && room) {
      // let the next markRead try again
      if (room.lastRead === req.seq) room.lastRead = Math.min(room.lastRead, req.seq - 1);
      this.changed(room);
    }
    this.o.onError?.({ ...f, roomId });
  }

  /**
   * A `users` list (of `subscribed` or of a presence frame) is the room's online set:
   * those listed are online, every other member offline (keeping the lastSeen they had),
   * and we stay online. From here on the frames keep the set exactly.
   */
  private replaceOnline(room: Room, users: UserRef[], mark: number): void {
    const listed = new Set<string>();
    for (const u of users) {
      listed.add(u.userId);
      this.names.set(u.userId, u.username);
      const cur = room.members.get(u.userId);
      room.members.set(u.userId, { userId: u.userId, username: u.username, online: true, lastSeen: null, since: cur?.online ? cur.since : undefined });
    }
    const gone = new Set<string>();
    for (const m of room.members.values()) {
      if (m.online && !listed.has(m.userId) && m.userId !== this.selfId) {
        room.members.set(m.userId, { ...m, online: false });
        gone.add(m.userId);
      }
    }
    // someone no longer online is not typing either
    if (gone.size) dropTypists(room, gone);
    room.replacedAt = mark;
    room.exact = true;
    this.ensureSelf(room);
  }

  private ensureSelf(room: Room): void {
    const id = this.selfId;
    const cur = room.members.get(id);
    if (cur?.online) return;
    room.members.set(id, {
      userId: id,
      username: this.hello?.username || this.o.self.username,
      online: true,
      lastSeen: null,
      since: cur?.since,
    });
  }
}

/** Forgets the typists among `gone` (they are not online any more). */
function dropTypists(room: { typing: UserRef[]; typingCount: number }, gone: ReadonlySet<string>): void {
  const kept = room.typing.filter((u) => !gone.has(u.userId));
  if (kept.length === room.typing.length) return;
  room.typingCount = Math.max(kept.length, room.typingCount - (room.typing.length - kept.length));
  room.typing = kept;
}
