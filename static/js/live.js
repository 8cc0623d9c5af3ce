// The live connection (reconnect with jittered backoff, resume after the last seen seq)
// and the cell outbox (edits kept in memory and localStorage until the server acknowledges them).
"use strict";

(function () {
  // Messages that are not stored events: their seq is only the exercise's latest, never "seen".
  const CONTROL_TYPES = new Set(["hello", "ack", "error", "presence"]);
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 15000;
  const RESTART_CAP_MS = 500;
  const ACK_TIMEOUT_MS = 10000;

  function lost() {
    const error = new Error("connection lost");
    error.code = "connection_lost";
    return error;
  }

  class LiveSocket {
    constructor({ path, onHello, onEvent, onControl, onState, onFatal }) {
      this.path = path;
      this.onHello = onHello;
      this.onEvent = onEvent;
      this.onControl = onControl || (() => {});
      this.onState = onState || (() => {});
      this.onFatal = onFatal || (() => {});
      this.ws = null;
      this.generation = 0;
      this.attempt = 0;
      this.timer = null;
      this.lastSeq = 0;
      this.helloSeen = false;
      this.offsetMs = 0;
      this.state = "connecting";
      this.stopped = false;
      this.pending = new Map();
      this.requestCount = 0;
      window.addEventListener("online", () => this.reconnectNow());
      window.addEventListener("offline", () => this.drop());
    }

    now() {
      return Date.now() + this.offsetMs;
    }

    setState(state) {
      this.state = state;
      this.onState(state);
    }

    start() {
      if (this.stopped) return;
      clearTimeout(this.timer);
      const generation = ++this.generation;
      const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      let ws;
      try {
        ws = new WebSocket(scheme + window.location.host + this.path);
      } catch (error) {
        this.scheduleReconnect();
        return;
      }
      this.ws = ws;
      this.setState("connecting");
      ws.onmessage = (event) => {
        if (generation === this.generation) this.receive(JSON.parse(event.data));
      };
      ws.onclose = (event) => {
        if (generation !== this.generation) return;
        this.ws = null;
        this.abandonRequests();
        if (event.code === 4401 || event.code === 4403) {
          this.stopped = true;
          this.setState("offline");
          this.onFatal(event.code);
          return;
        }
        this.setState("offline");
        // 1012: the server is restarting and will be back in a second or two; keep knocking
        // every 250-500 ms instead of backing off to 15 s, until a hello says it is back (a refused
        // connection costs the stopped server nothing, and the first knock after it is up wins).
        if (event.code === 1012) this.restarting = true;
        this.scheduleReconnect(event.code === 4408);
      };
    }

    receive(message) {
      if (message.type === "hello") {
        const snapshot = message.snapshot || {};
        const serverTime = Date.parse(message.server_time || snapshot.server_time || message.at);
        if (!isNaN(serverTime)) this.offsetMs = serverTime - Date.now();
        const reconnected = this.helloSeen;
        this.helloSeen = true;
        this.attempt = 0;
        this.restarting = false;
        // The first snapshot is complete as of last_seq; after a gap, resume from what was seen.
        if (!reconnected) this.lastSeq = message.last_seq || 0;
        this.setState("online");
        // Replayed events apply idempotently (versions, ids and seqs), whatever the snapshot held.
        if (reconnected) this.send({ type: "resume", after_seq: this.lastSeq });
        this.onHello(message);
        return;
      }
      if ((message.type === "ack" || message.type === "error") && this.answer(message)) return;
      if (CONTROL_TYPES.has(message.type)) {
        this.onControl(message);
        return;
      }
      if (typeof message.seq === "number") {
        if (message.seq <= this.lastSeq) return;
        this.lastSeq = Math.max(this.lastSeq, message.seq);
      }
      this.onEvent(message);
    }

    send(message) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.state !== "online") return false;
      this.ws.send(JSON.stringify(message));
      return true;
    }

    // A request the server answers with an `ack` or an `error` naming its client_ref (the
    // console's injects). Null when not connected (the caller uses HTTP instead); else a promise
    // of the ack, rejected with the error's sentence, or with code "connection_lost" when the
    // connection goes first: then the request may or may not have been carried out, and the
    // next hello's snapshot shows which.
    request(message) {
      const ref = "q" + ++this.requestCount;
      if (!this.send({ ...message, client_ref: ref })) return null;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => this.settleRequest(ref, lost()), ACK_TIMEOUT_MS);
        this.pending.set(ref, { resolve, reject, timer });
      });
    }

    answer(message) {
      if (!this.pending.has(message.client_ref)) return false;
      if (message.type === "ack") {
        this.settleRequest(message.client_ref, null, message);
      } else {
        const error = new Error(message.detail || message.code);
        error.code = message.code;
        this.settleRequest(message.client_ref, error);
      }
      return true;
    }

    settleRequest(ref, error, answer) {
      const entry = this.pending.get(ref);
      if (!entry) return;
      this.pending.delete(ref);
      clearTimeout(entry.timer);
      if (error) entry.reject(error);
      else entry.resolve(answer);
    }

    abandonRequests() {
      for (const ref of [...this.pending.keys()]) this.settleRequest(ref, lost());
    }

    scheduleReconnect(soon) {
      if (this.stopped) return;
      clearTimeout(this.timer);
      const cap = this.restarting ? RESTART_CAP_MS : BACKOFF_CAP_MS;
      const ceiling = Math.min(cap, BACKOFF_BASE_MS * 2 ** this.attempt);
      const delay = soon ? 100 : ceiling / 2 + Math.random() * (ceiling / 2);
      this.attempt += 1;
      this.timer = setTimeout(() => this.start(), delay);
    }

    // The network went away: forget the socket now rather than wait for a close that may never come.
    drop() {
      this.generation += 1;
      if (this.ws) {
        try { this.ws.close(); } catch (error) { /* already closed */ }
      }
      this.ws = null;
      this.abandonRequests();
      this.setState("offline");
      this.scheduleReconnect();
    }

    reconnectNow() {
      if (this.stopped || this.state === "online") return;
      this.attempt = 0;
      this.drop();
      clearTimeout(this.timer);
      this.start();
    }
  }

  // One team's answer cells: the server's value and version, plus this browser's unsent edits.
  class CellSync {
    constructor({ storagePrefix, send, onChange, debounceMs }) {
      this.prefix = storagePrefix;
      this.send = send;
      this.onChange = onChange || (() => {});
      this.debounceMs = debounceMs || 400;
      this.server = new Map();
      this.local = new Map();
      this.timers = new Map();
      this.refCounter = 0;
      this.session = Math.random().toString(36).slice(2, 8);
      this.restore();
    }

    key(injectId, field) {
      return injectId + "/" + field;
    }

    serverCell(key) {
      return this.server.get(key) || { value: "", version: 0, updated_by: "" };
    }

    value(key) {
      const entry = this.local.get(key);
      return entry ? entry.value : this.serverCell(key).value;
    }

    restore() {
      for (let i = 0; i < localStorage.length; i++) {
        const name = localStorage.key(i);
        if (!name || !name.startsWith(this.prefix)) continue;
        try {
          const saved = JSON.parse(localStorage.getItem(name));
          this.local.set(name.slice(this.prefix.length), {
            value: String(saved.value),
            base_version: Number(saved.base_version) || 0,
            sent: Array.isArray(saved.sent) ? saved.sent : [],
            inflight: null,
            conflict: null,
            error: "",
          });
        } catch (error) {
          localStorage.removeItem(name);
        }
      }
    }

    persist(key) {
      const entry = this.local.get(key);
      try {
        if (entry) {
          const saved = { value: entry.value, base_version: entry.base_version, sent: entry.sent };
          localStorage.setItem(this.prefix + key, JSON.stringify(saved));
        } else {
          localStorage.removeItem(this.prefix + key);
        }
      } catch (error) {
        // Storage full or disabled: the edit stays in memory and is still sent.
      }
    }

    settle(key) {
      this.local.delete(key);
      this.persist(key);
    }

    typed(key, value) {
      let entry = this.local.get(key);
      if (!entry) {
        entry = { value, base_version: this.serverCell(key).version, sent: [], inflight: null, conflict: null, error: "" };
        this.local.set(key, entry);
      }
      entry.value = value;
      entry.error = "";
      this.persist(key);
      clearTimeout(this.timers.get(key));
      this.timers.set(key, setTimeout(() => this.flush(key), this.debounceMs));
      this.onChange(key);
    }

    flush(key) {
      clearTimeout(this.timers.get(key));
      this.timers.delete(key);
      const entry = this.local.get(key);
      if (!entry || entry.inflight || entry.conflict) return;
      const server = this.serverCell(key);
      if (entry.value === server.value && entry.base_version === server.version) {
        this.settle(key);
        this.onChange(key);
        return;
      }
      const [injectId, field] = key.split("/");
      const ref = this.session + "-" + ++this.refCounter;
      const sent = this.send({
        type: "edit", inject_id: injectId, field, value: entry.value,
        base_version: entry.base_version, client_ref: ref,
      });
      if (sent) {
        entry.inflight = { ref, value: entry.value, at: Date.now() };
        entry.sent = [...entry.sent.slice(-4), entry.value];
        this.persist(key);
      }
      this.onChange(key);
    }

    flushAll() {
      for (const key of this.local.keys()) this.flush(key);
    }

    entryFor(ref) {
      for (const [key, entry] of this.local) {
        if (entry.inflight && entry.inflight.ref === ref) return [key, entry];
      }
      return [null, null];
    }

    ack(message) {
      const [key, entry] = this.entryFor(message.client_ref);
      if (!key) return;
      const written = entry.inflight.value;
      this.accepted(key, entry, { value: written, version: message.version, updated_by: "" });
    }

    // The server holds `cell`, which this browser wrote: rebase what was typed since onto it.
    accepted(key, entry, cell) {
      if (cell.version > this.serverCell(key).version) this.server.set(key, cell);
      entry.inflight = null;
      entry.base_version = cell.version;
      entry.sent = [];
      if (entry.value === cell.value) this.settle(key);
      else this.flush(key);
      this.onChange(key);
    }

    error(message) {
      const [key, entry] = this.entryFor(message.client_ref);
      if (!key) return false;
      entry.inflight = null;
      if (message.code === "edit_rate_limited") {
        // Too many edits at once: try again shortly; the edit stays queued meanwhile.
        this.timers.set(key, setTimeout(() => this.flush(key), 1000));
        this.onChange(key);
        return true;
      }
      if (message.code !== "conflict" || !message.current) {
        entry.error = message.code === "not_running" ? message.code : message.detail || message.code;
        this.persist(key);
        this.onChange(key);
        return true;
      }
      const current = message.current;
      this.server.set(key, current);
      if (current.value === entry.value || entry.sent.includes(current.value)) {
        this.accepted(key, entry, current);
        return true;
      }
      entry.conflict = current;
      entry.base_version = current.version;
      this.persist(key);
      this.onChange(key);
      return true;
    }

    // A stored response event; returns true when the shown value changed.
    response(event) {
      const key = this.key(event.inject_id, event.field);
      if (event.version <= this.serverCell(key).version) return false;
      this.server.set(key, { value: event.value, version: event.version, updated_by: event.updated_by });
      this.onChange(key);
      return !this.local.has(key);
    }

    // The full state after (re)connecting: keep what was saved, resend only what was not.
    snapshot(cells) {
      for (const cell of cells) {
        const key = this.key(cell.inject_id, cell.field);
        if (cell.version > this.serverCell(key).version) {
          this.server.set(key, { value: cell.value, version: cell.version, updated_by: cell.updated_by });
        }
      }
      for (const [key, entry] of Array.from(this.local)) {
        entry.inflight = null;
        const server = this.serverCell(key);
        if (server.value === entry.value) {
          this.settle(key);
        } else if (entry.sent.includes(server.value) && server.version > entry.base_version) {
          entry.base_version = server.version;
          entry.sent = [];
        }
      }
      this.onChange(null);
    }

    keepMine(key) {
      const entry = this.local.get(key);
      if (!entry || !entry.conflict) return;
      entry.base_version = entry.conflict.version;
      entry.conflict = null;
      this.flush(key);
    }

    takeTheirs(key) {
      const entry = this.local.get(key);
      if (!entry) return;
      clearTimeout(this.timers.get(key));
      this.settle(key);
      this.onChange(key);
    }

    retryFailed() {
      for (const [key, entry] of this.local) {
        if (entry.error) {
          entry.error = "";
          this.flush(key);
        }
      }
    }

    // Sent but unanswered for too long: the socket is probably dead even if it looks open.
    stalled() {
      const limit = Date.now() - ACK_TIMEOUT_MS;
      for (const entry of this.local.values()) {
        if (entry.inflight && entry.inflight.at < limit) return true;
      }
      return false;
    }

    state(key) {
      const entry = this.local.get(key);
      if (!entry) return "saved";
      if (entry.conflict) return "conflict";
      if (entry.error) return "error";
      return entry.inflight || this.timers.has(key) ? "saving" : "unsent";
    }

    pending() {
      return this.local.size;
    }
  }

  // Browsers allow sound only after a user gesture, so the audio context waits for one.
  let audio = null;
  function unlockAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    audio = audio || new Context();
    if (audio.state === "suspended") audio.resume();
  }
  window.addEventListener("pointerdown", unlockAudio, { once: true });
  window.addEventListener("keydown", unlockAudio, { once: true });

  function beep() {
    if (!audio || audio.state !== "running") return;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.001, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.35);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.4);
  }

  window.TabletopLive = { LiveSocket, CellSync, beep };
})();
