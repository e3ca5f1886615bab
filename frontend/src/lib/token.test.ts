import { afterEach, describe, expect, it } from 'vitest';
import { apiHeaders, getToken, setToken, tokenIdentity } from './token';

describe('token', () => {
  afterEach(() => setToken(null));

  it('is sent as Bearer once set, and not at all without one', () => {
    expect(apiHeaders()).toEqual({ Accept: 'application/json' });
    setToken('  a.b.c ');
    expect(getToken()).toBe('a.b.c');
    expect(apiHeaders()).toEqual({ Accept: 'application/json', Authorization: 'Bearer a.b.c' });
    setToken('   ');
    expect(getToken()).toBeNull();
    expect(apiHeaders().Authorization).toBeUndefined();
  });

  it('tells the page who a JWT or an original-system token names', () => {
    const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s))).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    const jwt = `${b64('{"alg":"HS256"}')}.${b64(JSON.stringify({ sub: 'ada', name: 'Ada Ł.', exp: 1 }))}.sig`;
    expect(tokenIdentity(jwt)).toEqual({ userId: 'ada', username: 'Ada Ł.' });
    expect(tokenIdentity(`${b64('grace|2000000000')}.mac`)).toEqual({ userId: 'grace', username: null });
    expect(tokenIdentity('garbage')).toBeNull();
    expect(tokenIdentity(`${b64('{"alg":"HS256"}')}.${b64('{"name":"x"}')}.s`)).toBeNull();
    expect(tokenIdentity(null)).toBeNull();
  });
});
