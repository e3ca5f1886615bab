import { fileLabel, formatLimit, formatSize, isImage, parseAttachments, withAttachments } from './attachments';
import { fetchOlder } from './history';
import { searchRoom } from './search';
import { parseFrame } from './types';
import { parseV2Frame } from './v2types';

const CAT = { fileId: '6f1c2a4e-0000-4000-8000-000000000001', name: 'cat.png', contentType: 'image/png', size: 67 };
const REPORT = { fileId: '6f1c2a4e-0000-4000-8000-000000000002', name: 'report.pdf', contentType: 'application/pdf', size: 12_345 };
const chatFrame = (extra: Record<string, unknown> = {}) => ({
  type: 'chat',
  roomId: 'r',
  messageId: 'm1',
  userId: 'alice',
  username: 'Alice',
  content: '',
  timestamp: '2026-12-03T17:00:00.000Z',
  seq: 1,
  ...extra,
});

describe('parseAttachments', () => {
  it('keeps well-formed entries, each file once, and is undefined when none are left', () => {
    expect(parseAttachments([CAT, REPORT])).toEqual([CAT, REPORT]);
    expect(parseAttachments(undefined)).toBeUndefined();
    expect(parseAttachments([])).toBeUndefined();
    expect(parseAttachments('x')).toBeUndefined();
    expect(parseAttachments([null, 3, { name: 'no id' }, { fileId: '' }])).toBeUndefined();
    expect(parseAttachments([CAT, { ...CAT, name: 'again' }])).toEqual([CAT]);
  });

  it('fills in what a server left out: the name from the id, a generic type, size 0', () => {
    expect(parseAttachments([{ fileId: 'f', size: -1 }])).toEqual([{ fileId: 'f', name: 'f', contentType: 'application/octet-stream', size: 0 }]);
    expect(parseAttachments([{ fileId: 'f', name: '', contentType: 5, size: 12.7 }])).toEqual([{ fileId: 'f', name: 'f', contentType: 'application/octet-stream', size: 12 }]);
  });
});

describe('attachments in chat frames, history pages and search results', () => {
  it('v1 and v2 chat frames carry them (absent when none or unusable)', () => {
    expect(parseFrame(chatFrame({ attachments: [CAT] }))).toMatchObject({ content: '', attachments: [CAT] });
    expect(parseV2Frame(chatFrame({ attachments: [CAT, { bad: true }] }))).toMatchObject({ attachments: [CAT] });
    expect(parseV2Frame(chatFrame())).not.toHaveProperty('attachments');
    expect(parseV2Frame(chatFrame({ attachments: [{ bad: true }] }))).not.toHaveProperty('attachments');
  });

  it('withAttachments checks a message of the HTTP API the same way', () => {
    const plain = { seq: 1, content: 'x' };
    expect(withAttachments(plain)).toBe(plain);
    expect(withAttachments({ seq: 1, attachments: [CAT, 'junk'] })).toEqual({ seq: 1, attachments: [CAT] });
    expect(withAttachments({ seq: 1, attachments: 'junk' })).toEqual({ seq: 1 });
  });

  it('history pages and search results keep them', async () => {
    const page = { messages: [chatFrame({ seq: 3, attachments: [REPORT, { fileId: 7 }] }), chatFrame({ seq: 4, messageId: 'm4' })], nextBefore: null };
    const f = vi.fn(() => Promise.resolve(new Response(JSON.stringify(page), { status: 200 })));
    const older = await fetchOlder('http://h', 'r', 10, { fetchImpl: f as unknown as typeof fetch });
    expect(older.messages[0].attachments).toEqual([REPORT]);
    expect(older.messages[1]).not.toHaveProperty('attachments');
    const found = await searchRoom('http://h', 'r', 'report', { fetchImpl: f as unknown as typeof fetch });
    expect(found.messages.find((m) => m.seq === 3)?.attachments).toEqual([REPORT]);
  });
});

describe('sizes and kinds', () => {
  it('formatSize: bytes, then KB / MB / GB of 1024, one decimal below 10', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(27)).toBe('27 B');
    expect(formatSize(1023)).toBe('1023 B');
    expect(formatSize(1024)).toBe('1 KB');
    expect(formatSize(1536)).toBe('1.5 KB');
    expect(formatSize(12_345)).toBe('12 KB');
    expect(formatSize(1024 * 1024 - 1)).toBe('1 MB');
    expect(formatSize(3.4 * 1024 * 1024)).toBe('3.4 MB');
    expect(formatSize(10 * 1024 ** 3)).toBe('10 GB');
    expect(formatSize(-1)).toBe('?');
    expect(formatSize(NaN)).toBe('?');
  });

  it('formatLimit names whole binary units', () => {
    expect(formatLimit(10 * 1024 * 1024)).toBe('10 MiB');
    expect(formatLimit(512 * 1024)).toBe('512 KiB');
    expect(formatLimit(2 * 1024 ** 3)).toBe('2 GiB');
    expect(formatLimit(10_000_000)).toBe('9.5 MB');
  });

  it('fileLabel and isImage', () => {
    expect(fileLabel(REPORT)).toBe('report.pdf · 12 KB');
    expect(isImage('image/png')).toBe(true);
    expect(isImage('IMAGE/webp')).toBe(true);
    expect(isImage('application/pdf')).toBe(false);
    expect(isImage('text/plain; charset=image/png')).toBe(false);
  });
});
