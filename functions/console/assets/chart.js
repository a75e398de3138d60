// Per-minute history as hand-rolled SVG (smaller than any charting library): a line per
// series, axes on the large chart, none on the sparkline. Colours come from the stylesheet.

import { h, svg } from "./dom.js";

export const SERIES = [
  { key: "created", label: "created" },
  { key: "finished", label: "finished" },
  { key: "failed", label: "failed" },
];

function totals(history) {
  const sums = {};
  for (const { key } of SERIES) sums[key] = history.reduce((sum, minute) => sum + (Number(minute[key]) || 0), 0);
  return sums;
}

function summary(history) {
  const sums = totals(history);
  return `Last ${history.length} minutes: ` + SERIES.map(({ key, label }) => `${sums[key]} ${label}`).join(", ");
}

function points(history, key, width, height, top, left, most) {
  const step = history.length > 1 ? width / (history.length - 1) : 0;
  return history
    .map((minute, i) => {
      const x = left + i * step;
      const y = top + height - ((Number(minute[key]) || 0) / most) * height;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}

/** A small chart for a table row. */
export function sparkline(history) {
  const width = 120;
  const height = 28;
  const most = Math.max(1, ...history.flatMap((m) => SERIES.map(({ key }) => Number(m[key]) || 0)));
  return svg(
    "svg",
    { class: "sparkline", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": summary(history) },
    svg("title", {}, summary(history)),
    SERIES.map(({ key }) =>
      svg("polyline", { class: `series-${key}`, fill: "none", points: points(history, key, width, height - 4, 2, 0, most) }),
    ),
  );
}

/** The queue page's chart: lines with a time axis, a count axis and a legend. */
export function historyChart(history) {
  const width = 720;
  const height = 240;
  const left = 40;
  const top = 10;
  const plotWidth = width - left - 10;
  const plotHeight = height - top - 30;
  const most = Math.max(1, ...history.flatMap((m) => SERIES.map(({ key }) => Number(m[key]) || 0)));
  const ticks = [0, Math.ceil(most / 2), most];
  const grid = ticks.map((value) => {
    const y = top + plotHeight - (value / most) * plotHeight;
    return [
      svg("line", { class: "grid", x1: left, x2: left + plotWidth, y1: y, y2: y }),
      svg("text", { class: "axis", x: left - 6, y: y + 4, "text-anchor": "end" }, String(value)),
    ];
  });
  const labels = [];
  if (history.length) {
    const step = history.length > 1 ? plotWidth / (history.length - 1) : 0;
    for (const i of [0, Math.floor((history.length - 1) / 2), history.length - 1]) {
      const at = new Date(history[i].minute);
      const text = Number.isNaN(at.getTime()) ? "" : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      labels.push(svg("text", { class: "axis", x: left + i * step, y: height - 10, "text-anchor": "middle" }, text));
    }
  }
  const chart = svg(
    "svg",
    { class: "history-chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary(history) },
    svg("title", {}, summary(history)),
    grid,
    labels,
    SERIES.map(({ key }) =>
      svg("polyline", {
        class: `series-${key}`,
        fill: "none",
        points: points(history, key, plotWidth, plotHeight, top, left, most),
      }),
    ),
  );
  const sums = totals(history);
  const legend = h(
    "ul",
    { class: "legend" },
    SERIES.map(({ key, label }) => h("li", {}, h("span", { class: `swatch series-${key}` }), `${label} ${sums[key]}`)),
  );
  return h("figure", { class: "chart" }, chart, legend);
}
