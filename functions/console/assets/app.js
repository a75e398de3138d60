// The console's shell: the token, the navigation, the hash router and the views' lifecycle.

import { Api, claimsOf, saveToken, takeToken } from "./api.js";
import { fill, h } from "./dom.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";
import { Live } from "./live.js";
import { queuePage, queuesPage } from "./queues.js";
import { schedulesPage } from "./schedules.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const liveState = document.getElementById("live-state");
const notices = document.getElementById("notices");
const confirmDialog = document.getElementById("confirm");
const liveUrl = document.querySelector('meta[name="jobs-live-url"]').content;

let session = null; // {api, live, role, sub}
let current = null; // the view on screen: {node, topics, onLive, onResync, dispose}
let routedBefore = false;

function notify(text, kind = "info") {
  const notice = h("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  notices.append(notice);
  setTimeout(() => notice.remove(), kind === "error" ? 12_000 : 5_000);
}

/** Ask before an action that cannot be undone; resolves true when confirmed. */
function confirmAction(text, actionLabel) {
  return new Promise((resolve) => {
    const message = confirmDialog.querySelector(".confirm-text");
    const ok = confirmDialog.querySelector(".confirm-ok");
    message.textContent = text;
    ok.textContent = actionLabel;
    const done = () => {
      confirmDialog.removeEventListener("close", done);
      resolve(confirmDialog.returnValue === "ok");
    };
    confirmDialog.returnValue = "";
    confirmDialog.addEventListener("close", done);
    confirmDialog.showModal();
    confirmDialog.querySelector(".confirm-cancel").focus();
  });
}

function signInPage(message) {
  const input = h("input", {
    id: "token-input",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const form = h(
    "form",
    { class: "sign-in" },
    h("h1", { tabindex: "-1" }, "Sign in"),
    message ? h("p", { class: "notice notice-error", role: "alert" }, message) : null,
    h("p", {}, "Paste a token (a JWT with role service, admin or user). It is kept for this browser tab only."),
    h("label", { for: "token-input" }, "Token"),
    input,
    h("button", { type: "submit" }, "Use this token"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveToken(sessionStorage, input.value);
    start();
  });
  return form;
}

function signOut(message) {
  saveToken(sessionStorage, null);
  if (session) session.live.stop();
  session = null;
  showSignIn(message);
}

function showSignIn(message) {
  disposeView();
  fill(nav);
  fill(who);
  fill(liveState);
  fill(main, signInPage(message));
  main.querySelector("input").focus();
}

function navigation(role) {
  const links = role === "user" ? [["#/jobs", "My jobs"]] : [["#/queues", "Queues"], ["#/jobs", "Jobs"], ["#/schedules", "Schedules"]];
  return h(
    "ul",
    {},
    links.map(([href, label]) => h("li", {}, h("a", { href, "data-section": href.slice(2) }, label))),
  );
}

function markCurrent(section) {
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function disposeView() {
  if (current && current.dispose) current.dispose();
  current = null;
}

function route() {
  if (!session) return;
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const [path, queryString] = hash.split("?");
  const query = new URLSearchParams(queryString || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const home = session.role === "user" ? "/jobs" : "/queues";
  if (parts.length === 0) {
    window.location.replace("#" + home);
    return;
  }
  const context = {
    ...session,
    notify,
    confirm: confirmAction,
    navigate: (to) => (window.location.hash = to),
    // A view calls it when the rows it shows changed: the socket follows what is on screen.
    follow: () => current && current.topics && session.live.follow(current.topics()),
  };
  let view;
  const [section, id] = parts;
  if (section === "queues" && session.role !== "user") view = id ? queuePage(context, id) : queuesPage(context);
  else if (section === "jobs") view = id ? jobPage(context, id) : jobsPage(context, query);
  else if (section === "schedules" && session.role !== "user") view = schedulesPage(context);
  else {
    window.location.replace("#" + home);
    return;
  }
  disposeView();
  current = view;
  markCurrent(section);
  fill(main, view.node);
  session.live.follow(view.topics ? view.topics() : []);
  // After a move within the console, screen readers start at the new view's heading; on a
  // fresh load the page starts at its top (the skip link).
  const heading = main.querySelector("h1");
  if (heading && routedBefore) heading.focus({ preventScroll: true });
  routedBefore = true;
}

function start() {
  const token = takeToken(window.location, window.history, sessionStorage);
  if (!token) {
    showSignIn();
    return;
  }
  const claims = claimsOf(token);
  if (claims.exp && claims.exp * 1000 < Date.now()) {
    signOut("That token has expired; paste a new one.");
    return;
  }
  const api = new Api(token, () => signOut("The service refused the token (401); paste another."));
  // One call that any valid token may make, before the socket opens with it.
  api.get("/v1/schema").then(() => begin(token, claims, api), (error) => {
    if (error.status !== 401) begin(token, claims, api); // the service is down or busy: the views say so
  });
}

function begin(token, claims, api) {
  const live = new Live(liveUrl, token);
  session = { api, live, role: claims.role, sub: claims.sub };
  fill(nav, navigation(claims.role));
  fill(
    who,
    h("span", { class: "principal" }, `${claims.sub || "?"} (${claims.role || "?"})`),
    h("button", { type: "button", class: "link", onclick: () => signOut() }, "Sign out"),
  );
  live.listen((event) => {
    if (event.type === "state") {
      const label = { live: "live", off: "no live updates", subscribing: "subscribing" }[event.state] || event.state;
      fill(liveState, h("span", { class: `live live-${event.state}`, "data-state": event.state }, label));
      return;
    }
    if (!current) return;
    if (event.type === "resync" && current.onResync) current.onResync();
    else if (current.onLive) current.onLive(event);
  });
  live.start();
  route();
}

// A link with another token, opened in a tab that is signed in already, signs in with it.
window.addEventListener("hashchange", () => {
  if (!window.location.hash.startsWith("#token=")) {
    route();
    return;
  }
  if (session) session.live.stop();
  session = null;
  disposeView();
  // Nothing of the identity being replaced stays on screen while the new one signs in.
  fill(who);
  fill(main, h("p", { class: "muted" }, "Signing in…"));
  start();
});
start();
