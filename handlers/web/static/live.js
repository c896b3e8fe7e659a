// Live pages: when the server announces a change the page shows (the API's server-sent
// events), fetch the page again and swap in its parts marked `data-live`. A part holding the
// element being typed in is left alone until the user is done, so no input is lost.
(() => {
  "use strict";
  const wanted = (document.body.dataset.events || "").split(" ").filter(Boolean);
  const status = document.getElementById("live-status");
  if (!wanted.length || !window.EventSource) return;

  const QUIET_MS = 150; // changes come in bursts: one fetch for the burst
  let timer = null;
  let busy = false;
  let again = false;

  function schedule() {
    if (timer === null) timer = setTimeout(reload, QUIET_MS);
  }

  function typingIn(part) {
    const active = document.activeElement;
    return active && part.contains(active) && active.matches("input, textarea, select");
  }

  async function reload() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin",
                                                    headers: { "X-Flowlord-Live": "1" } });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const part of document.querySelectorAll("[data-live]")) {
        const next = fresh.getElementById(part.id);
        if (!next) continue;
        if (typingIn(part)) { again = true; continue; }
        if (part.innerHTML !== next.innerHTML) part.innerHTML = next.innerHTML;
      }
      const stamp = document.getElementById("rendered");
      const freshStamp = fresh.getElementById("rendered");
      if (stamp && freshStamp) stamp.textContent = freshStamp.textContent;
    } catch (err) {
      // The server is restarting: the stream reconnects and the next event reloads.
    } finally {
      busy = false;
      if (again) { again = false; setTimeout(schedule, 1000); }
    }
  }

  const source = new EventSource("/api/events");
  for (const name of [...wanted, "lagged"]) source.addEventListener(name, schedule);
  source.onopen = () => { if (status) { status.classList.add("on"); status.title = "live"; } };
  source.onerror = () => {
    if (status) { status.classList.remove("on"); status.title = "reconnecting"; }
  };
  window.addEventListener("pagehide", () => source.close());
})();
