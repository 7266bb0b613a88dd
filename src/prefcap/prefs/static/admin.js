// Reads /admin/api/stats and fills the tables; refreshes every 10 s.
"use strict";
const fmt = (value, digits = 2) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));

function cell(row, text, tag = "td") {
  const element = document.createElement(tag);
  element.textContent = text;
  row.appendChild(element);
}

async function refresh() {
  const response = await fetch("/admin/api/stats", {credentials: "same-origin"});
  if (!response.ok) return;
  const stats = await response.json();
  const counts = document.getElementById("counts");
  counts.replaceChildren();
  for (const [name, value] of Object.entries(stats.counts)) {
    const row = counts.insertRow();
    cell(row, name.replaceAll("_", " "), "th");
    cell(row, value);
  }
  document.getElementById("overall").textContent =
    `Fleiss' κ ${fmt(stats.fleiss_kappa)} over ${stats.pairs_with_two_or_more} pairs with two or more judgments; ` +
    `median ${fmt(stats.median_seconds, 1)} s per judgment.`;
  const body = document.querySelector("#annotators tbody");
  body.replaceChildren();
  for (const a of stats.annotators) {
    const row = body.insertRow();
    cell(row, a.annotator, "th");
    cell(row, `${a.done} / ${a.assigned}`);
    cell(row, a.judgments);
    cell(row, a.gold_items ? `${fmt(100 * a.gold_accuracy, 0)} % of ${a.gold_items}` : "—");
    cell(row, fmt(a.mean_cohen_kappa));
    cell(row, fmt(a.median_seconds, 1));
  }
  const names = Object.keys(stats.cohen_kappa);
  const kappa = document.getElementById("kappa");
  kappa.replaceChildren();
  const head = kappa.insertRow();
  cell(head, "", "th");
  names.forEach((name) => cell(head, name, "th"));
  for (const first of names) {
    const row = kappa.insertRow();
    cell(row, first, "th");
    names.forEach((second) => cell(row, first === second ? "" : fmt(stats.cohen_kappa[first][second])));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  refresh();
  setInterval(refresh, 10000);
});
