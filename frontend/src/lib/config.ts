export interface ServerEndpoints {
  /** e.g. "http://127.0.0.1:8080" — no trailing slash; "" means same origin. */
  http: string;
  /** e.g. "ws://127.0.0.1:8080" */
  ws: string;
  /** Human label for the header. */
  label: string;
}

declare global {
  interface Window {
    HUBBUB_SERVER?: string;
  }
}

function normalize(base: string): { http: string; ws: string } | null {
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    return null;
  }
  const secure = u.protocol === 'https:' || u.protocol === 'wss:';
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) return null;
  const path = u.pathname.replace(/\/+$/, '');
  return {
    http: `${secure ? 'https' : 'http'}://${u.host}${path}`,
    ws: `${secure ? 'wss' : 'ws'}://${u.host}${path}`,
  };
}

/**
 * Where the server is. Precedence: `?server=` (in the query or in the hash's query),
 * then `window.HUBBUB_SERVER`, then the page's own origin.
 */
export function resolveServer(
  location: { href: string; origin: string; protocol: string; host: string },
  globalOverride?: string,
): ServerEndpoints {
  const url = new URL(location.href);
  let fromQuery = url.searchParams.get('server');
  if (!fromQuery) {
    const q = url.hash.indexOf('?');
    if (q >= 0) fromQuery = new URLSearchParams(url.hash.slice(q + 1)).get('server');
  }
  for (const candidate of [fromQuery, globalOverride]) {
    if (candidate) {
      const n = normalize(candidate);
      if (n) return { ...n, label: new URL(n.http).host };
    }
  }
  const secure = location.protocol === 'https:';
  return {
    http: location.origin,
    ws: `${secure ? 'wss' : 'ws'}://${location.host}`,
    label: location.host,
  };
}

let cached: ServerEndpoints | null = null;
export function server(): ServerEndpoints {
  if (!cached) cached = resolveServer(window.location, window.HUBBUB_SERVER);
  return cached;
}

export function wsUrl(
  ep: ServerEndpoints,
  params: { userId: string; username: string; room: string; since?: number | null; token?: string | null },
): string {
  const q = new URLSearchParams();
  q.set('userId', params.userId);
  q.set('username', params.username);
  q.set('room', params.room);
  if (params.token) q.set('token', params.token);
  if (params.since != null) q.set('since', String(params.since));
  return `${ep.ws}/ws?${q.toString()}`;
}

/** A protocol v2 connection (`proto=2`) with no room: rooms are subscribed over it. */
export function wsUrlV2(ep: ServerEndpoints, params: { userId: string; username: string; token?: string | null }): string {
  const q = new URLSearchParams();
  q.set('proto', '2');
  q.set('userId', params.userId);
  q.set('username', params.username);
  if (params.token) q.set('token', params.token);
  return `${ep.ws}/ws?${q.toString()}`;
}

/** Stable random user id kept in localStorage (crypto.randomUUID needs a secure context; this does not). */
export function stableUserId(storage: Pick<Storage, 'getItem' | 'setItem'> | null = safeStorage()): string {
  const key = 'hubbub.userId';
  const existing = storage?.getItem(key);
  if (existing && /^[A-Za-z0-9_-]{1,128}$/.test(existing)) return existing;
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  const id = 'u-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  try {
    storage?.setItem(key, id);
  } catch {
    /* private mode: id lives for this page only */
  }
  return id;
}

export function safeStorage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
