import { checkContent, countCodePoints, formatBytes, formatUptime, validateRoom, validateUsername } from './text';

describe('countCodePoints', () => {
  it('counts code points, not UTF-16 units', () => {
    expect(countCodePoints('')).toBe(0);
    expect(countCodePoints('hello')).toBe(5);
    expect(countCodePoints('😀')).toBe(1); // 2 UTF-16 units
    expect('😀'.length).toBe(2);
    expect(countCodePoints('a😀b𝄞')).toBe(4);
    expect(countCodePoints('é')).toBe(1); // precomposed
    expect(countCodePoints('e\u0301')).toBe(2); // e + combining accent: two scalars
    expect(countCodePoints('👨‍👩‍👧')).toBe(5); // 3 people + 2 ZWJ
  });
  it('counts a lone surrogate as one', () => {
    expect(countCodePoints('\ud83d')).toBe(1);
    expect(countCodePoints('a\ude00b')).toBe(3);
    expect(countCodePoints('\ud83d\ud83d\ude00')).toBe(2);
  });
  it('agrees with Array.from on random strings', () => {
    const pool = ['a', 'é', '😀', '\u0301', ' ', '中', '\ud800', '𝄞'];
    for (let i = 0; i < 200; i++) {
      let s = '';
      for (let j = 0; j < (i % 17); j++) s += pool[(i * 7 + j * 13) % pool.length];
      expect(countCodePoints(s)).toBe(Array.from(s).length);
    }
  });
});

describe('checkContent', () => {
  it('allows exactly 1000 code points even when that is 2000 UTF-16 units', () => {
    const s = '😀'.repeat(1000);
    expect(s.length).toBe(2000);
    expect(checkContent(s)).toEqual({ count: 1000, remaining: 0, ok: true, reason: null });
    expect(checkContent(s + 'x')).toMatchObject({ count: 1001, ok: false, reason: 'too_long' });
  });
  it('rejects empty and whitespace-only content', () => {
    expect(checkContent('')).toMatchObject({ ok: false, reason: 'empty' });
    expect(checkContent('  \n\t ')).toMatchObject({ ok: false, reason: 'empty' });
    expect(checkContent(' x ')).toMatchObject({ ok: true });
  });
});

describe('validation', () => {
  it('rooms follow the protocol rule', () => {
    expect(validateRoom('global')).toBeNull();
    expect(validateRoom('team-a_b.c:d@e')).toBeNull();
    expect(validateRoom('x'.repeat(128))).toBeNull();
    expect(validateRoom('x'.repeat(129))).not.toBeNull();
    expect(validateRoom('')).not.toBeNull();
    expect(validateRoom('has space')).not.toBeNull();
    expect(validateRoom('ünï')).not.toBeNull();
  });
  it('usernames are 1..50 code points after trimming, no control characters', () => {
    expect(validateUsername('  Alice ')).toBeNull();
    expect(validateUsername('😀'.repeat(50))).toBeNull();
    expect(validateUsername('😀'.repeat(51))).not.toBeNull();
    expect(validateUsername('   ')).not.toBeNull();
    expect(validateUsername('a\u0007b')).not.toBeNull();
  });
  it('formats uptime', () => {
    expect(formatUptime(5)).toBe('5s');
    expect(formatUptime(65)).toBe('1m 5s');
    expect(formatUptime(3 * 3600 + 120)).toBe('3h 2m');
    expect(formatUptime(2 * 86400 + 3600)).toBe('2d 1h 0m');
  });
});

describe('formatBytes', () => {
  it('picks the unit', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(128 * 1024 * 1024)).toBe('128 MiB');
    expect(formatBytes(undefined)).toBe('—');
  });
});
