import { apiHeaders } from './token';
import { ApiError } from './apiError';

/**
 * A shared file's bytes, for previews and downloads: `GET {http}/api/files/{fileId}` with
 * the tab's token (the server answers 302 to a short-lived URL, which fetch follows),
 * kept as an object URL per file. Object URLs are counted: `acquire` one, `release` it
 * when its view goes; the last release revokes it (after `graceMs`, so a row that the
 * virtualized list unmounts and mounts again while scrolling does not fetch again).
 */

/** A file's bytes that could not be fetched (see {@link ApiError}). */
export class FileFetchError extends ApiError {
  override name = 'FileFetchError';
}

export function fileUrl(http: string, fileId: string): string {
  return `${http}/api/files/${encodeURIComponent(fileId)}`;
}

/** The bytes of a shared file. */
export async function fetchFileBlob(http: string, fileId: string, o: { fetchImpl?: typeof fetch; signal?: AbortSignal } = {}): Promise<Blob> {
  let r: Response;
  try {
    const headers = apiHeaders();
    delete headers.Accept; // any type: the file's own
    r = await (o.fetchImpl ?? fetch)(fileUrl(http, fileId), { headers, redirect: 'follow', signal: o.signal });
  } catch (e) {
    if (o.signal?.aborted) throw e;
    throw new FileFetchError('network', 'The file cannot be fetched.');
  }
  if (!r.ok) {
    let code = `http_${r.status}`;
    let message = `The server answered ${r.status}.`;
    try {
      const b = (await r.json()) as { error?: unknown; message?: unknown };
      if (typeof b?.error === 'string' && b.error) code = b.error;
      if (typeof b?.message === 'string' && b.message) message = b.message;
    } catch {
      /* no JSON body (a storage service's own answer) */
    }
    throw new FileFetchError(code, message, r.status);
  }
  return r.blob();
}

interface Entry {
  refs: number;
  url: Promise<string>;
  timer: ReturnType<typeof setTimeout> | null;
}

export interface BlobCacheOptions {
  load: (key: string) => Promise<Blob>;
  createUrl?: (b: Blob) => string;
  revokeUrl?: (url: string) => void;
  /** How long an unused object URL is kept (ms). */
  graceMs?: number;
}

export class BlobCache {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly o: BlobCacheOptions) {}

  /** An object URL of `key`'s bytes (fetched once, shared); pair each with a `release`. */
  acquire(key: string): Promise<string> {
    let e = this.entries.get(key);
    if (!e) {
      const entry: Entry = { refs: 0, timer: null, url: Promise.resolve('') };
      entry.url = this.o.load(key).then(
        (blob) => (this.o.createUrl ?? URL.createObjectURL)(blob),
        (err: unknown) => {
          // not kept: the next acquire tries again
          if (this.entries.get(key) === entry) this.entries.delete(key);
          throw err;
        },
      );
      this.entries.set(key, entry);
      e = entry;
    }
    if (e.timer) {
      clearTimeout(e.timer);
      e.timer = null;
    }
    e.refs++;
    return e.url;
  }

  release(key: string): void {
    const e = this.entries.get(key);
    if (!e || e.refs === 0) return;
    e.refs--;
    if (e.refs > 0) return;
    const drop = () => {
      if (this.entries.get(key) !== e || e.refs > 0) return;
      this.entries.delete(key);
      e.url.then((u) => (this.o.revokeUrl ?? URL.revokeObjectURL)(u), () => {});
    };
    const grace = this.o.graceMs ?? 30_000;
    if (grace <= 0) drop();
    else e.timer = setTimeout(drop, grace);
  }

  /** Keys held (tests, diagnostics). */
  get size(): number {
    return this.entries.size;
  }
}

const caches = new Map<string, BlobCache>();

/** The page's cache of files of the server at `http`. */
export function fileCache(http: string): BlobCache {
  let c = caches.get(http);
  if (!c) {
    c = new BlobCache({ load: (fileId) => fetchFileBlob(http, fileId) });
    caches.set(http, c);
  }
  return c;
}
