import type { ChatMessage } from './types';

/**
 * The in-memory message log of one room: ordered by (epoch, seq), deduplicated,
 * bounded. Pure: `mergeMessages` never mutates its input state.
 *
 * Ordering and dedupe rules for an incoming message m (current epoch, newest seq L,
 * newest timestamp T):
 *   - m.messageId already held                       -> duplicate, dropped
 *   - m.seq > L                                      -> appended (a gap may be filled later)
 *   - m.seq <= L and m.timestamp > T                 -> the room's sequence restarted
 *       (a server without a durable store was restarted): a new epoch begins, a
 *       divider is shown, and m starts it
 *   - m.seq <= L, seq already held in this epoch     -> duplicate (defensive), dropped
 *   - m.seq <= L, seq not held, within kept range    -> a late gap fill, inserted in order
 *   - otherwise (older than everything kept)         -> dropped
 */

export interface MessageItem {
  kind: 'message';
  key: string;
  epoch: number;
  msg: ChatMessage;
}

export interface DividerItem {
  kind: 'divider';
  key: string;
  epoch: number;
  text: string;
}

export type LogItem = MessageItem | DividerItem;

export interface LogState {
  items: LogItem[];
  ids: ReadonlySet<string>;
  epoch: number;
  /** Highest seq seen in the current epoch; the resume point for `since`. */
  lastSeq: number | null;
  /** Newest timestamp seen (any epoch). */
  lastTs: string | null;
  max: number;
  /** Messages dropped as duplicates so far (for diagnostics and tests). */
  duplicates: number;
}

export const DEFAULT_MAX_MESSAGES = 10_000;

export function emptyLog(max = DEFAULT_MAX_MESSAGES): LogState {
  return { items: [], ids: new Set(), epoch: 0, lastSeq: null, lastTs: null, max, duplicates: 0 };
}

function seqOf(item: LogItem): number {
  return item.kind === 'message' ? item.msg.seq : -Infinity;
}

/** Index of the first item of `epoch` whose seq is >= seq (items sorted by epoch then seq). */
function lowerBound(items: LogItem[], epoch: number, seq: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const it = items[mid];
    const less = it.epoch < epoch || (it.epoch === epoch && seqOf(it) < seq);
    if (less) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function mergeMessages(state: LogState, batch: readonly ChatMessage[]): LogState {
  if (batch.length === 0) return state;
  let items: LogItem[] | null = null; // copy on first write
  let ids: Set<string> | null = null;
  let { epoch, lastSeq, lastTs, duplicates } = state;
  const w = () => {
    if (!items) items = state.items.slice();
    if (!ids) ids = new Set(state.ids);
    return { items, ids };
  };
  const has = (id: string) => (ids ?? state.ids).has(id);
  const cur = () => items ?? state.items;

  for (const m of batch) {
    if (has(m.messageId)) {
      duplicates++;
      continue;
    }
    const newer = lastTs == null || m.timestamp > lastTs;
    if (lastSeq == null || m.seq > lastSeq) {
      const t = w();
      t.items.push({ kind: 'message', key: `${epoch}:${m.seq}:${m.messageId}`, epoch, msg: m });
      t.ids.add(m.messageId);
      lastSeq = m.seq;
    } else if (newer && cur().length > 0) {
      // Sequence went backwards with a newer timestamp: the room restarted.
      epoch++;
      const t = w();
      t.items.push({
        kind: 'divider',
        key: `div:${epoch}:${m.messageId}`,
        epoch,
        text: 'Server restarted — message sequence reset',
      });
      t.items.push({ kind: 'message', key: `${epoch}:${m.seq}:${m.messageId}`, epoch, msg: m });
      t.ids.add(m.messageId);
      lastSeq = m.seq;
    } else {
      const list = cur();
      const at = lowerBound(list, epoch, m.seq);
      const hit = list[at];
      if (hit && hit.epoch === epoch && hit.kind === 'message' && hit.msg.seq === m.seq) {
        duplicates++;
        continue;
      }
      // Within the kept range of the current epoch? (something of this epoch before it)
      const prev = list[at - 1];
      const inRange = prev !== undefined && prev.epoch === epoch && (prev.kind === 'divider' || seqOf(prev) < m.seq);
      if (!inRange) {
        duplicates++;
        continue;
      }
      const t = w();
      t.items.splice(at, 0, { kind: 'message', key: `${epoch}:${m.seq}:${m.messageId}`, epoch, msg: m });
      t.ids.add(m.messageId);
    }
    if (newer) lastTs = m.timestamp;
  }

  if (!items) return duplicates === state.duplicates ? state : { ...state, duplicates };
  let out: LogItem[] = items;
  let outIds: Set<string> = ids!;
  if (out.length > state.max) {
    const cut = out.length - state.max;
    for (let i = 0; i < cut; i++) {
      const it = out[i];
      if (it.kind === 'message') outIds.delete(it.msg.messageId);
    }
    out = out.slice(cut);
    // never start with a dangling divider
    while (out.length > 0 && out[0].kind === 'divider') out = out.slice(1);
  }
  return { ...state, items: out, ids: outIds, epoch, lastSeq, lastTs, duplicates };
}

export function messageCount(state: LogState): number {
  return state.ids.size;
}
