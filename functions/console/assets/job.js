// One job: every field, params and result as formatted JSON, its progress and speeds, its
// messages streaming in live, and cancel, retry and delete.

import { fill, formatJson, formatTime, h, progressBar, stateBadge } from "./dom.js";
import { applyUpdate } from "./jobs.js";

const MESSAGE_PAGES = 20; // 100 a page: the first 2,000 messages, then a link for more

const FIELDS = [
  ["id", "Id"], ["type", "Queue"], ["state", "State"], ["priority", "Priority"], ["title", "Title"],
  ["status", "Status"], ["owner", "Owner"], ["processor", "Created by"], ["ref_id", "Ref id"],
  ["schedule", "Schedule"], ["attempts", "Attempts"], ["max_retries", "Max retries"],
  ["cancel_requested", "Cancel requested"], ["lease_owner", "Worker"], ["locked_until", "Leased until"],
  ["available_at", "Available at"], ["execute_until", "Deadline"], ["created", "Created"],
  ["started", "Started"], ["completed", "Completed"], ["modified", "Modified"], ["version", "Version"],
  ["depends_on", "Depends on"],
]; // prettier-ignore
const TIMES = new Set(["locked_until", "available_at", "execute_until", "created", "started", "completed", "modified"]);

function valueOf(job, name) {
  const value = job[name];
  if (value === null || value === undefined) return h("span", { class: "muted" }, "-");
  if (name === "state") return stateBadge(value);
  if (TIMES.has(name)) return h("time", { datetime: value, title: value }, formatTime(value));
  if (name === "depends_on") {
    return value.length ? value.map((id) => h("a", { href: `#/jobs/${encodeURIComponent(id)}`, class: "id" }, id, " ")) : "-";
  }
  return String(value);
}

export function jobPage(context, id) {
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  const heading = h("h1", { id: "job-title", tabindex: "-1" }, id);
  const fields = h("dl", { class: "fields" });
  const progress = h("div", { class: "job-progress", "data-progress": "" });
  const speeds = h("ul", { class: "speeds" });
  const params = h("pre", { class: "json", "data-params": "" });
  const result = h("pre", { class: "json", "data-result": "" });
  const errorBox = h("div", { class: "job-error" });
  const messages = h("ol", { class: "messages", "aria-live": "polite", "data-messages": "" });
  const more = h("p");
  const actions = h("div", { class: "actions" });
  let job = null;
  let stopped = false;

  function button(label, run, kind) {
    const node = h("button", { type: "button", class: kind || "" }, label);
    node.addEventListener("click", async () => {
      node.disabled = true;
      try {
        await run();
      } catch (error) {
        context.notify(`${label} failed: ${error.message}`, "error");
      }
      node.disabled = false;
    });
    return node;
  }

  function show(next) {
    job = next;
    heading.textContent = job.title || job.id;
    fill(fields, FIELDS.map(([name, label]) => h("div", { "data-field": name }, h("dt", {}, label), h("dd", {}, valueOf(job, name)))));
    fill(progress, progressBar(job.progress, "progress"));
    fill(speeds, (job.speeds || []).map((s) => h("li", {}, s.as_text || `${s.title}: ${s.speed} ${s.unit}`)));
    params.textContent = formatJson(job.params);
    result.textContent = formatJson(job.result);
    fill(errorBox, job.error ? h("p", { class: "notice notice-error" }, `${job.error.code}: ${job.error.message}`) : null);
    const buttons = [];
    if (!job.complete) {
      buttons.push(
        button("Cancel", async () => {
          if (!(await context.confirm(`Cancel job ${job.title || job.id}?`, "Cancel the job"))) return;
          show(await context.api.post(`${path}/cancel`));
        }),
      );
    }
    if (context.role !== "user" && (job.state === "error" || job.state === "cancelled")) {
      buttons.push(
        button("Retry", async () => {
          show(await context.api.post(`${path}/retry`));
          context.notify("Back in the queue.");
        }),
      );
    }
    if (context.role !== "user") {
      buttons.push(
        button(
          "Delete",
          async () => {
            if (!(await context.confirm(`Delete job ${job.id} and its messages? This cannot be undone.`, "Delete"))) return;
            await context.api.delete(path);
            context.notify("Job deleted.");
            context.navigate(`#/jobs?type=${encodeURIComponent(job.type)}`);
          },
          "danger",
        ),
      );
    }
    fill(actions, buttons);
  }

  // A message is known by its time and text: the one an update appends is stamped with the
  // job's `modified`. Updates that arrive while the list loads wait for it, then join it.
  let shown = new Set();
  let arriving = null; // [text, at] pairs while a load runs

  function appendMessage(text, at) {
    const key = `${at}\u0000${text}`;
    if (shown.has(key)) return;
    shown.add(key);
    messages.append(h("li", {}, h("time", { datetime: at || "" }, formatTime(at)), " ", h("span", { class: "message" }, text)));
  }

  function liveMessage(text, at) {
    if (arriving) arriving.push([text, at]);
    else appendMessage(text, at);
  }

  async function loadMessages() {
    arriving = [];
    const loaded = [];
    let cursor = null;
    try {
      for (let page = 0; page < MESSAGE_PAGES; page++) {
        const answer = await context.api.get(`${path}/messages`, { limit: 100, cursor });
        if (stopped) return;
        loaded.push(...answer.data);
        cursor = answer.next_cursor;
        if (!cursor) break;
      }
    } finally {
      const late = arriving || [];
      arriving = null;
      shown = new Set();
      messages.replaceChildren();
      loaded.forEach((m) => appendMessage(m.message, m.at));
      late.forEach(([text, at]) => appendMessage(text, at));
    }
    fill(more, cursor ? "More messages than shown: the first 2,000 are here." : null);
  }

  async function refreshJob() {
    try {
      const found = await context.api.get(path);
      if (!stopped) show(found);
    } catch {
      /* deleted meanwhile: task_removed says so */
    }
  }

  async function load() {
    try {
      show(await context.api.get(path));
      await loadMessages();
    } catch (error) {
      fill(fields, h("p", { class: "notice notice-error", role: "alert" }, error.status === 404 ? `No job ${id} (or not yours).` : error.message));
    }
  }

  load();
  const node = h(
    "section",
    { "aria-labelledby": "job-title", "data-job-page": id },
    h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, context.role === "user" ? "My jobs" : "Jobs"), " / "),
    heading,
    actions,
    progress,
    speeds,
    errorBox,
    fields,
    h("h2", {}, "Params"),
    params,
    h("h2", {}, "Result"),
    result,
    h("h2", {}, "Messages"),
    messages,
    more,
  );
  return {
    node,
    topics: () => [{ job_id: id }],
    onLive: (event) => {
      if (event.job_id !== id || !job) return;
      if (event.type === "task_update") {
        if (event.truncated) {
          load();
          return;
        }
        show(applyUpdate(job, event));
        if (event.message_to_append) liveMessage(event.message_to_append, event.modified);
        if (event.complete) refreshJob(); // the result and the error are not in the update
      } else if (event.type === "task_removed") {
        fill(actions);
        context.notify(`This job was ${event.reason === "expired" ? "removed at the end of its retention" : "deleted"}.`);
      }
    },
    onResync: load,
    dispose() {
      stopped = true;
    },
  };
}
