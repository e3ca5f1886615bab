import { formatLimit } from './attachments';
import { apiHeaders } from './token';
import { ApiError } from './apiError';

/**
 * Uploading a file to share in a room, in two steps:
 *
 * 1. `POST {http}/api/rooms/{roomId}/uploads` with `{name, contentType, size}` (and the
 *    tab's token): 201 `{fileId, method, url, headers, expiresAt}`, a signed URL to put
 *    the bytes to (relative to the API, or absolute, e.g. S3's);
 * 2. the bytes, with that `method` and every one of those `headers` (no token: the URL
 *    is signed), by XMLHttpRequest for its upload progress: 201 `{fileId, size}`.
 *
 * The message that shares it names the `fileId` (V2Client.send). Every refusal is an
 * `UploadError` with the server's `error` code (`file_too_large`, `unsupported_type`,
 * `upload_quota_exceeded`, `files_disabled`, `url_expired`, …), `http_<status>` without
 * one, or `network` / `timeout` / `aborted` / `invalid_response`.
 */

export interface UploadTicket {
  fileId: string;
  method: string;
  /** Absolute: resolved against the API base when the server gave a path. */
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

export interface UploadedFile {
  fileId: string;
  size: number;
}

/** What is uploaded: a `File` (or anything with a name, a type and a size). */
export interface UploadSource {
  name: string;
  type: string;
  size: number;
}

/** The longest file name the server takes, in characters. */
export const FILE_NAME_MAX = 255;
const DEFAULT_TYPE = 'application/octet-stream';

/** An upload that failed (see {@link ApiError}), with what the server said to do next. */
export class UploadError extends ApiError {
  override name = 'UploadError';

  constructor(
    code: string,
    message: string,
    status: number | null = null,
    /** Seconds to wait before trying again (`Retry-After` of a 429). */
    readonly retryAfterS: number | null = null,
    /** The largest size the server takes (`maxBytes` of a 413). */
    readonly maxBytes: number | null = null,
  ) {
    super(code, message, status);
  }
}

const isStr = (v: unknown): v is string => typeof v === 'string';

// eslint-disable-next-line no-control-regex
const NAME_UNSAFE = /[\u0000-\u001f\u007f/\\]/g;

/**
 * A name the server takes: 1 to 255 characters, no control characters or slashes
 * (each made "_"), cut before the extension so that it stays.
 */
export function uploadName(raw: string): string {
  const name = raw.replace(NAME_UNSAFE, '_').trim();
  const chars = Array.from(name);
  if (chars.length === 0) return 'file';
  if (chars.length <= FILE_NAME_MAX) return chars.join('');
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? Array.from(name.slice(dot)) : [];
  const keep = ext.length > 0 && ext.length <= 16 ? ext : [];
  return chars.slice(0, FILE_NAME_MAX - keep.length).concat(keep).join('');
}

/** The type to declare: the browser's, or `application/octet-stream` when it has none. */
export function uploadType(type: string): string {
  const t = type.trim();
  return t === '' ? DEFAULT_TYPE : t;
}

/**
 * Where the bytes go: an absolute URL as it is; a path resolved against the API base
 * (`http`, "" for same origin), so `/api/files/…` goes to the same server as `/api/…`.
 */
export function resolveUploadUrl(http: string, url: string, pageHref: string = typeof window === 'undefined' ? 'http://localhost/' : window.location.href): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) return url;
  const base = http || new URL(pageHref).origin;
  if (url.startsWith('//')) return `${new URL(base).protocol}${url}`;
  if (url.startsWith('/')) return `${base}${url}`;
  return new URL(url, `${base}/`).toString();
}

function retryAfter(v: string | null): number | null {
  if (!v) return null;
  const n = Number(v.trim());
  if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : null;
}

/** The largest size a `file_too_large` answer names (its `maxBytes`). */
function maxBytesOf(b: Record<string, unknown>): number | null {
  const v = b.maxBytes;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null;
}

/** The error of a refused request, from its status, its JSON body (if any) and its `Retry-After`. */
export function uploadErrorOf(status: number, body: unknown, retryAfterHeader: string | null = null): UploadError {
  const b = (body && typeof body === 'object' && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
  const code = isStr(b.error) && b.error ? b.error : `http_${status}`;
  const message = isStr(b.message) && b.message ? b.message : `The server answered ${status}.`;
  return new UploadError(code, message, status, status === 429 || status === 503 ? retryAfter(retryAfterHeader) : null, code === 'file_too_large' ? maxBytesOf(b) : null);
}

function parseTicket(http: string, v: unknown): UploadTicket | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  if (!isStr(o.fileId) || o.fileId === '' || !isStr(o.url) || o.url === '') return null;
  const headers: Record<string, string> = {};
  if (o.headers && typeof o.headers === 'object' && !Array.isArray(o.headers)) {
    for (const [k, h] of Object.entries(o.headers as Record<string, unknown>)) if (isStr(h)) headers[k] = h;
  }
  return {
    fileId: o.fileId,
    method: isStr(o.method) && o.method ? o.method.toUpperCase() : 'PUT',
    url: resolveUploadUrl(http, o.url),
    headers,
    expiresAt: isStr(o.expiresAt) ? o.expiresAt : '',
  };
}

export interface RequestUploadOptions {
  fetchImpl?: typeof fetch;
  /** The token to send (default: the tab's). */
  token?: string | null;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Step 1: ask the server where to put `file`'s bytes. */
export async function requestUpload(http: string, roomId: string, file: UploadSource, o: RequestUploadOptions = {}): Promise<UploadTicket> {
  if (o.signal?.aborted) throw new UploadError('aborted', 'The upload was cancelled.');
  const headers = apiHeaders(o.token === undefined ? undefined : o.token);
  headers['Content-Type'] = 'application/json';
  const ctl = new AbortController();
  const onAbort = () => ctl.abort();
  o.signal?.addEventListener('abort', onAbort);
  const timer = setTimeout(() => ctl.abort(), o.timeoutMs ?? 15_000);
  let r: Response;
  try {
    r = await (o.fetchImpl ?? fetch)(`${http}/api/rooms/${encodeURIComponent(roomId)}/uploads`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: uploadName(file.name), contentType: uploadType(file.type), size: file.size }),
      signal: ctl.signal,
    });
  } catch {
    if (o.signal?.aborted) throw new UploadError('aborted', 'The upload was cancelled.');
    throw ctl.signal.aborted ? new UploadError('timeout', 'The server did not answer in time.') : new UploadError('network', 'The server cannot be reached.');
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
  }
  let json: unknown = null;
  try {
    json = await r.json();
  } catch {
    /* no JSON body */
  }
  if (!r.ok) throw uploadErrorOf(r.status, json, r.headers.get('Retry-After'));
  const ticket = parseTicket(http, json);
  if (!ticket) throw new UploadError('invalid_response', 'The server answered something unexpected.', r.status);
  return ticket;
}

/** The part of XMLHttpRequest that `putContent` uses (a fake in tests). */
export interface XhrLike {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: Blob | ArrayBuffer | string | null): void;
  abort(): void;
  readonly status: number;
  readonly responseText: string;
  getResponseHeader(name: string): string | null;
  timeout: number;
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  ontimeout: (() => void) | null;
  onabort: (() => void) | null;
}

export interface PutOptions {
  /** Bytes sent so far, of `total`. */
  onProgress?: (loaded: number, total: number) => void;
  signal?: AbortSignal;
  createXhr?: () => XhrLike;
  /** 0: none (a large file on a slow link takes what it takes). */
  timeoutMs?: number;
}

/** Step 2: put the bytes to the ticket's URL, with its method and headers; resolves with the server's answer. */
export function putContent(ticket: UploadTicket, body: Blob, o: PutOptions = {}): Promise<UploadedFile> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(new UploadError('aborted', 'The upload was cancelled.'));
      return;
    }
    const xhr: XhrLike = o.createXhr ? o.createXhr() : (new XMLHttpRequest() as unknown as XhrLike);
    const onAbort = () => xhr.abort();
    const done = () => o.signal?.removeEventListener('abort', onAbort);
    xhr.open(ticket.method, ticket.url);
    for (const [k, v] of Object.entries(ticket.headers)) xhr.setRequestHeader(k, v);
    xhr.timeout = o.timeoutMs ?? 0;
    xhr.upload.onprogress = (e) => {
      if (o.onProgress) o.onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    };
    xhr.onload = () => {
      done();
      let json: unknown = null;
      try {
        json = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        /* not JSON (S3 answers an empty 200) */
      }
      if (xhr.status < 200 || xhr.status >= 300) {
        reject(uploadErrorOf(xhr.status, json, xhr.getResponseHeader('Retry-After')));
        return;
      }
      const b = (json && typeof json === 'object' ? json : {}) as Record<string, unknown>;
      o.onProgress?.(body.size, body.size);
      resolve({ fileId: isStr(b.fileId) && b.fileId ? b.fileId : ticket.fileId, size: typeof b.size === 'number' ? b.size : body.size });
    };
    xhr.onerror = () => {
      done();
      reject(new UploadError('network', 'The upload did not reach the server.'));
    };
    xhr.ontimeout = () => {
      done();
      reject(new UploadError('timeout', 'The upload took too long.'));
    };
    xhr.onabort = () => {
      done();
      reject(new UploadError('aborted', 'The upload was cancelled.'));
    };
    o.signal?.addEventListener('abort', onAbort);
    xhr.send(body);
  });
}

export interface UploadOptions extends RequestUploadOptions, Omit<PutOptions, 'signal'> {}

/** Both steps: the file's id once its bytes are on the server. */
export async function uploadFile(http: string, roomId: string, file: Blob & UploadSource, o: UploadOptions = {}): Promise<UploadedFile> {
  const ticket = await requestUpload(http, roomId, file, o);
  return putContent(ticket, file, { onProgress: o.onProgress, signal: o.signal, createXhr: o.createXhr, timeoutMs: o.timeoutMs });
}

/** What went wrong, in words, after the file's name: "cat.bmp: this type of file is not accepted". */
export function uploadErrorText(name: string, e: unknown): string {
  return `${name}: ${uploadProblem(e)}`;
}

function uploadProblem(e: unknown): string {
  if (!(e instanceof UploadError)) return 'the upload failed';
  switch (e.code) {
    case 'file_too_large':
      return e.maxBytes ? `too large (max ${formatLimit(e.maxBytes)})` : `too large${serverSays(e)}`;
    case 'unsupported_type':
      return 'this type of file is not accepted';
    case 'upload_quota_exceeded':
      return e.retryAfterS != null ? `upload quota reached; try again in ${waitText(e.retryAfterS)}` : 'upload quota reached; try again later';
    case 'invalid_body':
      return `the server refused the upload${serverSays(e)}`;
    case 'invalid_name':
      return 'the server does not take this file name (1 to 255 characters, no control characters or slashes)';
    case 'invalid_size':
      return 'an empty file cannot be shared';
    case 'unauthorized':
      return 'sign in first: the token is missing or expired';
    case 'forbidden':
      return 'you may not share files in this room';
    case 'room_not_found':
      return 'the room does not exist (any more)';
    case 'files_disabled':
      return 'this server does not take files';
    case 'url_expired':
      return 'the upload link expired; try again';
    case 'bad_signature':
      return 'the server refused the upload link';
    case 'already_uploaded':
      return 'already uploaded';
    case 'network':
      return 'the server cannot be reached';
    case 'timeout':
      return 'the server did not answer in time';
    case 'aborted':
      return 'cancelled';
    case 'invalid_response':
      return 'the server answered something unexpected';
    default:
      if (e.status === 401) return 'sign in first: the token is missing or expired';
      if (e.status === 403) return 'you may not share files in this room';
      return `the upload failed (${e.code})${serverSays(e)}`;
  }
}

function serverSays(e: UploadError): string {
  return e.message && !/^The server answered \d+\.$/.test(e.message) ? `: ${e.message}` : '';
}

function waitText(s: number): string {
  if (s < 60) return `${s} s`;
  const m = Math.ceil(s / 60);
  return m < 60 ? `${m} min` : `${Math.ceil(m / 60)} h`;
}
