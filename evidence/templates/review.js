// evidence review: keys and in-place decisions on the screening page, live fetch progress on
// the conditions page, a fresh preview on the handout page. All of it is optional: every
// action is also a plain form that works without this file. Our own code, no library.
"use strict";

(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  // Tells other tabs of this server (the handout page) that a decision changed something.
  const channel = "BroadcastChannel" in window ? new BroadcastChannel("evidence-review") : null;

  function say(text) {
    const status = document.getElementById("status");
    if (status) status.textContent = text;
  }

  async function send(form) {
    const response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  // -- the screening page ---------------------------------------------------------------

  function screening(list) {
    const slug = list.dataset.slug;
    const panel = document.getElementById("focus");
    const rows = Array.from(list.querySelectorAll("li[data-pmid]"));
    let current = Math.max(0, rows.findIndex((r) => r.querySelector('a[aria-current="true"]')));
    let loading = 0;

    function link(i) { return rows[i].querySelector("a"); }

    function pmidInUrl(pmid) {
      const url = new URL(location.href);
      url.searchParams.delete("after");
      url.searchParams.set("pmid", pmid);
      history.replaceState(null, "", url);
    }

    async function show(i, focusRow) {
      if (i < 0 || i >= rows.length) return;
      link(current).removeAttribute("aria-current");
      current = i;
      const a = link(i);
      a.setAttribute("aria-current", "true");
      if (focusRow) a.focus();
      a.scrollIntoView({ block: "nearest" });
      const pmid = rows[i].dataset.pmid;
      pmidInUrl(pmid);
      const ticket = ++loading;
      const next = encodeURIComponent(location.pathname + location.search);
      const response = await fetch(`/conditions/${slug}/records/${pmid}?next=${next}`, { credentials: "same-origin" });
      if (ticket !== loading) return; // a later key press asked for another study
      if (!response.ok) { say(`Could not load PMID ${pmid} (${response.status}).`); return; }
      panel.innerHTML = await response.text();
    }

    function move(step) {
      const i = current + step;
      if (i >= rows.length || i < 0) {
        const page = document.querySelector(step > 0 ? '.pages a[rel="next"]' : '.pages a[rel="prev"]');
        if (page) location.href = page.href;
        return;
      }
      show(i, true);
    }

    function nextUnscreened() {
      for (let k = 1; k <= rows.length; k++) {
        const i = (current + k) % rows.length;
        if (!rows[i].dataset.decision) return i;
      }
      return current;
    }

    function update(data) {
      const row = rows.find((r) => r.dataset.pmid === data.pmid);
      if (row) {
        row.dataset.decision = data.decision || "";
        row.querySelector(".state").textContent =
          data.decision === "include" ? "Included" : data.decision === "exclude" ? "Excluded" : "";
      }
      const c = data.counts;
      const bar = document.getElementById("screened");
      bar.max = c.total || 1;
      bar.value = c.screened;
      document.getElementById("screened-text").textContent =
        `${c.screened} of ${c.total} screened · ${c.included} included · ${c.excluded} excluded`;
      if (channel) channel.postMessage({ slug, pmid: data.pmid });
    }

    async function submit(form) {
      const action = form.dataset.action;
      if (action === "exclude" && !form.reason_pick.value && !form.reason_text.value.trim()) {
        say("Say why this study is left out: pick a reason or type one.");
        form.reason_pick.focus();
        return;
      }
      try {
        const data = await send(form);
        update(data);
        say(data.message);
        if (action === "include" || action === "exclude") {
          show(nextUnscreened(), true);
        } else {
          await show(current, false);
          link(current).focus(); // back to the list, where the keys work
        }
      } catch (error) {
        say(`Not saved: ${error.message}`);
      }
    }

    panel.addEventListener("submit", (event) => {
      const form = event.target.closest("form.act");
      if (!form) return;
      event.preventDefault();
      submit(form);
    });

    list.addEventListener("click", (event) => {
      const a = event.target.closest("a");
      if (!a || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      show(rows.indexOf(a.closest("li")), true);
    });

    function form(action) { return panel.querySelector(`form[data-action="${action}"]`); }

    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) {
        // Ctrl+Enter saves the note being written.
        if (event.key === "Enter" && event.target.id === "note-text") {
          event.preventDefault();
          submit(form("note"));
        }
        return;
      }
      const typing = event.target.closest("input, textarea, select");
      if (typing) {
        if (event.key === "Escape") {
          event.preventDefault();
          link(current).focus();
        } else if (event.key === "Enter" && event.target.id === "reason-pick") {
          event.preventDefault();
          submit(form("exclude"));
        }
        return;
      }
      const keys = {
        j: () => move(1),
        k: () => move(-1),
        i: () => submit(form("include")),
        x: () => form("exclude").reason_pick.focus(),
        u: () => submit(form("undo")),
        n: () => document.getElementById("note-text").focus(),
        "/": () => document.getElementById("q").focus(),
      };
      const act = keys[event.key];
      if (act && rows.length) {
        event.preventDefault();
        act();
      }
    });

    if (rows.length) link(current).focus();
  }

  // -- the conditions page: fetch progress ------------------------------------------------

  function fetches(cards) {
    const labels = { starting: "Starting the fetch", fetching: "Fetching", done: "Fetched", failed: "Fetch failed" };
    const wasRunning = cards.querySelector('.job[data-state="starting"], .job[data-state="fetching"]') !== null;
    if (!wasRunning) return;

    async function poll() {
      const response = await fetch(cards.dataset.fetches, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const jobs = (await response.json()).jobs;
      const seen = new Set();
      let running = false;
      for (const job of jobs) {
        if (seen.has(job.slug)) continue; // newest first: older fetches of the same condition
        seen.add(job.slug);
        const box = document.querySelector(`#c-${CSS.escape(job.slug)} .job`);
        if (!box) continue;
        box.dataset.state = job.state;
        const label = box.querySelector("label");
        const bar = box.querySelector("progress");
        const text = box.querySelector(".job-text");
        if (label) label.textContent = labels[job.state] || job.state;
        if (bar) { bar.max = job.total || 1; bar.value = job.total ? job.done : (job.state === "done" ? 1 : 0); }
        if (text) text.textContent = `${job.done} of ${job.total} records${job.message ? "; " + job.message : ""}`;
        if (job.state === "starting" || job.state === "fetching") running = true;
      }
      if (running) {
        setTimeout(poll, 700);
      } else {
        location.reload(); // the counts on the cards changed
      }
    }
    setTimeout(poll, 500);
  }

  // -- the handout page: a fresh preview after a decision in another tab ------------------

  function handout(frame) {
    if (channel) channel.onmessage = () => location.reload();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const list = document.getElementById("records");
    if (list) screening(list);
    const cards = document.querySelector("[data-fetches]");
    if (cards) fetches(cards);
    const frame = document.getElementById("handout-frame");
    if (frame) handout(frame);
  });
})();
