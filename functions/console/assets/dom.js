// Building the page from data: every value becomes a text node or an attribute, never markup.
// Nothing in the console parses a string as HTML (tests/unit/test_console_assets.py checks).

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(node, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name.startsWith("on")) {
      throw new Error(`refusing a string event handler attribute: ${name}`);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An element: h("a", {href: "#/jobs"}, "Jobs"). Strings become text, whatever they hold. */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  apply(node, props);
  append(node, children);
  return node;
}

/** An SVG element, for the charts. */
export function svg(tag, props, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  apply(node, props);
  append(node, children);
  return node;
}

/** Replace everything inside a node. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** Any JSON value, indented, as text. */
export function formatJson(value) {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

/** A time of the API (ISO-8601 UTC) in the reader's zone; "" for null. */
export function formatTime(iso) {
  if (!iso) return "";
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? String(iso) : at.toLocaleString();
}

/** A duration in ms, short: "850 ms", "12 s", "3 min", "5 h", "2 d". */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  const abs = Math.max(0, ms);
  if (abs < 1000) return `${Math.round(abs)} ms`;
  if (abs < 120_000) return `${Math.round(abs / 1000)} s`;
  if (abs < 7_200_000) return `${Math.round(abs / 60_000)} min`;
  if (abs < 172_800_000) return `${Math.round(abs / 3_600_000)} h`;
  return `${Math.round(abs / 86_400_000)} d`;
}

/** A state as a badge; the state's name is its text. */
export function stateBadge(state) {
  return h("span", { class: `badge state-${String(state).replace(/[^a-z]/g, "")}` }, String(state));
}

/** A progress bar with its numbers: <progress> is read out by screen readers. */
export function progressBar(progress, label) {
  if (!progress) return h("span", { class: "muted" }, "-");
  const maximum = Number(progress.maximum) > 0 ? Number(progress.maximum) : 1;
  const current = Math.min(Math.max(Number(progress.current) || 0, 0), maximum);
  const percent = Math.round((current / maximum) * 100);
  const caption = `${progress.current}/${progress.maximum}${progress.title ? ` ${progress.title}` : ""}`;
  return h(
    "span",
    { class: "progress" },
    h("progress", { max: String(maximum), value: String(current), "aria-label": label || `progress ${percent}%` }),
    h("span", { class: "progress-text" }, caption),
  );
}
