/*
 * app.js - the UI of `changetrail serve` (docs/web.md): plain JavaScript, no
 * library. Every value from the API reaches the page as a text node
 * (textContent / createTextNode), never as HTML; control characters, bidi
 * controls and line separators are shown as \u escapes. Pages are routes of
 * the URL fragment: #/ (search), #/doc, #/version, #/context, #/actor,
 * #/records, #/verify.
 */
"use strict";

const API = "/api/v1/";

/* ---- building the page from text, never from HTML ---- */

/* A string with its invisible or misleading characters made visible (JSON text keeps its line breaks). */
function vis(s, keepNewlines) {
  return String(s).replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g,
    (c) => (keepNewlines && c === "\n") ? c : "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/* JSON text as a text node: its line breaks are layout (a JSON string cannot hold a raw one). */
function jsonNode(text) {
  return document.createTextNode(vis(text, true));
}

/* el("tag", {class, href, ...}, child...) - children: nodes or text (shown as text). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(vis(c)));
  }
  return e;
}

/* A link to a route: href is built from encoded arguments only. */
function link(route, args, ...children) {
  return el("a", { href: "#/" + route + "?" + new URLSearchParams(args).toString() }, ...children);
}

/* A JSON value as text (JSON escapes control characters itself). */
function json(v) {
  return v === undefined ? "" : JSON.stringify(v, null, 2);
}

/* A path [k, 0, "a.b"] as readable text: k[0]["a.b"]. */
function pathText(p) {
  if (!Array.isArray(p) || p.length === 0) return "(document)";
  let out = "";
  p.forEach((c, i) => {
    if (typeof c === "number") out += "[" + c + "]";
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(c)) out += (i ? "." : "") + c;
    else out += "[" + JSON.stringify(c) + "]";
  });
  return out;
}

function setMain(...nodes) {
  const m = document.getElementById("main");
  m.replaceChildren(...nodes);
}

function errorBox(msg) {
  return el("div", { class: "error", id: "error" }, msg);
}

/* ---- the API ---- */

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(route, args) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(args || {})) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const headers = {};
  const token = sessionStorage.getItem("changetrail.token");
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(API + route + "?" + q.toString(), { headers, credentials: "same-origin" });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) {
    const e = body && body.error ? body.error : { code: "http_" + r.status, message: r.statusText };
    throw new ApiError(r.status, e.code, e.message);
  }
  return body;
}

/* The page for a failed call; a bearer server's 401 asks for the token. */
function showError(e) {
  if (e instanceof ApiError && e.status === 401) {
    const input = el("input", { type: "password", id: "token", autocomplete: "off", placeholder: "token" });
    const form = el("form", { class: "picker", id: "token-form" }, el("label", {}, "Bearer token "), input,
      el("button", { type: "submit" }, "Use"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem("changetrail.token", input.value);
      route();
    });
    setMain(el("h1", { id: "title" }, "Authentication required"), form);
    return;
  }
  setMain(el("h1", { id: "title" }, "Error"), errorBox(e.message || String(e)));
}

/* ---- pieces ---- */

function fieldsTable(fields, cls) {
  if (!fields || fields.length === 0) return el("p", { class: "muted" }, "no field changed");
  const rows = fields.map((f) => el("tr", { class: f.op },
    el("td", { class: "op" }, f.op === "add" ? "+ added" : f.op === "remove" ? "− removed" : "~ changed"),
    el("td", { class: "path v" }, pathText(f.path)),
    el("td", { class: "old v" }, "old" in f ? jsonNode(f.old_text !== undefined ? f.old_text : json(f.old)) : ""),
    el("td", { class: "new v" }, "new" in f ? jsonNode(f.new_text !== undefined ? f.new_text : json(f.new)) : "")));
  return el("table", { class: "fields " + (cls || "") },
    el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", {}, "field"), el("th", {}, "old value"),
      el("th", {}, "new value"))),
    el("tbody", {}, rows));
}

/* A record: header (version, op, time, actor, context, document) and its fields. */
function recordBox(r, withDoc) {
  const head = el("div", { class: "rec-head" },
    el("span", { class: "ver" }, "v" + r.version),
    el("span", { class: "opname" }, r.op),
    r.label ? el("span", { class: "badge" }, r.label) : null,
    el("span", { class: "ts muted" }, r.ts),
    r.actor ? el("span", {}, "by ", link("actor", { name: r.actor }, r.actor)) : el("span", { class: "muted" }, "no actor"),
    r.context_id ? el("span", {}, "context ", link("context", { id: r.context_id }, r.context_id)) : null,
    withDoc ? el("span", {}, link("doc", { c: r.collection, id: r.document_id }, r.collection + "/" + r.document_id)) : null,
    r.op !== "checkpoint" ? link("version", { c: r.collection, id: r.document_id, v: r.version }, "document at v" + r.version) : null);
  const body = r.op === "checkpoint" ? el("p", { class: "muted" }, "checkpoint: older history was pruned")
    : r.relation ? el("p", {}, "relation " + r.relation.name + " " + (r.op === "relation_add" ? "+ " : "− ") +
      r.relation.collection + "/" + r.relation.document_id)
    : fieldsTable(r.fields);
  return el("div", { class: "record", dataset: { version: String(r.version) } }, head, body);
}

function pager(prevHref, nextHref) {
  return el("div", { class: "pager" },
    prevHref ? el("a", { href: prevHref, class: "newer" }, "← newer") : null,
    nextHref ? el("a", { href: nextHref, class: "older" }, "older →") : null);
}

function meta(pairs) {
  const dl = el("dl", { class: "meta" });
  for (const [k, v] of pairs) { dl.appendChild(el("dt", {}, k)); dl.appendChild(el("dd", {}, v)); }
  return dl;
}

/* ---- pages ---- */

async function pageSearch(p) {
  const fields = [["collection", "collection"], ["prefix", "document id starts with"], ["actor", "actor"],
    ["context", "context id"], ["since", "since (RFC 3339 or 2h, 3d)"], ["until", "until"]];
  const form = el("form", { class: "search", id: "search-form" },
    fields.map(([n, label]) => el("label", {}, label, el("input", { name: n, id: "q-" + n, value: p.get(n) || "" }))),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "search-go" }, "Search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = {};
    for (const [n] of fields) { const v = form.elements[n].value.trim(); if (v) q[n] = v; }
    location.hash = "#/?" + new URLSearchParams(q).toString();
  });
  const out = el("div", { id: "results" });
  setMain(el("h1", { id: "title" }, "Search the history"), form, out);
  const q = Object.fromEntries(p.entries());
  if (q.context) { location.hash = "#/context?" + new URLSearchParams({ id: q.context }).toString(); return; }
  if (q.actor || q.since || q.until) {
    const r = await api("records", { actor: q.actor, since: q.since, until: q.until, cursor: q.cursor });
    out.append(el("h2", {}, r.records.length ? "Changes" : "No change matches"), r.records.map((x) => recordBox(x, true)),
      pager(null, r.next_cursor ? "#/?" + new URLSearchParams(Object.assign({}, q, { cursor: r.next_cursor })) : null));
    return;
  }
  if (!q.collection && !q.after && !q.all) {
    out.append(el("p", { class: "muted" }, "Give a collection (and an id prefix), an actor, a context id or a time range. ",
      link("", { all: "1" }, "List every document")));
    return;
  }
  const r = await api("documents", { collection: q.collection, prefix: q.prefix, after: q.after });
  if (r.documents.length === 0) { out.append(el("p", { class: "muted", id: "no-results" }, "No document matches")); return; }
  const rows = r.documents.map((d) => el("tr", {},
    el("td", {}, d.collection),
    el("td", {}, link("doc", { c: d.collection, id: d.document_id }, d.document_id)),
    el("td", {}, String(d.version)),
    el("td", {}, d.deleted ? el("span", { class: "badge deleted" }, "deleted") : "live"),
    el("td", { class: "muted" }, d.ts || "")));
  rows.forEach((tr) => tr.querySelector("a").classList.add("doc-link"));
  out.append(el("table", { id: "documents" },
    el("thead", {}, el("tr", {}, ["collection", "document", "version", "", "last change"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows)),
  pager(null, r.next_after ? "#/?" + new URLSearchParams(Object.assign({}, q, { after: r.next_after })) : null));
}

async function pageDoc(p) {
  const c = p.get("c"), id = p.get("id");
  const r = await api("timeline", { collection: c, id: id, before: p.get("before") });
  const verify = el("div", { id: "verify-result" });
  const vbtn = el("button", { class: "secondary", id: "verify-go" }, "Verify the hash chain");
  vbtn.addEventListener("click", async () => {
    verify.replaceChildren(el("span", { class: "muted" }, "verifying…"));
    try { verify.replaceChildren(verifyView(await api("verify", { collection: c, id: id }))); } catch (e) { verify.replaceChildren(errorBox(e.message)); }
  });
  setMain(
    el("h1", { id: "title" }, c + "/" + id),
    el("div", { class: "picker" },
      el("span", {}, "version " + r.current_version), r.deleted ? el("span", { class: "badge deleted", id: "deleted" }, "deleted") : null,
      link("version", { c: c, id: id }, "current document"), vbtn, verify),
    el("div", { id: "timeline" }, r.records.map((x) => recordBox(x, false))),
    pager(p.get("before") ? "#/doc?" + new URLSearchParams({ c: c, id: id }) : null,
      r.next_before ? "#/doc?" + new URLSearchParams({ c: c, id: id, before: r.next_before }) : null));
}

function verifyView(v) {
  const probs = v.problems || [];
  return el("span", {}, probs.length === 0 ? el("span", { class: "ok", id: "verify-status" }, "chain verified: " + v.records + " record(s)")
    : el("span", { class: "bad", id: "verify-status" }, probs.length + " problem(s)"),
  probs.length ? el("ul", {}, probs.map((x) => el("li", {}, "v" + x.version + ": " + x.problem + ": " + (x.detail || "")))) : null);
}

async function pageVersion(p) {
  const c = p.get("c"), id = p.get("id"), v = p.get("v"), at = p.get("at");
  const r = await api("version", { collection: c, id: id, version: v, at: at });
  const st = r.state, cur = r.current;
  const num = el("input", { type: "number", id: "version-picker", min: "1", max: String(cur.version), value: String(st.version) });
  const when = el("input", { id: "at-picker", placeholder: "2024-05-01T10:00:00Z", value: at || "" });
  const go = el("form", { class: "picker", id: "picker-form" },
    el("label", {}, "version "), num, el("span", { class: "muted" }, "of " + cur.version),
    el("label", {}, " or at "), when, el("button", { type: "submit" }, "Show"),
    st.version > 1 ? link("version", { c: c, id: id, v: st.version - 1 }, "← v" + (st.version - 1)) : null,
    st.version < cur.version ? link("version", { c: c, id: id, v: st.version + 1 }, "v" + (st.version + 1) + " →") : null);
  go.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const a = { c: c, id: id };
    if (when.value.trim()) a.at = when.value.trim(); else a.v = num.value;
    location.hash = "#/version?" + new URLSearchParams(a).toString();
  });
  setMain(
    el("h1", { id: "title" }, c + "/" + id + " at version " + st.version),
    el("p", {}, link("doc", { c: c, id: id }, "timeline"), " · ", st.ts,
      st.deleted ? el("span", { class: "badge deleted" }, " deleted: the document as it was before the delete") : null),
    go,
    el("div", { class: "cols" },
      el("div", {}, el("h2", {}, "Document at v" + st.version), el("pre", { class: "doc", id: "version-doc" }, jsonNode(st.doc_text !== undefined ? st.doc_text : json(st.doc)))),
      el("div", {}, el("h2", {}, "From v" + st.version + " to the current state (v" + cur.version + (cur.deleted ? ", deleted" : "") + ")"),
        el("div", { id: "diff-current" }, fieldsTable(r.diff_fields)))));
}

async function pageContext(p) {
  const id = p.get("id"), offset = p.get("offset") || "0";
  const r = await api("context", { id: id, offset: offset });
  setMain(
    el("h1", { id: "title" }, "Context " + id),
    meta([["status", el("span", { class: "badge " + (r.complete ? "complete" : ""), id: "context-status" }, r.complete ? "complete" : "open (partial)")],
      ["actor", r.actor ? link("actor", { name: r.actor }, r.actor) : "none"],
      ["from", r.first_ts || ""], ["to", r.last_ts || ""],
      ["parent", r.parent_id ? link("context", { id: r.parent_id }, r.parent_id) : "none"],
      ["collections", (r.collections || []).join(", ")],
      ["records", String(r.total_records)],
      ["metadata", el("pre", { class: "doc", id: "context-meta" }, jsonNode(json(r.metadata)))]]),
    el("h2", {}, "Changes, oldest first"),
    el("div", { id: "context-records" }, r.records.map((x) => recordBox(x, true))),
    pager(Number(offset) > 0 ? "#/context?" + new URLSearchParams({ id: id, offset: Math.max(0, Number(offset) - 50) }) : null,
      r.next_offset !== null ? "#/context?" + new URLSearchParams({ id: id, offset: r.next_offset }) : null));
}

async function pageActor(p) {
  const name = p.get("name"), since = p.get("since") || "", until = p.get("until") || "";
  const r = await api("records", { actor: name, since: since, until: until, cursor: p.get("cursor") });
  const s = el("input", { name: "since", id: "actor-since", value: since, placeholder: "since (RFC 3339 or 7d)" });
  const u = el("input", { name: "until", id: "actor-until", value: until, placeholder: "until" });
  const form = el("form", { class: "picker" }, s, u, el("button", { type: "submit" }, "Range"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = "#/actor?" + new URLSearchParams({ name: name, since: s.value.trim(), until: u.value.trim() });
  });
  setMain(el("h1", { id: "title" }, "Actor " + name), form,
    el("div", { id: "actor-records" }, r.records.length ? r.records.map((x) => recordBox(x, true)) : el("p", { class: "muted" }, "no change in this range")),
    pager(null, r.next_cursor ? "#/actor?" + new URLSearchParams({ name: name, since: since, until: until, cursor: r.next_cursor }) : null));
}

async function pageVerify(p) {
  const c = p.get("c"), id = p.get("id");
  const v = await api("verify", { collection: c, id: id });
  setMain(el("h1", { id: "title" }, "Verify " + c + "/" + id), el("div", { id: "verify-result" }, verifyView(v)),
    el("p", {}, link("doc", { c: c, id: id }, "timeline")));
}

const PAGES = { "": pageSearch, doc: pageDoc, version: pageVersion, context: pageContext, actor: pageActor, verify: pageVerify };

async function route() {
  const h = location.hash.replace(/^#\/?/, "");
  const qi = h.indexOf("?");
  const name = qi < 0 ? h : h.slice(0, qi);
  const params = new URLSearchParams(qi < 0 ? "" : h.slice(qi + 1));
  const page = PAGES[name];
  document.body.dataset.page = name || "search";
  document.body.dataset.ready = "0";
  try {
    if (!page) throw new Error("no such page");
    await page(params);
  } catch (e) {
    showError(e);
  }
  window.__ctReadyAt = performance.now();
  document.body.dataset.ready = "1";
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", route);
