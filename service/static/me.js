// A student's own page: their indicator by choice, consent, who looked, downloads, their requests.
"use strict";

const CONSENT_TEXT = {
  outreach_contact: "Staff may contact you to offer support",
  study_skills_referral: "Staff may refer you to study skills support",
  wellbeing_referral: "Staff may refer you to wellbeing services",
  personal_intervention: "Staff may agree a personal support plan with you",
};
const ACTION_TEXT = {
  worklist_view: "saw you in their worklist", caseload_view: "saw you in their caseload",
  indicator_view: "read your indicator", contacts_view: "read the record of contacts with you",
  contacts_view_under_exemption: "read the contact they follow up under an exemption while you are left out",
  follow_up_listed: "saw, in their worklist, the contact they follow up under an exemption while you are left out",
  contact_write: "recorded a contact with you", contact_write_under_exemption: "recorded a contact under an exemption",
  contact_write_asking: "recorded an offer of support to you, asking whether you agree",
  contact_update: "updated a contact with you", feedback_write: "gave feedback on your indicator",
  contact_refused: "tried to record a contact with you, refused without your agreement or an exemption",
  intervention_write: "recorded support agreed with you", intervention_write_under_exemption: "recorded support under an exemption",
  intervention_refused: "tried to record support for you, refused without your agreement or an exemption",
  engagement_view: "read your engagement over the weeks", wellbeing_hold_write: "changed whether your indicator is withheld for your wellbeing", wellbeing_hold_view: "saw, on their page about you, whether your indicator is held back for your wellbeing",
  own_indicator_view: "read your indicator (you)", consent_view: "read your choices about support",
  consent_write: "changed your choices about support", preferences_write: "changed whether your indicator is shown to you",
  directory_view: "read your name and contact details", requests_view: "read your requests about your data",
  access_log_view: "read who has looked at your data", export: "downloaded a copy of your data",
  erasure_processed: "handled your request to erase your data", rectification_processed: "handled your request to correct your data",
  correction_applied: "recorded that the correction you asked for reached the data",
  erasure_request: "asked for your data to be erased", rectification_request: "asked for your data to be corrected",
  erasure_withdrawn: "withdrew your request to erase your data", rectification_withdrawn: "withdrew your request to correct your data",
  erasure_declined: "declined your request to erase your data, with a reason",
  objection_request: "objected to being scored and listed", objection_withdrawn: "withdrew your objection to being scored and listed",
  objection_processed: "decided on your objection to being scored and listed",
  restriction_withdrawn: "asked to be seen again, ending the time a request of yours kept you left out",
  subject_access_copy: "made a copy of everything held about you, for a subject access request",
  access_log_export: "exported the record of who looked at your data, for an appeal or a complaint",
  outreach_export: "exported when you were first contacted, for training a model that takes support given into account",
};
// Roles as the student reads them.
const ROLE_TEXT = { dpo: "Data protection officer", student: "You" };

function row(cells) {
  const tr = el("tr");
  for (const [label, content] of cells) tr.append(cell(label, content));
  return tr;
}

function emptyRow(tbody, columns, text) {
  if (tbody.children.length) return;
  tbody.append(row([["", text]]));
  tbody.lastChild.firstChild.setAttribute("colspan", String(columns));
  tbody.lastChild.firstChild.removeAttribute("data-label");
}

async function showIndicator(ask) {
  const data = await api(`/v1/me/indicator${ask ? "?ask=true" : ""}`);
  byId("indicator-message").textContent = data.message;
  const box = byId("indicators");
  box.replaceChildren(...data.indicators.map((ind) => renderIndicator(ind, 3)));
  if (data.correction) box.prepend(el("p", data.correction, { class: "correction", id: "correction" }));
  return data;
}

async function showConsents(focusPurpose) {
  const { consents, answers } = await api("/v1/me/consent");
  const tbody = byId("consents").querySelector("tbody");
  tbody.replaceChildren();
  const ANSWER_TEXT = { given: "Given", declined: "No (staff do not ask you again)", "not answered": "Not answered yet (staff may ask you)" };
  for (const [purpose, granted] of Object.entries(consents)) {
    const answer = answers?.[purpose] || (granted ? "given" : "not answered");
    const choice = (text, value, id, cls) => {
      const button = el("button", text, { type: "button", class: cls, id });
      button.append(el("span", ` (${words(purpose).toLowerCase()})`, { class: "visually-hidden" }));
      button.addEventListener("click", async () => {
        await send("/v1/me/consent", "PUT", { purpose, granted: value });
        await showConsents(purpose);
        status(`${value ? "Consent given" : granted ? "Consent withdrawn" : "You said no"}: ${CONSENT_TEXT[purpose] || words(purpose)}.`);
      });
      return button;
    };
    const change = el("span");
    change.append(choice(granted ? "Withdraw" : "Give consent", !granted, `consent-${purpose}`, granted ? "secondary" : ""));
    if (answer === "not answered") change.append(" ", choice("No, thank you", false, `decline-${purpose}`, "secondary"));
    const what = el("span");
    what.append(el("strong", words(purpose)), el("span", CONSENT_TEXT[purpose] || "", { class: "hint" }));
    tbody.append(row([["Purpose", what], ["Your decision", ANSWER_TEXT[answer]], ["Change it", change]]));
  }
  if (focusPurpose) byId(`consent-${focusPurpose}`)?.focus();
}

async function showDirectory() {
  const entry = await api("/v1/me/directory");
  const dl = byId("directory");
  if (!entry) { dl.replaceWith(el("p", "The directory has no entry for you.", { id: "directory" })); return; }
  dl.replaceChildren();
  const other = entry.other_name ? [["Name in another script", entry.other_name]] : [];  // most have none
  for (const [term, value] of [["Name", entry.display_name], ["Preferred name", entry.preferred_name], ...other, ["Pronouns", entry.pronouns], ["Email", entry.email]]) {
    dl.append(el("dt", term), el("dd", value || "Not given", { dir: "auto" }));
  }
}

async function showAccessLog() {
  const log = await api("/v1/me/access-log");
  // Your own reads (every visit to this page makes several) would bury everyone else's: they are
  // counted below the table, and the full log, yours included, is in the download.
  const others = log.filter((e) => e.role !== "student");
  const tbody = byId("accesslog").querySelector("tbody");
  tbody.replaceChildren(...others.map((e) => row([
    ["When", timeEl(e.at, when(e.at))], ["Who", e.actor], ["Role", words(e.role, ROLE_TEXT)],
    ["Purpose", words(e.purpose)], ["What", words(e.action, ACTION_TEXT)],
  ])));
  emptyRow(tbody, 5, "Nobody else has looked at your data yet.");
  const own = log.length - others.length;
  byId("own-reads").textContent = own
    ? `Not listed: ${own} record${own === 1 ? "" : "s"} of your own use of this page. The download below holds them all.`
    : "";
}

// "open": not decided yet; "upheld": an upheld objection; "accepted": an accepted correction the
// student is left out for until it reaches the data (ending that leaves the correction accepted).
// "notice": decided, and the student left out for the notice they are given before it ends (Art. 18(3)).
const WITHDRAW_TEXT = { open: "Withdraw this request", upheld: "Withdraw my objection", accepted: "Stop leaving me out", notice: "Stop leaving me out now" };

function withdrawButton(r, state = "open") {
  const box = el("span", state !== "open" ? "" : r.restricted ? "Not decided yet; you are left out meanwhile. " : "Not decided yet. ");
  const button = el("button", WITHDRAW_TEXT[state], { type: "button" });
  button.addEventListener("click", async () => {
    let done;
    try {
      done = await api(`/v1/me/requests/${r.id}`, { method: "DELETE" });
    } catch (e) { showProblem(e.message); return; }
    await showRequests();
    status(state !== "open" && done && done.note ? done.note : `Request ${r.id} withdrawn.`);
  });
  box.append(button);
  return box;
}

// An upheld objection stands until the student withdraws it, and an accepted correction they are left
// out for until it reaches the data, so both keep a button.
function outcome(r) {
  const decided = r.kind === "objection" && r.outcome === "accepted" ? "Upheld" : words(r.outcome);
  const said = el("span", decided);
  if (r.outcome_note) said.append(": ", written(r.outcome_note));
  if (r.restricted && r.restricted_until) {  // its outcome says until when
    said.append(" ", withdrawButton(r, "notice"));
    return said;
  }
  if (!r.restricted || r.outcome !== "accepted") return said;
  const box = el("span");
  box.append(said, ` ${r.kind === "objection" ? "" : "You are left out until the correction reaches the data. "}`);
  box.append(withdrawButton(r, r.kind === "objection" ? "upheld" : "accepted"));
  return box;
}

async function showRequests() {
  const found = await api("/v1/me/requests");
  const tbody = byId("requests").querySelector("tbody");
  tbody.replaceChildren(...found.map((r) => row([
    ["Request", r.detail ? quoted(`${words(r.kind)}: `, r.detail) : words(r.kind)], ["Made", timeEl(r.created_at, when(r.created_at))],
    ["Status", r.status === "open" ? "Waiting for the data protection officer" : `Handled ${when(r.processed_at)}`],
    ["Outcome", r.outcome ? outcome(r) : withdrawButton(r)],
  ])));
  emptyRow(tbody, 4, "You have made no requests.");
}

function requestForm(id, kind, needsDetail) {
  const form = byId(id);
  const prefix = { rectification: "rect", erasure: "erase", objection: "object" }[id];
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const detail = form.elements.detail.value.trim();
    if (needsDetail && !detail) {
      showErrors(form, prefix, new ApiError(422, "body.detail: Say what is wrong, so that it can be corrected."));
      return;
    }
    const body = form.elements.restrict ? { detail, restrict: form.elements.restrict.checked } : { detail };
    let recorded;
    try {
      recorded = await send(`/v1/me/${kind}`, "POST", body);
    } catch (e) { showErrors(form, prefix, e); return; }
    clearErrors(form);
    form.reset();
    await showRequests();
    // A request under a number the service holds nothing under is recorded and said so, not "done".
    status(recorded && recorded.note ? recorded.note
      : `Your ${kind} request was sent to the data protection officer. Its status is below.`);
  });
}

pages.me = async () => {
  byId("ask").addEventListener("click", () => showIndicator(true).then(() => status("Your indicator is shown below.")).catch((e) => showProblem(e.message)));
  byId("always").addEventListener("change", async (ev) => {
    try {
      await send("/v1/me/preferences", "PUT", { show_indicator: ev.target.checked });
      const now = await showIndicator(false);
      status(!ev.target.checked ? "Saved: your indicator is shown only when you ask."
        : now.shown ? "Saved: your indicator is always shown to you."
        : `Saved. ${now.message}`);
    } catch (e) { showProblem(e.message); }
  });
  requestForm("rectification", "rectification", true);
  requestForm("erasure", "erasure", false);
  requestForm("objection", "objection", false);
  const shown = await showIndicator(false);
  byId("always").checked = shown.always;
  await showConsents();
  await showDirectory();
  await showRequests();
  await showAccessLog();
};
