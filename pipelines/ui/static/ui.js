// The pipeline UI's overview: start an update, follow its flows live (server-sent events), cancel it.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]')?.content;

function show(message) {
  const box = document.getElementById("message");
  box.textContent = message;
  box.hidden = !message;
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body || {}),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const reason = answer.detail || (answer.error && answer.error.message) || response.statusText;
    throw new Error(`${response.status}: ${reason}`);
  }
  return answer;
}

function follow(updateId, events, trigger) {
  const live = document.getElementById("live");
  const flows = document.getElementById("live-flows");
  const state = document.getElementById("live-state");
  const link = document.getElementById("live-link");
  live.hidden = false;
  flows.replaceChildren();
  link.textContent = updateId.slice(0, 8);
  link.href = `/ui/updates/${updateId}`;
  state.textContent = "RUNNING";
  state.className = "state running";
  live.dataset.trigger = trigger || "manual";
  const rows = new Map();
  const source = new EventSource(events);
  source.addEventListener("flow", (event) => {
    const flow = JSON.parse(event.data);
    let row = rows.get(flow.dataset);
    if (!row) {
      row = document.createElement("li");
      row.dataset.dataset = flow.dataset;
      rows.set(flow.dataset, row);
      flows.append(row);
    }
    row.dataset.state = flow.state;
    row.className = `state ${flow.state.toLowerCase()}`;
    row.textContent = `${flow.dataset}: ${flow.state}`;
  });
  source.addEventListener("end", (event) => {
    source.close();
    const end = JSON.parse(event.data);
    state.textContent = end.state;
    state.className = `state ${end.state.toLowerCase()}`;
    live.dataset.finished = end.state;
    if (end.error) show(end.error);
  });
  document.getElementById("cancel").onclick = () =>
    post(`/ui/api/updates/${updateId}/cancel`).catch((error) => show(error.message));
}

for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", async () => {
    show("");
    const action = button.dataset.action;
    const datasets = button.closest("details")
      ? [...document.getElementById("selection").selectedOptions].map((option) => option.value)
      : [];
    try {
      const started = await post("/ui/api/updates", { action, datasets });
      shown.add(new URL(`/ui/updates/${started.update_id}`, location).href);
      delete document.getElementById("live").dataset.finished;
      follow(started.update_id, started.events, "manual");
    } catch (error) {
      show(error.message);
    }
  });
}

document.getElementById("schedule-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  show("");
  const mode = document.getElementById("schedule-mode").value;
  const minutes = document.getElementById("schedule-minutes").value;
  const schedule = mode === "every" ? `every ${minutes} minutes` : mode;
  try {
    const answer = await post("/ui/api/schedule", { schedule });
    document.getElementById("schedule").textContent = answer.schedule;
  } catch (error) {
    show(error.message);
  }
});

// An update the schedule started shows up in the list: look for one every few seconds.
const shown = new Set([...document.querySelectorAll("#updates a")].map((link) => link.href));
setInterval(async () => {
  if (!document.getElementById("live").hidden && !document.getElementById("live").dataset.finished) return;
  const response = await fetch("/ui/api/running");
  if (!response.ok) return;
  const listed = await response.json();
  const running = listed.running.find((run) => !shown.has(new URL(`/ui/updates/${run.update_id}`, location).href));
  if (running) {
    shown.add(new URL(`/ui/updates/${running.update_id}`, location).href);
    delete document.getElementById("live").dataset.finished;
    follow(running.update_id, `/ui/api/updates/${running.update_id}/events`, running.trigger);
  }
}, 3000);

if (window.mermaid) {
  window.mermaid.initialize({
    startOnLoad: false,
    securityLevel: "strict",
    flowchart: { useMaxWidth: false },
    themeCSS: ".completed rect, .completed path, .completed polygon { fill: #d9f2e3 !important; }" +
      ".failed rect, .failed path, .failed polygon { fill: #f8d7da !important; }" +
      ".canceled rect, .canceled path, .canceled polygon { fill: #fff3cd !important; }",
  });
  const datasets = JSON.parse(document.getElementById("graph-nodes").textContent);
  window.mermaid.run({ querySelector: "#graph" }).then(() => {
    // Mermaid names a node's element <diagram id>-flowchart-<node id>-<n>: each dataset links to its page.
    for (const node of document.querySelectorAll("#graph svg .node")) {
      const id = node.id.replace(/^.*?flowchart-/, "").replace(/-\d+$/, "");
      if (datasets[id]) {
        node.style.cursor = "pointer";
        node.dataset.dataset = datasets[id];
        node.addEventListener("click", () => (location.href = `/ui/datasets/${datasets[id]}`));
      }
    }
  });
}
