import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { useHistory } from '../hooks/useHistory';
import { emptyLog, mergeMessages, type LogItem } from '../lib/messageLog';
import type { ChatMessage } from '../lib/types';
import { msg } from '../test/fakeSocket';
import { MessageList } from './MessageList';

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => msg(a + i, { roomId: 'r', messageId: `m${a + i}` }));
/** The server's history of room r: seq 1..120. */
const all = range(1, 120);

function json(body: unknown, status = 200) {
  return Promise.resolve(new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } }));
}
let fail = 0; // requests to fail before answering again
const fetchMock = vi.fn((url: string) => {
  const u = new URL(url);
  if (u.pathname !== '/api/rooms/r/messages') return Promise.resolve(new Response('{}', { status: 404 }));
  if (fail > 0) {
    fail--;
    return json({ error: 'internal', message: 'boom' }, 500);
  }
  const limit = Number(u.searchParams.get('limit'));
  const before = Number(u.searchParams.get('before'));
  const page = all.filter((m) => m.seq < before).slice(-limit);
  return json({ roomId: 'r', count: page.length, messages: page });
});
const befores = () => fetchMock.mock.calls.map(([u]) => new URL(u).searchParams.get('before'));

let seqsShown: number[] = [];
function Harness({ live, room = 'r' }: { live: LogItem[]; room?: string }) {
  const { items, history } = useHistory('http://h', room, live);
  seqsShown = items.map((i) => (i.kind === 'message' ? i.msg.seq : -1));
  return <MessageList items={items} selfId="me" history={history} />;
}
const liveOf = (msgs: ChatMessage[]) => mergeMessages(emptyLog(), msgs).items;

beforeEach(() => {
  vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockReturnValue(600);
  vi.spyOn(HTMLElement.prototype, 'clientWidth', 'get').mockReturnValue(800);
  fetchMock.mockClear();
  fail = 0;
  seqsShown = [];
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

const loadOlder = () => screen.getByTestId('load-older');

describe('MessageList rows', () => {
  it('shows a system message as an announcement, not grouped with the messages around it', () => {
    const sys = msg(2, { roomId: 'r', type: 'system', userId: 'system', username: 'System', content: 'Deploy at 5' });
    const items = liveOf([msg(1, { roomId: 'r' }), sys, msg(3, { roomId: 'r' })]);
    render(<MessageList items={items} selfId="alice" />);
    const rows = screen.getAllByTestId('message');
    expect(rows.map((r) => r.dataset.kind ?? 'chat')).toEqual(['chat', 'system', 'chat']);
    expect(rows[1].getAttribute('role')).toBe('note');
    expect(rows[1].textContent).toContain('Deploy at 5');
    expect(rows[1].dataset.own).toBeUndefined();
    // the message after an announcement starts a new group: it shows its author again
    expect(rows[2].classList.contains('msg-cont')).toBe(false);
  });
});

describe('MessageList with useHistory', () => {
  it('pages back from the oldest message shown until the beginning of the room, each seq once', async () => {
    render(<Harness live={liveOf(range(71, 120))} />);
    expect(screen.queryByTestId('history-start')).toBeNull();
    expect(seqsShown[0]).toBe(71);
    fireEvent.click(loadOlder());
    await waitFor(() => expect(seqsShown[0]).toBe(21));
    expect(befores()).toEqual(['71']);
    expect(seqsShown).toEqual(Array.from({ length: 100 }, (_, i) => 21 + i));
    fireEvent.click(loadOlder());
    // the oldest is seq 1: that is the start, no further request needed
    await waitFor(() => expect(screen.getByTestId('history-start').textContent).toBe('Beginning of the room'));
    expect(befores()).toEqual(['71', '21']);
    expect(screen.queryByTestId('load-older')).toBeNull();
    expect(seqsShown).toEqual(Array.from({ length: 120 }, (_, i) => 1 + i));
    // the rows rendered are consecutive seqs of that list
    const rows = screen.getAllByTestId('message').map((e) => Number(e.dataset.seq));
    expect(rows.length).toBeGreaterThan(0);
    rows.forEach((s, i) => expect(s).toBe(rows[0] + i));
  });

  it('an empty page ends it too', async () => {
    fetchMock.mockImplementationOnce(() => json({ roomId: 'r', count: 0, messages: [] }));
    render(<Harness live={liveOf(range(71, 80))} />);
    fireEvent.click(loadOlder());
    await screen.findByTestId('history-start');
    expect(seqsShown).toEqual(Array.from({ length: 10 }, (_, i) => 71 + i));
  });

  it('shows the start at once when seq 1 is already on screen, and nothing to load in an empty room', () => {
    const { unmount } = render(<Harness live={liveOf(range(1, 5))} />);
    expect(screen.getByTestId('history-start')).toBeTruthy();
    expect(screen.queryByTestId('load-older')).toBeNull();
    unmount();
    render(<Harness live={[]} />);
    expect(screen.queryByTestId('load-older')).toBeNull();
    expect(screen.queryByTestId('history-start')).toBeNull();
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('deduplicates against what the WebSocket delivers meanwhile (live wins, by seq)', async () => {
    const live = range(71, 120);
    const { rerender } = render(<Harness live={liveOf(live)} />);
    fireEvent.click(loadOlder());
    await waitFor(() => expect(seqsShown[0]).toBe(21));
    // a late gap fill and a new message on the socket
    const more = liveOf([...live, msg(121, { roomId: 'r', messageId: 'm121' })]);
    rerender(<Harness live={more} />);
    expect(seqsShown).toEqual(Array.from({ length: 101 }, (_, i) => 21 + i));
  });

  it('shows an error line when a page fails, and tries again on the next click', async () => {
    fail = 1;
    render(<Harness live={liveOf(range(71, 120))} />);
    fireEvent.click(loadOlder());
    const err = await screen.findByTestId('history-error');
    expect(err.textContent).toContain('500 internal');
    expect(err.getAttribute('role')).toBe('alert');
    expect(seqsShown[0]).toBe(71);
    fireEvent.click(loadOlder());
    await waitFor(() => expect(seqsShown[0]).toBe(21));
    expect(screen.queryByTestId('history-error')).toBeNull();
    expect(befores()).toEqual(['71', '71']);
  });

  it('one request at a time: clicks while a page is loading do nothing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fetchMock.mockImplementationOnce((url: string) => gate.then(() => json({ messages: all.filter((m) => m.seq < Number(new URL(url).searchParams.get('before'))).slice(-50) })));
    render(<Harness live={liveOf(range(71, 120))} />);
    fireEvent.click(loadOlder());
    expect((loadOlder() as HTMLButtonElement).disabled).toBe(true);
    expect(loadOlder().textContent).toBe('Loading older messages…');
    fireEvent.click(loadOlder());
    expect(fetchMock).toHaveBeenCalledTimes(1);
    await act(async () => release());
    await waitFor(() => expect(seqsShown[0]).toBe(21));
    expect((loadOlder() as HTMLButtonElement).disabled).toBe(false);
  });

  it('a room switched away from while its page loads can load again when it is back', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fetchMock.mockImplementationOnce(() => gate.then(() => json({ messages: range(21, 70) })));
    const liveR = liveOf(range(71, 120));
    const { rerender } = render(<Harness live={liveR} />);
    fireEvent.click(loadOlder());
    expect((loadOlder() as HTMLButtonElement).disabled).toBe(true);
    rerender(<Harness room="s" live={liveOf(range(71, 80).map((m) => ({ ...m, roomId: 's', messageId: `s${m.seq}` })))} />);
    await act(async () => release());
    rerender(<Harness live={liveR} />);
    expect(seqsShown[0]).toBe(71); // the dropped page is not shown
    expect((loadOlder() as HTMLButtonElement).disabled).toBe(false);
    fireEvent.click(loadOlder());
    await waitFor(() => expect(seqsShown[0]).toBe(21));
  });

  it('offers no paging across a restart of the room\'s numbering (two epochs in the log)', () => {
    const old = range(71, 80);
    const restarted = mergeMessages(mergeMessages(emptyLog(), old), [msg(1, { roomId: 'r', messageId: 'n1', timestamp: '2030-01-01T00:00:00.000Z' })]);
    expect(restarted.epoch).toBe(1);
    render(<Harness live={restarted.items} />);
    expect(screen.queryByTestId('load-older')).toBeNull();
    expect(screen.queryByTestId('history-start')).toBeNull();
  });

  it('another room starts over', async () => {
    const { rerender } = render(<Harness live={liveOf(range(71, 120))} />);
    fireEvent.click(loadOlder());
    await waitFor(() => expect(seqsShown[0]).toBe(21));
    rerender(<Harness room="s" live={liveOf(range(71, 80).map((m) => ({ ...m, roomId: 's', messageId: `s${m.seq}` })))} />);
    expect(seqsShown[0]).toBe(71);
    expect(seqsShown).toHaveLength(10);
  });
});

describe('MessageList attachments', () => {
  it('a message of files only shows them without an empty text line; one with words shows both', () => {
    const report = { fileId: 'f1', name: 'report.pdf', contentType: 'application/pdf', size: 12_345 };
    const items = liveOf([
      msg(1, { roomId: 'r', messageId: 'a1', content: '', attachments: [report] }),
      msg(2, { roomId: 'r', messageId: 'a2', content: 'and notes', attachments: [{ ...report, fileId: 'f2', name: 'notes.txt', contentType: 'text/plain', size: 27 }] }),
      msg(3, { roomId: 'r', messageId: 'a3', content: '' }),
    ]);
    render(<MessageList items={items} selfId="me" http="http://files" />);
    const rows = screen.getAllByTestId('message');
    expect(rows.map((r) => r.querySelector('.msg-content')?.textContent ?? null)).toEqual([null, 'and notes', '']);
    expect(rows.map((r) => [...r.querySelectorAll('[data-testid="file-chip"]')].map((c) => c.textContent))).toEqual([['report.pdf · 12 KB'], ['notes.txt · 27 B'], []]);
  });
});
