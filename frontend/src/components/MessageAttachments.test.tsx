import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { setToken } from '../lib/token';
import { MessageAttachments } from './MessageAttachments';

const CAT = { fileId: 'f-cat', name: 'cat.png', contentType: 'image/png', size: 67 };
const REPORT = { fileId: 'f-report', name: 'report.pdf', contentType: 'application/pdf', size: 12_345 };

let n = 0;
let http = '';
const fetchMock = vi.fn((_url: string, _init?: RequestInit) => Promise.resolve(new Response(new Uint8Array([137, 80, 78, 71]), { status: 200 })));
const created: string[] = [];
const { createObjectURL, revokeObjectURL } = URL;
const revoked: string[] = [];

beforeEach(() => {
  // every test its own server: the page's cache is per server
  http = `http://h${++n}`;
  fetchMock.mockClear();
  created.length = 0;
  revoked.length = 0;
  vi.stubGlobal('fetch', fetchMock);
  URL.createObjectURL = vi.fn(() => {
    const u = `blob:${http}/${created.length + 1}`;
    created.push(u);
    return u;
  });
  URL.revokeObjectURL = vi.fn((u: string) => void revoked.push(u));
});
afterEach(() => {
  URL.createObjectURL = createObjectURL;
  URL.revokeObjectURL = revokeObjectURL;
  vi.unstubAllGlobals();
  setToken(null);
});

describe('MessageAttachments', () => {
  it('an image is fetched with the token and previewed from an object URL, once for two views', async () => {
    setToken('a.b.c');
    render(
      <>
        <MessageAttachments items={[CAT]} http={http} />
        <MessageAttachments items={[CAT]} http={http} />
      </>,
    );
    const imgs = await screen.findAllByTestId('attachment-image');
    expect(imgs.map((i) => [i.getAttribute('alt'), i.getAttribute('src')])).toEqual([
      ['cat.png', created[0]],
      ['cat.png', created[0]],
    ]);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(fetchMock.mock.calls[0][0]).toBe(`${http}/api/files/f-cat`);
    expect(fetchMock.mock.calls[0][1]?.headers).toEqual({ Authorization: 'Bearer a.b.c' });
  });

  it('the object URL is revoked a while after the last view unmounts', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const { unmount } = render(<MessageAttachments items={[CAT]} http={http} />);
      await screen.findByTestId('attachment-image');
      unmount();
      expect(revoked).toEqual([]);
      await vi.advanceTimersByTimeAsync(31_000);
      expect(revoked).toEqual([created[0]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('an image that cannot be fetched says so', async () => {
    fetchMock.mockImplementationOnce(() => Promise.resolve(new Response(JSON.stringify({ error: 'file_not_found', message: 'gone' }), { status: 404 })));
    render(<MessageAttachments items={[CAT]} http={http} />);
    const err = await screen.findByTestId('attachment-error');
    expect(err.dataset.code).toBe('file_not_found');
    expect(err.textContent).toContain('cat.png');
  });

  it('another file is a chip with its name and size, fetched only when clicked, then downloaded from an object URL', async () => {
    const clicks: { href: string | null; download: string | null }[] = [];
    const onClick = (e: MouseEvent) => {
      const a = (e.target as Element).closest('a');
      if (!a) return;
      clicks.push({ href: a.getAttribute('href'), download: a.getAttribute('download') });
      e.preventDefault(); // jsdom does not download
    };
    document.addEventListener('click', onClick);
    try {
      render(<MessageAttachments items={[REPORT]} http={http} />);
      const chip = screen.getByTestId('file-chip');
      expect(chip.textContent).toBe('report.pdf · 12 KB');
      expect(fetchMock).not.toHaveBeenCalled();
      fireEvent.click(chip);
      await waitFor(() => expect(chip.dataset.state).toBe('ready'));
      expect(fetchMock.mock.calls[0][0]).toBe(`${http}/api/files/f-report`);
      // the first click fetched; the link then clicked itself with the bytes
      await waitFor(() => expect(clicks).toHaveLength(2));
      expect(clicks[1]).toEqual({ href: created[0], download: 'report.pdf' });
      expect(chip.getAttribute('href')).toBe(created[0]);
    } finally {
      document.removeEventListener('click', onClick);
    }
  });

  it('a chip whose fetch failed tries again on the next click', async () => {
    fetchMock.mockImplementationOnce(() => Promise.reject(new TypeError('down')));
    const onClick = (e: MouseEvent) => e.preventDefault();
    document.addEventListener('click', onClick);
    try {
      render(<MessageAttachments items={[REPORT]} http={http} />);
      const chip = screen.getByTestId('file-chip');
      fireEvent.click(chip);
      await waitFor(() => expect(chip.dataset.state).toBe('error'));
      expect(screen.getByTestId('attachment-error').dataset.code).toBe('network');
      fireEvent.click(chip);
      await waitFor(() => expect(chip.dataset.state).toBe('ready'));
      expect(fetchMock).toHaveBeenCalledTimes(2);
    } finally {
      document.removeEventListener('click', onClick);
    }
  });
});
