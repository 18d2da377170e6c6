// The live page: renders /results and re-renders on every server-sent event
// from /events, falling back to polling /results if events stop coming.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const num = new Intl.NumberFormat("en-US");
  const css = getComputedStyle(document.documentElement);
  const color = (c) => css.getPropertyValue(`--c${c % 6}`).trim() || "#777";

  let latest = null; // the last results shown
  let receivedAt = 0; // when they arrived, ms
  let connected = false;

  // "Donald J. Trump" -> "Trump", "Claudia De la Cruz" -> "De la Cruz".
  function shortName(name) {
    const w = name.split(" ").slice(1).filter((x) => !/^[A-Z]\.$/.test(x));
    return w.length ? w.join(" ") : name;
  }
  // One letter per candidate for the map: the short name's initial, or the
  // candidate number if two share it.
  let letters = [];
  function setLetters(cands) {
    const seen = new Set();
    letters = cands.map((c) => {
      let l = shortName(c.name)[0].toUpperCase();
      if (seen.has(l)) l = String(c.id + 1);
      seen.add(l);
      return l;
    });
  }
  function chip(c, leading) {
    const s = document.createElement("span");
    s.className = "chip" + (leading ? " leading" : "");
    s.style.backgroundColor = color(c);
    s.textContent = letters[c] || "?";
    s.setAttribute("aria-hidden", "true");
    return s;
  }
  const el = (tag, attrs = {}, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svgEl = (tag, attrs = {}) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };
  const pct = (x) => `${x.toFixed(1)}%`;

  // ---- map ----
  const map = { ready: false, states: {} };
  fetch("/assets/us-map.svg")
    .then((r) => { if (!r.ok) throw new Error(r.status); return r.text(); })
    .then((text) => {
      $("map").innerHTML = text;
      setupMap($("map").querySelector("svg"));
      if (latest) render(latest);
    })
    .catch((e) => { $("map").textContent = `map unavailable (${e})`; });

  function setupMap(svg) {
    const defs = svgEl("defs");
    for (let c = 0; c < 6; c++) {
      const p = svgEl("pattern", { id: `hatch-${c}`, patternUnits: "userSpaceOnUse", width: 7, height: 7, patternTransform: "rotate(45)" });
      p.append(svgEl("rect", { width: 7, height: 7, fill: color(c), "fill-opacity": 0.35 }));
      p.append(svgEl("rect", { width: 4, height: 7, fill: color(c) }));
      defs.append(p);
    }
    svg.prepend(defs);
    const labels = svgEl("g", { class: "labels" });
    svg.append(labels);
    for (const path of svg.querySelectorAll("path[data-code]")) {
      const code = path.dataset.code;
      const s = { path, title: path.querySelector("title") };
      let x = +path.dataset.lx, y = +path.dataset.ly;
      if (path.dataset.cx) {
        // A callout box east of the map for a state too small to label.
        const cx = +path.dataset.cx, cy = +path.dataset.cy;
        const g = svgEl("g", { class: "callout" });
        g.append(svgEl("line", { x1: x, y1: y, x2: cx, y2: cy }));
        s.box = svgEl("rect", { x: cx, y: cy - 13, width: 62, height: 26, rx: 3 });
        g.append(s.box);
        labels.append(g);
        s.text = svgEl("text", { x: cx + 31, y: cy + 5 });
        s.oneLine = true;
      } else {
        s.text = svgEl("text", { x, y: y - 1 });
      }
      labels.append(s.text);
      map.states[code] = s;
    }
    map.ready = true;
  }

  function paintState(st) {
    const s = map.states[st.code];
    if (!s) return;
    let fill = "", cls = "", opacity = 1, mark = "";
    switch (st.status) {
      case "not_contested": cls = "uncontested"; mark = "–"; break;
      case "no_votes": default: cls = "none"; break;
      case "tied": cls = "tied"; mark = "="; break;
      case "leading": fill = `url(#hatch-${st.leader})`; mark = letters[st.leader]; break;
      case "called": fill = color(st.leader); mark = letters[st.leader] + "✓"; break;
    }
    if (fill) opacity = 0.3 + 0.7 * Math.min(st.percent_reporting, 100) / 100;
    for (const e of [s.path, s.box]) {
      if (!e) continue;
      e.setAttribute("class", cls);
      if (fill) { e.style.fill = fill; e.style.fillOpacity = opacity; } else { e.style.fill = ""; e.style.fillOpacity = ""; }
    }
    if (s.box && !fill) s.box.style.fill = st.status === "tied" ? "#9a9a9a" : "#e6e6e6";
    s.text.setAttribute("class", fill || st.status === "tied" ? "" : "dim");
    s.text.replaceChildren();
    if (s.oneLine) {
      s.text.textContent = mark ? `${st.code} ${mark}` : st.code;
    } else {
      const a = svgEl("tspan", { x: s.text.getAttribute("x") });
      a.textContent = st.code;
      s.text.append(a);
      if (mark) {
        const b = svgEl("tspan", { x: s.text.getAttribute("x"), dy: "1.1em" });
        b.textContent = mark;
        s.text.append(b);
      }
    }
    if (s.title) s.title.textContent = `${st.name}: ${raceText(st)}, ${pct(st.percent_reporting)} reporting`;
  }

  function raceText(st) {
    const who = st.leader >= 0 ? shortName(latest.candidates[st.leader].name) : "";
    switch (st.status) {
      case "not_contested": return "not contested";
      case "no_votes":
        if (st.polls_close && !st.polls_closed) return `polls close ${etTime(st.polls_close)} ET`;
        return "no votes yet";
      case "tied": return "tied";
      case "leading": return `${who} leading`;
      case "called": return `${who} wins`;
    }
    return st.status;
  }

  // ---- election night ----
  // A night's times are shown in Eastern time, as the networks do.
  const et = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hour: "numeric", minute: "2-digit" });
  const etTime = (iso) => et.format(new Date(iso));
  function renderNight(r) {
    const n = r.night;
    $("night").hidden = !n;
    if (!n) return;
    $("clock").textContent = n.clock && !n.clock.startsWith("0001-") ? etTime(n.clock) : `before ${etTime(n.start)}`;
    $("polls-closed").textContent = n.polls_closed;
    $("polls-states").textContent = n.states;
  }

  // ---- render ----
  function render(r) {
    latest = r;
    if (letters.length !== r.candidates.length) setLetters(r.candidates);

    $("reporting").textContent = r.percent_reporting.toFixed(1);
    $("counted").textContent = num.format(r.counted);
    $("expected").textContent = num.format(r.expected);
    $("to-win").textContent = r.electoral_votes_to_win;
    $("ev-called").textContent = r.electoral_votes_called;
    $("ev-stake").textContent = r.electoral_votes_at_stake;
    renderNight(r);
    freshness();
    // Several elections in one topic, or more votes than expected.
    $("warning").hidden = !r.warning;
    $("warning").textContent = r.warning ? `⚠ ${r.warning}` : "";

    const w = $("winner");
    // A zero Results (winner 0, nothing won) must not crown anyone.
    const won = r.winner >= 0 && r.candidates[r.winner] && r.electoral_votes_to_win > 0 &&
      r.candidates[r.winner].electoral_votes_won >= r.electoral_votes_to_win;
    if (won) {
      const c = r.candidates[r.winner];
      w.hidden = false;
      w.style.backgroundColor = color(r.winner);
      w.replaceChildren(chip(r.winner), ` ${c.name} wins: ${c.electoral_votes_won} electoral votes called`);
    } else {
      w.hidden = true;
    }

    // Electoral bar, biggest first.
    const stake = r.electoral_votes_at_stake || 538;
    const order = r.candidates.slice().sort((a, b) =>
      (b.electoral_votes_won + b.electoral_votes_leading) - (a.electoral_votes_won + a.electoral_votes_leading) || a.id - b.id);
    const segs = [];
    for (const c of order) {
      for (const [n, leading] of [[c.electoral_votes_won, false], [c.electoral_votes_leading, true]]) {
        if (!n) continue;
        const d = el("div", { class: leading ? "leading" : "won", title: `${c.name}: ${n} ${leading ? "leading" : "won"}` });
        d.style.width = `${100 * n / stake}%`;
        d.style.backgroundColor = color(c.id);
        if (n / stake > 0.04) d.textContent = leading ? n : `${letters[c.id]} ${n}`;
        segs.push(d);
      }
    }
    $("ev-segments").replaceChildren(...segs);
    $("ev-mark").style.left = `${100 * r.electoral_votes_to_win / stake}%`;
    $("ev-legend").replaceChildren(...order.map((c) => {
      const li = el("li");
      li.append(chip(c.id), ` ${shortName(c.name)} `, el("b", {}, c.electoral_votes_won), " won",
        c.electoral_votes_leading ? ` + ${c.electoral_votes_leading} leading` : "");
      return li;
    }));

    // Popular vote, in the seed's candidate order.
    const maxShare = Math.max(1, ...r.candidates.map((c) => c.share));
    $("popular").tBodies[0].replaceChildren(...r.candidates.map((c) => {
      const tr = el("tr", { "data-candidate": c.id });
      const name = el("td");
      const bar = el("div", { class: "bar" });
      const fillBar = el("div");
      fillBar.style.width = `${100 * c.share / maxShare}%`;
      fillBar.style.backgroundColor = color(c.id);
      bar.append(fillBar);
      name.append(chip(c.id), ` ${c.name}`, bar);
      tr.append(name,
        el("td", { class: "num votes" }, num.format(c.votes)),
        el("td", { class: "num share" }, pct(c.share)),
        el("td", { class: "num ev-won" }, c.electoral_votes_won),
        el("td", { class: "num ev-leading" }, c.electoral_votes_leading));
      return tr;
    }));

    // States.
    $("states").tBodies[0].replaceChildren(...r.states.map((st) => {
      const tr = el("tr", { "data-state": st.code });
      const name = el("td");
      name.append(el("span", { class: "st-name" }, `${st.name} `), el("span", { class: "st-code" }, st.code));
      const race = el("td", { class: `race race-${st.status}` });
      if (st.leader >= 0) race.append(chip(st.leader, st.status !== "called"), " ");
      race.append(st.status === "called" ? `✓ ${raceText(st)}` : raceText(st));
      tr.append(
        name,
        el("td", { class: "num" }, st.electoral_votes),
        el("td", { class: "num" }, st.status === "not_contested" ? "—" : pct(st.percent_reporting)),
        race,
        margin(st),
        el("td", { class: "num counted" }, num.format(st.counted)),
        el("td", { class: "num" }, num.format(st.expected)));
      return tr;
    }));

    if (map.ready) r.states.forEach(paintState);
  }

  // "+37 votes, 10.3 pts"; phones show the points only.
  function margin(st) {
    const td = el("td", { class: "num" });
    if (st.leader < 0) {
      td.textContent = "—";
    } else {
      td.append(el("span", { class: "m-votes" }, `+${num.format(st.margin)} · `), `${st.margin_points.toFixed(1)} pts`);
    }
    return td;
  }

  function freshness() {
    const f = $("freshness");
    if (!latest) return;
    let text = connected ? "live" : "reconnecting…";
    let stale = !connected;
    if (latest.as_of && !latest.as_of.startsWith("0001-")) {
      const age = (latest.age_seconds || 0) + (Date.now() - receivedAt) / 1000;
      text += ` · data ${age < 1 ? "<1" : Math.round(age)}s old`;
      stale = stale || age > 30;
    }
    f.textContent = text;
    f.classList.toggle("stale", stale);
  }
  setInterval(freshness, 1000);

  function accept(r) {
    receivedAt = Date.now();
    render(r);
  }

  // ---- live updates ----
  function poll() {
    return fetch("/results", { cache: "no-cache" })
      .then((res) => { if (!res.ok) throw new Error(res.status); return res.json(); })
      .then(accept)
      .catch(() => {});
  }
  function listen() {
    const es = new EventSource("/events");
    es.onopen = () => { connected = true; freshness(); };
    es.onerror = () => {
      connected = false;
      freshness();
      // Refused (503: the replica has too many viewers), the stream is
      // closed for good: poll meanwhile and try again later.
      if (es.readyState === EventSource.CLOSED) setTimeout(listen, 30000);
    };
    es.onmessage = (e) => { connected = true; accept(JSON.parse(e.data)); };
    // Keep-alives carry the age of the results, which grows while they do
    // not change: a stalled view turns stale.
    es.addEventListener("age", (e) => {
      if (!latest) return;
      latest.age_seconds = JSON.parse(e.data).age_seconds;
      receivedAt = Date.now();
      freshness();
    });
  }
  if (window.EventSource) listen();
  poll();
  // Events can stop or be refused (a proxy, a busy or departed replica):
  // poll meanwhile.
  setInterval(() => { if (!connected || Date.now() - receivedAt > 10000) poll(); }, 2000);
})();
