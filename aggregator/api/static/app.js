// Operations dashboard: polls GET api/v1/dashboard and draws it (SVG, no libraries).
// Every request carries the API key from sessionStorage as a bearer token.
"use strict";

(function () {
  const KEY = "aggregator.apiKey";
  const WINDOW = "aggregator.historyMinutes";
  const SVG = "http://www.w3.org/2000/svg";
  const SNAPSHOT = "api/v1/dashboard";
  let timer = null;
  let generation = 0; // bumps on sign-in/out so a late answer of an old session is dropped

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ small helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const t = (iso) => new Date(iso).getTime();
  const hhmm = (ms) =>
    new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  const hhmmss = (ms) =>
    new Date(ms).toLocaleTimeString([], {
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
  const kw = (x) => (x === null || x === undefined ? "–" : `${x.toFixed(1)}\u00a0kW`);
  const pct = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)}\u00a0%`);

  function span(seconds) {
    const s = Math.abs(seconds);
    if (s < 90) return `${Math.round(s)} s`;
    const minutes = Math.round(s / 60);
    if (minutes < 90) return `${minutes} min`;
    const h = Math.floor(minutes / 60);
    const m = minutes - h * 60;
    return m ? `${h} h ${m} min` : `${h} h`;
  }

  function badge(text, kind) {
    return el("span", { class: `badge ${kind}` }, text);
  }

  function kv(k, v) {
    return el("span", { class: "kv" }, el("span", { class: "k" }, k), v);
  }

  // "Nice" axis ticks between lo and hi, about n of them.
  function ticks(lo, hi, n) {
    const raw = (hi - lo) / Math.max(1, n);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(6));
    return out;
  }

  // ------------------------------------------------------------------ sign in / out

  function showLogin(message) {
    generation += 1;
    clearTimeout(timer);
    timer = null;
    $("board").hidden = true;
    $("whoami").hidden = true;
    $("login").hidden = false;
    const err = $("login-error");
    err.textContent = message || "";
    err.hidden = !message;
    $("token").focus();
  }

  function signIn(token) {
    sessionStorage.setItem(KEY, token);
    generation += 1;
    poll(generation, true);
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    $("token").value = "";
    showLogin(message);
  }

  async function poll(gen, first) {
    const token = sessionStorage.getItem(KEY);
    if (!token || gen !== generation) return;
    let delay = 3000;
    try {
      const minutes = sessionStorage.getItem(WINDOW) || "120";
      // The plan ahead: twice the history shown, between 1 and 24 hours.
      const ahead = Math.min(24, Math.max(1, (2 * Number(minutes)) / 60));
      const query = `history_minutes=${encodeURIComponent(minutes)}&ahead_hours=${ahead}`;
      const r = await fetch(`${SNAPSHOT}?${query}`, {
        headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
        cache: "no-store",
      });
      if (gen !== generation) return;
      if (r.status === 401) {
        let why = "unknown or revoked token";
        try { why = (await r.json()).detail || why; } catch (_) { /* keep the default */ }
        signOut(`This API key was not accepted (${why}). Paste a valid key to sign in.`);
        return;
      }
      if (!r.ok) throw new Error(`the service answered ${r.status} ${r.statusText}`);
      const snap = await r.json();
      if (gen !== generation) return;
      delay = Math.max(1, snap.poll_seconds || 3) * 1000;
      $("login").hidden = true;
      $("board").hidden = false;
      $("whoami").hidden = false;
      $("poll-error").hidden = true;
      render(snap);
    } catch (e) {
      if (gen !== generation) return;
      if (first) {
        signOut(`Cannot reach the aggregator: ${e.message}`);
        return;
      }
      const err = $("poll-error");
      err.textContent = `Update failed (${e.message}); showing the last snapshot, retrying.`;
      err.hidden = false;
    }
    if (gen === generation) timer = setTimeout(() => poll(gen, false), delay);
  }

  // ------------------------------------------------------------------ rendering

  function render(snap) {
    const now = t(snap.now);
    $("account").textContent = `${snap.account.account_id} (${snap.account.role.replace("_", " ")})`;
    const updated = $("updated");
    updated.textContent = `updated ${hhmmss(now)}`;
    updated.dataset.at = snap.now;

    renderOverview(snap);
    const sections = new Set(snap.sections);
    $("sites-panel").hidden = !sections.has("sites");
    $("vehicles-panel").hidden = !sections.has("vehicles");
    $("events-panel").hidden = !sections.has("events");
    if (sections.has("sites")) renderSites(snap, now);
    if (sections.has("vehicles")) renderVehicles(snap, now);
    if (sections.has("events")) renderEvents(snap, now);
  }

  function renderOverview(snap) {
    const info = $("plan-info");
    const items = [];
    if (snap.sections.includes("plan")) {
      if (snap.plan) {
        const p = snap.plan;
        items.push(kv("plan", `${hhmm(t(p.created_at))} · ${p.solver_path} (${p.solver_status})`));
        items.push(kv("sessions", String(p.sessions)));
        items.push(
          kv("shortfall", p.total_shortfall_kwh > 0.05
            ? badge(`${p.total_shortfall_kwh.toFixed(1)} kWh`, "bad")
            : badge("none", "ok")),
        );
      } else {
        items.push(kv("plan", badge("none yet", "warn")));
      }
    }
    for (const [k, v] of Object.entries(snap.counters || {})) {
      items.push(kv(k.replace(/_/g, " "), String(v)));
    }
    if (!snap.sections.includes("sites") && !snap.sections.includes("plan")) {
      items.push(kv("vehicles plugged in", String(snap.vehicles.length)));
    }
    info.replaceChildren(...items);
    const off = $("offline");
    if (!snap.sections.includes("sites")) {
      off.replaceChildren();
      return;
    }
    off.replaceChildren(
      kv("sites offline",
        snap.sites_offline.length
          ? el("span", {}, ...snap.sites_offline.map((s) => badge(s, "bad")))
          : badge("none", "ok")),
    );
  }

  function renderSites(snap, now) {
    const box = $("sites");
    if (!snap.sites.length) {
      box.replaceChildren(el("p", { class: "empty" }, "No sites configured."));
      return;
    }
    const lifetime = snap.setpoint_lifetime_s;
    box.replaceChildren(
      ...snap.sites.map((site) => {
        const latest = [...site.history_kw].reverse().find((x) => x !== null);
        const head = el("div", { class: "site-head" },
          el("h3", {}, site.site_id),
          site.online ? badge("online", "ok") : badge("offline", "bad"),
          kv("now", latest === undefined ? "no recent telemetry" : kw(latest)),
          kv("import limit", kw(site.import_limit_kw)),
          kv("last setpoint", ageBadge(site.setpoint_age_s, lifetime)),
          kv("last telemetry", site.last_telemetry_at
            ? `${span((now - t(site.last_telemetry_at)) / 1000)} ago` : "never"));
        return el("div", { class: "site", "data-site": site.site_id },
          head, siteChart(site, snap, now), chargerTable(site, lifetime));
      }),
    );
  }

  function ageBadge(age, lifetime) {
    if (age === null || age === undefined) return badge("none in the last hour", "warn");
    const kind = lifetime && age > lifetime ? "bad" : "ok";
    return badge(`${span(age)} ago`, kind);
  }

  function chargerTable(site, lifetime) {
    const rows = site.chargers.map((c) =>
      el("tr", { "data-charger": c.charger_id },
        el("td", {}, c.charger_id),
        el("td", { class: "num" }, kw(c.power_kw)),
        el("td", {}, c.plugged === null ? "–" : c.plugged ? "plugged" : "free"),
        el("td", { class: "num" }, kw(c.setpoint_kw)),
        el("td", {}, ageBadge(c.setpoint_age_s, lifetime)),
        el("td", {}, c.setpoint_expired === null ? "–"
          : c.setpoint_expired ? badge("expired: safe power", "bad") : badge("valid", "ok"))));
    return el("table", { class: "chargers" },
      el("thead", {}, el("tr", {},
        el("th", {}, "charger"), el("th", { class: "num" }, "power"), el("th", {}, "vehicle"),
        el("th", { class: "num" }, "setpoint"), el("th", {}, "setpoint age"),
        el("th", {}, "setpoint state"))),
      el("tbody", {}, ...rows));
  }

  // Site power (measured, then planned) against the import limit, with event windows.
  function siteChart(site, snap, now) {
    const W = 1000, H = 270, L = 52, R = 14, T = 24, B = 26;
    const x0 = now - snap.history_minutes * 60000;
    const planEnd = site.plan_end ? t(site.plan_end) : now;
    const x1 = Math.max(now + 30 * 60000, planEnd);
    const values = [...site.history_kw.filter((v) => v !== null), ...site.plan_kw, 0];
    const events = snap.events.filter((e) =>
      !e.site_ids.length || e.site_ids.includes(site.site_id));
    const caps = events.flatMap((e) => e.limits.filter((l) => l.cap_kw !== null).map((l) => l.cap_kw));
    let hi = Math.max(site.import_limit_kw, ...values, ...caps);
    let lo = Math.min(0, ...values);
    if (lo < 0 && site.export_limit_kw > 0) lo = Math.min(lo, -site.export_limit_kw);
    hi = hi + (hi - lo) * 0.08 || 1;
    const X = (ms) => L + ((ms - x0) / (x1 - x0)) * (W - L - R);
    const Y = (v) => T + ((hi - v) / (hi - lo)) * (H - T - B);

    const points = site.history_kw.filter((v) => v !== null).length;
    const root = svg("svg", {
      class: "site-chart",
      viewBox: `0 0 ${W} ${H}`,
      role: "img",
      "aria-label": `site ${site.site_id}: power and plan`,
      "data-points": points,
      "data-plan-slots": site.plan_kw.length,
      "data-last": site.history_t.length ? site.history_t[site.history_t.length - 1] : "",
    });

    // event windows (behind everything) and their caps
    for (const e of events) {
      const a = Math.max(x0, t(e.start)), b = Math.min(x1, t(e.end));
      if (b <= a) continue;
      root.append(svg("rect", {
        class: "event", x: X(a), y: T, width: X(b) - X(a), height: H - T - B, "data-event": e.event_id,
      }));
      root.append(svg("text", { x: X(a) + 3, y: T + 11 }, `${e.event_id}${e.opt ? ` (${e.opt})` : ""}`));
      for (const l of e.limits) {
        const la = Math.max(x0, t(l.start)), lb = Math.min(x1, t(l.end));
        if (lb <= la || l.cap_kw === null) continue;
        root.append(svg("line", { class: "cap", x1: X(la), x2: X(lb), y1: Y(l.cap_kw), y2: Y(l.cap_kw) }));
        root.append(svg("text", { x: X(la) + 3, y: Y(l.cap_kw) - 4 }, `cap ${l.cap_kw} kW`));
      }
    }
    // y axis
    for (const v of ticks(lo, hi, 5)) {
      root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: Y(v), y2: Y(v) }));
      root.append(svg("text", { x: L - 6, y: Y(v) + 4, "text-anchor": "end" }, `${v}`));
    }
    root.append(svg("text", { x: 4, y: T - 8 }, "kW"));
    // x axis: every hour, or every 30 / 15 min on short spans
    const spanH = (x1 - x0) / 3600000;
    const every = (spanH > 8 ? 120 : spanH > 3 ? 60 : spanH > 1.5 ? 30 : 15) * 60000;
    for (let m = Math.ceil(x0 / every) * every; m <= x1; m += every) {
      root.append(svg("line", { class: "axis", x1: X(m), x2: X(m), y1: H - B, y2: H - B + 4 }));
      root.append(svg("text", { x: X(m), y: H - 6, "text-anchor": "middle" }, hhmm(m)));
    }
    // limits
    root.append(svg("line", {
      class: "limit", x1: L, x2: W - R, y1: Y(site.import_limit_kw), y2: Y(site.import_limit_kw),
    }));
    if (lo < 0 && site.export_limit_kw > 0) {
      root.append(svg("line", {
        class: "limit", x1: L, x2: W - R, y1: Y(-site.export_limit_kw), y2: Y(-site.export_limit_kw),
      }));
    }
    // plan: a step line over its slots
    if (site.plan_kw.length) {
      const step = site.plan_t.length > 1 ? t(site.plan_t[1]) - t(site.plan_t[0]) : (planEnd - t(site.plan_t[0]));
      let d = "";
      site.plan_t.forEach((s, i) => {
        const a = Math.max(x0, t(s)), b = Math.min(x1, t(s) + step);
        if (b <= a) return;
        const y = Y(site.plan_kw[i]);
        d += `${d ? "L" : "M"}${X(a).toFixed(1)},${y.toFixed(1)}L${X(b).toFixed(1)},${y.toFixed(1)}`;
      });
      root.append(svg("path", { class: "plan", d }));
    }
    // measured: a line with gaps where no charger reported
    let d = "", pen = false;
    site.history_t.forEach((s, i) => {
      const v = site.history_kw[i];
      if (v === null) { pen = false; return; }
      d += `${pen ? "L" : "M"}${X(t(s)).toFixed(1)},${Y(v).toFixed(1)}`;
      pen = true;
    });
    root.append(svg("path", { class: "measured", d }));
    // now
    root.append(svg("line", { class: "now", x1: X(now), x2: X(now), y1: T, y2: H - B }));
    root.append(svg("text", { x: X(now) + 3, y: H - B - 4 }, "now"));
    // legend
    const legend = [["legend-measured", "site power (telemetry)"], ["legend-plan", "plan"],
      ["legend-limit", `import limit ${site.import_limit_kw} kW`]];
    let lx = L;
    for (const [cls, text] of legend) {
      root.append(svg("rect", { class: cls, x: lx, y: 6, width: 12, height: 4 }));
      root.append(svg("text", { x: lx + 16, y: 12 }, text));
      lx += 40 + text.length * 6;
    }
    if (!points) {
      root.append(svg("text", { x: (L + X(now)) / 2, y: (T + H - B) / 2, "text-anchor": "middle" },
        "no telemetry in this window"));
    }
    return root;
  }

  function renderVehicles(snap, now) {
    const box = $("vehicles");
    if (!snap.vehicles.length) {
      box.replaceChildren(el("p", { class: "empty" }, "No vehicle of yours is plugged in."));
      return;
    }
    const kinds = { "on track": "ok", shortfall: "bad", "not planned": "warn", overdue: "warn" };
    const rows = snap.vehicles.map((v) => {
      const dep = t(v.departure);
      const left = (dep - now) / 1000;
      const status = el("td", {}, badge(v.status, kinds[v.status] || "neutral"));
      if (v.status === "shortfall" && v.shortfall_kwh !== null) {
        status.append(el("div", { class: "small" },
          `${v.shortfall_kwh.toFixed(1)} kWh short${v.shortfall_reason ? `: ${v.shortfall_reason}` : ""}`));
      }
      return el("tr", { "data-vehicle": v.vehicle_id, "data-status": v.status },
        el("td", {}, el("strong", {}, v.vehicle_id), v.fleet_id ? el("div", { class: "small" }, v.fleet_id) : null),
        el("td", {}, `${v.site_id} / ${v.charger_id}`),
        el("td", {}, socBar(v), el("div", { class: "small" },
          `${pct(v.soc)} now → target ${pct(v.target_soc)}` +
          (v.expected_soc_at_departure !== null ? ` · plan ${pct(v.expected_soc_at_departure)}` : ""))),
        el("td", {}, socChart(v, now)),
        el("td", {}, hhmm(dep), el("div", { class: "small" },
          left >= 0 ? `in ${span(left)}` : `${span(left)} overdue`)),
        el("td", { class: "num" }, kw(v.power_kw)),
        status);
    });
    box.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {},
        el("th", {}, "vehicle"), el("th", {}, "site / charger"), el("th", {}, "state of charge"),
        el("th", {}, "planned SoC until departure"), el("th", {}, "departure"),
        el("th", { class: "num" }, "power"), el("th", {}, "status"))),
      el("tbody", {}, ...rows)));
  }

  // SoC now (bar), min SoC, target (black mark) and the plan's SoC at departure (dot).
  function socBar(v) {
    const W = 200, H = 16;
    const root = svg("svg", { width: W, height: H + 4, viewBox: `0 0 ${W} ${H + 4}`, class: "soc-bar" });
    root.append(svg("rect", { class: "soc-bg", x: 0, y: 2, width: W, height: H, rx: 3 }));
    root.append(svg("rect", { class: "soc-fill", x: 0, y: 2, width: W * v.soc, height: H, rx: 3 }));
    if (v.min_soc > 0) {
      root.append(svg("line", { class: "soc-min", x1: W * v.min_soc, x2: W * v.min_soc, y1: 2, y2: H + 2 }));
    }
    if (v.target_soc !== null) {
      const x = Math.min(W - 1.5, Math.max(1.5, W * v.target_soc));
      root.append(svg("line", { class: "soc-target", x1: x, x2: x, y1: 0, y2: H + 4 }));
    }
    if (v.expected_soc_at_departure !== null) {
      const cls = v.status === "shortfall" ? "soc-expected-bad" : "soc-expected-ok";
      root.append(svg("circle", { class: cls, cx: W * v.expected_soc_at_departure, cy: H / 2 + 2, r: 4 }));
    }
    return root;
  }

  // The plan's SoC from now to the departure, with the target as a dashed line.
  function socChart(v, now) {
    const W = 200, H = 40;
    const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "soc-chart" });
    root.append(svg("rect", { class: "soc-bg", x: 0, y: 0, width: W, height: H }));
    const end = Math.max(t(v.departure), now + 60000);
    const X = (ms) => ((ms - now) / (end - now)) * W;
    const Y = (s) => H - 2 - s * (H - 4);
    if (v.target_soc !== null) {
      root.append(svg("line", {
        class: "soc-target-line", x1: 0, x2: W, y1: Y(v.target_soc), y2: Y(v.target_soc),
      }));
    }
    let d = `M0,${Y(v.soc).toFixed(1)}`;
    v.plan_t.forEach((s, i) => {
      const ms = t(s);
      if (ms <= now || ms > end) return;
      d += `L${X(ms).toFixed(1)},${Y(v.plan_soc[i]).toFixed(1)}`;
    });
    root.append(svg("path", { class: "soc-plan", d }));
    return root;
  }

  function renderEvents(snap, now) {
    const box = $("events");
    if (!snap.events.length) {
      box.replaceChildren(el("p", { class: "empty" }, "No active or upcoming grid events."));
      return;
    }
    const rows = snap.events.map((e) => {
      const caps = e.limits.map((l) => (l.cap_kw !== null ? `cap ${l.cap_kw} kW` : `shed ${l.shed_kw} kW`))
        .concat(e.prices.map((p) => `price ${p.mode === "add" ? "+" : ""}${p.price_per_mwh}/MWh`));
      const when = e.phase === "active"
        ? badge(`active, ends in ${span((t(e.end) - now) / 1000)}`, "warn")
        : badge(`in ${span((t(e.start) - now) / 1000)}`, "neutral");
      const opt = e.opt === null ? badge("local", "neutral")
        : e.opt === "optIn" ? badge("opted in", "ok") : badge("opted out", "bad");
      return el("tr", { "data-event": e.event_id },
        el("td", {}, el("strong", {}, e.event_id), e.program ? el("div", { class: "small" }, e.program) : null),
        el("td", {}, when),
        el("td", {}, `${hhmm(t(e.start))} – ${hhmm(t(e.end))}`),
        el("td", {}, e.site_ids.length ? e.site_ids.join(", ") : "all sites"),
        el("td", {}, [...new Set(caps)].join(", ")),
        el("td", {}, opt, e.reason ? el("div", { class: "small" }, e.reason) : null));
    });
    box.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {},
        el("th", {}, "event"), el("th", {}, "when"), el("th", {}, "window"), el("th", {}, "sites"),
        el("th", {}, "asks"), el("th", {}, "our answer"))),
      el("tbody", {}, ...rows)));
  }

  // ------------------------------------------------------------------ start

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = $("token").value.trim();
      if (!token) {
        showLogin("Paste an API key first.");
        return;
      }
      $("login-error").hidden = true;
      signIn(token);
    });
    $("signout").addEventListener("click", () => signOut());
    const win = $("window");
    win.value = sessionStorage.getItem(WINDOW) || win.value;
    win.addEventListener("change", () => {
      sessionStorage.setItem(WINDOW, win.value);
      clearTimeout(timer);
      generation += 1;
      poll(generation, false);
    });
    if (sessionStorage.getItem(KEY)) {
      generation += 1;
      poll(generation, true);
    } else {
      showLogin();
    }
  });
})();
