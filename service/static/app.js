// Waymark pages: plain JavaScript over the same API. The browser's session cookie (HttpOnly, set at
// sign-in) authenticates each call; writes also carry the session's CSRF token from the page.
// This file holds what every page shares; staff.js, me.js, committee.js and dpo.js add their pages.
"use strict";

const pages = {};
const byId = (id) => document.getElementById(id);
const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
const status = (text) => { byId("status").textContent = text; };
const pct = (v) => `${Math.round(100 * v)}%`;
// An estimate never reads as a certainty: "100%" of an estimate from incomplete data would be a verdict.
const chance = (v) => { const shown = Math.round(100 * v); return shown >= 100 ? "over 99%" : shown <= 0 ? "under 1%" : `${shown}%`; };
const enc = encodeURIComponent;

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// Words a person wrote (a note, a request, a reason), set apart in their own direction: a note in a
// right-to-left script, or one carrying direction characters, neither reorders the words around it
// nor is reordered by them (<bdi> takes its direction from its own first strong letter).
function written(text) {
  return el("bdi", text);
}

// "label: "words"", the words a person wrote quoted and set apart (``written``).
function quoted(label, text) {
  const span = el("span");
  span.append(`${label}"`, written(text), "\"");
  return span;
}

// "1 group", "2 groups": a count with its noun (plural given when it is not the noun and an s).
function counted(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

// Keys such as "in_conversation" as words; pages with better wording pass their own table.
function words(key, table = {}) {
  if (key === null || key === undefined) return "";
  if (table[key]) return table[key];
  const text = String(key).replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const STAMP = new Intl.DateTimeFormat("en-GB", {
  day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});
const DAY = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });

// A moment, in the reader's time zone, named: "14 December 2026 at 09:30 GMT".
function when(iso) {
  if (!iso) return "";
  const moment = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);  // stored in UTC
  if (Number.isNaN(moment.getTime())) return iso;
  return STAMP.format(moment);
}

// A calendar day ("2026-12-14"): no time, so no zone.
function day(text) {
  if (!text) return "";
  const parsed = new Date(`${String(text).slice(0, 10)}T00:00:00Z`);
  return Number.isNaN(parsed.getTime()) ? text : DAY.format(parsed);
}

function timeEl(iso, text) {
  return el("time", text, { datetime: iso });
}

class ApiError extends Error {
  constructor(statusCode, detail, title) {
    super(detail || title || `The request failed (${statusCode}).`);
    this.status = statusCode;
    this.detail = detail || "";
    this.title = title || "";
  }
}

function signInAgain() {
  // the session expired while the page was open: sign in, then come back to this page, and to the place
  // within it (kept in this tab, below: the fragment may hold a student id or a search, never sent out)
  rememberPlace();
  rememberDrafts();
  location.assign(`/login?next=${enc(location.pathname)}`);
}

// What was typed into a form when the session ended (a note, a correction) is kept in this tab and put
// back once the page is built again, for the same person on the same page within half an hour, to
// check and send: nothing is sent for them. Signing out, or a page that fails to load, forgets it.
const DRAFTS = "waymark:drafts";
const DRAFT_MINUTES = 30;
const signedInAs = () => byId("signed-in-as")?.textContent || "";

function rememberDrafts() {
  const fields = {};
  for (const f of document.querySelectorAll("form textarea[id], form input[id][type=text]")) {
    if (f.value.trim()) fields[f.id] = f.value;
  }
  const draft = { place: location.pathname + location.hash, who: signedInAs(), at: Date.now(), fields };
  try { sessionStorage.setItem(DRAFTS, JSON.stringify(draft)); } catch { /* storage off */ }
}

function forgetDrafts() {
  try { sessionStorage.removeItem(DRAFTS); } catch { /* storage off */ }
}

function restoreDrafts() {
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(DRAFTS) || "null"); } catch { return; }
  forgetDrafts();
  if (!saved || saved.place !== location.pathname + location.hash || !saved.who || saved.who !== signedInAs()) return;
  if (Date.now() - saved.at > DRAFT_MINUTES * 60 * 1000) return;
  let restored = 0;
  for (const [id, value] of Object.entries(saved.fields || {})) {
    const f = document.getElementById(id);
    if (f && !f.value) { f.value = value; restored += 1; }
  }
  if (restored) status("Your session had ended: what you had typed is back in the form. Check it, then send it again.");
}

// The place within a page (which student, which filters) is in the address's fragment, which a
// browser never sends to the server: a page opened after its session expired goes through sign-in
// and comes back without it. This tab remembers it, and a page arriving from outside the site
// (the identity provider) with no fragment of its own takes it back.
const PLACE = "waymark:place";

function rememberPlace() {
  try { sessionStorage.setItem(PLACE, location.pathname + location.hash); } catch { /* storage off */ }
}

function restorePlace() {
  let saved = null;
  try { saved = sessionStorage.getItem(PLACE); } catch { return; }
  const fromSite = document.referrer && new URL(document.referrer).origin === location.origin;
  if (!location.hash && !fromSite && saved && saved.startsWith(`${location.pathname}#`)) {
    history.replaceState(null, "", saved);
  }
}

async function call(path, options = {}) {
  const method = options.method || "GET";
  const headers = { ...(options.headers || {}) };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  const response = await fetch(path, { ...options, method, headers, credentials: "same-origin" });
  if (response.status === 401) { signInAgain(); throw new ApiError(401, "Your session has ended. Signing in again..."); }
  return response;
}

async function api(path, options = {}) {
  const response = await call(path, options);
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body.detail, body.title);
  return body;
}

function send(path, method, body) {
  return api(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

// A problem that stops the page (a refusal, a student not found): said once, in an alert.
function showProblem(text) {
  const box = byId("problem");
  box.textContent = text;
  box.hidden = false;
  status("");
}

function clearProblem() {
  const box = byId("problem");
  box.textContent = "";
  box.hidden = true;
}

// Form errors beside their fields. The API answers 422 with "body.<field>: message" (several joined by
// "; "); a field without a place of its own, or any other refusal, is said at the top of the form.
function clearErrors(form) {
  for (const box of form.querySelectorAll(".field-error, .form-error")) box.textContent = "";
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
}

function fieldProblems(err) {
  if (err.status !== 422) return [];
  return err.detail.split("; ").map((part) => {
    const found = /^body\.([a-z_]+)[^:]*: (.*)$/s.exec(part);
    return found ? { field: found[1], text: found[2] } : { field: null, text: part };
  });
}

function showErrors(form, prefix, err, extra = {}) {
  clearErrors(form);
  const problems = fieldProblems(err);
  if (!problems.length) problems.push({ field: extra[err.status] || null, text: err.message });
  let first = null;
  const general = [];
  for (const { field, text } of problems) {
    const box = field && byId(`${prefix}-${field}-error`);
    if (!box) { general.push(text); continue; }
    box.textContent = text;
    const control = form.elements[field];
    let target = control instanceof RadioNodeList ? control[0] : control;
    if (target?.disabled) target = target.closest("fieldset")?.querySelector("input:not([disabled])") || null;
    if (control && !(control instanceof RadioNodeList)) control.setAttribute("aria-invalid", "true");
    first = first || target || box;
  }
  if (general.length) {
    let box = form.querySelector(".form-error");
    if (!box) { box = el("p", null, { class: "form-error", tabindex: "-1" }); form.prepend(box); }
    box.textContent = general.join(" ");
    first = first || box;
  }
  status("Nothing was saved. The form says what to change.");
  first?.focus();
}

function estimateText(e) {
  return `${chance(e.value)} (model range ${chance(e.lower)} to ${chance(e.upper)})`;
}

function changeText(e) {
  if (e.change_since_last_run === null) return "first estimate";
  const points = Math.round(100 * e.change_since_last_run);
  return points === 0 ? "no change since the last run" : `${points > 0 ? "+" : ""}${points} points since the last run`;
}

function list(title, items, cls, level = "h3") {
  const section = el("section", null, { class: cls });
  section.append(el(level, title));
  const ul = el("ul");
  for (const item of items) ul.append(el("li", `${item.title}: ${item.sentence}`));
  if (!items.length) ul.append(el("li", "None stands out."));
  section.append(ul);
  return section;
}

// What an estimate is the chance of, by the model's target (never a category of the student).
const ESTIMATE_OF = {
  not_completing: "Estimated chance of not completing this module",
  next_assessment_nonsubmission: "Estimated chance of the next assessment not being submitted by its due day",
};

function renderIndicator(ind, level = 2) {
  const h = (n) => `h${Math.min(level + n, 6)}`;
  const card = el("article", null, { class: "card" });
  card.append(el(h(0), `${ind.module_id} ${ind.presentation_id}`));
  const of = ESTIMATE_OF[ind.provenance.target] || "Estimate";
  card.append(el("p", `${of}: ${estimateText(ind.estimate)}; ${changeText(ind.estimate)}.`));
  card.append(el("p", `Data as of ${day(ind.provenance.data_as_of)} (week ${ind.provenance.week}), model version ${ind.provenance.model_version}.`, { class: "hint" }));
  if (ind.support_priority) card.append(el("p", `Place of this registration among your caseload's registrations: ${ind.support_priority} (1 = contact first; the worklist counts students, each at their highest estimate)`));
  card.append(list("What moved the estimate up", ind.factors, "factors", h(1)));
  card.append(list("Strengths", ind.strengths, "strengths", h(1)));
  if (ind.context.length) card.append(list("Background (nothing to act on)", ind.context, "context", h(1)));
  if (ind.what_could_change) card.append(el("p", `What could change this: ${ind.what_could_change.sentence}`, { class: "change" }));
  if (ind.history.length > 1) {
    const past = ind.history.map((p) => `week ${p.week}: ${chance(p.value)} (${chance(p.lower)} to ${chance(p.upper)})`);
    card.append(el("p", `Over time: ${past.join("; ")}.`));
  }
  const missing = ind.coverage.sources_not_recorded;
  card.append(el("p", missing.length ? `Not recorded for this module: ${missing.join(", ")}.` : "All data sources are recorded for this module."));
  card.append(el("p", ind.reading_note, { class: "hint" }));
  return card;
}

// A table's cell that keeps its column's name, so narrow screens can show each row as a block.
function cell(label, content) {
  const td = el("td", null, { "data-label": label });
  if (content instanceof Node) td.append(content); else td.textContent = content;
  return td;
}

function option(value, text, selected = false) {
  const node = el("option", text, { value });
  if (selected) node.selected = true;
  return node;
}

document.addEventListener("DOMContentLoaded", () => {
  restorePlace();
  rememberPlace();
  window.addEventListener("hashchange", rememberPlace);
  byId("signout")?.form?.addEventListener("submit", forgetDrafts);
  const page = document.body.dataset.page;
  if (!pages[page]) return;
  pages[page]().then(restoreDrafts).catch((e) => { forgetDrafts(); showProblem(e.message); });
});
