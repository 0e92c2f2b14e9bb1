// The client code of websocket-infrastructure.md, section 2 ("Client
// Implementation Guidelines"), copied verbatim: its three blocks, in order.
// run-design.js runs it unchanged; it supplies the globals the snippet
// expects (io, currentUser, currentRoom, currentFile, update*UI) and points
// the placeholder URL and token at the system under test.

// Client connection with automatic reconnection
const socket = io('https://api.example.com', {
  path: '/socket.io',
  transports: ['websocket', 'polling'],
  reconnection: true,
  reconnectionAttempts: Infinity,
  reconnectionDelay: 1000,
  reconnectionDelayMax: 5000,
  timeout: 20000,
  auth: {
    token: 'your-jwt-token'
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
