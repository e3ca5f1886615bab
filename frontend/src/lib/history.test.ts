import { msg } from '../test/fakeSocket';
import { emptyLog, mergeMessages } from './messageLog';
import { fetchOlder, HistoryError, mergeOlder, oldestSeq, withOlder } from './history';

function json(body: unknown, status = 200) {
  return Promise.resolve(new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } }));
}
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => msg(a + i, { messageId: `m${a + i}` }));
const fetchMock = vi.fn((_url: string, _init?: RequestInit) => json({ roomId: 'r', count: 0, messages: [] }));

beforeEach(() => {
  fetchMock.mockClear();
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

describe('fetchOlder', () => {
  it('asks for the page before a seq and answers it oldest first, one per seq', async () => {
    fetchMock.mockImplementationOnce(() => json({ roomId: 'a b', count: 4, messages: [msg(48, { messageId: 'm48' }), msg(47, { messageId: 'm47' }), msg(48, { messageId: 'x' }), { junk: true }] }));
    const page = await fetchOlder('http://h', 'a b', 49, { limit: 2 });
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(fetchMock.mock.calls[0][0]).toBe('http://h/api/rooms/a%20b/messages?limit=2&before=49');
    expect(fetchMock.mock.calls[0][1]?.headers).toEqual({ Accept: 'application/json' });
    expect(page.atStart).toBe(false);
    expect(page.messages.map((m) => [m.seq, m.messageId])).toEqual([
      [47, 'm47'],
      [48, 'm48'],
    ]);
  });

  it('uses a page of 50 by default, at most 200, and drops what is not before `before`', async () => {
    fetchMock.mockImplementationOnce(() => json({ messages: range(8, 12) }));
    const page = await fetchOlder('', 'r', 10);
    expect(fetchMock.mock.calls[0][0]).toBe('/api/rooms/r/messages?limit=50&before=10');
    expect(page.messages.map((m) => m.seq)).toEqual([8, 9]);
    await fetchOlder('', 'r', 10, { limit: 1000 });
    expect(fetchMock.mock.calls[1][0]).toBe('/api/rooms/r/messages?limit=200&before=10');
  });

  it('an empty page is an empty array (the start of the room)', async () => {
    expect(await fetchOlder('http://h', 'r', 1)).toEqual({ messages: [], atStart: true });
  });

  it('nextBefore null says the page is the start, before seq 1 is reached', async () => {
    fetchMock.mockImplementationOnce(() => json({ messages: range(500, 549), nextBefore: null }));
    expect((await fetchOlder('http://h', 'r', 550)).atStart).toBe(true);
    fetchMock.mockImplementationOnce(() => json({ messages: range(500, 549), nextBefore: 500 }));
    expect((await fetchOlder('http://h', 'r', 550)).atStart).toBe(false);
  });

  it('sends the access token as Bearer when there is one', async () => {
    window.sessionStorage.setItem('hubbub.token', 'a.b.c');
    try {
      await fetchOlder('http://h', 'r', 5);
      expect(fetchMock.mock.calls[0][1]?.headers).toEqual({ Accept: 'application/json', Authorization: 'Bearer a.b.c' });
    } finally {
      window.sessionStorage.removeItem('hubbub.token');
    }
  });

  it('refuses a before that is not an integer of 1 or more, without a request', async () => {
    await expect(fetchOlder('http://h', 'r', 0)).rejects.toBeInstanceOf(HistoryError);
    await expect(fetchOlder('http://h', 'r', 2.5)).rejects.toBeInstanceOf(HistoryError);
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('fails with the status and error code of a refused request, and on network errors or a bad body', async () => {
    fetchMock.mockImplementationOnce(() => json({ error: 'invalid_before', message: 'before must be an integer' }, 400));
    await expect(fetchOlder('http://h', 'r', 5)).rejects.toMatchObject({ status: 400, message: '400 invalid_before' });
    fetchMock.mockImplementationOnce(() => Promise.resolve(new Response('oops', { status: 503 })));
    await expect(fetchOlder('http://h', 'r', 5)).rejects.toMatchObject({ status: 503, message: 'HTTP 503' });
    fetchMock.mockImplementationOnce(() => Promise.reject(new TypeError('Failed to fetch')));
    await expect(fetchOlder('http://h', 'r', 5)).rejects.toMatchObject({ status: null, message: 'network error' });
    fetchMock.mockImplementationOnce(() => json({ nope: 1 }));
    await expect(fetchOlder('http://h', 'r', 5)).rejects.toMatchObject({ message: 'invalid response' });
  });

  it('passes the abort signal on', async () => {
    const ctl = new AbortController();
    await fetchOlder('http://h', 'r', 5, { signal: ctl.signal });
    expect(fetchMock.mock.calls[0][1]?.signal).toBe(ctl.signal);
  });
});

describe('mergeOlder / withOlder / oldestSeq', () => {
  it('merges pages by seq, each once', () => {
    const a = mergeOlder(range(5, 9), range(1, 6));
    expect(a.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('puts older messages before the live ones, skipping any seq or id the live log holds', () => {
    const live = mergeMessages(emptyLog(), range(51, 60)).items;
    const older = [...range(40, 52), msg(45, { messageId: 'dup' })];
    const items = withOlder(mergeOlder([], older), live);
    const seqs = items.map((i) => (i.kind === 'message' ? i.msg.seq : -1));
    expect(seqs).toEqual(Array.from({ length: 21 }, (_, i) => 40 + i));
    expect(new Set(items.map((i) => i.key)).size).toBe(items.length);
    expect(items[0].key).toBe('0:40:m40');
    // nothing older: the live items as they are
    expect(withOlder([], live)).toBe(live);
  });

  it('pages back from the oldest message held', () => {
    const live = mergeMessages(emptyLog(), range(51, 60)).items;
    expect(oldestSeq([], live)).toBe(51);
    expect(oldestSeq(range(1, 50), live)).toBe(1);
    expect(oldestSeq([], [])).toBeNull();
    expect(oldestSeq(range(3, 4), [])).toBe(3);
  });
});
