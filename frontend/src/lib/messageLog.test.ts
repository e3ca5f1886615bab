import { msg, replay } from '../test/fakeSocket';
import { emptyLog, mergeMessages, type LogState } from './messageLog';

const seqs = (s: LogState) => s.items.map((i) => (i.kind === 'message' ? i.msg.seq : 'div'));

describe('mergeMessages', () => {
  it('appends in order and tracks the resume point', () => {
    const s = mergeMessages(emptyLog(), [msg(1), msg(2), msg(3)]);
    expect(seqs(s)).toEqual([1, 2, 3]);
    expect(s.lastSeq).toBe(3);
  });

  it('drops an overlapping replay (same ids) after a reconnect', () => {
    const batch = [msg(1), msg(2), msg(3), msg(4)];
    let s = mergeMessages(emptyLog(), batch.slice(0, 3));
    // the server replays 2..4 (overlap of 2)
    s = mergeMessages(s, [replay(batch[1]), replay(batch[2]), batch[3]]);
    expect(seqs(s)).toEqual([1, 2, 3, 4]);
    expect(s.duplicates).toBe(2);
    expect(s.lastSeq).toBe(4);
  });

  it('dedupes by seq defensively even when the id differs', () => {
    const a = msg(5);
    let s = mergeMessages(emptyLog(), [msg(4), a, msg(6)]);
    s = mergeMessages(s, [{ ...a, messageId: 'other-id', timestamp: a.timestamp }]);
    expect(seqs(s)).toEqual([4, 5, 6]);
    expect(s.duplicates).toBe(1);
  });

  it('returns the same state object when nothing changes', () => {
    const m = msg(1);
    const s = mergeMessages(emptyLog(), [m]);
    expect(mergeMessages(s, [])).toBe(s);
    const again = mergeMessages(s, [replay(m)]);
    expect(again.items).toBe(s.items);
  });

  it('fills a gap in seq order', () => {
    const [m1, m2, m3, m4] = [msg(1), msg(2), msg(3), msg(4)];
    let s = mergeMessages(emptyLog(), [m1, m2, m4]);
    s = mergeMessages(s, [m3]);
    expect(seqs(s)).toEqual([1, 2, 3, 4]);
    expect(s.lastSeq).toBe(4);
  });

  it('does not resurrect messages older than what is kept', () => {
    const old = msg(1);
    let s = mergeMessages(emptyLog(3), [old, msg(2), msg(3), msg(4)]);
    expect(seqs(s)).toEqual([2, 3, 4]);
    s = mergeMessages(s, [replay(old)]);
    expect(seqs(s)).toEqual([2, 3, 4]);
  });

  it('keeps at most `max` messages and forgets their ids', () => {
    const all = Array.from({ length: 25 }, (_, i) => msg(i + 1));
    const s = mergeMessages(emptyLog(10), all);
    expect(s.items).toHaveLength(10);
    expect(seqs(s)[0]).toBe(16);
    expect(s.ids.size).toBe(10);
    expect(s.ids.has(all[0].messageId)).toBe(false);
  });

  it('handles 10,000 messages arriving in many batches without growing past the cap', () => {
    let s = emptyLog();
    for (let b = 0; b < 120; b++) s = mergeMessages(s, Array.from({ length: 100 }, (_, i) => msg(b * 100 + i + 1)));
    expect(s.items).toHaveLength(10_000);
    expect(s.lastSeq).toBe(12_000);
    expect((s.items[0] as { msg: { seq: number } }).msg.seq).toBe(2_001);
  });

  it('starts a new epoch when the server restarted without a durable store (seq went back, time went forward)', () => {
    let s = mergeMessages(emptyLog(), [msg(41), msg(42)]);
    const fresh = msg(1); // later timestamp, seq restarted
    s = mergeMessages(s, [fresh, msg(2)]);
    expect(seqs(s)).toEqual([41, 42, 'div', 1, 2]);
    expect(s.epoch).toBe(1);
    expect(s.lastSeq).toBe(2);
    // a replay of the new epoch is still deduplicated
    s = mergeMessages(s, [replay(fresh)]);
    expect(seqs(s)).toEqual([41, 42, 'div', 1, 2]);
  });

  it('after a restart, history that arrives after live frames slots in before them', () => {
    let s = mergeMessages(emptyLog(), [msg(9), msg(10)]);
    const n1 = msg(1);
    const n2 = msg(2);
    const n3 = msg(3);
    s = mergeMessages(s, [n3]); // live frame first
    s = mergeMessages(s, [n1, n2, replay(n3)]); // then the history backfill
    expect(seqs(s)).toEqual([9, 10, 'div', 1, 2, 3]);
  });
});
