// Live pages: when the server announces a change the page shows (the API's server-sent
// events), fetch the page again and swap in its parts marked `data-live`. A part holding the
// element being typed in is left alone until the user is done, so no input is lost.
(() => {
  "use strict";
  const wanted = (document.body.dataset.events || "").split(" ").filter(Boolean);
  const status = document.getElementById("live-status");
  if (!wanted.length || !window.EventSource) return;

  const QUIET_MS = 150; // changes come in bursts: one fetch for the burst
  const GAP_MS = 300; // at least this long between fetches, and three times what the last took:
  // a busy taskmaster must not render a large page for every event
  let timer = null;
  let last = 0;
  let gap = GAP_MS;
  let busy = false;
  let again = false; // a change came during a fetch: fetch once more after it
  let deferred = false; // a part was left alone while typed in: fetch when the typing ends

  function schedule() {
    if (timer !== null) return;
    const wait = Math.max(QUIET_MS, last + gap - Date.now());
    timer = setTimeout(reload, wait);
  }

  function typingIn(part) {
    const active = document.activeElement;
    return active && part.contains(active) && active.matches("input, textarea, select");
  }

  // What the user typed into a part's fields and did not send yet, by form and field name,
  // so that a new rendering of the part keeps it.
  function fieldKey(field) {
    return `${field.form ? field.form.getAttribute("action") : ""}|${field.name}`;
  }

  function typedValues(part) {
    const typed = new Map();
    for (const field of part.querySelectorAll("input[type=text], textarea")) {
      if (field.name && field.value !== field.defaultValue) typed.set(fieldKey(field), field.value);
    }
    return typed;
  }

  function restore(part, typed) {
    for (const field of part.querySelectorAll("input[type=text], textarea")) {
      const value = typed.get(fieldKey(field));
      if (value !== undefined) field.value = value;
    }
  }

  async function reload() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    last = Date.now();
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const part of document.querySelectorAll("[data-live]")) {
        const next = fresh.getElementById(part.id);
        if (!next) continue;
        if (typingIn(part)) { deferred = true; continue; }
        if (part.innerHTML === next.innerHTML) continue;
        const typed = typedValues(part);
        part.innerHTML = next.innerHTML;
        restore(part, typed);
      }
      const stamp = document.getElementById("rendered");
      const freshStamp = fresh.getElementById("rendered");
      if (stamp && freshStamp) stamp.textContent = freshStamp.textContent;
    } catch (err) {
      // The server is restarting: the stream reconnects and the next event reloads.
    } finally {
      gap = Math.max(GAP_MS, 3 * (Date.now() - last));
      busy = false;
      if (again) { again = false; schedule(); }
    }
  }

  document.addEventListener("focusout", () => {
    if (deferred) { deferred = false; schedule(); }
  });

  const source = new EventSource("/api/events");
  for (const name of [...wanted, "lagged"]) source.addEventListener(name, schedule);
  source.onopen = () => { if (status) { status.classList.add("on"); status.title = "live"; } };
  source.onerror = () => {
    if (status) { status.classList.remove("on"); status.title = "reconnecting"; }
  };
  window.addEventListener("pagehide", () => source.close());
})();
