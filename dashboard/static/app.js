// Live updates: the server says (Server-Sent Events) when the visible alerts change; the page
// then fetches its own fragment again. No inline script anywhere: the CSP forbids it.
"use strict";

(function () {
  const body = document.body;
  const fragment = body.dataset.live;
  const region = document.getElementById("live-region");
  const badge = document.getElementById("live");
  if (!fragment || !region || !window.EventSource) return;

  let known = new Set(Array.from(region.querySelectorAll("[data-alert-id]"), (r) => r.dataset.alertId));

  async function refresh() {
    const response = await fetch(fragment, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.redirected || response.status === 401) { window.location.assign("/login"); return; }
    if (!response.ok) return;
    region.innerHTML = await response.text();
    const rows = region.querySelectorAll("[data-alert-id]");
    for (const row of rows) if (!known.has(row.dataset.alertId)) row.classList.add("flash");
    known = new Set(Array.from(rows, (r) => r.dataset.alertId));
  }

  const source = new EventSource("/events");
  source.addEventListener("open", () => { if (badge) badge.hidden = false; });
  source.addEventListener("error", () => { if (badge) badge.hidden = true; });
  source.addEventListener("logout", () => { source.close(); window.location.assign("/login"); });
  // The first event may already carry a change made between rendering and subscribing.
  source.addEventListener("alerts", () => { refresh().catch(() => {}); });
})();
