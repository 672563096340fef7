// aidgraph console: plain JavaScript modules, no build step. Every screen reads and writes through the public
// GraphQL API (and /auth/* for the session), so what a caseworker sees is exactly what any frontend would get.
import { gql, login, logout, changePassword, ApiError } from "./api.js";
import { t, setLang, currentLang, dateTime, money } from "./i18n.js";

const main = document.getElementById("main");
const LEVELS = ["RED", "ORANGE", "YELLOW", "BLUE", "GREEN"];
let me = null;

// --- small helpers ----------------------------------------------------------------------------------------
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
// Search highlights are HTML fragments: keep only <em>/<mark>, escape the rest.
const safeHighlight = (html) => esc(html).replace(/&lt;(\/?)(em|mark)&gt;/g, "<$1$2>");
const badge = (level) => level ? `<span class="badge level ${esc(level)}">${esc(t(level))}</span>` : "";
const key = () => (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
function toast(message, error = false) {
  const box = document.getElementById("toast");
  const div = document.createElement("div");
  div.className = "msg" + (error ? " error" : "");
  div.textContent = message;
  div.dataset.testid = "toast";
  box.appendChild(div);
  setTimeout(() => div.remove(), 6000);
}
function params() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  return { path: path || "/", q: new URLSearchParams(query || "") };
}
function go(path, q = {}) {
  const s = new URLSearchParams(Object.entries(q).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString();
  location.hash = "#" + path + (s ? "?" + s : "");
}
function errorText(e) {
  if (e instanceof ApiError) {
    if (e.code === "NOT_FOUND") return t("notFound");
    if (e.code === "FORBIDDEN") return t("forbidden");
    if (/Cannot query field|Unknown type|Unknown argument/.test(e.message)) return t("notAvailable");
  }
  return e.message || String(e);
}
function mutationErrors(errors) {
  return errors.map((e) => `${e.field ? e.field + ": " : ""}${e.message} (${e.code})`).join("; ");
}
const defaultRegion = () => (me && me.scopes.length ? me.scopes[0].code : "");

// --- chrome ------------------------------------------------------------------------------------------------
const SCREENS = [
  ["/dashboard", "nav_dashboard"], ["/search", "nav_search"], ["/alerts", "nav_alerts"], ["/gaps", "nav_gaps"],
  ["/queue", "nav_queue"], ["/medical", "nav_medical"], ["/referrals", "nav_referrals"], ["/charity", "nav_charity"],
  ["/simulate", "nav_simulate"], ["/inspection", "nav_inspection"], ["/recovery", "nav_recovery"],
  ["/audit", "nav_audit"], ["/account", "nav_account"],
];
function chrome() {
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.title = t("brand") + " · aidgraph";
  document.getElementById("lang").textContent = currentLang() === "en" ? "中文" : "English";
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  document.getElementById("logout").hidden = !me;
  if (!me) { nav.innerHTML = ""; who.textContent = ""; return; }
  const { path } = params();
  nav.innerHTML = SCREENS.map(([p, k]) => `<a href="#${p}" data-nav="${p.slice(1)}" class="${path === p ? "active" : ""}">${esc(t(k))}</a>`).join("");
  who.textContent = `${me.displayName} (${me.username}) · ${me.scopes.map((s) => s.name).join("、")}`;
}
document.getElementById("lang").addEventListener("click", () => { setLang(currentLang() === "en" ? "zh-CN" : "en"); route(); });
document.getElementById("logout").addEventListener("click", async () => {
  await logout(); me = null; go("/login"); route();
});

// --- screens -----------------------------------------------------------------------------------------------
async function loginScreen(message) {
  main.innerHTML = `<div class="card login" data-screen="login">
    <h1>${esc(t("loginTitle"))}</h1>
    ${message ? `<div class="error-box" data-testid="login-error">${esc(message)}</div>` : ""}
    <form class="stack" id="login-form">
      <label for="u">${esc(t("username"))}</label><input id="u" name="username" autocomplete="username" required>
      <label for="p">${esc(t("password"))}</label><input id="p" name="password" type="password" autocomplete="current-password" required>
      <p><button class="primary" type="submit">${esc(t("login"))}</button></p>
    </form><p id="oidc-login"></p></div>`;
  // The province's identity provider, when the server has one configured (GET /auth/methods).
  fetch("/auth/methods", { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : {})).then((m) => {
    const slot = document.getElementById("oidc-login");
    if (!m.oidc || !slot) return;
    const next = params().q.get("next");
    const target = "/console#" + (next && next !== "/login" ? next : "/dashboard");
    slot.innerHTML = `<a class="button" data-testid="oidc-login" href="/auth/oidc/login?next=${encodeURIComponent(target)}">${esc(t("oidcLogin"))}</a>`;
  }).catch(() => {});
  document.getElementById("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      await login(f.username.value.trim(), f.password.value);
      me = null;
      const next = params().q.get("next");
      history.replaceState(null, "", "#" + (next && next !== "/login" ? next : "/dashboard"));
      await route();
    } catch (e) {
      loginScreen(e.status === 429 ? t("rateLimited") : t("loginFailed"));
    }
  });
}

const REGION = `query Region($code: String!) {
  region(code: $code) { code name level parent { code name level }
    stats { households persons lowIncomePersons openAlerts }
    children { code name level stats { households lowIncomePersons openAlerts } } }
  red: alerts(regionCode: $code, level: RED, status: OPEN, first: 1) { totalCount }
  orange: alerts(regionCode: $code, level: ORANGE, status: OPEN, first: 1) { totalCount }
  yellow: alerts(regionCode: $code, level: YELLOW, status: OPEN, first: 1) { totalCount }
  blue: alerts(regionCode: $code, level: BLUE, status: OPEN, first: 1) { totalCount }
  green: alerts(regionCode: $code, level: GREEN, status: OPEN, first: 1) { totalCount }
}`;
function shade(value, max) {
  const f = max ? Math.min(1, value / max) : 0;  // white to deep red
  const r = 255, g = Math.round(245 - 180 * f), b = Math.round(240 - 190 * f);
  return `rgb(${r},${g},${b})`;
}
async function dashboard(q) {
  const code = q.get("region") || defaultRegion();
  const data = await gql(REGION, { code });
  const r = data.region;
  if (!r) { main.innerHTML = `<div class="error-box" data-testid="not-found">${esc(t("notFound"))}</div>`; return; }
  const crumbs = [];
  if (r.parent && me.scopes.some((s) => r.parent.code.startsWith(s.code))) crumbs.push(`<a href="#/dashboard?region=${esc(r.parent.code)}">${esc(r.parent.name)}</a><span class="sep">›</span>`);
  const max = Math.max(1, ...r.children.map((c) => c.stats.lowIncomePersons));
  const byLevel = { RED: data.red, ORANGE: data.orange, YELLOW: data.yellow, BLUE: data.blue, GREEN: data.green };
  main.innerHTML = `<div data-screen="dashboard">
    <div class="crumbs">${crumbs.join("")}<b>${esc(r.name)}</b> <span class="muted">${esc(t(r.level))} ${esc(r.code)}</span></div>
    <div class="stats" data-testid="region-stats">
      ${["households", "persons", "lowIncomePersons", "openAlerts"].map((k) => `<div class="stat"><b data-stat="${k}">${r.stats[k]}</b>${esc(t(k))}</div>`).join("")}
    </div>
    <h2>${esc(t("byLevel"))}</h2>
    <div class="stats">${LEVELS.filter((l) => byLevel[l].totalCount).map((l) => `<a class="stat" href="#/alerts?region=${esc(r.code)}&level=${l}">${badge(l)}<b>${byLevel[l].totalCount}</b></a>`).join("") || `<span class="muted">${esc(t("none"))}</span>`}</div>
    <h2>${esc(t("childrenOf"))} (${r.children.length})</h2>
    <div class="legend">0 <i style="background:${shade(0, 1)}"></i><i style="background:${shade(0.5, 1)}"></i><i style="background:${shade(1, 1)}"></i> ${max} ${esc(t("lowIncomePersons"))}</div>
    <div class="tiles" data-testid="tiles">${r.children.map((c) => `<a class="tile" data-region="${esc(c.code)}" href="#/dashboard?region=${esc(c.code)}" style="background:${shade(c.stats.lowIncomePersons, max)}">
        <div class="name">${esc(c.name)}</div>
        <div class="num">${esc(t("lowIncomePersons"))} ${c.stats.lowIncomePersons} · ${esc(t("openAlerts"))} ${c.stats.openAlerts}</div>
        <div class="num muted">${esc(t("households"))} ${c.stats.households}</div></a>`).join("")}</div>
    <p class="small muted">${esc(t("tileNote"))}</p></div>`;
}

const SEARCH = `query Search($query: String!, $kinds: [SearchKind!], $regionCode: String, $first: Int, $after: String) {
  search(query: $query, kinds: $kinds, regionCode: $regionCode, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } facets { field buckets { key count } }
    edges { score highlights node { __typename
      ... on Person { id name idNumber households { id householdNumber } }
      ... on Household { id householdNumber region { code name } head { name } }
      ... on Alert { id level household { id } }
      ... on Enrollment { id status program { name } household { id } } } } } }`;
async function searchScreen(q) {
  const text = q.get("q") || "";
  const kind = q.get("kind") || "";
  main.innerHTML = `<div data-screen="search"><h1>${esc(t("nav_search"))}</h1>
    <form class="inline" id="search-form"><input name="q" size="40" value="${esc(text)}" placeholder="${esc(t("searchHint"))}" data-testid="search-input">
    <select name="kind"><option value="">*</option>${["PERSON", "HOUSEHOLD", "ALERT", "ENROLLMENT"].map((k) => `<option value="${k}" ${k === kind ? "selected" : ""}>${esc(t(k))}</option>`).join("")}</select>
    <button class="primary" type="submit">${esc(t("search"))}</button></form><div id="results"></div></div>`;
  document.getElementById("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault(); go("/search", { q: ev.target.q.value.trim(), kind: ev.target.kind.value });
  });
  if (!text) return;
  const out = document.getElementById("results");
  try {
    const data = await gql(SEARCH, { query: text, kinds: kind ? [kind] : null, first: 10, after: q.get("after") });  // facets weigh on the query cost limit: pages of 10
    const s = data.search;
    const link = (n) => {
      if (n.__typename === "Household") return `<a href="#/household?id=${esc(n.id)}">${esc(n.householdNumber)}</a> ${esc(n.head ? n.head.name : "")} <span class="muted">${esc(n.region.name)}</span>`;
      if (n.__typename === "Person") return `${esc(n.name)} <span data-testid="id-number">${esc(n.idNumber)}</span> ${n.households.map((h) => `<a href="#/household?id=${esc(h.id)}">${esc(h.householdNumber)}</a>`).join(" ")}`;
      if (n.__typename === "Alert") return `${badge(n.level)} ${n.household ? `<a href="#/household?id=${esc(n.household.id)}">${esc(t("goHousehold"))}</a>` : ""}`;
      return `${esc(t(n.status))} ${esc(n.program.name)} ${n.household ? `<a href="#/household?id=${esc(n.household.id)}">${esc(t("goHousehold"))}</a>` : ""}`;
    };
    out.innerHTML = `<p><b data-testid="search-total">${s.totalCount}</b> ${esc(t("results"))}</p>
      <div class="card small">${s.facets.map((f) => `<b>${esc(f.field)}</b>: ${f.buckets.map((b) => `${esc(t(b.key))} ${b.count}`).join(" · ")}`).join("<br>")}</div>
      <table data-testid="search-results"><tr><th>${esc(t("object"))}</th><th></th><th>${esc(t("detail"))}</th></tr>
      ${s.edges.map((e) => `<tr><td>${esc(t(e.node.__typename.toUpperCase()))}</td><td>${link(e.node)}</td><td class="small">${(e.highlights || []).map(safeHighlight).join(" … ")}</td></tr>`).join("")}</table>
      ${s.pageInfo.hasNextPage ? `<div class="pager"><a href="#/search?q=${encodeURIComponent(text)}&kind=${kind}&after=${encodeURIComponent(s.pageInfo.endCursor)}">${esc(t("next"))}</a></div>` : ""}`;
  } catch (e) { out.innerHTML = `<div class="error-box">${esc(errorText(e))}</div>`; }
}

const HOUSEHOLD = `query Household($id: ID!) {
  household(id: $id) { id householdNumber address categories warningLevel region { code name level }
    members { relationToHead since person { id name idNumber sex age disabilityLevel chronicDisease employmentStatus labourCapacity
      relationships { kind since person { id name } } } }
    economics { perCapitaMonthlyIncome totalFinancialAssets assessedAt }
    enrollments { id status monthlyAmount startDate endDate program { key name domain } }
    aidChain(first: 50) { edges { node { at kind summary program { key } } } }
    alerts { id level status score indicators raisedAt } }
  eligibility(householdId: $id) { eligible reasons monthlyAmount program { key name } } }`;
function relationGraph(h) {
  // Members around the household in a circle, each member's relationships drawn to the persons they name.
  const people = new Map();
  h.members.forEach((m) => people.set(m.person.id, { name: m.person.name, member: true }));
  h.members.forEach((m) => m.person.relationships.forEach((r) => { if (!people.has(r.person.id)) people.set(r.person.id, { name: r.person.name, member: false }); }));
  const ids = [...people.keys()];
  const W = 420, H = 300, cx = W / 2, cy = H / 2, R = Math.min(W, H) / 2 - 40;
  const pos = new Map(ids.map((id, i) => [id, [cx + R * Math.cos((2 * Math.PI * i) / ids.length - Math.PI / 2), cy + R * Math.sin((2 * Math.PI * i) / ids.length - Math.PI / 2)]]));
  const edges = [];
  const seen = new Set();
  h.members.forEach((m) => m.person.relationships.forEach((r) => {
    const k = [m.person.id, r.person.id].sort().join("|") + r.kind;
    if (seen.has(k)) return; seen.add(k);
    const [x1, y1] = pos.get(m.person.id), [x2, y2] = pos.get(r.person.id);
    edges.push(`<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="#98a2b3"/><text x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2}" fill="#475467">${esc(t(r.kind))}</text>`);
  }));
  const nodes = ids.map((id) => { const [x, y] = pos.get(id); const p = people.get(id);
    return `<circle cx="${x}" cy="${y}" r="18" fill="${p.member ? "#fde8e7" : "#eaecf0"}" stroke="#b42318"/><text x="${x}" y="${y + 32}" text-anchor="middle">${esc(p.name)}</text>`; });
  return `<svg class="relations" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" data-testid="relations">${edges.join("")}${nodes.join("")}</svg>`;
}
async function householdScreen(q) {
  const id = q.get("id");
  const data = await gql(HOUSEHOLD, { id });
  const h = data.household;
  if (!h) { main.innerHTML = `<div class="error-box" data-testid="not-found">${esc(t("notFound"))}</div>`; return; }
  const e = h.economics;
  main.innerHTML = `<div data-screen="household">
    <h1>${esc(t("household"))} <span data-testid="household-number">${esc(h.householdNumber)}</span> ${badge(h.warningLevel)}</h1>
    <p>${esc(h.region.name)} · ${esc(h.address || "")} · ${esc(t("categories"))}: ${h.categories.map((c) => `<span class="badge">${esc(t(c))}</span>`).join("") || esc(t("none"))}</p>
    <div class="card"><h2>${esc(t("members"))}</h2><table data-testid="members"><tr><th>${esc(t("name"))}</th><th>${esc(t("idNumber"))}</th><th>${esc(t("relation"))}</th><th>${esc(t("sex"))}</th><th>${esc(t("age"))}</th><th>${esc(t("disability"))}</th><th>${esc(t("employment"))}</th><th></th></tr>
      ${h.members.map((m) => `<tr><td>${esc(m.person.name)}</td><td data-testid="id-number">${esc(m.person.idNumber)}</td><td>${esc(t(m.relationToHead))}</td><td>${esc(t(m.person.sex))}</td><td>${m.person.age}</td><td>${m.person.disabilityLevel ?? ""}</td><td>${esc(m.person.employmentStatus || "")}</td>
      <td><a href="#/medical?person=${esc(m.person.id)}">${esc(t("nav_medical"))}</a></td></tr>`).join("")}</table></div>
    <div class="grid2">
      <div class="card"><h2>${esc(t("relationships"))}</h2>${relationGraph(h)}</div>
      <div class="card"><h2>${esc(t("economics"))}</h2>${e ? `<p>${esc(t("perCapita"))}: <b>${money(e.perCapitaMonthlyIncome)}</b><br>${esc(t("assets"))}: ${money(e.totalFinancialAssets)}<br><span class="muted small">${esc(t("assessedAt"))} ${esc(dateTime(e.assessedAt))}</span></p>` : esc(t("none"))}
        <h2>${esc(t("alerts"))}</h2>${h.alerts.length ? `<table>${h.alerts.map((a) => `<tr><td>${badge(a.level)}</td><td>${esc(t(a.status))}</td><td>${a.score.toFixed(2)}</td><td class="small">${esc(a.indicators.join(", "))}</td><td class="small">${esc(dateTime(a.raisedAt))}</td></tr>`).join("")}</table>` : esc(t("none"))}</div>
    </div>
    <div class="card"><h2>${esc(t("eligibility"))}</h2><table data-testid="eligibility">${(data.eligibility || []).map((r) => `<tr><td>${esc(r.program.name)}</td><td class="${r.eligible ? "ok" : "no"}">${r.eligible || r.reasons.length ? esc(t(r.eligible ? "eligible" : "notEligible")) : "—"}</td><td>${r.monthlyAmount !== null ? money(r.monthlyAmount) : ""}</td><td><ul class="reasons">${r.reasons.map((x) => `<li>${esc(x)}</li>`).join("")}</ul></td></tr>`).join("")}</table></div>
    <form class="card inline" id="refer-form"><b>${esc(t("referCase"))}</b>
      <select name="department">${DEPARTMENTS.map((d) => `<option value="${d}">${esc(t("dept_" + d))}</option>`).join("")}</select>
      <input name="reason" size="40" placeholder="${esc(t("reasons"))}" required>
      <button class="primary" type="submit">${esc(t("REFER"))}</button></form>
    <div class="grid2">
      <div class="card"><h2>${esc(t("enrollments"))}</h2><table data-testid="enrollments">${h.enrollments.map((en) => `<tr><td>${esc(en.program.name)}</td><td>${esc(t(en.status))}</td><td>${money(en.monthlyAmount)}</td><td>${esc(en.startDate || "")} – ${esc(en.endDate || "")}</td><td><a href="#/recovery?enrollment=${esc(en.id)}" data-recover="${esc(en.id)}">${esc(t("recover"))}</a></td></tr>`).join("") || `<tr><td>${esc(t("none"))}</td></tr>`}</table></div>
      <div class="card"><h2>${esc(t("aidChain"))}</h2><ul class="timeline" data-testid="timeline">${h.aidChain.edges.map(({ node: n }) => `<li class="${esc(n.kind)}"><span class="small muted">${esc(dateTime(n.at))}</span> <b>${esc(n.kind)}</b> ${esc(n.summary)}</li>`).join("")}</ul></div>
    </div></div>`;
  wireReferForm(h.id);
}

const DEPARTMENTS = ["medical_insurance", "education", "human_resources", "housing", "emergency_management", "disabled_persons_federation"];
const REFER = `mutation ReferCase($input: ReferCaseInput!) { referCase(input: $input) { referral { id status department dueDate } errors { field message code } } }`;
function wireReferForm(householdId) {
  const form = document.getElementById("refer-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await gql(REFER, { input: { householdId, department: form.department.value, reason: form.reason.value.trim(), idempotencyKey: key() } });
      if (r.referCase.errors.length) throw new Error(mutationErrors(r.referCase.errors));
      toast(`${t("referCase")}: ${t("dept_" + r.referCase.referral.department)} · ${t("dueDate")} ${r.referCase.referral.dueDate || ""}`);
      form.reset();
    } catch (e) { toast(errorText(e), true); }
  });
}

const ALERTS = `query Alerts($regionCode: String!, $level: WarningLevel, $status: AlertStatus, $first: Int, $after: String) {
  alerts(regionCode: $regionCode, level: $level, status: $status, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id level score status indicators raisedAt township { code name } household { id householdNumber head { name } } } } } }`;
const DISPOSE = `mutation DisposeAlert($input: DisposeAlertInput!) { disposeAlert(input: $input) { alert { id status } errors { field message code } } }`;
async function alertsScreen(q) {
  const region = q.get("region") || defaultRegion();
  const level = q.get("level") || "";
  const status = q.get("status") || "OPEN";
  const data = await gql(ALERTS, { regionCode: region, level: level || null, status, first: 50, after: q.get("after") });
  const a = data.alerts;
  const now = Date.now();
  const actions = (s) => s === "OPEN" ? ["START_VERIFICATION"] : s === "VERIFYING" ? ["ENROL", "NO_ACTION_NEEDED", "REFER"] : [];
  main.innerHTML = `<div data-screen="alerts"><h1>${esc(t("nav_alerts"))}</h1>
    <form class="inline" id="alert-filter"><input name="region" value="${esc(region)}" size="14">
      <select name="level"><option value="">*</option>${LEVELS.map((l) => `<option value="${l}" ${l === level ? "selected" : ""}>${esc(t(l))}</option>`).join("")}</select>
      <select name="status">${["OPEN", "VERIFYING", "RESOLVED", "DISMISSED"].map((s) => `<option value="${s}" ${s === status ? "selected" : ""}>${esc(t(s))}</option>`).join("")}</select>
      <button class="secondary" type="submit">${esc(t("filter"))}</button> <span><b data-testid="alerts-total">${a.totalCount}</b></span>
      <span class="small muted">${esc(t("deadline"))}: ${esc(t("deadlineNotConfigured"))}</span></form>
    <table data-testid="alerts"><tr><th>${esc(t("level"))}</th><th>${esc(t("household"))}</th><th>${esc(t("township"))}</th><th>${esc(t("score"))}</th><th>${esc(t("indicators"))}</th><th>${esc(t("raisedAt"))}</th><th>${esc(t("age_days"))}</th><th>${esc(t("dispose"))}</th></tr>
    ${a.edges.map(({ node: n }) => `<tr data-alert="${esc(n.id)}"><td>${badge(n.level)}</td>
      <td>${n.household ? `<a href="#/household?id=${esc(n.household.id)}">${esc(n.household.householdNumber)}</a> ${esc(n.household.head ? n.household.head.name : "")}` : ""}</td>
      <td>${esc(n.township ? n.township.name : "")}</td><td>${n.score.toFixed(2)}</td><td class="small">${esc(n.indicators.join(", "))}</td>
      <td class="small">${esc(dateTime(n.raisedAt))}</td><td>${Math.max(0, Math.floor((now - new Date(n.raisedAt + (/[zZ]$/.test(n.raisedAt) ? "" : "Z"))) / 86400000))} ${esc(t("days"))}</td>
      <td>${actions(n.status).length ? `<input class="note" placeholder="${esc(t("note"))}" size="12"> ${actions(n.status).map((act) => `<button class="act ${act === "START_VERIFICATION" || act === "ENROL" ? "" : "secondary"}" data-action="${act}">${esc(t(act))}</button>`).join(" ")}` : esc(t(n.status))}</td></tr>`).join("")}</table>
    ${a.pageInfo.hasNextPage ? `<div class="pager"><a href="#/alerts?region=${esc(region)}&level=${level}&status=${status}&after=${encodeURIComponent(a.pageInfo.endCursor)}">${esc(t("next"))}</a></div>` : ""}</div>`;
  document.getElementById("alert-filter").addEventListener("submit", (ev) => {
    ev.preventDefault(); const f = ev.target; go("/alerts", { region: f.region.value.trim(), level: f.level.value, status: f.status.value });
  });
  main.querySelectorAll("tr[data-alert] button[data-action]").forEach((b) => b.addEventListener("click", async () => {
    const row = b.closest("tr");
    const note = row.querySelector("input.note").value.trim();
    if (!note) { toast(t("noteRequired"), true); return; }
    b.disabled = true;
    try {
      const r = await gql(DISPOSE, { input: { alertId: row.dataset.alert, action: b.dataset.action, note } });
      if (r.disposeAlert.errors.length) throw new Error(mutationErrors(r.disposeAlert.errors));
      toast(`${t(b.dataset.action)}: ${t(r.disposeAlert.alert.status)}`);
      await route();
    } catch (e) { b.disabled = false; toast(errorText(e), true); }
  }));
}

const GAPS = `query Gaps($regionCode: String!, $program: String, $first: Int, $after: String) {
  eligibilityGaps(regionCode: $regionCode, program: $program, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { household { id householdNumber region { name } head { name idNumber } } program { key name } reasons monthlyAmount } } }
  programs(provinceCode: $province) { key name } }`;
const APPLY = `mutation ApplyForAid($input: ApplyForAidInput!) { applyForAid(input: $input) { enrollment { id status program { key } } errors { field message code } } }`;
async function gapsScreen(q) {
  const region = q.get("region") || defaultRegion();
  const program = q.get("program") || "";
  const query = GAPS.replace("$first: Int, $after: String)", "$first: Int, $after: String, $province: String!)");
  const data = await gql(query, { regionCode: region, program: program || null, first: 20, after: q.get("after"), province: region.slice(0, 2) });
  const g = data.eligibilityGaps;
  main.innerHTML = `<div data-screen="gaps"><h1>${esc(t("gapsTitle"))}</h1>
    <form class="inline" id="gap-filter"><input name="region" value="${esc(region)}" size="14">
      <select name="program"><option value="">${esc(t("allPrograms"))}</option>${data.programs.map((p) => `<option value="${esc(p.key)}" ${p.key === program ? "selected" : ""}>${esc(p.name)}</option>`).join("")}</select>
      <button class="secondary" type="submit">${esc(t("filter"))}</button> <b data-testid="gaps-total">${g.totalCount}</b></form>
    <table data-testid="gaps"><tr><th>${esc(t("household"))}</th><th>${esc(t("program"))}</th><th>${esc(t("monthlyAmount"))}</th><th>${esc(t("reasons"))}</th><th></th></tr>
    ${g.edges.map(({ node: n }) => `<tr data-household="${esc(n.household.id)}" data-program="${esc(n.program.key)}">
      <td><a href="#/household?id=${esc(n.household.id)}">${esc(n.household.householdNumber)}</a> ${esc(n.household.head ? n.household.head.name : "")} <span class="small" data-testid="id-number">${esc(n.household.head ? n.household.head.idNumber : "")}</span><br><span class="small muted">${esc(n.household.region.name)}</span></td>
      <td>${esc(n.program.name)}</td><td>${money(n.monthlyAmount)}</td><td><ul class="reasons">${n.reasons.map((x) => `<li>${esc(x)}</li>`).join("")}</ul></td>
      <td><button class="act" data-apply>${esc(t("apply"))}</button></td></tr>`).join("")}</table>
    <div class="pager"><a href="#/gaps?region=${esc(region)}&program=${esc(program)}">${esc(t("first"))}</a>
      ${g.pageInfo.hasNextPage ? `<a href="#/gaps?region=${esc(region)}&program=${esc(program)}&after=${encodeURIComponent(g.pageInfo.endCursor)}">${esc(t("next"))}</a>` : ""}</div></div>`;
  document.getElementById("gap-filter").addEventListener("submit", (ev) => {
    ev.preventDefault(); go("/gaps", { region: ev.target.region.value.trim(), program: ev.target.program.value });
  });
  main.querySelectorAll("button[data-apply]").forEach((b) => b.addEventListener("click", async () => {
    const row = b.closest("tr");
    b.disabled = true;
    try {
      const r = await gql(APPLY, { input: { householdId: row.dataset.household, programKey: row.dataset.program, idempotencyKey: key() } });
      if (r.applyForAid.errors.length) throw new Error(mutationErrors(r.applyForAid.errors));
      b.textContent = `${t("applied")} (${t(r.applyForAid.enrollment.status)})`;
      row.dataset.applied = r.applyForAid.enrollment.id;
      toast(t("applied"));
    } catch (e) { b.disabled = false; toast(errorText(e), true); }
  }));
}

const QUEUE = `query Queue($regionCode: String!, $status: [EnrollmentStatus!], $awaitingMe: Boolean!, $first: Int, $after: String) {
  enrollments(regionCode: $regionCode, status: $status, awaitingMe: $awaitingMe, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id status appliedAt monthlyAmount program { key name } household { id householdNumber region { name } head { name } } } } } }`;
const DECIDE = `mutation DecideEnrollment($input: DecideEnrollmentInput!) { decideEnrollment(input: $input) { enrollment { id status monthlyAmount } errors { field message code } } }`;
const NEXT_ACTIONS = { APPLIED: ["START_VERIFICATION", "REJECT", "WITHDRAW"], VERIFYING: ["REVIEW", "REJECT"], REVIEWED: ["APPROVE", "REJECT"], APPROVED: ["ACTIVATE"] };
async function queueScreen(q) {
  const region = q.get("region") || defaultRegion();
  const all = q.get("all") === "1";  // by default only what waits for a step at the caller's own level
  const data = await gql(QUEUE, { regionCode: region, status: ["APPLIED", "VERIFYING", "REVIEWED", "APPROVED"], awaitingMe: !all, first: 50, after: q.get("after") });
  const c = data.enrollments;
  main.innerHTML = `<div data-screen="queue"><h1>${esc(t("queueTitle"))}</h1>
    <form class="inline" id="queue-filter"><input name="region" value="${esc(region)}" size="14"><label><input type="checkbox" name="all" data-testid="queue-all" ${all ? "checked" : ""}> ${esc(t("queueAll"))}</label><button class="secondary" type="submit">${esc(t("filter"))}</button> <b data-testid="queue-total">${c.totalCount}</b></form>
    <table data-testid="queue"><tr><th>${esc(t("applicant"))}</th><th>${esc(t("program"))}</th><th>${esc(t("status"))}</th><th>${esc(t("appliedAt"))}</th><th>${esc(t("decide"))}</th></tr>
    ${c.edges.map(({ node: n }) => `<tr data-enrollment="${esc(n.id)}"><td>${n.household ? `<a href="#/household?id=${esc(n.household.id)}">${esc(n.household.householdNumber)}</a> ${esc(n.household.head ? n.household.head.name : "")} <span class="small muted">${esc(n.household.region.name)}</span>` : ""}</td>
      <td>${esc(n.program.name)}</td><td>${esc(t(n.status))}</td><td class="small">${esc(dateTime(n.appliedAt))}</td>
      <td>${(NEXT_ACTIONS[n.status] || []).map((a) => `<button class="act ${a === "REJECT" || a === "WITHDRAW" ? "secondary" : ""}" data-action="${a}">${esc(t(a))}</button>`).join(" ")}</td></tr>`).join("")}</table>
    ${c.pageInfo.hasNextPage ? `<div class="pager"><a href="#/queue?region=${esc(region)}${all ? "&all=1" : ""}&after=${encodeURIComponent(c.pageInfo.endCursor)}">${esc(t("next"))}</a></div>` : ""}</div>`;
  document.getElementById("queue-filter").addEventListener("submit", (ev) => { ev.preventDefault(); go("/queue", { region: ev.target.region.value.trim(), all: ev.target.all.checked ? "1" : "" }); });
  main.querySelectorAll("tr[data-enrollment] button[data-action]").forEach((b) => b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const r = await gql(DECIDE, { input: { enrollmentId: b.closest("tr").dataset.enrollment, action: b.dataset.action, note: "控制台 console" } });
      if (r.decideEnrollment.errors.length) throw new Error(mutationErrors(r.decideEnrollment.errors));
      toast(`${t(b.dataset.action)}: ${t(r.decideEnrollment.enrollment.status)}`);
      await route();
    } catch (e) { b.disabled = false; toast(errorText(e), true); }
  }));
}

const SETTLE = `mutation SettleMedicalAid($input: MedicalClaimInput!) { settleMedicalAid(input: $input) {
  claim { category compliantCost insurancePaid aidAmount secondaryAidAmount outOfPocket reasons } errors { field message code } } }`;
async function medicalScreen(q) {
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(new Date());
  main.innerHTML = `<div data-screen="medical"><h1>${esc(t("medicalTitle"))}</h1><div class="grid2"><form class="card stack" id="medical-form">
    <label>${esc(t("personId"))}</label><input name="personId" value="${esc(q.get("person") || "")}" required size="40">
    <label>${esc(t("admissionDate"))}</label><input name="admissionDate" type="date" value="${today}" required>
    <label>${esc(t("compliantCost"))}</label><input name="compliantCost" type="number" step="0.01" min="0" required>
    <label>${esc(t("insurancePaid"))}</label><input name="insurancePaid" type="number" step="0.01" min="0" required>
    <label><input name="majorDisease" type="checkbox"> ${esc(t("majorDisease"))}</label>
    <p><button class="primary" type="submit">${esc(t("settle"))}</button></p></form><div id="claim"></div></div></div>`;
  document.getElementById("medical-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target, out = document.getElementById("claim");
    try {
      const r = await gql(SETTLE, { input: { personId: f.personId.value.trim(), admissionDate: f.admissionDate.value,
        compliantCost: Number(f.compliantCost.value), insurancePaid: Number(f.insurancePaid.value), majorDisease: f.majorDisease.checked, idempotencyKey: key() } });
      const p = r.settleMedicalAid;
      if (p.errors.length) { out.innerHTML = `<div class="error-box" data-testid="claim-error">${esc(mutationErrors(p.errors))}</div>`; return; }
      const c = p.claim;
      out.innerHTML = `<div class="card" data-testid="claim"><p>${esc(t("category"))}: <b>${esc(c.category)}</b></p>
        <p>${esc(t("aidAmount"))}: <b>${money(c.aidAmount)}</b> · ${esc(t("secondary"))}: ${money(c.secondaryAidAmount)} · ${esc(t("outOfPocket"))}: ${money(c.outOfPocket)}</p>
        <ul class="reasons">${c.reasons.map((x) => `<li>${esc(x)}</li>`).join("")}</ul></div>`;
    } catch (e) { out.innerHTML = `<div class="error-box">${esc(errorText(e))}</div>`; }
  });
}

const AUDIT = `query Audit($user: String, $since: Date, $action: String, $first: Int, $after: String) {
  auditLog(user: $user, since: $since, action: $action, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id at actor action objectType objectId regionCode remoteAddr detail } } } }`;
async function auditScreen(q) {
  const vars = { user: q.get("user") || null, since: q.get("since") || null, action: q.get("action") || null, first: 50, after: q.get("after") };
  main.innerHTML = `<div data-screen="audit"><h1>${esc(t("auditTitle"))}</h1>
    <form class="inline" id="audit-filter"><input name="user" placeholder="${esc(t("user"))}" value="${esc(vars.user || "")}">
      <input name="action" placeholder="${esc(t("action"))}" value="${esc(vars.action || "")}"><input name="since" type="date" value="${esc(vars.since || "")}">
      <button class="secondary" type="submit">${esc(t("filter"))}</button></form><div id="audit-out"></div></div>`;
  document.getElementById("audit-filter").addEventListener("submit", (ev) => {
    ev.preventDefault(); const f = ev.target; go("/audit", { user: f.user.value.trim(), action: f.action.value.trim(), since: f.since.value });
  });
  const out = document.getElementById("audit-out");
  try {
    const a = (await gql(AUDIT, vars)).auditLog;
    out.innerHTML = `<p><b data-testid="audit-total">${a.totalCount}</b></p><table data-testid="audit"><tr><th>${esc(t("at"))}</th><th>${esc(t("actor"))}</th><th>${esc(t("action"))}</th><th>${esc(t("object"))}</th><th>${esc(t("region"))}</th><th>${esc(t("remote"))}</th><th>${esc(t("detail"))}</th></tr>
      ${a.edges.map(({ node: n }) => `<tr><td class="small">${esc(dateTime(n.at))}</td><td>${esc(n.actor)}</td><td>${esc(n.action)}</td><td>${esc(n.objectType)} ${esc(n.objectId || "")}</td><td>${esc(n.regionCode || "")}</td><td>${esc(n.remoteAddr || "")}</td><td class="small">${esc(n.detail ? JSON.stringify(n.detail) : "")}</td></tr>`).join("")}</table>
      ${a.pageInfo.hasNextPage ? `<div class="pager"><a href="#/audit?${new URLSearchParams({ ...Object.fromEntries(Object.entries(vars).filter(([k, v]) => v && k !== "first" && k !== "after")), after: a.pageInfo.endCursor })}">${esc(t("next"))}</a></div>` : ""}`;
  } catch (e) { out.innerHTML = `<div class="error-box" data-testid="audit-error">${esc(errorText(e))}</div>`; }
}

const REFERRALS = `query Referrals($regionCode: String!, $first: Int, $after: String) {
  referrals(regionCode: $regionCode, first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { id status department reason documents dueDate overdue sentAt answeredAt answer household { id householdNumber } } } } }`;
const ANSWER = `mutation AnswerReferral($input: AnswerReferralInput!) { answerReferral(input: $input) { referral { id status answer answeredAt } errors { field message code } } }`;
const LEAD = `mutation ReportLead($input: ReportLeadInput!) { reportLead(input: $input) { lead { id status channel township { code name } alert { id level } } errors { field message code } } }`;
const CHANNELS = ["VILLAGE_ASSISTANT", "VISIT", "HOTLINE_12345", "HOTLINE_12349", "NEIGHBOUR", "SELF", "OTHER"];
const NEXT_ANSWERS = { SENT: ["ACCEPT", "RETURN"], ACCEPTED: ["COMPLETE", "RETURN"] };
async function referralsScreen(q) {
  const region = q.get("region") || defaultRegion();
  main.innerHTML = `<div data-screen="referrals"><h1>${esc(t("referralsTitle"))}</h1><div id="ref-out"></div>
    <form class="card stack" id="lead-form"><h2>${esc(t("reportLead"))}</h2>
      <label>${esc(t("region"))}</label><input name="regionCode" value="${esc(region)}" required>
      <label>${esc(t("name"))}</label><input name="name"><label>${esc(t("idNumber"))}</label><input name="idNumber" maxlength="18">
      <label>${esc(t("address"))}</label><input name="address" size="40">
      <label>${esc(t("channel"))}</label><select name="channel">${CHANNELS.map((c) => `<option value="${c}">${esc(t("ch_" + c))}</option>`).join("")}</select>
      <label>${esc(t("detail"))}</label><textarea name="description" rows="3" cols="50" required></textarea>
      <p><button class="primary" type="submit">${esc(t("reportLead"))}</button></p></form></div>`;
  document.getElementById("lead-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const input = { regionCode: f.regionCode.value.trim(), channel: f.channel.value, description: f.description.value.trim(), idempotencyKey: key() };
    for (const k of ["name", "idNumber", "address"]) if (f[k].value.trim()) input[k] = f[k].value.trim();
    try {
      const r = await gql(LEAD, { input });
      if (r.reportLead.errors.length) throw new Error(mutationErrors(r.reportLead.errors));
      const lead = r.reportLead.lead;
      toast(`${t("reportLead")}: ${lead.status}${lead.township ? " · " + lead.township.name : ""}${lead.alert ? " · " + t(lead.alert.level) : ""}`);
      f.reset();
    } catch (e) { toast(errorText(e), true); }
  });
  const out = document.getElementById("ref-out");
  try {
    const r = (await gql(REFERRALS, { regionCode: region, first: 50 })).referrals;
    out.innerHTML = `<p><b data-testid="referrals-total">${r.totalCount}</b></p><table data-testid="referrals"><tr><th>${esc(t("household"))}</th><th>${esc(t("department"))}</th><th>${esc(t("status"))}</th><th>${esc(t("dueDate"))}</th><th>${esc(t("reasons"))}</th><th></th></tr>
      ${r.edges.map(({ node: n }) => `<tr data-referral="${esc(n.id)}"><td><a href="#/household?id=${esc(n.household.id)}">${esc(n.household.householdNumber)}</a></td><td>${esc(t("dept_" + n.department))}</td><td>${esc(t("ref_" + n.status))} ${n.overdue ? `<span class="badge level RED">${esc(t("overdue"))}</span>` : ""}</td><td>${esc(n.dueDate || "")}</td><td>${esc(n.reason)}${n.answer ? `<br><span class="small muted">${esc(n.answer)}</span>` : ""}</td>
        <td>${(NEXT_ANSWERS[n.status] || []).length ? `<input class="answer" size="12" placeholder="${esc(t("note"))}"> ${NEXT_ANSWERS[n.status].map((a) => `<button class="act secondary" data-answer="${a}">${esc(t("ans_" + a))}</button>`).join(" ")}` : ""}</td></tr>`).join("")}</table>`;
    out.querySelectorAll("button[data-answer]").forEach((b) => b.addEventListener("click", async () => {
      const row = b.closest("tr");
      const answer = row.querySelector("input.answer").value.trim();
      if (!answer) { toast(t("noteRequired"), true); return; }
      try {
        const res = await gql(ANSWER, { input: { referralId: row.dataset.referral, action: b.dataset.answer, answer } });
        if (res.answerReferral.errors.length) throw new Error(mutationErrors(res.answerReferral.errors));
        toast(`${t("ans_" + b.dataset.answer)}: ${t("ref_" + res.answerReferral.referral.status)}`);
        await route();
      } catch (e) { toast(errorText(e), true); }
    }));
  } catch (e) { out.innerHTML = `<div class="error-box" data-testid="not-available">${esc(errorText(e))}</div>`; }
}

const CHARITY = `query Charity($regionCode: String!, $first: Int, $after: String) {
  charityCandidates(regionCode: $regionCode, first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { household { id householdNumber } monthlyIncome monthlyAid monthlyRigidExpenditure monthlyShortfall
      receiving charityMatches } } } }`;
async function charityScreen(q) {
  const region = q.get("region") || defaultRegion();
  main.innerHTML = `<div data-screen="charity"><h1>${esc(t("charityTitle"))}</h1>
    <form class="inline" id="charity-filter"><input name="region" value="${esc(region)}" size="14" placeholder="${esc(t("region"))}">
    <button type="submit">${esc(t("search"))}</button></form><div id="charity-out"></div></div>`;
  document.getElementById("charity-filter").addEventListener("submit", (ev) => {
    ev.preventDefault(); go("/charity", { region: ev.target.region.value.trim() });
  });
  const out = document.getElementById("charity-out");
  try {
    const c = (await gql(CHARITY, { regionCode: region, first: 50, after: q.get("after") })).charityCandidates;
    out.innerHTML = `<p><b data-testid="charity-total">${c.totalCount}</b></p><table data-testid="charity"><tr><th>${esc(t("household"))}</th>
      <th>${esc(t("monthlyIncome"))}</th><th>${esc(t("monthlyAid"))}</th><th>${esc(t("rigidExpenditure"))}</th><th>${esc(t("shortfall"))}</th>
      <th>${esc(t("receiving"))}</th><th>${esc(t("charityMatches"))}</th></tr>
      ${c.edges.map(({ node: n }) => `<tr data-household="${esc(n.household.id)}"><td><a href="#/household?id=${esc(n.household.id)}">${esc(n.household.householdNumber)}</a></td>
        <td>${money(n.monthlyIncome)}</td><td>${money(n.monthlyAid)}</td><td>${money(n.monthlyRigidExpenditure)}</td><td><b>${money(n.monthlyShortfall)}</b></td>
        <td class="small">${esc(n.receiving.join(", "))}</td><td>${n.charityMatches}</td></tr>`).join("")}</table>
      ${c.pageInfo.hasNextPage ? `<div class="pager"><a href="#/charity?region=${esc(region)}&after=${encodeURIComponent(c.pageInfo.endCursor)}">${esc(t("next"))}</a></div>` : ""}`;
  } catch (e) { out.innerHTML = `<div class="error-box" data-testid="not-available">${esc(errorText(e))}</div>`; }
}

const SIMULATE = `query SimulatePolicy($input: PolicySimulationInput!) { simulatePolicy(input: $input) {
  baseline { households persons monthlyCost oneOffCost } reform { households persons monthlyCost oneOffCost }
  annualCostChange yearCostChange
  byRegion { region { code name level } baseline { households monthlyCost } reform { households monthlyCost } } } }`;
const SAVE_SCENARIO = `mutation SaveSimulationScenario($input: SaveSimulationScenarioInput!) { saveSimulationScenario(input: $input) {
  scenario { id name } errors { field message code } } }`;
const SCENARIOS = `query SimulationScenarios($provinceCode: String, $first: Int) { simulationScenarios(provinceCode: $provinceCode, first: $first) {
  totalCount edges { node { id name region { code name } asOf createdBy changes { key value regionCode }
    summary { annualCostChange yearCostChange newlyEligible { households } } } } } }`;
async function simulateScreen(q) {
  const region = q.get("region") || defaultRegion();
  main.innerHTML = `<div data-screen="simulate"><h1>${esc(t("simulateTitle"))}</h1>
    <form class="inline" id="sim-form"><input name="key" value="dibao.rural_standard" size="28" placeholder="${esc(t("paramKey"))}">
    <input name="value" size="10" placeholder="${esc(t("value"))}" required><button class="primary" type="submit">${esc(t("simulate"))}</button>
    <input name="scenario" size="16" placeholder="${esc(t("scenarioName"))}"><button type="button" id="save-scenario">${esc(t("saveScenario"))}</button></form>
    <div id="sim-out"></div><div class="card"><h2>${esc(t("scenarios"))}</h2><div id="scenarios"></div></div></div>`;
  const form = document.getElementById("sim-form");
  const changes = () => {
    let value = form.value.value.trim();
    try { value = JSON.parse(value); } catch (_) { /* a string */ }
    return [{ key: form.key.value.trim(), value }];
  };
  const listScenarios = async () => {
    const box = document.getElementById("scenarios");
    try {
      const s = (await gql(SCENARIOS, { provinceCode: region.slice(0, 2), first: 20 })).simulationScenarios;
      box.innerHTML = `<table data-testid="scenarios"><tr><th>${esc(t("scenarioName"))}</th><th>${esc(t("region"))}</th><th>${esc(t("paramKey"))}</th>
        <th>${esc(t("annualCostChange"))}</th><th>${esc(t("yearCostChange"))}</th><th>${esc(t("savedBy"))}</th></tr>
        ${s.edges.map(({ node: n }) => `<tr data-scenario="${esc(n.id)}"><td>${esc(n.name)}</td><td>${esc(n.region ? n.region.name : "")}</td>
          <td class="small">${n.changes.map((c) => `${esc(c.key)} = ${esc(JSON.stringify(c.value))}`).join("; ")}</td>
          <td>${money(n.summary.annualCostChange)}</td><td>${n.summary.yearCostChange === null ? "–" : money(n.summary.yearCostChange)}</td>
          <td>${esc(n.createdBy)}</td></tr>`).join("")}</table>`;
    } catch (e) { box.innerHTML = `<div class="error-box" data-testid="not-available">${esc(errorText(e))}</div>`; }
  };
  document.getElementById("save-scenario").addEventListener("click", async () => {
    const name = form.scenario.value.trim();
    if (!name) { toast(t("scenarioName"), true); return; }
    try {
      const r = (await gql(SAVE_SCENARIO, { input: { name, provinceCode: region.slice(0, 2), regionCode: region, changes: changes(), idempotencyKey: key() } })).saveSimulationScenario;
      if (r.errors.length) throw new Error(mutationErrors(r.errors));
      toast(`${t("saved")}: ${r.scenario.name}`);
      await listScenarios();
    } catch (e) { toast(errorText(e), true); }
  });
  await listScenarios();
  document.getElementById("sim-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = document.getElementById("sim-out");
    try {
      const s = (await gql(SIMULATE, { input: { provinceCode: region.slice(0, 2), regionCode: region, changes: changes() } })).simulatePolicy;
      out.innerHTML = `<table data-testid="simulation"><tr><th></th><th>${esc(t("households"))}</th><th>${esc(t("persons"))}</th><th>${esc(t("monthlyCost"))}</th><th>${esc(t("oneOffCost"))}</th></tr>
        <tr><td>${esc(t("baseline"))}</td><td>${s.baseline.households}</td><td>${s.baseline.persons}</td><td>${money(s.baseline.monthlyCost)}</td><td>${money(s.baseline.oneOffCost)}</td></tr>
        <tr><td>${esc(t("reform"))}</td><td>${s.reform.households}</td><td>${s.reform.persons}</td><td>${money(s.reform.monthlyCost)}</td><td>${money(s.reform.oneOffCost)}</td></tr></table>
        <p>${esc(t("annualCostChange"))}: <b data-testid="annual-change">${money(s.annualCostChange)}</b> · ${esc(t("yearCostChange"))}: <b>${money(s.yearCostChange)}</b></p>`;
    } catch (e) { out.innerHTML = `<div class="error-box" data-testid="not-available">${esc(errorText(e))}</div>`; }
  });
}

// 双随机、一公开 (GD-2021 保障措施(四)): a reproducible random sample of a county's receiving cases, with the
// inspectors drawn for each; the seed is shown so that anyone can draw the same sample again (the server audits
// every draw with its seed).
const DRAW = `mutation DrawInspectionSample($countyCode: String!, $size: Int, $seed: String, $inspectorsPerCase: Int) {
  drawInspectionSample(countyCode: $countyCode, size: $size, seed: $seed, inspectorsPerCase: $inspectorsPerCase) {
    sample { seed assignments { inspectors enrollment { id status monthlyAmount program { key name }
      household { id householdNumber region { code name } head { name } } } } }
    errors { field message code } } }`;
async function inspectionScreen(q) {
  const scope = defaultRegion();
  const county = q.get("county") || (scope.length >= 6 ? scope.slice(0, 6) : "");
  main.innerHTML = `<div data-screen="inspection"><h1>${esc(t("inspectionTitle"))}</h1>
    <p class="small muted">${esc(t("inspectionNote"))}</p>
    <form class="inline" id="draw-form">
      <label>${esc(t("county"))} <input name="county" size="8" value="${esc(county)}" required></label>
      <label>${esc(t("sampleSize"))} <input name="size" type="number" min="1" max="1000" size="4" value="${esc(q.get("size") || "10")}"></label>
      <label>${esc(t("inspectorsPerCase"))} <input name="inspectors" type="number" min="0" max="10" size="3" value="${esc(q.get("inspectors") || "2")}"></label>
      <label>${esc(t("seed"))} <input name="seed" size="18" value="${esc(q.get("seed") || "")}" placeholder="${esc(t("seedHint"))}"></label>
      <button class="primary" type="submit">${esc(t("draw"))}</button></form>
    <div id="draw-out"></div></div>`;
  const form = document.getElementById("draw-form");
  const out = document.getElementById("draw-out");
  const draw = async (seed) => {
    const vars = { countyCode: form.county.value.trim(), size: Number(form.size.value) || null,
      seed: seed || null, inspectorsPerCase: Number(form.inspectors.value) || 0 };
    try {
      const r = (await gql(DRAW, vars)).drawInspectionSample;
      if (r.errors.length) { out.innerHTML = `<div class="error-box" data-testid="draw-error">${esc(mutationErrors(r.errors))}</div>`; return; }
      const s = r.sample;
      form.seed.value = s.seed;
      out.innerHTML = `<p>${esc(t("seed"))}: <b data-testid="seed">${esc(s.seed)}</b> · ${esc(t("sampled"))} <b data-testid="sample-count">${s.assignments.length}</b>
        <button type="button" class="secondary" id="redraw">${esc(t("redraw"))}</button></p>
        <table data-testid="sample"><tr><th>#</th><th>${esc(t("household"))}</th><th>${esc(t("region"))}</th><th>${esc(t("program"))}</th><th>${esc(t("status"))}</th><th>${esc(t("monthlyAmount"))}</th><th>${esc(t("inspectors"))}</th></tr>
        ${s.assignments.map((a, i) => { const e = a.enrollment; const h = e.household;
          return `<tr data-enrollment="${esc(e.id)}"><td>${i + 1}</td><td>${h ? `<a href="#/household?id=${esc(h.id)}">${esc(h.householdNumber)}</a> ${esc(h.head ? h.head.name : "")}` : ""}</td>
          <td>${esc(h ? h.region.name : "")}</td><td>${esc(e.program.name)}</td><td>${esc(t(e.status))}</td><td>${money(e.monthlyAmount)}</td>
          <td data-testid="inspectors">${a.inspectors.map(esc).join("、")}</td></tr>`; }).join("")}</table>`;
      document.getElementById("redraw").addEventListener("click", () => draw(s.seed));
      toast(`${t("draw")}: ${s.assignments.length} · ${t("seed")} ${s.seed}`);
    } catch (e) { out.innerHTML = `<div class="error-box" data-testid="draw-error">${esc(errorText(e))}</div>`; }
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); draw(form.seed.value.trim()); });
}

// 追回 (GD-2021 保障措施(四) "依法依规追回骗取的社会救助资金"): recovery orders of the caller's region, an order
// issued against an enrolment's payments (never more than was paid: the server checks), instalments recorded
// until RECOVERED, an order with nothing recovered withdrawn with a reason.
const RECOVERY_ORDERS = `query RecoveryOrders($regionCode: String!, $status: RecoveryStatus, $first: Int, $after: String) {
  recoveryOrders(regionCode: $regionCode, status: $status, first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { id amount recovered status reason issuedBy issuedAt enrollment { id program { name } }
      household { id householdNumber head { name } } } } } }`;
const PAYMENTS = `query Payments($enrollmentId: ID!) { payments(enrollmentId: $enrollmentId) { id period installment amount paidAt } }`;
const ISSUE_RECOVERY = `mutation IssueRecoveryOrder($input: IssueRecoveryOrderInput!) { issueRecoveryOrder(input: $input) {
  order { id amount status } errors { field message code } } }`;
const RECORD_RECOVERY = `mutation RecordRecovery($input: RecordRecoveryInput!) { recordRecovery(input: $input) {
  order { id recovered status } errors { field message code } } }`;
const CANCEL_RECOVERY = `mutation CancelRecoveryOrder($input: CancelRecoveryOrderInput!) { cancelRecoveryOrder(input: $input) {
  order { id status } errors { field message code } } }`;
const RECOVERY_STATUSES = ["ISSUED", "PARTIAL", "RECOVERED", "CANCELLED"];
async function recoveryScreen(q) {
  const region = q.get("region") || defaultRegion();
  const status = q.get("status") || "";
  const enrollment = q.get("enrollment");
  main.innerHTML = `<div data-screen="recovery"><h1>${esc(t("recoveryTitle"))}</h1>
    <div id="issue-box"></div>
    <form class="inline" id="recovery-filter"><input name="region" value="${esc(region)}" size="14" placeholder="${esc(t("region"))}">
      <select name="status"><option value="">*</option>${RECOVERY_STATUSES.map((s) => `<option value="${s}" ${s === status ? "selected" : ""}>${esc(t("rec_" + s))}</option>`).join("")}</select>
      <button class="secondary" type="submit">${esc(t("filter"))}</button></form>
    <div id="recovery-out"></div></div>`;
  document.getElementById("recovery-filter").addEventListener("submit", (ev) => {
    ev.preventDefault(); go("/recovery", { region: ev.target.region.value.trim(), status: ev.target.status.value });
  });
  if (enrollment) {
    const box = document.getElementById("issue-box");
    const payments = (await gql(PAYMENTS, { enrollmentId: enrollment })).payments;
    const paid = payments.reduce((sum, p) => sum + p.amount, 0);
    box.innerHTML = `<form class="card stack" id="issue-form"><h2>${esc(t("issueRecovery"))}</h2>
      <table data-testid="payments"><tr><th>${esc(t("period"))}</th><th>${esc(t("installment"))}</th><th>${esc(t("amount"))}</th><th>${esc(t("paidAt"))}</th></tr>
      ${payments.map((p) => `<tr><td>${esc(p.period)}</td><td>${esc(p.installment === "REGULAR" ? t("regular") : p.installment)}</td><td>${money(p.amount)}</td><td class="small">${esc(dateTime(p.paidAt))}</td></tr>`).join("") || `<tr><td>${esc(t("none"))}</td></tr>`}</table>
      <p>${esc(t("paidTotal"))}: <b data-testid="paid-total">${money(paid)}</b></p>
      <label>${esc(t("amount"))}</label><input name="amount" type="number" step="0.01" min="0.01" required>
      <label>${esc(t("finding"))}</label><textarea name="reason" rows="2" cols="50" required></textarea>
      <p><button class="primary" type="submit">${esc(t("issueRecovery"))}</button></p></form>`;
    document.getElementById("issue-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      try {
        const r = (await gql(ISSUE_RECOVERY, { input: { enrollmentId: enrollment, amount: Number(f.amount.value), reason: f.reason.value.trim() } })).issueRecoveryOrder;
        if (r.errors.length) throw new Error(mutationErrors(r.errors));
        toast(`${t("issueRecovery")}: ${money(r.order.amount)} · ${t("rec_" + r.order.status)}`);
        await route();
      } catch (e) { toast(errorText(e), true); }
    });
  }
  const out = document.getElementById("recovery-out");
  const o = (await gql(RECOVERY_ORDERS, { regionCode: region, status: status || null, first: 50, after: q.get("after") })).recoveryOrders;
  out.innerHTML = `<p><b data-testid="recovery-total">${o.totalCount}</b></p><table data-testid="recovery-orders"><tr><th>${esc(t("household"))}</th><th>${esc(t("program"))}</th>
    <th>${esc(t("amount"))}</th><th>${esc(t("recovered"))}</th><th>${esc(t("status"))}</th><th>${esc(t("finding"))}</th><th>${esc(t("issuedBy"))}</th><th></th></tr>
    ${o.edges.map(({ node: n }) => `<tr data-order="${esc(n.id)}"><td>${n.household ? `<a href="#/household?id=${esc(n.household.id)}">${esc(n.household.householdNumber)}</a> ${esc(n.household.head ? n.household.head.name : "")}` : ""}</td>
      <td>${esc(n.enrollment ? n.enrollment.program.name : "")}</td><td>${money(n.amount)}</td><td>${money(n.recovered)}</td>
      <td data-testid="order-status">${esc(t("rec_" + n.status))}</td><td class="small">${esc(n.reason)}</td><td class="small">${esc(n.issuedBy)} ${esc(dateTime(n.issuedAt))}</td>
      <td>${n.status === "ISSUED" || n.status === "PARTIAL" ? `<input class="amount" type="number" step="0.01" min="0.01" size="8" placeholder="${esc(t("amount"))}"> <button class="act" data-act="record">${esc(t("recordRecovery"))}</button>` : ""}
        ${n.status === "ISSUED" ? `<input class="why" size="12" placeholder="${esc(t("cancelReason"))}"> <button class="act secondary" data-act="cancel">${esc(t("cancelOrder"))}</button>` : ""}</td></tr>`).join("")}</table>
    ${o.pageInfo.hasNextPage ? `<div class="pager"><a href="#/recovery?region=${esc(region)}&status=${status}&after=${encodeURIComponent(o.pageInfo.endCursor)}">${esc(t("next"))}</a></div>` : ""}`;
  out.querySelectorAll("button[data-act]").forEach((b) => b.addEventListener("click", async () => {
    const row = b.closest("tr");
    try {
      let r;
      if (b.dataset.act === "record") {
        const amount = Number(row.querySelector("input.amount").value);
        if (!amount) { toast(t("amount"), true); return; }
        r = (await gql(RECORD_RECOVERY, { input: { orderId: row.dataset.order, amount } })).recordRecovery;
      } else {
        const reason = row.querySelector("input.why").value.trim();
        if (!reason) { toast(t("noteRequired"), true); return; }
        r = (await gql(CANCEL_RECOVERY, { input: { orderId: row.dataset.order, reason } })).cancelRecoveryOrder;
      }
      if (r.errors.length) throw new Error(mutationErrors(r.errors));
      toast(`${t(b.dataset.act === "record" ? "recordRecovery" : "cancelOrder")}: ${t("rec_" + r.order.status)}`);
      await route();
    } catch (e) { toast(errorText(e), true); }
  }));
}

async function accountScreen() {
  main.innerHTML = `<div data-screen="account"><h1>${esc(t("nav_account"))}</h1>
    <div class="card"><p>${esc(me.displayName)} (${esc(me.username)})</p><p>${esc(t("roles"))}: ${me.roles.map(esc).join(", ")}</p>
    <p>${esc(t("scopes"))}: ${me.scopes.map((s) => `${esc(s.name)} ${esc(s.code)}`).join("、")}</p></div>
    <form class="card stack" id="pw-form"><h2>${esc(t("changePassword"))}</h2>
      <label>${esc(t("currentPassword"))}</label><input name="current" type="password" autocomplete="current-password" required>
      <label>${esc(t("newPassword"))}</label><input name="next" type="password" autocomplete="new-password" required minlength="10">
      <p><button class="primary" type="submit">${esc(t("changePassword"))}</button></p></form></div>`;
  document.getElementById("pw-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await changePassword(ev.target.current.value, ev.target.next.value); toast(t("saved")); ev.target.reset(); }
    catch (e) { toast(e.message, true); }
  });
}

// --- router ------------------------------------------------------------------------------------------------
const ROUTES = { "/dashboard": dashboard, "/search": searchScreen, "/household": householdScreen, "/alerts": alertsScreen,
  "/gaps": gapsScreen, "/queue": queueScreen, "/medical": medicalScreen, "/audit": auditScreen, "/referrals": referralsScreen,
  "/simulate": simulateScreen, "/account": accountScreen, "/charity": charityScreen, "/inspection": inspectionScreen,
  "/recovery": recoveryScreen };

// One screen renders at a time, in the order asked: a hash change while a screen is still loading (or a list
// reloading after a mutation) waits for it, and a request overtaken by a newer one is dropped, so a slow
// earlier answer can never paint over the screen the address now names. data-ready names the screen only
// once the newest request has rendered.
let routeSeq = 0;
let routing = Promise.resolve();
function route() {
  const seq = ++routeSeq;
  main.dataset.ready = "";
  routing = routing.then(() => (seq === routeSeq ? render(seq) : undefined)).catch((e) => console.error(e));
  return routing;
}

async function render(seq) {
  const { path, q } = params();
  const done = (p) => { if (seq === routeSeq) main.dataset.ready = p; };
  try {
    if (!me && path !== "/login") me = (await gql("query Me { me { username displayName roles scopes { code name level } } }")).me;
  } catch (e) {
    me = null;
    chrome();
    if (path !== "/login") history.replaceState(null, "", "#/login?next=" + encodeURIComponent(location.hash.slice(1)));
    await loginScreen(e.status === 401 && document.cookie.includes("aidgraph_csrf") ? t("sessionEnded") : "");
    done("/login");
    return;
  }
  if (path === "/login") { chrome(); await loginScreen(); done("/login"); return; }
  const screen = ROUTES[path] || dashboard;
  chrome();
  main.innerHTML = `<p class="muted">${esc(t("loading"))}</p>`;
  try { await screen(q); }
  catch (e) {
    if (e instanceof ApiError && e.status === 401) { me = null; chrome(); await loginScreen(t("sessionEnded")); done("/login"); return; }
    main.innerHTML = `<div class="error-box" data-testid="screen-error">${esc(errorText(e))}</div>`;
  }
  done(path);
}

window.addEventListener("hashchange", route);
route();
