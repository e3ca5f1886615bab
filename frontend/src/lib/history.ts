import { withAttachments } from './attachments';
import type { LogItem, MessageItem } from './messageLog';
import { apiHeaders } from './token';
import type { ChatMessage } from './types';

/**
 * Paging back through a room's history: `GET /api/rooms/{id}/messages?limit=N&before=S`
 * answers the N messages before seq S, oldest first, and `nextBefore` (null: nothing
 * older; an empty page also means the start).
 * The pages fetched are kept apart from the live log (which the WebSocket fills) and
 * shown before it: `withOlder` puts the older messages that the live log does not
 * hold in front of its items, each seq once.
 */

/** Messages per page (the server allows up to 200). */
export const HISTORY_PAGE = 50;

export class HistoryError extends Error {
  constructor(
    readonly status: number | null,
    message: string,
  ) {
    super(message);
    this.name = 'HistoryError';
  }
}

function isMessage(m: unknown): m is ChatMessage {
  if (!m || typeof m !== 'object') return false;
  const o = m as Record<string, unknown>;
  return typeof o.seq === 'number' && Number.isInteger(o.seq) && typeof o.messageId === 'string' && typeof o.timestamp === 'string';
}

export interface FetchOlderOptions {
  limit?: number;
  signal?: AbortSignal;
  fetchImpl?: typeof fetch;
}

/** A page back: its messages, oldest first, and whether the room has anything older. */
export interface OlderPage {
  messages: ChatMessage[];
  /** The server's `nextBefore` is null, or the page reached seq 1: nothing is older. */
  atStart: boolean;
}

/** The page of `roomId` before seq `before` (an integer ≥ 1), oldest first, one per seq. */
export async function fetchOlder(http: string, roomId: string, before: number, o: FetchOlderOptions = {}): Promise<OlderPage> {
  if (!Number.isInteger(before) || before < 1) throw new HistoryError(null, `invalid before: ${before}`);
  const limit = Math.max(1, Math.min(200, Math.floor(o.limit ?? HISTORY_PAGE)));
  const url = `${http}/api/rooms/${encodeURIComponent(roomId)}/messages?limit=${limit}&before=${before}`;
  const doFetch = o.fetchImpl ?? fetch;
  let r: Response;
  try {
    r = await doFetch(url, { signal: o.signal, headers: apiHeaders() });
  } catch (e) {
    if (o.signal?.aborted) throw e;
    throw new HistoryError(null, 'network error');
  }
  if (!r.ok) {
    let code = '';
    try {
      const b = (await r.json()) as { error?: unknown; code?: unknown };
      code = typeof b?.error === 'string' ? b.error : typeof b?.code === 'string' ? b.code : '';
    } catch {
      /* no JSON body */
    }
    throw new HistoryError(r.status, code ? `${r.status} ${code}` : `HTTP ${r.status}`);
  }
  let body: unknown;
  try {
    body = await r.json();
  } catch {
    throw new HistoryError(r.status, 'invalid response');
  }
  const raw = (body as { messages?: unknown })?.messages;
  if (!Array.isArray(raw)) throw new HistoryError(r.status, 'invalid response');
  // only what is before `before`, oldest first, each seq once
  const messages = mergeOlder([], raw.filter(isMessage).filter((m) => m.seq < before).map(withAttachments));
  const next = (body as { nextBefore?: unknown }).nextBefore;
  return { messages, atStart: messages.length === 0 || messages[0].seq <= 1 || next === null };
}

/** `held` and `page` together, by seq, each seq once (the one already held wins). */
export function mergeOlder(held: readonly ChatMessage[], page: readonly ChatMessage[]): ChatMessage[] {
  const bySeq = new Map<number, ChatMessage>();
  for (const m of page) if (!bySeq.has(m.seq)) bySeq.set(m.seq, m);
  for (const m of held) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** The first message of the live log (the oldest one shown without paging), if any. */
export function firstMessage(items: readonly LogItem[]): MessageItem | null {
  for (const it of items) if (it.kind === 'message') return it;
  return null;
}

/**
 * The older messages that go before the live items: those with a seq below the
 * oldest live message's, keyed as the live log keys its own (`epoch:seq:messageId`).
 */
export function withOlder(older: readonly ChatMessage[], live: readonly LogItem[]): LogItem[] {
  if (older.length === 0) return live as LogItem[];
  const first = firstMessage(live);
  const epoch = first?.epoch ?? live[0]?.epoch ?? 0;
  const ids = new Set<string>();
  for (const it of live) if (it.kind === 'message') ids.add(it.msg.messageId);
  const before: LogItem[] = [];
  for (const m of older) {
    if (first && m.seq >= first.msg.seq) break;
    if (ids.has(m.messageId)) continue;
    before.push({ kind: 'message', key: `${epoch}:${m.seq}:${m.messageId}`, epoch, msg: m });
  }
  return before.length ? [...before, ...live] : (live as LogItem[]);
}

/** The seq to page back from: the oldest held (older pages first), null if none. */
export function oldestSeq(older: readonly ChatMessage[], live: readonly LogItem[]): number | null {
  const first = firstMessage(live);
  const o = older[0]?.seq;
  if (o != null && (first == null || o < first.msg.seq)) return o;
  return first?.msg.seq ?? null;
}
