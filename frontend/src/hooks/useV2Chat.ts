import { useCallback, useEffect, useRef, useState } from 'react';
import { server, wsUrlV2, type ServerEndpoints } from '../lib/config';
import { apiHeaders, getToken } from '../lib/token';
import { parsePresenceSnapshot } from '../lib/presence';
import { V2Client, type PendingAttachment, type RoomView, type V2State } from '../lib/v2client';
import { roomEndedText, roomErrorText } from '../lib/v2view';
import type { InlineError } from './useChat';

export interface V2Session {
  userId: string;
  username: string;
  /** The rooms to be in, in the order of the room list. */
  rooms: string[];
}

export interface V2ChatState {
  state: V2State;
  /** The room on screen (null: none). */
  active: string | null;
  activeRoom: RoomView | null;
  setActive: (roomId: string) => void;
  /** Send to the room on screen, with the files it shares (uploaded already). */
  send: (content: string, attachments?: readonly PendingAttachment[]) => boolean;
  /** The composer's text changed (typing, or stopped when emptied). */
  typed: (text: string) => void;
  stopTyping: () => void;
  /** Subscribe to a room; `open` (default) puts it on screen. False if already in it or at the limit. */
  addRoom: (roomId: string, open?: boolean) => boolean;
  closeRoom: (roomId: string) => void;
  /**
   * We are about to end our own membership of the room (leave, delete): the server's
   * `unsubscribed` for it then brings no notice. `false` takes that back (it failed).
   */
  expectEnd: (roomId: string, expected?: boolean) => void;
  /** Errors, and notices (a room deleted, a removal), newest last. */
  errors: InlineError[];
  /** Show an error or notice in the error bar (it goes after a while, as the others). */
  notify: (code: string, message: string) => void;
  dismissError: (id: number) => void;
  retryNow: () => void;
  /** The server's HTTP base ("" for same origin), for the history pages. */
  http: string;
}

const ERROR_TTL_MS = 8_000;
/** The room on screen's presence list is fetched again this often (frames keep it live in between). */
export const V2_PRESENCE_REFRESH_MS = 10_000;
const HTTP_TIMEOUT_MS = 4_000;
/** How long an end we caused ourselves (`expectEnd`) is expected: the server's frame comes within it. */
const END_EXPECTED_MS = 15_000;
/** A read marker is sent this long after the newest message is on screen (coalesces bursts). */
export const READ_DELAY_MS = 250;
/** Errors that say nothing to the user (state the client repairs by itself). */
const QUIET = new Set(['already_subscribed', 'not_subscribed']);

const emptyState: V2State = {
  status: { status: 'closed', attempt: 0, retryInMs: null, lastClose: null },
  hello: null,
  selfId: '',
  rooms: [],
  names: new Map(),
  directory: new Map(),
};

async function getJson(url: string, timeoutMs = HTTP_TIMEOUT_MS): Promise<unknown> {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const r = await fetch(url, { signal: ctl.signal, headers: apiHeaders() });
    if (!r.ok) throw new Error(String(r.status));
    return await r.json();
  } finally {
    clearTimeout(t);
  }
}

function visible(): boolean {
  return typeof document === 'undefined' || document.visibilityState !== 'hidden';
}

/**
 * The v2 chat: one V2Client for the session's rooms, the room on screen, and what the
 * HTTP API adds (who is online from `/api/rooms/{id}/presence`, last seen of users who
 * are not from `/api/presence?users=`). Sends our read marker for the room on screen
 * while the page is visible.
 */
export function useV2Chat(
  session: V2Session | null,
  onRoomsChange?: (rooms: string[]) => void,
  endpoints: ServerEndpoints = server(),
): V2ChatState {
  const [state, setState] = useState<V2State>(emptyState);
  const [active, setActiveState] = useState<string | null>(session?.rooms[0] ?? null);
  const [errors, setErrors] = useState<InlineError[]>([]);
  const [pageVisible, setPageVisible] = useState(visible);
  const clientRef = useRef<V2Client | null>(null);
  const errorSeq = useRef(0);
  const initialRooms = useRef<string[]>(session?.rooms ?? []);
  initialRooms.current = session?.rooms ?? [];
  const roomsChange = useRef(onRoomsChange);
  roomsChange.current = onRoomsChange;
  /** Rooms whose end we caused ourselves (see `expectEnd`), and since when. */
  const endsExpected = useRef(new Map<string, number>());

  const notify = useCallback((code: string, message: string) => {
    const id = ++errorSeq.current;
    setErrors((es) => [...es.filter((x) => x.code !== code), { id, code, message, at: Date.now() }].slice(-4));
    setTimeout(() => setErrors((es) => es.filter((x) => x.id !== id)), ERROR_TTL_MS);
  }, []);

  const userId = session?.userId;
  const username = session?.username;

  useEffect(() => {
    if (!userId || !username) return;
    const client = new V2Client({
      url: () => wsUrlV2(endpoints, { userId, username, token: getToken() }),
      self: { userId, username },
      onChange: (s) => setState(s),
      onError: (e) => {
        if (QUIET.has(e.code)) return;
        notify(e.code, roomErrorText(e.code, e.roomId, e.message));
      },
      onEnded: ({ roomId, reason }) => {
        setState(client.state);
        roomsChange.current?.(client.state.rooms.map((r) => r.roomId));
        const since = endsExpected.current.get(roomId);
        endsExpected.current.delete(roomId);
        if (since != null && Date.now() - since < END_EXPECTED_MS) return;
        notify(reason, roomEndedText(reason, roomId));
      },
    });
    for (const r of initialRooms.current) client.subscribe(r);
    clientRef.current = client;
    setState(client.state);
    setActiveState(initialRooms.current[0] ?? null);
    setErrors([]);
    client.start();
    const online = () => client.retryNow();
    window.addEventListener('online', online);
    return () => {
      window.removeEventListener('online', online);
      client.stop();
      clientRef.current = null;
      setState(emptyState);
    };
  }, [userId, username, endpoints, notify]);

  useEffect(() => {
    const on = () => setPageVisible(visible());
    document.addEventListener('visibilitychange', on);
    return () => document.removeEventListener('visibilitychange', on);
  }, []);

  const activeRoom = state.rooms.find((r) => r.roomId === active) ?? null;
  // the room on screen went away: show the first one left
  useEffect(() => {
    if (state.rooms.length && !state.rooms.some((r) => r.roomId === active)) setActiveState(state.rooms[0].roomId);
  }, [state.rooms, active]);

  // Read marker: the newest message of the room on screen, once it has been there a moment.
  const newest = activeRoom?.newestSeq ?? null;
  const lastRead = activeRoom?.lastRead ?? 0;
  const subscribed = activeRoom?.status === 'subscribed';
  useEffect(() => {
    if (!active || !subscribed || newest == null || newest <= lastRead || !pageVisible) return;
    const t = setTimeout(() => clientRef.current?.markRead(active, newest), READ_DELAY_MS);
    return () => clearTimeout(t);
  }, [active, subscribed, newest, lastRead, pageVisible, state.status.status]);

  // Who is online: fetched after every (re)subscription of a room, and again now and then for the room on screen.
  const fetchedFor = useRef(new Map<string, number>());
  const inFlight = useRef(new Set<string>());
  const refreshPresence = useCallback(
    async (roomId: string) => {
      const client = clientRef.current;
      if (!client || inFlight.current.has(roomId)) return;
      inFlight.current.add(roomId);
      const token = client.presenceToken(roomId);
      try {
        const snap = parsePresenceSnapshot(await getJson(`${endpoints.http}/api/rooms/${encodeURIComponent(roomId)}/presence`));
        if (snap && clientRef.current === client) client.applyRoomPresence(roomId, snap, token);
      } catch {
        /* frames keep the list; the next refresh tries again */
      } finally {
        inFlight.current.delete(roomId);
      }
    },
    [endpoints],
  );
  useEffect(() => {
    for (const r of state.rooms) {
      if (r.status === 'subscribed' && fetchedFor.current.get(r.roomId) !== r.subscriptions) {
        fetchedFor.current.set(r.roomId, r.subscriptions);
        void refreshPresence(r.roomId);
      }
    }
  }, [state.rooms, refreshPresence]);
  const isOpen = state.status.status === 'open';
  useEffect(() => {
    if (!active || !isOpen || !pageVisible) return;
    const t = setInterval(() => void refreshPresence(active), V2_PRESENCE_REFRESH_MS);
    return () => clearInterval(t);
  }, [active, isOpen, pageVisible, refreshPresence]);

  // Last seen of the users of the room on screen who are not online in it.
  const asked = useRef(new Set<string>());
  useEffect(() => {
    const client = clientRef.current;
    if (!client || !active || !isOpen) return;
    const ids = client.unknownLastSeen(active).filter((id) => !asked.current.has(id)).slice(0, 100);
    if (ids.length === 0) return;
    const t = setTimeout(async () => {
      for (const id of ids) asked.current.add(id);
      try {
        const body = (await getJson(`${endpoints.http}/api/presence?users=${ids.map(encodeURIComponent).join(',')}`)) as { users?: Record<string, unknown> };
        const users: Record<string, { online: boolean; lastSeen: string | null }> = {};
        for (const [id, v] of Object.entries(body?.users ?? {})) {
          if (!v || typeof v !== 'object') continue;
          const o = v as Record<string, unknown>;
          users[id] = { online: o.online === true, lastSeen: typeof o.lastSeen === 'string' ? o.lastSeen : null };
        }
        if (clientRef.current === client) client.applyDirectory(users);
      } catch {
        for (const id of ids) asked.current.delete(id); // ask again later
      }
    }, 300);
    return () => clearTimeout(t);
  }, [state, active, isOpen, endpoints]);

  const setActive = useCallback((roomId: string) => {
    setActiveState((prev) => {
      if (prev && prev !== roomId) clientRef.current?.stopTyping(prev);
      return roomId;
    });
  }, []);
  const send = useCallback(
    (content: string, attachments?: readonly PendingAttachment[]) => (active && clientRef.current?.send(active, content, attachments) != null) || false,
    [active],
  );
  const typed = useCallback(
    (text: string) => {
      if (!active) return;
      if (text.trim() === '') clientRef.current?.stopTyping(active);
      else clientRef.current?.typing(active);
    },
    [active],
  );
  const stopTyping = useCallback(() => {
    if (active) clientRef.current?.stopTyping(active);
  }, [active]);
  const publishRooms = () => {
    const c = clientRef.current;
    if (c) roomsChange.current?.(c.state.rooms.map((r) => r.roomId));
  };
  const addRoom = useCallback((roomId: string, open = true) => {
    const c = clientRef.current;
    if (!c) return false;
    const ok = c.subscribe(roomId);
    if (ok) {
      setState(c.state);
      if (open) setActive(roomId);
      publishRooms();
    }
    return ok;
  }, [setActive]);
  const closeRoom = useCallback((roomId: string) => {
    const c = clientRef.current;
    if (c?.unsubscribe(roomId)) {
      setState(c.state);
      publishRooms();
    }
  }, []);
  const expectEnd = useCallback((roomId: string, expected = true) => {
    if (expected) endsExpected.current.set(roomId, Date.now());
    else endsExpected.current.delete(roomId);
  }, []);
  const dismissError = useCallback((id: number) => setErrors((es) => es.filter((e) => e.id !== id)), []);
  const retryNow = useCallback(() => clientRef.current?.retryNow(), []);

  return { state, active, activeRoom, setActive, send, typed, stopTyping, addRoom, closeRoom, expectEnd, errors, notify, dismissError, retryNow, http: endpoints.http };
}
