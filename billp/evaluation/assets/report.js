"use strict";
// Trajectory browser of the billp report. Data comes from the inline JSON element;
// every string from a run is inserted with textContent (never as HTML).
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const items = data.items || {};
  const runSelect = document.getElementById("run-select");
  const phaseFilter = document.getElementById("phase-filter");
  const episodeFilter = document.getElementById("episode-filter");
  const list = document.getElementById("episode-list");
  const view = document.getElementById("episode-view");
  const count = document.getElementById("episode-count");
  const state = { run: 0, selected: null };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children || []) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function title(id) {
    const item = items[String(id)];
    return item ? item[0] : "item " + id;
  }

  function genres(id) {
    const item = items[String(id)];
    return item ? item[1].join(", ") : "";
  }

  function itemNode(id) {
    return el("span", {}, [
      el("span", { text: title(id) }),
      el("span", { class: "genres", text: " [" + id + "] " + genres(id) }),
    ]);
  }

  function num(value, digits) {
    return typeof value === "number" ? value.toFixed(digits) : "-";
  }

  function runData() {
    return data.runs[state.run] || { episodes: [] };
  }

  function matches(episode, text, phase) {
    if (phase !== "all" && episode.phase !== phase) return false;
    if (!text) return true;
    const needle = text.trim().toLowerCase();
    if (!needle) return true;
    if (episode.key.toLowerCase().includes(needle)) return true;
    const user = needle.replace(/^user\s*/, "");
    return /^\d+$/.test(user) && String(episode.user_id) === user;
  }

  function filtered() {
    return runData().episodes.filter((e) => matches(e, episodeFilter.value, phaseFilter.value));
  }

  function endClass(episode) {
    return episode.end === "capped" ? "end-capped" : "end-quit";
  }

  function renderList() {
    const episodes = filtered();
    list.replaceChildren();
    for (const episode of episodes) {
      const button = el(
        "button",
        {
          type: "button",
          "data-episode-key": episode.key,
          class: episode.key === state.selected ? "selected" : null,
        },
        [
          el("strong", { text: episode.key }),
          " user " + episode.user_id + " \u00b7 Len " + episode.length +
            " \u00b7 R " + num(episode.total_reward, 2) + " \u00b7 ",
          el("span", { class: endClass(episode), text: episode.end }),
        ]
      );
      button.addEventListener("click", () => select(episode.key));
      list.appendChild(el("li", {}, [button]));
    }
    const total = runData().episodes.length;
    const omitted = runData().omitted_episodes || 0;
    count.textContent =
      episodes.length + " of " + total + " episodes" +
      (omitted ? " (" + omitted + " more not included in this page)" : "");
    if (!episodes.some((e) => e.key === state.selected)) {
      if (episodes.length) select(episodes[0].key);
      else {
        state.selected = null;
        view.replaceChildren(el("p", { class: "note", text: "No episode matches the filter." }));
      }
    }
  }

  function planCell(step) {
    const plan = step.plan;
    if (!plan) return el("td", { class: "note", text: "-" });
    const parts = [el("div", { text: plan.thought || "(no thought)" })];
    if (plan.genres && plan.genres.length) {
      parts.push(el("div", { class: "genres", text: "genres: " + plan.genres.join(", ") }));
    }
    if (step.genre_hints && step.genre_hints.length) {
      parts.push(el("div", { class: "genres", text: "exploration hints: " + step.genre_hints.join(", ") }));
    }
    return el("td", {}, parts);
  }

  function shortlistCell(step) {
    const ids = step.shortlist || [];
    const choice = step.choice || {};
    const children = [];
    const chosenLine = el("div", {}, [el("strong", { text: "choice: " }), itemNode(step.action)]);
    children.push(chosenLine);
    if (choice.reason) children.push(el("div", { class: "genres", text: "reason: " + choice.reason }));
    if (ids.length) {
      const sources = step.shortlist_sources || {};
      const entries = ids.map((id) =>
        el("li", { class: id === step.action ? "chosen" : null }, [
          itemNode(id),
          sources[String(id)] ? el("span", { class: "tag", text: sources[String(id)] }) : null,
        ])
      );
      children.push(
        el("details", {}, [el("summary", { text: "shortlist (" + ids.length + ")" }), el("ol", { class: "shortlist" }, entries)])
      );
    }
    return el("td", {}, children);
  }

  function valueCell(step) {
    const v = step.value;
    if (!v) return el("td", { class: "note", text: "-" });
    const lines = [];
    if (v.v !== undefined) lines.push("V(s) = " + num(v.v, 2) + (v.source ? " (" + v.source + ")" : ""));
    if (v.v_next !== undefined && v.v_next !== null) lines.push("V(s') = " + num(v.v_next, 2) + (v.next_source ? " (" + v.next_source + ")" : ""));
    if (v.td_target !== undefined && v.td_target !== null) lines.push("TD target " + num(v.td_target, 2));
    if (v.advantage !== undefined && v.advantage !== null) lines.push("advantage " + num(v.advantage, 2));
    if (v.predicted_reward !== undefined) lines.push("predicted reward " + num(v.predicted_reward, 3));
    if (v.similarity !== undefined) lines.push("memory similarity " + num(v.similarity, 3));
    return el("td", {}, lines.map((line) => el("div", { text: line })));
  }

  function memoryCell(step) {
    const hits = step.memory_hits;
    if (!hits) return el("td", { class: "note", text: "-" });
    const rows = [];
    for (const [name, sign] of [["encouraged", "+"], ["discouraged", "\u2212"]]) {
      const ids = hits[name] || [];
      if (!ids.length) continue;
      rows.push(el("div", {}, [el("strong", { text: sign + " " + name + ": " })].concat(
        ids.map((id, k) => el("span", {}, [k ? "; " : "", itemNode(id)]))
      )));
    }
    if (!rows.length) rows.push(el("span", { class: "note", text: "no hits" }));
    return el("td", {}, rows);
  }

  function callsCell(step) {
    const calls = step.calls || [];
    if (!calls.length) return el("td", { class: "note", text: "-" });
    const entries = calls.map((call) =>
      el("li", {}, [
        el("span", { text: call.role + ": " }),
        el("span", { class: "stage-" + call.stage, text: call.stage }),
        call.error ? el("div", { class: "genres", text: call.error }) : null,
        call.raw ? el("pre", { class: "raw", text: call.raw }) : null,
      ])
    );
    return el("td", {}, [el("details", {}, [el("summary", { text: calls.length + " calls" }), el("ul", {}, entries)])]);
  }

  function renderEpisode(episode) {
    const head = el("div", { class: "episode-head" }, [
      el("h3", { id: "episode-title", text: episode.key }),
      el("span", { text: "phase " + episode.phase }),
      el("span", { text: "user " + episode.user_id }),
      el("span", { text: "seed " + episode.seed }),
      el("span", { text: "Len " + episode.length }),
      el("span", { text: "R_traj " + num(episode.total_reward, 3) }),
      el("span", { class: endClass(episode), text: "end: " + episode.end }),
    ]);
    const parts = [head];
    if (episode.outcome) parts.push(el("p", {}, [el("strong", { text: "Outcome: " }), episode.outcome]));
    if (episode.reflection) parts.push(el("p", {}, [el("strong", { text: "Reflection written: " }), episode.reflection]));
    if (episode.history && episode.history.length) {
      parts.push(
        el("details", {}, [
          el("summary", { text: "starting history (" + episode.history.length + " items)" }),
          el("ol", {}, episode.history.map((id) => el("li", {}, [itemNode(id)]))),
        ])
      );
    }
    const header = el("tr", {}, ["step", "recommendation and shortlist", "reward", "value estimate", "plan", "memory hits", "why the user quit", "LLM calls"].map((h) => el("th", { text: h })));
    const rows = episode.steps.map((step) =>
      el("tr", { class: step.terminated ? "quit-row" : step.truncated ? "cap-row" : null, "data-step": step.step }, [
        el("td", { text: step.step }),
        shortlistCell(step),
        el("td", { text: num(step.reward, 3) }),
        valueCell(step),
        planCell(step),
        memoryCell(step),
        el("td", { class: "quit", text: step.quit_explanation || "" }),
        callsCell(step),
      ])
    );
    parts.push(el("div", { class: "scroll" }, [el("table", { class: "steps" }, [el("thead", {}, [header]), el("tbody", {}, rows)])]));
    view.replaceChildren(...parts);
  }

  function select(key) {
    state.selected = key;
    for (const button of list.querySelectorAll("button[data-episode-key]")) {
      button.classList.toggle("selected", button.getAttribute("data-episode-key") === key);
    }
    const episode = runData().episodes.find((e) => e.key === key);
    if (episode) renderEpisode(episode);
  }

  data.runs.forEach((run, index) => {
    const llm = run.llm ? " \u00b7 " + run.llm.backend + ":" + run.llm.model : "";
    runSelect.appendChild(el("option", { value: index, text: run.label + llm }));
  });
  runSelect.addEventListener("change", () => {
    state.run = Number(runSelect.value);
    state.selected = null;
    renderList();
  });
  phaseFilter.addEventListener("change", renderList);
  episodeFilter.addEventListener("input", renderList);

  const hash = new URLSearchParams(window.location.hash.slice(1));
  if (hash.has("run")) {
    const index = Number(hash.get("run"));
    if (index >= 0 && index < data.runs.length) state.run = index;
  }
  runSelect.value = String(state.run);
  phaseFilter.value = hash.get("phase") || data.phase || "all";
  if (hash.has("episode")) episodeFilter.value = hash.get("episode");
  renderList();
})();
