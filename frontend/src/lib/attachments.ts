/**
 * Files attached to chat messages (file sharing): what chat frames, history pages and
 * search results carry (`attachments: [{fileId, name, contentType, size}]`, absent when
 * none), and how they are shown.
 */

export interface Attachment {
  fileId: string;
  name: string;
  contentType: string;
  /** Bytes. */
  size: number;
}

/** What a chat request names: an uploaded file, by id. */
export interface AttachmentRef {
  fileId: string;
}

/** The most attachments one message may carry. */
export const MAX_ATTACHMENTS = 4;

const isStr = (v: unknown): v is string => typeof v === 'string';

/**
 * The attachments of a frame's `attachments` field: only well-formed entries (a file id,
 * a name, a size), each file once. `undefined` when there are none.
 */
export function parseAttachments(v: unknown): Attachment[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: Attachment[] = [];
  const seen = new Set<string>();
  for (const a of v) {
    if (!a || typeof a !== 'object') continue;
    const o = a as Record<string, unknown>;
    if (!isStr(o.fileId) || o.fileId === '' || seen.has(o.fileId)) continue;
    seen.add(o.fileId);
    out.push({
      fileId: o.fileId,
      name: isStr(o.name) && o.name !== '' ? o.name : o.fileId,
      contentType: isStr(o.contentType) && o.contentType !== '' ? o.contentType : 'application/octet-stream',
      size: typeof o.size === 'number' && Number.isFinite(o.size) && o.size >= 0 ? Math.floor(o.size) : 0,
    });
  }
  return out.length ? out : undefined;
}

/**
 * A message as the HTTP API answers it (history, search), with its `attachments` checked
 * like a frame's: the same object when it has none, else a copy.
 */
export function withAttachments<T extends object>(m: T): T {
  if (!('attachments' in m)) return m;
  const { attachments, ...rest } = m as T & { attachments?: unknown };
  const parsed = parseAttachments(attachments);
  return (parsed ? { ...rest, attachments: parsed } : rest) as T;
}

/** An image the page can preview (its content type says so). */
export function isImage(contentType: string): boolean {
  return /^image\//i.test(contentType.trim());
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** A human size: "512 B", "1.5 KB", "12 KB", "3.4 MB" (units of 1024). */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?';
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < UNITS.length - 1) {
    n /= 1024;
    u++;
  }
  if (u === 0) return `${Math.round(n)} B`;
  // one decimal below 10, none above; 1023.96 KB is 1 MB, not "1024 KB"
  let shown = n < 10 ? Math.round(n * 10) / 10 : Math.round(n);
  if (shown >= 1024 && u < UNITS.length - 1) {
    shown = 1;
    u++;
  }
  return `${shown} ${UNITS[u]}`;
}

/** A limit in words: "10 MiB" for whole mebibytes (and KiB, GiB), else as `formatSize`. */
export function formatLimit(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return formatSize(bytes);
}

/** "report.pdf · 12 KB" */
export function fileLabel(a: Pick<Attachment, 'name' | 'size'>): string {
  return `${a.name} · ${formatSize(a.size)}`;
}
