// polling.js runs two users of the real socket.io-client through one
// load balancer and checks the room flow: join, lock, unlock, an upload
// with numbered progress events, file-added; every event once and in
// order. The mode picks the client's options:
//
//   default  io(url, { auth })                      (polling first, then the upgrade)
//   polling  io(url, { transports: ['polling'], auth })
//   design   the design document's options plus tryAllTransports: true
//
//   node polling.js <url> <aliceToken> <bobToken> <room> <mode> <count>
//
// Prints the report as one JSON line; exits 1 when a step fails.
'use strict';
const { io } = require('socket.io-client');

const [url, tokA, tokB, room, mode, countArg] = process.argv.slice(2);
const count = Number(countArg || 30);
const design = {
  path: '/socket.io',
  transports: ['websocket', 'polling'],
  reconnection: true,
  reconnectionAttempts: Infinity,
  reconnectionDelay: 1000,
  reconnectionDelayMax: 5000,
  timeout: 20000,
  tryAllTransports: true,
};
const opts = { default: {}, polling: { transports: ['polling'] }, design }[mode];
if (!opts) {
  console.error('usage: node polling.js <url> <aliceToken> <bobToken> <room> <default|polling|design> <count>');
  process.exit(2);
}

const names = ['user-joined', 'user-left', 'room-locked', 'room-unlocked', 'file-upload-started',
  'file-upload-progress', 'file-added', 'error'];
function client(name, token) {
  const s = io(url, { ...opts, auth: { token } });
  const c = { name, s, events: [], seqs: [], transports: [], disconnects: [], errors: [] };
  for (const n of names) {
    s.on(n, (d) => {
      c.events.push(n);
      if (n === 'file-upload-progress') c.seqs.push(d.seq);
    });
  }
  // The manager opened its engine already: record where it starts and
  // every upgrade (which can come before the Socket.IO connect).
  const watch = (engine) => {
    c.transports.push('open:' + engine.transport.name);
    engine.on('upgrade', (t) => c.transports.push('upgrade:' + t.name));
  };
  let engine = s.io.engine;
  watch(engine);
  s.io.on('open', () => { if (s.io.engine !== engine) { engine = s.io.engine; watch(engine); } }); // reconnected
  s.on('connect', () => c.transports.push('connect:' + s.io.engine.transport.name));
  s.on('disconnect', (reason) => c.disconnects.push(reason));
  s.on('connect_error', (e) => c.errors.push(e.message));
  return c;
}

const ack = (sock, ev, payload) => new Promise((res) => sock.timeout(20000).emit(ev, payload, (err, a) => res(err ? { ok: false, error: String(err) } : a)));
async function until(what, cond, ms = 20000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return;
    await new Promise((z) => setTimeout(z, 20));
  }
  throw new Error('timed out waiting for: ' + what);
}
const must = (what, a) => { if (!a || !a.ok) throw new Error(what + ': ' + JSON.stringify(a)); return a; };

(async () => {
  const a = client('alice', tokA);
  const b = client('bob', tokB);
  const report = { mode, checks: [] };
  try {
    await until('both connected', () => a.s.connected && b.s.connected);
    report.checks.push('connected');
    must('alice joins', await ack(a.s, 'join-room', { roomId: room }));
    must('bob joins', await ack(b.s, 'join-room', { roomId: room }));
    await until('alice sees bob join', () => a.events.filter((n) => n === 'user-joined').length >= 2);
    report.checks.push('joined');
    must('bob locks', await ack(b.s, 'lock-room', { roomId: room, reason: 'review' }));
    await until('alice sees the lock', () => a.events.includes('room-locked'));
    must('bob unlocks', await ack(b.s, 'unlock-room', { roomId: room }));
    await until('alice sees the unlock', () => a.events.includes('room-unlocked'));
    report.checks.push('locked');
    const started = must('upload starts', await ack(a.s, 'file-upload-started', { fileId: 'f1', fileName: 'a.bin', roomId: room, size: count }));
    const uploadId = (started.upload && started.upload.uploadId) || started.uploadId || 'u1';
    // Sent without waiting for each ack: the polling client batches them.
    const acks = [];
    for (let seq = 1; seq <= count; seq++) {
      acks.push(ack(a.s, 'file-upload-progress', { fileId: 'f1', uploadId, fileName: 'a.bin', roomId: room,
        bytesUploaded: seq, totalBytes: count, percentage: (seq * 100) / count, seq }));
    }
    for (const r of await Promise.all(acks)) must('progress', r);
    await until('bob sees every progress event', () => b.seqs.length >= count);
    report.checks.push('progress');
    must('upload completes', await ack(a.s, 'file-upload-completed', { fileId: 'f1', fileName: 'a.bin', roomId: room, size: count }));
    await until('bob sees file-added', () => b.events.includes('file-added'));
    report.checks.push('file-added');
    await new Promise((z) => setTimeout(z, 1000)); // a late duplicate or upgrade shows now
    report.alice = { events: a.events, seqs: a.seqs, transports: a.transports, disconnects: a.disconnects, errors: a.errors, final: a.s.io.engine.transport.name };
    report.bob = { events: b.events, seqs: b.seqs, transports: b.transports, disconnects: b.disconnects, errors: b.errors, final: b.s.io.engine.transport.name };
    report.ok = true;
  } catch (e) {
    report.ok = false;
    report.error = String((e && e.stack) || e);
    report.alice = { events: a.events, transports: a.transports, disconnects: a.disconnects, errors: a.errors };
    report.bob = { events: b.events, transports: b.transports, disconnects: b.disconnects, errors: b.errors };
  }
  console.log(JSON.stringify(report));
  a.s.close();
  b.s.close();
  setTimeout(() => process.exit(report.ok ? 0 : 1), 300);
})();
