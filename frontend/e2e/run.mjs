#!/usr/bin/env node
// End-to-end test of the dashboard against a running hubbub server.
//
//   HUBBUB_URL=http://127.0.0.1:18080 npm run e2e
//   HUBBUB_RESTART_CMD='./restart-server.sh'  (optional: restarts the server on the same port, returns when healthy)
//   CHROMIUM=/usr/bin/chromium                (optional)
//   HUBBUB_E2E_BIN=target/debug/hubbub         (optional: the presence scenario starts its own
//                                               server from it, with PRESENCE_MAX_MEMBERS=1; the
//                                               sign-in, accounts and rooms scenarios one with
//                                               JWT_HS256_SECRET, the files scenarios one with
//                                               JWT_HS256_SECRET and FILES_DIR)
//
// The dashboard is loaded from the server itself (it serves frontend/dist at "/").
// Set HUBBUB_PAGE_URL to load it from somewhere else (e.g. `vite preview`); the page
// is then pointed at HUBBUB_URL with ?server=.
import { chromium } from 'playwright-core';
import { exec, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { deflateSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BASE = (process.env.HUBBUB_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const PAGE = (process.env.HUBBUB_PAGE_URL || BASE).replace(/\/+$/, '');
const RESTART = process.env.HUBBUB_RESTART_CMD || '';
const SERVER_BIN = process.env.HUBBUB_E2E_BIN || '';
/** The dashboard's presence refresh (PRESENCE_REFRESH_MS in src/hooks/useChat.ts). */
const PRESENCE_REFRESH_MS = 5_000;
const ART = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
mkdirSync(ART, { recursive: true });

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
  '--disable-quic',
];
const DESKTOP = { width: 1440, height: 900 };
const run = Math.random().toString(36).slice(2, 8);
const ROOM = `e2e-${run}`;

const results = [];
let passed = 0;
let failed = 0;

function pageUrl(hash, base = BASE) {
  // the page comes from the server under test, unless HUBBUB_PAGE_URL serves it
  const page = PAGE === BASE ? base : PAGE;
  const q = page === base ? '' : `?server=${encodeURIComponent(base)}`;
  return `${page}/${q}#/${hash}`;
}

async function until(what, fn, timeoutMs = 10_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? ` (${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function scenario(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    results.push(`PASS ${name} (${Date.now() - t0} ms)`);
    console.log(`PASS ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    results.push(`FAIL ${name}: ${e?.stack || e}`);
    console.log(`FAIL ${name}: ${e?.message || e}`);
  }
}

const status = (page) => page.textContent('[data-testid="conn-status"]');
const texts = (page) => page.$$eval('[data-testid="message"] .msg-content', (els) => els.map((e) => e.textContent));
const countOf = (list, text) => list.filter((t) => t === text).length;

async function joinRoom(page, username, room, base = BASE) {
  await page.goto(pageUrl('chat', base));
  await page.fill('[data-testid="username"]', username);
  await page.fill('[data-testid="room"]', room);
  await page.click('[data-testid="join"]');
  await until(`${username} connected`, async () => (await status(page)) === 'open');
}

async function send(page, text) {
  await page.fill('[data-testid="composer"]', text);
  await until('send enabled', () => page.isEnabled('[data-testid="send"]'), 5000);
  await page.click('[data-testid="send"]');
  await until(`"${text}" shown`, async () => countOf(await texts(page), text) >= 1);
}

async function totalMessages(page) {
  const raw = await page.textContent('[data-testid="total-messages"]');
  const n = Number(String(raw).replace(/[^0-9]/g, ''));
  if (!Number.isFinite(n)) throw new Error(`total-messages is "${raw}"`);
  return n;
}

const memberNames = (page) => page.$$eval('[data-testid="member"] .member-name', (els) => els.map((e) => e.textContent));
const presenceCount = async (page) => Number(String(await page.textContent('[data-testid="presence-count"]')).replace(/[^0-9]/g, ''));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A second hubbub from HUBBUB_E2E_BIN on a free port, with extra env; resolves once /health answers. */
async function startServer(env) {
  const port = await freePort();
  const child = spawn(SERVER_BIN, [], {
    env: { ...process.env, PORT: String(port), BIND: '127.0.0.1', WORKERS: '2', LOG_LEVEL: 'warn', RATE_LIMIT_PER_SEC: '50', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  };
  try {
    await until('second server healthy', async () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${log}`);
      return (await fetch(`${url}/health`)).ok;
    }, 10_000, 50);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, stop };
}


// ---- protocol v2 (the Rooms page, #/rooms) ----
const roomSel = (room) => `[data-testid="room-item"][data-room="${room}"]`;
const unreadOf = async (page, room) => Number(await page.getAttribute(roomSel(room), 'data-unread'));
const typingText = (page) => page.textContent('[data-testid="typing"]').then((t) => (t ?? '').trim());
const v2Members = (page) =>
  page.$$eval('[data-testid="v2-member"]', (els) =>
    els.map((e) => ({
      userId: e.getAttribute('data-user'),
      name: e.querySelector('.member-name')?.textContent,
      online: e.getAttribute('data-online') === 'true',
      lastSeen: e.querySelector('[data-testid="last-seen"]')?.textContent ?? null,
      lastSeenIso: e.querySelector('[data-testid="last-seen"]')?.getAttribute('title') ?? null,
    })),
  );
/** Every WebSocket the page opens, with the frames it sends and receives (parsed). */
function recordSockets(page) {
  const sockets = [];
  page.on('websocket', (ws) => {
    const rec = { url: ws.url(), sent: [], received: [], closed: false };
    sockets.push(rec);
    const parse = (p) => {
      try {
        return JSON.parse(String(p));
      } catch {
        return { raw: String(p) };
      }
    };
    ws.on('framesent', ({ payload }) => rec.sent.push(parse(payload)));
    ws.on('framereceived', ({ payload }) => rec.received.push(parse(payload)));
    ws.on('close', () => (rec.closed = true));
  });
  return sockets;
}
/** The frames of one type a recorded page sent / received, over all its sockets. */
const sentFrames = (sockets, type) => sockets.flatMap((s) => s.sent.filter((f) => f.type === type));
const receivedFrames = (sockets, type) => sockets.flatMap((s) => s.received.filter((f) => f.type === type));

async function openRooms(page, username, rooms, base = BASE, token = null) {
  await page.goto(pageUrl('rooms', base));
  await page.fill('[data-testid="v2-username"]', username);
  await page.fill('[data-testid="v2-rooms"]', rooms.join(', '));
  if (token) await page.fill('[data-testid="token"]', token);
  await page.click('[data-testid="v2-join"]');
  await until(`${username} connected (v2)`, async () => (await status(page)) === 'open');
  for (const r of rooms) await until(`${username} subscribed to ${r}`, async () => (await page.getAttribute(roomSel(r), 'data-state')) === 'subscribed');
}

async function openRoom(page, room) {
  await page.click(roomSel(room));
  await until(`#${room} open`, async () => (await page.textContent('[data-testid="v2-room-title"]')) === `#${room}`, 5_000);
}

// ---- history: paging back through a room's messages ----
/**
 * Sends `n` chat messages to `room` over one real v1 WebSocket opened in `page`, one at
 * a time: each waits for its own echo, and one refused with rate_limited (the server
 * runs with RATE_LIMIT_PER_SEC=50, bursts of 10, per connection) goes again a second
 * later; 30 a second stays under the rate anyway. Resolves with the seqs, in order.
 */
async function sendMany(page, room, n, prefix) {
  return sendTexts(page, room, Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`));
}

/** Like `sendMany`, with the messages' texts given (each different from the others). */
async function sendTexts(page, room, texts) {
  await page.goto(`${BASE}/health`);
  const ws = `${BASE.replace(/^http/, 'ws')}/ws?userId=${encodeURIComponent(`filler-${run}`)}&username=Filler&room=${encodeURIComponent(room)}`;
  return page.evaluate(
    async ({ ws, texts }) => {
      const sock = new WebSocket(ws);
      await new Promise((res, rej) => {
        sock.onopen = res;
        sock.onerror = () => rej(new Error('socket failed'));
      });
      const seqs = [];
      let waiting = null;
      sock.onmessage = (ev) => {
        const f = JSON.parse(ev.data);
        if (waiting) waiting(f);
      };
      const next = (text) =>
        new Promise((res) => {
          const t = setTimeout(() => res({ type: 'timeout' }), 5000);
          waiting = (f) => {
            if ((f.type === 'chat' && f.content === text) || f.type === 'error') {
              clearTimeout(t);
              waiting = null;
              res(f);
            }
          };
        });
      for (let i = 1; i <= texts.length; i++) {
        const text = texts[i - 1];
        for (let tries = 0; ; tries++) {
          const got = next(text);
          sock.send(JSON.stringify({ type: 'chat', content: text }));
          const f = await got;
          if (f.type === 'chat') {
            seqs.push(f.seq);
            break;
          }
          if (tries >= 5) throw new Error(`message ${i}: ${JSON.stringify(f)}`);
          await new Promise((r) => setTimeout(r, 1100));
        }
        await new Promise((r) => setTimeout(r, 33));
      }
      sock.close();
      return seqs;
    },
    { ws, texts },
  );
}

/** The seqs of the message rows now rendered, by their index in the (virtualized) list. */
const renderedRows = (page) =>
  page.$$eval('.msglist [data-index]', (els) => els.map((e) => [Number(e.getAttribute('data-index')), Number(e.querySelector('[data-testid="message"]')?.getAttribute('data-seq'))]));

/**
 * Pages back to the start of the room on screen until "Beginning of the room", taking
 * turns: a click on "Load older messages" (from a little below the top, so that only
 * the click fetches; the row at the top of the view must stay where it was while the
 * page goes in front of it), then a scroll to the very top (which must fetch by itself).
 */
async function pageBackToStart(page) {
  const list = page.locator('.msglist');
  let clicks = 0;
  let scrolls = 0;
  const moves = []; // px the row at the top of the view moved when a clicked page went in front
  const settled = () => until('the page in front', async () => (await page.$('[data-testid="history-start"]')) || (await page.$('[data-testid="load-older"]:not([disabled])')), 10_000);
  for (let turn = 0; turn < 20; turn++) {
    if (await page.$('[data-testid="history-start"]')) return { clicks, scrolls, moves };
    const err = await page.$('[data-testid="history-error"]');
    if (err) throw new Error(`history error: ${await err.textContent()}`);
    await settled();
    if (await page.$('[data-testid="history-start"]')) continue;
    if (turn % 2 === 0) {
      await list.evaluate((el) => (el.scrollTop = 400));
      await page.waitForTimeout(250); // rows rendered and measured there
      const top = () =>
        list.evaluate((el) => {
          const box = el.getBoundingClientRect();
          const rows = [...el.querySelectorAll('[data-testid="message"]')];
          const row = rows.find((r) => r.getBoundingClientRect().bottom > box.top + 1);
          return row ? { seq: row.getAttribute('data-seq'), top: row.getBoundingClientRect().top - box.top } : null;
        });
      const before = await top();
      if ((await page.$$('[data-testid="load-older"][disabled]')).length) throw new Error('a page was fetched 400 px below the top');
      await list.evaluate((el) => el.querySelector('[data-testid="load-older"]').click());
      clicks++;
      await settled();
      await page.waitForTimeout(250);
      const after = await list.evaluate((el, seq) => {
        const row = el.querySelector(`[data-testid="message"][data-seq="${seq}"]`);
        return row ? row.getBoundingClientRect().top - el.getBoundingClientRect().top : null;
      }, before?.seq);
      moves.push(before && after !== null ? Math.round(after - before.top) : `seq ${before?.seq} gone`);
    } else {
      await list.evaluate((el) => (el.scrollTop = 0));
      scrolls++;
      await until('a page fetched by scrolling to the top', async () => (await page.$('[data-testid="history-start"]')) || (await page.$('[data-testid="load-older"][disabled]')), 5_000);
      await settled();
    }
  }
  throw new Error('no "Beginning of the room" after 20 turns');
}

/** Every seq in the list, top to bottom, by scrolling it through (rows are virtualized). */
async function allSeqs(page) {
  const list = page.locator('.msglist');
  const byIndex = new Map();
  await list.evaluate((el) => (el.scrollTop = 0));
  for (let guard = 0; guard < 500; guard++) {
    await page.waitForTimeout(40);
    for (const [i, seq] of await renderedRows(page)) if (Number.isFinite(seq)) byIndex.set(i, seq);
    const done = await list.evaluate((el) => {
      if (el.scrollTop + el.clientHeight >= el.scrollHeight - 1) return true;
      el.scrollTop += Math.max(50, el.clientHeight / 2);
      return false;
    });
    if (done) {
      await page.waitForTimeout(40);
      for (const [i, seq] of await renderedRows(page)) if (Number.isFinite(seq)) byIndex.set(i, seq);
      break;
    }
  }
  const idx = [...byIndex.keys()].sort((a, b) => a - b);
  idx.forEach((k, j) => {
    if (k !== j) throw new Error(`row ${j} never rendered (indices ${idx.slice(0, 5).join(',')}…)`);
  });
  return idx.map((k) => byIndex.get(k));
}

function expectOneToN(seqs, n, where) {
  const bad = seqs.length !== n || seqs.some((s, i) => s !== i + 1);
  if (bad) throw new Error(`${where}: shown ${seqs.length} seqs, expected 1..${n} once each in order: ${JSON.stringify(seqs)}`);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS, headless: true });
const ctxA = await browser.newContext({ viewport: DESKTOP });
const ctxB = await browser.newContext({ viewport: DESKTOP });
const alice = await ctxA.newPage();
const bob = await ctxB.newPage();
const consoleErrors = [];
for (const p of [alice, bob]) p.on('pageerror', (e) => consoleErrors.push(String(e)));

try {
  await scenario('two users in one room see each other\'s messages', async () => {
    await joinRoom(alice, 'Alice', ROOM);
    await joinRoom(bob, 'Bob', ROOM);
    const a = `hello from Alice ${run}`;
    const b = `hi Alice, Bob here ${run}`;
    await send(alice, a);
    await until('Bob sees Alice', async () => countOf(await texts(bob), a) === 1);
    await send(bob, b);
    await until('Alice sees Bob', async () => countOf(await texts(alice), b) === 1);
    // own messages are marked, the other's are not
    const ownA = await alice.$$eval('[data-testid="message"][data-own="true"] .msg-content', (els) => els.map((e) => e.textContent));
    if (!ownA.includes(a) || ownA.includes(b)) throw new Error(`own-message marking wrong: ${JSON.stringify(ownA)}`);
    // both appear in each other's presence list
    await until('presence lists both', async () => {
      const names = await alice.$$eval('[data-testid="member"] .member-name', (els) => els.map((e) => e.textContent));
      return names.includes('Alice') && names.includes('Bob');
    });
    // a few more lines so the screenshot shows a conversation
    const lines = [
      [bob, 'Is the new fan-out path live on staging?'],
      [alice, 'Yes — p99 is under a millisecond with 2 workers.'],
      [bob, 'Nice. Ship it 🚀'],
      [alice, 'Dashboard reconnects with since=<last seq>, so no gaps and no duplicates after a restart.'],
    ];
    for (const [p, t] of lines) await send(p, t);
    await alice.waitForTimeout(300);
    await alice.screenshot({ path: join(ART, 'chat.png') });
  });

  await scenario('analytics shows total messages rising', async () => {
    const stats = await ctxB.newPage();
    stats.on('pageerror', (e) => consoleErrors.push(String(e)));
    await stats.goto(pageUrl('analytics'));
    await until('total-messages card', async () => (await stats.$('[data-testid="total-messages"]')) !== null);
    const before = await totalMessages(stats);
    for (let i = 1; i <= 3; i++) await send(alice, `analytics probe ${i} ${run}`);
    const after = await until('total rises by 3', async () => {
      const n = await totalMessages(stats);
      return n >= before + 3 ? n : null;
    });
    console.log(`  total-messages ${before} -> ${after}`);
    // The messages are retained: the history figure shows bytes, not zero.
    const history = await until('history-bytes shows retained history', async () => {
      const t = await stats.textContent('[data-testid="history-bytes"]').catch(() => null);
      return t && /[1-9]/.test(t) ? t : null;
    });
    console.log(`  history in memory: ${history}`);
    // v2's counters (duplicates acked / typing dropped / recovered from store) have their card
    await until('v2-counters card', async () => /^\d+ \/ \d+ \/ \d+$/.test((await stats.textContent('[data-testid="v2-counters"]').catch(() => '')) ?? ''), 5_000);
    await stats.waitForTimeout(2500); // a few samples for the time-series charts
    await stats.screenshot({ path: join(ART, 'analytics.png'), fullPage: true });
    await stats.close();
  });

  if (RESTART) {
    await scenario('server restart: reconnects, no duplicates, can send again', async () => {
      const before = await texts(alice);
      const probe = before.filter((t) => t && t.includes(run));
      if (probe.length === 0) throw new Error('no messages before restart');
      let sawDown = false;
      const watch = (async () => {
        const end = Date.now() + 20_000;
        while (Date.now() < end && !sawDown) {
          const s = await status(alice).catch(() => null);
          if (s && s !== 'open') sawDown = true;
          await new Promise((r) => setTimeout(r, 25));
        }
      })();
      // async, so the status watcher keeps sampling while the server is down
      await new Promise((resolve, reject) => {
        const child = exec(RESTART, { shell: '/bin/sh', timeout: 120_000 }, (err) => (err ? reject(new Error(`restart command failed: ${err.message}`)) : resolve()));
        child.stdout?.pipe(process.stdout);
        child.stderr?.pipe(process.stderr);
      });
      await until('disconnect noticed', async () => sawDown, 20_000);
      await watch;
      await until('Alice back to open', async () => (await status(alice)) === 'open', 30_000);
      await until('Bob back to open', async () => (await status(bob)) === 'open', 30_000);
      await alice.waitForTimeout(500); // let any replayed backlog arrive
      const after = await texts(alice);
      for (const t of new Set(probe)) {
        const n = countOf(after, t);
        if (n !== countOf(before, t)) throw new Error(`"${t}" shown ${n} times after reconnect (was ${countOf(before, t)})`);
      }
      const again = `after restart ${run}`;
      await send(alice, again);
      await until('Bob sees the post-restart message once', async () => countOf(await texts(bob), again) === 1);
      await alice.waitForTimeout(300);
      if (countOf(await texts(alice), again) !== 1) throw new Error('post-restart message duplicated');
    });
  } else {
    console.log('SKIP server restart scenario (HUBBUB_RESTART_CMD not set)');
  }

  if (SERVER_BIN) {
    await scenario('"Here now" follows a room above the presence bound (no join/leave frames)', async () => {
      // PRESENCE_MAX_MEMBERS=1: Alice alone gets her own join; Bob's join and leave make
      // the room 2 users, so they are sent to no one, and only the dashboard's refresh
      // from /api/rooms/{room}/presence can show them.
      const srv = await startServer({ PRESENCE_MAX_MEMBERS: '1' });
      const contexts = [];
      try {
        const room = `bound-${run}`;
        const cA = await browser.newContext({ viewport: DESKTOP });
        const cB = await browser.newContext({ viewport: DESKTOP });
        contexts.push(cA, cB);
        const a = await cA.newPage();
        const b = await cB.newPage();
        for (const p of [a, b]) p.on('pageerror', (e) => consoleErrors.push(String(e)));
        const framesToA = [];
        a.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => framesToA.push(String(payload))));
        const parsed = () =>
          framesToA.map((f) => {
            try {
              return JSON.parse(f);
            } catch {
              return null;
            }
          });
        const presenceFrames = (name) => parsed().filter((f) => f && (f.type === 'join' || f.type === 'leave') && f.username === name);
        // A barrier: Alice's own chat comes back after every frame queued for her before it.
        const flushFramesToA = async (text) => {
          await send(a, text);
          await until('the echo captured', () => parsed().some((f) => f && f.type === 'chat' && f.content === text), 5_000);
        };
        const noFramesFor = async (name, barrier) => {
          await flushFramesToA(barrier);
          if (presenceFrames('Alice').length === 0) throw new Error('Alice got no join frame of her own: were frames captured, is the bound 1?');
          const got = presenceFrames(name);
          if (got.length) throw new Error(`Alice got presence frames for ${name}, so the bound is not in effect: ${JSON.stringify(got)}`);
        };

        await joinRoom(a, 'Alice', room, srv.url);
        await until('Alice lists herself, count 1', async () => {
          const names = await memberNames(a);
          return names.length === 1 && names[0] === 'Alice' && (await presenceCount(a)) === 1;
        });

        const t0 = Date.now();
        await joinRoom(b, 'Bob', room, srv.url);
        await until(
          'Alice lists Bob, count 2',
          async () => (await memberNames(a)).includes('Bob') && (await presenceCount(a)) === 2,
          PRESENCE_REFRESH_MS + 2_500,
        );
        console.log(`  Bob shown to Alice after ${Date.now() - t0} ms`);
        await noFramesFor('Bob', `Bob is here ${run}`);
        // The analytics page counts what was withheld: Bob's join, at least.
        const stats = await cA.newPage();
        stats.on('pageerror', (e) => consoleErrors.push(String(e)));
        await stats.goto(pageUrl('analytics', srv.url));
        const withheld = await until('presence-withheld counts Bob\'s join', async () => {
          const t = await stats.textContent('[data-testid="presence-withheld"]').catch(() => null);
          const n = Number(String(t).replace(/[^0-9]/g, ''));
          return t && n >= 1 ? n : null;
        });
        console.log(`  presence withheld: ${withheld}`);
        await stats.close();
        // Bob sees both as well (his list is seeded from the endpoint when he connects)
        await until('Bob lists both', async () => {
          const names = await memberNames(b);
          return names.includes('Alice') && names.includes('Bob') && (await presenceCount(b)) === 2;
        }, 5_000);

        const t1 = Date.now();
        await b.click('[data-testid="leave"]');
        await until(
          'Alice drops Bob, count 1',
          async () => !(await memberNames(a)).includes('Bob') && (await presenceCount(a)) === 1,
          PRESENCE_REFRESH_MS + 2_500,
        );
        console.log(`  Bob dropped from Alice's list after ${Date.now() - t1} ms`);
        await noFramesFor('Bob', `Bob has left ${run}`);
      } finally {
        for (const c of contexts) await c.close().catch(() => {});
        await srv.stop();
      }
    });
  } else {
    console.log('SKIP presence bound scenario (HUBBUB_E2E_BIN not set)');
  }

  if (SERVER_BIN) {
    await scenario('a system message published through the server API shows as an announcement (v1 chat and v2 rooms)', async () => {
      const KEY = `e2e-api-key-${run}-0123456789`;
      const srv = await startServer({ API_KEY: KEY });
      const contexts = [];
      try {
        const room = `sys-${run}`;
        const c1 = await browser.newContext({ viewport: DESKTOP });
        const c2 = await browser.newContext({ viewport: DESKTOP });
        contexts.push(c1, c2);
        const v1 = await c1.newPage();
        const v2 = await c2.newPage();
        for (const p of [v1, v2]) p.on('pageerror', (e) => consoleErrors.push(String(e)));
        await joinRoom(v1, 'Vic', room, srv.url);
        await openRooms(v2, 'Val', [room], srv.url);
        await openRoom(v2, room);
        const text = `Deploy at 5 (${run})`;
        const res = await fetch(`${srv.url}/api/server/publish`, {
          method: 'POST',
          headers: { Authorization: `apikey ${KEY}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ roomId: room, type: 'system', content: text }),
        });
        if (res.status !== 201) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
        const sent = await res.json();
        for (const [name, page] of [
          ['v1 chat', v1],
          ['v2 rooms', v2],
        ]) {
          await until(`${name} shows the announcement`, () =>
            page.$$eval(
              '[data-testid="message"][data-kind="system"]',
              (els, t) => els.some((e) => e.querySelector('.msg-content')?.textContent === t && e.querySelector('.msg-name')?.textContent === 'System'),
              text,
            ),
          );
          const seq = await page.getAttribute('[data-testid="message"][data-kind="system"]', 'data-seq');
          if (Number(seq) !== sent.seq) throw new Error(`${name}: the announcement has seq ${seq}, the server said ${sent.seq}`);
        }
        await v1.screenshot({ path: join(ART, 'system-message.png') });
      } finally {
        for (const c of contexts) await c.close().catch(() => {});
        await srv.stop();
      }
    });
  }


  if (SERVER_BIN) {
    await scenario('sign-in: with JWT auth the room list needs the token, and the token names the sender', async () => {
      const SECRET = `e2e-jwt-secret-${run}-0123456789abcdef`;
      const srv = await startServer({ JWT_HS256_SECRET: SECRET });
      const ctx = await browser.newContext({ viewport: DESKTOP });
      try {
        const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
        const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: `tina-${run}`, name: 'Tina (token)', exp: Math.floor(Date.now() / 1000) + 3600 })}`;
        const token = `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
        const page = await ctx.newPage();
        page.on('pageerror', (e) => consoleErrors.push(String(e)));
        await page.goto(pageUrl('chat', srv.url));
        await until('the room list asks for a token', () => page.isVisible('[data-testid="rooms-locked"]'));
        const room = `signin-${run}`;
        await page.fill('[data-testid="username"]', 'Typed Name');
        await page.fill('[data-testid="room"]', room);
        await page.fill('[data-testid="token"]', token);
        await page.click('[data-testid="join"]');
        await until('connected with the token', async () => (await status(page)) === 'open');
        const text = `signed in (${run})`;
        await send(page, text);
        const name = await page.$$eval(
          '[data-testid="message"]',
          (els, t) => els.find((e) => e.querySelector('.msg-content')?.textContent === t)?.querySelector('.msg-name')?.textContent,
          text,
        );
        if (name !== 'Tina (token)') throw new Error(`the message shows as "${name}", not the token's name`);
        const own = await page.$$eval(
          '[data-testid="message"]',
          (els, t) => els.find((e) => e.querySelector('.msg-content')?.textContent === t)?.getAttribute('data-own'),
          text,
        );
        if (own !== 'true') throw new Error('the page does not know the message is its own (the token names the user)');
        const res = await fetch(`${srv.url}/api/rooms/${room}/messages`);
        if (res.status !== 401) throw new Error(`history without a token answered ${res.status}`);
        await page.screenshot({ path: join(ART, 'signin.png') });
      } finally {
        await ctx.close().catch(() => {});
        await srv.stop();
      }
    });
  }

  if (SERVER_BIN) {
    await scenario('accounts: sign up in one browser, a wrong then the right password in another, both chat under the account name', async () => {
      const srv = await startServer({ JWT_HS256_SECRET: `e2e-accounts-secret-${run}-0123456789abcdef` });
      const contexts = [];
      try {
        const name = `Ann_${run}`.slice(0, 32);
        const password = 'correct horse battery';
        const room = `acct-${run}`;
        const c1 = await browser.newContext({ viewport: DESKTOP });
        const c2 = await browser.newContext({ viewport: DESKTOP });
        contexts.push(c1, c2);
        const [p1, p2] = [await c1.newPage(), await c2.newPage()];
        for (const p of [p1, p2]) p.on('pageerror', (e) => consoleErrors.push(String(e)));
        await p1.goto(pageUrl('chat', srv.url));
        await p1.fill('[data-testid="account-username"]', name);
        await p1.fill('[data-testid="account-password"]', password);
        await p1.click('[data-testid="signup"]');
        await until('signed up', () => p1.isVisible('[data-testid="signed-in"]'));
        await p1.fill('[data-testid="username"]', 'Ignored');
        await p1.fill('[data-testid="room"]', room);
        await p1.click('[data-testid="join"]');
        await until('p1 connected', async () => (await status(p1)) === 'open');
        const text = `from the account (${run})`;
        await send(p1, text);

        await p2.goto(pageUrl('chat', srv.url));
        await p2.fill('[data-testid="account-username"]', name.toLowerCase());
        await p2.fill('[data-testid="account-password"]', 'wrong horse battery');
        await p2.click('[data-testid="login"]');
        await until('the wrong password is refused', async () =>
          ((await p2.textContent('[data-testid="signin-error"]')) ?? '').includes('username or the password is wrong'),
        );
        await p2.fill('[data-testid="account-password"]', password);
        await p2.click('[data-testid="login"]');
        await until('logged in', () => p2.isVisible('[data-testid="signed-in"]'));
        await p2.fill('[data-testid="username"]', 'Also ignored');
        await p2.fill('[data-testid="room"]', room);
        await p2.click('[data-testid="join"]');
        await until('p2 connected', async () => (await status(p2)) === 'open');
        await until('p2 sees the message under the account name', () =>
          p2.$$eval(
            '[data-testid="message"]',
            (els, [t, n]) => els.some((e) => e.querySelector('.msg-content')?.textContent === t && e.querySelector('.msg-name')?.textContent === n),
            [text, name],
          ),
        );
        await p2.screenshot({ path: join(ART, 'accounts.png') });
      } finally {
        for (const c of contexts) await c.close().catch(() => {});
        await srv.stop();
      }
    });
  }

  // ---- rooms (Rooms API, issue 14): a server with JWT auth, users named by HS256 tokens ----
  /** An HS256 JWT for `sub` (and display name `name`), valid for an hour. */
  const hs256Token = (secret, sub, name) => {
    const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, name, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
    return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
  };
  /**
   * A server of its own with JWT_HS256_SECRET, and a browser context per user, each with
   * a token naming `<name>-<run>`. `close()` ends both.
   */
  const roomsWorld = async (names, env = {}, cleanup = () => {}) => {
    const SECRET = `e2e-rooms-secret-${run}-0123456789abcdef`;
    let srv;
    try {
      srv = await startServer({ JWT_HS256_SECRET: SECRET, ...env });
    } catch (e) {
      cleanup();
      throw e;
    }
    const contexts = [];
    const close = async () => {
      for (const c of contexts) await c.close().catch(() => {});
      await srv.stop();
      cleanup();
    };
    try {
      const users = {};
      for (const n of names) {
        const ctx = await browser.newContext({ viewport: DESKTOP });
        contexts.push(ctx);
        const page = await ctx.newPage();
        page.on('pageerror', (e) => consoleErrors.push(String(e)));
        const id = `${n}-${run}`;
        const display = n[0].toUpperCase() + n.slice(1);
        users[n] = { id, display, token: hs256Token(SECRET, id, display), page, ws: recordSockets(page) };
      }
      return { srv, users, close };
    } catch (e) {
      await close();
      throw e;
    }
  };
  /** A Rooms API request from node with the user's token: the status and the JSON body. */
  const roomsCall = async (w, user, method, path, body) => {
    const headers = { Authorization: `Bearer ${user.token}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${w.srv.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: json, text };
  };
  const notices = (page) => page.$$eval('[data-testid="inline-error"]', (els) => els.map((e) => ({ code: e.getAttribute('data-code'), text: e.querySelector('.err-text')?.textContent ?? '' })));
  const roomIds = (page) => page.$$eval('[data-testid="room-item"]', (els) => els.map((e) => e.getAttribute('data-room')));
  const roomLabel = (page, roomId) => page.textContent(`${roomSel(roomId)} .room-name`).then((t) => (t ?? '').trim());
  /** The user opens the Rooms page with a token and `rooms`; the dashboard has then listed the user's rooms. */
  const openRoomsAs = async (w, user, rooms) => {
    await openRooms(user.page, user.display, rooms, w.srv.url, user.token);
    await roomsListed(user);
  };
  /** The dashboard's `GET /api/users/{me}/rooms` (on load) has been answered. */
  const roomsListed = (user) =>
    until(`${user.display}'s rooms listed`, async () => {
      const got = await user.page.getAttribute('[data-testid="rooms-panel"]', 'data-listed');
      if (got && got !== 'pending' && got !== 'ok') throw new Error(`GET /api/users/${user.id}/rooms failed: ${got}`);
      return got === 'ok';
    }, 10_000);
  /** Until the room is in the user's list, subscribed. */
  const subscribedIn = (user, roomId, timeoutMs = 10_000) =>
    until(`${user.display} subscribed to ${roomId}`, async () => (await user.page.getAttribute(roomSel(roomId), 'data-state')) === 'subscribed', timeoutMs).catch(async (e) => {
      throw new Error(`${e.message}; list ${JSON.stringify(await roomIds(user.page))}, notices ${JSON.stringify(await notices(user.page))}`);
    });
  /** The room on screen's id (the list's current item). */
  const activeRoomId = (page) => page.getAttribute('[data-testid="room-item"][aria-current="true"]', 'data-room').catch(() => null);
  /** Waits for a room not in `before` to be opened by the panel, and answers its id. */
  const newRoomOpened = async (user, before, what) => {
    const roomId = await until(what, async () => {
      const n = await notices(user.page);
      if (n.length) throw new Error(`refused: ${JSON.stringify(n)}`);
      const id = await activeRoomId(user.page);
      return id && !before.includes(id) ? id : null;
    }, 10_000);
    await subscribedIn(user, roomId);
    return roomId;
  };
  /** Creates a room with the panel's form; answers its id once it is open and subscribed. */
  const createRoomInUi = async (user, name, visibility, members = '') => {
    const before = await roomIds(user.page);
    await user.page.fill('[data-testid="room-create-name"]', name);
    await user.page.selectOption('[data-testid="room-create-visibility"]', visibility);
    await user.page.fill('[data-testid="room-create-members"]', members);
    await user.page.click('[data-testid="room-create-submit"]');
    return newRoomOpened(user, before, `${user.display}'s room "${name}" opened`);
  };
  const adminDone = (page) => page.textContent('[data-testid="room-admin-done"]').then((t) => (t ?? '').trim());
  const noticeWith = (user, code, text) =>
    until(`${user.display} shown ${code}: "${text}"`, async () => (await notices(user.page)).some((n) => n.code === code && n.text.includes(text)), 8_000).catch(async (e) => {
      throw new Error(`${e.message}; notices ${JSON.stringify(await notices(user.page))}`);
    });

  if (SERVER_BIN) {
    await scenario('rooms: alice creates a private room and invites bob; bob sees it and chats; carol is refused', async () => {
      const w = await roomsWorld(['alice', 'bob', 'carol']);
      try {
        const { alice, bob, carol } = w.users;
        const lobby = `lobby-${run}`;
        await openRoomsAs(w, alice, [lobby]);
        const name = `Team ${run}`;
        const roomId = await createRoomInUi(alice, name, 'private');
        if ((await roomLabel(alice.page, roomId)) !== name) throw new Error(`Alice's list names the room "${await roomLabel(alice.page, roomId)}"`);
        const made = await roomsCall(w, alice, 'GET', `/api/rooms/${encodeURIComponent(roomId)}`);
        if (made.status !== 200 || made.body?.visibility !== 'private' || made.body?.owner !== alice.id || made.body?.name !== name) throw new Error(`GET the room answered ${made.status}: ${made.text}`);
        if (!made.body.members?.some((m) => m.userId === alice.id && m.role === 'admin')) throw new Error(`Alice is not the room's admin: ${made.text}`);

        await alice.page.fill('[data-testid="room-invite-user"]', bob.id);
        await alice.page.click('[data-testid="room-invite-submit"]');
        await until('the invitation done', async () => (await adminDone(alice.page)).startsWith(`Invited ${bob.id}`), 10_000).catch(async (e) => {
          throw new Error(`${e.message}; notices ${JSON.stringify(await notices(alice.page))}`);
        });
        const invited = await roomsCall(w, alice, 'GET', `/api/rooms/${encodeURIComponent(roomId)}`);
        if (!invited.body?.members?.some((m) => m.userId === bob.id && m.role === 'member')) throw new Error(`Bob is not a member after the invitation: ${invited.text}`);

        // Bob: the room is among his (GET /api/users/{bob}/rooms on load) and he chats in it
        await openRoomsAs(w, bob, [lobby]);
        await subscribedIn(bob, roomId);
        if ((await roomLabel(bob.page, roomId)) !== name) throw new Error(`Bob's list names the room "${await roomLabel(bob.page, roomId)}"`);
        await openRoom(bob.page, roomId);
        const hello = `hello team (${run})`;
        await send(bob.page, hello);
        await until('Alice sees Bob in the private room', async () => countOf(await texts(alice.page), hello) === 1, 10_000);
        const reply = `welcome, Bob (${run})`;
        await send(alice.page, reply);
        await until('Bob sees Alice\'s reply', async () => countOf(await texts(bob.page), reply) === 1, 10_000);

        // Carol: not listed for her, and subscribing is refused
        await openRoomsAs(w, carol, [lobby]);
        if ((await roomIds(carol.page)).includes(roomId)) throw new Error('the private room is in Carol\'s list');
        await carol.page.fill('[data-testid="add-room-input"]', roomId);
        await carol.page.click('[data-testid="add-room"]');
        await until('Carol\'s subscription refused', async () => (await carol.page.getAttribute(roomSel(roomId), 'data-state')) === 'failed', 10_000);
        await noticeWith(carol, 'forbidden', `you are not a member of #${roomId}`);
        const refusal = receivedFrames(carol.ws, 'error').find((f) => f.roomId === roomId);
        if (refusal?.code !== 'forbidden') throw new Error(`Carol's subscribe answered ${JSON.stringify(refusal)}`);
        if ((await texts(carol.page)).some((t) => t === hello || t === reply)) throw new Error('Carol sees the private room\'s messages');
        const peek = await roomsCall(w, carol, 'GET', `/api/rooms/${encodeURIComponent(roomId)}`);
        if (peek.status !== 403 || peek.body?.error !== 'forbidden') throw new Error(`Carol's GET of the room answered ${peek.status}: ${peek.text}`);
        await carol.page.screenshot({ path: join(ART, 'rooms-forbidden.png') });
        await alice.page.screenshot({ path: join(ART, 'rooms-private.png') });
      } finally {
        await w.close();
      }
    });

    await scenario('rooms: bob leaves the room; it disappears from his list', async () => {
      const w = await roomsWorld(['alice', 'bob']);
      try {
        const { alice, bob } = w.users;
        const lobby = `lobby-${run}`;
        await openRoomsAs(w, alice, [lobby]);
        const roomId = await createRoomInUi(alice, `Leavers ${run}`, 'private', bob.id);
        await openRoomsAs(w, bob, [lobby]);
        await subscribedIn(bob, roomId);
        // the owner cannot leave: the server's refusal is shown and the room stays
        await alice.page.click('[data-testid="room-leave"]');
        await noticeWith(alice, 'invalid_member', '');
        if (!(await roomIds(alice.page)).includes(roomId)) throw new Error('the room left Alice\'s list although she could not leave');

        await openRoom(bob.page, roomId);
        await bob.page.click('[data-testid="room-leave"]');
        await until('the room gone from Bob\'s list', async () => !(await roomIds(bob.page)).includes(roomId), 10_000).catch(async (e) => {
          throw new Error(`${e.message}; notices ${JSON.stringify(await notices(bob.page))}`);
        });
        if (!(await adminDone(bob.page)).startsWith('You left')) throw new Error(`the panel says "${await adminDone(bob.page)}"`);
        if ((await notices(bob.page)).some((n) => n.code === 'removed')) throw new Error('leaving showed a "removed" notice');
        const mine = await roomsCall(w, bob, 'GET', `/api/users/${encodeURIComponent(bob.id)}/rooms`);
        if (mine.status !== 200 || mine.body?.rooms?.some((r) => r.roomId === roomId)) throw new Error(`Bob's rooms after leaving: ${mine.status} ${mine.text}`);
        const room = await roomsCall(w, alice, 'GET', `/api/rooms/${encodeURIComponent(roomId)}`);
        if (room.body?.members?.some((m) => m.userId === bob.id)) throw new Error(`Bob still a member: ${room.text}`);
        // and it stays gone after a reload (the server no longer lists it for him)
        await bob.page.reload();
        await until('Bob back (v2)', async () => (await status(bob.page)) === 'open', 10_000);
        await roomsListed(bob);
        await subscribedIn(bob, lobby);
        await bob.page.waitForTimeout(300);
        if ((await roomIds(bob.page)).includes(roomId)) throw new Error('the room is back in Bob\'s list after a reload');
      } finally {
        await w.close();
      }
    });

    await scenario('rooms: a direct message between alice and bob', async () => {
      const w = await roomsWorld(['alice', 'bob']);
      try {
        const { alice, bob } = w.users;
        const lobby = `lobby-${run}`;
        await openRoomsAs(w, alice, [lobby]);
        await openRoomsAs(w, bob, [lobby]);
        const before = await roomIds(alice.page);
        await alice.page.fill('[data-testid="dm-user"]', bob.id);
        await alice.page.click('[data-testid="dm-submit"]');
        const dmId = await newRoomOpened(alice, before, 'Alice\'s direct message opened');
        const dmName = `${alice.id} & ${bob.id}`;
        if ((await roomLabel(alice.page, dmId)) !== dmName) throw new Error(`Alice's list names the DM "${await roomLabel(alice.page, dmId)}"`);
        const dm = await roomsCall(w, alice, 'GET', `/api/rooms/${encodeURIComponent(dmId)}`);
        const ids = (dm.body?.members ?? []).map((m) => m.userId).sort();
        if (dm.status !== 200 || dm.body?.visibility !== 'group' || dm.body?.name !== dmName || JSON.stringify(ids) !== JSON.stringify([alice.id, bob.id].sort())) throw new Error(`the DM room: ${dm.status} ${dm.text}`);
        // Bob's page lists his rooms when it loads: the DM is there after a reload
        if ((await roomIds(bob.page)).includes(dmId)) console.log('  (Bob\'s list had the DM before the reload: a refresh found it)');
        await bob.page.reload();
        await until('Bob back (v2)', async () => (await status(bob.page)) === 'open', 10_000);
        await roomsListed(bob);
        await subscribedIn(bob, dmId);
        if ((await roomLabel(bob.page, dmId)) !== dmName) throw new Error(`Bob's list names the DM "${await roomLabel(bob.page, dmId)}"`);
        await openRoom(bob.page, dmId);
        const ping = `psst, Alice (${run})`;
        await send(bob.page, ping);
        await until('Alice sees Bob\'s direct message', async () => countOf(await texts(alice.page), ping) === 1, 10_000);
        const pong = `hi Bob (${run})`;
        await send(alice.page, pong);
        await until('Bob sees Alice\'s answer', async () => countOf(await texts(bob.page), pong) === 1, 10_000);
        await bob.page.screenshot({ path: join(ART, 'rooms-dm.png') });
      } finally {
        await w.close();
      }
    });

    await scenario('rooms: deleting a room unsubscribes bob with a notice', async () => {
      const w = await roomsWorld(['alice', 'bob']);
      try {
        const { alice, bob } = w.users;
        const lobby = `lobby-${run}`;
        await openRoomsAs(w, alice, [lobby]);
        const roomId = await createRoomInUi(alice, `Doomed ${run}`, 'group', bob.id);
        await openRoomsAs(w, bob, [lobby]);
        await subscribedIn(bob, roomId);
        await openRoom(bob.page, roomId);
        // the owner's Delete asks once more
        await alice.page.click('[data-testid="room-delete"]');
        await until('Delete armed', async () => (await alice.page.getAttribute('[data-testid="room-delete"]', 'data-armed')) === 'true', 2_000);
        await alice.page.click('[data-testid="room-delete"]');
        await until('the room gone from Alice\'s list', async () => !(await roomIds(alice.page)).includes(roomId), 10_000).catch(async (e) => {
          throw new Error(`${e.message}; notices ${JSON.stringify(await notices(alice.page))}`);
        });
        // Bob: unsubscribed by the server, the room leaves his list, and a notice says why
        await until('the room gone from Bob\'s list', async () => !(await roomIds(bob.page)).includes(roomId), 10_000).catch(async (e) => {
          throw new Error(`${e.message}; Bob got ${JSON.stringify(receivedFrames(bob.ws, 'unsubscribed'))}`);
        });
        await noticeWith(bob, 'room_deleted', 'was deleted');
        const end = receivedFrames(bob.ws, 'unsubscribed').find((f) => f.roomId === roomId);
        if (end?.reason !== 'room_deleted') throw new Error(`Bob's unsubscribed: ${JSON.stringify(end)}`);
        await bob.page.screenshot({ path: join(ART, 'rooms-deleted.png') });
        // Alice deleted it herself: no notice for her
        await alice.page.waitForTimeout(500);
        if ((await notices(alice.page)).some((n) => n.code === 'room_deleted')) throw new Error('Alice is told about her own delete');
        const gone = await roomsCall(w, alice, 'GET', `/api/rooms/${encodeURIComponent(roomId)}`);
        if (gone.status !== 404 || gone.body?.error !== 'room_not_found') throw new Error(`GET the deleted room answered ${gone.status}: ${gone.text}`);
        // subscribing to it again is refused as room_not_found
        await bob.page.fill('[data-testid="add-room-input"]', roomId);
        await bob.page.click('[data-testid="add-room"]');
        await noticeWith(bob, 'room_not_found', `#${roomId}`);
      } finally {
        await w.close();
      }
    });
  } else {
    console.log('SKIP rooms scenarios (HUBBUB_E2E_BIN not set)');
  }

  // ---- files (file sharing in the v2 Rooms view): a server with FILES_DIR and JWT auth ----
  /** A PNG of `w`×`h` pixels (RGB, a gradient), made here: signature, IHDR, IDAT (zlib), IEND. */
  const makePng = (w, h) => {
    const crcTable = Array.from({ length: 256 }, (_, n) => {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      return c >>> 0;
    });
    const crc = (buf) => {
      let c = 0xffffffff;
      for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
      return (c ^ 0xffffffff) >>> 0;
    };
    const chunk = (type, data) => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(data.length);
      const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
      const sum = Buffer.alloc(4);
      sum.writeUInt32BE(crc(body));
      return Buffer.concat([len, body, sum]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB, deflate, no filter, no interlace
    const rows = [];
    for (let y = 0; y < h; y++) {
      rows.push(0); // filter: none
      for (let x = 0; x < w; x++) rows.push(Math.round((x / w) * 255), Math.round((y / h) * 255), 180);
    }
    return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0))]);
  };
  const PNG_W = 64;
  const PNG_H = 40;
  const PNG = makePng(PNG_W, PNG_H);
  /**
   * A server with file sharing on (FILES_DIR in a fresh directory), Alice and Bob in one
   * public room with it open. Each page records its upload and file requests with their
   * answers (`http`).
   */
  const filesWorld = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubbub-e2e-files-'));
    const w = await roomsWorld(['alice', 'bob'], { FILES_DIR: dir }, () => rmSync(dir, { recursive: true, force: true }));
    try {
      const room = `files-${run}`;
      for (const user of Object.values(w.users)) {
        user.http = [];
        user.page.on('request', (r) => {
          const u = new URL(r.url());
          if (!/\/uploads$|^\/api\/files\//.test(u.pathname)) return;
          const rec = { method: r.method(), path: u.pathname, url: r.url(), body: r.postData(), headers: null, status: null, answer: null };
          user.http.push(rec);
          r.allHeaders().then((h) => (rec.headers = h), () => {});
          r.response().then(
            async (res) => {
              rec.status = res?.status() ?? null;
              rec.answer = await res?.text().catch(() => null);
            },
            () => {},
          );
        });
        await openRoomsAs(w, user, [room]);
        await openRoom(user.page, room);
      }
      return { ...w, room };
    } catch (e) {
      await w.close();
      throw e;
    }
  };
  const httpLog = (user) => JSON.stringify(user.http.map(({ method, path, status, answer }) => ({ method, path, status, answer: answer?.slice(0, 200) })));
  /** Until the page's attachment chip for `name` is uploaded (its fileId), or fails with what it says. */
  const uploaded = (user, name) =>
    until(`${user.display}'s ${name} uploaded`, async () => {
      const chip = await user.page.$$eval('[data-testid="pending-file"]', (els, n) => els.map((e) => ({ name: e.querySelector('.file-name')?.textContent, state: e.getAttribute('data-state'), fileId: e.getAttribute('data-file-id'), error: e.querySelector('[data-testid="upload-error"]')?.textContent ?? null })).find((c) => c.name === n), name);
      if (chip?.state === 'error') throw new Error(`upload failed: ${chip.error}`);
      return chip?.state === 'done' ? chip.fileId : null;
    }, 10_000).catch((e) => {
      throw new Error(`${e.message}; requests ${httpLog(user)}`);
    });
  /** Records every progress bar the page shows (and each value it takes) from now on. */
  const watchProgress = (page) =>
    page.evaluate(() => {
      window.__progress = [];
      const seen = (el) => window.__progress.push({ now: el.getAttribute('aria-valuenow'), label: el.getAttribute('aria-label') });
      new MutationObserver((muts) => {
        for (const m of muts) {
          if (m.type === 'attributes') {
            if (m.target.getAttribute('role') === 'progressbar') seen(m.target);
            continue;
          }
          for (const n of m.addedNodes) {
            if (n.nodeType !== 1) continue;
            if (n.matches('[role="progressbar"]')) seen(n);
            n.querySelectorAll('[role="progressbar"]').forEach(seen);
          }
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow'] });
    });
  /** The chat frames a user's page sent / received in the room. */
  const chatsSent = (user, room) => sentFrames(user.ws, 'chat').filter((f) => f.roomId === room);
  const chatsReceived = (user, room) => receivedFrames(user.ws, 'chat').filter((f) => f.roomId === room);

  if (SERVER_BIN) {
    await scenario('files: a PNG dropped on the room uploads with a progress bar and is sent; the other user sees its preview', async () => {
      const w = await filesWorld();
      try {
        const { alice, bob } = w.users;
        await watchProgress(alice.page);
        // drag a file over the open room: the drop zone shows; drop it
        await alice.page.evaluate((b64) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], 'cat.png', { type: 'image/png' }));
          window.__drag = dt;
          const target = document.querySelector('[data-testid="drop-target"]');
          for (const type of ['dragenter', 'dragover']) target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
        }, PNG.toString('base64'));
        await alice.page.waitForSelector('[data-testid="drop-zone"]', { state: 'visible', timeout: 2_000 });
        await alice.page.screenshot({ path: join(ART, 'files-drop.png') });
        await alice.page.evaluate(() => {
          // on the message list, inside the room: the drop bubbles up to the room
          const target = document.querySelector('.msglist') ?? document.querySelector('[data-testid="drop-target"]');
          target.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: window.__drag }));
        });
        await until('the drop zone gone after the drop', async () => !(await alice.page.isVisible('[data-testid="drop-zone"]')), 2_000);
        const fileId = await uploaded(alice, 'cat.png');
        const bars = await alice.page.evaluate(() => window.__progress);
        if (!bars.length || !bars.every((b) => /^\d+$/.test(b.now ?? '') && Number(b.now) >= 0 && Number(b.now) <= 100)) throw new Error(`progress bars seen: ${JSON.stringify(bars)}`);
        console.log(`  progress values seen: ${bars.map((b) => b.now).join(', ')}`);
        // the two requests: the ticket, then the bytes to its URL
        const post = alice.http.find((r) => r.method === 'POST' && r.path === `/api/rooms/${w.room}/uploads`);
        if (!post || post.status !== 201) throw new Error(`POST …/uploads: ${httpLog(alice)}`);
        if (JSON.stringify(JSON.parse(post.body)) !== JSON.stringify({ name: 'cat.png', contentType: 'image/png', size: PNG.length })) throw new Error(`POST body ${post.body}`);
        if (post.headers?.authorization !== `Bearer ${alice.token}`) throw new Error(`POST without the token: ${JSON.stringify(post.headers)}`);
        const ticket = JSON.parse(post.answer);
        if (ticket.fileId !== fileId) throw new Error(`ticket ${post.answer}, chip ${fileId}`);
        const put = alice.http.find((r) => r.method === (ticket.method || 'PUT') && r.url.includes(`/api/files/${fileId}/content`));
        if (!put || put.status !== 201 || put.headers?.['content-type'] !== 'image/png') throw new Error(`the bytes: ${JSON.stringify(put)}; requests ${httpLog(alice)}`);
        // send: the chat frame names the file
        const text = `a cat (${run})`;
        await alice.page.fill('[data-testid="composer"]', text);
        await until('send enabled', () => alice.page.isEnabled('[data-testid="send"]'), 5_000);
        await alice.page.click('[data-testid="send"]');
        const sent = await until('Alice sent the chat', async () => chatsSent(alice, w.room).find((f) => f.content === text), 5_000);
        if (JSON.stringify(sent.attachments) !== JSON.stringify([{ fileId }])) throw new Error(`chat sent ${JSON.stringify(sent)}`);
        await until('the chip gone after the send', async () => (await alice.page.$$('[data-testid="pending-file"]')).length === 0, 5_000);
        // Bob: the broadcast carries the file, and the page previews it
        const got = await until('Bob got the chat', async () => chatsReceived(bob, w.room).find((f) => f.content === text), 10_000).catch((e) => {
          throw new Error(`${e.message}; Alice's error frames ${JSON.stringify(receivedFrames(alice.ws, 'error'))}`);
        });
        const want = [{ fileId, name: 'cat.png', contentType: 'image/png', size: PNG.length }];
        if (JSON.stringify(got.attachments?.map(({ fileId, name, contentType, size }) => ({ fileId, name, contentType, size }))) !== JSON.stringify(want)) throw new Error(`Bob's chat frame ${JSON.stringify(got)}`);
        const img = await until('Bob sees the image', () =>
          bob.page.$$eval('img[data-testid="attachment-image"]', (els) => els.map((e) => ({ alt: e.alt, src: e.getAttribute('src'), complete: e.complete, w: e.naturalWidth })).find((i) => i.alt === 'cat.png' && i.complete && i.w > 0)),
          10_000,
        ).catch(async (e) => {
          const errs = await bob.page.$$eval('[data-testid="attachment-error"]', (els) => els.map((x) => x.textContent));
          throw new Error(`${e.message}; attachment errors ${JSON.stringify(errs)}; Bob's requests ${httpLog(bob)}`);
        });
        if (!img.src.startsWith('blob:')) throw new Error(`the preview's src is ${img.src}`);
        if (img.w !== PNG_W) throw new Error(`the preview is ${img.w} px wide, the PNG ${PNG_W}`);
        const get = bob.http.find((r) => r.method === 'GET' && r.path === `/api/files/${fileId}`);
        if (!get || get.headers?.authorization !== `Bearer ${bob.token}`) throw new Error(`Bob's GET of the file: ${JSON.stringify(get)}`);
        console.log(`  GET /api/files/${fileId} answered ${get.status}; preview ${img.w}px wide`);
        await until('Alice sees her own image too', () => alice.page.$$eval('img[data-testid="attachment-image"]', (els) => els.some((e) => e.alt === 'cat.png' && e.complete && e.naturalWidth > 0)), 10_000);
        await bob.page.screenshot({ path: join(ART, 'files-image.png') });
      } finally {
        await w.close();
      }
    });

    await scenario('files: a text file attached with the button shows as a chip (name, size) to the other user, and downloads the same bytes', async () => {
      const w = await filesWorld();
      try {
        const { alice, bob } = w.users;
        const body = `notes of the meeting (${run})\nline two\n`;
        const bytes = Buffer.from(body);
        await alice.page.setInputFiles('[data-testid="attach-input"]', { name: 'notes.txt', mimeType: 'text/plain', buffer: bytes });
        const fileId = await uploaded(alice, 'notes.txt');
        // no words: a message of the file alone
        await until('send enabled', () => alice.page.isEnabled('[data-testid="send"]'), 5_000);
        await alice.page.click('[data-testid="send"]');
        const sent = await until('Alice sent the chat', async () => chatsSent(alice, w.room).find((f) => f.attachments?.length), 5_000);
        if (sent.content !== '' || JSON.stringify(sent.attachments) !== JSON.stringify([{ fileId }])) throw new Error(`chat sent ${JSON.stringify(sent)}`);
        const label = `notes.txt · ${bytes.length} B`;
        const chip = `[data-testid="file-chip"][data-file-id="${fileId}"]`;
        await until(`Bob sees the chip "${label}"`, async () => ((await bob.page.textContent(chip).catch(() => null)) ?? '').trim() === label, 10_000).catch(async (e) => {
          throw new Error(`${e.message}; chips ${JSON.stringify(await bob.page.$$eval('[data-testid="file-chip"]', (els) => els.map((x) => x.textContent)))}; Bob's chat frames ${JSON.stringify(chatsReceived(bob, w.room))}`);
        });
        if (await bob.page.$('img[data-testid="attachment-image"]')) throw new Error('a text file previewed as an image');
        if (bob.http.some((r) => r.path === `/api/files/${fileId}`)) throw new Error('the file was fetched before the click');
        const [download] = await Promise.all([bob.page.waitForEvent('download', { timeout: 10_000 }), bob.page.click(chip)]).catch(async (e) => {
          throw new Error(`no download: ${e.message}; chip state ${await bob.page.getAttribute(chip, 'data-state')}; Bob's requests ${httpLog(bob)}`);
        });
        if (download.suggestedFilename() !== 'notes.txt') throw new Error(`downloaded as ${download.suggestedFilename()}`);
        const path = await download.path();
        const got = readFileSync(path);
        if (!got.equals(bytes)) throw new Error(`downloaded ${got.length} bytes: ${JSON.stringify(got.toString())}`);
        // the link now holds the bytes
        const href = await bob.page.getAttribute(chip, 'href');
        const again = await bob.page.evaluate(async (h) => (await fetch(h)).text(), href);
        if (!href?.startsWith('blob:') || again !== body) throw new Error(`the chip's link ${href} holds ${JSON.stringify(again)}`);
        const get = bob.http.find((r) => r.method === 'GET' && r.path === `/api/files/${fileId}`);
        if (get?.headers?.authorization !== `Bearer ${bob.token}`) throw new Error(`Bob's GET of the file: ${JSON.stringify(get)}`);
        await bob.page.screenshot({ path: join(ART, 'files-chip.png') });
      } finally {
        await w.close();
      }
    });

    await scenario('files: an unsupported type (evil.exe) shows the 415 refusal on its chip and nothing is sent', async () => {
      const w = await filesWorld();
      try {
        const { alice, bob } = w.users;
        const before = chatsSent(alice, w.room).length;
        await alice.page.setInputFiles('[data-testid="attach-input"]', { name: 'evil.exe', mimeType: 'application/x-msdownload', buffer: Buffer.from('MZ\x90\x00 not really a program') });
        const err = await until('the refusal shown', async () => {
          const e = await alice.page.$('[data-testid="pending-file"][data-state="error"]');
          return e ? { code: await e.getAttribute('data-code'), text: (await alice.page.textContent('[data-testid="upload-error"]'))?.trim() } : null;
        }, 10_000).catch((e) => {
          throw new Error(`${e.message}; requests ${httpLog(alice)}`);
        });
        if (err.code !== 'unsupported_type' || err.text !== 'evil.exe: this type of file is not accepted') throw new Error(`shown ${JSON.stringify(err)}`);
        const post = alice.http.find((r) => r.method === 'POST');
        const answer = post?.answer ? JSON.parse(post.answer) : null;
        if (post?.status !== 415 || answer?.error !== 'unsupported_type') throw new Error(`POST …/uploads answered ${post?.status} ${post?.answer}`);
        if (alice.http.some((r) => r.method !== 'POST')) throw new Error(`bytes were sent anyway: ${httpLog(alice)}`);
        // nothing to send: Send stays off, and no chat frame goes
        if (await alice.page.isEnabled('[data-testid="send"]')) throw new Error('Send is enabled with only a refused file');
        await alice.page.press('[data-testid="composer"]', 'Enter');
        await alice.page.waitForTimeout(500);
        if (chatsSent(alice, w.room).length !== before) throw new Error(`sent ${JSON.stringify(chatsSent(alice, w.room))}`);
        if (chatsReceived(bob, w.room).length) throw new Error(`Bob got ${JSON.stringify(chatsReceived(bob, w.room))}`);
        await alice.page.screenshot({ path: join(ART, 'files-refused.png') });
        // the chip goes with its ✕
        await alice.page.click('[data-testid="pending-file-remove"]');
        await until('the refused chip removed', async () => (await alice.page.$$('[data-testid="pending-file"]')).length === 0, 2_000);
      } finally {
        await w.close();
      }
    });
  } else {
    console.log('SKIP files scenarios (HUBBUB_E2E_BIN not set)');
  }

  // ---- protocol v2: two users, rooms A and B, one connection each ----
  const V2A = `v2a-${run}`;
  const V2B = `v2b-${run}`;
  const v2ctxA = await browser.newContext({ viewport: DESKTOP });
  const v2ctxB = await browser.newContext({ viewport: DESKTOP });
  const ann = await v2ctxA.newPage();
  const ben = await v2ctxB.newPage();
  for (const p of [ann, ben]) p.on('pageerror', (e) => consoleErrors.push(String(e)));
  const annWs = recordSockets(ann);
  const benWs = recordSockets(ben);
  let v2ready = false;
  let benClosed = false;
  const needV2 = () => {
    if (!v2ready) throw new Error('skipped: the v2 rooms were not opened');
  };
  /** The frames of one kind the page received, for an error message. */
  const tail = (sockets, type) => JSON.stringify(receivedFrames(sockets, type).slice(-5));

  await scenario('v2: two users each open rooms A and B over one proto=2 connection', async () => {
    await openRooms(ann, 'Ann', [V2A, V2B]);
    await openRooms(ben, 'Ben', [V2A, V2B]);
    for (const [name, socks] of [
      ['Ann', annWs],
      ['Ben', benWs],
    ]) {
      const v2 = socks.filter((s) => new URL(s.url).searchParams.get('proto') === '2');
      if (socks.length !== 1 || v2.length !== 1) throw new Error(`${name} opened ${socks.length} sockets (${socks.map((s) => s.url).join(' ')}), expected one proto=2`);
      const subs = v2[0].sent.filter((f) => f.type === 'subscribe');
      const rooms = subs.map((f) => f.roomId).sort();
      if (JSON.stringify(rooms) !== JSON.stringify([V2A, V2B].sort())) throw new Error(`${name} subscribed ${JSON.stringify(subs)}`);
      if (!subs.every((f) => Number.isInteger(f.id))) throw new Error(`${name}'s subscribes carry no id: ${JSON.stringify(subs)}`);
      const hello = v2[0].received[0];
      if (!hello || hello.type !== 'hello' || hello.proto !== 2) throw new Error(`${name}'s first frame is not hello: ${JSON.stringify(hello)}`);
      const answered = v2[0].received.filter((f) => f.type === 'subscribed');
      for (const f of subs) {
        const a = answered.find((x) => x.roomId === f.roomId);
        if (!a || a.id !== f.id) throw new Error(`${name}: subscribe ${JSON.stringify(f)} answered by ${JSON.stringify(a)}`);
      }
    }
    v2ready = true;
  });

  await scenario('v2: a message in B shows as unread in the other user\'s room list', async () => {
    needV2();
    // both have A open (the first room)
    await openRoom(ann, V2B);
    const first = `first in B ${run}`;
    await send(ann, first);
    await until('Ben: 1 unread in B', async () => (await unreadOf(ben, V2B)) === 1, 10_000).catch((e) => {
      throw new Error(`${e.message}; Ben got chat ${tail(benWs, 'chat')}`);
    });
    if ((await unreadOf(ben, V2A)) !== 0) throw new Error('A shows unread messages');
    await send(ann, `second in B ${run}`);
    await until('Ben: 2 unread in B', async () => (await unreadOf(ben, V2B)) === 2);
    const badge = await ben.textContent(`${roomSel(V2B)} [data-testid="unread"]`);
    if (badge?.trim() !== '2') throw new Error(`Ben's badge says "${badge}"`);
    // the sender's own room list has nothing unread in the room on screen
    await until('Ann: nothing unread in B', async () => (await unreadOf(ann, V2B)) === 0);
    const acks = receivedFrames(annWs, 'ack');
    const chats = sentFrames(annWs, 'chat');
    if (chats.length !== 2 || !chats.every((c) => c.roomId === V2B && typeof c.clientMsgId === 'string' && Number.isInteger(c.id))) throw new Error(`Ann sent ${JSON.stringify(chats)}`);
    await until('both sends acked', async () => receivedFrames(annWs, 'ack').length >= 2, 5_000).catch(() => {
      throw new Error(`acks: ${JSON.stringify(acks)}`);
    });
    for (const c of chats) {
      const a = receivedFrames(annWs, 'ack').find((x) => x.id === c.id);
      if (!a || a.roomId !== V2B || a.duplicate !== false || !Number.isInteger(a.seq)) throw new Error(`chat ${JSON.stringify(c)} acked by ${JSON.stringify(a)}`);
    }
  });

  await scenario('v2: typing in one shows "… is typing" in the other, gone after stop', async () => {
    needV2();
    await openRoom(ann, V2A); // Ben has A open
    const composer = ann.locator('[data-testid="composer"]');
    await composer.click();
    await composer.pressSequentially('hel', { delay: 60 });
    await until('Ben sees Ann typing', async () => (await typingText(ben)) === 'Ann is typing…', 5_000).catch((e) => {
      throw new Error(`${e.message}; Ann sent ${JSON.stringify(sentFrames(annWs, 'typing'))}, Ben got ${tail(benWs, 'typing')}`);
    });
    if ((await typingText(ann)) !== '') throw new Error(`Ann sees "${await typingText(ann)}" about herself`);
    await composer.blur();
    const t0 = Date.now();
    await until('Ben no longer sees Ann typing', async () => (await typingText(ben)) === '', 3_000).catch((e) => {
      throw new Error(`${e.message}; Ann sent ${JSON.stringify(sentFrames(annWs, 'typing'))}, Ben got ${tail(benWs, 'typing')}`);
    });
    console.log(`  typing gone ${Date.now() - t0} ms after the blur`);
    const typing = sentFrames(annWs, 'typing');
    if (!typing.some((f) => f.roomId === V2A && f.stop === true)) throw new Error(`no stop sent: ${JSON.stringify(typing)}`);
    // typing again, then sending, ends it too
    await composer.click();
    await composer.pressSequentially('x', { delay: 30 });
    await until('Ben sees Ann typing again', async () => (await typingText(ben)) === 'Ann is typing…', 5_000);
    await composer.fill('');
    await send(ann, `typed and sent ${run}`);
    await until('typing gone after the send', async () => (await typingText(ben)) === '', 3_000);
  });

  await scenario('v2: opening the room moves the read marker; the other sees "seen by"', async () => {
    needV2();
    await openRoom(ann, V2B);
    if ((await unreadOf(ben, V2B)) !== 2) throw new Error(`Ben has ${await unreadOf(ben, V2B)} unread in B`);
    const seenBy = (page) =>
      page.$$eval('[data-testid="seen-by"]', (els) =>
        els.map((e) => ({ text: e.textContent, seq: e.closest('[data-testid="message"]')?.getAttribute('data-seq'), content: e.closest('[data-testid="message"]')?.querySelector('.msg-content')?.textContent })),
      );
    if ((await seenBy(ann)).length) throw new Error(`a marker before Ben read: ${JSON.stringify(await seenBy(ann))}`);
    await openRoom(ben, V2B);
    await until('Ben: B read', async () => (await unreadOf(ben, V2B)) === 0, 5_000);
    const reads = sentFrames(benWs, 'read').filter((f) => f.roomId === V2B);
    const marks = await until('Ann sees "seen by Ben" under the second message', async () => {
      const m = await seenBy(ann);
      return m.length === 1 && m[0].text === 'seen by Ben' && m[0].content === `second in B ${run}` ? m : null;
    }, 10_000).catch((e) => {
      throw new Error(`${e.message}; Ben sent ${JSON.stringify(reads)}, Ann got ${tail(annWs, 'read')}`);
    });
    console.log(`  marker at seq ${marks[0].seq}`);
    // the marker moves with what Ben reads next
    const third = `third in B ${run}`;
    await send(ann, third);
    await until('the marker moves to the third message', async () => {
      const m = await seenBy(ann);
      return m.length === 1 && m[0].content === third;
    }, 10_000).catch(async (e) => {
      throw new Error(`${e.message}; Ann sees ${JSON.stringify(await seenBy(ann))}, Ben sent ${JSON.stringify(sentFrames(benWs, 'read'))}`);
    });
    if ((await seenBy(ben)).some((m) => m.text.includes('Ben'))) throw new Error('Ben sees his own marker');
    // Ben's marker survives a reload: the server keeps it (subscribed.lastRead)
    await ben.reload();
    await until('Ben back (v2)', async () => (await status(ben)) === 'open');
    await until('Ben subscribed again', async () => (await ben.getAttribute(roomSel(V2B), 'data-state')) === 'subscribed');
    const after = await unreadOf(ben, V2B);
    if (after !== 0) throw new Error(`after a reload Ben has ${after} unread in B (lastRead not kept?): ${JSON.stringify(receivedFrames(benWs, 'subscribed').slice(-2))}`);
  });

  if (RESTART) {
    await scenario('v2: after a server restart both rooms are subscribed again (since, epoch) and chat goes on', async () => {
      needV2();
      await openRoom(ben, V2B);
      const before = await texts(ann);
      const socketsBefore = annWs.length;
      await new Promise((resolve, reject) => {
        const child = exec(RESTART, { shell: '/bin/sh', timeout: 120_000 }, (err) => (err ? reject(new Error(`restart command failed: ${err.message}`)) : resolve()));
        child.stderr?.pipe(process.stderr);
      });
      await until('Ann reconnected', async () => annWs.length > socketsBefore && (await status(ann)) === 'open', 30_000);
      for (const r of [V2A, V2B]) await until(`Ann subscribed to ${r} again`, async () => (await ann.getAttribute(roomSel(r), 'data-state')) === 'subscribed', 10_000);
      await until('Ben back', async () => (await status(ben)) === 'open', 30_000);
      for (const r of [V2A, V2B]) await until(`Ben subscribed to ${r} again`, async () => (await ben.getAttribute(roomSel(r), 'data-state')) === 'subscribed', 10_000);
      const resub = annWs.at(-1).sent.filter((f) => f.type === 'subscribe');
      const b = resub.find((f) => f.roomId === V2B);
      if (!b || !Number.isInteger(b.since) || typeof b.epoch !== 'string') throw new Error(`resubscribe without since/epoch: ${JSON.stringify(resub)}`);
      const answer = annWs.at(-1).received.find((f) => f.type === 'subscribed' && f.roomId === V2B);
      console.log(`  resubscribed B with since=${b.since}; answer epoch ${answer?.epoch} (was ${b.epoch}), recovered=${answer?.recovered}`);
      await ann.waitForTimeout(300);
      const after = await texts(ann);
      for (const t of new Set(before)) if (countOf(after, t) !== countOf(before, t)) throw new Error(`"${t}" shown ${countOf(after, t)} times after the restart`);
      const again = `after the v2 restart ${run}`;
      await send(ann, again);
      await until('Ben sees it once', async () => countOf(await texts(ben), again) === 1, 10_000);
    });
  }

  await scenario('v2: the online list shows the other user, and after they close, offline with a last-seen time', async () => {
    needV2();
    const benOn = await until('Ann lists Ben online', async () => (await v2Members(ann)).find((m) => m.name === 'Ben' && m.online), 10_000).catch(async (e) => {
      throw new Error(`${e.message}; Ann lists ${JSON.stringify(await v2Members(ann))}`);
    });
    const annSelf = (await v2Members(ann)).find((m) => m.name === 'Ann');
    if (!annSelf?.online) throw new Error('Ann does not list herself online');
    await until('Ben lists Ann online', async () => (await v2Members(ben)).some((m) => m.name === 'Ann' && m.online), 10_000);
    const tClose = Date.now();
    await v2ctxB.close();
    benClosed = true;
    const off = await until('Ann lists Ben offline with a last-seen time', async () => {
      const m = (await v2Members(ann)).find((x) => x.userId === benOn.userId);
      return m && !m.online && m.lastSeen && /^last seen /.test(m.lastSeen) ? m : null;
    }, 10_000).catch(async (e) => {
      throw new Error(`${e.message}; Ann lists ${JSON.stringify(await v2Members(ann))}, presence frames ${tail(annWs, 'presence')}`);
    });
    const seenAt = Date.parse(off.lastSeenIso ?? '');
    if (!Number.isFinite(seenAt) || Math.abs(seenAt - tClose) > 30_000) throw new Error(`last seen ${off.lastSeenIso} is not around the close (${new Date(tClose).toISOString()})`);
    console.log(`  Ben: ${off.lastSeen} (${off.lastSeenIso}), shown after ${Date.now() - tClose} ms`);
    // the server says the same
    const body = await (await fetch(`${BASE}/api/presence?users=${encodeURIComponent(benOn.userId)}`)).json();
    const d = body?.users?.[benOn.userId];
    if (!d || d.online !== false || typeof d.lastSeen !== 'string') throw new Error(`/api/presence says ${JSON.stringify(body)}`);
    const online = Number(await ann.textContent('[data-testid="online-count"]'));
    if (online !== 1) throw new Error(`online count ${online} after Ben left`);
    await ann.screenshot({ path: join(ART, 'rooms.png') });
  });
  await v2ctxA.close().catch(() => {});
  if (!benClosed) await v2ctxB.close().catch(() => {});

  // ---- history: a room with more than the 50 messages of the backlog ----
  const HIST = `hist-${run}`;
  const HIST_N = 120;
  let histReady = false;
  await scenario(`history: ${HIST_N} messages sent over a WebSocket, all in the server's history`, async () => {
    const ctx = await browser.newContext({ viewport: DESKTOP });
    try {
      const t0 = Date.now();
      const seqs = await sendMany(await ctx.newPage(), HIST, HIST_N, `history ${run}`);
      expectOneToN(seqs, HIST_N, 'the echoes');
      console.log(`  sent ${HIST_N} in ${Date.now() - t0} ms`);
    } finally {
      await ctx.close();
    }
    const body = await (await fetch(`${BASE}/api/rooms/${encodeURIComponent(HIST)}/messages?limit=200`)).json();
    expectOneToN(body.messages.map((m) => m.seq), HIST_N, 'GET …/messages');
    const bad = await fetch(`${BASE}/api/rooms/${encodeURIComponent(HIST)}/messages?limit=5&before=0`);
    if (bad.status !== 400) throw new Error(`before=0 answered ${bad.status}`);
    histReady = true;
  });

  for (const [view, open] of [
    ['v2 Rooms', async (page) => openRooms(page, 'Dee', [HIST])],
    ['v1 chat', async (page) => joinRoom(page, 'Dee', HIST)],
  ]) {
    await scenario(`history (${view}): the backlog of 50, paged back to "Beginning of the room", every seq once in order`, async () => {
      if (!histReady) throw new Error('skipped: the history room was not filled');
      const ctx = await browser.newContext({ viewport: DESKTOP });
      const page = await ctx.newPage();
      page.on('pageerror', (e) => consoleErrors.push(String(e)));
      try {
        const befores = []; // the history pages the dashboard asks for, in order
        page.on('request', (r) => {
          const u = new URL(r.url());
          if (u.pathname.endsWith('/messages') && u.searchParams.has('before')) befores.push(Number(u.searchParams.get('before')));
        });
        await open(page);
        // the backlog: the newest 50 (the list is at its bottom; scrolling up would page back)
        await until('the backlog shown up to the newest', async () => {
          const rows = (await renderedRows(page)).map(([, seq]) => seq).filter(Number.isFinite);
          return rows.length > 5 && rows.at(-1) === HIST_N && rows.every((s, i) => s === rows[0] + i);
        }, 10_000).catch(async (e) => {
          throw new Error(`${e.message}; rendered ${JSON.stringify(await renderedRows(page))}`);
        });
        if (befores.length) throw new Error(`history asked for before any scrolling: ${JSON.stringify(befores)}`);
        if (await page.$('[data-testid="history-start"]')) throw new Error('"Beginning of the room" before paging back');
        const { clicks, scrolls, moves } = await pageBackToStart(page);
        // what was on screen stays in place while pages go in front of it
        if (moves.length === 0 || !moves.every((m) => typeof m === 'number' && Math.abs(m) <= 2)) throw new Error(`the view jumped when pages were put in front: moved ${JSON.stringify(moves)} px`);
        const marker = (await page.textContent('[data-testid="history-start"]'))?.trim();
        if (marker !== 'Beginning of the room') throw new Error(`marker says "${marker}"`);
        // the backlog was 71..120: pages before 71 (21..70), then before 21 (1..20, the start)
        if (JSON.stringify(befores) !== JSON.stringify([HIST_N - 49, HIST_N - 99])) throw new Error(`pages asked for: before=${JSON.stringify(befores)}`);
        const seqs = await allSeqs(page);
        expectOneToN(seqs, HIST_N, 'the list');
        const texts = await page.$$eval('[data-testid="message"] .msg-content', (els) => els.map((e) => e.textContent));
        if (texts.some((t) => !t?.startsWith(`history ${run} `))) throw new Error(`foreign rows: ${JSON.stringify(texts.slice(0, 3))}`);
        console.log(`  ${view}: pages before=${befores.join(',')}; ${clicks} click(s), ${scrolls} scroll(s) to the top; the row on top moved ${moves.join(', ')} px as a page went in front`);
        if (view === 'v2 Rooms') {
          await page.locator('.msglist').evaluate((el) => (el.scrollTop = 0));
          await page.waitForTimeout(100);
          await page.screenshot({ path: join(ART, 'history.png') });
        }
      } finally {
        await ctx.close();
      }
    });
  }

  // ---- search: GET /api/rooms/{id}/search, the search box of the room on screen ----
  // A room of 120 messages: fillers "filler <run> <i>", and two to find, both older than
  // the backlog of 50 (so that a jump to them pages the history back): a word of their
  // own at seq 10 (the tokenizer splits on anything but letters and digits, so the word
  // is alphanumeric), "Crème brûlée" at seq 5.
  const SRCH = `srch-${run}`;
  const SRCH_N = 120;
  const WORD = `zq${run}x`;
  const WORD_AT = 10;
  const CREME = 'Crème brûlée tonight';
  const CREME_AT = 5;
  let srchReady = false;
  /** The server's search of the room (the dashboard's request, from node). */
  const searchApi = async (q, extra = '') => {
    const r = await fetch(`${BASE}/api/rooms/${encodeURIComponent(SRCH)}/search?q=${encodeURIComponent(q)}${extra}`);
    return { status: r.status, body: await r.json().catch(() => null) };
  };
  /** The message row with `seq`: in the list's view?, flashed?, its text (null: not rendered). */
  const rowState = (page, seq) =>
    page.evaluate((seq) => {
      const list = document.querySelector('.msglist');
      const row = list?.querySelector(`[data-testid="message"][data-seq="${seq}"]`);
      if (!list || !row) return null;
      const a = list.getBoundingClientRect();
      const b = row.getBoundingClientRect();
      return { visible: b.height > 0 && b.bottom > a.top + 1 && b.top < a.bottom - 1, flash: row.getAttribute('data-flash'), text: row.querySelector('.msg-content')?.textContent ?? null };
    }, seq);
  const resultsOf = (page) =>
    page.$$eval('[data-testid="search-result"]', (els) =>
      els.map((e) => ({ seq: Number(e.getAttribute('data-seq')), text: e.querySelector('.search-result-content')?.textContent ?? '', marks: [...e.querySelectorAll('mark')].map((m) => m.textContent) })),
    );
  /** Types `q` in the search box and submits it (Enter, or the Search button); resolves with the results once shown. */
  async function searchIn(page, q, how = 'enter') {
    await page.fill('[data-testid="search-input"]', q);
    if (how === 'enter') await page.press('[data-testid="search-input"]', 'Enter');
    else await page.click('[data-testid="search-submit"]');
    await until(`results for "${q}"`, async () => {
      const st = await page.getAttribute('[data-testid="search-results"]', 'data-status').catch(() => null);
      if (st === 'error') throw new Error(`search error: ${await page.textContent('[data-testid="search-error"]')}`);
      return st === 'done';
    }, 10_000);
    return resultsOf(page);
  }
  /** Clicks the result for `seq` and waits for that message to be in view and flashed. */
  async function jumpTo(page, seq, befores) {
    await page.click(`[data-testid="search-result"][data-seq="${seq}"]`);
    const row = await until(`message ${seq} in view and flashed`, async () => {
      const st = await rowState(page, seq);
      return st && st.visible && st.flash === 'true' ? st : null;
    }, 15_000).catch(async (e) => {
      const jump = await page.getAttribute('[data-testid="search-results"]', 'data-jump').catch(() => null);
      throw new Error(`${e.message}; jump ${jump}, row ${JSON.stringify(await rowState(page, seq))}, pages before=${JSON.stringify(befores)}, rendered ${JSON.stringify((await renderedRows(page)).slice(0, 5))}…`);
    });
    // only that row is flashed, and for a moment
    const flashed = await page.$$eval('[data-flash="true"]', (els) => els.map((e) => e.getAttribute('data-seq')));
    if (flashed.length !== 1 || flashed[0] !== String(seq)) throw new Error(`flashed rows: ${JSON.stringify(flashed)}`);
    await until(`the flash on ${seq} over`, async () => (await page.$('[data-flash="true"]')) === null, 8_000);
    return row;
  }
  /** A page recording the history pages it asks for. */
  async function searchPage() {
    const ctx = await browser.newContext({ viewport: DESKTOP });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    const befores = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.pathname.endsWith('/messages') && u.searchParams.has('before')) befores.push(Number(u.searchParams.get('before')));
    });
    return { ctx, page, befores };
  }
  const backlogShown = (page) =>
    until('the backlog shown up to the newest', async () => {
      const rows = (await renderedRows(page)).map(([, seq]) => seq).filter(Number.isFinite);
      return rows.length > 5 && rows.at(-1) === SRCH_N;
    }, 10_000);

  await scenario('search: a word said in the room is found, highlighted, and clicking it jumps to the message', async () => {
    const texts = Array.from({ length: SRCH_N }, (_, i) => (i + 1 === WORD_AT ? `the secret word is ${WORD} today` : i + 1 === CREME_AT ? CREME : `filler ${run} ${i + 1}`));
    const fill = await browser.newContext({ viewport: DESKTOP });
    try {
      const seqs = await sendTexts(await fill.newPage(), SRCH, texts);
      expectOneToN(seqs, SRCH_N, 'the echoes');
    } finally {
      await fill.close();
    }
    // the index commits every 500 ms: wait until the server finds the word
    const found = await until(`the server's search finding ${WORD}`, async () => {
      const r = await searchApi(WORD);
      if (r.status !== 200) throw new Error(`search answered ${r.status} ${JSON.stringify(r.body)}`);
      return r.body?.messages?.length === 1 ? r.body : null;
    }, 10_000, 200);
    const hit = found.messages[0];
    if (hit.seq !== WORD_AT || hit.content !== texts[WORD_AT - 1] || hit.type !== 'chat' || hit.roomId !== SRCH || typeof hit.messageId !== 'string') throw new Error(`found ${JSON.stringify(found)}`);
    if (found.roomId !== SRCH || found.query !== WORD || found.nextBefore !== null) throw new Error(`answer ${JSON.stringify({ ...found, messages: undefined })}`);
    const none = await searchApi('');
    if (none.status !== 400 || none.body?.error !== 'invalid_query') throw new Error(`an empty query answered ${none.status} ${JSON.stringify(none.body)}`);
    srchReady = true;

    const { ctx, page, befores } = await searchPage();
    try {
      await openRooms(page, 'Sam', [SRCH]);
      await backlogShown(page);
      if (befores.length) throw new Error(`history asked for before the search: ${JSON.stringify(befores)}`);
      // typed and Enter
      const results = await searchIn(page, WORD, 'enter');
      if (results.length !== 1 || results[0].seq !== WORD_AT) throw new Error(`results ${JSON.stringify(results)}`);
      if (results[0].text !== texts[WORD_AT - 1] || JSON.stringify(results[0].marks) !== JSON.stringify([WORD])) throw new Error(`result shown as ${JSON.stringify(results[0])}`);
      if (await page.$('[data-testid="search-more"]')) throw new Error('"More results" for a single match');
      const name = await page.textContent('[data-testid="search-result"] .msg-name');
      if (name !== 'Filler') throw new Error(`result by "${name}"`);
      // seq 10 is older than the backlog (71..120): the history is paged back to it
      const row = await jumpTo(page, WORD_AT, befores);
      if (row.text !== texts[WORD_AT - 1]) throw new Error(`the row says "${row.text}"`);
      if (befores.length < 1 || befores[0] !== SRCH_N - 49) throw new Error(`pages asked for: before=${JSON.stringify(befores)}`);
      console.log(`  found ${WORD} at seq ${WORD_AT}; pages before=${befores.join(',')} to reach it`);
      await page.screenshot({ path: join(ART, 'search.png') });
    } finally {
      await ctx.close();
    }
  });

  await scenario('search: a prefix and accents ("Crème brûlée" found by "creme bru"), in the v1 chat view', async () => {
    if (!srchReady) throw new Error('skipped: the search room was not filled');
    const api = await until('the server finding "creme bru"', async () => {
      const r = await searchApi('creme bru');
      return r.status === 200 && r.body?.messages?.length === 1 ? r.body : null;
    }, 5_000, 200);
    if (api.messages[0].seq !== CREME_AT) throw new Error(`"creme bru" found ${JSON.stringify(api.messages)}`);
    const { ctx, page, befores } = await searchPage();
    try {
      await joinRoom(page, 'Sue', SRCH);
      await backlogShown(page);
      // the Search button this time
      const results = await searchIn(page, 'creme bru', 'button');
      if (results.length !== 1 || results[0].seq !== CREME_AT || results[0].text !== CREME) throw new Error(`results ${JSON.stringify(results)}`);
      // the original characters marked: the whole first word, the prefix of the last
      if (JSON.stringify(results[0].marks) !== JSON.stringify(['Crème', 'brû'])) throw new Error(`marked ${JSON.stringify(results[0].marks)}`);
      const row = await jumpTo(page, CREME_AT, befores);
      if (row.text !== CREME) throw new Error(`the row says "${row.text}"`);
      // the accented query finds the same
      const again = await searchIn(page, 'CRÈME BRÛLÉE', 'enter');
      if (again.length !== 1 || again[0].seq !== CREME_AT || JSON.stringify(again[0].marks) !== JSON.stringify(['Crème', 'brûlée'])) throw new Error(`"CRÈME BRÛLÉE": ${JSON.stringify(again)}`);
    } finally {
      await ctx.close();
    }
  });

  await scenario('search: many matches page on with "More results", newest first; no match says so', async () => {
    if (!srchReady) throw new Error('skipped: the search room was not filled');
    const { ctx, page } = await searchPage();
    try {
      await openRooms(page, 'Sid', [SRCH]);
      // every filler has the run's id as a word: 118 matches, 20 a page
      const first = await searchIn(page, run);
      if (first.length < 2 || first[0].seq !== SRCH_N) throw new Error(`first page ${JSON.stringify(first.map((r) => r.seq))}`);
      if (!(await page.$('[data-testid="search-more"]'))) throw new Error(`no "More results" after ${first.length} of ${SRCH_N - 2}`);
      await page.click('[data-testid="search-more"]');
      const more = await until('a second page of results', async () => {
        const r = await resultsOf(page);
        return r.length > first.length ? r : null;
      }, 10_000);
      const seqs = more.map((r) => r.seq);
      if (seqs.some((s, i) => i > 0 && s >= seqs[i - 1])) throw new Error(`not newest first, once each: ${JSON.stringify(seqs)}`);
      if (seqs.includes(WORD_AT) || seqs.includes(CREME_AT)) throw new Error(`a message without the word: ${JSON.stringify(seqs)}`);
      if (!more.every((r) => r.marks.length === 1 && r.marks[0] === run)) throw new Error(`marks ${JSON.stringify(more.slice(0, 3))}`);
      console.log(`  "${run}": ${first.length} then ${more.length} results`);
      // nothing matches
      await searchIn(page, `nomatch${run}q`);
      await page.waitForSelector('[data-testid="search-empty"]', { timeout: 5_000 });
      if ((await resultsOf(page)).length) throw new Error('results for a word never said');
    } finally {
      await ctx.close();
    }
  });

  await scenario('no uncaught page errors', async () => {
    if (consoleErrors.length) throw new Error(consoleErrors.join('\n'));
  });
} finally {
  await browser.close();
}

for (const r of results) if (r.startsWith('FAIL')) console.error(r);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
