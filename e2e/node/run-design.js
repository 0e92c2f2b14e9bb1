// run-design.js runs the design document's client code (design-client.js,
// unchanged) with the real socket.io-client, as two users on two
// connectors, plus one user with a bad token, and checks what each saw.
//
//   node run-design.js <urlA> <urlB> <aliceToken> <bobToken> <room>
//
// Prints a JSON report on stdout; exits 1 when a check fails.
'use strict';
const vm = require('vm');
const fs = require('fs');
const path = require('path');
const { io: realIo } = require('socket.io-client');

const src = fs.readFileSync(path.join(__dirname, 'design-client.js'), 'utf8');
const [urlA, urlB, tokA, tokB, room] = process.argv.slice(2);
if (!room) {
  console.error('usage: node run-design.js <urlA> <urlB> <aliceToken> <bobToken> <room>');
  process.exit(2);
}

function fmt(v) {
  if (v instanceof Error) return `${v.name}: ${v.message} ${JSON.stringify(v.data || {})}`;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// client evaluates the snippet in its own context, as one browser tab.
function client(name, url, token, userId) {
  const log = [];
  const calls = { participants: [], lock: [], progress: [] };
  const sandbox = {
    io: (u, opts) => {
      if (u !== 'https://api.example.com' || opts.auth.token !== 'your-jwt-token') {
        throw new Error('the design snippet changed: ' + u);
      }
      return realIo(url, { ...opts, auth: { token } });
    },
    console: {
      log: (...a) => log.push(a.map(fmt).join(' ')),
      error: (...a) => log.push('ERROR ' + a.map(fmt).join(' ')),
    },
    currentUser: { id: userId },
    currentRoom: { id: room },
    currentFile: { name: 'spec.pdf' },
    updateParticipantsList: (d) => calls.participants.push(d),
    updateRoomLockState: (d) => calls.lock.push(d),
    updateFileProgressUI: (d) => calls.progress.push(d),
  };
  const ctx = vm.createContext(sandbox);
  vm.runInContext(src, ctx, { filename: 'design-client.js' });
  return { name, log, calls, socket: vm.runInContext('socket', ctx), run: (code) => vm.runInContext(code, ctx) };
}

async function until(what, cond, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out waiting for: ' + what);
}

(async () => {
  const a = client('alice', urlA, tokA, 'alice');
  const b = client('bob', urlB, tokB, 'bob');
  const report = { checks: [] };
  const check = (name) => report.checks.push(name);
  try {
    await until('both connected', () => a.log.includes('Connected to server') && b.log.includes('Connected to server'));
    check('connected');

    a.run('joinRoom(currentRoom.id)');
    await until('alice sees herself join', () => a.calls.participants.some((d) => d.userId === 'alice'));
    b.run('joinRoom(currentRoom.id)');
    await until('alice sees bob join', () => a.log.includes(`Bob joined room ${room}`));
    await until('bob sees himself join', () => b.log.includes(`Bob joined room ${room}`));
    check('joined');

    b.socket.emit('lock-room', { roomId: room, userId: 'bob', reason: 'review' });
    await until('alice sees the lock', () => a.log.includes(`Room ${room} locked by Bob`));
    const lock = a.calls.lock[0];
    if (lock.lockedBy !== 'bob' || lock.reason !== 'review' || !lock.lockedAt) throw new Error('room-locked payload ' + JSON.stringify(lock));
    check('locked');

    const unlocked = new Promise((res) => a.socket.once('room-unlocked', res));
    b.socket.emit('unlock-room', { roomId: room, userId: 'bob' });
    await unlocked;
    check('unlocked');

    a.run("reportUploadProgress('f1', 'u1', 512, 1024)");
    await until('bob sees alice\'s progress', () => b.calls.progress.length > 0);
    const p = b.calls.progress[0];
    if (p.userId !== 'alice' || p.percentage !== 50 || p.fileName !== 'spec.pdf' || p.roomId !== room) {
      throw new Error('progress payload ' + JSON.stringify(p));
    }
    await new Promise((r) => setTimeout(r, 200));
    if (a.calls.progress.length !== 0) throw new Error('alice\'s own progress reached updateFileProgressUI');
    check('progress');

    const bad = client('mallory', urlA, 'not-a-token', 'mallory');
    await until('bad token rejected', () => bad.log.some((l) => l.startsWith('ERROR Connection error:')));
    report.badToken = bad.log.find((l) => l.startsWith('ERROR Connection error:'));
    if (!/authentication failed/.test(report.badToken) || !/invalid_token/.test(report.badToken)) {
      throw new Error('bad token error: ' + report.badToken);
    }
    await new Promise((r) => setTimeout(r, 1500));
    if (bad.socket.connected || bad.log.includes('Connected to server')) throw new Error('bad token connected');
    bad.socket.close();
    check('bad_token');

    a.socket.close();
    b.socket.close();
    report.ok = true;
  } catch (e) {
    report.ok = false;
    report.error = String(e && e.stack || e);
  }
  report.alice = a.log;
  report.bob = b.log;
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.ok ? 0 : 1);
})();
