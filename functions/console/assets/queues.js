// Queues: every queue with its counts, lag, state and last hour; one queue with its chart and
// the operator's actions (pause, resume, redrive, purge).

import { historyChart, sparkline } from "./chart.js";
import { fill, formatDuration, formatTime, h } from "./dom.js";

export const STATES = ["idle", "pending", "running", "finished", "error", "cancelled"];
const POLL_MS = 5_000; // counts trail the stream; a poll catches what an update ran ahead of
const HISTORY_EVERY_MS = 60_000;
const SPARKLINES = 20; // one history call per queue shown: the first queues only
const FOLLOWED_QUEUES = 40; // a socket holds at most 50 subscriptions
const RUN_CALLS = 50; // a redrive or purge of a deep queue takes several calls

/** Refresh twice after a live update: at once, and after the counts' consumer caught up. */
export function refresher(refresh) {
  let timers = [];
  return {
    soon() {
      if (timers.length) return;
      timers = [setTimeout(refresh, 300), setTimeout(() => ((timers = []), refresh()), 1800)];
    },
    stop() {
      timers.forEach(clearTimeout);
      timers = [];
    },
  };
}

/** A view whose counts follow live updates and a poll, and whose chart a slower poll. */
function countsView(node, topics, refresh, refreshHistory, stop) {
  const soon = refresher(refresh);
  const poll = setInterval(refresh, POLL_MS);
  const historyPoll = setInterval(refreshHistory, HISTORY_EVERY_MS);
  return {
    node,
    topics,
    onLive: (event) => {
      if (event.type === "task_update" || event.type === "task_removed") soon.soon();
    },
    onResync: refresh,
    dispose() {
      stop();
      soon.stop();
      clearInterval(poll);
      clearInterval(historyPoll);
    },
  };
}

function lagOf(queue) {
  return queue.oldest_pending_at ? formatDuration(Date.now() - Date.parse(queue.oldest_pending_at)) : "-";
}

function jobsLink(type, state, text) {
  const query = new URLSearchParams({ type, ...(state ? { state } : {}) });
  return h("a", { href: `#/jobs?${query}` }, text);
}

async function setPaused(context, type, paused) {
  try {
    await context.api.patch(`/v1/queues/${encodeURIComponent(type)}`, { paused });
    context.notify(`${type} ${paused ? "paused" : "resumed"}: claims ${paused ? "lease nothing" : "lease again"}.`);
    return true;
  } catch (error) {
    context.notify(`Could not ${paused ? "pause" : "resume"} ${type}: ${error.message}`, "error");
    return false;
  }
}

export function queuesPage(context) {
  const body = h("tbody");
  const rows = new Map(); // type -> {row, cells, pause, spark}
  const status = h("p", { class: "muted", "aria-live": "polite" }, "Loading...");
  let queues = [];
  let stopped = false;

  function row(queue) {
    const cells = Object.fromEntries(STATES.map((state) => [state, h("td", { class: "num", "data-count": state })]));
    const lag = h("td", { class: "num", "data-lag": "" });
    const state = h("td", { "data-paused": "" });
    const spark = h("td", { class: "spark" });
    const pause = h("button", { type: "button", class: "small" });
    pause.addEventListener("click", async () => {
      const current = rows.get(queue.type).queue;
      pause.disabled = true;
      if (await setPaused(context, queue.type, !current.paused)) await refresh();
      pause.disabled = false;
    });
    const tr = h(
      "tr",
      { "data-queue": queue.type },
      h("th", { scope: "row" }, h("a", { href: `#/queues/${encodeURIComponent(queue.type)}` }, queue.type)),
      STATES.map((s) => cells[s]),
      lag,
      spark,
      state,
      h("td", {}, pause),
    );
    return { row: tr, cells, lag, state, spark, pause, queue };
  }

  function show(queue) {
    let entry = rows.get(queue.type);
    if (!entry) {
      entry = row(queue);
      rows.set(queue.type, entry);
    }
    entry.queue = queue;
    for (const state of STATES) {
      const count = queue.counts[state] || 0;
      fill(entry.cells[state], count ? jobsLink(queue.type, state, String(count)) : "0");
    }
    entry.lag.textContent = lagOf(queue);
    fill(entry.state, queue.paused ? h("span", { class: "badge paused" }, "paused") : "active");
    entry.pause.textContent = queue.paused ? "Resume" : "Pause";
    entry.pause.setAttribute("aria-label", `${queue.paused ? "Resume" : "Pause"} ${queue.type}`);
    return entry.row;
  }

  async function refresh() {
    if (stopped) return;
    try {
      const page = await context.api.get("/v1/queues", { limit: 100 });
      if (stopped) return;
      queues = page.data;
      const seen = new Set(queues.map((q) => q.type));
      for (const type of [...rows.keys()]) if (!seen.has(type)) rows.delete(type);
      body.replaceChildren(...queues.map(show));
      status.textContent = queues.length
        ? `${queues.length} queue${queues.length === 1 ? "" : "s"}${page.next_cursor ? " (the first 100)" : ""}`
        : "No queue yet: create a job and its queue appears here.";
      context.follow();
    } catch (error) {
      status.textContent = `Could not read the queues: ${error.message}`;
    }
  }

  async function refreshHistory() {
    for (const queue of queues.slice(0, SPARKLINES)) {
      try {
        const history = await context.api.get(`/v1/queues/${encodeURIComponent(queue.type)}/history`);
        const entry = rows.get(queue.type);
        if (entry && !stopped) fill(entry.spark, sparkline(history.data));
      } catch {
        /* a queue deleted meanwhile: its row goes at the next refresh */
      }
    }
  }

  refresh().then(refreshHistory);

  const node = h(
    "section",
    { "aria-labelledby": "queues-title" },
    h("h1", { id: "queues-title", tabindex: "-1" }, "Queues"),
    status,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "queues" },
        h("caption", { class: "visually-hidden" }, "Queues with their jobs by state"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Queue"),
            STATES.map((s) => h("th", { scope: "col", class: "num" }, s)),
            h("th", { scope: "col", class: "num" }, "Lag"),
            h("th", { scope: "col" }, "Last hour"),
            h("th", { scope: "col" }, "State"),
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")),
          ),
        ),
        body,
      ),
    ),
  );
  const topics = () => queues.slice(0, FOLLOWED_QUEUES).map((q) => ({ type: q.type }));
  return countsView(node, topics, refresh, refreshHistory, () => (stopped = true));
}

async function runToEnd(call) {
  const total = { retried: 0, skipped: 0, deleted: 0 };
  for (let i = 0; i < RUN_CALLS; i++) {
    const answer = await call();
    for (const key of Object.keys(total)) total[key] += answer[key] || 0;
    if (!answer.more) return { ...total, more: false };
  }
  return { ...total, more: true };
}

export function queuePage(context, type) {
  const path = `/v1/queues/${encodeURIComponent(type)}`;
  const summary = h("div", { class: "queue-summary", "aria-live": "polite" }, "Loading...");
  const counts = h("dl", { class: "counts" });
  const chart = h("div", { class: "chart-wrap" });
  const pause = h("button", { type: "button" }, "Pause");
  const redriveStates = h("select", { id: "redrive-states" },
    h("option", { value: "error" }, "failed jobs"),
    h("option", { value: "cancelled" }, "cancelled jobs"),
    h("option", { value: "error,cancelled" }, "failed and cancelled jobs"),
  ); // prettier-ignore
  const redriveCode = h("input", { id: "redrive-code", name: "error_code", placeholder: "any", autocomplete: "off" });
  const redrive = h("button", { type: "button" }, "Redrive");
  const purge = h("button", { type: "button", class: "danger" }, "Purge");
  let queue = null;
  let stopped = false;
  // The actions act on the queue as read: until the first read answers they are disabled
  // (a click then would do nothing), and each is disabled while it runs.
  for (const button of [pause, redrive, purge]) button.disabled = true;
  let busy = 0;
  const enable = () => {
    if (queue && !busy) for (const button of [pause, redrive, purge]) button.disabled = false;
  };

  async function refresh() {
    try {
      const found = await context.api.get(path);
      if (stopped) return;
      queue = found;
      fill(
        summary,
        h(
          "p",
          {},
          queue.paused ? h("span", { class: "badge paused", "data-paused": "" }, "paused") : h("span", { "data-paused": "" }, "active"),
          ` · ${queue.fifo ? "fifo" : "oldest few, at random"}` +
            (queue.shards > 1 ? ` · ${queue.shards} shards` : "") + // older services send no shards: one
            ` · lag ${lagOf(queue)} · changed ${formatTime(queue.modified)}`,
        ),
      );
      fill(
        counts,
        STATES.map((state) =>
          h("div", { "data-count": state }, h("dt", {}, state), h("dd", {}, jobsLink(type, state, String(queue.counts[state] || 0)))),
        ),
      );
      pause.textContent = queue.paused ? "Resume" : "Pause";
      enable();
    } catch (error) {
      fill(summary, h("p", { class: "notice notice-error", role: "alert" }, error.status === 404 ? `No queue ${type}.` : error.message));
    }
  }

  async function refreshHistory() {
    try {
      const history = await context.api.get(`${path}/history`);
      if (!stopped) fill(chart, historyChart(history.data));
    } catch (error) {
      fill(chart, h("p", { class: "muted" }, `No history: ${error.message}`));
    }
  }

  pause.addEventListener("click", async () => {
    if (!queue) return;
    busy += 1;
    pause.disabled = true;
    if (await setPaused(context, type, !queue.paused)) await refresh();
    busy -= 1;
    enable();
  });

  redrive.addEventListener("click", async () => {
    if (!queue) return;
    const states = redriveStates.value.split(",");
    const many = states.reduce((sum, state) => sum + (queue.counts[state] || 0), 0);
    const code = redriveCode.value.trim();
    const which = `${many} ${states.map((s) => (s === "error" ? "failed" : s)).join(" or ")} job${many === 1 ? "" : "s"}`;
    const question = `Put ${which} of ${type}${code ? ` (those whose error code is ${code})` : ""} back in the queue?`;
    if (!(await context.confirm(question, `Redrive ${many}`))) return;
    busy += 1;
    redrive.disabled = true;
    try {
      const body = { states, ...(code ? { error_code: code } : {}) };
      const done = await runToEnd(() => context.api.post(`${path}/redrive`, body));
      context.notify(`Redrive of ${type}: ${done.retried} back in the queue, ${done.skipped} skipped${done.more ? ", more remain: run it again" : ""}.`);
    } catch (error) {
      context.notify(`Redrive failed: ${error.message}`, "error");
    }
    busy -= 1;
    await refresh();
    enable();
  });

  purge.addEventListener("click", async () => {
    if (!queue) return;
    const many = STATES.filter((s) => s !== "running").reduce((sum, s) => sum + (queue.counts[s] || 0), 0);
    const question = `Delete all ${many} jobs of ${type} that are not running, with their messages? This cannot be undone.`;
    if (!(await context.confirm(question, `Delete ${many} jobs`))) return;
    busy += 1;
    purge.disabled = true;
    try {
      const done = await runToEnd(() => context.api.delete(`${path}/jobs`));
      context.notify(`Purged ${type}: ${done.deleted} jobs deleted${done.more ? ", more remain: run it again" : ""}.`);
    } catch (error) {
      context.notify(`Purge failed: ${error.message}`, "error");
    }
    busy -= 1;
    await refresh();
    enable();
  });

  refresh();
  refreshHistory();

  const actions = h(
    "div",
    { class: "actions" },
    pause,
    h(
      "span",
      { class: "redrive" },
      h("label", { for: "redrive-states" }, "Redrive"),
      redriveStates,
      h("label", { for: "redrive-code" }, "error code"),
      redriveCode,
      redrive,
    ),
    context.role === "admin" ? purge : null,
  );
  const node = h(
    "section",
    { "aria-labelledby": "queue-title", "data-queue-page": type },
    h("p", { class: "crumbs" }, h("a", { href: "#/queues" }, "Queues"), " / "),
    h("h1", { id: "queue-title", tabindex: "-1" }, type),
    summary,
    counts,
    actions,
    h("h2", {}, "Last hour, per minute"),
    chart,
    h("p", {}, jobsLink(type, null, `Every job of ${type}`)),
  );
  return countsView(node, () => [{ type }], refresh, refreshHistory, () => (stopped = true));
}
