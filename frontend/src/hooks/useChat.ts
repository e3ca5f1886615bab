import { useCallback, useEffect, useRef, useState } from 'react';
import { ChatClient, type StatusInfo } from '../lib/chatClient';
import { server, wsUrl, type ServerEndpoints } from '../lib/config';
import { apiHeaders, getToken } from '../lib/token';
import { emptyLog, mergeMessages, type LogState } from '../lib/messageLog';
import {
  applyPresence,
  emptyPresence,
  ensureMember,
  mergeSnapshot,
  parsePresenceSnapshot,
  type Presence,
} from '../lib/presence';
import { withAttachments } from '../lib/attachments';
import { isMessage, type ChatMessage, type PresenceFrame, type ServerFrame } from '../lib/types';

export interface Session {
  userId: string;
  username: string;
  room: string;
}

export interface InlineError {
  id: number;
  code: string;
  message: string;
  at: number;
}

export interface ChatState {
  log: LogState;
  presence: Presence;
  status: StatusInfo;
  errors: InlineError[];
  send: (content: string) => boolean;
  dismissError: (id: number) => void;
  retryNow: () => void;
  /** The server's HTTP base ("" for same origin), for the history pages. */
  http: string;
}

const FLUSH_MS = 40;
const ERROR_TTL_MS = 8_000;
/**
 * How often "Here now" is fetched again from /api/rooms/{room}/presence. Above
 * PRESENCE_MAX_MEMBERS users the server sends no join/leave frames, so this is what
 * keeps a big room's list live; in a small room frames update it at once and this only
 * repairs what a missed frame got wrong. 5 s reads as live for a who-is-here list
 * (nobody watches arrivals to the second) and bounds the cost: one GET per open,
 * visible, connected tab every 5 s (never two at once, none while hidden or
 * reconnecting), answered from the room owner's memory with at most 1000 users. A room
 * of a thousand watching tabs thus costs the server 200 requests a second; 1 s would
 * be 1000, 30 s (the old analytics re-sync) would leave a big room's list half a
 * minute behind.
 */
export const PRESENCE_REFRESH_MS = 5_000;
/** A presence fetch slower than this is abandoned (the next tick tries again). */
const PRESENCE_TIMEOUT_MS = 4_000;

const initialStatus: StatusInfo = { status: 'closed', attempt: 0, retryInMs: null, lastClose: null };

async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const r = await fetch(url, { signal, headers: apiHeaders() });
  if (!r.ok) throw new Error(`${r.status}`);
  return (await r.json()) as T;
}

export function useChat(session: Session | null, endpoints: ServerEndpoints = server()): ChatState {
  const [log, setLog] = useState<LogState>(() => emptyLog());
  const [presence, setPresence] = useState<Presence>(emptyPresence);
  const [status, setStatus] = useState<StatusInfo>(initialStatus);
  const [errors, setErrors] = useState<InlineError[]>([]);
  const clientRef = useRef<ChatClient | null>(null);
  const errorSeq = useRef(0);

  const room = session?.room;
  const userId = session?.userId;
  const username = session?.username;

  useEffect(() => {
    if (!room || !userId || !username) return;
    const self = { userId, username };
    let logState = emptyLog();
    let presenceState: Presence = ensureMember(emptyPresence, self);
    let pendingChat: ChatMessage[] = [];
    let pendingPresence: PresenceFrame[] = [];
    let flushTimer: ReturnType<typeof setTimeout> | null = null;
    let disposed = false;
    const aborter = new AbortController();

    setLog(logState);
    setPresence(presenceState);
    setErrors([]);

    const flush = () => {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
      if (pendingChat.length) {
        const next = mergeMessages(logState, pendingChat);
        pendingChat = [];
        if (next !== logState) {
          logState = next;
          setLog(next);
        }
      }
      if (pendingPresence.length) {
        presenceState = ensureMember(applyPresence(presenceState, pendingPresence), self);
        pendingPresence = [];
        setPresence(presenceState);
      }
    };
    const schedule = () => {
      if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
    };

    // The users with a join/leave frame received since the presence fetch in flight
    // started (null when none is): for them the frames win over its answer.
    let touched: Set<string> | null = null;
    let presenceFetch: AbortController | null = null;
    const refreshPresence = async () => {
      if (presenceFetch || disposed) return; // one at a time
      const ctl = new AbortController();
      const seen = new Set<string>();
      presenceFetch = ctl;
      touched = seen;
      const timeout = setTimeout(() => ctl.abort(), PRESENCE_TIMEOUT_MS);
      try {
        const body = await getJson<unknown>(
          `${endpoints.http}/api/rooms/${encodeURIComponent(room)}/presence`,
          ctl.signal,
        );
        const snap = parsePresenceSnapshot(body);
        if (disposed || !snap) return;
        flush(); // every frame received so far is applied (and in `seen` if it came after the start)
        presenceState = mergeSnapshot(presenceState, snap, seen, self);
        setPresence(presenceState);
      } catch {
        /* the list keeps what the frames made of it; the next tick tries again */
      } finally {
        clearTimeout(timeout);
        if (presenceFetch === ctl) {
          presenceFetch = null;
          touched = null;
        }
      }
    };

    const backfill = async () => {
      try {
        const body = await getJson<{ messages?: unknown[] }>(
          `${endpoints.http}/api/rooms/${encodeURIComponent(room)}/messages?limit=200`,
          aborter.signal,
        );
        if (disposed || !Array.isArray(body.messages)) return;
        const msgs = body.messages.filter(
          (m): m is ChatMessage =>
            !!m && typeof m === 'object' && typeof (m as ChatMessage).seq === 'number' && typeof (m as ChatMessage).messageId === 'string',
        ).map(withAttachments);
        msgs.sort((a, b) => a.seq - b.seq);
        flush();
        const next = mergeMessages(logState, msgs);
        if (next !== logState) {
          logState = next;
          setLog(next);
        }
      } catch {
        /* the since= resume already covered the usual case */
      }
    };

    const onFrame = (f: ServerFrame) => {
      if (isMessage(f)) {
        if (f.roomId && f.roomId !== room) return;
        pendingChat.push(f);
        schedule();
      } else if (f.type === 'join' || f.type === 'leave') {
        if (f.roomId && f.roomId !== room) return;
        touched?.add(f.userId);
        pendingPresence.push(f);
        schedule();
      } else if (f.type === 'error') {
        const id = ++errorSeq.current;
        setErrors((es) => {
          // one visible entry per code: repeated rate_limited errors do not pile up
          const rest = es.filter((e) => e.code !== f.code);
          return [...rest, { id, code: f.code, message: f.message, at: Date.now() }].slice(-4);
        });
        setTimeout(() => setErrors((es) => es.filter((e) => e.id !== id)), ERROR_TTL_MS);
      }
    };

    const client = new ChatClient({
      url: (since) => wsUrl(endpoints, { userId, username, room, since, token: getToken() }),
      resumeSeq: () => {
        flush();
        return logState.lastSeq;
      },
      onFrame,
      onStatus: (info) => {
        if (disposed) return;
        setStatus(info);
        if (info.status === 'open') void refreshPresence();
      },
      onReconnected: () => void backfill(),
    });
    clientRef.current = client;
    client.start();

    const canRefresh = () => client.status === 'open' && document.visibilityState !== 'hidden';
    const refresh = setInterval(() => {
      if (canRefresh()) void refreshPresence();
    }, PRESENCE_REFRESH_MS);
    // a tab coming back to the front shows who is here now, not who was
    const visible = () => {
      if (canRefresh()) void refreshPresence();
    };
    document.addEventListener('visibilitychange', visible);
    const online = () => client.retryNow();
    window.addEventListener('online', online);

    return () => {
      disposed = true;
      aborter.abort();
      presenceFetch?.abort();
      clearInterval(refresh);
      document.removeEventListener('visibilitychange', visible);
      window.removeEventListener('online', online);
      if (flushTimer) clearTimeout(flushTimer);
      client.stop();
      clientRef.current = null;
      setStatus(initialStatus);
    };
  }, [room, userId, username, endpoints]);

  const send = useCallback((content: string) => clientRef.current?.send(content) ?? false, []);
  const dismissError = useCallback((id: number) => setErrors((es) => es.filter((e) => e.id !== id)), []);
  const retryNow = useCallback(() => clientRef.current?.retryNow(), []);

  return { log, presence, status, errors, send, dismissError, retryNow, http: endpoints.http };
}
