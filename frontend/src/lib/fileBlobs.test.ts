import { BlobCache, fetchFileBlob, FileFetchError, fileUrl } from './fileBlobs';
import { setToken } from './token';

afterEach(() => setToken(null));

describe('fetchFileBlob', () => {
  it('GETs /api/files/{id} with the token (following the redirect) and answers the bytes', async () => {
    setToken('a.b.c');
    const f = vi.fn((_u: RequestInfo | URL, _i?: RequestInit) => Promise.resolve(new Response(new Uint8Array([1, 2, 3]), { status: 200, headers: { 'Content-Type': 'image/png' } })));
    const blob = await fetchFileBlob('http://h', 'f/1', { fetchImpl: f as unknown as typeof fetch });
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
    const [url, init] = f.mock.calls[0];
    expect(url).toBe('http://h/api/files/f%2F1');
    expect(init?.headers).toEqual({ Authorization: 'Bearer a.b.c' });
    expect(init?.redirect).toBe('follow');
    expect(fileUrl('', 'x')).toBe('/api/files/x');
  });

  it('a refusal is a FileFetchError with the server\'s code, or http_<status>; no answer is network', async () => {
    const refuse = vi.fn(() => Promise.resolve(new Response(JSON.stringify({ error: 'file_not_found', message: 'gone' }), { status: 404 })));
    const e = await fetchFileBlob('http://h', 'f', { fetchImpl: refuse as unknown as typeof fetch }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FileFetchError);
    expect(e).toMatchObject({ code: 'file_not_found', status: 404, message: 'gone' });
    const s3 = vi.fn(() => Promise.resolve(new Response('<Error/>', { status: 403 })));
    expect(await fetchFileBlob('http://h', 'f', { fetchImpl: s3 as unknown as typeof fetch }).catch((x: FileFetchError) => x.code)).toBe('http_403');
    const down = vi.fn(() => Promise.reject(new TypeError('failed')));
    expect(await fetchFileBlob('http://h', 'f', { fetchImpl: down as unknown as typeof fetch }).catch((x: FileFetchError) => x.code)).toBe('network');
  });
});

describe('BlobCache', () => {
  const setup = (graceMs = 1000) => {
    const load = vi.fn((k: string) => Promise.resolve(new Blob([k])));
    let n = 0;
    const createUrl = vi.fn(() => `blob:${++n}`);
    const revokeUrl = vi.fn();
    return { cache: new BlobCache({ load, createUrl, revokeUrl, graceMs }), load, createUrl, revokeUrl };
  };

  it('fetches a file once for every view of it, and revokes its URL a while after the last one goes', async () => {
    vi.useFakeTimers();
    try {
      const { cache, load, revokeUrl } = setup();
      const [a, b] = await Promise.all([cache.acquire('f1'), cache.acquire('f1')]);
      expect(a).toBe('blob:1');
      expect(b).toBe('blob:1');
      expect(load).toHaveBeenCalledTimes(1);
      cache.release('f1');
      vi.advanceTimersByTime(5000);
      expect(revokeUrl).not.toHaveBeenCalled(); // one view still has it
      cache.release('f1');
      vi.advanceTimersByTime(999);
      // back within the grace period: the same URL, not fetched again
      expect(await cache.acquire('f1')).toBe('blob:1');
      expect(load).toHaveBeenCalledTimes(1);
      cache.release('f1');
      await vi.advanceTimersByTimeAsync(1000);
      expect(revokeUrl).toHaveBeenCalledWith('blob:1');
      expect(cache.size).toBe(0);
      // and a later view fetches again
      expect(await cache.acquire('f1')).toBe('blob:2');
      expect(load).toHaveBeenCalledTimes(2);
      cache.release('f1');
      cache.release('f1'); // one too many: nothing happens
    } finally {
      vi.useRealTimers();
    }
  });

  it('graceMs 0 revokes at once; a failed load is not kept, so the next acquire tries again', async () => {
    const { cache, revokeUrl } = setup(0);
    await cache.acquire('x');
    cache.release('x');
    await Promise.resolve();
    expect(revokeUrl).toHaveBeenCalledWith('blob:1');
    const load = vi.fn().mockRejectedValueOnce(new Error('404')).mockResolvedValue(new Blob(['ok']));
    const c2 = new BlobCache({ load, createUrl: () => 'blob:ok', revokeUrl: () => {}, graceMs: 0 });
    await expect(c2.acquire('y')).rejects.toThrow('404');
    expect(c2.size).toBe(0);
    expect(await c2.acquire('y')).toBe('blob:ok');
  });
});
