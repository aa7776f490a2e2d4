// Live updates: the server says (Server-Sent Events) when the visible episodes change; the page
// then fetches its own fragment again. No inline script anywhere: the CSP forbids it.
"use strict";

(function () {
  const body = document.body;
  const fragment = body.dataset.live;
  const region = document.getElementById("live-region");
  const badge = document.getElementById("live");
  if (!fragment || !region || !window.EventSource) return;

  // A row's key names its episode, severity and findings: a new episode flashes, and so does
  // one that worsened or gained a finding.
  const keys = () => Array.from(region.querySelectorAll("[data-live-key]"), (r) => r.dataset.liveKey);
  let known = new Set(keys());

  async function refresh() {
    const response = await fetch(fragment, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.redirected || response.status === 401) { window.location.assign("/login"); return; }
    if (!response.ok) return;
    region.innerHTML = await response.text();
    const rows = region.querySelectorAll("[data-live-key]");
    for (const row of rows) if (!known.has(row.dataset.liveKey)) row.classList.add("flash");
    known = new Set(keys());
  }

  const source = new EventSource("/events");
  source.addEventListener("open", () => { if (badge) badge.hidden = false; });
  source.addEventListener("error", () => { if (badge) badge.hidden = true; });
  source.addEventListener("logout", () => { source.close(); window.location.assign("/login"); });
  // The person opened this page in more tabs than the server streams to: the newest are live,
  // this one stops listening (and does not reconnect) until it is reloaded.
  source.addEventListener("superseded", () => {
    source.close();
    if (badge) badge.hidden = true;
    const paused = document.getElementById("live-paused");
    if (paused) paused.hidden = false;
  });
  // The first event may already carry a change made between rendering and subscribing.
  source.addEventListener("alerts", () => { refresh().catch(() => {}); });
})();
