// design-client.mjs runs the client code of websocket-infrastructure.md,
// section "2. Client Implementation Guidelines", with socket.io-client 4.8,
// for roomstream's container e2e tests.
//
// The three blocks between the DESIGN markers are the document's code,
// unchanged apart from the URL and the token. Around them, the harness:
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

const URL = process.env.ROOMSTREAM_URL;
const TOKEN = process.env.ROOMSTREAM_TOKEN;

function out(obj) {
  process.stdout.write(JSON.stringify({ t: Date.now(), ...obj }) + '\n');
}

// What the design's code refers to.
const currentUser = { id: process.env.USER_ID, name: process.env.USER_NAME };
let currentRoom = { id: '' };
let currentFile = { name: '' };
function updateParticipantsList(data) { out({ kind: 'ui', fn: 'updateParticipantsList', data }); }
function updateRoomLockState(data) { out({ kind: 'ui', fn: 'updateRoomLockState', data }); }
function updateFileProgressUI(data) { out({ kind: 'ui', fn: 'updateFileProgressUI', data }); }

// Keep the design's console output off stdout (stdout is the record).
console.log = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
console.error = console.log;

// ---- DESIGN: Connection Setup ----
// Client connection with automatic reconnection
const socket = io(URL, {
  path: '/socket.io',
  transports: ['websocket', 'polling'],
  reconnection: true,
  reconnectionAttempts: Infinity,
  reconnectionDelay: 1000,
  reconnectionDelayMax: 5000,
  timeout: 20000,
  auth: {
    token: TOKEN
  }
});

// Connection event handlers
socket.on('connect', () => {
  console.log('Connected to server');
});

socket.on('connect_error', (error) => {
  console.error('Connection error:', error);
});

socket.on('disconnect', (reason) => {
  console.log('Disconnected:', reason);
});
// ---- END DESIGN ----

// ---- DESIGN: Room Interaction Pattern ----
// Join a room
function joinRoom(roomId) {
  socket.emit('join-room', { roomId, userId: currentUser.id });
}

// Listen for room events
socket.on('user-joined', (data) => {
  console.log(`${data.userName} joined room ${data.roomId}`);
  updateParticipantsList(data);
});

socket.on('room-locked', (data) => {
  console.log(`Room ${data.roomId} locked by ${data.lockedByName}`);
  updateRoomLockState(data);
});
// ---- END DESIGN ----

// ---- DESIGN: File Upload Monitoring ----
// Report upload progress
function reportUploadProgress(fileId, uploadId, bytesUploaded, totalBytes) {
  socket.emit('file-upload-progress', {
    fileId,
    uploadId,
    fileName: currentFile.name,
    roomId: currentRoom.id,
    userId: currentUser.id,
    bytesUploaded,
    totalBytes,
    percentage: (bytesUploaded / totalBytes) * 100
  });
}

// Listen for other users' uploads
socket.on('file-upload-progress', (data) => {
  if (data.userId !== currentUser.id) {
    updateFileProgressUI(data);
  }
});
// ---- END DESIGN ----

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
      currentRoom = { id: cmd.roomId };
      joinRoom(cmd.roomId);
      break;
    case 'set':
      if (cmd.room) currentRoom = cmd.room;
      if (cmd.file) currentFile = cmd.file;
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
