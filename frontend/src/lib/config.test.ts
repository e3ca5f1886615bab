import { resolveServer, stableUserId, wsUrl } from './config';

const loc = (href: string) => {
  const u = new URL(href);
  return { href, origin: u.origin, protocol: u.protocol, host: u.host };
};

describe('resolveServer', () => {
  it('defaults to the page origin', () => {
    expect(resolveServer(loc('https://chat.example.com/#/chat'))).toMatchObject({
      http: 'https://chat.example.com',
      ws: 'wss://chat.example.com',
    });
    expect(resolveServer(loc('http://127.0.0.1:8080/'))).toMatchObject({ http: 'http://127.0.0.1:8080', ws: 'ws://127.0.0.1:8080' });
  });
  it('?server= wins over the global, which wins over the origin', () => {
    expect(resolveServer(loc('http://localhost:5173/?server=http://10.0.0.5:9000#/analytics'), 'http://g:1')).toMatchObject({
      http: 'http://10.0.0.5:9000',
      ws: 'ws://10.0.0.5:9000',
      label: '10.0.0.5:9000',
    });
    expect(resolveServer(loc('http://localhost:5173/#/chat?server=https://h.example/'))).toMatchObject({ http: 'https://h.example', ws: 'wss://h.example' });
    expect(resolveServer(loc('http://localhost:5173/'), 'https://g.example:8443')).toMatchObject({ ws: 'wss://g.example:8443' });
    // garbage is ignored
    expect(resolveServer(loc('http://localhost:5173/?server=javascript:alert(1)'))).toMatchObject({ http: 'http://localhost:5173' });
  });
  it('builds the ws URL with since only when resuming', () => {
    const ep = resolveServer(loc('http://h:1/'));
    const first = new URL(wsUrl(ep, { userId: 'u1', username: 'A B', room: 'r', since: null }));
    expect(first.pathname).toBe('/ws');
    expect(first.searchParams.get('username')).toBe('A B');
    expect(first.searchParams.has('since')).toBe(false);
    expect(new URL(wsUrl(ep, { userId: 'u1', username: 'A', room: 'r', since: 0 })).searchParams.get('since')).toBe('0');
  });
});

describe('stableUserId', () => {
  it('is generated once and kept', () => {
    const m = new Map<string, string>();
    const st = { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) };
    const a = stableUserId(st);
    expect(a).toMatch(/^u-[0-9a-f]{24}$/);
    expect(stableUserId(st)).toBe(a);
  });
});
