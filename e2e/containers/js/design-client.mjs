// design-client.mjs runs the client code of websocket-infrastructure.md,
// section "2. Client Implementation Guidelines", with socket.io-client 4.8,
// for roomstream's container e2e tests.
//
// The document's code is e2e/node/design-client.js, run verbatim in a vm
// context whose io() points its placeholder URL and token at the system
// under test. Around it, the harness:
//   - defines what that code expects to exist (currentUser, currentRoom,
//     currentFile, updateParticipantsList, updateRoomLockState,
//     updateFileProgressUI), each recording its calls;
//   - records every event the socket receives (socket.onAny) and every
//     connect / disconnect, as JSON lines on stdout;
//   - reads commands as JSON lines on stdin:
//       {"op":"join","roomId":"r"}                       joinRoom(roomId)
//       {"op":"progress","fileId":..,"uploadId":..,"bytes":n,"total":n}
//                                                        reportUploadProgress(...)
//       {"op":"emit","id":n,"event":"e","payload":{..}}  socket.emit with an ack
//       {"op":"set","room":{..},"file":{..}}            currentRoom / currentFile
//       {"op":"exit"}                                    disconnect and exit
//
// Environment: ROOMSTREAM_URL, ROOMSTREAM_TOKEN, USER_ID, USER_NAME.
import { io } from 'socket.io-client';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const SERVER_URL = process.env.ROOMSTREAM_URL;
const TOKEN = process.env.ROOMSTREAM_TOKEN;

function out(obj) {
  process.stdout.write(JSON.stringify({ t: Date.now(), ...obj }) + '\n');
}

// What the design's code refers to; it runs in its own context (a tab).
const ctx = vm.createContext({
  // The snippet's placeholder address and token point at the system under test.
  io: (url, opts) => {
    if (url !== 'https://api.example.com' || opts.auth.token !== 'your-jwt-token') {
      throw new Error('the design snippet changed: ' + url);
    }
    return io(SERVER_URL, { ...opts, auth: { token: TOKEN } });
  },
  // Keep the design's console output off stdout (stdout is the record).
  console: { log: (...a) => process.stderr.write(a.map(String).join(' ') + '\n'), error: (...a) => process.stderr.write(a.map(String).join(' ') + '\n') },
  currentUser: { id: process.env.USER_ID, name: process.env.USER_NAME },
  currentRoom: { id: '' },
  currentFile: { name: '' },
  updateParticipantsList: (data) => out({ kind: 'ui', fn: 'updateParticipantsList', data }),
  updateRoomLockState: (data) => out({ kind: 'ui', fn: 'updateRoomLockState', data }),
  updateFileProgressUI: (data) => out({ kind: 'ui', fn: 'updateFileProgressUI', data }),
});
// The document's code, verbatim (shared with the process suite).
const designFile = fileURLToPath(new URL('../../node/design-client.js', import.meta.url));
vm.runInContext(readFileSync(designFile, 'utf8'), ctx, { filename: designFile });
const socket = vm.runInContext('socket', ctx);
const joinRoom = (roomId) => ctx.joinRoom(roomId);
const reportUploadProgress = (...a) => ctx.reportUploadProgress(...a);

// Harness: record what the client sees.
socket.on('connect', () => out({ kind: 'connect', id: socket.id, recovered: socket.recovered }));
socket.on('disconnect', (reason) => out({ kind: 'disconnect', reason }));
socket.on('connect_error', (err) => out({ kind: 'connect_error', message: err.message, data: err.data }));
socket.onAny((event, ...args) => out({ kind: 'event', name: event, args }));

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ kind: 'harness_error', message: `bad command ${line}` });
    return;
  }
  switch (cmd.op) {
    case 'join':
      ctx.currentRoom = { id: cmd.roomId };
      joinRoom(cmd.roomId);
      break;
    case 'set':
      if (cmd.room) ctx.currentRoom = cmd.room;
      if (cmd.file) ctx.currentFile = cmd.file;
      break;
    case 'progress':
      reportUploadProgress(cmd.fileId, cmd.uploadId, cmd.bytes, cmd.total);
      break;
    case 'emit':
      socket.timeout(cmd.timeout || 10000).emit(cmd.event, cmd.payload, (err, res) => {
        out({ kind: 'ack', ackId: cmd.id, error: err ? String(err.message || err) : null, data: res });
      });
      break;
    case 'exit':
      socket.disconnect();
      setTimeout(() => process.exit(0), 50);
      break;
    default:
      out({ kind: 'harness_error', message: `unknown op ${cmd.op}` });
  }
});
rl.on('close', () => {
  socket.disconnect();
  setTimeout(() => process.exit(0), 50);
});
out({ kind: 'started', node: process.version });
