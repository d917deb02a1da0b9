// Waymark pages: plain JavaScript over the same API. The browser's session cookie (HttpOnly, set at
// sign-in) authenticates each call; writes also carry the session's CSRF token from the page.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
const status = (text) => { document.getElementById("status").textContent = text; };
const pct = (v) => `${Math.round(100 * v)}%`;

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function signInAgain() {
  // the session expired while the page was open: sign in, then come back to this page
  location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
}

async function call(path, options = {}) {
  const method = options.method || "GET";
  const headers = { ...(options.headers || {}) };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  const response = await fetch(path, { ...options, method, headers, credentials: "same-origin" });
  if (response.status === 401) { signInAgain(); throw new Error("Your session has ended. Signing in again..."); }
  return response;
}

async function api(path, options = {}) {
  const response = await call(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `request failed (${response.status})`);
  return body;
}

function estimateText(e) {
  return `${pct(e.value)} (${pct(e.lower)} to ${pct(e.upper)})`;
}

function changeText(e) {
  if (e.change_since_last_run === null) return "first estimate";
  const points = Math.round(100 * e.change_since_last_run);
  return points === 0 ? "no change" : `${points > 0 ? "+" : ""}${points} points`;
}

function list(title, items, cls) {
  const section = el("section", null, { class: cls });
  section.append(el("h3", title));
  const ul = el("ul");
  for (const item of items) ul.append(el("li", `${item.title}: ${item.sentence}`));
  if (!items.length) ul.append(el("li", "None stands out."));
  section.append(ul);
  return section;
}

function renderIndicator(ind) {
  const card = el("article", null, { class: "card" });
  card.append(el("h2", `${ind.module_id} ${ind.presentation_id}`));
  card.append(el("p", `Estimate: ${estimateText(ind.estimate)}; ${changeText(ind.estimate)}. Data as of ${ind.provenance.data_as_of}, model version ${ind.provenance.model_version}.`));
  if (ind.support_priority) card.append(el("p", `Support priority in your caseload: ${ind.support_priority}`));
  card.append(list("What moved the estimate up", ind.factors, "factors"));
  card.append(list("Strengths", ind.strengths, "strengths"));
  if (ind.context.length) card.append(list("Background (nothing to act on)", ind.context, "context"));
  if (ind.what_could_change) card.append(el("p", `What could change this: ${ind.what_could_change.sentence}`, { class: "change" }));
  const missing = ind.coverage.sources_not_recorded;
  card.append(el("p", missing.length ? `Not recorded for this module: ${missing.join(", ")}.` : "All data sources are recorded for this module."));
  card.append(el("p", ind.reading_note));
  return card;
}

async function caseloadPage() {
  let offset = 0;
  const body = document.querySelector("#caseload tbody");
  async function more() {
    const page = await api(`/v1/caseload?offset=${offset}&limit=25`);
    document.getElementById("note").textContent = page.reading_note;
    for (const item of page.items) {
      const row = el("tr");
      row.append(el("td", String(item.support_priority)));
      const cell = el("td");
      cell.append(el("a", item.student_id, { href: `/student#${encodeURIComponent(item.student_id)}` }));
      row.append(cell, el("td", `${item.module_id} ${item.presentation_id}`), el("td", estimateText(item.estimate)),
        el("td", changeText(item.estimate)), el("td", item.top_factor || "None stands out."));
      body.append(row);
    }
    offset += page.items.length;
    status(`${offset} of ${page.total} shown.`);
    document.getElementById("more").hidden = offset >= page.total;
  }
  document.getElementById("more").addEventListener("click", () => more().catch((e) => status(e.message)));
  await more();
}

async function studentPage() {
  const id = decodeURIComponent(location.hash.slice(1));
  const data = await api(`/v1/students/${encodeURIComponent(id)}/indicator`);
  document.querySelector("h1").textContent = `Student ${data.student_id}`;
  const box = document.getElementById("indicators");
  for (const ind of data.indicators) box.append(renderIndicator(ind));
  status("");
}

async function mePage() {
  const box = document.getElementById("indicators");
  async function show(ask) {
    const data = await api(`/v1/me/indicator${ask ? "?ask=true" : ""}`);
    box.replaceChildren();
    status(data.message);
    for (const ind of data.indicators) box.append(renderIndicator(ind));
  }
  document.getElementById("ask").addEventListener("click", () => show(true).catch((e) => status(e.message)));
  document.getElementById("always").addEventListener("change", async (ev) => {
    try {
      await api("/v1/me/preferences", { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ show_indicator: ev.target.checked }) });
      await show(false);
    } catch (e) { status(e.message); }
  });
  for (const fmt of ["json", "csv"]) {
    document.getElementById(`export-${fmt}`).addEventListener("click", async () => {
      const response = await call(`/v1/me/export?format=${fmt}`);
      const link = el("a", null, { href: URL.createObjectURL(await response.blob()), download: `waymark-export.${fmt}` });
      link.click();
    });
  }
  await show(false);
  const log = await api("/v1/me/access-log");
  const tbody = document.querySelector("#accesslog tbody");
  for (const e of log) {
    const row = el("tr");
    for (const v of [e.at, e.actor, e.role.replace("_", " "), e.purpose.replace("_", " "), e.action.replace(/_/g, " ")]) row.append(el("td", v));
    tbody.append(row);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  const pages = { caseload: caseloadPage, student: studentPage, me: mePage };
  if (!pages[page]) return;
  pages[page]().catch((e) => status(e.message));
});
