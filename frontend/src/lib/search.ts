import { withAttachments } from './attachments';
import { apiHeaders } from './token';
import type { ChatMessage } from './types';
import { ApiError } from './apiError';

/**
 * Message search: `GET /api/rooms/{id}/search?q=…&before=S&limit=N` answers the
 * messages of the room holding every word of `q` (the last one as a prefix; case and
 * accents ignored; CJK characters one by one), newest first, and `nextBefore` (the
 * `before` of the next, older page; null: no more). The index lags the chat by about
 * half a second.
 *
 * Every failure is a `SearchError` with the server's `error` code (`invalid_query`,
 * `invalid_before`, `room_not_found`, `forbidden`, `unauthorized`, `busy`, …),
 * `http_<status>` without one, or `network` / `invalid_response`.
 */

/** Results per page asked for (the server gives at most 50). */
export const SEARCH_PAGE = 20;
/** The most a page may have. */
export const SEARCH_PAGE_MAX = 50;
/** The longest query the server takes, in characters. */
export const SEARCH_QUERY_MAX = 200;

/** What a refusal means when the server gives no message of its own. */
const MESSAGES: Record<string, string> = {
  invalid_query: 'Type one to eight words (at most 200 characters).',
  invalid_before: 'The server could not page these results.',
  room_not_found: 'There is no such room.',
  forbidden: 'You may not read this room.',
  unauthorized: 'Sign in first: the token is missing or expired.',
  busy: 'Search is busy. Try again in a moment.',
  unavailable: 'Search is not available on this server.',
  network: 'The server cannot be reached.',
  invalid_response: 'The server answered something unexpected.',
};

/** A search that failed (see {@link ApiError}; status null also when refused before asking). */
export class SearchError extends ApiError {
  override name = 'SearchError';
}

export interface SearchOptions {
  /** Only messages with a smaller seq (a previous page's `nextBefore`). */
  before?: number | null;
  /** Results per page, 1 to 50 (default 20). */
  limit?: number;
  signal?: AbortSignal;
  fetchImpl?: typeof fetch;
}

export interface SearchPage {
  /** Newest first, one per seq. */
  messages: ChatMessage[];
  /** The `before` of the next (older) page; null: this is the last one. */
  nextBefore: number | null;
}

const isStr = (v: unknown): v is string => typeof v === 'string';

function isMessage(m: unknown): m is ChatMessage {
  if (!m || typeof m !== 'object') return false;
  const o = m as Record<string, unknown>;
  return typeof o.seq === 'number' && Number.isInteger(o.seq) && isStr(o.messageId) && isStr(o.timestamp) && isStr(o.content);
}

/** Whether the server would take `q` as a query's text at all: 1 to 200 characters, not blank. */
export function validQueryText(q: string): boolean {
  const n = Array.from(q).length;
  return n > 0 && n <= SEARCH_QUERY_MAX && q.trim() !== '';
}

/** One page of the messages of `roomId` that match `q`, newest first. */
export async function searchRoom(http: string, roomId: string, q: string, o: SearchOptions = {}): Promise<SearchPage> {
  if (!validQueryText(q)) throw new SearchError('invalid_query', MESSAGES.invalid_query);
  if (o.before != null && (!Number.isInteger(o.before) || o.before < 1)) throw new SearchError('invalid_before', MESSAGES.invalid_before);
  const limit = Math.max(1, Math.min(SEARCH_PAGE_MAX, Math.floor(o.limit ?? SEARCH_PAGE)));
  const params = new URLSearchParams({ q });
  if (o.before != null) params.set('before', String(o.before));
  params.set('limit', String(limit));
  // URLSearchParams writes a space as "+"; %20 reads the same on any server
  const url = `${http}/api/rooms/${encodeURIComponent(roomId)}/search?${params.toString().replace(/\+/g, '%20')}`;
  let r: Response;
  try {
    r = await (o.fetchImpl ?? fetch)(url, { method: 'GET', signal: o.signal, headers: apiHeaders() });
  } catch (e) {
    if (o.signal?.aborted) throw e;
    throw new SearchError('network', MESSAGES.network);
  }
  let body: unknown = null;
  try {
    body = await r.json();
  } catch {
    /* no JSON body */
  }
  if (!r.ok) {
    const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    const code = isStr(b.error) && b.error ? b.error : isStr(b.code) && b.code ? b.code : `http_${r.status}`;
    const fallback = MESSAGES[code] ?? (r.status === 401 ? MESSAGES.unauthorized : r.status === 403 ? MESSAGES.forbidden : r.status === 503 ? MESSAGES.busy : `The server answered ${r.status}.`);
    throw new SearchError(code, isStr(b.message) && b.message ? b.message : fallback, r.status);
  }
  const raw = (body as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(raw)) throw new SearchError('invalid_response', MESSAGES.invalid_response, r.status);
  const seen = new Set<number>();
  const messages: ChatMessage[] = [];
  for (const m of raw) {
    if (!isMessage(m) || seen.has(m.seq) || (o.before != null && m.seq >= o.before)) continue;
    seen.add(m.seq);
    messages.push(withAttachments(m));
  }
  messages.sort((a, b) => b.seq - a.seq);
  const next = (body as { nextBefore?: unknown }).nextBefore;
  const nextBefore = typeof next === 'number' && Number.isInteger(next) && next >= 1 && messages.length > 0 ? next : null;
  return { messages, nextBefore };
}

// ---- highlighting: the parts of a message's text that the query's words match ----

export interface Segment {
  text: string;
  /** This part matches a word of the query. */
  match: boolean;
}

/** Letters the accent stripping (NFD) leaves as they are, folded as the server folds them. */
const FOLD: Record<string, string> = {
  ß: 'ss',
  ẞ: 'ss',
  æ: 'ae',
  Æ: 'ae',
  œ: 'oe',
  Œ: 'oe',
  ø: 'o',
  Ø: 'o',
  đ: 'd',
  Đ: 'd',
  ð: 'd',
  Ð: 'd',
  ł: 'l',
  Ł: 'l',
  þ: 'th',
  Þ: 'th',
  ı: 'i',
};
const MARKS = /\p{M}/gu;
const WORD_CHAR = /[\p{L}\p{N}\p{M}]/u;

/** One character (code point) as compared: lower case, accents stripped ("" for a combining mark). */
export function foldChar(c: string): string {
  const f = FOLD[c];
  if (f) return f;
  return c.normalize('NFD').replace(MARKS, '').toLowerCase().normalize('NFD').replace(MARKS, '');
}

/** Text as compared: lower case, accents stripped ("Crème" → "creme"). */
export function fold(text: string): string {
  let out = '';
  for (const c of text) out += foldChar(c);
  return out;
}

/** Chinese, Japanese and Korean characters: each is a word of its own (as the server indexes them). */
export function isCjk(c: string): boolean {
  const n = c.codePointAt(0) ?? 0;
  return (
    (n >= 0x3040 && n <= 0x30ff) ||
    (n >= 0x3400 && n <= 0x4dbf) ||
    (n >= 0x4e00 && n <= 0x9fff) ||
    (n >= 0xac00 && n <= 0xd7af) ||
    (n >= 0xf900 && n <= 0xfaff) ||
    (n >= 0x20000 && n <= 0x2fa1f)
  );
}

interface Word {
  /** UTF-16 offsets of the word in the text. */
  start: number;
  end: number;
  /** Its characters: their offsets and how each compares. */
  chars: { start: number; end: number; folded: string }[];
}

/** The words of `text`: runs of letters, digits and marks; every CJK character one word. */
function words(text: string): Word[] {
  const out: Word[] = [];
  let cur: Word | null = null;
  let i = 0;
  for (const c of text) {
    const start = i;
    i += c.length;
    if (isCjk(c)) {
      cur = null;
      out.push({ start, end: i, chars: [{ start, end: i, folded: foldChar(c) }] });
    } else if (WORD_CHAR.test(c)) {
      if (!cur) {
        cur = { start, end: i, chars: [] };
        out.push(cur);
      }
      cur.end = i;
      cur.chars.push({ start, end: i, folded: foldChar(c) });
    } else {
      cur = null;
    }
  }
  return out.filter((w) => w.chars.some((c) => c.folded !== ''));
}

/** The words of a query as compared ("Crème bru" → ["creme", "bru"]). */
export function queryTerms(query: string): string[] {
  return words(query)
    .map((w) => w.chars.map((c) => c.folded).join(''))
    .filter(Boolean);
}

/**
 * `text` cut into parts, in order (joined they are `text`, its characters unchanged),
 * those that match a word of `query` marked: a word equal to one of the query's words
 * (ignoring case and accents), or for the query's last word, the start of any word
 * that begins with it ("depl" marks "Depl" of "Deploying").
 */
export function highlight(text: string, query: string): Segment[] {
  const terms = queryTerms(query);
  if (!text) return [];
  if (terms.length === 0) return [{ text, match: false }];
  const exact = new Set(terms.slice(0, -1));
  const prefix = terms[terms.length - 1];
  const ranges: [number, number][] = [];
  for (const w of words(text)) {
    const folded = w.chars.map((c) => c.folded).join('');
    if (exact.has(folded) || folded === prefix) {
      ranges.push([w.start, w.end]);
    } else if (folded.startsWith(prefix)) {
      // the characters that make up the prefix (a character folding to more, "ß" → "ss", counts whole)
      let n = 0;
      let end = w.start;
      for (const c of w.chars) {
        if (n >= prefix.length) break;
        n += c.folded.length;
        end = c.end;
      }
      // the marks that follow the last one belong to it
      for (const c of w.chars) if (c.start >= end && c.folded === '' && c.start === end) end = c.end;
      ranges.push([w.start, end]);
    }
  }
  const out: Segment[] = [];
  const push = (t: string, match: boolean) => {
    if (!t) return;
    const last = out[out.length - 1];
    if (last && last.match === match) last.text += t;
    else out.push({ text: t, match });
  };
  let at = 0;
  for (const [s, e] of ranges) {
    push(text.slice(at, s), false);
    push(text.slice(s, e), true);
    at = e;
  }
  push(text.slice(at), false);
  return out;
}
