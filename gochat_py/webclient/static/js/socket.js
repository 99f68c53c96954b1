// The live connection: one WebSocket to /ws, authenticated by the access cookie (same
// origin), kept alive with pings, renewed before its token expires, and reconnected with
// backoff whenever it drops. The rest of the client sees frames and a status.
import * as api from "./api.js";

// The subprotocol that asks for every frame (docs/websocket.md): acks, typing, read marks,
// token_expiring and the copy of our own sends.
export const PROTOCOLS = ["gochat-py.v1"];

const PING_EVERY_MS = 25_000;
// No frame at all this long after a ping: the connection is dead even if TCP has not said so.
const PONG_WITHIN_MS = 10_000;
const BACKOFF_MS = [300, 1_000, 2_000, 4_000, 8_000, 15_000];
const CLOSE_SESSION_REVOKED = 4001;
const CLOSE_TOKEN_EXPIRED = 4002;

export class ChatSocket {
  constructor({ onFrame, onOpen, onStatus, onSessionLost }) {
    this.onFrame = onFrame;
    this.onOpen = onOpen;
    this.onStatus = onStatus;
    this.onSessionLost = onSessionLost;
    this.ws = null;
    this.status = null;
    this.everOpened = false; // a later open is a reconnect: catch up on what was missed
    this.failures = 0;
    this.stopped = true;
    this.timers = {};
    this.online = () => this.reconnectNow();
    this.offline = () => this.drop("offline");
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.online);
    window.addEventListener("offline", this.offline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.online);
    window.removeEventListener("offline", this.offline);
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000);
  }

  get isOpen() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  connect() {
    this.clearTimers();
    if (this.stopped || this.ws) return;
    if (!navigator.onLine) return this.setStatus("offline");
    this.setStatus(this.failures ? "reconnecting" : "connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // resume=1: the server holds live frames until our first frame, a resume (js/resume.js).
    const ws = new WebSocket(`${scheme}://${location.host}/ws?resume=1`, PROTOCOLS);
    let opened = false;
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.failures = 0;
      this.setStatus("connected");
      this.schedulePing();
      this.onOpen({ reconnected });
    };
    ws.onmessage = (event) => {
      this.alive();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.handle(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closed(event.code, opened);
    };
  }

  handle(frame) {
    switch (frame.event) {
      case "pong":
        return;
      case "token_expiring":
        return this.renew();
      case "auth_ok":
        return;
      default:
        this.onFrame(frame);
    }
  }

  // Renew the open socket before the server closes it: a new token pair (which also
  // renews the cookies), then the access token on the socket.
  async renew() {
    try {
      const result = await api.refresh();
      this.send({ event: "auth", token: result.tokens.access_token });
    } catch (error) {
      if (error.status === 401) this.onSessionLost();
    }
  }

  async closed(code, opened) {
    this.clearTimers();
    if (this.stopped) return;
    if (code === CLOSE_TOKEN_EXPIRED || code === CLOSE_SESSION_REVOKED || !opened) {
      // A refused handshake may be an expired access cookie: renew it before retrying.
      try {
        await api.refresh();
      } catch (error) {
        if (error.status === 401) return this.onSessionLost();
      }
    }
    this.failures += 1;
    this.setStatus(navigator.onLine ? "reconnecting" : "offline");
    const delay = BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)];
    // Jitter, so a server restart is not met by every client in the same instant.
    this.timers.retry = setTimeout(() => this.connect(), delay * (0.75 + Math.random() / 2));
  }

  // Give up on the current connection at once (no network, or no answer to a ping):
  // waiting for TCP to notice can take minutes.
  drop(status) {
    const ws = this.ws;
    if (!ws) return this.setStatus(status);
    this.ws = null;
    // Frames still arriving on the abandoned socket would race the catch-up: ignore them.
    ws.onclose = null;
    ws.onmessage = null;
    ws.close();
    this.closed(1006, true);
    this.setStatus(status);
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.failures = Math.max(this.failures, 1);
    this.connect();
  }

  schedulePing() {
    clearTimeout(this.timers.ping);
    this.timers.ping = setTimeout(() => {
      this.send({ event: "ping" });
      this.timers.pong = setTimeout(() => this.drop("reconnecting"), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  alive() {
    clearTimeout(this.timers.pong);
    this.schedulePing();
  }

  clearTimers() {
    for (const timer of Object.values(this.timers)) clearTimeout(timer);
    this.timers = {};
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.onStatus(status);
  }
}
