// Jobs: the list's filters and cursor paging, rows kept live. An end user sees own jobs as
// cards with their progress, speeds and latest message, and may cancel them.

import { fill, formatTime, h, progressBar, stateBadge } from "./dom.js";
import { STATES } from "./queues.js";

const FILTERS = ["type", "state", "owner", "ref_id", "created_from", "created_to"];
const FOLLOWED_JOBS = 45; // a socket holds at most 50 subscriptions
const previousCursors = new Map(); // filters -> cursors of the pages before this one

/** The update of a live message applied to a job as the list holds it. */
export function applyUpdate(job, update) {
  const next = { ...job, state: update.state, progress: update.progress, speeds: update.speeds || [] };
  if (update.new_title !== null && update.new_title !== undefined) next.title = update.new_title;
  if (update.new_status !== null && update.new_status !== undefined) next.status = update.new_status;
  next.complete = Boolean(update.complete);
  next.modified = update.modified || job.modified;
  next.version = update.version;
  if (update.message_to_append) next.last_message = update.message_to_append;
  return next;
}

/** Whether a job belongs in a listing with these filters (as GET /v1/jobs applies them). */
export function matches(job, filters) {
  for (const name of ["type", "state", "owner", "ref_id"]) {
    if (filters.get(name) && job[name] !== filters.get(name)) return false;
  }
  const created = Date.parse(job.created);
  if (filters.get("created_from") && created < Date.parse(filters.get("created_from"))) return false;
  if (filters.get("created_to") && created > Date.parse(filters.get("created_to"))) return false;
  return true;
}

function toIso(localValue) {
  // <input type="datetime-local"> gives the reader's local time without a zone.
  if (!localValue) return "";
  const at = new Date(localValue);
  return Number.isNaN(at.getTime()) ? "" : at.toISOString();
}

function toLocalInput(iso) {
  if (!iso) return "";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  const local = new Date(at.getTime() - at.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

function speedsText(speeds) {
  return (speeds || []).map((s) => s.as_text || `${s.title}: ${s.speed} ${s.unit}`).join(" · ");
}

function cancelButton(context, job, after) {
  const button = h("button", { type: "button", class: "small", "aria-label": `Cancel job ${job.title || job.id}` }, "Cancel");
  button.addEventListener("click", async () => {
    if (!(await context.confirm(`Cancel "${job.title || job.type}" (${job.id})?`, "Cancel the job"))) return;
    button.disabled = true;
    try {
      const answer = await context.api.post(`/v1/jobs/${encodeURIComponent(job.id)}/cancel`);
      context.notify(answer.state === "cancelled" ? "Job cancelled." : "Cancel asked: the worker stops at its next heartbeat.");
      after(answer);
    } catch (error) {
      context.notify(`Could not cancel: ${error.message}`, "error");
      button.disabled = false;
    }
  });
  return button;
}

function filterForm(context, query) {
  const inputs = {};
  const field = (name, label, input) => {
    inputs[name] = input;
    return h("div", { class: "field" }, h("label", { for: `filter-${name}` }, label), input);
  };
  const text = (name) => h("input", { id: `filter-${name}`, name, value: query.get(name) || "", autocomplete: "off" });
  const state = h(
    "select",
    { id: "filter-state", name: "state" },
    h("option", { value: "" }, "any"),
    STATES.map((s) => h("option", { value: s, selected: query.get("state") === s }, s)),
  );
  const time = (name) =>
    h("input", { id: `filter-${name}`, name, type: "datetime-local", value: toLocalInput(query.get(name)) });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter jobs" },
    field("type", "Queue", text("type")),
    field("state", "State", state),
    field("owner", "Owner", text("owner")),
    field("ref_id", "Ref id", text("ref_id")),
    field("created_from", "Created from", time("created_from")),
    field("created_to", "Created to", time("created_to")),
    h("div", { class: "field buttons" }, h("button", { type: "submit" }, "Filter"), h("a", { href: "#/jobs" }, "Clear")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of FILTERS) {
      const value = name.startsWith("created_") ? toIso(inputs[name].value) : inputs[name].value.trim();
      if (value) next.set(name, value);
    }
    context.navigate(`#/jobs?${next}`);
  });
  return form;
}

export function jobsPage(context, query) {
  const asUser = context.role === "user";
  const filters = new URLSearchParams();
  for (const name of FILTERS) if (query.get(name) && !asUser) filters.set(name, query.get(name));
  const filterKey = filters.toString();
  const cursor = query.get("cursor") || "";
  const jobs = new Map(); // id -> {job, node}
  const list = asUser ? h("ul", { class: "cards" }) : h("tbody");
  const status = h("p", { class: "muted", "aria-live": "polite" }, "Loading...");
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  let order = [];
  let stopped = false;

  function row(job) {
    return h(
      "tr",
      { "data-job": job.id, class: job.removed ? "removed" : "" },
      h("td", { class: "id" }, h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.id)),
      h("td", {}, job.type),
      h("td", { "data-state": job.state }, stateBadge(job.removed ? "deleted" : job.state)),
      h("td", { class: "text" }, job.title ? h("strong", {}, job.title) : null, job.title && job.status ? " " : null, job.status || ""),
      h("td", { "data-progress": "" }, progressBar(job.progress, `progress of ${job.id}`)),
      h("td", { class: "wide-only" }, job.owner || ""),
      h("td", { class: "wide-only" }, formatTime(job.created)),
    );
  }

  function card(job) {
    const finished = job.complete || job.removed;
    return h(
      "li",
      { class: "card", "data-job": job.id },
      h(
        "div",
        { class: "card-head" },
        h("a", { href: `#/jobs/${encodeURIComponent(job.id)}`, class: "card-title" }, job.title || job.type),
        stateBadge(job.removed ? "deleted" : job.state),
      ),
      h("p", { class: "card-status", "data-status": "" }, job.status || ""),
      job.progress ? h("div", { "data-progress": "" }, progressBar(job.progress, `progress of ${job.title || job.id}`)) : null,
      job.speeds && job.speeds.length ? h("p", { class: "muted" }, speedsText(job.speeds)) : null,
      job.last_message ? h("p", { class: "card-message", "data-message": "" }, job.last_message) : null,
      h(
        "div",
        { class: "card-foot" },
        h("span", { class: "muted" }, `created ${formatTime(job.created)}`),
        finished ? null : cancelButton(context, job, (answer) => update(answer)),
      ),
    );
  }

  function render(job) {
    return asUser ? card(job) : row(job);
  }

  function update(job) {
    const entry = jobs.get(job.id);
    if (!entry) return;
    const node = render(job);
    entry.node.replaceWith(node);
    jobs.set(job.id, { job, node });
  }

  function show(data) {
    jobs.clear();
    order = data.map((job) => job.id);
    list.replaceChildren(
      ...data.map((job) => {
        const node = render(job);
        jobs.set(job.id, { job, node });
        return node;
      }),
    );
  }

  async function load() {
    try {
      const page = await context.api.get("/v1/jobs", { ...Object.fromEntries(filters), cursor, limit: 20 });
      if (stopped) return;
      show(page.data);
      status.textContent = page.data.length ? "" : cursor ? "No more jobs." : "No job matches.";
      const before = previousCursors.get(filterKey) || [];
      const base = filterKey ? `#/jobs?${filterKey}&` : "#/jobs?";
      const links = [];
      if (cursor) {
        const previous = before[before.length - 1] || "";
        const back = h("a", { href: previous ? `${base}cursor=${encodeURIComponent(previous)}` : base.slice(0, -1) }, "Previous page");
        back.addEventListener("click", () => previousCursors.set(filterKey, before.slice(0, -1)));
        links.push(back);
      }
      if (page.next_cursor) {
        const next = h("a", { href: `${base}cursor=${encodeURIComponent(page.next_cursor)}` }, "Next page");
        next.addEventListener("click", () => previousCursors.set(filterKey, [...before, cursor]));
        links.push(next);
      }
      fill(pager, links);
      context.follow();
    } catch (error) {
      status.textContent = `Could not list jobs: ${error.message}`;
    }
  }

  async function arrived(update) {
    // A new job at the top of the first page, when it matches the filters.
    if (cursor || update.version !== 1) return;
    try {
      const job = await context.api.get(`/v1/jobs/${encodeURIComponent(update.job_id)}`);
      if (stopped || jobs.has(job.id) || !matches(job, filters)) return;
      const node = render(job);
      jobs.set(job.id, { job, node });
      order.unshift(job.id);
      list.prepend(node);
      status.textContent = "";
      context.follow();
    } catch {
      /* gone meanwhile */
    }
  }

  load();
  const table = asUser
    ? list
    : h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "jobs" },
          h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Id", "Queue", "State", "Title and status", "Progress"].map((t) => h("th", { scope: "col" }, t)),
              ["Owner", "Created"].map((t) => h("th", { scope: "col", class: "wide-only" }, t)),
            ),
          ),
          list,
        ),
      );
  const node = h(
    "section",
    { "aria-labelledby": "jobs-title" },
    h("h1", { id: "jobs-title", tabindex: "-1" }, asUser ? "My jobs" : "Jobs"),
    asUser ? null : filterForm(context, query),
    status,
    table,
    pager,
  );
  return {
    node,
    topics: () => {
      if (asUser) return [{}];
      if (filters.get("type")) return [{ type: filters.get("type") }];
      if (filters.get("owner")) return [{ owner: filters.get("owner") }];
      return order.slice(0, FOLLOWED_JOBS).map((id) => ({ job_id: id }));
    },
    onLive: (event) => {
      const entry = jobs.get(event.job_id);
      if (event.type === "task_update") {
        if (entry) update(applyUpdate(entry.job, event));
        else arrived(event);
      } else if (event.type === "task_removed" && entry) {
        update({ ...entry.job, removed: true });
      }
    },
    onResync: load,
    dispose() {
      stopped = true;
    },
  };
}
