// Follows background jobs on a page: every [data-job-id] element is updated from
// /ws/jobs/<id>/ (jobs/payloads.py's job.state messages) and the page reloads when the job ends,
// so the server renders the result. If the socket is refused or drops, it polls the job API.

const FINISHED = new Set(["succeeded", "failed", "expired"]);
const LABELS = { pending: "Pending", running: "Running", succeeded: "Succeeded", failed: "Failed", expired: "Expired" };
const POLL_MS = 1000;

function setText(root, selector, text) {
  const element = root.querySelector(selector);
  if (element) element.textContent = text;
}

function show(element, state) {
  element.dataset.jobStatus = state.status;
  const bar = element.querySelector("progress");
  if (bar) {
    bar.value = state.progress;
    bar.textContent = `${state.progress}%`;
  }
  setText(element, "[data-job-status-text]", LABELS[state.status] || state.status);
  setText(element, "[data-job-progress]", String(state.progress));
  setText(element, "[data-job-message]", state.error || state.message || "");
  element.dispatchEvent(new CustomEvent("squirrel:job", { bubbles: true, detail: state }));
  if (FINISHED.has(state.status)) window.location.reload();
}

async function poll(element, id) {
  while (!FINISHED.has(element.dataset.jobStatus)) {
    try {
      const response = await fetch(`/api/v1/jobs/${id}/`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) show(element, await response.json());
    } catch (error) {
      // The server is restarting or the network dropped: try again.
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function follow(element) {
  const id = element.dataset.jobId;
  if (FINISHED.has(element.dataset.jobStatus)) return;
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${window.location.host}/ws/jobs/${id}/`);
  socket.addEventListener("message", (event) => show(element, JSON.parse(event.data)));
  socket.addEventListener("close", () => {
    if (!FINISHED.has(element.dataset.jobStatus)) poll(element, id);
  });
}

document.querySelectorAll("[data-job-id]").forEach(follow);
