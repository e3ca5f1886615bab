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
