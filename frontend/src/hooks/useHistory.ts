import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { fetchOlder, HISTORY_PAGE, mergeOlder, oldestSeq, withOlder } from '../lib/history';
import type { LogItem } from '../lib/messageLog';
import type { ChatMessage } from '../lib/types';

export type HistoryStatus = 'idle' | 'loading' | 'error' | 'start';

export interface HistoryState {
  status: HistoryStatus;
  /** What went wrong with the last page (status `error`). */
  error: string | null;
  /** Anything to page back from (a message is shown and the start is not reached). */
  canLoad: boolean;
  /** Fetch the page before the oldest message shown; `auto` (scrolled to the top) does not retry after an error. */
  loadOlder: (auto?: boolean) => void;
}

interface Held {
  roomId: string | null;
  older: ChatMessage[];
  status: HistoryStatus;
  error: string | null;
}

/**
 * The older pages of one room's history in front of its live items (`items`), fetched
 * on demand. A new `roomId` starts over.
 */
export function useHistory(http: string, roomId: string | null, live: LogItem[], pageSize = HISTORY_PAGE): { items: LogItem[]; history: HistoryState } {
  const [held, setHeld] = useState<Held>({ roomId, older: [], status: 'idle', error: null });
  const cur: Held = held.roomId === roomId ? held : { roomId, older: [], status: 'idle', error: null };
  const items = useMemo(() => withOlder(cur.older, live), [cur.older, live]);
  const oldest = oldestSeq(cur.older, live);
  const start = cur.status === 'start' || oldest === 1;
  // The log spans a restart of the room's numbering (a divider between epochs): the
  // server pages the new numbering only, so nothing is offered before the old one.
  const mixed = live.length > 0 && live[0].epoch !== live[live.length - 1].epoch;
  const status: HistoryStatus = start ? 'start' : cur.status;

  const latest = useRef({ http, roomId, oldest, status, pageSize, mixed });
  latest.current = { http, roomId, oldest, status, pageSize, mixed };
  const inFlight = useRef<AbortController | null>(null);

  // another room (or unmounted): the page in flight is dropped, and its room can load again
  useEffect(
    () => () => {
      if (!inFlight.current) return;
      inFlight.current.abort();
      inFlight.current = null;
      setHeld((h) => (h.status === 'loading' ? { ...h, status: 'idle' } : h));
    },
    [roomId],
  );

  const loadOlder = useCallback((auto = false) => {
    const { http, roomId, oldest, status, pageSize } = latest.current;
    if (!roomId || oldest == null || inFlight.current || latest.current.mixed) return;
    if (status === 'start' || status === 'loading' || (auto && status === 'error')) return;
    const ctl = new AbortController();
    inFlight.current = ctl;
    const base = (h: Held): Held => (h.roomId === roomId ? h : { roomId, older: [], status: 'idle', error: null });
    setHeld((h) => ({ ...base(h), status: 'loading', error: null }));
    fetchOlder(http, roomId, oldest, { limit: pageSize, signal: ctl.signal }).then(
      ({ messages, atStart }) => {
        if (ctl.signal.aborted) return;
        inFlight.current = null;
        setHeld((h) => {
          const b = base(h);
          return { ...b, older: messages.length ? mergeOlder(b.older, messages) : b.older, status: atStart ? 'start' : 'idle', error: null };
        });
      },
      (e: unknown) => {
        if (ctl.signal.aborted) return;
        inFlight.current = null;
        setHeld((h) => ({ ...base(h), status: 'error', error: e instanceof Error ? e.message : String(e) }));
      },
    );
  }, []);

  return { items, history: { status, error: cur.error, canLoad: oldest != null && !start && !mixed, loadOlder } };
}
