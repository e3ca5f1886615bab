import { afterEach, describe, expect, it } from 'vitest';
import { apiHeaders, getToken, setToken } from './token';

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
});
