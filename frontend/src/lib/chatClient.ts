import { DEFAULT_BACKOFF, fullJitterDelay, type BackoffOptions } from './backoff';
import { parseFrame, type ServerFrame } from './types';

export type ConnStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The subset of the browser WebSocket this client uses (so tests can inject a fake). */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface StatusInfo {
  status: ConnStatus;
  /** Consecutive failed attempts since the last stable connection. */
  attempt: number;
  /** When status is reconnecting: ms until the next try. */
  retryInMs: number | null;
  lastClose: { code: number; reason: string } | null;
}

export interface ChatClientOptions<F = ServerFrame> {
  /** Build the connect URL; `since` is null on the first connection. */
  url: (since: number | null) => string;
  /** Highest seq seen so far (null if none). */
  resumeSeq: () => number | null;
  onFrame: (frame: F) => void;
  /** Turn one text frame into a frame (null: ignored). Default: the v1 `parseFrame`. */
  parse?: (data: string) => F | null;
  onStatus?: (info: StatusInfo) => void;
  /** Called on every successful open, right after the status turns `open`; `resumed` after the first. */
  onOpen?: (resumed: boolean) => void;
  /** Called on every successful open after the first (a resume). */
  onReconnected?: () => void;
  createSocket?: (url: string) => SocketLike;
  random?: () => number;
  now?: () => number;
  backoff?: BackoffOptions;
  /** A connection that stayed open this long resets the backoff attempt counter. */
  stableMs?: number;
  /** Close the socket and retry if it has not opened within this time. */
  connectTimeoutMs?: number;
}

const OPEN = 1;

/** Close codes worth telling the user about. */
export const CLOSE_REASONS: Record<number, string> = {
  1001: 'server going away',
  1003: 'unsupported data',
  1006: 'connection lost',
  1007: 'invalid text',
  1008: 'too slow to keep up (slow consumer)',
  1009: 'message too big',
  1011: 'server error',
  4001: 'your token expired: sign in with a new one',
  4002: 'disconnected by the server',
  4003: 'removed from the room by the server',
};

/** Close codes after which reconnecting would undo what the server did. */
const FINAL_CLOSES: ReadonlySet<number> = new Set([4001, 4003]);

/**
 * One logical chat session: connects, and after any close that the user did not ask
 * for, reconnects with exponential backoff and full jitter, resuming with
 * `since=<last seq seen>` so nothing is missed or repeated.
 */
export class ChatClient<F = ServerFrame> {
  private ws: SocketLike | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private everOpened = false;
  private openedAt = 0;
  private attempt = 0;
  private info: StatusInfo = { status: 'connecting', attempt: 0, retryInMs: null, lastClose: null };
  /** URLs used, in order (diagnostics and tests). */
  readonly history: string[] = [];

  constructor(private readonly o: ChatClientOptions<F>) {}

  get status(): ConnStatus {
    return this.info.status;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** The user left: close and never reconnect. */
  stop(): void {
    this.stopped = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = null;
      ws.onclose = null;
      try {
        ws.close(1000, 'user left');
      } catch {
        /* ignore */
      }
    }
    this.setStatus({ status: 'closed', retryInMs: null, lastClose: null });
  }

  /** Skip the remaining backoff wait (e.g. the browser came back online). */
  retryNow(): void {
    if (this.stopped || this.info.status !== 'reconnecting' || !this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  send(content: string): boolean {
    return this.sendFrame({ type: 'chat', content });
  }

  /** Send one JSON frame on the open socket; false (nothing sent) when it is not open. */
  sendFrame(frame: unknown): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN || this.info.status !== 'open') return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private setStatus(patch: Partial<StatusInfo>): void {
    this.info = { ...this.info, ...patch, attempt: this.attempt };
    this.o.onStatus?.(this.info);
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.timer = this.connectTimer = null;
  }

  private connect(): void {
    if (this.stopped) return;
    const since = this.everOpened ? (this.o.resumeSeq() ?? 0) : null;
    const url = this.o.url(since);
    this.history.push(url);
    this.setStatus({ status: this.everOpened || this.attempt > 0 ? 'reconnecting' : 'connecting', retryInMs: null });
    let ws: SocketLike;
    try {
      ws = (this.o.createSocket ?? ((u) => new WebSocket(u) as unknown as SocketLike))(url);
    } catch {
      this.scheduleRetry({ code: 1006, reason: 'could not create socket' });
      return;
    }
    this.ws = ws;
    const timeout = this.o.connectTimeoutMs ?? 10_000;
    this.connectTimer = setTimeout(() => {
      if (this.ws === ws && ws.readyState !== OPEN) {
        ws.onclose = ws.onopen = ws.onmessage = ws.onerror = null;
        try {
          ws.close();
        } catch {
          /* ignore */
        }
        this.ws = null;
        this.scheduleRetry({ code: 1006, reason: 'connect timeout' });
      }
    }, timeout);

    ws.onopen = () => {
      if (this.ws !== ws) return;
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.connectTimer = null;
      const resumed = this.everOpened;
      this.everOpened = true;
      this.openedAt = this.now();
      this.setStatus({ status: 'open', retryInMs: null });
      this.o.onOpen?.(resumed);
      if (resumed) this.o.onReconnected?.();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return;
      const f = this.o.parse ? this.o.parse(ev.data) : (parseFrame(ev.data) as F | null);
      if (f) this.o.onFrame(f);
    };
    ws.onerror = () => {
      /* a close event always follows */
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (FINAL_CLOSES.has(ev.code)) {
        this.stopped = true;
        this.clearTimers();
        this.setStatus({ status: 'closed', retryInMs: null, lastClose: { code: ev.code, reason: ev.reason } });
        return;
      }
      this.scheduleRetry({ code: ev.code, reason: ev.reason });
    };
  }

  private scheduleRetry(close: { code: number; reason: string }): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    if (this.stopped) return;
    const wasOpen = this.openedAt > 0;
    const stableMs = this.o.stableMs ?? 5_000;
    if (wasOpen && this.now() - this.openedAt >= stableMs) this.attempt = 0;
    this.openedAt = 0;
    const delay = fullJitterDelay(this.attempt, this.o.random ?? Math.random, this.o.backoff ?? DEFAULT_BACKOFF);
    this.attempt++;
    this.setStatus({ status: 'reconnecting', retryInMs: delay, lastClose: close });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }
}
