// One item at a time: fetch it, show it blind, send the answer, move on. The server keeps all state.
"use strict";
let current = null;
let shownAt = 0;
let busy = false;

const $ = (id) => document.getElementById(id);

function showProgress(done, assigned) {
  $("progress").textContent = `${done} / ${assigned} done`;
}

async function loadNext() {
  const response = await fetch("/api/next", {credentials: "same-origin"});
  if (!response.ok) {
    $("message").textContent = `Could not load the next item (${response.status}). Reload the page.`;
    return;
  }
  const item = await response.json();
  showProgress(item.done, item.assigned);
  if (item.finished) {
    current = null;
    $("pair").hidden = $("actions").hidden = $("clip").hidden = true;
    $("finished").hidden = false;
    return;
  }
  current = item;
  $("left-text").textContent = item.left;
  $("right-text").textContent = item.right;
  const player = $("player");
  if (item.has_audio) {
    player.hidden = false;
    $("references").hidden = true;
    player.src = `/audio/${encodeURIComponent(item.clip_id)}`;
    player.play().catch(() => {});  // browsers may block autoplay until the first key press
  } else {
    player.hidden = true;
    player.removeAttribute("src");
    const list = $("reference-list");
    list.replaceChildren(...item.references.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
    $("references").hidden = false;
  }
  $("message").textContent = "";
  shownAt = performance.now();
}

async function send(answer) {
  if (!current || busy) return;
  busy = true;
  try {
    const seconds = (performance.now() - shownAt) / 1000;
    const response = await fetch("/api/answer", {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({assignment_id: current.assignment_id, answer, seconds}),
    });
    if (!response.ok && response.status !== 409) {
      const body = await response.json().catch(() => ({}));
      $("message").textContent = `Not saved: ${body.detail || response.status}`;
      return;
    }
    await loadNext();
  } finally {
    busy = false;
  }
}

function replay() {
  const player = $("player");
  if (player.hidden || !player.src) return;
  player.currentTime = 0;
  player.play().catch(() => {});
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["left", "right", "tie", "skip"]) {
    $(id).addEventListener("click", () => send($(id).dataset.answer));
  }
  $("replay").addEventListener("click", replay);
  document.addEventListener("keydown", (event) => {
    if (event.repeat || event.altKey || event.ctrlKey || event.metaKey) return;
    const answer = {"1": "left", "2": "right", "3": "tie"}[event.key];
    if (answer) {
      event.preventDefault();
      send(answer);
    } else if (event.key === " ") {
      event.preventDefault();
      replay();
    }
  });
  loadNext();
});
