// app.js: the roomstream demo page. Plain DOM, no framework: sign in with
// a name (dev-only token mint), join a room, and watch presence, the lock,
// uploads and files change live over Socket.IO: the official
// socket.io-client browser bundle (vendor/, from its npm package, MIT) with
// its default options: HTTP long-polling first, then the upgrade to a
// WebSocket where the network allows one.

import { io } from './vendor/socket.io.esm.min.js';

// ACK_TIMEOUT bounds the wait for the server's answer to a command.
const ACK_TIMEOUT = 10000;

const $ = (id) => document.getElementById(id);
const SESSION_KEY = 'roomstream-demo-session';
const PROGRESS_EVERY_MS = 250;

const state = {
  session: null, // {token, userId, userName, expiresAt, limits}
  sock: null,
  everConnected: false,
  room: null, // {roomId, name, members: Map, lock, uploads: Map, files: Map}
  joining: false,
};

// ---------- small helpers ----------

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

export function humanBytes(n) {
  if (!Number.isFinite(n) || n < 0) return '?';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function humanDuration(s) {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 1) return 'under 1 s';
  if (s < 90) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60), r = Math.round(s % 60);
  return `${m} min ${r} s`;
}

function timeOf(iso) {
  const d = iso ? new Date(iso) : new Date();
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
}

function validRoomId(s) {
  return /^[A-Za-z0-9_\-.:@|/+=~]{1,128}$/.test(s);
}

const EVENT_LABELS = {
  'join-room': 'Join', 'leave-room': 'Leave', 'lock-room': 'Lock', 'unlock-room': 'Unlock',
  'file-upload-started': 'Upload', 'file-upload-progress': 'Upload progress',
  'file-upload-completed': 'Upload', 'file-upload-failed': 'Upload',
};

// errorText turns a roomstream error {code, message, event} into a sentence.
function errorText(err, fallbackEvent) {
  if (!err) return 'Unknown error';
  const label = EVENT_LABELS[err.event || fallbackEvent] || err.event || fallbackEvent;
  const msg = err.message || err.code || String(err);
  const code = err.code ? ` (${err.code})` : '';
  return label ? `${label} refused: ${msg}${code}` : `${msg}${code}`;
}

// ---------- messages, status and the activity log ----------

function alertMsg(text, kind = 'error') {
  const list = $('alert-list');
  const last = list.lastElementChild;
  if (last && last.dataset.text === text) { // repeated: count instead of piling up
    const n = Number(last.dataset.count || 1) + 1;
    last.dataset.count = n;
    last.querySelector('span').textContent = `${text} (×${n})`;
    return;
  }
  const close = el('button', { type: 'button', textContent: 'Dismiss' });
  const li = el('li', { class: kind, dataset: { text } }, el('span', { textContent: text }), close);
  close.addEventListener('click', () => { li.remove(); syncAlerts(); });
  list.append(li);
  while (list.children.length > 5) list.firstElementChild.remove();
  syncAlerts();
}

function syncAlerts() { $('alerts').hidden = $('alert-list').children.length === 0; }

function clearAlerts() { $('alert-list').replaceChildren(); syncAlerts(); }

function setStatus(kind, text) {
  const c = $('conn');
  c.dataset.state = kind;
  c.textContent = text;
  syncControls();
}

function logLine(text) {
  const log = $('log');
  log.prepend(el('li', {}, el('time', { textContent: new Date().toLocaleTimeString() }), text));
  while (log.children.length > 100) log.lastElementChild.remove();
}

// ---------- HTTP (dev-only endpoints) ----------

class HttpError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
    this.received = body?.received;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (state.session) headers.Authorization = `Bearer ${state.session.token}`;
  let payload;
  if (body instanceof Blob) { payload = body; headers['Content-Type'] = 'application/octet-stream'; }
  else if (body !== undefined) { payload = JSON.stringify(body); headers['Content-Type'] = 'application/json'; }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload });
  } catch (err) {
    throw new Error(`the server cannot be reached (${err.message})`);
  }
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : {}; } catch { json = { error: { message: text.trim() } }; }
  if (!res.ok) throw new HttpError(res.status, json);
  return json;
}

// ---------- session ----------

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY));
    if (s && s.token && Date.parse(s.expiresAt) > Date.now() + 60000) return s;
  } catch { /* none */ }
  return null;
}

async function signIn(name) {
  const s = await api('POST', '/demo/token', { name });
  state.session = s;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  startSocket();
  showLobby();
}

function signOut(message) {
  if (state.sock) state.sock.disconnect();
  state.sock = null;
  state.session = null;
  state.room = null;
  state.everConnected = false;
  sessionStorage.removeItem(SESSION_KEY);
  setStatus('offline', 'Not connected');
  showSignIn();
  if (message) alertMsg(message);
}

// ---------- views ----------

function show(id) {
  for (const v of ['signin', 'lobby', 'room-view']) $(v).hidden = v !== id;
}

function showSignIn() {
  show('signin');
  $('name').focus();
}

function showLobby() {
  show('lobby');
  $('me').textContent = `${state.session.userName} (${state.session.userId})`;
  const fromHash = roomFromHash();
  if (fromHash) $('room').value = fromHash;
  const lim = state.session.limits;
  if (lim) {
    const rate = lim.uploadRate ? `, sent at up to ${humanBytes(lim.uploadRate)}/s so that progress shows` : '';
    $('upload-hint').textContent = `Up to ${humanBytes(lim.maxUpload)}${rate}. Kept until roomstream dev stops.`;
  }
}

function roomFromHash() {
  const m = /^#room=(.+)$/.exec(location.hash);
  if (!m) return '';
  try { return decodeURIComponent(m[1]); } catch { return ''; }
}

// ---------- the socket ----------

function startSocket() {
  // auth is a function so that a reconnection sends the current token.
  const sock = io(location.origin, { auth: (cb) => cb({ token: state.session.token }) });
  state.sock = sock;
  window.roomstreamDemo = { state, sock }; // for curious people with devtools

  sock.on('connect', async () => {
    if (!state.everConnected) {
      state.everConnected = true;
      setStatus('connected', 'Connected');
      logLine('Connected');
      const r = roomFromHash();
      if (r && !state.room && !$('lobby').hidden) join(r);
      return;
    }
    if (sock.recovered) {
      setStatus('recovered', 'Recovered: missed events replayed');
      logLine('Reconnected; session recovered, missed events replayed');
      return;
    }
    setStatus('connected', 'Reconnected with a new session');
    logLine('Reconnected with a new session');
    if (state.room) {
      const roomId = state.room.roomId;
      await join(roomId, true);
    }
  });

  sock.on('disconnect', (reason) => {
    if (reason === 'io client disconnect') return;
    if (reason === 'io server disconnect') {
      setStatus('offline', 'Disconnected by the server');
      alertMsg('The server ended the connection. Reload the page to connect again.');
      return;
    }
    setStatus('reconnecting', `Connection lost (${reason}); reconnecting…`);
    logLine(`Connection lost: ${reason}`);
  });

  sock.io.on('reconnect_attempt', (attempt) => {
    const what = state.everConnected ? 'Reconnecting' : 'Connecting';
    setStatus(state.everConnected ? 'reconnecting' : 'connecting', `${what}: attempt ${attempt}…`);
  });

  sock.on('connect_error', (err) => {
    if (!sock.active) { // refused by the server: no retry
      const code = err.data?.code;
      if (code === 'invalid_token' || code === 'expired_token') {
        signOut(`Your demo token was refused: ${err.data?.reason || err.message}. Pick a name again (a restarted dev server signs with a new secret).`);
        return;
      }
      setStatus('refused', 'Connection refused');
      alertMsg(`Connection refused: ${err.message}`);
    }
  });

  sock.on('authentication_successful', (p) => logLine(`Authenticated as ${p.userId}`));
  sock.on('error', (e) => alertMsg(errorText(e)));
  sock.on('room-state', (snap) => { if (state.room && snap.roomId === state.room.roomId) applySnapshot(snap); });

  sock.on('user-joined', (p) => {
    if (!inRoom(p.roomId)) return;
    const had = state.room.members.has(p.userId);
    state.room.members.set(p.userId, { userId: p.userId, userName: p.userName, joinedAt: p.joinedAt });
    if (!had) logLine(`${p.userName} joined`);
    renderPeople();
  });

  sock.on('user-left', (p) => {
    if (!inRoom(p.roomId)) return;
    state.room.members.delete(p.userId);
    const why = { left: '', disconnected: ' (disconnected)', connector_lost: ' (their server was lost)', recovery_expired: ' (did not come back in time)' }[p.reason] ?? ` (${p.reason})`;
    logLine(`${p.userName} left${why}`);
    renderPeople();
    renderLock();
  });

  sock.on('room-locked', (p) => {
    if (!inRoom(p.roomId)) return;
    state.room.lock = { lockedBy: p.lockedBy, lockedByName: p.lockedByName, lockedAt: p.lockedAt, reason: p.reason || '' };
    logLine(`${who(p.lockedBy, p.lockedByName)} locked the room${p.reason ? `: “${p.reason}”` : ''}`);
    renderLock();
  });

  sock.on('room-unlocked', (p) => {
    if (!inRoom(p.roomId)) return;
    state.room.lock = null;
    if (p.unlockedBy) logLine(`${who(p.unlockedBy, p.unlockedByName)} unlocked the room${p.reason ? `: “${p.reason}”` : ''}`);
    else logLine(`The lock was released${p.reason ? ` (${p.reason})` : ''}`);
    renderLock();
  });

  sock.on('file-upload-started', (p) => {
    if (!inRoom(p.roomId)) return;
    const id = p.uploadId || p.fileId;
    let u = state.room.uploads.get(id);
    if (!u) {
      u = newUploadView(id, p.fileName, p.userId, p.userName, p.size);
      state.room.uploads.set(id, u);
    }
    if (!u.announced) {
      u.announced = true;
      logLine(`${who(p.userId, p.userName)} started uploading ${p.fileName} (${humanBytes(p.size)})`);
    }
    renderUploads();
  });

  sock.on('file-upload-progress', (p) => {
    if (!inRoom(p.roomId)) return;
    let u = state.room.uploads.get(p.uploadId);
    if (!u) {
      u = newUploadView(p.uploadId, p.fileName, p.userId, p.userName, p.totalBytes);
      state.room.uploads.set(p.uploadId, u);
    }
    updateUpload(u, p.bytesUploaded, p.totalBytes, p.uploadSpeed, p.estimatedTimeRemaining);
    renderUploads();
  });

  sock.on('file-upload-failed', (p) => {
    if (!inRoom(p.roomId)) return;
    const u = state.room.uploads.get(p.uploadId || p.fileId);
    state.room.uploads.delete(p.uploadId || p.fileId);
    logLine(`${p.userId === state.session.userId ? 'Your' : `${p.userName || p.userId}'s`} upload${u ? ` of ${u.fileName}` : ''} failed${p.reason ? `: ${p.reason}` : ''}`);
    renderUploads();
  });

  sock.on('file-added', (p) => {
    if (!inRoom(p.roomId)) return;
    state.room.uploads.delete(p.file.id);
    for (const [id, u] of state.room.uploads) if (u.fileId === p.file.id) state.room.uploads.delete(id);
    if (!state.room.files.has(p.file.id)) logLine(`${who(p.file.uploadedBy, p.file.uploadedByName)} added ${p.file.name} (${humanBytes(p.file.size)})`);
    state.room.files.set(p.file.id, p.file);
    renderUploads();
    renderFiles();
  });

  setStatus('connecting', 'Connecting…');
  sock.connect();
}

function inRoom(roomId) { return state.room && state.room.roomId === roomId; }

// who names a user in the activity log: "You" for oneself.
function who(userId, userName) { return userId === state.session?.userId ? 'You' : userName || userId; }

// ---------- rooms ----------

async function join(roomId, rejoin = false) {
  if (state.joining) return;
  if (!validRoomId(roomId)) {
    alertMsg('Room names are 1-128 letters, digits or _ - . : @ | / + = ~ (no spaces).');
    $('room').focus();
    return;
  }
  state.joining = true;
  try {
    if (state.room && state.room.roomId !== roomId) await leave();
    let ack = await state.sock.timeout(ACK_TIMEOUT).emitWithAck('join-room', { roomId });
    if (ack?.ok && ack.alreadyJoined) {
      // This socket is in the room already, and the server sends no
      // snapshot again: leave and join for a fresh one.
      await state.sock.timeout(ACK_TIMEOUT).emitWithAck('leave-room', { roomId });
      ack = await state.sock.timeout(ACK_TIMEOUT).emitWithAck('join-room', { roomId });
    }
    if (!ack?.ok) {
      alertMsg(errorText(ack?.error, 'join-room'));
      if (rejoin) { state.room = null; show('lobby'); }
      return;
    }
    state.room = { roomId, name: roomId, members: new Map(), lock: null, uploads: new Map(), files: new Map() };
    applySnapshot(ack.room);
    history.replaceState(null, '', `#room=${encodeURIComponent(roomId)}`);
    if (!rejoin) {
      show('room-view');
      $('me2').textContent = state.session.userName;
      $('room-h').focus?.();
      logLine(`You joined ${roomId}`);
    } else {
      logLine(`Rejoined ${roomId}`);
    }
  } catch (err) {
    alertMsg(`Join failed: ${err.message}`);
  } finally {
    state.joining = false;
  }
}

async function leave() {
  const r = state.room;
  if (!r) return;
  state.room = null;
  history.replaceState(null, '', location.pathname);
  try {
    const ack = await state.sock.timeout(ACK_TIMEOUT).emitWithAck('leave-room', { roomId: r.roomId });
    if (!ack?.ok) alertMsg(errorText(ack?.error, 'leave-room'));
  } catch (err) {
    alertMsg(`Leave failed: ${err.message}`);
  }
}

function applySnapshot(s) {
  const r = state.room;
  r.name = s.name || s.roomId;
  r.members = new Map((s.members || []).map((m) => [m.userId, m]));
  r.lock = s.isLocked ? { lockedBy: s.lockedBy, lockedByName: s.lockedByName, lockedAt: s.lockedAt, reason: s.lockReason || '' } : null;
  const mine = new Map([...r.uploads].filter(([, u]) => u.mine));
  r.uploads = new Map();
  for (const u of s.activeUploads || []) {
    const v = mine.get(u.uploadId) || newUploadView(u.uploadId, u.fileName, u.userId, u.userName, u.totalBytes);
    v.fileId = u.fileId;
    updateUpload(v, u.bytesUploaded, u.totalBytes);
    r.uploads.set(u.uploadId, v);
  }
  for (const [id, v] of mine) if (!r.uploads.has(id)) r.uploads.set(id, v);
  r.files = new Map((s.files || []).map((f) => [f.id, f]));
  $('room-name').textContent = r.name;
  renderAll();
}

// ---------- uploads ----------

function newUploadView(id, fileName, userId, userName, total) {
  return { id, fileId: id, fileName, userId, userName: userName || userId, total, bytes: 0, speed: undefined, eta: undefined, samples: [], mine: false };
}

// updateUpload records progress; it never moves backwards (the echo of our
// own report can arrive after a newer local update).
function updateUpload(u, bytes, total, speed, eta) {
  if (total) u.total = total;
  if (bytes < u.bytes) return;
  const now = performance.now();
  u.bytes = bytes;
  u.samples.push([now, bytes]);
  while (u.samples.length > 2 && now - u.samples[0][0] > 3000) u.samples.shift();
  if (speed === undefined && u.samples.length >= 2) {
    const [t0, b0] = u.samples[0];
    if (now > t0) speed = ((bytes - b0) * 1000) / (now - t0);
  }
  if (speed !== undefined) u.speed = speed;
  if (eta === undefined && u.speed > 0) eta = (u.total - u.bytes) / u.speed;
  if (eta !== undefined) u.eta = eta;
}

async function uploadFile(file) {
  const r = state.room;
  const chunk = state.session.limits?.chunkSize || 256 * 1024;
  const mimeType = file.type || undefined;
  const created = await api('POST', '/demo/uploads', { name: file.name, size: file.size, mimeType });
  const id = created.id;
  const base = { fileId: id, uploadId: id, fileName: file.name, roomId: r.roomId };
  let started;
  try {
    started = await state.sock.timeout(ACK_TIMEOUT).emitWithAck('file-upload-started', { ...base, size: file.size, mimeType });
  } catch (err) {
    started = { ok: false, error: { message: err.message, event: 'file-upload-started' } };
  }
  if (!started?.ok) {
    api('DELETE', `/demo/uploads/${id}`).catch(() => {});
    throw Object.assign(new Error(errorText(started?.error, 'file-upload-started')), { shown: true });
  }
  const view = r.uploads.get(id) || newUploadView(id, file.name, state.session.userId, state.session.userName, file.size);
  view.mine = true;
  r.uploads.set(id, view);
  renderUploads();

  let offset = 0, lastReport = 0, retries = 0, refused = null;
  try {
    while (offset < file.size) {
      if (refused) throw Object.assign(new Error(errorText(refused, 'file-upload-progress')), { shown: true, reason: refused.message });
      let res;
      try {
        res = await api('PUT', `/demo/uploads/${id}?offset=${offset}`, file.slice(offset, offset + chunk));
      } catch (err) {
        if (err.received !== undefined && retries++ < 3) { offset = err.received; continue; }
        throw err;
      }
      offset = res.received;
      updateUpload(view, offset, file.size);
      if (inRoom(r.roomId)) renderUploads();
      const now = performance.now();
      if (now - lastReport >= PROGRESS_EVERY_MS && offset < file.size) {
        lastReport = now;
        const p = {
          ...base, bytesUploaded: offset, totalBytes: file.size,
          percentage: Math.min(100, (offset / file.size) * 100),
        };
        if (view.speed !== undefined) p.uploadSpeed = Math.max(0, view.speed);
        if (view.eta !== undefined) p.estimatedTimeRemaining = Math.max(0, view.eta);
        state.sock.volatile.emit('file-upload-progress', p, (ack) => { if (ack && !ack.ok) refused = ack.error; });
      }
    }
  } catch (err) {
    const reason = err.reason || err.message;
    state.sock.emit('file-upload-failed', { fileId: id, uploadId: id, roomId: r.roomId, reason: reason.slice(0, 400) });
    api('DELETE', `/demo/uploads/${id}`).catch(() => {});
    r.uploads.delete(id);
    renderUploads();
    throw err;
  }
  const done = await state.sock.timeout(ACK_TIMEOUT).emitWithAck('file-upload-completed', { ...base, size: file.size, mimeType });
  if (!done?.ok) throw Object.assign(new Error(errorText(done?.error, 'file-upload-completed')), { shown: true });
}

// ---------- rendering ----------

function renderAll() { renderPeople(); renderLock(); renderUploads(); renderFiles(); }

function renderPeople() {
  const r = state.room;
  if (!r) return;
  const members = [...r.members.values()].sort((a, b) => (a.joinedAt || '').localeCompare(b.joinedAt || ''));
  $('people').replaceChildren(...members.map((m) => el('li', { dataset: { userId: m.userId } },
    m.userName,
    m.userId === state.session.userId ? el('span', { class: 'you', textContent: 'you' }) : null,
    ' ',
    el('span', { class: 'when', textContent: `since ${timeOf(m.joinedAt)}` }))));
  $('people-count').textContent = members.length;
}

function renderLock() {
  const r = state.room;
  if (!r) return;
  const p = $('lock-state');
  const l = r.lock;
  p.dataset.locked = String(Boolean(l));
  if (!l) {
    p.textContent = 'Unlocked: anyone here may lock the room.';
  } else {
    const who = l.lockedBy === state.session.userId ? `${l.lockedByName} (you)` : l.lockedByName || l.lockedBy;
    const away = r.members.has(l.lockedBy) ? '' : ' They are not in the room; the lock is released if they do not come back soon.';
    p.textContent = `Locked by ${who} since ${timeOf(l.lockedAt)}${l.reason ? ` — reason: “${l.reason}”` : ' — no reason given'}.${away}`;
  }
  syncControls();
}

function renderUploads() {
  const r = state.room;
  if (!r) return;
  const items = [...r.uploads.values()].map((u) => {
    const pct = u.total > 0 ? Math.min(100, (u.bytes / u.total) * 100) : 0;
    const speed = u.speed !== undefined ? `${humanBytes(Math.round(u.speed))}/s` : 'speed unknown';
    const eta = u.eta !== undefined ? `${humanDuration(u.eta)} left` : 'time left unknown';
    const who = u.userId === state.session.userId ? `${u.userName} (you)` : u.userName;
    const label = `${who}: ${u.fileName}`;
    return el('li', { dataset: { uploadId: u.id, userId: u.userId } },
      el('div', { textContent: label }),
      el('progress', { max: 100, value: pct, 'aria-label': `${label}, ${pct.toFixed(0)} percent` }),
      el('div', { class: 'meta', textContent: `${pct.toFixed(0)}% · ${humanBytes(u.bytes)} of ${humanBytes(u.total)} · ${speed} · ${eta}` }));
  });
  $('uploads').replaceChildren(...items);
  $('uploads-empty').hidden = items.length > 0;
}

function renderFiles() {
  const r = state.room;
  if (!r) return;
  const files = [...r.files.values()].sort((a, b) => (a.createdAt || '').localeCompare(b.createdAt || ''));
  $('files').replaceChildren(...files.map((f) => el('li', { dataset: { fileId: f.id } },
    el('a', { href: `/demo/files/${encodeURIComponent(f.id)}`, download: f.name, textContent: f.name }),
    ' ',
    el('span', { class: 'meta', textContent: `${humanBytes(f.size)} · ${f.mimeType} · by ${f.uploadedByName} at ${timeOf(f.createdAt)}` }))));
  $('files-count').textContent = files.length;
  $('files-empty').hidden = files.length > 0;
}

// syncControls enables what makes sense now: nothing while disconnected;
// lock when unlocked; unlock only for the lock's holder.
function syncControls() {
  const online = Boolean(state.sock && state.sock.connected);
  const lock = state.room?.lock;
  const mine = lock && lock.lockedBy === state.session?.userId;
  $('lock-btn').disabled = !online || Boolean(lock);
  $('unlock-btn').disabled = !online || !mine;
  $('upload-btn').disabled = !online;
  $('leave').disabled = !online;
}

// ---------- wiring ----------

function wire() {
  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = ev.submitter;
    if (btn) btn.disabled = true;
    try {
      clearAlerts();
      await signIn($('name').value);
    } catch (err) {
      alertMsg(`Sign-in failed: ${err.message}`);
      $('name').focus();
    } finally {
      if (btn) btn.disabled = false;
    }
  });

  $('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    join($('room').value.trim());
  });

  $('signout').addEventListener('click', () => signOut());

  $('leave').addEventListener('click', async () => {
    const roomId = state.room?.roomId;
    await leave();
    show('lobby');
    if (roomId) { $('room').value = roomId; logLine(`You left ${roomId}`); }
    $('room').focus();
  });

  $('lock-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const reason = $('lock-reason').value.trim();
    try {
      const ack = await state.sock.timeout(ACK_TIMEOUT).emitWithAck('lock-room', reason ? { roomId: state.room.roomId, reason } : { roomId: state.room.roomId });
      if (!ack?.ok) alertMsg(errorText(ack?.error, 'lock-room'));
      else $('lock-reason').value = '';
    } catch (err) {
      alertMsg(`Lock failed: ${err.message}`);
    }
  });

  $('unlock-btn').addEventListener('click', async () => {
    try {
      const ack = await state.sock.timeout(ACK_TIMEOUT).emitWithAck('unlock-room', { roomId: state.room.roomId });
      if (!ack?.ok) alertMsg(errorText(ack?.error, 'unlock-room'));
    } catch (err) {
      alertMsg(`Unlock failed: ${err.message}`);
    }
  });

  $('upload-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('file');
    const file = input.files && input.files[0];
    if (!file) { alertMsg('Choose a file first.'); input.focus(); return; }
    input.value = '';
    try {
      await uploadFile(file);
    } catch (err) {
      alertMsg(err.shown ? err.message : `Upload of ${file.name} failed: ${err.message}`);
    }
  });

  window.addEventListener('hashchange', () => {
    const r = roomFromHash();
    if (r && state.sock?.connected && r !== state.room?.roomId) join(r);
  });
}

function main() {
  wire();
  state.session = loadSession();
  if (!state.session) { showSignIn(); return; }
  startSocket();
  showLobby();
}

main();
