import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { LogItem } from '../lib/messageLog';
import { formatClock, hueFor } from '../lib/text';
import { Avatar } from './Avatar';

const GROUP_MS = 2 * 60_000;
const STICK_PX = 48;

function isContinuation(prev: LogItem | undefined, cur: LogItem): boolean {
  if (!prev || prev.kind !== 'message' || cur.kind !== 'message') return false;
  if (prev.msg.userId !== cur.msg.userId) return false;
  return Date.parse(cur.msg.timestamp) - Date.parse(prev.msg.timestamp) < GROUP_MS;
}

const Row = memo(function Row({ item, cont, own, seen }: { item: LogItem; cont: boolean; own: boolean; seen?: string }) {
  if (item.kind === 'divider') {
    return (
      <div className="divider" role="separator">
        <span>{item.text}</span>
      </div>
    );
  }
  const m = item.msg;
  return (
    <div className={`msg${own ? ' msg-own' : ''}${cont ? ' msg-cont' : ''}`} data-testid="message" data-seq={m.seq} data-own={own ? 'true' : undefined}>
      <div className="msg-gutter">
        {cont ? (
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
            <span className="msg-name" style={{ color: `hsl(${hueFor(m.userId)} 85% 75%)` }}>
              {m.username}
            </span>
            {own && <span className="you">you</span>}
            <time dateTime={m.timestamp} title={new Date(m.timestamp).toLocaleString()}>
              {formatClock(m.timestamp)}
            </time>
          </div>
        )}
        <div className="msg-content">{m.content}</div>
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
}

export function MessageList({ items, selfId, seenBy }: MessageListProps) {
  const scrollRef = useRef<HTMLDivElement>(null);
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
  });

  const onScroll = useCallback(() => {
    const el = scrollRef.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX;
    stick.current = bottom;
    setAtBottom(bottom);
    if (bottom) setUnseen(0);
  }, []);

  const total = v.getTotalSize();
  // Follow the newest message while the reader is at the bottom (also after rows are measured).
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

  const jump = () => {
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
  return (
    <div className="msglist-wrap">
      <div className="msglist" ref={scrollRef} onScroll={onScroll} tabIndex={0} role="region" aria-label="Messages">
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
                    />
                  </div>
                );
              })}
            </div>
          </div>
        )}
      </div>
      {!atBottom && (
        <button type="button" className="jump btn btn-primary btn-sm" onClick={jump}>
          {unseen > 0 ? `${unseen} new message${unseen === 1 ? '' : 's'} ↓` : 'Jump to latest ↓'}
        </button>
      )}
    </div>
  );
}
