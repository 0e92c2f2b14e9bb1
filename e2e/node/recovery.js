// recovery.js checks connection state recovery with the real
// socket.io-client: client R (through a load balancer the test can break)
// and client S (straight to another connector) share a room; S sends
// numbered progress events while the test drops R's connection one way or
// another; R must get every event once and in order, and S must see R
// neither leave nor join.
//
//   node recovery.js <urlR> <urlS> <tokenR> <tokenS> <room> <count> <gapMs> [expectAll=1]
//
// Prints {"ready":true} when both are in the room (the test then breaks
// R's connection), then the report as one JSON line. R uses the client's
// default options: recovery is the server's to offer.
'use strict';
const { io } = require('socket.io-client');

const [urlR, urlS, tokR, tokS, room, countArg, gapArg, expectArg = '1'] = process.argv.slice(2);
const count = Number(countArg), gap = Number(gapArg), expectAll = expectArg === '1';
const report = { connects: [], disconnects: [], seqs: [], sSawLeft: [], sSawJoined: [] };

// R_TRANSPORTS (comma-separated) picks R's transports: websocket by
// default, polling to recover a long-polling session.
const r = io(urlR, { transports: (process.env.R_TRANSPORTS || 'websocket').split(','), auth: { token: tokR } });
const s = io(urlS, { transports: ['websocket'], auth: { token: tokS } });
r.on('connect', () => report.connects.push({ id: r.id, recovered: r.recovered, at: Date.now() }));
r.on('disconnect', (reason) => report.disconnects.push({ reason, at: Date.now() }));
r.on('file-upload-progress', (p) => { if (p.userId === 's') report.seqs.push(p.seq); });
let joinedBoth = false;
s.on('user-left', (e) => { if (e.userId === 'r') report.sSawLeft.push(e); });
s.on('user-joined', (e) => { if (e.userId === 'r' && joinedBoth) report.sSawJoined.push(e); });

const ack = (sock, ev, payload) => new Promise((res) => sock.timeout(20000).emit(ev, payload, (err, a) => res(err ? { ok: false, error: String(err) } : a)));
const until = async (what, cond, ms) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (cond()) return true; await new Promise((z) => setTimeout(z, 20)); }
  report.timeout = what;
  return false;
};

(async () => {
  await until('connected', () => r.connected && s.connected, 10000);
  const a1 = await ack(r, 'join-room', { roomId: room });
  const a2 = await ack(s, 'join-room', { roomId: room });
  if (!a1.ok || !a2.ok) { report.error = 'join failed'; finish(1); return; }
  await new Promise((z) => setTimeout(z, 300));
  joinedBoth = true;
  report.idBefore = r.id;
  console.log(JSON.stringify({ ready: true, engine: r.io.engine.id, transport: r.io.engine.transport.name }));
  let refused = 0;
  for (let seq = 1; seq <= count; seq++) {
    const res = await ack(s, 'file-upload-progress', { fileId: 'f', uploadId: 'u', fileName: 'x.bin', roomId: room,
      bytesUploaded: seq, totalBytes: count, percentage: seq * 100 / count, seq });
    if (!res.ok) refused++;
    await new Promise((z) => setTimeout(z, gap));
  }
  report.refused = refused;
  if (expectAll) await until('R receives every event', () => report.seqs.length >= count && r.connected, 30000);
  else await until('R reconnects', () => r.connected, 30000);
  await new Promise((z) => setTimeout(z, 500)); // a late duplicate would show now
  report.idAfter = r.id;
  finish(0);
})();

// finish prints the report, says goodbye on both sockets and exits once
// their WebSockets have closed: the server answers the close frame only
// after it has read the DISCONNECT before it, so nobody is left in the
// room waiting out the recovery window (at most 3 s).
function finish(code) {
  console.log(JSON.stringify(report));
  const closed = [r, s].map((sock) => {
    const ws = sock.io.engine && sock.io.engine.transport && sock.io.engine.transport.ws;
    if (!ws || ws.readyState === 3) return Promise.resolve();
    return new Promise((done) => ws.addEventListener('close', done));
  });
  r.close();
  s.close();
  Promise.race([Promise.all(closed), new Promise((done) => setTimeout(done, 3000))]).then(() => process.exit(code));
}
