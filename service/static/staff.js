// Staff pages: the worklist and a student's page (indicators, outreach, feedback).
"use strict";

const STATUS_TEXT = {
  to_contact: "To contact (planned)", contacted: "Contacted", in_conversation: "In conversation", closed: "Closed",
};
const OUTCOME_TEXT = {
  agreed_action: "Agreed an action", referred_to_service: "Referred to a service",
  no_action_needed: "No action needed", could_not_reach: "Could not reach the student",
};
const PURPOSE_TEXT = {
  outreach_contact: "Outreach contact", study_skills_referral: "Study skills referral",
  wellbeing_referral: "Wellbeing referral", personal_intervention: "Personal intervention",
};
const FEEDBACK_TEXT = {
  useful: "Useful for my conversation", not_useful: "Not useful", accepted: "It matches what I know",
  not_applicable: "Not applicable to this student", seems_wrong: "It seems wrong for this student",
};
const FILTERS = ["search", "module_id", "not_contacted", "changed", "follow_up_due", "new"];
const PAGE_SIZE = 25;

function contactText(c) {
  if (!c) return "None yet";
  const state = c.status === "closed" ? `Closed: ${words(c.outcome, OUTCOME_TEXT).toLowerCase()}` : words(c.status, STATUS_TEXT);
  // staff_id is who opened it; the last change may be someone else's (the contact's history says whose)
  return `${state}; opened by ${c.staff_id}, last changed ${when(c.updated_at)}`;
}

// The worklist's state (filters, page) lives in the address's fragment: the back button works, and a
// searched name never reaches a server log as part of a page's address.
function worklistState() {
  return new URLSearchParams(location.hash.slice(1));
}

function stateHash(state) {
  const text = state.toString();
  return text ? `#${text}` : "#";
}

const CHECKS = ["not_contacted", "changed", "follow_up_due", "new"];

function fillFilters(form, state) {
  form.elements.search.value = state.get("search") || "";
  form.elements.module_id.value = state.get("module_id") || "";
  for (const name of CHECKS) form.elements[name].checked = state.get(name) === "true";
}

function filtersOf(form) {
  const state = new URLSearchParams();
  for (const name of ["search", "module_id"]) {
    const value = form.elements[name].value.trim();
    if (value) state.set(name, value);
  }
  for (const name of CHECKS) if (form.elements[name].checked) state.set(name, "true");
  return state;
}

function registrationsList(regs) {
  const ul = el("ul", null, { class: "plain" });
  for (const r of regs) {
    const li = el("li");
    li.append(el("strong", `${r.module_id} ${r.presentation_id}`), ` ${estimateText(r.estimate)}; ${changeText(r.estimate)}`,
      el("span", ` (week ${r.week}, data to ${day(r.data_as_of)})`, { class: "hint" }));
    if (r.top_factor) li.append(el("br"), el("span", `Main factor: ${r.top_factor}`, { class: "hint" }));
    ul.append(li);
  }
  return ul;
}

function worklistRow(item) {
  const row = el("tr");
  const who = el("span");
  const name = item.name || `Student ${item.student_id}`;
  who.append(el("a", name, { href: `/student#${enc(item.student_id)}`, dir: "auto" }));
  if (item.other_name) who.append(" ", el("bdi", item.other_name, { class: "other-name" }));
  if (item.name) who.append(el("span", ` (${item.student_id})`, { class: "hint" }));
  if (item.correction_pending) who.append(el("br"), el("span", "Asked for data behind this to be corrected: read it with that in mind", { class: "marker" }));
  if (item.declined_contact) who.append(el("br"), el("span", "Said no to being contacted about support: only their agreement to a purpose, or an exemption that applies, lets you contact them", { class: "marker" }));
  const followUp = item.consent_withdrawn
    ? `The student withdrew or declined their agreement: close that contact${item.follow_up_due ? "; another follow-up is due" : ""}`
    : item.next_follow_up_on
      ? `${day(item.next_follow_up_on)}${item.follow_up_due ? ": due" : ""}` : "None set";
  const fresh = item.new_since_last_visit ? el("span", "New", { class: "marker" }) : "No";
  row.append(
    cell("Support priority", String(item.support_priority)),
    cell("Student", who),
    cell("Registrations", registrationsList(item.registrations)),
    cell("Latest contact", contactText(item.latest_contact)),
    cell("Follow-up", followUp),
    cell("Since the last run", item.registrations.every((r) => r.estimate.change_since_last_run === null) ? "First estimate"
      : item.changed_since_last_run ? "Moved 5 points or more" : "Moved less than 5 points"),
    cell("New since your last visit", fresh),
  );
  if (item.follow_up_due) row.classList.add("due");
  return row;
}

function pagerLink(link, state, offset, show) {
  link.hidden = !show;
  if (!show) return;
  const next = new URLSearchParams(state);
  if (offset > 0) next.set("offset", String(offset)); else next.delete("offset");
  link.href = stateHash(next);
}

// Open contacts under an exemption with students left out at their request (on no list): a
// safeguarding follow-up stays in sight until it is closed.
function leftOut(items) {
  byId("left-out").hidden = !items.length;
  byId("left-out-list").replaceChildren(...items.map((c) => {
    const item = el("li");
    item.append(el("a", c.name || `Student ${c.student_id}`, { href: `/student#${enc(c.student_id)}`, dir: "auto" }));
    if (c.name) item.append(el("span", ` (${c.student_id})`, { class: "hint" }));
    const follow = c.follow_up_on ? `; follow-up ${day(c.follow_up_on)}` : "";
    item.append(`: ${words(c.purpose, PURPOSE_TEXT)}, ${words(c.status, STATUS_TEXT).toLowerCase()}${follow}. Exemption: ${c.exemption_text || c.exemption}`);
    return item;
  }));
}

async function loadWorklist() {
  const form = byId("filters");
  const state = worklistState();
  fillFilters(form, state);
  const offset = Math.max(0, Number.parseInt(state.get("offset") || "0", 10) || 0);
  // The filters go in the body: a name typed into the search is never part of an address (a proxy's
  // log, the browser's history).
  const query = { offset, limit: PAGE_SIZE };
  for (const name of FILTERS) {
    if (!state.get(name)) continue;
    query[name] = CHECKS.includes(name) ? state.get(name) === "true" : state.get(name);
  }
  clearProblem();
  status("Loading the worklist...");
  let page;
  try {
    page = await send("/v1/worklist", "POST", query);
  } catch (e) {
    if (e.status === 422) {
      status("");
      showProblem(`These filters cannot be used: ${e.detail.replace(/body\./g, "")}`);
      byId("worklist").querySelector("tbody").replaceChildren();
      return;
    }
    throw e;
  }
  byId("note").textContent = page.reading_note;
  byId("order").textContent = page.order_note || "";
  const away = page.not_listed || 0;
  byId("not-listed").hidden = !away;
  byId("not-listed").textContent = away
    ? `${away} ${away === 1 ? "student" : "students"} of yours said no to being contacted about support and ${away === 1 ? "is" : "are"} not listed. Searching by name or student id finds them; only their agreement to a purpose, or an exemption that applies, lets you contact them. A student with a contact still open stays listed.`
    : "";
  leftOut(page.left_out_follow_ups || []);
  const fresh = page.new_since_last_visit;
  byId("visit").textContent = page.previous_visit
    ? `Your previous visit ended ${when(page.previous_visit)}. ${fresh} of the ${page.total} ${page.total === 1 ? "student" : "students"} in this list ${fresh === 1 ? "is" : "are"} new since then (marked "New"; tick "new since my last visit" to see only them).`
    : "This is your first visit, so nobody is marked as new yet; from your next visit, students first indicated since this one are marked \"New\".";
  const modules = byId("modules");
  const known = new Set([...modules.options].map((o) => o.value));
  for (const m of page.modules || []) if (!known.has(m)) { known.add(m); modules.append(option(m, m)); }
  const body = byId("worklist").querySelector("tbody");
  body.replaceChildren(...page.items.map(worklistRow));
  const filtered = FILTERS.some((name) => state.get(name));
  if (!page.items.length) {
    const empty = el("td", filtered ? "No students match these filters." : "There are no students in your worklist.", { colspan: "7" });
    const row = el("tr");
    row.append(empty);
    body.append(row);
  }
  const shown = page.items.length ? `Students ${offset + 1} to ${offset + page.items.length} of ${page.total}` : `No students of ${page.total}`;
  byId("pageinfo").textContent = shown;
  pagerLink(byId("prev"), state, Math.max(0, offset - PAGE_SIZE), offset > 0);
  pagerLink(byId("next"), state, offset + PAGE_SIZE, offset + page.items.length < page.total);
  status(`${shown}${filtered ? " (filtered)" : ""}.`);
}

pages.worklist = async () => {
  const form = byId("filters");
  const go = (state) => {
    const target = stateHash(state);
    if (location.hash === target || (target === "#" && !location.hash)) loadWorklist().catch((e) => showProblem(e.message));
    else location.hash = target;
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); go(filtersOf(form)); });
  byId("clear").addEventListener("click", (ev) => { ev.preventDefault(); form.reset(); go(new URLSearchParams()); });
  window.addEventListener("hashchange", () => loadWorklist().catch((e) => showProblem(e.message)));
  await loadWorklist();
};

// A student's page -----------------------------------------------------------------------------------

function studentId() {
  return decodeURIComponent(location.hash.slice(1));
}

function pairs(dl, entries) {
  dl.replaceChildren();
  for (const [term, value] of entries) {
    if (value === null || value === undefined || value === "") continue;
    dl.append(el("dt", term));
    const dd = el("dd", null, { dir: "auto" });  // a name in a right-to-left script keeps its order
    if (value instanceof Node) dd.append(value); else dd.textContent = value;
    dl.append(dd);
  }
}

// `directory` null: not in the directory; undefined: not read (no indicator of the student is available).
function showWho(id, directory) {
  const name = directory ? (directory.preferred_name || directory.display_name) : `Student ${id}`;
  const heading = document.querySelector("h1");
  heading.textContent = name;
  heading.dir = "auto";  // a right-to-left name reads in its own direction
  // not the name: browser history keeps titles beside the address (whose #id stays out of server logs)
  document.title = "Student · Waymark";
  const email = directory ? el("a", directory.email, { href: `mailto:${directory.email}` }) : null;
  pairs(byId("who"), [
    ["Name", directory?.display_name || (directory === undefined ? "Not shown here: the directory is read with an indicator of the student" : "Not in the directory")],
    ["Preferred name", directory?.preferred_name],
    ["Name in another script", directory?.other_name],
    ["Pronouns", directory?.pronouns],
    ["Email", email],
    ["Student id", id],
  ]);
  byId("who-section").hidden = false;
}

function field(prefix, name, labelText, control, hint) {
  const id = `${prefix}-${name}`;
  control.id = id;
  control.name = name;
  const p = el("p", null, { class: "field" });
  const described = [hint ? `${id}-hint` : null, `${prefix}-${name}-error`].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  p.append(el("label", labelText, { for: id }), control);
  if (hint) p.append(el("span", hint, { class: "hint", id: `${id}-hint` }));
  p.append(el("span", null, { class: "field-error", id: `${prefix}-${name}-error` }));
  return p;
}

function selectOf(entries, chosen) {
  const select = el("select");
  for (const [value, text] of entries) select.append(option(value, text, value === chosen));
  return select;
}

function historyList(steps) {
  const ol = el("ol", null, { class: "history" });
  for (const s of steps) {
    const li = el("li");
    li.append(timeEl(s.at, when(s.at)), `: ${words(s.status, STATUS_TEXT)}${s.outcome ? ` (${words(s.outcome, OUTCOME_TEXT).toLowerCase()})` : ""}, by ${s.staff_id}`);
    if (s.follow_up_on) li.append(`; follow-up ${day(s.follow_up_on)}`);
    if (s.note) li.append(quoted("; note: ", s.note));
    ol.append(li);
  }
  return ol;
}

function updateForm(student, contact, options, reload) {
  const prefix = `c${contact.id}`;
  const form = el("form", null, { novalidate: "", "aria-labelledby": `${prefix}-h` });
  form.append(el("h5", "Update this contact", { id: `${prefix}-h` }));
  const later = options.statuses.slice(options.statuses.indexOf(contact.status));
  form.append(field(prefix, "status", "Status", selectOf(later.map((s) => [s, words(s, STATUS_TEXT)]), contact.status),
    "A contact moves forward only."));
  const outcome = selectOf([["", "Choose when closing"], ...options.outcomes.map((o) => [o, words(o, OUTCOME_TEXT)])], "");
  form.append(field(prefix, "outcome", "Outcome (needed to close)", outcome));
  const follow = el("input", null, { type: "date" });
  if (contact.follow_up_on) follow.value = contact.follow_up_on;
  form.append(field(prefix, "follow_up_on", "Follow-up date", follow));
  const clear = el("label");
  const box = el("input", null, { type: "checkbox", name: "clear_follow_up", id: `${prefix}-clear` });
  clear.append(box, " Clear the follow-up date");
  form.append(el("p", null, { class: "field" }));
  form.lastChild.append(clear);
  const note = el("textarea", null, { rows: "2", maxlength: "1000" });
  note.value = contact.note;
  form.append(field(prefix, "note", "Short note", note));
  const save = el("button", "Save changes", { type: "submit" });
  form.append(el("p"));
  form.lastChild.append(save);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { status: form.elements.status.value, note: note.value };
    if (form.elements.outcome.value) body.outcome = form.elements.outcome.value;
    if (box.checked) body.clear_follow_up = true;
    else if (follow.value) body.follow_up_on = follow.value;
    let changed;
    try {
      changed = await send(`/v1/students/${enc(student)}/contacts/${contact.id}`, "PATCH", body);
    } catch (e) { showErrors(form, prefix, e); return; }
    await reload(`Contact updated: ${words(body.status, STATUS_TEXT).toLowerCase()}.`, `contact-${contact.id}`, changed);
  });
  return form;
}

function contactCard(student, contact, options, reload) {
  const card = el("article", null, { class: "card contact", id: `contact-${contact.id}`, tabindex: "-1", "aria-labelledby": `contact-${contact.id}-h` });
  const channel = options.channels.find((c) => c.key === contact.channel)?.text || words(contact.channel);
  card.append(el("h4", `${channel}: ${words(contact.purpose, PURPOSE_TEXT).toLowerCase()}`, { id: `contact-${contact.id}-h` }));
  const basis = contact.basis === "consent" ? "the student's consent"
    : contact.basis === "asking" ? "an offer of support asking the student (it goes further once they agree)"
    : `an exemption: ${options.exemptions.find((x) => x.key === contact.exemption)?.text || words(contact.exemption)}`;
  const stateText = contact.status === "closed" ? `Closed: ${words(contact.outcome, OUTCOME_TEXT).toLowerCase()}` : words(contact.status, STATUS_TEXT);
  pairs(card.appendChild(el("dl", null, { class: "pairs" })), [
    ["Status", stateText],
    ["Follow-up", contact.status === "closed" ? "None: the contact is closed" : contact.follow_up_on ? day(contact.follow_up_on) : "None set"],
    ["Lawful basis", basis],
    ["Opened", `${when(contact.created_at)} by ${contact.staff_id} (${words(contact.role).toLowerCase()})`],
    ["Note", contact.note],
  ]);
  const details = el("details");
  details.append(el("summary", `History (${contact.history.length} ${contact.history.length === 1 ? "change" : "changes"})`), historyList(contact.history));
  card.append(details);
  if (contact.status !== "closed") card.append(updateForm(student, contact, options, reload));
  return card;
}

// The student's answers, above the form: what may be proposed, before anyone saves (a reviewer's finding).
async function showAnswers(student) {
  const { answers } = await api(`/v1/students/${enc(student)}/consent`);
  const ANSWER = { given: "agreed", declined: "said no (do not ask again)", "not answered": "not answered yet (an offer may ask)" };
  const list = el("ul", null, { class: "plain" });
  for (const [purpose, answer] of Object.entries(answers)) list.append(el("li", `${words(purpose, PURPOSE_TEXT)}: ${ANSWER[answer] || answer}`));
  byId("nc-answers").replaceChildren(el("p", "The student's answers:", { class: "hint" }), list);
}

async function showContacts(student, options, focus, preloaded) {
  const found = preloaded || await api(`/v1/students/${enc(student)}/contacts`);
  const box = byId("contacts");
  box.replaceChildren(el("h3", "Contacts", { id: "contacts-h" }));
  const reload = async (said, target, changed) => {
    try {
      await showContacts(student, options, target);
    } catch (e) {
      // The last open contact under an exemption with a student left out at their request is closed:
      // nothing of theirs is in reach now, so the contact is shown as the change left it.
      if (e.status !== 404 || !changed) throw e;
      await showContacts(student, options, target, [changed]);
      said += " Nothing else of this student is shown in Waymark now, and the contact leaves your worklist.";
    }
    status(said);
  };
  if (!found.length) box.append(el("p", "Nobody in the team has recorded a contact with this student yet."));
  for (const c of found) box.append(contactCard(student, c, options, reload));
  if (focus) byId(focus)?.focus();
}

function fillContactForm(form, options) {
  form.elements.channel.replaceChildren(...options.channels.map((c) => option(c.key, c.text)));
  form.elements.purpose.replaceChildren(...options.purposes.map((p) => option(p, words(p, PURPOSE_TEXT))));
  form.elements.exemption.replaceChildren(option("", "Choose an exemption"), ...options.exemptions.map((x) => option(x.key, x.text)));
  form.elements.status.replaceChildren(...options.statuses.filter((s) => s !== "closed").map((s) => option(s, words(s, STATUS_TEXT))));
  for (const radio of form.elements.basis) {
    radio.addEventListener("change", () => { form.elements.exemption.disabled = form.elements.basis.value !== "exemption"; });
  }
}

function contactBody(form) {
  const body = { channel: form.elements.channel.value, purpose: form.elements.purpose.value, status: form.elements.status.value, note: form.elements.note.value };
  if (form.elements.basis.value === "exemption") body.exemption = form.elements.exemption.value || null;
  if (form.elements.follow_up_on.value) body.follow_up_on = form.elements.follow_up_on.value;
  return body;
}

function feedbackForm(student, ind, i) {
  const prefix = `fb${i}`;
  const form = el("form", null, { novalidate: "", class: "feedback" });
  const set = el("fieldset", null, { "aria-describedby": `${prefix}-value-error` });
  set.append(el("legend", `Was this indicator useful? (${ind.module_id} ${ind.presentation_id})`));
  for (const [value, text] of Object.entries(FEEDBACK_TEXT)) {
    const label = el("label");
    label.append(el("input", null, { type: "radio", name: "value", value }), ` ${text}`);
    set.append(label);
  }
  set.append(el("span", null, { class: "field-error", id: `${prefix}-value-error` }));
  form.append(set, field(prefix, "note", "Anything to add (optional)", el("textarea", null, { rows: "2", maxlength: "2000" })));
  form.append(el("p"));
  form.lastChild.append(el("button", "Send feedback", { type: "submit" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.elements.value.value) { showErrors(form, prefix, new ApiError(422, "body.value: Choose one of the answers.")); return; }
    const body = { module_id: ind.module_id, presentation_id: ind.presentation_id, value: form.elements.value.value, note: form.elements.note.value };
    try {
      await send(`/v1/students/${enc(student)}/feedback`, "POST", body);
    } catch (e) { showErrors(form, prefix, e); return; }
    clearErrors(form);
    form.reset();
    status("Thank you: your feedback was recorded.");
  });
  return form;
}

// Personal tutors and support advisers may hold back a student's own view of their indicator for
// their wellbeing (the student still sees it if they ask); other roles do not see this section.
const HOLDERS = ["personal_tutor", "support_staff"];

async function showHold(student) {
  if (!HOLDERS.includes(document.body.dataset.role)) return;
  let withheld;
  try {
    ({ withheld } = await api(`/v1/students/${enc(student)}/wellbeing-hold`));
  } catch (e) { return; }  // the section stays hidden; the rest of the page (and any draft) stays
  const button = byId("hold-toggle");
  const paint = (held) => {
    byId("hold-state").textContent = held
      ? "Held back for their wellbeing: their page does not show it unless they ask."
      : "Not held back: their page shows it if they have chosen to see it.";
    button.textContent = held ? "Release the hold" : "Hold back their own view";
    button.dataset.withheld = String(held);
  };
  paint(withheld);
  button.addEventListener("click", async () => {
    const held = button.dataset.withheld !== "true";
    try {
      await send(`/v1/students/${enc(student)}/wellbeing-hold`, "PUT", { withheld: held });
    } catch (e) { status(e.message); return; }
    paint(held);
    status(held ? "Their own view is held back for their wellbeing." : "The hold is released.");
  });
  byId("hold-section").hidden = false;
}

// No indicator of the student is served to the caller (no approved model now, or the student is not
// in the latest run), but the team's contacts stay readable by whoever still supports them: show
// those, to be followed up or closed. False when the caller may not read them either.
async function contactsOnly(student) {
  let options, found;
  try {
    found = await api(`/v1/students/${enc(student)}/contacts`);  // one read, one access record
    options = await api("/v1/outreach/options");
  } catch (e) { return false; }
  showWho(student, undefined);
  byId("new-contact").hidden = true;
  byId("outreach").hidden = false;
  await showContacts(student, options, null, found);
  const only = found.length && found.every((c) => c.basis === "exemption" && c.status !== "closed");
  status(only
    ? "No indicator of this student is available to you now; the contacts you follow up under an exemption are below."
    : "No indicator of this student is available to you now; the team's contacts with them are below.");
  return true;
}

pages.student = async () => {
  const student = studentId();
  window.addEventListener("hashchange", () => location.reload());
  if (!student) { showProblem("No student was chosen. Open a student from your worklist."); return; }
  status("Loading...");
  let data;
  try {
    data = await api(`/v1/students/${enc(student)}/indicator`);
  } catch (e) {
    if (e.status === 404 && await contactsOnly(student)) return;
    showProblem(e.status === 404 ? `${e.detail} Open a student from your worklist.` : e.message);
    return;
  }
  showWho(student, data.directory);
  const box = byId("indicators");
  if (data.correction) box.append(el("p", data.correction, { class: "correction", id: "correction" }));
  data.indicators.forEach((ind, i) => {
    const card = renderIndicator(ind, 3);
    card.append(feedbackForm(student, ind, i));
    box.append(card);
  });
  byId("indicators-section").hidden = false;
  const options = await api("/v1/outreach/options");
  const form = byId("new-contact");
  fillContactForm(form, options);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let made;
    try {
      made = await send(`/v1/students/${enc(student)}/contacts`, "POST", contactBody(form));
    } catch (e) { showErrors(form, "nc", e, { 409: "exemption" }); return; }
    clearErrors(form);
    form.reset();
    form.elements.exemption.disabled = true;
    await showContacts(student, options, `contact-${made.id}`);
    status(`Contact recorded (${words(made.status, STATUS_TEXT).toLowerCase()}).`);
  });
  byId("outreach").hidden = false;
  await showAnswers(student);
  await showContacts(student, options);
  await showHold(student);
  status("");
};
