// Schedules: each recurring job with its cadence, next and last run; pause and resume.

import { fill, formatDuration, formatTime, h } from "./dom.js";

const POLL_MS = 15_000; // schedules change at most once a minute, and not through the stream

function cadenceOf(schedule) {
  if (schedule.cron) return `cron ${schedule.cron} (${schedule.timezone})`;
  return `every ${formatDuration(schedule.every_ms)}`;
}

export function schedulesPage(context) {
  const body = h("tbody");
  const status = h("p", { class: "muted", "aria-live": "polite" }, "Loading...");
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  let cursor = null;
  let stopped = false;

  function row(schedule) {
    const toggle = h(
      "button",
      { type: "button", class: "small", "aria-label": `${schedule.paused ? "Resume" : "Pause"} schedule ${schedule.name}` },
      schedule.paused ? "Resume" : "Pause",
    );
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        const changed = await context.api.patch(`/v1/schedules/${encodeURIComponent(schedule.name)}`, { paused: !schedule.paused });
        context.notify(`${schedule.name} ${changed.paused ? "paused" : `resumed: next run ${formatTime(changed.next_run_at)}`}.`);
        await refresh();
      } catch (error) {
        context.notify(`Could not change ${schedule.name}: ${error.message}`, "error");
        toggle.disabled = false;
      }
    });
    return h(
      "tr",
      { "data-schedule": schedule.name },
      h("th", { scope: "row" }, schedule.name),
      h("td", {}, cadenceOf(schedule)),
      h("td", {}, h("a", { href: `#/queues/${encodeURIComponent(schedule.job.type)}` }, schedule.job.type)),
      h("td", { "data-paused": "" }, schedule.paused ? h("span", { class: "badge paused" }, "paused") : "active"),
      h("td", { "data-next": "" }, schedule.next_run_at ? formatTime(schedule.next_run_at) : "-"),
      h(
        "td",
        { class: "wide-only" },
        schedule.last_run_at ? formatTime(schedule.last_run_at) : "-",
        schedule.last_job_id ? [" ", h("a", { href: `#/jobs/${encodeURIComponent(schedule.last_job_id)}` }, "job")] : null,
      ),
      h("td", {}, toggle),
    );
  }

  async function refresh() {
    try {
      const page = await context.api.get("/v1/schedules", { limit: 100, cursor });
      if (stopped) return;
      body.replaceChildren(...page.data.map(row));
      status.textContent = page.data.length ? "" : "No schedule: `jobs schedule put` creates one.";
      fill(
        pager,
        page.next_cursor
          ? h("button", { type: "button", class: "link", onclick: () => ((cursor = page.next_cursor), refresh()) }, "Next page")
          : null,
        cursor ? h("button", { type: "button", class: "link", onclick: () => ((cursor = null), refresh()) }, "First page") : null,
      );
    } catch (error) {
      status.textContent = `Could not read the schedules: ${error.message}`;
    }
  }

  const poll = setInterval(refresh, POLL_MS);
  refresh();
  const node = h(
    "section",
    { "aria-labelledby": "schedules-title" },
    h("h1", { id: "schedules-title", tabindex: "-1" }, "Schedules"),
    status,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "schedules" },
        h("caption", { class: "visually-hidden" }, "Schedules by name"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Name", "Cadence", "Queue", "State", "Next run"].map((t) => h("th", { scope: "col" }, t)),
            h("th", { scope: "col", class: "wide-only" }, "Last run"),
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")),
          ),
        ),
        body,
      ),
    ),
    pager,
  );
  return {
    node,
    topics: () => [],
    onResync: refresh,
    dispose() {
      stopped = true;
      clearInterval(poll);
    },
  };
}
