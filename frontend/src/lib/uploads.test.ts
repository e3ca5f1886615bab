import { setToken } from './token';
import {
  putContent,
  requestUpload,
  resolveUploadUrl,
  uploadErrorOf,
  uploadErrorText,
  UploadError,
  uploadFile,
  uploadName,
  type UploadTicket,
} from './uploads';
import { FakeXhr } from '../test/fakeXhr';

const TICKET = {
  fileId: '0d6c3e52-7a8e-4d43-9a51-0f2c7f1c9a11',
  method: 'PUT',
  url: '/api/files/0d6c3e52-7a8e-4d43-9a51-0f2c7f1c9a11/content?expires=1796317200&sig=abc',
  headers: { 'Content-Type': 'image/png' },
  expiresAt: '2026-12-03T17:00:00.000Z',
};

const answer = (status: number, body?: unknown, headers: Record<string, string> = {}) =>
  vi.fn((_url: RequestInfo | URL, _init?: RequestInit) =>
    Promise.resolve(new Response(body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body), { status, headers })),
  );
type Mock = ReturnType<typeof answer>;
const asFetch = (f: Mock) => f as unknown as typeof fetch;
const file = (name = 'cat.png', type = 'image/png', bytes = 67) => new File([new Uint8Array(bytes)], name, { type });

const createXhr = () => new FakeXhr();

afterEach(() => setToken(null));

describe('requestUpload', () => {
  it('posts name, contentType and size as JSON with the Bearer token, and resolves the URL against the API base', async () => {
    setToken('a.b.c');
    const f = answer(201, TICKET);
    const t = await requestUpload('http://h:8080', 'team room', file(), { fetchImpl: asFetch(f) });
    const [url, init] = f.mock.calls[0];
    expect(url).toBe('http://h:8080/api/rooms/team%20room/uploads');
    expect(init?.method).toBe('POST');
    expect(init?.headers).toEqual({ Accept: 'application/json', Authorization: 'Bearer a.b.c', 'Content-Type': 'application/json' });
    expect(JSON.parse(String(init?.body))).toEqual({ name: 'cat.png', contentType: 'image/png', size: 67 });
    expect(t).toEqual({ ...TICKET, url: `http://h:8080${TICKET.url}` });
  });

  it('sends no Authorization without a token, and a generic type for a file the browser could not type', async () => {
    const f = answer(201, { ...TICKET, url: 'https://bucket.s3.amazonaws.com/k?X-Amz-Signature=1', method: 'put' });
    const t = await requestUpload('', 'r', file('notes', ''), { fetchImpl: asFetch(f) });
    const init = f.mock.calls[0][1];
    expect((init?.headers as Record<string, string>).Authorization).toBeUndefined();
    expect(JSON.parse(String(init?.body)).contentType).toBe('application/octet-stream');
    // absolute (S3): as it is
    expect(t.url).toBe('https://bucket.s3.amazonaws.com/k?X-Amz-Signature=1');
    expect(t.method).toBe('PUT');
  });

  it.each([
    [413, { error: 'file_too_large', message: 'at most 10485760 bytes', maxBytes: 10485760 }, {}, 'file_too_large', 'cat.png: too large (max 10 MiB)'],
    [413, { error: 'file_too_large', message: 'files are at most 10485760 bytes' }, {}, 'file_too_large', 'cat.png: too large: files are at most 10485760 bytes'],
    [413, { error: 'file_too_large', message: 'the file is too large' }, {}, 'file_too_large', 'cat.png: too large: the file is too large'],
    [400, { error: 'invalid_name', message: 'name must be 1 to 255 characters' }, {}, 'invalid_name', 'cat.png: the server does not take this file name (1 to 255 characters, no control characters or slashes)'],
    [400, { error: 'invalid_size', message: 'size must be at least 1 byte' }, {}, 'invalid_size', 'cat.png: an empty file cannot be shared'],
    [415, { error: 'unsupported_type', message: 'no' }, {}, 'unsupported_type', 'cat.png: this type of file is not accepted'],
    [429, { error: 'upload_quota_exceeded', message: 'slow down' }, { 'Retry-After': '30' }, 'upload_quota_exceeded', 'cat.png: upload quota reached; try again in 30 s'],
    [429, { error: 'upload_quota_exceeded', message: 'slow down' }, { 'Retry-After': '600' }, 'upload_quota_exceeded', 'cat.png: upload quota reached; try again in 10 min'],
    [400, { error: 'invalid_body', message: 'size must be an integer' }, {}, 'invalid_body', 'cat.png: the server refused the upload: size must be an integer'],
    [401, { error: 'unauthorized', message: 'no token' }, {}, 'unauthorized', 'cat.png: sign in first: the token is missing or expired'],
    [403, { error: 'forbidden', message: 'not a member' }, {}, 'forbidden', 'cat.png: you may not share files in this room'],
    [404, { error: 'room_not_found', message: 'no room' }, {}, 'room_not_found', 'cat.png: the room does not exist (any more)'],
    [404, { error: 'files_disabled', message: 'off' }, {}, 'files_disabled', 'cat.png: this server does not take files'],
    [500, 'oops', {}, 'http_500', 'cat.png: the upload failed (http_500)'],
    [403, '', {}, 'http_403', 'cat.png: you may not share files in this room'],
  ])('answer %i %j is a typed error', async (status, body, headers, code, text) => {
    const f = answer(status, body, headers);
    const e = await requestUpload('http://h', 'r', file(), { fetchImpl: asFetch(f) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UploadError);
    expect((e as UploadError).code).toBe(code);
    expect((e as UploadError).status).toBe(status);
    expect(uploadErrorText('cat.png', e)).toBe(text);
  });

  it('a 429 says when to try again (seconds or an HTTP date)', () => {
    expect(uploadErrorOf(429, { error: 'upload_quota_exceeded' }, '12').retryAfterS).toBe(12);
    const soon = new Date(Date.now() + 90_000).toUTCString();
    expect(uploadErrorOf(429, { error: 'upload_quota_exceeded' }, soon).retryAfterS).toBeGreaterThanOrEqual(88);
    expect(uploadErrorOf(429, { error: 'upload_quota_exceeded' }, null).retryAfterS).toBeNull();
    expect(uploadErrorText('a', uploadErrorOf(429, { error: 'upload_quota_exceeded' }))).toBe('a: upload quota reached; try again later');
    // only a 429 (or 503) waits
    expect(uploadErrorOf(413, { error: 'file_too_large' }, '5').retryAfterS).toBeNull();
  });

  it('no answer, a timeout, a cancel, or an answer without fileId/url are errors of their own', async () => {
    const down = vi.fn(() => Promise.reject(new TypeError('failed to fetch')));
    expect(await requestUpload('http://h', 'r', file(), { fetchImpl: down as unknown as typeof fetch }).catch((e: UploadError) => e.code)).toBe('network');
    const ctl = new AbortController();
    ctl.abort();
    const hang = vi.fn(
      (_u: unknown, init?: RequestInit) =>
        new Promise<Response>((_, reject) => {
          if (init?.signal?.aborted) reject(new Error('aborted'));
          init?.signal?.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    );
    expect(await requestUpload('http://h', 'r', file(), { fetchImpl: hang as unknown as typeof fetch, signal: ctl.signal }).catch((e: UploadError) => e.code)).toBe('aborted');
    expect(await requestUpload('http://h', 'r', file(), { fetchImpl: hang as unknown as typeof fetch, timeoutMs: 5 }).catch((e: UploadError) => e.code)).toBe('timeout');
    expect(await requestUpload('http://h', 'r', file(), { fetchImpl: asFetch(answer(201, { url: '/x' })) }).catch((e: UploadError) => e.code)).toBe('invalid_response');
  });
});

describe('resolveUploadUrl and uploadName', () => {
  it('a path goes to the API base; an absolute URL stays; same origin uses the page', () => {
    expect(resolveUploadUrl('http://h:1/base', '/api/files/f/content?sig=1')).toBe('http://h:1/base/api/files/f/content?sig=1');
    expect(resolveUploadUrl('', '/api/files/f/content', 'http://page:9/#/rooms')).toBe('http://page:9/api/files/f/content');
    expect(resolveUploadUrl('http://h', 'https://s3.example/b/k?sig=2')).toBe('https://s3.example/b/k?sig=2');
    expect(resolveUploadUrl('https://h', '//cdn.example/k')).toBe('https://cdn.example/k');
    expect(resolveUploadUrl('http://h/base', 'files/f')).toBe('http://h/base/files/f');
  });

  it('names are 1 to 255 characters, the extension kept when cut', () => {
    expect(uploadName('  cat.png ')).toBe('cat.png');
    expect(uploadName('')).toBe('file');
    expect(uploadName('a/b\\c\u0007.txt')).toBe('a_b_c_.txt');
    const long = `${'é'.repeat(300)}.tar.gz`;
    const cut = uploadName(long);
    expect(Array.from(cut)).toHaveLength(255);
    expect(cut.endsWith('.gz')).toBe(true);
  });
});

describe('putContent', () => {
  const ticket: UploadTicket = { ...TICKET, url: `http://h${TICKET.url}`, headers: { 'Content-Type': 'image/png', 'x-amz-meta-room': 'r' } };

  it('puts the bytes with the ticket\'s method and every header (no token), reporting progress', async () => {
    setToken('a.b.c');
    const body = file();
    const progress: [number, number][] = [];
    const p = putContent(ticket, body, { createXhr, onProgress: (l, t) => progress.push([l, t]) });
    const x = FakeXhr.last!;
    expect([x.method, x.url]).toEqual(['PUT', ticket.url]);
    expect(x.headers).toEqual({ 'Content-Type': 'image/png', 'x-amz-meta-room': 'r' });
    expect(x.body).toBe(body);
    x.progress(30, 67);
    x.progress(67, 67);
    x.answer(201, { fileId: TICKET.fileId, size: 67 });
    expect(await p).toEqual({ fileId: TICKET.fileId, size: 67 });
    expect(progress).toEqual([
      [30, 67],
      [67, 67],
      [67, 67],
    ]);
  });

  it('an empty 200 (S3) is a success with the ticket\'s id', async () => {
    const p = putContent(ticket, file(), { createXhr });
    FakeXhr.last!.answer(200, '');
    expect(await p).toEqual({ fileId: TICKET.fileId, size: 67 });
  });

  it.each([
    [413, { error: 'file_too_large', message: 'more bytes than declared' }, 'file_too_large'],
    [403, { error: 'url_expired', message: 'expired' }, 'url_expired'],
    [403, { error: 'bad_signature', message: 'bad' }, 'bad_signature'],
    [409, { error: 'already_uploaded', message: 'done' }, 'already_uploaded'],
    [403, '<Error><Code>AccessDenied</Code></Error>', 'http_403'],
  ])('answer %i %j is a typed error', async (status, body, code) => {
    const p = putContent(ticket, file(), { createXhr });
    FakeXhr.last!.answer(status, body);
    const e = await p.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UploadError);
    expect((e as UploadError).code).toBe(code);
    expect((e as UploadError).status).toBe(status);
  });

  it('texts for the errors of the bytes', () => {
    expect(uploadErrorText('a.txt', new UploadError('url_expired', 'x', 403))).toBe('a.txt: the upload link expired; try again');
    expect(uploadErrorText('a.txt', new UploadError('bad_signature', 'x', 403))).toBe('a.txt: the server refused the upload link');
    expect(uploadErrorText('a.txt', new UploadError('already_uploaded', 'x', 409))).toBe('a.txt: already uploaded');
    expect(uploadErrorText('a.txt', new Error('?'))).toBe('a.txt: the upload failed');
  });

  it('a network error, a timeout, and a cancel through the signal', async () => {
    const p1 = putContent(ticket, file(), { createXhr });
    FakeXhr.last!.onerror?.();
    expect(await p1.catch((e: UploadError) => e.code)).toBe('network');
    const p2 = putContent(ticket, file(), { createXhr, timeoutMs: 10 });
    expect(FakeXhr.last!.timeout).toBe(10);
    FakeXhr.last!.ontimeout?.();
    expect(await p2.catch((e: UploadError) => e.code)).toBe('timeout');
    const ctl = new AbortController();
    const p3 = putContent(ticket, file(), { createXhr, signal: ctl.signal });
    const x = FakeXhr.last!;
    ctl.abort();
    expect(x.aborted).toBe(true);
    expect(await p3.catch((e: UploadError) => e.code)).toBe('aborted');
    const p4 = putContent(ticket, file(), { createXhr, signal: ctl.signal });
    expect(await p4.catch((e: UploadError) => e.code)).toBe('aborted');
  });
});

describe('uploadFile', () => {
  it('asks for a ticket, then puts the bytes to it', async () => {
    FakeXhr.last = null;
    const f = answer(201, TICKET);
    const p = uploadFile('http://h', 'r', file('notes.txt', 'text/plain', 27), { fetchImpl: asFetch(f), createXhr });
    await vi.waitFor(() => expect(FakeXhr.last?.url).toBe(`http://h${TICKET.url}`));
    FakeXhr.last!.answer(201, { fileId: TICKET.fileId, size: 27 });
    expect(await p).toEqual({ fileId: TICKET.fileId, size: 27 });
  });

  it('a refused ticket puts nothing', async () => {
    FakeXhr.last = null;
    const f = answer(415, { error: 'unsupported_type', message: 'no' });
    const e = await uploadFile('http://h', 'r', file('evil.exe', 'application/x-msdownload'), { fetchImpl: asFetch(f), createXhr }).catch((x: unknown) => x);
    expect((e as UploadError).code).toBe('unsupported_type');
    expect(FakeXhr.last).toBeNull();
  });
});
