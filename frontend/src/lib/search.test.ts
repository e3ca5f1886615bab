import { msg } from '../test/fakeSocket';
import { fold, highlight, queryTerms, searchRoom, SearchError, type Segment } from './search';

function json(body: unknown, status = 200) {
  return Promise.resolve(new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } }));
}
const fetchMock = vi.fn((_url: string, _init?: RequestInit) => json({ roomId: 'r', query: 'x', messages: [], nextBefore: null }));

beforeEach(() => {
  fetchMock.mockClear();
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

describe('searchRoom', () => {
  it('GETs the room\'s search with q, before and limit encoded, and answers the page newest first', async () => {
    fetchMock.mockImplementationOnce(() =>
      json({ roomId: 'a b/c', query: 'café & co', messages: [msg(7, { messageId: 'm7' }), msg(42, { messageId: 'm42' }), msg(7, { messageId: 'dup' }), { junk: true }], nextBefore: 7 }),
    );
    const page = await searchRoom('http://h', 'a b/c', 'café & co?', { before: 100, limit: 10 });
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe('http://h/api/rooms/a%20b%2Fc/search?q=caf%C3%A9%20%26%20co%3F&before=100&limit=10');
    expect(init?.method).toBe('GET');
    expect(init?.headers).toEqual({ Accept: 'application/json' });
    const u = new URL(url);
    expect(u.searchParams.get('q')).toBe('café & co?');
    expect(page.messages.map((m) => [m.seq, m.messageId])).toEqual([
      [42, 'm42'],
      [7, 'm7'],
    ]);
    expect(page.nextBefore).toBe(7);
  });

  it('asks for 20 by default, at most 50, and without a before for the first page', async () => {
    await searchRoom('', 'r', 'deploy');
    expect(fetchMock.mock.calls[0][0]).toBe('/api/rooms/r/search?q=deploy&limit=20');
    await searchRoom('', 'r', 'deploy', { limit: 1000, before: null });
    expect(fetchMock.mock.calls[1][0]).toBe('/api/rooms/r/search?q=deploy&limit=50');
  });

  it('nextBefore null (or missing, or with no results) is the last page', async () => {
    expect(await searchRoom('http://h', 'r', 'x')).toEqual({ messages: [], nextBefore: null });
    fetchMock.mockImplementationOnce(() => json({ messages: [msg(3)] }));
    expect((await searchRoom('http://h', 'r', 'x')).nextBefore).toBeNull();
  });

  it('sends the access token as Bearer when there is one', async () => {
    window.sessionStorage.setItem('hubbub.token', 'a.b.c');
    try {
      await searchRoom('http://h', 'r', 'x');
      expect(fetchMock.mock.calls[0][1]?.headers).toEqual({ Accept: 'application/json', Authorization: 'Bearer a.b.c' });
    } finally {
      window.sessionStorage.removeItem('hubbub.token');
    }
  });

  it('refuses an empty, blank or too long query, or a bad before, without a request', async () => {
    await expect(searchRoom('http://h', 'r', '')).rejects.toMatchObject({ code: 'invalid_query', status: null });
    await expect(searchRoom('http://h', 'r', '   ')).rejects.toMatchObject({ code: 'invalid_query' });
    await expect(searchRoom('http://h', 'r', 'x'.repeat(201))).rejects.toBeInstanceOf(SearchError);
    await expect(searchRoom('http://h', 'r', 'x', { before: 0 })).rejects.toMatchObject({ code: 'invalid_before' });
    expect(fetchMock).not.toHaveBeenCalled();
    // 200 characters (not UTF-16 units) is still fine
    await searchRoom('http://h', 'r', '😀'.repeat(200));
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('fails with the server\'s code, status and message', async () => {
    fetchMock.mockImplementationOnce(() => json({ error: 'invalid_query', message: 'at most 8 words' }, 400));
    await expect(searchRoom('http://h', 'r', 'a b c d e f g h i')).rejects.toMatchObject({ name: 'SearchError', code: 'invalid_query', status: 400, message: 'at most 8 words' });
    fetchMock.mockImplementationOnce(() => json({ error: 'invalid_before' }, 400));
    await expect(searchRoom('http://h', 'r', 'x', { before: 5 })).rejects.toMatchObject({ code: 'invalid_before', status: 400, message: 'The server could not page these results.' });
    fetchMock.mockImplementationOnce(() => json({ error: 'forbidden', message: 'not a member' }, 403));
    await expect(searchRoom('http://h', 'r', 'x')).rejects.toMatchObject({ code: 'forbidden', status: 403 });
    fetchMock.mockImplementationOnce(() => json({ error: 'unauthorized' }, 401));
    await expect(searchRoom('http://h', 'r', 'x')).rejects.toMatchObject({ code: 'unauthorized', status: 401, message: expect.stringContaining('Sign in') });
    fetchMock.mockImplementationOnce(() => json({ error: 'room_not_found', message: 'no such room' }, 404));
    await expect(searchRoom('http://h', 'r', 'x')).rejects.toMatchObject({ code: 'room_not_found', status: 404 });
    fetchMock.mockImplementationOnce(() => json({ error: 'busy', message: 'search is busy' }, 503));
    await expect(searchRoom('http://h', 'r', 'x')).rejects.toMatchObject({ code: 'busy', status: 503, message: 'search is busy' });
    fetchMock.mockImplementationOnce(() => Promise.resolve(new Response('Service Unavailable', { status: 503 })));
    await expect(searchRoom('http://h', 'r', 'x')).rejects.toMatchObject({ code: 'http_503', status: 503, message: expect.stringContaining('busy') });
    fetchMock.mockImplementationOnce(() => Promise.reject(new TypeError('Failed to fetch')));
    await expect(searchRoom('http://h', 'r', 'x')).rejects.toMatchObject({ code: 'network', status: null });
    fetchMock.mockImplementationOnce(() => json({ nope: 1 }));
    await expect(searchRoom('http://h', 'r', 'x')).rejects.toMatchObject({ code: 'invalid_response', status: 200 });
  });

  it('passes the abort signal on, and an abort stays an abort', async () => {
    const ctl = new AbortController();
    await searchRoom('http://h', 'r', 'x', { signal: ctl.signal });
    expect(fetchMock.mock.calls[0][1]?.signal).toBe(ctl.signal);
    ctl.abort();
    const abortErr = new DOMException('aborted', 'AbortError');
    fetchMock.mockImplementationOnce(() => Promise.reject(abortErr));
    await expect(searchRoom('http://h', 'r', 'x', { signal: ctl.signal })).rejects.toBe(abortErr);
  });
});

const marked = (s: Segment[]) => s.filter((x) => x.match).map((x) => x.text);

describe('highlight', () => {
  it('keeps the text as it is, cut into parts', () => {
    const text = 'Deploy on Friday, deploy!';
    const s = highlight(text, 'deploy');
    expect(s.map((x) => x.text).join('')).toBe(text);
    expect(s).toEqual([
      { text: 'Deploy', match: true },
      { text: ' on Friday, ', match: false },
      { text: 'deploy', match: true },
      { text: '!', match: false },
    ]);
  });

  it('ignores accents and case, keeping the original characters', () => {
    expect(highlight('Un Café au lait', 'cafe')).toEqual([
      { text: 'Un ', match: false },
      { text: 'Café', match: true },
      { text: ' au lait', match: false },
    ]);
    expect(marked(highlight('un cafe', 'CAFÉ'))).toEqual(['cafe']);
    // decomposed accents (e + combining acute) too
    const nfd = 'cafe\u0301 noir';
    expect(marked(highlight(nfd, 'café'))).toEqual(['cafe\u0301']);
    expect(highlight(nfd, 'café').map((x) => x.text).join('')).toBe(nfd);
    expect(marked(highlight('Straße', 'strasse'))).toEqual(['Straße']);
  });

  it('the last word of the query matches as a prefix, the others whole words only', () => {
    expect(highlight('We are deploying now', 'depl')).toEqual([
      { text: 'We are ', match: false },
      { text: 'depl', match: true },
      { text: 'oying now', match: false },
    ]);
    // "deploy" (not last) marks whole words only; "fri" (last) any word starting with it
    expect(marked(highlight('deploy deployment on Friday and fried fries', 'deploy fri'))).toEqual(['deploy', 'Fri', 'fri', 'fri']);
    expect(marked(highlight('Crème brûlée, crème fraîche', 'creme bru'))).toEqual(['Crème', 'brû', 'crème']);
    // a prefix ending in an accented letter
    expect(marked(highlight('brûlée', 'brul'))).toEqual(['brûl']);
  });

  it('words are split on anything but letters and digits; CJK characters one by one', () => {
    expect(marked(highlight('zebra-zq1x, zq1x!', 'zq1x'))).toEqual(['zq1x', 'zq1x']);
    expect(highlight('東京タワーへ行く', '東京')).toEqual([
      { text: '東京', match: true },
      { text: 'タワーへ行く', match: false },
    ]);
    expect(marked(highlight('Привет, мир', 'ПРИВ'))).toEqual(['Прив']);
  });

  it('no words in the query: nothing marked; no text: no parts', () => {
    expect(highlight('hello', ' ,. ')).toEqual([{ text: 'hello', match: false }]);
    expect(highlight('', 'x')).toEqual([]);
    expect(highlight('a cat', 'dog')).toEqual([{ text: 'a cat', match: false }]);
  });

  it('folds and splits queries as the server does', () => {
    expect(queryTerms('Crème  BRÛ')).toEqual(['creme', 'bru']);
    expect(queryTerms('deploy-fri')).toEqual(['deploy', 'fri']);
    expect(fold('Naïve ÆON')).toBe('naive aeon');
  });
});
