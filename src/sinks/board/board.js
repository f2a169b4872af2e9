// The ward board's script: follows /events (server-sent events; the browser resumes with
// Last-Event-ID after a drop, so nothing is missed) and swaps in the server's fresh rendering
// of whatever changed. Acknowledgements are POSTed as JSON. Without it the pages still show
// the board as it was when loaded.
(function () {
  "use strict";
  const body = document.body;
  const page = body.dataset.page;
  const patient = body.dataset.patient;
  const status = document.getElementById("status");
  const dirty = new Set();
  const seen = [];
  let timer = null;
  // When the page showed each change (event id, ms since the epoch), for the benchmark.
  window.vigilApplied = [];

  const events = new EventSource("/events?since=" + encodeURIComponent(body.dataset.lastId));
  // A board whose run is over says so, and keeps saying it.
  const over = status.textContent !== "live";
  events.onopen = () => { if (!over) status.textContent = "live"; };
  events.onerror = async () => {
    status.textContent = "⚠ connection lost: reconnecting…";
    // A stream refused (the session ended) is not retried by the browser: sign in again.
    if (events.readyState === EventSource.CLOSED) {
      const res = await fetch("/api/wards");
      if (res.status === 401) signIn();
    }
  };

  function signIn() {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
  }
  events.addEventListener("reset", () => location.reload());
  events.addEventListener("wards", async (e) => {
    if (page !== "overview") return;
    const res = await fetch("/fragments/wards");
    document.getElementById("wards").innerHTML = await res.text();
    window.vigilApplied.push([Number(e.lastEventId), Date.now()]);
  });
  for (const name of ["patient", "alert"]) {
    events.addEventListener(name, (e) => {
      const data = JSON.parse(e.data);
      if (page === "patient" && data.patient !== patient) return;
      dirty.add(data.patient);
      seen.push(e.lastEventId);
      if (!timer) timer = setTimeout(refresh, 50);
    });
  }

  async function refresh() {
    timer = null;
    const ids = [...dirty];
    const applied = seen.splice(0);
    dirty.clear();
    try {
      if (page === "overview") await refreshRows(ids);
      else await refreshPatient();
    } catch (err) {
      status.textContent = "⚠ could not update: " + err;
      return;
    }
    const now = Date.now();
    for (const id of applied) window.vigilApplied.push([Number(id), now]);
  }

  // Whether the user is typing in this element (its form would be wiped by a swap).
  function busy(el) {
    return el && el.contains(document.activeElement) && document.activeElement.tagName === "INPUT";
  }

  async function refreshRows(ids) {
    const tbody = document.querySelector("#patients tbody");
    const keep = ids.filter((id) => busy(document.getElementById("p-" + id)));
    const fetchIds = ids.filter((id) => !keep.includes(id));
    for (const id of keep) dirty.add(id);
    if (fetchIds.length) {
      const res = await fetch("/fragments/rows?ids=" + fetchIds.map(encodeURIComponent).join(","));
      if (res.status === 401) return signIn();
      const tmp = document.createElement("tbody");
      tmp.innerHTML = await res.text();
      // Each changed row moves to its place; the others stay sorted as they were.
      for (const row of [...tmp.children]) {
        const old = document.getElementById(row.id);
        if (old) old.remove();
        place(tbody, row);
      }
    }
  }

  // Most urgent first, then by patient: the server's order.
  function before(a, b) {
    const d = Number(b.dataset.urgency) - Number(a.dataset.urgency);
    return d < 0 || (d === 0 && a.dataset.patient < b.dataset.patient);
  }

  function place(tbody, row) {
    const rows = tbody.children;
    let lo = 0, hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(rows[mid], row)) lo = mid + 1; else hi = mid;
    }
    tbody.insertBefore(row, rows[lo] || null);
  }

  async function refreshPatient() {
    const main = document.getElementById("main");
    if (busy(main)) { dirty.add(patient); return; }
    const res = await fetch("/fragments/patients/" + encodeURIComponent(patient));
    if (res.ok) main.innerHTML = await res.text();
  }

  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.matches("form.ack")) return;
    e.preventDefault();
    const result = form.querySelector(".result");
    // Signed in, the form carries the session's CSRF token and the board knows who acks;
    // the demo board asks for a name.
    const headers = { "content-type": "application/json" };
    if (form.elements.csrf) headers["x-csrf-token"] = form.elements.csrf.value;
    const by = form.elements.by ? form.elements.by.value : "";
    const res = await fetch("/api/alerts/" + encodeURIComponent(form.dataset.alert) + "/ack", {
      method: "POST",
      headers,
      body: JSON.stringify({ by, note: form.elements.note.value }),
    });
    if (res.status === 401) return signIn();
    const answer = await res.json();
    result.textContent = res.ok
      ? "Sent: it shows here once it takes effect."
      : "Not acknowledged: " + answer.error;
    document.activeElement.blur();
  });
})();
