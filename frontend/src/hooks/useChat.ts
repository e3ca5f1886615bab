import { useCallback, useEffect, useRef, useState } from 'react';
import { ChatClient, type StatusInfo } from '../lib/chatClient';
import { server, wsUrl, type ServerEndpoints } from '../lib/config';
import { emptyLog, mergeMessages, type LogState } from '../lib/messageLog';
import {
  applyPresence,
  emptyPresence,
  ensureMember,
  presenceFromDetails,
  type Presence,
} from '../lib/presence';
import type { AnalyticsSnapshot, ChatMessage, PresenceFrame, ServerFrame } from '../lib/types';

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
}

const FLUSH_MS = 40;
const ERROR_TTL_MS = 8_000;
const PRESENCE_RESYNC_MS = 30_000;

const initialStatus: StatusInfo = { status: 'closed', attempt: 0, retryInMs: null, lastClose: null };

async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const r = await fetch(url, { signal, headers: { Accept: 'application/json' } });
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
    let presenceState: Presence = emptyPresence;
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
        presenceState = applyPresence(presenceState, pendingPresence);
        pendingPresence = [];
        setPresence(presenceState);
      }
    };
    const schedule = () => {
      if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
    };

    const seedPresence = async () => {
      try {
        const snap = await getJson<AnalyticsSnapshot>(`${endpoints.http}/api/analytics`, aborter.signal);
        if (disposed || !Array.isArray(snap.activeUserDetails)) return;
        flush();
        presenceState = ensureMember(presenceFromDetails(snap.activeUserDetails, room), self);
        setPresence(presenceState);
      } catch {
        /* presence then comes from join/leave events only */
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
        );
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
      if (f.type === 'chat') {
        if (f.roomId && f.roomId !== room) return;
        pendingChat.push(f);
        schedule();
      } else if (f.type === 'join' || f.type === 'leave') {
        if (f.roomId && f.roomId !== room) return;
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
      url: (since) => wsUrl(endpoints, { userId, username, room, since }),
      resumeSeq: () => {
        flush();
        return logState.lastSeq;
      },
      onFrame,
      onStatus: (info) => {
        if (disposed) return;
        setStatus(info);
        if (info.status === 'open') void seedPresence();
      },
      onReconnected: () => void backfill(),
    });
    clientRef.current = client;
    client.start();

    const resync = setInterval(() => {
      if (client.status === 'open' && document.visibilityState !== 'hidden') void seedPresence();
    }, PRESENCE_RESYNC_MS);
    const online = () => client.retryNow();
    window.addEventListener('online', online);

    return () => {
      disposed = true;
      aborter.abort();
      clearInterval(resync);
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

  return { log, presence, status, errors, send, dismissError, retryNow };
}
