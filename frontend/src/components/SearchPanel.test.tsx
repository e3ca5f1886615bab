import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { useHistory } from '../hooks/useHistory';
import { useJump, useSearch } from '../hooks/useSearch';
import { emptyLog, mergeMessages, type LogItem } from '../lib/messageLog';
import type { ChatMessage } from '../lib/types';
import { msg } from '../test/fakeSocket';
import { MessageList } from './MessageList';
import { SearchPanel } from './SearchPanel';

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => msg(a + i, { roomId: 'r', messageId: `m${a + i}`, content: `message ${a + i}` }));
/** Room r on the server: seq 1..120; seq 10 says "Crème brûlée", 90 and 110 "deploying". */
const all = range(1, 120).map((m) =>
  m.seq === 10 ? { ...m, content: 'Crème brûlée tonight' } : m.seq === 90 || m.seq === 110 ? { ...m, content: `Deploying build ${m.seq}`, username: 'Bob', userId: 'bob' } : m,
);
const norm = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

function json(body: unknown, status = 200) {
  return Promise.resolve(new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } }));
}
let searchFails: { status: number; body: unknown } | null = null;
function serve(url: string): Promise<Response> {
  const u = new URL(url);
  if (u.pathname === '/api/rooms/r/messages') {
    const limit = Number(u.searchParams.get('limit'));
    const before = Number(u.searchParams.get('before'));
    const page = all.filter((m) => m.seq < before).slice(-limit);
    return json({ roomId: 'r', count: page.length, messages: page });
  }
  if (u.pathname === '/api/rooms/r/search') {
    if (searchFails) return json(searchFails.body, searchFails.status);
    const q = u.searchParams.get('q') ?? '';
    const limit = Number(u.searchParams.get('limit'));
    const before = u.searchParams.has('before') ? Number(u.searchParams.get('before')) : Infinity;
    const words = norm(q).split(/\s+/).filter(Boolean);
    // a rough stand-in for the index: every word a word of the message, the last as a prefix
    const hits = all
      .filter((m) => m.seq < before)
      .filter((m) => {
        const ws = norm(m.content).split(/[^\p{L}\p{N}]+/u);
        return words.every((w, i) => (i === words.length - 1 ? ws.some((x) => x.startsWith(w)) : ws.includes(w)));
      })
      .reverse();
    const page = hits.slice(0, limit);
    return json({ roomId: 'r', query: q, messages: page, nextBefore: hits.length > limit ? page[page.length - 1].seq : null });
  }
  return Promise.resolve(new Response('{}', { status: 404 }));
}
const fetchMock = vi.fn(serve);
const calls = (path: string) => fetchMock.mock.calls.map(([u]) => new URL(u)).filter((u) => u.pathname === path);

function Harness({ live }: { live: LogItem[] }) {
  const { items, history } = useHistory('http://h', 'r', live);
  const search = useSearch('http://h', 'r', 1);
  const jumps = useJump('r');
  return (
    <>
      <SearchPanel search={search} roomId="r" onPick={jumps.pick} jump={jumps.status} />
      <MessageList items={items} selfId="me" history={history} jumpTo={jumps.target} onJump={jumps.report} />
    </>
  );
}
const liveOf = (msgs: ChatMessage[]) => mergeMessages(emptyLog(), msgs).items;
const live = () => liveOf(all.slice(70)); // the backlog: 71..120

beforeEach(() => {
  vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockReturnValue(600);
  vi.spyOn(HTMLElement.prototype, 'clientWidth', 'get').mockReturnValue(800);
  fetchMock.mockClear();
  searchFails = null;
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

const searchFor = (q: string) => {
  fireEvent.change(screen.getByTestId('search-input'), { target: { value: q } });
  fireEvent.submit(screen.getByTestId('search-input').closest('form')!);
};
const results = () => screen.queryAllByTestId('search-result');

describe('SearchPanel', () => {
  it('lists the matches newest first with the matched parts marked, and pages on with "More results"', async () => {
    render(<Harness live={live()} />);
    expect(screen.queryByTestId('search-results')).toBeNull();
    expect((screen.getByTestId('search-submit') as HTMLButtonElement).disabled).toBe(true);
    searchFor('depl');
    await waitFor(() => expect(results()).toHaveLength(1));
    const first = results()[0];
    expect(first.dataset.seq).toBe('110');
    expect(within(first).getByText('Bob')).toBeTruthy();
    expect([...first.querySelectorAll('mark')].map((m) => m.textContent)).toEqual(['Depl']);
    expect(first.querySelector('.search-result-content')?.textContent).toBe('Deploying build 110');
    const u = calls('/api/rooms/r/search')[0];
    expect([u.searchParams.get('q'), u.searchParams.get('before'), u.searchParams.get('limit')]).toEqual(['depl', null, '1']);
    // the next page, before the last result
    fireEvent.click(screen.getByTestId('search-more'));
    await waitFor(() => expect(results().map((r) => r.dataset.seq)).toEqual(['110', '90']));
    expect(calls('/api/rooms/r/search')[1].searchParams.get('before')).toBe('110');
    expect(screen.queryByTestId('search-more')).toBeNull();
    // closing
    fireEvent.click(screen.getByTestId('search-close'));
    expect(screen.queryByTestId('search-results')).toBeNull();
  });

  it('says when nothing matches, and shows the server\'s refusal', async () => {
    render(<Harness live={live()} />);
    searchFor('zebra');
    expect((await screen.findByTestId('search-empty')).textContent).toContain('zebra');
    expect(results()).toHaveLength(0);
    searchFails = { status: 400, body: { error: 'invalid_query', message: 'A query has at most 8 words.' } };
    searchFor('a b c d e f g h i');
    const err = await screen.findByTestId('search-error');
    expect(err.textContent).toBe('A query has at most 8 words.');
    expect(err.dataset.code).toBe('invalid_query');
    expect(screen.queryByTestId('search-empty')).toBeNull();
    searchFails = { status: 503, body: { error: 'busy', message: 'search is busy' } };
    searchFor('x');
    await waitFor(() => expect(screen.getByTestId('search-error').dataset.code).toBe('busy'));
  });

  it('Escape closes the results', async () => {
    render(<Harness live={live()} />);
    searchFor('deploying');
    await waitFor(() => expect(results()).toHaveLength(1));
    fireEvent.keyDown(screen.getByTestId('search-input'), { key: 'Escape' });
    expect(screen.queryByTestId('search-results')).toBeNull();
  });
});

describe('jumping to a result', () => {
  it('a message in the list: scrolled to and flashed, nothing fetched', async () => {
    render(<Harness live={live()} />);
    searchFor('deploying');
    await waitFor(() => expect(results()).toHaveLength(1));
    fireEvent.click(results()[0]);
    await waitFor(() => expect(document.querySelector('[data-testid="message"][data-seq="110"]')?.getAttribute('data-flash')).toBe('true'));
    expect(calls('/api/rooms/r/messages')).toHaveLength(0);
    expect(document.querySelectorAll('[data-flash="true"]')).toHaveLength(1);
    expect(screen.queryByTestId('search-jump')).toBeNull();
  });

  it('an older message: the history is paged back until it is loaded, then it is shown and flashed', async () => {
    render(<Harness live={live()} />);
    searchFor('creme bru');
    await waitFor(() => expect(results()).toHaveLength(1));
    const r = results()[0];
    expect(r.dataset.seq).toBe('10');
    expect([...r.querySelectorAll('mark')].map((m) => m.textContent)).toEqual(['Crème', 'brû']);
    fireEvent.click(r);
    await waitFor(() => expect(screen.getByTestId('search-results').dataset.jump).toBe('shown'));
    // the pages before 71 (21..70) and before 21 (1..20)
    expect(calls('/api/rooms/r/messages').map((u) => u.searchParams.get('before'))).toEqual(['71', '21']);
    expect(screen.getByTestId('history-start')).toBeTruthy();
    // (jsdom lays nothing out, so which rows the virtualizer renders after the scroll is
    // for the browser test; the flash is on seq 10 alone wherever it is rendered)
    const flashed = [...document.querySelectorAll('[data-flash="true"]')].map((e) => e.getAttribute('data-seq'));
    expect(flashed.every((s) => s === '10')).toBe(true);
  });

  it('a message no longer in the history says so', async () => {
    onTestFinished(() => void fetchMock.mockImplementation(serve));
    // the history has nothing before 71 any more
    fetchMock.mockImplementation((url: string) => (new URL(url).pathname === '/api/rooms/r/messages' ? json({ roomId: 'r', count: 0, messages: [], nextBefore: null }) : serve(url)));
    render(<Harness live={live()} />);
    searchFor('creme');
    await waitFor(() => expect(results()).toHaveLength(1));
    fireEvent.click(results()[0]);
    await waitFor(() => expect(screen.getByTestId('search-jump').dataset.status).toBe('missing'));
    expect(document.querySelector('[data-flash="true"]')).toBeNull();
  });

  it('a page that fails ends the jump with an error', async () => {
    onTestFinished(() => void fetchMock.mockImplementation(serve));
    fetchMock.mockImplementation((url: string) => (new URL(url).pathname === '/api/rooms/r/messages' ? json({ error: 'internal' }, 500) : serve(url)));
    render(<Harness live={live()} />);
    searchFor('creme');
    await waitFor(() => expect(results()).toHaveLength(1));
    fireEvent.click(results()[0]);
    await waitFor(() => expect(screen.getByTestId('search-jump').dataset.status).toBe('failed'));
    expect(calls('/api/rooms/r/messages')).toHaveLength(1);
  });
});
