import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { HistoryState } from '../hooks/useHistory';
import type { LogItem } from '../lib/messageLog';
import { formatClock, hueFor } from '../lib/text';
import { Avatar } from './Avatar';
import { MessageAttachments } from './MessageAttachments';
import type { JumpStatus, JumpTarget } from '../hooks/useSearch';

const GROUP_MS = 2 * 60_000;
const STICK_PX = 48;
/** Scrolled this close to the top, the page before is fetched. */
const TOP_PX = 120;
/** How long a message jumped to stays highlighted. */
export const FLASH_MS = 3_000;

function isContinuation(prev: LogItem | undefined, cur: LogItem): boolean {
  if (!prev || prev.kind !== 'message' || cur.kind !== 'message') return false;
  if (prev.msg.type === 'system' || cur.msg.type === 'system') return false;
  if (prev.msg.userId !== cur.msg.userId) return false;
  return Date.parse(cur.msg.timestamp) - Date.parse(prev.msg.timestamp) < GROUP_MS;
}

const Row = memo(function Row({ item, cont, own, seen, flash, http }: { item: LogItem; cont: boolean; own: boolean; seen?: string; flash?: boolean; http: string }) {
  if (item.kind === 'divider') {
    return (
      <div className="divider" role="separator">
        <span>{item.text}</span>
      </div>
    );
  }
  const m = item.msg;
  // An announcement: an icon for an avatar, never "own", never grouped (isContinuation).
  const system = m.type === 'system';
  const mine = own && !system;
  return (
    <div
      className={`msg${system ? ' msg-system' : ''}${mine ? ' msg-own' : ''}${cont ? ' msg-cont' : ''}${flash ? ' msg-flash' : ''}`}
      data-testid="message"
      data-kind={system ? 'system' : undefined}
      role={system ? 'note' : undefined}
      data-seq={m.seq}
      data-own={mine ? 'true' : undefined}
      data-flash={flash ? 'true' : undefined}
    >
      <div className="msg-gutter">
        {system ? (
          <svg className="msg-system-icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
            <circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" strokeWidth="2" />
            <path d="M12 7v6M12 16.5v.5" stroke="currentColor" strokeWidth="2.4" strokeLinecap="round" />
          </svg>
        ) : cont ? (
          <time className="msg-time-hover" dateTime={m.timestamp}>
            {formatClock(m.timestamp)}
          </time>
        ) : (
          <Avatar id={m.userId} name={m.username} />
        )}
      </div>
      <div className="msg-body">
        {!cont && (
          <div className="msg-meta">
            <span className="msg-name" style={system ? undefined : { color: `hsl(${hueFor(m.userId)} 85% 75%)` }}>
              {m.username}
            </span>
            {mine && <span className="you">you</span>}
            <time dateTime={m.timestamp} title={new Date(m.timestamp).toLocaleString()}>
              {formatClock(m.timestamp)}
            </time>
          </div>
        )}
        {(m.content !== '' || !m.attachments) && <div className="msg-content">{m.content}</div>}
        {m.attachments && <MessageAttachments items={m.attachments} http={http} />}
        {seen && (
          <div className="msg-seen" data-testid="seen-by">
            seen by {seen}
          </div>
        )}
      </div>
    </div>
  );
});

export interface MessageListProps {
  items: LogItem[];
  selfId: string;
  /** Read markers: item key → "Alice, Bob" shown under that message (v2). */
  seenBy?: ReadonlyMap<string, string>;
  /** Paging back through older messages (a "Load older messages" line at the top). */
  history?: HistoryState;
  /**
   * Show the message with this seq (a search result), paging back until it is loaded,
   * and highlight it for a moment. A new object is a new jump (the same seq again too).
   */
  jumpTo?: JumpTarget | null;
  /** How the jump went: `finding` while older pages load, then `shown`, `missing` or `failed`. */
  onJump?: (status: JumpStatus, target: JumpTarget) => void;
  /** The server's HTTP base ("" for same origin): attached files are fetched from it. */
  http?: string;
}

/** The index of the message with `seq` in the newest numbering that holds it, -1 if none. */
function indexOfSeq(items: readonly LogItem[], seq: number): number {
  for (let i = items.length - 1; i >= 0; i--) {
    const it = items[i];
    if (it.kind === 'message' && it.msg.seq === seq) return i;
  }
  return -1;
}

function HistoryHead({ history, setRef }: { history: HistoryState; setRef: (el: HTMLDivElement | null) => void }) {
  return (
    <div className="msglist-history" ref={setRef}>
      {history.status === 'start' ? (
        <span className="muted small" data-testid="history-start">
          Beginning of the room
        </span>
      ) : history.canLoad ? (
        <>
          <button type="button" className="btn btn-ghost btn-sm" data-testid="load-older" disabled={history.status === 'loading'} aria-busy={history.status === 'loading'} onClick={() => history.loadOlder()}>
            {history.status === 'loading' ? 'Loading older messages…' : 'Load older messages'}
          </button>
          {history.status === 'error' && (
            <span className="field-err small" role="alert" data-testid="history-error">
              Could not load older messages ({history.error}). Try again.
            </span>
          )}
        </>
      ) : null}
    </div>
  );
}

export function MessageList({ items, selfId, seenBy, history, jumpTo, onJump, http = '' }: MessageListProps) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const historyRef = useRef(history);
  historyRef.current = history;
  const [head, setHead] = useState<HTMLDivElement | null>(null);
  const stick = useRef(true);
  const [atBottom, setAtBottom] = useState(true);
  const [unseen, setUnseen] = useState(0);
  const lastKey = useRef<string | null>(null);

  const v = useVirtualizer({
    count: items.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => 52,
    overscan: 10,
    getItemKey: (i) => items[i].key,
    anchorTo: 'end',
  });

  const onScroll = useCallback(() => {
    const el = scrollRef.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX;
    stick.current = bottom;
    setAtBottom(bottom);
    if (bottom) setUnseen(0);
    if (el.scrollTop < TOP_PX && !bottom) historyRef.current?.loadOlder(true);
  }, []);

  // The top line in view: fetch the page before (an IntersectionObserver where there is one).
  useEffect(() => {
    const root = scrollRef.current;
    if (!head || !root || typeof IntersectionObserver === 'undefined') return;
    const io = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting) && !stick.current) historyRef.current?.loadOlder(true);
      },
      { root, rootMargin: `${TOP_PX}px 0px 0px 0px` },
    );
    io.observe(head);
    return () => io.disconnect();
  }, [head]);

  // A jump to a message: found among the items, scrolled to the middle and flashed;
  // older than the oldest shown, the history is paged back (one page at a time) first.
  const [flash, setFlash] = useState<{ seq: number; target: JumpTarget } | null>(null);
  const jump = useRef<{ target: JumpTarget; asked: boolean } | null>(null);
  const seenTarget = useRef<JumpTarget | null>(null);
  const onJumpRef = useRef(onJump);
  onJumpRef.current = onJump;
  const hStatus = history?.status;
  const hCanLoad = history?.canLoad ?? false;
  useEffect(() => {
    if (jumpTo && jumpTo !== seenTarget.current) {
      seenTarget.current = jumpTo;
      jump.current = { target: jumpTo, asked: false };
    } else if (!jumpTo) {
      seenTarget.current = null;
      jump.current = null;
    }
    const j = jump.current;
    if (!j) return;
    const report = (s: JumpStatus) => onJumpRef.current?.(s, j.target);
    const idx = indexOfSeq(items, j.target.seq);
    if (idx >= 0) {
      jump.current = null;
      stick.current = false;
      setAtBottom(false);
      v.scrollToIndex(idx, { align: 'center' });
      setFlash({ seq: j.target.seq, target: j.target });
      report('shown');
      return;
    }
    const h = historyRef.current;
    const first = items.find((it) => it.kind === 'message');
    const older = first?.kind === 'message' && j.target.seq < first.msg.seq;
    if (!older || !h || !hCanLoad) {
      jump.current = null;
      report('missing');
      return;
    }
    if (hStatus === 'error' && j.asked) {
      jump.current = null;
      report('failed');
      return;
    }
    if (hStatus === 'loading') return; // that page first
    j.asked = true;
    report('finding');
    h.loadOlder();
  }, [jumpTo, items, hStatus, hCanLoad, v]);

  useEffect(() => {
    if (!flash) return;
    const t = setTimeout(() => setFlash((f) => (f === flash ? null : f)), FLASH_MS);
    return () => clearTimeout(t);
  }, [flash]);

  const total = v.getTotalSize();
  // Follow the newest message while the reader is at the bottom (also after rows are measured).
  // Older messages put in front (history pages) keep what is on screen where it was: the
  // virtualizer anchors the row at the scroll offset when the first key changes
  // (`anchorTo: 'end'`), and corrects the offset as rows above the view are measured.
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [items, total]);

  // Count messages that arrive while the reader is scrolled up.
  useEffect(() => {
    const last = items[items.length - 1];
    const key = last?.key ?? null;
    if (key && key !== lastKey.current && lastKey.current !== null && !stick.current) setUnseen((n) => n + 1);
    lastKey.current = key;
  }, [items]);

  const toLatest = () => {
    stick.current = true;
    setAtBottom(true);
    setUnseen(0);
    if (items.length) v.scrollToIndex(items.length - 1, { align: 'end' });
    requestAnimationFrame(() => {
      const el = scrollRef.current;
      if (el) el.scrollTop = el.scrollHeight;
    });
  };

  const virtualItems = v.getVirtualItems();
  const flashIdx = flash ? indexOfSeq(items, flash.seq) : -1;
  return (
    <div className="msglist-wrap">
      <div className="msglist" ref={scrollRef} onScroll={onScroll} tabIndex={0} role="region" aria-label="Messages" style={{ overflowAnchor: 'none' }}>
        {history && items.length > 0 && <HistoryHead history={history} setRef={setHead} />}
        {items.length === 0 ? (
          <div className="msglist-empty">No messages yet. Say hello!</div>
        ) : (
          <div className="msglist-inner" style={{ height: total, position: 'relative', width: '100%' }}>
            <div style={{ position: 'absolute', top: 0, left: 0, width: '100%', transform: `translateY(${virtualItems[0]?.start ?? 0}px)` }}>
              {virtualItems.map((vi) => {
                const item = items[vi.index];
                return (
                  <div key={vi.key} data-index={vi.index} ref={v.measureElement}>
                    <Row
                      item={item}
                      cont={isContinuation(items[vi.index - 1], item)}
                      own={item.kind === 'message' && item.msg.userId === selfId}
                      seen={seenBy?.get(item.key)}
                      flash={vi.index === flashIdx}
                      http={http}
                    />
                  </div>
                );
              })}
            </div>
          </div>
        )}
      </div>
      {!atBottom && (
        <button type="button" className="jump btn btn-primary btn-sm" onClick={toLatest}>
          {unseen > 0 ? `${unseen} new message${unseen === 1 ? '' : 's'} ↓` : 'Jump to latest ↓'}
        </button>
      )}
    </div>
  );
}
