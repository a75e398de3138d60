// Live updates over the WebSocket API: one socket per tab, subscriptions kept across
// reconnects, versions already seen dropped (delivery is at least once), and a "resync"
// after every reconnect so a view reads what it missed while away.

const PING_EVERY_MS = 5 * 60 * 1000; // API Gateway closes a socket after 10 idle minutes
const MAX_BACKOFF_MS = 30_000;

export class Live {
  constructor(url, token) {
    this.url = url;
    this.token = token;
    this.topics = new Map(); // key -> topic object ({}, {job_id}, {type}, {owner})
    this.listeners = new Set();
    this.seen = new Map(); // job_id -> highest version delivered
    this.state = "connecting";
    this.backoff = 1000;
    this.closed = false;
    this.connectedOnce = false;
    this.socket = null;
    this.pinger = null;
    this.awaiting = 0; // subscribes sent and not yet answered (every message gets one reply)
  }

  start() {
    if (!this.url) {
      this.setState("off");
      return;
    }
    this.open();
  }

  stop() {
    this.closed = true;
    clearInterval(this.pinger);
    if (this.socket) this.socket.close(1000, "page closed");
  }

  /** fn(event): {type: "task_update"|"task_removed"|..., ...} or {type: "resync"} or {type: "state"}. */
  listen(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Follow exactly these topics (what the view on screen needs); others are unsubscribed. */
  follow(topics) {
    const wanted = new Map(topics.map((topic) => [JSON.stringify(topic), topic]));
    for (const [key, topic] of this.topics) {
      if (!wanted.has(key)) this.send({ action: "unsubscribe", ...topic });
    }
    for (const [key, topic] of wanted) {
      if (!this.topics.has(key)) this.subscribe(topic);
    }
    this.topics = wanted;
  }

  subscribe(topic) {
    if (this.send({ action: "subscribe", ...topic })) {
      this.awaiting += 1;
      this.setState("subscribing");
    }
  }

  open() {
    const socket = new WebSocket(`${this.url}?token=${encodeURIComponent(this.token)}`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.backoff = 1000;
      this.awaiting = 0;
      for (const topic of this.topics.values()) this.subscribe(topic);
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.send({ action: "ping" }), PING_EVERY_MS);
      if (!this.awaiting) this.setState("live");
      if (this.connectedOnce) this.emit({ type: "resync" });
      this.connectedOnce = true;
    });
    socket.addEventListener("message", (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if ((data.type === "task_update" || data.type === "task_removed") && data.job_id) {
        const last = this.seen.get(data.job_id) || 0;
        if (Number(data.version) <= last) return;
        this.seen.set(data.job_id, Number(data.version));
      }
      // "live" once the server has answered every subscribe: updates from then on arrive.
      if (data.type === "subscribed" || (data.type === "error" && data.action === "subscribe")) {
        this.awaiting = Math.max(0, this.awaiting - 1);
        if (!this.awaiting) this.setState("live");
      }
      if (data.type === "error") console.warn("live updates:", data.error && data.error.message);
      this.emit(data);
    });
    socket.addEventListener("close", () => {
      clearInterval(this.pinger);
      this.awaiting = 0;
      if (this.closed) return;
      this.setState("reconnecting");
      setTimeout(() => this.open(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    });
  }

  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  setState(state) {
    this.state = state;
    this.emit({ type: "state", state });
  }

  emit(event) {
    for (const fn of this.listeners) {
      try {
        fn(event);
      } catch (error) {
        console.error(error);
      }
    }
  }
}
