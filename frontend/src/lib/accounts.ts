/**
 * Accounts (docs/PROTOCOL.md §4.4): `POST /auth/signup` and `POST /auth/login` answer a
 * token that names the user; the dashboard keeps it for the tab (`token.ts`).
 */

export interface SignedIn {
  userId: string;
  username: string;
  token: string;
  expiresAt: string;
}

/** What a refusal means to the person at the keyboard. */
const MESSAGES: Record<string, string> = {
  bad_credentials: 'The username or the password is wrong.',
  username_taken: 'That username is taken.',
  invalid_username: 'A username is 3 to 32 letters, digits, _ . or -.',
  invalid_password: 'A password is 8 to 256 characters.',
  too_many_attempts: 'Too many attempts: wait a minute and try again.',
  busy: 'The server is busy: try again in a moment.',
  not_found: 'This server has no accounts.',
};

export class SignInError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SignInError';
  }
}

export async function signIn(
  http: string,
  action: 'login' | 'signup',
  username: string,
  password: string,
  fetchImpl: typeof fetch = fetch,
): Promise<SignedIn> {
  let r: Response;
  try {
    r = await fetchImpl(`${http}/auth/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username, password }),
    });
  } catch {
    throw new SignInError('network', 'The server cannot be reached.');
  }
  let body: Record<string, unknown> = {};
  try {
    body = (await r.json()) as Record<string, unknown>;
  } catch {
    /* no JSON body */
  }
  if (!r.ok) {
    const code = typeof body.error === 'string' ? body.error : `http_${r.status}`;
    const text = MESSAGES[code] ?? (typeof body.message === 'string' ? body.message : `The server answered ${r.status}.`);
    throw new SignInError(code, text);
  }
  const { userId, username: name, token, expiresAt } = body;
  if (typeof userId !== 'string' || typeof name !== 'string' || typeof token !== 'string' || typeof expiresAt !== 'string') {
    throw new SignInError('invalid_response', 'The server answered something unexpected.');
  }
  return { userId, username: name, token, expiresAt };
}
