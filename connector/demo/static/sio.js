// sio.js: a small Socket.IO v4 client (Engine.IO v4 over WebSocket only),
// written for the roomstream demo. It follows the reference client
// (socket.io-client 4.8) where the page can notice: the CONNECT with auth,
// pongs for pings, acknowledgements, connection state recovery (pid and
// offset), buffering of events that arrive before CONNECT, and reconnection
// with randomized exponential backoff. Binary packets, namespaces other
// than "/" and HTTP long-polling are not supported.

const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

// Socket.IO packet types.
const CONNECT = 0, DISCONNECT = 1, EVENT = 2, ACK = 3, CONNECT_ERROR = 4;

export class ParseError extends Error {}

// decodePacket parses a Socket.IO packet (the text after the Engine.IO
// message type '4') and checks that its data has the shape its type needs.
export function decodePacket(str) {
  if (str.length === 0) throw new ParseError('empty packet');
  const type = str.charCodeAt(0) - 48;
  if (!(type >= 0 && type <= 6)) throw new ParseError(`unknown packet type ${str[0]}`);
  if (type === 5 || type === 6) throw new ParseError('binary packets are not supported');
  let i = 1;
  let nsp = '/';
  if (str[i] === '/') {
    const j = str.indexOf(',', i);
    if (j < 0) { nsp = str.slice(i); i = str.length; } else { nsp = str.slice(i, j); i = j + 1; }
  }
  let id;
  const digits = /^\d+/.exec(str.slice(i));
  if (digits) {
    id = Number(digits[0]);
    i += digits[0].length;
  }
  let data;
  if (i < str.length) {
    try { data = JSON.parse(str.slice(i)); } catch { throw new ParseError('packet data is not JSON'); }
  }
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  switch (type) {
    case CONNECT:
      if (data !== undefined && !isObject(data)) throw new ParseError('CONNECT data must be an object');
      break;
    case DISCONNECT:
      if (data !== undefined) throw new ParseError('DISCONNECT carries no data');
      break;
    case CONNECT_ERROR:
      if (!isObject(data) && typeof data !== 'string') throw new ParseError('CONNECT_ERROR data must be an object');
      break;
    case EVENT:
      if (!Array.isArray(data) || data.length === 0) throw new ParseError('EVENT data must be a non-empty array');
      if (!(typeof data[0] === 'number' || (typeof data[0] === 'string' && !RESERVED.has(data[0])))) {
        throw new ParseError('EVENT name must be a string that is not reserved');
      }
      break;
    case ACK:
      if (!Array.isArray(data)) throw new ParseError('ACK data must be an array');
      if (id === undefined) throw new ParseError('ACK without an id');
      break;
  }
  return { type, nsp, id, data };
}

// Backoff is the reference client's: min * 2^attempt, randomized by
// +-factor, capped at max.
export class Backoff {
  constructor(min = 1000, max = 5000, jitter = 0.5) {
    this.min = min; this.max = max; this.jitter = jitter; this.attempts = 0;
  }
  duration() {
    let ms = this.min * Math.pow(2, this.attempts++);
    if (this.jitter) {
      const rand = Math.random();
      const deviation = Math.floor(rand * this.jitter * ms);
      ms = (Math.floor(rand * 10) & 1) === 0 ? ms - deviation : ms + deviation;
    }
    return Math.min(ms, this.max) | 0;
  }
  reset() { this.attempts = 0; }
}

// Socket is one Socket.IO connection to the main namespace.
//
// Events it emits to listeners: 'connect' (this.recovered says whether the
// session was recovered), 'connect_error' (err.message, err.data),
// 'disconnect' (reason), 'reconnect_attempt' ({attempt, delay}), and every
// server event. Server events get their arguments as sent, the offset
// included as a trailing string when recovery is on, like the reference.
export class Socket {
  // url: the server's http(s) or ws(s) origin, e.g. location.origin.
  // opts.auth: an object, or a function returning one, sent with CONNECT.
  constructor(url, opts = {}) {
    this.uri = url.replace(/^http/, 'ws').replace(/\/$/, '') + '/socket.io/?EIO=4&transport=websocket';
    this.auth = opts.auth || {};
    this.ackTimeout = opts.ackTimeout ?? 10000;
    this.backoff = new Backoff(opts.reconnectionDelay ?? 1000, opts.reconnectionDelayMax ?? 5000, opts.randomizationFactor ?? 0.5);
    this.listeners = new Map();
    this.id = undefined;
    this.connected = false;
    this.recovered = false;
    this.active = false;
    this._pid = undefined;
    this._lastOffset = undefined;
    this._ackId = 0;
    this._acks = new Map();
    this._receiveBuffer = [];
    this._sendBuffer = [];
    this._ws = null;
    this._opened = false;
    this._pingTimer = null;
    this._reconnectTimer = null;
  }

  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
    return this;
  }

  off(event, fn) {
    this.listeners.get(event)?.delete(fn);
    return this;
  }

  _fire(event, args) {
    for (const fn of [...(this.listeners.get(event) || [])]) {
      try { fn(...args); } catch (err) { console.error(`listener of ${event}:`, err); }
    }
  }

  connect() {
    if (this.active) return this;
    this.active = true;
    this.backoff.reset();
    this._open();
    return this;
  }

  // disconnect says goodbye (DISCONNECT packet): the server removes the
  // socket from its rooms at once, and there is no reconnection.
  disconnect() {
    const wasConnected = this.connected;
    this.active = false;
    clearTimeout(this._reconnectTimer);
    if (this._ws && this._ws.readyState === WebSocket.OPEN && wasConnected) this._ws.send('41');
    this._teardown();
    this.connected = false;
    if (wasConnected) this._fire('disconnect', ['io client disconnect']);
    return this;
  }

  // emit sends an event; a function as last argument receives the ack.
  // While disconnected, events are buffered and sent after CONNECT.
  emit(event, ...args) {
    if (RESERVED.has(event)) throw new Error(`"${event}" is a reserved event name`);
    let packet = '2';
    if (typeof args[args.length - 1] === 'function') {
      const id = this._ackId++;
      this._acks.set(id, args.pop());
      packet += id;
    }
    packet += JSON.stringify([event, ...args]);
    if (this.connected) this._send('4' + packet);
    else this._sendBuffer.push('4' + packet);
    return this;
  }

  // emitWithAck resolves with the server's first ack argument, or rejects
  // after timeout ms.
  emitWithAck(event, payload, timeout = this.ackTimeout) {
    return new Promise((resolve, reject) => {
      let timer;
      const ack = (...args) => { clearTimeout(timer); resolve(args[0]); };
      this.emit(event, payload, ack);
      const id = this._ackId - 1;
      timer = setTimeout(() => {
        this._acks.delete(id);
        reject(new Error(`no answer to ${event} within ${Math.round(timeout / 1000)} s`));
      }, timeout);
    });
  }

  // volatile sends only when connected (progress reports: stale ones are
  // worth nothing after a reconnection). Returns whether it was sent.
  volatile(event, ...args) {
    if (!this.connected) return false;
    this.emit(event, ...args);
    return true;
  }

  _open() {
    this._opened = false;
    let ws;
    try {
      ws = new WebSocket(this.uri);
    } catch (err) {
      this._onClose('transport error', err);
      return;
    }
    this._ws = ws;
    ws.onmessage = (ev) => this._onFrame(ev.data);
    // An error ends the connection (like the reference client). Browsers
    // follow it with a close event; some runtimes do not, so do not wait.
    ws.onerror = () => { if (this._ws === ws) this._fail('transport error'); };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._onClose('transport close', ev);
    };
  }

  _send(frame) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(frame);
  }

  // _fail drops the connection at once for reason (and reconnects). The
  // close frame carries no status code: the server keeps the session for
  // recovery.
  _fail(reason) {
    const ws = this._ws;
    this._teardown();
    if (ws) this._onClose(reason);
  }

  _teardown() {
    clearTimeout(this._pingTimer);
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onmessage = ws.onerror = ws.onclose = null;
      try { ws.close(); } catch { /* already closed */ }
    }
  }

  _onClose(reason, detail) {
    clearTimeout(this._pingTimer);
    const wasConnected = this.connected;
    this.connected = false;
    if (wasConnected) {
      this._fire('disconnect', [reason, detail]);
    } else if (this.active) {
      const err = new Error(this._opened ? `${reason} before CONNECT was answered` : 'websocket error: server not reachable');
      this._fire('connect_error', [err]);
    }
    if (this.active) this._scheduleReconnect();
  }

  _scheduleReconnect() {
    clearTimeout(this._reconnectTimer);
    const delay = this.backoff.duration();
    this._fire('reconnect_attempt', [{ attempt: this.backoff.attempts, delay }]);
    this._reconnectTimer = setTimeout(() => { if (this.active) this._open(); }, delay);
  }

  _resetPingTimer() {
    clearTimeout(this._pingTimer);
    this._pingTimer = setTimeout(() => this._fail('ping timeout'), this._pingInterval + this._pingTimeout);
  }

  // _onFrame handles one Engine.IO packet.
  _onFrame(data) {
    if (typeof data !== 'string') { this._fail('parse error'); return; }
    switch (data[0]) {
      case '0': { // open
        let h;
        try { h = JSON.parse(data.slice(1)); } catch { this._fail('transport error'); return; }
        this._opened = true;
        this._pingInterval = h.pingInterval;
        this._pingTimeout = h.pingTimeout;
        this._resetPingTimer();
        const auth = (typeof this.auth === 'function' ? this.auth() : this.auth) || {};
        const payload = this._pid ? { pid: this._pid, offset: this._lastOffset, ...auth } : auth;
        this._send('40' + JSON.stringify(payload));
        return;
      }
      case '2': // ping
        this._resetPingTimer();
        this._send('3');
        return;
      case '4':
        this._onPacket(data.slice(1));
        return;
      case '6': // noop
      case '1': // close: ignored on WebSocket, the close frame follows
        return;
      default:
        this._fail('transport error');
    }
  }

  // _onPacket handles one Socket.IO packet.
  _onPacket(str) {
    let p;
    try { p = decodePacket(str); } catch (err) {
      console.warn('socket.io parse error:', err.message);
      this._fail('parse error');
      return;
    }
    if (p.nsp !== '/') return;
    switch (p.type) {
      case CONNECT: {
        if (!p.data || typeof p.data.sid !== 'string') { this._fail('parse error'); return; }
        this.id = p.data.sid;
        this.recovered = Boolean(p.data.pid && this._pid && p.data.pid === this._pid);
        this._pid = p.data.pid;
        this.connected = true;
        this.backoff.reset();
        for (const args of this._receiveBuffer.splice(0)) this._dispatch(args);
        for (const frame of this._sendBuffer.splice(0)) this._send(frame);
        this._fire('connect', []);
        return;
      }
      case CONNECT_ERROR: {
        const d = typeof p.data === 'string' ? { message: p.data } : p.data;
        const err = new Error(d.message || 'connection refused');
        err.data = d.data;
        this.active = false;
        this._teardown();
        this.connected = false;
        this._fire('connect_error', [err]);
        return;
      }
      case DISCONNECT:
        this.active = false;
        this._teardown();
        this.connected = false;
        this._fire('disconnect', ['io server disconnect']);
        return;
      case EVENT: {
        const args = p.data;
        if (p.id !== undefined) {
          const id = p.id;
          args.push((...reply) => this._send('43' + id + JSON.stringify(reply)));
        }
        if (this.connected) this._dispatch(args);
        else this._receiveBuffer.push(args);
        return;
      }
      case ACK: {
        const fn = this._acks.get(p.id);
        if (fn) {
          this._acks.delete(p.id);
          fn(...p.data);
        }
        return;
      }
    }
  }

  _dispatch(args) {
    if (this._pid && args.length && typeof args[args.length - 1] === 'string') {
      this._lastOffset = args[args.length - 1];
    }
    this._fire(String(args[0]), args.slice(1));
  }
}
