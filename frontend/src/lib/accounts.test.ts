import { describe, expect, it, vi } from 'vitest';
import { signIn, SignInError } from './accounts';

const answer = (status: number, body: unknown) =>
  vi.fn((_url: RequestInfo | URL, _init?: RequestInit) => Promise.resolve(new Response(JSON.stringify(body), { status })));

describe('signIn', () => {
  it('posts the credentials and answers the token', async () => {
    const f = answer(201, { userId: 'ada', username: 'Ada', token: 'a.b.c', expiresAt: '2026-12-03T20:00:00.000Z' });
    const got = await signIn('http://h', 'signup', 'Ada', 'correct horse', f as unknown as typeof fetch);
    expect(got).toEqual({ userId: 'ada', username: 'Ada', token: 'a.b.c', expiresAt: '2026-12-03T20:00:00.000Z' });
    expect(f.mock.calls[0][0]).toBe('http://h/auth/signup');
    expect(f.mock.calls[0][1]?.method).toBe('POST');
    expect(JSON.parse(String(f.mock.calls[0][1]?.body))).toEqual({ username: 'Ada', password: 'correct horse' });
  });

  it('says what a refusal means', async () => {
    for (const [status, code, text] of [
      [401, 'bad_credentials', 'The username or the password is wrong.'],
      [409, 'username_taken', 'That username is taken.'],
      [429, 'too_many_attempts', 'Too many attempts: wait a minute and try again.'],
    ] as const) {
      const f = answer(status, { error: code, message: 'x' });
      await expect(signIn('', 'login', 'a', 'b', f as unknown as typeof fetch)).rejects.toMatchObject({ code, message: text });
    }
    const odd = answer(200, { token: 1 });
    await expect(signIn('', 'login', 'a', 'b', odd as unknown as typeof fetch)).rejects.toBeInstanceOf(SignInError);
  });
});
