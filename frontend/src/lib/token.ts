/**
 * The access token this tab signs in with (a JWT, or a token of the original system),
 * for servers with token auth. Kept in sessionStorage: it lasts as long as the tab and is
 * never written to disk by the page.
 */
const KEY = 'hubbub.token';

function store(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

export function getToken(): string | null {
  const t = store()?.getItem(KEY)?.trim();
  return t ? t : null;
}

export function setToken(token: string | null): void {
  const t = token?.trim();
  if (t) store()?.setItem(KEY, t);
  else store()?.removeItem(KEY);
}

/** Headers of a JSON request to the API: with the token as `Bearer` when there is one. */
export function apiHeaders(token: string | null = getToken()): Record<string, string> {
  const h: Record<string, string> = { Accept: 'application/json' };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

function b64urlText(part: string): string | null {
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
}

/**
 * Who a token says its bearer is, read (not verified: the server does that) so the page
 * knows its own messages: a JWT's `sub` and `name`, or an original-system token's user.
 */
export function tokenIdentity(token: string | null = getToken()): { userId: string; username: string | null } | null {
  const parts = token?.split('.') ?? [];
  if (parts.length === 3) {
    const text = b64urlText(parts[1]);
    try {
      const claims = text ? (JSON.parse(text) as { sub?: unknown; name?: unknown }) : null;
      if (claims && typeof claims.sub === 'string' && claims.sub) {
        return { userId: claims.sub, username: typeof claims.name === 'string' ? claims.name.trim() || null : null };
      }
    } catch {
      /* not JSON */
    }
    return null;
  }
  if (parts.length === 2) {
    const text = b64urlText(parts[0]);
    const cut = text?.lastIndexOf('|') ?? -1;
    if (text && cut > 0) return { userId: text.slice(0, cut), username: null };
  }
  return null;
}
