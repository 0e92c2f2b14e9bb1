// demo.mjs drives the roomstream demo page in Debian's chromium through
// playwright-core: Alice (desktop) and Bob (phone width, through a TCP
// proxy the Go test can cut) share a room. It checks presence, the lock,
// a refused command shown as a message, connection state recovery, an
// upload whose progress Bob watches, the file list and download, and
// Bob leaving when his page closes. browser_test.go runs it against a
// real `roomstream dev`; it exits 1 with the reason on the first failure.
//
// Environment: BASE_URL (Alice's origin), BOB_URL (Bob's origin, default
// BASE_URL), DROP_URL (POST cuts Bob's connections; optional), ARTIFACTS
// (screenshot folder), CHROMIUM (browser binary), FILE_MB (upload size),
// EXPECT_TRANSPORT (websocket or polling: where both pages must end up),
// LEAVE_MS (how soon Alice must see Bob leave after his page closed).

import { chromium } from 'playwright-core';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const BASE_URL = need('BASE_URL');
const BOB_URL = process.env.BOB_URL || BASE_URL;
const DROP_URL = process.env.DROP_URL || '';
const ARTIFACTS = process.env.ARTIFACTS || path.join(path.dirname(new URL(import.meta.url).pathname), 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FILE_MB = Number(process.env.FILE_MB || 5);
const ROOM = `e2e-${randomBytes(4).toString('hex')}`;
const EXPECT_TRANSPORT = process.env.EXPECT_TRANSPORT || '';
const LEAVE_MS = Number(process.env.LEAVE_MS || 10000);
const T = 15000; // default wait

function need(name) {
  const v = process.env[name];
  if (!v) { console.error(`${name} is not set`); process.exit(2); }
  return v;
}

const t0 = Date.now();
const figures = {};
function step(msg) { console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`); }
function check(cond, msg) { if (!cond) throw new Error(`check failed: ${msg}`); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The browser logs failed WebSocket handshakes as console errors; they are
// expected while Bob's connection is cut (and so are failed polling
// requests: a request cut mid-way, or sent on a socket the proxy closed).
const expectedConsole = [/WebSocket connection to .* failed/i, /ERR_(CONNECTION_(RESET|REFUSED|CLOSED)|SOCKET_NOT_CONNECTED|EMPTY_RESPONSE)/i];

function watchConsole(page, who, problems) {
  page.on('pageerror', (err) => problems.push(`${who} page error: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    if (expectedConsole.some((re) => re.test(text))) return;
    problems.push(`${who} console error: ${text}`);
  });
}

async function signIn(page, url, name, { keyboard = false } = {}) {
  await page.goto(url + '/');
  await page.locator('#signin').waitFor({ state: 'visible', timeout: T });
  if (keyboard) {
    await page.keyboard.press('Tab'); // skip link
    await page.locator('#name').focus();
    await page.keyboard.type(name);
    await page.keyboard.press('Enter');
  } else {
    await page.fill('#name', name);
    await page.click('#signin-form button[type=submit]');
  }
  await page.locator('#lobby').waitFor({ state: 'visible', timeout: T });
  await page.locator('#conn[data-state=connected]').waitFor({ timeout: T });
}

async function joinRoom(page, room, userId) {
  await page.fill('#room', room);
  await page.press('#room', 'Enter');
  await page.locator('#room-view').waitFor({ state: 'visible', timeout: T });
  await page.locator(`#people li[data-user-id="${userId}"]`).waitFor({ timeout: T });
}

async function text(page, sel) { return (await page.locator(sel).textContent()) || ''; }

async function drop(holdMs) {
  const res = await fetch(`${DROP_URL}?hold=${holdMs}ms`, { method: 'POST' });
  check(res.ok, `drop endpoint answered ${res.status}`);
  return (await res.json()).dropped;
}

async function shoot(page, name) {
  if (page.isClosed()) return;
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  step(`screenshot ${file}`);
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const problems = [];
  const alice = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const bobCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const bob = await bobCtx.newPage();
  watchConsole(alice, 'alice', problems);
  watchConsole(bob, 'bob', problems);
  let failed = null;
  try {
    await run(alice, bob);
    check(problems.length === 0, `no unexpected browser errors, got:\n  ${problems.join('\n  ')}`);
  } catch (err) {
    failed = err;
    await shoot(alice, 'failure-alice.png').catch(() => {});
    await shoot(bob, 'failure-bob.png').catch(() => {});
  } finally {
    await browser.close();
  }
  writeFileSync(path.join(ARTIFACTS, 'figures.json'), JSON.stringify(figures, null, 2));
  if (failed) {
    console.error(`FAIL: ${failed.stack || failed}`);
    if (problems.length) console.error(`browser errors:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`figures ${JSON.stringify(figures)}`);
  console.log('PASS');
}

async function run(alice, bob) {
  step(`room ${ROOM}; Alice at ${BASE_URL}, Bob at ${BOB_URL}`);

  // Presence.
  await signIn(alice, BASE_URL, 'Alice', { keyboard: true });
  await joinRoom(alice, ROOM, 'alice');
  check((await alice.evaluate(() => location.hash)) === `#room=${ROOM}`, 'the address names the room');
  await signIn(bob, BOB_URL, 'Bob');
  await joinRoom(bob, ROOM, 'bob');
  await bob.locator('#people li[data-user-id="alice"]').waitFor({ timeout: T });
  await alice.locator('#people li[data-user-id="bob"]').waitFor({ timeout: T });
  check((await text(alice, '#people-count')) === '2', 'Alice counts 2 people');
  step('both see each other');

  // Phone width: nothing wider than the screen.
  const overflow = await bob.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, `Bob's phone-width page scrolls sideways by ${overflow}px`);

  // The lock, by keyboard.
  await alice.locator('#lock-reason').focus();
  await alice.keyboard.type('Reviewing the draft');
  await alice.keyboard.press('Enter');
  await bob.locator('#lock-state[data-locked=true]').waitFor({ timeout: T });
  const lockText = await text(bob, '#lock-state');
  check(/Locked by Alice/.test(lockText) && /Reviewing the draft/.test(lockText), `Bob sees who locked and why: ${lockText}`);
  check(await bob.locator('#lock-btn').isDisabled(), "Bob's lock button is disabled");
  check(await bob.locator('#unlock-btn').isDisabled(), "Bob's unlock button is disabled");
  await alice.locator('#unlock-btn:not([disabled])').waitFor({ timeout: T });
  check(/\(you\)/.test(await text(alice, '#lock-state')), 'Alice is told she holds the lock');
  step('Bob sees the lock');

  // A refused command becomes a readable message.
  await bob.setInputFiles('#file', { name: 'refused.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
  await bob.click('#upload-btn');
  await bob.locator('#alert-list li', { hasText: 'room_locked' }).waitFor({ timeout: T });
  const alertText = await text(bob, '#alert-list');
  check(/locked by Alice/i.test(alertText), `Bob's message says who holds the lock: ${alertText}`);
  await bob.locator('#alert-list li button').first().click();
  step(`Bob's refused upload is explained: ${alertText.replace(/Dismiss$/, '')}`);

  // Connection state recovery: Bob's connection is cut (no close frame)
  // and kept out for 2.5 s; Alice unlocks meanwhile; Bob comes back
  // recovered and gets the unlock he missed. Alice never sees him leave.
  if (DROP_URL) {
    const dropped = await drop(2500);
    const cutAt = Date.now();
    step(`cut Bob's connections (${dropped})`);
    await bob.locator('#conn[data-state=reconnecting]').waitFor({ timeout: T });
    check(await bob.locator('#lock-btn').isDisabled(), 'controls are disabled while reconnecting');
    await alice.click('#unlock-btn');
    await alice.locator('#lock-state[data-locked=false]').waitFor({ timeout: T });
    await bob.locator('#conn[data-state=recovered]').waitFor({ timeout: 20000 });
    figures.recoveryMs = Date.now() - cutAt;
    await bob.locator('#lock-state[data-locked=false]').waitFor({ timeout: T });
    check(await alice.locator('#people li[data-user-id="bob"]').count() === 1, 'Alice still sees Bob');
    check(!/Bob left/.test(await text(alice, '#log')), 'Alice never saw Bob leave');
    step(`Bob recovered after ${figures.recoveryMs} ms and saw the unlock he missed`);
  } else {
    await alice.click('#unlock-btn');
    await bob.locator('#lock-state[data-locked=false]').waitFor({ timeout: T });
  }

  // Alice locks again and uploads a few MB; Bob watches the progress bar.
  await alice.fill('#lock-reason', 'Uploading the report');
  await alice.click('#lock-btn');
  await bob.locator('#lock-state[data-locked=true]').waitFor({ timeout: T });
  const content = randomBytes(FILE_MB * 1024 * 1024);
  const sha = createHash('sha256').update(content).digest('hex');
  const fileName = `report-${FILE_MB}MB.bin`;
  await alice.setInputFiles('#file', { name: fileName, mimeType: 'application/octet-stream', buffer: content });
  // Bob's page samples the bar itself, every 20 ms: sampling it from here
  // takes a few round trips per look, too slow on a busy machine.
  await bob.evaluate(() => {
    window.__barSeen = [];
    setInterval(() => {
      const bar = document.querySelector('#uploads li[data-user-id="alice"] progress');
      const v = bar ? Number(bar.getAttribute('value')) : NaN;
      if (Number.isFinite(v) && window.__barSeen[window.__barSeen.length - 1] !== v) window.__barSeen.push(v);
    }, 20);
  });
  const upStart = Date.now();
  await alice.click('#upload-btn');
  const bar = bob.locator('#uploads li[data-user-id="alice"] progress');
  await bar.waitFor({ timeout: T });
  let meta = '';
  let shot = false;
  while (await bob.locator(`#files li a:text-is("${fileName}")`).count() === 0) {
    check(Date.now() - upStart < 60000, 'the upload ends within 60 s');
    if (await bar.count()) {
      // Short timeouts: the bar goes away when the upload ends, and
      // playwright would otherwise wait 30 s for it to come back.
      const v = Number(await bar.getAttribute('value', { timeout: 500 }).catch(() => NaN));
      const m = await bob.locator('#uploads li[data-user-id="alice"] .meta').textContent({ timeout: 500 }).catch(() => '');
      if (m && /\/s/.test(m) && /left/.test(m) && !/unknown/.test(m)) meta = m;
      if (!shot && v > 30 && v < 90) { shot = true; await shoot(bob, 'bob-progress.png'); await shoot(alice, 'alice-progress.png'); }
    }
    await sleep(100);
  }
  const seen = await bob.evaluate(() => window.__barSeen);
  figures.uploadMs = Date.now() - upStart;
  figures.uploadBytes = content.length;
  figures.progressValuesSeenByBob = seen.map((v) => Math.round(v));
  const moving = seen.filter((v) => v > 0 && v < 100);
  check(moving.length >= 3, `Bob saw the bar move (values between 0 and 100: ${seen.join(', ')})`);
  check(moving.every((v, i) => i === 0 || v >= moving[i - 1]), `the bar never went back: ${seen.join(', ')}`);
  check(meta !== '', 'Bob saw a speed and a time remaining');
  step(`Bob saw the bar at ${figures.progressValuesSeenByBob.join(' → ')} (last detail: ${meta})`);

  // The file is in both lists, and what Bob downloads is what Alice sent.
  await alice.locator(`#files li a:text-is("${fileName}")`).waitFor({ timeout: T });
  check(await bob.locator('#uploads li').count() === 0, "Bob's uploads in progress are empty again");
  const fileMeta = await text(bob, '#files li');
  check(/5\.0 MiB|by Alice/.test(fileMeta), `Bob's file line shows size and uploader: ${fileMeta}`);
  const href = await bob.locator(`#files li a:text-is("${fileName}")`).getAttribute('href');
  const got = await bob.evaluate(async (h) => {
    const r = await fetch(h);
    const b = await r.arrayBuffer();
    const d = await crypto.subtle.digest('SHA-256', b);
    return { status: r.status, size: b.byteLength, sha: [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join(''), disposition: r.headers.get('content-disposition') };
  }, href);
  check(got.status === 200 && got.size === content.length && got.sha === sha, `download matches the upload: ${JSON.stringify(got)}`);
  check(/attachment/.test(got.disposition || ''), 'the file is served as an attachment');
  step(`${fileName} is in both lists; Bob downloaded it intact (${got.size} bytes)`);

  await alice.click('#unlock-btn');
  await bob.locator('#lock-state[data-locked=false]').waitFor({ timeout: T });
  if (EXPECT_TRANSPORT) {
    for (const [who, page] of [['Alice', alice], ['Bob', bob]]) {
      const tr = await page.evaluate(() => window.roomstreamDemo.sock.io.engine.transport.name);
      check(tr === EXPECT_TRANSPORT, `${who}'s page is on ${tr}, want ${EXPECT_TRANSPORT}`);
    }
    figures.transport = EXPECT_TRANSPORT;
    step(`both pages are on ${EXPECT_TRANSPORT}`);
  }
  await shoot(alice, 'alice.png');
  await shoot(bob, 'bob.png');

  // Bob closes his page: on a WebSocket the browser says goodbye (1001)
  // and Alice sees him leave at once; a polling page just drops its poll,
  // and he leaves when his recovery window ends.
  const closeAt = Date.now();
  await bob.close();
  await alice.locator('#people li[data-user-id="bob"]').waitFor({ state: 'detached', timeout: LEAVE_MS });
  figures.leaveMs = Date.now() - closeAt;
  check((await text(alice, '#people-count')) === '1', 'Alice counts 1 person');
  check(/Bob left/.test(await text(alice, '#log')), "Alice's activity log says Bob left");
  step(`Alice saw Bob leave ${figures.leaveMs} ms after his page closed`);
  await shoot(alice, 'alice-after-bob-left.png');
}

main().catch((err) => { console.error(`FAIL: ${err.stack || err}`); process.exit(1); });
