// The review page: selection, keyboard, actions and a poll of /api/state every 2 s.
// Every text from the project (ids, notes, statuses) goes in with textContent, never as HTML.
"use strict";

(function () {
  const token = document.querySelector('meta[name="studio-token"]').content;
  const POLL_MS = 2000;
  let panels = []; // the latest state's panels, in reading order
  let selected = -1;
  let busy = false;

  const $ = (id) => document.getElementById(id);
  const cells = () => Array.from(document.querySelectorAll(".cell"));
  const cellOf = (id) => cells().find((c) => c.dataset.panel === id);
  const stripOf = (id) => Array.from(document.querySelectorAll(".strip-panel")).find((f) => f.dataset.panel === id);

  async function api(path, body) {
    const response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: { "X-Studio-Token": token, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    const data = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  function say(text, isError) {
    const message = $("message");
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
  }

  function banner(text) {
    const element = $("banner");
    element.textContent = text || "";
    element.hidden = !text;
  }

  function setView(view) {
    document.body.classList.toggle("view-strip", view === "strip");
    document.body.classList.toggle("view-grid", view !== "strip");
    if (selected >= 0) reveal();
  }

  function select(index) {
    if (!panels.length) return;
    selected = Math.max(0, Math.min(panels.length - 1, index));
    const id = panels[selected].id;
    for (const element of document.querySelectorAll("[data-panel]")) {
      element.classList.toggle("selected", element.dataset.panel === id);
    }
    showSelected();
    reveal();
  }

  function reveal() {
    const id = panels[selected].id;
    const target = document.body.classList.contains("view-strip") ? stripOf(id) : cellOf(id);
    if (target) target.scrollIntoView({ block: "nearest" });
  }

  function showSelected() {
    const panel = panels[selected];
    $("selected").textContent = panel
      ? `${panel.id} · ${panel.status}` + (panel.take ? ` · take ${panel.take}` : "") + (panel.note ? ` · ${panel.note}` : "")
      : "No panel selected: j/k to move";
  }

  function image(src, alt) {
    const img = document.createElement("img");
    img.src = src;
    img.alt = alt;
    return img;
  }

  function renderTakes(container, panel) {
    const key = JSON.stringify(panel.takes.map((t) => [t.take, t.status, t.note, t.src, t.pickable]).concat([panel.take]));
    if (container.dataset.key === key) return; // unchanged: keep the images already loaded
    container.dataset.key = key;
    container.replaceChildren();
    for (const take of panel.takes) {
      const figure = document.createElement("figure");
      figure.className = "take-image" + (take.take === panel.take ? " current" : "");
      if (take.src) figure.append(image(take.src, `${panel.id} take ${take.take}`));
      const caption = document.createElement("figcaption");
      caption.textContent = `t${take.take} · ${take.status}` + (take.note ? ` · ${take.note}` : "");
      figure.append(caption);
      if (take.pickable) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "pick";
        button.dataset.take = String(take.take);
        button.textContent = `Use this take (${take.take})`;
        figure.append(button);
      }
      container.append(figure);
    }
  }

  // "kai 0.71! · wren 0.93": each character's score of the current take, lowest first (the server's
  // on_model filter writes the same text into the page).
  function onModel(consistency) {
    if (!consistency) return "";
    return consistency.scores
      .map((s) => `${s.character} ${s.value === null ? "—" : s.value.toFixed(2)}${s.below ? "!" : ""}`)
      .join(" · ");
  }

  function update(state) {
    const ids = state.panels.map((p) => p.id).join(" ");
    const shown = cells().map((c) => c.dataset.panel).join(" ");
    if (ids !== shown) {
      // The storyboard's panels changed: the page is rebuilt from the server (unless a note is being typed).
      if (document.activeElement !== $("note")) location.reload();
      return;
    }
    panels = state.panels;
    for (const panel of panels) {
      const cell = cellOf(panel.id);
      const status = cell.querySelector('[data-role="status"]');
      status.textContent = panel.status;
      status.className = "badge status-" + panel.status.replace(/ /g, "-");
      cell.querySelector('[data-role="take"]').textContent = panel.take ? `take ${panel.take}` : "";
      cell.querySelector('[data-role="cost"]').textContent = panel.cost || "";
      const score = cell.querySelector('[data-role="score"]');
      score.textContent = onModel(panel.consistency);
      score.classList.toggle("below", Boolean(panel.consistency && panel.consistency.below));
      const note = cell.querySelector('[data-role="note"]');
      note.textContent = panel.note || "";
      note.hidden = !panel.note;
      renderTakes(cell.querySelector('[data-role="takes"]'), panel);
      const figure = stripOf(panel.id);
      const lettered = figure.querySelector('[data-role="lettered"]');
      if (panel.lettered && lettered.getAttribute("src") !== panel.lettered) lettered.src = panel.lettered;
      lettered.hidden = !panel.lettered;
      const missing = figure.querySelector('[data-role="missing"]');
      if (missing) missing.hidden = Boolean(panel.lettered);
    }
    if (selected >= 0) showSelected();
  }

  async function refresh() {
    try {
      update(await api("/api/state"));
      banner("");
      document.body.dataset.ready = "true"; // the state is in: keys act from now on
    } catch (error) {
      banner(`Cannot read the episode's state: ${error.message}`);
    }
  }

  async function act(action, note) {
    if (selected < 0 || busy) {
      if (selected < 0) say("Select a panel first (j/k)", true);
      return;
    }
    const id = panels[selected].id;
    busy = true;
    try {
      const body = action === "retake" ? { panels: [id], note: note } : { panels: [id] };
      const result = await api(`/api/${action}`, body);
      say(action === "approve" ? `approved ${id} (take ${result.panels[id]})` : `retake requested for ${id}`);
      await refresh();
    } catch (error) {
      say(error.message, true);
    } finally {
      busy = false;
    }
  }

  // Use take N of the selected panel (1-9, or a take's button): it becomes the approved take, the
  // later ones "not picked", as `studio pick` does.
  async function pick(id, take) {
    if (busy) return;
    busy = true;
    try {
      const result = await api("/api/pick", { panel: id, take: take });
      const aside = result.not_picked.length ? `; not picked: take ${result.not_picked.join(", ")}` : "";
      say(`${id}: using take ${result.take}, approved${aside}`);
      await refresh();
    } catch (error) {
      say(error.message, true);
    } finally {
      busy = false;
    }
  }

  function pickSelected(take) {
    if (selected < 0) return say("Select a panel first (j/k)", true);
    pick(panels[selected].id, take);
  }

  function askRetake() {
    if (selected < 0) return say("Select a panel first (j/k)", true);
    $("retake").hidden = false;
    $("ask-retake").hidden = true;
    $("note").value = "";
    $("note").focus();
  }

  function closeRetake() {
    $("retake").hidden = true;
    $("ask-retake").hidden = false;
    $("note").blur();
  }

  document.addEventListener("keydown", (event) => {
    if (event.target === $("note")) {
      if (event.key === "Escape") closeRetake();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = {
      j: () => select(selected + 1),
      k: () => select(selected < 0 ? 0 : selected - 1),
      a: () => act("approve"),
      r: askRetake,
      s: () => setView("strip"),
      g: () => setView("grid"),
    };
    if (keys[event.key]) {
      event.preventDefault();
      keys[event.key]();
    } else if (/^[1-9]$/.test(event.key)) {
      event.preventDefault();
      pickSelected(Number(event.key));
    }
  });
  $("grid").addEventListener("click", (event) => {
    const button = event.target.closest("button.pick");
    const cell = button && button.closest(".cell");
    if (cell) pick(cell.dataset.panel, Number(button.dataset.take));
  });

  $("retake").addEventListener("submit", (event) => {
    event.preventDefault();
    const note = $("note").value;
    closeRetake();
    act("retake", note);
  });
  $("approve").addEventListener("click", () => act("approve"));
  $("ask-retake").addEventListener("click", askRetake);
  for (const button of document.querySelectorAll("[data-view]")) {
    button.addEventListener("click", () => setView(button.dataset.view));
  }
  for (const element of document.querySelectorAll("[data-panel]")) {
    element.addEventListener("click", () => select(panels.findIndex((p) => p.id === element.dataset.panel)));
  }
  for (const figure of document.querySelectorAll(".strip-panel")) {
    // Gutters as the reader sees them: the storyboard's gap, in px at 800 px wide, scaled to the strip's width.
    figure.style.marginBottom = `${Number(figure.dataset.gap) / 8}%`;
  }

  refresh();
  setInterval(() => {
    if (!busy) refresh();
  }, POLL_MS);
})();
