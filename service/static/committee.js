// The ethics committee's pages: model versions, a version's fairness report as audited, the decision
// on it, the history of decisions, and a candidate's gate checks beside the champion's. The quality gate
// (AUC and ECE by week, and against the champion on the same students) is read from each audit's report.
"use strict";

const GATE_TEXT = { pass: "Passed", fail: "Failed: cannot be promoted", inconclusive: "Inconclusive: for some characteristic audited, no comparison had its estimate within the tolerances, so an approval needs an override reason" };
const QUALITY_TEXT = { pass: "Passed", fail: "Failed: cannot be promoted without an override" };
const CHECK_TEXT = { pass: "Passed", fail: "Failed", inconclusive: "Inconclusive", "not assessable": "Not assessable (too few students)", skipped: "Skipped (no champion to compare with)" };
const DECISION_TEXT = { audit: "Audited", approved: "Approved", rejected: "Rejected", promoted: "Promoted (champion)" };
// The columns of a group table: [metric, heading, where (metrics or ratios), as a percentage, interval].
const COLUMNS = [
  ["selection_rate", "Selected", "metrics", true, false],
  ["false_negative_rate", "Missed (FNR)", "metrics", true, true],
  ["false_negative_rate", "FNR ratio to reference", "ratios", false, true],
  ["false_positive_rate", "Contacted without need (FPR)", "metrics", true, true],
  ["precision", "Precision", "metrics", true, false],
  ["auc", "AUC", "metrics", false, false],
  ["calibration_gap", "Calibration gap", "metrics", false, true],
];

function reportAddress(name, version) {
  return `/committee/report#${enc(name)}/${enc(version)}`;
}

async function versionsOf() {
  const versions = await api("/v1/fairness/reports");
  return versions.sort((a, b) => Number(b.version) - Number(a.version));
}

function decisionText(v) {
  if (!v.ethics_decision) return "No decision yet";
  const who = v.ethics_reviewer ? ` by ${v.ethics_reviewer}` : "";
  const reasons = v.gate_override_reasons || [];
  const override = reasons.length ? `; gate overridden (it did not pass): ${reasons.join(" / ")}` : "";
  // a policy asking for several reviewers' approvals: how many of them count so far
  const uncounted = v.uncounted_approvals || [];
  const count = v.approvals_required > 1 || uncounted.length ? `; ${v.approvals} of the ${v.approvals_required} ${v.approvals_required === 1 ? "approval" : "approvals by different reviewers"} the policy asks for` : "";
  // an approval given before its reviewer's holding was cleared: said with both days, and that one
  // given now counts (it had read as by someone who still builds the models)
  const cleared = v.cleared_approvals || [];
  const clearedIds = new Set(cleared.map((c) => c.reviewer));
  const holding = uncounted.filter((r) => !clearedIds.has(r));
  const builders = holding.length ? `; not counted: the approval of ${holding.join(", ")}, who ${holding.length === 1 ? "has" : "have"} held the data scientist's role` : "";
  const before = cleared.map((c) => `; not counted: the approval ${c.reviewer} gave on ${day(c.approved_on)}, before their holding of the data scientist's role was cleared on ${day(c.cleared_on)} (an approval they give now counts)`).join("");
  return `${words(v.ethics_decision, DECISION_TEXT)}${who}${override}${count}${builders}${before}`;
}

// The quality gate of each audited version, from its report as audited (versions audited before the
// quality gate existed have none).
async function qualityOf(versions) {
  const read = async (v) => {
    if (!v.report_url) return "Not audited";
    try {
      const q = (await api(v.report_url)).report.quality_gate;
      return q ? words(q.status, QUALITY_TEXT) : "Not assessed by that audit";
    } catch (e) {
      return "Report not available";
    }
  };
  return Promise.all(versions.map(read));
}

function showVersions(versions, quality) {
  const tbody = byId("versions").querySelector("tbody");
  tbody.replaceChildren();
  if (versions.length) byId("model-name").textContent = versions[0].name;
  for (const [i, v] of versions.entries()) {
    const link = v.report_url ? el("a", `Read the report of version ${v.version}`, { href: reportAddress(v.name, v.version) }) : "Not audited yet";
    const tr = el("tr");
    tr.append(cell("Version", v.version), cell("Fairness gate", v.fairness_gate ? words(v.fairness_gate, GATE_TEXT) : "Not audited"),
      cell("Quality gate", quality[i]), cell("Ethics decision", decisionText(v)), cell("Served to staff", v.champion ? "Yes: the champion" : "No"), cell("Report", link));
    tbody.append(tr);
  }
  if (!versions.length) tbody.append(el("tr")), tbody.lastChild.append(el("td", "No version is registered yet.", { colspan: "6" }));
}

async function showDecisions(name) {
  const found = await api(`/v1/models/${enc(name)}/decisions`);
  const tbody = byId("decisions").querySelector("tbody");
  tbody.replaceChildren();
  for (const d of found) {
    const note = el("span");
    if (d.note) note.append(written(d.note));
    if (d.override_reason) note.append(d.note ? " " : "", "Gate overridden (it did not pass): ", written(d.override_reason));
    const tr = el("tr");
    tr.append(cell("When", timeEl(d.at, when(d.at))), cell("Version", d.version), cell("Decision", words(d.kind, DECISION_TEXT)),
      cell("Gate", d.gate ? words(d.gate, GATE_TEXT) : ""), cell("By", d.recorded_by && d.recorded_by !== d.actor ? `${d.actor} (entered by ${d.recorded_by})` : d.actor), cell("Note", note));
    tbody.append(tr);
  }
  if (!found.length) tbody.append(el("tr")), tbody.lastChild.append(el("td", "Nothing has been decided yet.", { colspan: "6" }));
}

async function report(name, version) {
  return api(`/v1/fairness/reports/${enc(name)}/versions/${enc(version)}`);
}

async function compare(versions, candidate) {
  const champion = versions.find((v) => v.champion);
  const box = byId("comparison");
  if (!champion) { box.replaceChildren(el("p", "No version is the champion yet, so there is nothing to compare with.")); return; }
  const [mine, theirs] = await Promise.all([report(champion.name, candidate), report(champion.name, champion.version)]);
  const table = el("table", null, { id: "comparison-table" });
  table.append(el("caption", `Gate checks: version ${candidate} beside the champion, version ${champion.version}`));
  const head = el("tr");
  head.append(el("th", "Check", { scope: "col" }), el("th", `Version ${candidate}`, { scope: "col" }), el("th", `Champion (version ${champion.version})`, { scope: "col" }));
  table.append(el("thead"));
  table.lastChild.append(head);
  const body = el("tbody");
  const overall = el("tr");
  overall.append(el("th", "Gate", { scope: "row" }), el("td", words(mine.gate, GATE_TEXT)), el("td", words(theirs.gate, GATE_TEXT)));
  body.append(overall);
  const titles = [...new Set([...mine.report.gate.checks, ...theirs.report.gate.checks].map((c) => c.check))];
  for (const title of titles) {
    const status = (r) => words(r.report.gate.checks.find((c) => c.check === title)?.status || "not checked", CHECK_TEXT);
    const tr = el("tr");
    tr.append(el("th", title, { scope: "row" }), el("td", status(mine)), el("td", status(theirs)));
    body.append(tr);
  }
  const quality = (r) => r.report.quality_gate;
  const qualityRow = el("tr");
  const qualityStatus = (r) => (quality(r) ? words(quality(r).status, QUALITY_TEXT) : "Not assessed by that audit");
  qualityRow.append(el("th", "Quality gate", { scope: "row" }), el("td", qualityStatus(mine)), el("td", qualityStatus(theirs)));
  body.append(qualityRow);
  const qualityTitles = [...new Set([mine, theirs].flatMap((r) => (quality(r)?.checks || []).map((c) => c.check)))];
  for (const title of qualityTitles) {
    const status = (r) => words(quality(r)?.checks.find((c) => c.check === title)?.status || "not checked", CHECK_TEXT);
    const tr = el("tr");
    tr.append(el("th", title, { scope: "row" }), el("td", status(mine)), el("td", status(theirs)));
    body.append(tr);
  }
  table.append(body);
  const wrap = el("div", null, { class: "table-wrap" });
  wrap.append(table);
  box.replaceChildren(wrap);
  status(`Version ${candidate} is shown beside the champion.`);
}

pages.committee = async () => {
  const versions = await versionsOf();
  showVersions(versions, await qualityOf(versions));
  const select = byId("candidate");
  const audited = versions.filter((v) => v.report_url && !v.champion);
  select.replaceChildren(...audited.map((v) => option(v.version, `Version ${v.version}`)));
  const form = byId("compare");
  if (!audited.length) form.replaceWith(el("p", "There is no other audited version to compare with the champion."));
  else form.addEventListener("submit", (ev) => { ev.preventDefault(); compare(versions, select.value).catch((e) => showProblem(e.message)); });
  if (versions.length) await showDecisions(versions[0].name);
  await showMonitoring().catch((e) => { byId("monitoring-summary").textContent = `The monitoring report could not be read: ${e.message}`; });
  await showImpact().catch((e) => { byId("impact-summary").textContent = `The impact evaluation could not be read: ${e.message}`; });
};

// Changes between scoring runs (waymark monitor) -----------------------------------------------------

const share = (x) => (x === null || x === undefined ? "not measurable" : `${Math.round(x * 100)}%`);

async function showMonitoring() {
  const r = await api("/v1/monitoring/latest");
  if (!r) return;  // no report yet: the section says how to make one
  const against = r.previous_run ? `run ${r.previous_run.id}` : "no earlier run";
  byId("monitoring-summary").textContent = `Run ${r.run.id} (data as of ${r.run.data_as_of}) compared with the training data and ${against}, on ${when(r.made_at)}: ${counted(r.flags.length, "shift")} beyond the policy's thresholds.` +
    (r.groups ? ` Groups with fewer than ${r.groups.min_group_size} students are not shown.${r.groups.previous_withheld ? ` ${r.groups.previous_withheld}` : ""}` : " No group figures in this report.");
  const flags = byId("monitoring-flags");
  flags.querySelector("tbody").replaceChildren(...r.flags.map((f) => {
    const tr = el("tr");
    tr.append(cell("What", f.kind), cell("Where", f.scope), cell("Name", f.name), cell("Value", Number(f.value).toFixed(3)), cell("Threshold", Number(f.threshold).toFixed(3)));
    return tr;
  }));
  flags.hidden = !r.flags.length;
  const rows = r.stability.filter((s) => "turnover" in s);
  const turnover = byId("monitoring-turnover");
  turnover.querySelector("tbody").replaceChildren(...rows.map((s) => {
    const tr = el("tr");
    tr.append(cell("Module", s.module), cell("List", `Top ${Math.round(s.share * 100)}%`), cell("Students listed", String(s.listed)),
      ...(s.withheld
        ? [cell("Changed", `withheld (fewer than ${r.min_students} students)`), cell("Changed with smoothing", "withheld")]
        : [cell("Changed", share(s.turnover)), cell("Changed with smoothing", share(s.turnover_smoothed))]));
    return tr;
  }));
  turnover.hidden = !rows.length;
  if (r.stability_withheld) byId("monitoring-summary").textContent += ` ${r.stability_withheld}`;
}

// Does outreach help? (waymark evaluate impact) -------------------------------------------------------

const COVARIATE_TEXT = { estimate_logit: "The estimate (log-odds)" };

// A difference in completion rates, in percentage points with its sign.
function points(x) {
  if (x === null || x === undefined) return "not measurable";
  const n = Math.round(x * 1000) / 10;
  const sign = n > 0 ? "+" : n < 0 ? "\u2212" : "";
  return `${sign}${Math.abs(n).toFixed(1)} points`;
}

const range = ([, low, high]) => (low === null || high === null ? "not measurable" : `${points(low)} to ${points(high)}`);

function reading(effect) {
  const [, low, high] = effect;
  if (low === null || high === null) return "The interval could not be measured, so this evaluation cannot say how contacted students compare.";
  if (low <= 0 && high >= 0) return "The range includes zero: this evaluation cannot tell whether contacted students completed more or less often than comparable students who were not contacted.";
  const more = low > 0 ? "more" : "less";
  return `The whole range lies ${low > 0 ? "above" : "below"} zero: contacted students completed ${more} often than comparable students who were not contacted.`;
}

function balanceText(balance) {
  const rows = Object.entries(balance).filter(([, [, after]]) => after !== null);
  if (!rows.length) return "No balance figures are available.";
  const [name, [before, after]] = rows.reduce((a, b) => (Math.abs(b[1][1]) > Math.abs(a[1][1]) ? b : a));
  const comparable = rows.filter(([, [, a]]) => Math.abs(a) < 0.1).length;
  const was = before === null ? "" : ` (${Number(before).toFixed(2)} before matching)`;
  return `Were the groups compared alike? After matching, ${comparable} of ${rows.length} measures differ by less than 0.1 standard deviations, the usual reading of comparable; the largest difference is ${words(name, COVARIATE_TEXT).toLowerCase()}, ${Number(after).toFixed(2)}${was}.`;
}

// The capacity-cut view (fairness/discontinuity.py): students just inside and just outside the cut.
function cutText(cut) {
  if (!cut) return "";
  const lead = "At the capacity cut: ";
  if (cut.withheld) return `${lead}${cut.withheld}.`;
  if (!cut.followed) return `${lead}no figure, because ${cut.why} (the share contacted changed by ${points(cut.first_stage[0])} at the cut).`;
  return `${lead}students just inside the number staff could contact from each module's list (${cut.inside}) against those just outside it (${cut.outside}), over ${cut.lists} lists: ` +
    `${points(cut.effect[0])} in completion for being contacted (${range(cut.effect)}). ${reading(cut.effect)}`;
}

function overallRow(label, interval) {
  const tr = el("tr");
  tr.append(el("th", label, { scope: "row" }), el("td", points(interval[0])), el("td", range(interval)));
  return tr;
}

async function showImpact() {
  const found = await api("/v1/impact/latest");
  if (!found.available) return;  // no evaluation yet: the section says how to make one
  const r = found.report;
  const evaluated = ["Evaluated ", timeEl(r.generated_at, when(r.generated_at)), `, for contacts made from ${day(r.since)}.`];
  const confidence = Math.round((r.settings.confidence ?? 0.95) * 100);
  const o = r.overall;
  if (!o) {
    byId("impact-summary").replaceChildren(...evaluated, " Too few contacted students, or none comparable, to compare: no figures are shown.");
  } else {
    const unmatched = o.contacted - o.matched;
    const without = r.contacted_without_indicator ? ` ${counted(r.contacted_without_indicator, "contacted student")} had no estimate before their first contact and ${r.contacted_without_indicator === 1 ? "is" : "are"} not compared.` : "";
    byId("impact-summary").replaceChildren(...evaluated, ` ${o.matched} of ${o.contacted} contacted students were compared with students who were not contacted but looked the same to Waymark at the time` +
      `${unmatched > 0 ? ` (${unmatched} had no comparable student)` : ""}. ${pct(o.completed_contacted)} of them completed, against ${pct(o.completed_comparison)} of their comparisons.${without}`);
    byId("impact-overall").querySelector("tbody").replaceChildren(
      overallRow("Comparable students not contacted", o.effect),
      overallRow("Every student not contacted (plain comparison)", o.naive),
    );
    byId("impact-reading").textContent = `${reading(o.effect)} Ranges are ${confidence}% bootstrap intervals. The plain comparison mostly measures who was chosen for outreach, since students with higher estimates were contacted first.`;
    byId("impact-balance").textContent = balanceText(o.balance);
  }
  byId("impact-cut").textContent = cutText(r.at_the_cut);
  byId("impact-overall").closest(".table-wrap").hidden = !o;
  const groups = byId("impact-groups");
  groups.querySelector("tbody").replaceChildren(...r.groups.map((g) => {
    const tr = el("tr");
    tr.append(cell("Characteristic", words(g.attribute)), cell("Group", g.group), cell("Contacted students compared", String(g.matched)),
      cell("Difference in completion (range)", `${points(g.effect[0])} (${range(g.effect)})`), cell("Plain comparison", points(g.naive[0])));
    return tr;
  }));
  groups.hidden = !r.groups.length;
  byId("impact-withheld").replaceChildren(...r.withheld.map((w) =>
    el("li", `${words(w.attribute)}: ${counted(w.withheld_groups, "group")} not shown, ${w.why}.`)));
  byId("impact-limits").replaceChildren(...r.cannot_show.map((text) => el("li", text)));
  byId("impact").hidden = false;
}

// One version's report -------------------------------------------------------------------------------

function figure(values, key, asPct, interval) {
  const v = values?.[key];
  if (!v || v.point === null || v.point === undefined) return null;
  const f = (x) => (x === null || x === undefined ? "?" : asPct ? pct(x) : Number(x).toFixed(2));
  return interval ? `${f(v.point)} (${f(v.low)} to ${f(v.high)})` : f(v.point);
}

function groupTable(audit, policy) {
  const table = el("table");
  const capacity = Math.round(audit.capacity * 100);
  const hidden = audit.suppressed_groups ? `; ${counted(audit.suppressed_groups, "group")} not shown (below ${policy.min_group_size} students, or withheld beside one that is so that it cannot be worked out)` : "";
  const cells = `. A figure is withheld when fewer than ${policy.min_group_size} students stand behind it (those selected, or those who needed support), or when it would let a withheld figure be worked out by subtraction`;
  table.append(el("caption", `${audit.attribute}, week ${audit.week}, ${capacity}% capacity; reference group for the missed rate: ${audit.reference.false_negative_rate}${hidden}${cells}`));
  const head = el("tr");
  head.append(el("th", "Group", { scope: "col" }), el("th", "Students", { scope: "col" }), el("th", "Needed support", { scope: "col" }));
  for (const [, heading] of COLUMNS) head.append(el("th", heading, { scope: "col" }));
  head.append(el("th", "ABROCA", { scope: "col" }));
  table.append(el("thead"));
  table.lastChild.append(head);
  const body = el("tbody");
  for (const g of audit.groups) {
    const tr = el("tr");
    tr.append(el("th", g.group, { scope: "row" }), el("td", String(g.students)),
      g.needed_support === null ? el("td", "withheld", { class: "withheld" }) : el("td", String(g.needed_support)));
    for (const [key, , where, asPct, interval] of COLUMNS) {
      const text = figure(g[where], key, asPct, interval);
      tr.append(text === null ? el("td", "withheld", { class: "withheld" }) : el("td", text));
    }
    tr.append(g.abroca === null ? el("td", "withheld", { class: "withheld" }) : el("td", Number(g.abroca).toFixed(3)));
    body.append(tr);
  }
  table.append(body);
  const wrap = el("div", null, { class: "table-wrap", role: "region", tabindex: "0", "aria-label": `${audit.attribute}, week ${audit.week}, ${capacity}% capacity` });
  wrap.append(table);
  return wrap;
}

function section(id, title) {
  const s = el("section", null, { "aria-labelledby": id });
  s.append(el("h2", title, { id }));
  return s;
}

function checksSection(r) {
  const s = section("checks-h", "The gate's checks");
  const ul = el("ul", null, { id: "checks" });
  for (const c of r.gate.checks) {
    const li = el("li");
    li.append(el("strong", c.check), `: ${words(c.status, CHECK_TEXT)}.`);
    if (c.reasons.length) {
      const reasons = el("ul");
      for (const reason of c.reasons.slice(0, 12)) reasons.append(el("li", reason));
      if (c.reasons.length > 12) reasons.append(el("li", `and ${c.reasons.length - 12} more`));
      li.append(reasons);
    }
    ul.append(li);
  }
  s.append(ul);
  return s;
}

function qualityFigure(values, metric) {
  return figure(values, metric, false, true) ?? "not measurable";
}

function qualitySection(r) {
  const q = r.quality_gate;
  const s = section("quality-h", "The quality gate: how well the model ranks and calibrates");
  if (!q) { s.append(el("p", "This audit predates the quality gate: it was not assessed.")); return s; }
  s.append(el("p", `Quality gate: ${words(q.status, QUALITY_TEXT)}. Comparison with the champion: ${q.champion_note}.`, { id: "quality-gate" }));
  const ul = el("ul", null, { id: "quality-checks" });
  for (const c of q.checks) {
    const li = el("li");
    li.append(el("strong", c.check), `: ${words(c.status, CHECK_TEXT)}.`);
    const reasons = el("ul");
    for (const reason of c.reasons) reasons.append(el("li", reason));
    li.append(reasons);
    ul.append(li);
  }
  s.append(ul);
  const table = el("table", null, { id: "quality-table" });
  table.append(el("caption", `AUC and ECE by week on the later presentations${q.champion ? `, beside the champion (${q.champion}) on the same students` : ""}; intervals in brackets`));
  const head = el("tr");
  const headings = ["Week", "Registrations", "Minimum AUC", "AUC", "Maximum ECE", "ECE"];
  if (q.champion) headings.push("Champion's AUC", "Champion's ECE", "AUC difference", "ECE difference");
  head.append(...headings.map((h) => el("th", h, { scope: "col" })));
  table.append(el("thead"));
  table.lastChild.append(head);
  const body = el("tbody");
  for (const w of q.weeks) {
    const tr = el("tr");
    tr.append(el("th", String(w.week), { scope: "row" }), el("td", String(w.registrations ?? w.students)), el("td", w.min_auc === null ? "none" : String(w.min_auc)),
      el("td", qualityFigure(w.candidate, "auc")), el("td", w.max_ece === null ? "none" : String(w.max_ece)), el("td", qualityFigure(w.candidate, "ece")));
    if (q.champion) {
      tr.append(el("td", qualityFigure(w.champion, "auc")), el("td", qualityFigure(w.champion, "ece")),
        el("td", qualityFigure(w.difference, "auc")), el("td", qualityFigure(w.difference, "ece")));
    }
    body.append(tr);
  }
  table.append(body);
  const wrap = el("div", null, { class: "table-wrap", role: "region", tabindex: "0", "aria-label": "Quality by week" });
  wrap.append(table);
  s.append(wrap, el("p", "Differences are the candidate minus the champion, from the same resamples of students for both. ECE is the average gap between estimates and observed rates over ten bands of estimates.", { class: "hint" }));
  return s;
}

function proxySection(r) {
  const s = section("proxy-h", "Do the features stand in for a protected characteristic?");
  s.append(el("p", "A simple classifier tried to predict each characteristic from the model's own features. An AUC of 0.5 means it could not; a warning means the committee should look closely."));
  const table = el("table");
  table.append(el("caption", "Proxy check"));
  const head = el("tr");
  head.append(el("th", "Characteristic", { scope: "col" }), el("th", "AUC", { scope: "col" }), el("th", "Warning", { scope: "col" }));
  table.append(el("thead"));
  table.lastChild.append(head);
  const body = el("tbody");
  for (const p of r.proxy_check) {
    const tr = el("tr");
    // with a warning, the features that alone tell it apart best (older reports have none)
    const telling = (p.features || []).length ? `; told apart most by ${p.features.map((f) => `${f.feature} (${Number(f.auc).toFixed(2)})`).join(", ")}` : "";
    tr.append(el("th", p.characteristic, { scope: "row" }), el("td", p.auc === null ? "—" : Number(p.auc).toFixed(2) + (p.group != null && p.group_auc != null ? ` on average over its groups; ${Number(p.group_auc).toFixed(2)} for ${p.group} against the rest` : "") + telling), el("td", p.auc === null ? "Not checked: fewer than two recorded groups large enough to compare" : p.warning ? "Yes: review" : "No"));
    body.append(tr);
  }
  table.append(body);
  s.append(table);
  return s;
}

function meaningsSection(r) {
  const s = section("meanings-h", "What each measure means for students");
  const dl = el("dl");
  for (const [name, text] of Object.entries(r.metric_meanings)) dl.append(el("dt", words(name)), el("dd", text));
  s.append(dl);
  return s;
}

function groupsSection(r) {
  const s = section("groups-h", "Each group, with its interval");
  const p = r.policy;
  // Python's round() takes a half to the even number: at a step of 10, 5 shows as 0.
  const zero = p.count_rounding > 1 ? `, so a 0 may stand for up to ${Math.floor(p.count_rounding / 2)}` : "";
  const counts = p.count_rounding > 1 ? `Counts are rounded to the nearest ${p.count_rounding}${zero}.` : "Counts are exact.";
  s.append(el("p", `${counts} Groups with fewer than ${p.min_group_size} students are not shown, only their number. Intervals are ${Math.round(p.confidence * 100)}% bootstrap intervals from ${p.bootstrap_resamples} resamples. ${p.withheld_means}`));
  const attributes = [...new Set(r.audits.map((a) => a.attribute))];
  for (const attribute of attributes) {
    const details = el("details");
    const audits = r.audits.filter((a) => a.attribute === attribute);
    details.append(el("summary", `${attribute} (${audits.length} ${audits.length === 1 ? "table" : "tables"})`));
    for (const a of audits) details.append(groupTable(a, p));
    s.append(details);
  }
  return s;
}

function renderReport(found) {
  const r = found.report;
  const box = byId("report");
  const summary = section("summary-h", "Summary");
  const target = r.model.target === "not_completing" ? "not completing the module" : "not submitting the next assessment";
  summary.append(
    el("p", `Fairness gate: ${words(found.gate, GATE_TEXT)}. Quality gate: ${r.quality_gate ? words(r.quality_gate.status, QUALITY_TEXT) : "not assessed"}. Audited ${when(found.audited_at)}; the report was generated ${when(r.generated_at)}.`, { id: "gate" }),
    el("p", `The model (${r.model.family}) estimates each week the chance of ${target}.${r.model.outcome_meaning ? " " + r.model.outcome_meaning : ""} The audit asks, for each group of students, whom the outreach list would miss who needed support, and whom it would contact who did not.`),
    el("p", `Tested on the later presentations ${r.data.test_presentations.join(", ")}; characteristics audited: ${r.data.characteristics.join(", ")}. Bundle sha256 ${r.model.bundle_sha256}.`, { class: "hint" }),
  );
  const checks = r.gate.checks || [];
  if (found.gate === "inconclusive") {
    summary.append(el("p", r.gate.why_inconclusive || "No check was broken, but none could be confirmed either: every check is inconclusive or could not be assessed. Nothing was shown to be wrong, and nothing to be right, so the committee can approve this model only with a stated override reason.", { id: "gate-unconfirmed" }));
  } else if (found.gate === "pass" && checks.length && !checks.some((c) => c.status === "pass")) {
    summary.append(el("p", "No check was clearly broken, and some groups' comparisons had their estimate within the tolerance, but no check passed whole: each has groups it could not assess or confirm.", { id: "gate-unconfirmed" }));
  }
  if (found.gate === "pass") {
    summary.append(el("p", "A pass means no clear breach was found, not that the model was shown to be fair: a comparison whose estimate lies outside its tolerance while its interval reaches back inside is inconclusive and does not block, so read the inconclusive checks.", { id: "gate-pass-means" }));
  }
  const unaudited = r.unaudited_weeks || [];
  if (unaudited.length) {
    const named = unaudited.length === 1 ? `Week ${unaudited[0]} of the policy was` : `Weeks ${unaudited.slice(0, -1).join(", ")} and ${unaudited[unaudited.length - 1]} of the policy were`;
    summary.append(el("p", `${named} not audited: every test presentation ends before then, so neither gate judges ${unaudited.length === 1 ? "it" : "them"}, and indicators at later weeks rest on no audit.`, { id: "gate-unaudited" }));
  }
  const clauses = section("cop-h", "Code of Practice clauses this audit addresses");
  const ul = el("ul");
  for (const c of r.code_of_practice) { const li = el("li"); li.append(el("strong", c.clause), `: ${c.how}`); ul.append(li); }
  clauses.append(ul);
  const policy = section("policy-h", "The policy used");
  const details = el("details");
  details.append(el("summary", "The policy file"), el("pre", r.policy.text));
  policy.append(details);
  box.replaceChildren(summary, checksSection(r), qualitySection(r), proxySection(r), meaningsSection(r), groupsSection(r), clauses, policy);
}

// The decision names the audit whose report was read: a newer one recorded meanwhile is refused, not
// approved unread (a red team re-audited under another policy between the reading and the approval).
function reviewForm(name, version, auditId) {
  const form = byId("review");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const choice = form.elements.approve.value;
    if (!choice) { showErrors(form, "rv", new ApiError(422, "body.approve: Choose whether to approve or reject this version.")); return; }
    if (!form.elements.note.value.trim()) { showErrors(form, "rv", new ApiError(422, "body.note: Give the committee's reasons: they are kept with the decision.")); return; }
    const body = { approve: choice === "true", note: form.elements.note.value, audit_id: auditId };
    if (form.elements.override_reason.value.trim()) body.override_reason = form.elements.override_reason.value;
    let recorded;
    try {
      recorded = await send(`/v1/models/${enc(name)}/versions/${enc(version)}/review`, "POST", body);
    } catch (e) {
      const field = e.status === 409 && /override/i.test(e.message) ? "override_reason" : null;
      showErrors(form, "rv", e, { 409: field });
      return;
    }
    clearErrors(form);
    form.reset();
    status(`Recorded: version ${version} ${recorded.ethics_decision === "approved" ? "approved" : "rejected"}. It is in the history of decisions.`);
  });
}

pages.report = async () => {
  const [name, version] = location.hash.slice(1).split("/").map(decodeURIComponent);
  window.addEventListener("hashchange", () => location.reload());
  if (!name || !version) { showProblem("No report was chosen. Open one from the model versions."); return; }
  document.querySelector("h1").textContent = `Fairness report: ${name}, version ${version}`;
  document.title = `Fairness report, version ${version} · Waymark`;
  let found;
  try {
    found = await report(name, version);
  } catch (e) { showProblem(e.message); return; }
  renderReport(found);
  byId("review-section").hidden = false;
  if (document.body.dataset.role === "ethics_reviewer") {
    byId("review").hidden = false;
    reviewForm(name, version, found.audit_id);
  } else byId("review-readonly").hidden = false;
};
