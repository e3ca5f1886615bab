export const MAX_CONTENT_CODE_POINTS = 1000;
export const MAX_USERNAME_CODE_POINTS = 50;
export const ROOM_RE = /^[A-Za-z0-9\-_.:@]{1,128}$/;

/**
 * Number of code points (what the server counts as Unicode scalar values) in `s`.
 * A surrogate pair is one code point; a lone surrogate counts as one too.
 */
export function countCodePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

export interface ContentCheck {
  count: number;
  remaining: number;
  ok: boolean;
  reason: 'empty' | 'too_long' | null;
}

export function checkContent(content: string, max = MAX_CONTENT_CODE_POINTS): ContentCheck {
  const count = countCodePoints(content);
  const remaining = max - count;
  if (content.trim().length === 0) return { count, remaining, ok: false, reason: 'empty' };
  if (count > max) return { count, remaining, ok: false, reason: 'too_long' };
  return { count, remaining, ok: true, reason: null };
}

// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

export function validateUsername(name: string): string | null {
  const t = name.trim();
  if (t.length === 0) return 'Pick a display name.';
  if (countCodePoints(t) > MAX_USERNAME_CODE_POINTS) return `At most ${MAX_USERNAME_CODE_POINTS} characters.`;
  if (CONTROL_RE.test(t)) return 'No control characters.';
  return null;
}

export function validateRoom(room: string): string | null {
  if (room.length === 0) return 'Pick or type a room.';
  if (room.length > 128) return 'At most 128 characters.';
  if (!ROOM_RE.test(room)) return 'Letters, digits and - _ . : @ only.';
  return null;
}

/** Stable hue for a user id (avatars, names). */
export function hueFor(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % 360;
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const first = parts[0] ? Array.from(parts[0])[0] : '?';
  const second = parts[1] ? Array.from(parts[1])[0] : '';
  return (first + (second ?? '')).toUpperCase();
}

export function formatUptime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h ${m}m`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

const NF = new Intl.NumberFormat('en-US');
export function formatInt(n: number | undefined | null): string {
  if (n == null || !Number.isFinite(n)) return '—';
  return NF.format(Math.round(n));
}

/** Bytes in the largest binary unit that keeps the number at least 1 (`1.5 MiB`). */
export function formatBytes(n: number | undefined | null): string {
  if (n == null || !Number.isFinite(n) || n < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

export function formatMs(n: number | undefined | null): string {
  if (n == null || !Number.isFinite(n)) return '—';
  if (n < 1) return `${n.toFixed(2)} ms`;
  if (n < 10) return `${n.toFixed(1)} ms`;
  return `${Math.round(n)} ms`;
}

export function formatClock(ts: string): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
