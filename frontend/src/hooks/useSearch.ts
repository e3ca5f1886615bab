import { useCallback, useEffect, useRef, useState } from 'react';
import { SEARCH_PAGE, searchRoom, SearchError } from '../lib/search';
import type { ChatMessage } from '../lib/types';

/** How a jump to a result went (the message list reports it). */
export type JumpStatus = 'finding' | 'shown' | 'missing' | 'failed';

/** A message to show in the room (a search result); each pick is a new object. */
export interface JumpTarget {
  seq: number;
}

export type SearchStatus = 'idle' | 'loading' | 'done' | 'error';

export interface SearchState {
  /** The query the results are for ("" before any search). */
  query: string;
  status: SearchStatus;
  /** Newest first, one per seq. */
  results: ChatMessage[];
  /** An older page can be asked for. */
  hasMore: boolean;
  /** That older page is on its way. */
  loadingMore: boolean;
  /** What went wrong (status `error`, or the last "more" failed). */
  error: { code: string; message: string } | null;
}

export interface RoomSearch extends SearchState {
  /** Search the room for `q` (a new search drops the one before). */
  search: (q: string) => void;
  /** The next, older page of the results. */
  more: () => void;
  /** Close the results. */
  clear: () => void;
}

const IDLE: SearchState = { query: '', status: 'idle', results: [], hasMore: false, loadingMore: false, error: null };

const errorOf = (e: unknown) => (e instanceof SearchError ? { code: e.code, message: e.message } : { code: 'error', message: e instanceof Error ? e.message : String(e) });

/** Searching one room's messages, page by page; another `roomId` starts over. */
export function useSearch(http: string, roomId: string | null, pageSize = SEARCH_PAGE): RoomSearch {
  const [held, setHeld] = useState<SearchState & { roomId: string | null }>({ ...IDLE, roomId });
  const cur: SearchState = held.roomId === roomId ? held : IDLE;
  const next = useRef<number | null>(null);
  const inFlight = useRef<AbortController | null>(null);
  const latest = useRef({ http, roomId, pageSize, query: cur.query });
  latest.current = { http, roomId, pageSize, query: cur.query };

  const abort = () => {
    inFlight.current?.abort();
    inFlight.current = null;
  };
  useEffect(() => {
    next.current = null;
    return abort;
  }, [http, roomId]);

  const search = useCallback((q: string) => {
    const { http, roomId, pageSize } = latest.current;
    if (!roomId) return;
    abort();
    next.current = null;
    const query = q.trim();
    const ctl = new AbortController();
    inFlight.current = ctl;
    setHeld({ ...IDLE, roomId, query, status: 'loading' });
    searchRoom(http, roomId, query, { limit: pageSize, signal: ctl.signal }).then(
      (page) => {
        if (ctl.signal.aborted) return;
        inFlight.current = null;
        next.current = page.nextBefore;
        setHeld({ ...IDLE, roomId, query, status: 'done', results: page.messages, hasMore: page.nextBefore != null });
      },
      (e: unknown) => {
        if (ctl.signal.aborted) return;
        inFlight.current = null;
        setHeld({ ...IDLE, roomId, query, status: 'error', error: errorOf(e) });
      },
    );
  }, []);

  const more = useCallback(() => {
    const { http, roomId, pageSize, query } = latest.current;
    const before = next.current;
    if (!roomId || before == null || inFlight.current) return;
    const ctl = new AbortController();
    inFlight.current = ctl;
    setHeld((h) => (h.roomId === roomId ? { ...h, loadingMore: true, error: null } : h));
    searchRoom(http, roomId, query, { before, limit: pageSize, signal: ctl.signal }).then(
      (page) => {
        if (ctl.signal.aborted) return;
        inFlight.current = null;
        next.current = page.nextBefore;
        setHeld((h) => {
          if (h.roomId !== roomId || h.query !== query) return h;
          const seqs = new Set(h.results.map((m) => m.seq));
          return { ...h, results: [...h.results, ...page.messages.filter((m) => !seqs.has(m.seq))], hasMore: page.nextBefore != null, loadingMore: false };
        });
      },
      (e: unknown) => {
        if (ctl.signal.aborted) return;
        inFlight.current = null;
        setHeld((h) => (h.roomId === roomId && h.query === query ? { ...h, loadingMore: false, error: errorOf(e) } : h));
      },
    );
  }, []);

  const clear = useCallback(() => {
    abort();
    next.current = null;
    setHeld({ ...IDLE, roomId: latest.current.roomId });
  }, []);

  return { ...cur, search, more, clear };
}

/** A jump to a search result in the room on screen, and how it went; another room forgets it. */
export function useJump(roomId: string | null) {
  const [state, setState] = useState<{ roomId: string | null; target: JumpTarget | null; status: JumpStatus | null }>({ roomId, target: null, status: null });
  const cur = state.roomId === roomId ? state : { roomId, target: null, status: null };
  const pick = useCallback((m: { seq: number }) => setState({ roomId, target: { seq: m.seq }, status: null }), [roomId]);
  const report = useCallback((status: JumpStatus, target: JumpTarget) => setState((s) => (s.target === target ? { ...s, status } : s)), []);
  return { target: cur.target, status: cur.status, pick, report };
}
