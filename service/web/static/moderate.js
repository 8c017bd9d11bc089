// The moderator pages' only script: keyboard shortcuts, reviews without a reload, and new held
// comments inserted as they arrive; the console's save shortcut, copy buttons and a training
// job's live progress. Every page works without it through its forms and links.
"use strict";

(() => {
  const POLL_MS = 4000;
  const queue = document.getElementById("queue");
  const bulk = document.getElementById("bulk");
  const statusLine = document.getElementById("status");
  // Ids reviewed here: a poll that raced a review must not bring them back.
  const gone = new Set();
  let current = null;

  const items = () => Array.from(document.querySelectorAll("ol.queue > li.item"));

  function say(text, isError = false) {
    if (!statusLine) return;
    statusLine.textContent = text;
    statusLine.classList.toggle("error", isError);
  }

  function refreshCounts() {
    const count = document.getElementById("count");
    if (count) count.textContent = String(items().length) + (count.textContent.endsWith("+") ? "+" : "");
    const selected = document.getElementById("selected-count");
    if (selected) selected.textContent = String(document.querySelectorAll("#queue input.select:checked").length);
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = items().length > 0;
  }

  function focusItem(item) {
    if (current) current.classList.remove("current");
    current = item || null;
    if (!current) return;
    current.classList.add("current");
    current.focus({ preventScroll: true });
    current.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const list = items();
    if (!list.length) return;
    let index = list.indexOf(current);
    if (index < 0) index = step > 0 ? 0 : list.length - 1;
    else index = Math.min(list.length - 1, Math.max(0, index + step));
    focusItem(list[index]);
  }

  async function post(form, action) {
    const body = new URLSearchParams(new FormData(form));
    body.set("action", action);
    // getAttribute: the forms' buttons are named "action", which shadows form.action.
    const response = await fetch(form.getAttribute("action"), {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (response.status === 401) {
      window.location.assign("/moderate/login?ended=1");
      return null;
    }
    let data = {};
    try {
      data = await response.json();
    } catch (_) {
      data = {};
    }
    if (!response.ok) {
      say(data.detail || `The review failed (HTTP ${response.status}).`, true);
      return null;
    }
    return data;
  }

  function removeItems(ids) {
    const list = items();
    const removed = list.filter((item) => ids.includes(item.dataset.id));
    if (!removed.length) return;
    // Focus moves to the first comment after the current one that is still there.
    const start = current ? list.indexOf(current) : list.indexOf(removed[0]);
    const next = list.slice(start).find((item) => !removed.includes(item))
      || list.slice(0, start).reverse().find((item) => !removed.includes(item));
    removed.forEach((item) => {
      gone.add(item.dataset.id);
      item.remove();
    });
    if (removed.includes(current) || !current) focusItem(next);
    refreshCounts();
  }

  const PAST = { approve: "Approved", reject: "Rejected" };

  async function reviewCurrent(action) {
    if (!current || current.dataset.busy) return;
    const form = current.querySelector("form.review");
    if (!form) return;
    current.dataset.busy = "1";
    const item = current;
    try {
      const data = await post(form, action);
      if (!data) return;
      if (!queue) {
        window.location.reload(); // the comment page: show the new entry of the audit trail
        return;
      }
      removeItems([item.dataset.id]);
      say(`${PAST[action]} 1 comment.`);
    } finally {
      delete item.dataset.busy;
    }
  }

  async function reviewSelected(action) {
    if (!bulk) return;
    const ids = Array.from(document.querySelectorAll("#queue input.select:checked")).map((box) => box.value);
    if (!ids.length) {
      say("Select comments first: x on each, then A or R.", true);
      return;
    }
    const data = await post(bulk, action);
    if (!data) return;
    removeItems(ids);
    say(`${PAST[action]} ${ids.length} comment${ids.length === 1 ? "" : "s"}.`);
  }

  function toggleSelected() {
    const box = current && current.querySelector("input.select");
    if (!box) return;
    box.checked = !box.checked;
    current.classList.toggle("selected", box.checked);
    refreshCounts();
  }

  async function toggleAuthor() {
    if (!current) return;
    const panel = current.querySelector(".author-panel");
    if (!panel) return;
    if (!panel.hidden) {
      panel.hidden = true;
      return;
    }
    if (!panel.dataset.loaded) {
      const response = await fetch(current.dataset.authorUrl, { credentials: "same-origin" });
      if (!response.ok) {
        say(`Could not load the author's history (HTTP ${response.status}).`, true);
        return;
      }
      // The server renders and escapes the fragment, as it does every page.
      panel.innerHTML = await response.text();
      panel.dataset.loaded = "1";
    }
    panel.hidden = false;
  }

  function openTrail() {
    const link = current && current.querySelector("a.trail-link");
    if (link) window.location.assign(link.href);
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    const target = event.target;
    if (target.closest && target.closest("input, select, textarea, [contenteditable]")) return;
    const actions = {
      j: () => move(1),
      k: () => move(-1),
      a: () => reviewCurrent("approve"),
      r: () => reviewCurrent("reject"),
      x: toggleSelected,
      A: () => reviewSelected("approve"),
      R: () => reviewSelected("reject"),
      h: toggleAuthor,
      o: openTrail,
    };
    const run = actions[event.key];
    if (!run) return;
    event.preventDefault();
    if (!current && !["j", "k", "A", "R"].includes(event.key)) {
      // Nothing focused yet: show which comment the key would act on, and act on nothing.
      focusItem(items()[0]);
      return;
    }
    run();
  });

  document.addEventListener("click", (event) => {
    const item = event.target.closest && event.target.closest("ol.queue > li.item");
    if (item && item !== current) focusItem(item);
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("input.select")) {
      event.target.closest("li.item").classList.toggle("selected", event.target.checked);
      refreshCounts();
    }
  });

  function insertInOrder(item) {
    const byScore = queue.dataset.sort !== "age";
    const score = parseFloat(item.dataset.score);
    const before = byScore ? items().find((other) => parseFloat(other.dataset.score) < score) : null;
    if (before) queue.insertBefore(item, before);
    else queue.appendChild(item);
  }

  // One request of a page that asks on its own: null when there is nothing to use this time
  // (the server restarting, an error), and the polling stops once the session has ended.
  async function askQuietly(url, accept, stop) {
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers: { Accept: accept } });
    } catch (_) {
      return null; // the server is restarting; the next poll tries again
    }
    if (response.status === 401 || response.redirected) {
      say("Your session ended: reload to sign in again.", true);
      stop();
      return null;
    }
    return response.ok ? response : null;
  }

  async function poll() {
    if (document.hidden) return;
    const url = `${queue.dataset.liveUrl}&since=${encodeURIComponent(queue.dataset.since)}`;
    const response = await askQuietly(url, "text/html", () => clearInterval(timer));
    if (!response) return;
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    let added = 0;
    template.content.querySelectorAll("li.item").forEach((item) => {
      if (gone.has(item.dataset.id) || document.getElementById(item.id)) return;
      item.classList.add("new");
      insertInOrder(item);
      added += 1;
    });
    if (added) {
      refreshCounts();
      say(`${added} new held comment${added === 1 ? "" : "s"}.`);
    }
  }

  let timer = null;
  if (queue && queue.dataset.liveUrl) timer = setInterval(poll, POLL_MS);

  // The console's forms: Ctrl+S (Cmd+S) saves the form the focus is in, through its own Save
  // button, so the browser's checks of the fields run as for a click.
  document.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.altKey || event.key.toLowerCase() !== "s") return;
    const form = (event.target.closest && event.target.closest("form[data-save-shortcut]"))
      || document.querySelector("form[data-save-shortcut]:only-of-type");
    if (!form) return;
    event.preventDefault();
    form.requestSubmit(form.querySelector("button.save") || undefined);
  });

  // A refused form: its list of errors takes the focus, so a screen reader reads it first and
  // Tab goes on to the links that lead to each field.
  const errors = document.getElementById("errors");
  if (errors) errors.focus();

  // A key or secret shown once: a button copies it. Without the script (or the clipboard, which
  // needs a secure origin) the field stays selected for Ctrl+C.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    const field = document.getElementById(button.dataset.copy);
    if (!field) return;
    field.select();
    button.hidden = false;
    button.addEventListener("click", async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        say("Copied.");
      } catch (_) {
        say("Press Ctrl+C to copy it: the browser did not let this page write to the clipboard.", true);
      }
    });
  });

  // A training job in progress: its bar follows the job's status until it ends, then the page
  // reloads to show the candidate. Without the script a link refreshes the page instead.
  const JOB_POLL_MS = 2000;
  const progress = document.querySelector("progress[data-job-url]");
  if (progress) {
    const refresh = document.getElementById("job-refresh");
    if (refresh) refresh.hidden = true;
    const jobTimer = setInterval(async () => {
      if (document.hidden) return;
      const url = progress.dataset.jobUrl;
      const response = await askQuietly(url, "application/json", () => clearInterval(jobTimer));
      if (!response) return;
      const job = await response.json();
      progress.value = job.percent;
      progress.textContent = `${Math.round(job.percent)}%`;
      const stage = document.getElementById("job-stage");
      if (stage) stage.textContent = job.stage;
      const percent = document.getElementById("job-percent");
      if (percent) percent.textContent = `${Math.round(job.percent)}%`;
      const row = document.querySelector(`tr[data-job="${progress.dataset.jobId}"] .stage`);
      if (row) row.textContent = `${job.stage} (${Math.round(job.percent)}%)`;
      if (job.status !== "queued" && job.status !== "running") {
        clearInterval(jobTimer);
        window.location.reload();
      }
    }, JOB_POLL_MS);
  }
})();
