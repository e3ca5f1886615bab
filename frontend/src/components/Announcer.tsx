import { useEffect, useRef, useState } from 'react';
import type { LogItem } from '../lib/messageLog';

/** Screen-reader announcement of new messages from others, throttled. */
export function Announcer({ items, selfId }: { items: LogItem[]; selfId: string }) {
  const [text, setText] = useState('');
  const lastAt = useRef(0);
  const lastKey = useRef<string | null>(null);
  const primed = useRef(false);
  useEffect(() => {
    const last = items[items.length - 1];
    if (!last || last.key === lastKey.current) return;
    lastKey.current = last.key;
    if (!primed.current) {
      primed.current = true; // do not read out the backlog
      return;
    }
    if (last.kind !== 'message' || last.msg.userId === selfId) return;
    const now = Date.now();
    if (now - lastAt.current < 1500) return;
    lastAt.current = now;
    setText(`${last.msg.username}: ${last.msg.content.slice(0, 200)}`);
  }, [items, selfId]);
  return (
    <div className="sr-only" aria-live="polite" aria-atomic="true">
      {text}
    </div>
  );
}
