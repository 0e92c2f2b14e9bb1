// The Node stack roomstream is compared with: socket.io 4.8 with
// @socket.io/redis-streams-adapter, several processes sharing one Redis.
// It implements what `roombench` exercises, the way a small Node
// service following websocket-infrastructure.md would:
//
//   - auth: an HS256 JWT in the handshake auth ({token}); sub is the user
//     id, name the user name (the same tokens roomstream accepts);
//   - join-room {roomId}: the socket joins, the room hears user-joined,
//     the ack says {ok: true};
//   - leave-room {roomId}: the socket leaves, the room hears user-left;
//   - file-upload-progress {...}: relayed to the whole room (sender
//     included, as roomstream does) with the user's id and name from the
//     token; a socket that is not in the room gets an `error` event.
//
// Connection state recovery is on (2 minutes, like roomstream's default
// recovery window), so events carry an offset as roomstream's do.
//
// Environment: PORT, REDIS_URL, JWT_SECRET.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-streams-adapter');
const { createClient } = require('redis');

const port = Number(process.env.PORT || 3000);
const secret = process.env.JWT_SECRET || '';
if (secret.length < 16) {
  console.error('JWT_SECRET must be set to at least 16 characters');
  process.exit(2);
}

function b64url(buf) {
  return buf.toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

// verify checks an HS256 token and returns {userId, userName} or throws.
function verify(token) {
  if (typeof token !== 'string') throw new Error('invalid_token');
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('invalid_token');
  const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
  if (header.alg !== 'HS256') throw new Error('invalid_token');
  const sig = b64url(crypto.createHmac('sha256', secret).update(parts[0] + '.' + parts[1]).digest());
  const a = Buffer.from(sig);
  const b = Buffer.from(parts[2]);
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) throw new Error('invalid_token');
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) throw new Error('expired_token');
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new Error('invalid_token');
  return { userId: claims.sub, userName: claims.name || claims.sub };
}

function validRoom(p) {
  return p && typeof p.roomId === 'string' && p.roomId.length > 0 && p.roomId.length <= 128;
}

async function main() {
  const redisClient = createClient({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' });
  redisClient.on('error', (err) => console.error('redis:', err.message));
  await redisClient.connect();

  const httpServer = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    res.writeHead(404);
    res.end();
  });

  const io = new Server(httpServer, {
    adapter: createAdapter(redisClient),
    connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: false },
    pingInterval: 25000,
    pingTimeout: 20000,
    cors: { origin: '*' },
  });

  io.use((socket, next) => {
    try {
      socket.data.user = verify(socket.handshake.auth && socket.handshake.auth.token);
      next();
    } catch (e) {
      const err = new Error('authentication failed: ' + e.message);
      err.data = { code: e.message };
      next(err);
    }
  });

  io.on('connection', (socket) => {
    const { userId, userName } = socket.data.user;

    socket.on('join-room', (p, ack) => {
      if (!validRoom(p)) {
        const error = { code: 'invalid_payload', message: 'roomId is required' };
        if (typeof ack === 'function') ack({ ok: false, error });
        else socket.emit('error', error);
        return;
      }
      socket.join(p.roomId);
      io.to(p.roomId).emit('user-joined', { roomId: p.roomId, userId, userName, joinedAt: new Date().toISOString() });
      if (typeof ack === 'function') ack({ ok: true });
    });

    socket.on('leave-room', (p, ack) => {
      if (!validRoom(p)) return;
      socket.leave(p.roomId);
      io.to(p.roomId).emit('user-left', { roomId: p.roomId, userId, userName, leftAt: new Date().toISOString(), reason: 'left' });
      if (typeof ack === 'function') ack({ ok: true });
    });

    socket.on('file-upload-progress', (p, ack) => {
      if (!validRoom(p) || !socket.rooms.has(p.roomId)) {
        const error = { code: 'not_member', message: 'join the room first' };
        if (typeof ack === 'function') ack({ ok: false, error });
        else socket.emit('error', error);
        return;
      }
      io.to(p.roomId).emit('file-upload-progress', Object.assign({}, p, { userId, userName }));
      if (typeof ack === 'function') ack({ ok: true, uploadId: p.uploadId });
    });
  });

  httpServer.listen(port, '127.0.0.1', () => console.log(`node peer listening on 127.0.0.1:${port}`));

  const stop = () => {
    io.close();
    redisClient.quit().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
