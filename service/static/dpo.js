// The data protection officer's pages: the request queue (erasure, rectification, objection) and retention.
"use strict";

const KIND_TEXT = {
  runs: "Scoring runs no longer served", indicators: "Indicators of those runs", feedback: "Feedback on indicators",
  interventions: "Interventions", contacts: "Contacts (with their history)", directory_entries: "Directory entries not refreshed",
  consents: "Consents (lapse; asked for again)", requests: "Closed requests",
  restrictions_ended: "Restrictions past their notice (they keep nobody out)",
};

function erasureForm(req, reload) {
  const form = el("form", null, { novalidate: "" });
  const prefix = `r${req.id}`;
  const confirm = el("input", null, { type: "checkbox", name: "confirm", id: `${prefix}-confirm`, "aria-describedby": `${prefix}-confirm-error` });
  const label = el("label", null, { for: `${prefix}-confirm` });
  label.append(confirm, ` I have checked this request comes from student ${req.student_id}; erase their data`);
  const p = el("p", null, { class: "field" });
  p.append(label, el("span", null, { class: "field-error", id: `${prefix}-confirm-error` }));
  form.append(p, el("p"));
  form.lastChild.append(el("button", "Process the erasure", { type: "submit" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!confirm.checked) { showErrors(form, prefix, new ApiError(422, "body.confirm: Tick the box to confirm: erasure cannot be undone.")); return; }
    try {
      await api(`/v1/dpo/erasure/${req.id}`, { method: "POST" });
    } catch (e) { showErrors(form, prefix, e); return; }
    await reload(`Erasure request ${req.id} processed: the student's learning analytics data is erased from Waymark's database. Their rows stay in the institution's data folder until the operators clean it with waymark data erase (scoring runs name erased students still registered on the presentations they score).`);
  });
  return form;
}

// Declining an erasure (UK GDPR Art. 17(3): a legal claim, a legal obligation), with the reason the student reads.
function refusalForm(req, reload) {
  const prefix = `d${req.id}`;
  const form = el("form", null, { novalidate: "" });
  const note = el("p", null, { class: "field" });
  note.append(el("label", "Or decline it: the lawful reason, which the student reads (required)", { for: `${prefix}-note` }),
    el("textarea", null, { id: `${prefix}-note`, name: "note", rows: "2", maxlength: "4000", "aria-describedby": `${prefix}-note-error` }),
    el("span", null, { class: "field-error", id: `${prefix}-note-error` }));
  form.append(note, el("p"));
  form.lastChild.append(el("button", "Decline the erasure", { type: "submit" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.elements.note.value.trim()) { showErrors(form, prefix, new ApiError(422, "body.note: Write the reason: the student reads it.")); return; }
    try {
      await send(`/v1/dpo/erasure/${req.id}/refusal`, "POST", { note: form.elements.note.value });
    } catch (e) { showErrors(form, prefix, e); return; }
    await reload(`Erasure request ${req.id} declined; nothing was erased, and the student sees your reason.`);
  });
  return form;
}

// A decision with two outcomes and a note the student reads: a rectification's, an objection's.
function outcomeForm({ prefix, field, choices, noteLabel, missing, url, said, intro }, reload) {
  const form = el("form", null, { novalidate: "" });
  if (intro) form.append(el("p", intro));
  const set = el("fieldset", null, { "aria-describedby": `${prefix}-${field}-error` });
  set.append(el("legend", "Outcome"));
  for (const [value, text] of choices) {
    const label = el("label");
    label.append(el("input", null, { type: "radio", name: field, value }), ` ${text}`);
    set.append(label);
  }
  set.append(el("span", null, { class: "field-error", id: `${prefix}-${field}-error` }));
  const note = el("p", null, { class: "field" });
  note.append(el("label", noteLabel, { for: `${prefix}-note` }),
    el("textarea", null, { id: `${prefix}-note`, name: "note", rows: "2", maxlength: "4000", "aria-describedby": `${prefix}-note-error` }),
    el("span", null, { class: "field-error", id: `${prefix}-note-error` }));
  form.append(set, note, el("p"));
  form.lastChild.append(el("button", "Record the outcome", { type: "submit" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const chosen = form.elements[field].value;
    if (!chosen) { showErrors(form, prefix, new ApiError(422, `body.${field}: ${missing}`)); return; }
    if (!form.elements.note.value.trim()) { showErrors(form, prefix, new ApiError(422, "body.note: Write a note to the student: they read it with the outcome.")); return; }
    let done;
    try {
      done = await send(url, "POST", { [field]: chosen === "true", note: form.elements.note.value });
    } catch (e) { showErrors(form, prefix, e); return; }
    // a decision that ends a restriction gives the student notice first (UK GDPR Art. 18(3)): what they read
    await reload(done && done.note ? `${said} ${done.note}` : said);
  });
  return form;
}

// A correction the student asked to be left out for while it is checked (UK GDPR Art. 18(1)(a)).
const LEFT_OUT = "The student asked to be left out while this is checked: this request keeps them out of scoring and every staff view until you decline it or record that the correction has reached the data, and for the notice they are given of that.";

function rectificationForm(req, reload) {
  return outcomeForm({
    prefix: `r${req.id}`, field: "accept", missing: "Choose accepted or declined.",
    intro: req.restricted ? LEFT_OUT : null,
    choices: [["true", "Accepted: the source system is corrected"], ["false", req.restricted ? "Declined: this request stops keeping them left out once they have had notice" : "Declined"]],
    noteLabel: "Note to the student (required)", url: `/v1/dpo/rectification/${req.id}`,
    said: `Rectification request ${req.id}: outcome recorded; the student sees it with your note.`,
  }, reload);
}

// An objection (UK GDPR Art. 21(1)): the student is left out while it is weighed. Upheld, they stay out;
// declined, the note states the University's compelling grounds, and they are scored again once the notice they are given has run.
function objectionForm(req, reload) {
  return outcomeForm({
    prefix: `o${req.id}`, field: "uphold", missing: "Choose upheld or declined.",
    intro: "The student has been left out of scoring, training and every staff view since they objected.",
    choices: [["true", "Upheld: they stay left out, and their estimates are deleted"], ["false", "Declined: the University's compelling grounds outweigh it (they stay left out for the notice they are given first)"]],
    noteLabel: "Note to the student, with the grounds if you decline (required)", url: `/v1/dpo/objection/${req.id}`,
    said: `Objection ${req.id}: outcome recorded; the student sees it with your note.`,
  }, reload);
}

function appliedForm(req, reload) {
  const form = el("form", null, { novalidate: "" });
  form.append(el("p", "Accepted. Once the records system is corrected and the corrected data has been imported, record it: until then staff and the student read that the estimates may rest on the data before the correction."));
  if (req.restricted) form.append(el("p", "This request keeps the student left out until you record it, as they asked, and for the notice they are given of that."));
  form.append(el("p"));
  form.lastChild.append(el("button", "The correction has reached the data", { type: "submit" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let done;
    try {
      done = await send(`/v1/dpo/rectification/${req.id}/applied`, "POST");
    } catch (e) { status(e.message); return; }
    const said = `Rectification request ${req.id}: the correction is recorded as reaching the data; the next scoring run's estimates rest on it.`;
    await reload(done && done.note ? `${said} ${done.note}` : said);
  });
  return form;
}

// A decided request whose student stays left out for the notice its decision gave (UK GDPR Art. 18(3)).
function noticeOf(req) {
  const decided = req.kind === "objection" && req.outcome === "accepted" ? "Upheld" : words(req.outcome);
  const p = el("p", `${decided} `, { class: "notice" });
  p.append(timeEl(req.processed_at, when(req.processed_at)), `${req.applied_at ? "; the correction reached the data" : ""}. The student stays left out until `,
    timeEl(req.restricted_until, when(req.restricted_until)), ", as they were told with the outcome; then they are read again. Nothing is left to decide.");
  return p;
}

async function showQueue(said) {
  const found = await api("/v1/dpo/requests");
  const box = byId("queue");
  box.replaceChildren();
  if (!found.length) box.append(el("p", "There are no open requests.", { id: "queue-empty" }));
  const reload = async (text) => { await showQueue(text); byId("queue-h").setAttribute("tabindex", "-1"); byId("queue-h").focus(); };
  for (const req of found) {
    const card = el("article", null, { class: "card request", "aria-labelledby": `r${req.id}-h` });
    card.append(el("h3", `${words(req.kind)} request ${req.id}, student ${req.student_id}`, { id: `r${req.id}-h` }));
    if (req.status !== "open" && req.restricted_until) {  // decided; the student has notice (Art. 18(3))
      card.append(noticeOf(req));
      box.append(card);
      continue;
    }
    const made = el("p", "Made ");
    // UK GDPR Article 12(3): an answer within one month of the request (extendable, with reasons).
    const asked = new Date(req.created_at);
    // the same day of the next month, or its last day when it has no such day (31 January: 28 or 29 February)
    const lastOfNext = new Date(asked.getFullYear(), asked.getMonth() + 2, 0).getDate();
    const due = new Date(asked.getFullYear(), asked.getMonth() + 1, Math.min(asked.getDate(), lastOfNext));
    made.append(timeEl(req.created_at, when(req.created_at)), `; the answer is due within one month, by ${due.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" })}.`);
    const wrote = el("p");
    wrote.append(req.detail ? quoted("The student wrote: ", req.detail) : "The student wrote nothing more.");
    card.append(made, wrote);
    if (req.restricted && req.kept_contacts) {
      card.append(el("p", `${counted(req.kept_contacts, "open contact")} under a safeguarding exemption (or another your outreach file keeps) ${req.kept_contacts === 1 ? "stays" : "stay"} with the staff who support the student while they are left out, until closed.`, { class: "kept" }));
      card.append(el("p", req.kept_contact_readers
        ? `${counted(req.kept_contact_readers, "member")} of staff may read ${req.kept_contacts === 1 ? "it" : "them"}, at most.`
        : `Nobody who supports the student can reach ${req.kept_contacts === 1 ? "it" : "them"} now: add a relationship naming the student (their safeguarding lead's, say) to the staff relationships file and import it.`, { class: "kept" }));
    }
    if (req.kind === "erasure") card.append(erasureForm(req, reload), refusalForm(req, reload));
    else if (req.kind === "objection") card.append(objectionForm(req, reload));
    else if (req.outcome === "accepted") card.append(appliedForm(req, reload));
    else card.append(rectificationForm(req, reload));
    box.append(card);
  }
  if (said) status(said);
}

async function showRetention() {
  const s = await api("/v1/dpo/retention");
  const dl = byId("retention");
  dl.replaceChildren();
  for (const [term, value] of [
    ["Retention period", `${s.retention_days} days`],
    ["Access log period", `${s.access_log_retention_days} days (records past it are counted, and kept whole for now)`],
    ["Last run", s.last_run_at ? when(s.last_run_at) : "Never"],
    ["Removes records older than", when(s.due.cutoff)],
    ["Access log records past their period", String(s.due.access_log_past_period)],
  ]) dl.append(el("dt", term), el("dd", value));
  const tbody = byId("due").querySelector("tbody");
  tbody.replaceChildren();
  for (const [kind, text] of Object.entries(KIND_TEXT)) {
    const tr = el("tr");
    tr.append(cell("Kind of record", text), cell("Records", String(s.due[kind] ?? 0)));
    tbody.append(tr);
  }
}

pages.dpo = async () => {
  byId("run-retention").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const done = await api("/v1/dpo/retention", { method: "POST" });
      const removed = Object.keys(KIND_TEXT).reduce((n, k) => n + (done[k] || 0), 0);
      byId("retention-result").textContent = `Retention ran: ${removed} records removed (older than ${when(done.cutoff)}).`;
      await showRetention();
      status("Retention ran.");
    } catch (e) { showProblem(e.message); }
  });
  byId("log-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const student = byId("log-student").value.trim();
    try {
      const entries = await api(`/v1/dpo/access-log?student_id=${encodeURIComponent(student)}`);
      const table = byId("log");
      byId("log-caption").textContent = entries.length
        ? `Access log of student ${student}: ${entries.length} ${entries.length === 1 ? "record" : "records"}`
        : `No access-log record names student ${student}: check the number (a student nobody has read, or an erased one past the log's period, has none)`;
      const tbody = table.querySelector("tbody");
      tbody.replaceChildren(...entries.map((e) => {
        const tr = el("tr");
        tr.append(cell("When", timeEl(e.at, when(e.at))), cell("Who", e.actor), cell("Role", words(e.role)),
          cell("Purpose", words(e.purpose)), cell("What", words(e.action)));
        return tr;
      }));
      table.hidden = false;
      status(`The access log of student ${student} is shown (${entries.length} ${entries.length === 1 ? "record" : "records"}).`);
    } catch (e) { showProblem(e.message); }
  });
  byId("verify-log").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const found = await api("/v1/dpo/access-log/verification");
      const text = found.intact
        ? `The access log is intact: ${found.records} records, each chained to the one before.`
        : `The access log is NOT intact (${found.records} records): ${found.problems.join("; ")}`;
      byId("verify-result").textContent = text;
      status(text);
    } catch (e) { showProblem(e.message); }
  });
  await showQueue();
  await showRetention();
};
