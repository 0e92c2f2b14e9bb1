// sio.test.mjs tests the demo's Socket.IO client (connector/demo/static/sio.js)
// in node: its packet parser and backoff alone, then its protocol behaviour
// against a real `roomstream dev` (browser_test.go starts it with a 300 ms
// ping interval and a proxy that can cut connections). Every frame the
// client writes is recorded, so the tests check the wire, not only the
// outcome.
//
// Environment: BASE_URL, BOB_URL (through the proxy), DROP_URL, DEAD_URL
// (a port nothing listens on). Without BASE_URL only the offline tests run.

import { test } from 'node:test';
import assert from 'node:assert/strict';

const { decodePacket, Backoff, Socket, ParseError } = await import('../../connector/demo/static/sio.js');

const BASE_URL = process.env.BASE_URL;
const BOB_URL = process.env.BOB_URL || BASE_URL;
const DROP_URL = process.env.DROP_URL;
const DEAD_URL = process.env.DEAD_URL;
const live = { skip: BASE_URL ? false : 'BASE_URL not set' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every WebSocket records the frames it sends and receives.
const frames = [];
const NativeWebSocket = globalThis.WebSocket;
if (NativeWebSocket) {
  globalThis.WebSocket = class RecordingWebSocket extends NativeWebSocket {
    constructor(url) {
      super(url);
      this.log = [];
      frames.push(this.log);
      this.addEventListener('message', (ev) => this.log.push(['in', ev.data]));
    }
    send(data) { this.log.push(['out', data]); super.send(data); }
  };
}

test('decodePacket reads what the server sends', () => {
  assert.deepEqual(decodePacket('0{"sid":"S","pid":"P"}'), { type: 0, nsp: '/', id: undefined, data: { sid: 'S', pid: 'P' } });
  assert.deepEqual(decodePacket('2["user-joined",{"a":1},"1-0"]'), { type: 2, nsp: '/', id: undefined, data: ['user-joined', { a: 1 }, '1-0'] });
  assert.deepEqual(decodePacket('312[{"ok":true}]'), { type: 3, nsp: '/', id: 12, data: [{ ok: true }] });
  assert.deepEqual(decodePacket('4{"message":"no","data":{"code":"invalid_token"}}').data.data, { code: 'invalid_token' });
  assert.deepEqual(decodePacket('2/admin,7["x"]'), { type: 2, nsp: '/admin', id: 7, data: ['x'] });
  assert.deepEqual(decodePacket('1'), { type: 1, nsp: '/', id: undefined, data: undefined });
});

test('decodePacket refuses what the reference client refuses', () => {
  for (const bad of ['', '9', 'x', '2', '2[]', '2{}', '2[{}]', '2["connect"]', '2["disconnect",1]', '3{"a":1}', '3[1]',
    '0[1]', '1"x"', '2[', '51-["e",{"_placeholder":true,"num":0}]']) {
    assert.throws(() => decodePacket(bad), ParseError, `should refuse ${JSON.stringify(bad)}`);
  }
});

test('backoff: 1 s doubling to 5 s, randomized by half', () => {
  for (let run = 0; run < 200; run++) {
    const b = new Backoff(1000, 5000, 0.5);
    const d = [b.duration(), b.duration(), b.duration(), b.duration(), b.duration()];
    assert.ok(d[0] >= 500 && d[0] <= 1500, `first ${d[0]}`);
    assert.ok(d[1] >= 1000 && d[1] <= 3000, `second ${d[1]}`);
    assert.ok(d[2] >= 2000 && d[2] <= 5000, `third ${d[2]}`);
    assert.ok(d.every((x) => x <= 5000), `capped: ${d}`);
    b.reset();
    assert.ok(b.duration() <= 1500, 'reset starts again at 1 s');
  }
});

async function token(name) {
  const res = await fetch(`${BASE_URL}/demo/token`, { method: 'POST', body: JSON.stringify({ name }) });
  assert.equal(res.status, 200);
  return (await res.json()).token;
}

// client connects a Socket and records its events.
function client(url, tok, { connect = true } = {}) {
  const sock = new Socket(url, { auth: { token: tok } });
  const events = [];
  for (const e of ['connect', 'disconnect', 'connect_error', 'reconnect_attempt', 'authentication_successful', 'user-joined', 'user-left', 'room-locked', 'room-unlocked', 'error']) {
    sock.on(e, (...args) => events.push([e, ...args]));
  }
  if (connect) sock.connect();
  return { sock, events, log: () => frames[frames.length - 1] };
}

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('connects with the token, answers pings, gets acks and offsets', live, async () => {
  const a = client(BASE_URL, await token('Proto A'));
  await until('connect', () => a.sock.connected);
  const ws = frames[frames.length - 1];
  assert.equal(ws[0][0], 'in');
  assert.match(ws[0][1], /^0\{"sid":".+","upgrades":\[\],"pingInterval":300,/);
  const connectFrame = ws.find(([d]) => d === 'out')[1];
  assert.match(connectFrame, /^40\{"token":"ey[^"]+"\}$/, 'CONNECT carries only the token');
  assert.equal(a.sock.recovered, false);

  const ack = await a.sock.emitWithAck('join-room', { roomId: 'sio-proto' });
  assert.equal(ack.ok, true);
  assert.ok(ack.room.members.some((m) => m.userId === 'proto-a'));
  assert.ok(ws.some(([d, f]) => d === 'out' && /^420\["join-room",\{"roomId":"sio-proto"\}\]$/.test(f)), 'first ack id is 0');
  assert.ok(ws.some(([d, f]) => d === 'in' && /^430\[\{"ok":true/.test(f)));
  const joined = await until('user-joined', () => a.events.find(([e]) => e === 'user-joined'));
  assert.equal(typeof joined[joined.length - 1], 'string', 'events end with the offset');
  assert.equal(a.sock._lastOffset, joined[joined.length - 1]);

  // 300 ms pings: over 2 s every ping the server sent got its pong.
  await sleep(2000);
  assert.equal(a.sock.connected, true);
  const pings = ws.filter(([d, f]) => d === 'in' && f === '2').length;
  const pongs = ws.filter(([d, f]) => d === 'out' && f === '3').length;
  assert.ok(pings >= 4 && pongs === pings, `pings ${pings}, pongs ${pongs}`);
  assert.ok(!a.events.some(([e]) => e === 'disconnect'), 'no disconnect');

  // A refused command comes back as {ok:false, error:{code, message}}.
  const bad = await a.sock.emitWithAck('lock-room', { roomId: 'not-joined-room' });
  assert.equal(bad.ok, false);
  assert.equal(bad.error.code, 'not_member');
  assert.ok(bad.error.message.length > 0);

  a.sock.disconnect();
  assert.equal(ws[ws.length - 1][1], '41', 'goodbye is a DISCONNECT packet');
});

test('a cut connection reconnects with pid and offset and is recovered', { skip: !BASE_URL || !DROP_URL ? 'BASE_URL or DROP_URL not set' : false }, async () => {
  const a = client(BASE_URL, await token('Rec A'));
  const b = client(BOB_URL, await token('Rec B'));
  await until('both connected', () => a.sock.connected && b.sock.connected);
  assert.equal((await a.sock.emitWithAck('join-room', { roomId: 'sio-rec' })).ok, true);
  assert.equal((await b.sock.emitWithAck('join-room', { roomId: 'sio-rec' })).ok, true);
  await until('A sees B', () => a.events.find(([e, p]) => e === 'user-joined' && p.userId === 'rec-b'));
  const firstSid = b.sock.id;
  const pid = b.sock._pid;
  await until('B has an offset', () => b.sock._lastOffset);

  const res = await fetch(`${DROP_URL}?hold=1500ms`, { method: 'POST' });
  assert.equal(res.status, 200);
  await until('B disconnected', () => b.events.find(([e]) => e === 'disconnect'));
  const reason = b.events.find(([e]) => e === 'disconnect')[1];
  assert.ok(reason === 'transport close' || reason === 'transport error', `reason ${reason}`);
  assert.equal((await a.sock.emitWithAck('lock-room', { roomId: 'sio-rec', reason: 'while B is away' })).ok, true);

  await until('B reconnected', () => b.events.filter(([e]) => e === 'connect').length === 2, 15000);
  assert.equal(b.sock.recovered, true);
  assert.equal(b.sock.id, firstSid, 'same socket id');
  const log = b.log();
  const connect = JSON.parse(log.find(([d]) => d === 'out')[1].slice(2));
  assert.equal(connect.pid, pid);
  assert.equal(typeof connect.offset, 'string');
  assert.ok(connect.token);
  const missed = await until('B gets the lock it missed', () => b.events.filter(([e]) => e === 'room-locked'));
  await sleep(300);
  assert.equal(b.events.filter(([e]) => e === 'room-locked').length, 1, 'exactly once');
  assert.equal(missed[0][1].reason, 'while B is away');
  assert.ok(b.events.some(([e, x]) => e === 'reconnect_attempt' && x.delay >= 500 && x.delay <= 1500));
  assert.ok(!a.events.some(([e, p]) => e === 'user-left' && p.userId === 'rec-b'), 'A never saw B leave');

  b.sock.disconnect();
  await until('A sees B leave at once', () => a.events.find(([e, p]) => e === 'user-left' && p.userId === 'rec-b'), 5000);
  a.sock.disconnect();
});

test('a refused token gives connect_error with its code and no retry', live, async () => {
  const c = client(BASE_URL, 'not-a-token');
  const err = await until('connect_error', () => c.events.find(([e]) => e === 'connect_error'));
  assert.equal(err[1].data.code, 'invalid_token');
  assert.match(err[1].message, /authentication failed/);
  await sleep(1600);
  assert.equal(c.sock.active, false);
  assert.equal(c.events.filter(([e]) => e === 'reconnect_attempt').length, 0);
});

test('an unreachable server is retried with backoff', { skip: DEAD_URL ? false : 'DEAD_URL not set' }, async () => {
  const c = client(DEAD_URL, 'x');
  await until('two attempts', () => c.events.filter(([e]) => e === 'reconnect_attempt').length >= 2, 8000);
  c.sock.disconnect();
  const delays = c.events.filter(([e]) => e === 'reconnect_attempt').map(([, x]) => x.delay);
  assert.ok(delays[0] >= 500 && delays[0] <= 1500 && delays[1] >= 1000 && delays[1] <= 3000, `delays ${delays}`);
  assert.ok(c.events.some(([e]) => e === 'connect_error'));
});
