// The reviewer view: one item at a time, keyboard first. Items are swapped in place with the
// HTML fragments the server renders (escaped like every page): submit, skip, back and undo are
// fetch() calls whose answer is the next item, so the page never reloads between items. A draft
// is kept in localStorage per queue and item until it is submitted.
"use strict";

(function () {
  const stage = document.getElementById("rv-stage");
  if (!stage) return;
  const queue = stage.dataset.queue;
  const history = []; // item ids submitted in this visit, for "back"
  let busy = false;

  function item() { return stage.querySelector(".rv-item"); }
  function itemId() { const it = item(); return it ? it.dataset.item : ""; }
  function rubrics() { return Array.from(stage.querySelectorAll(".rv-rubric")); }
  function draftKey(id) { return "assay:review-draft:" + queue + ":" + id; }

  function flash(message) {
    const box = document.getElementById("rv-flash");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }

  // --- the form's state -------------------------------------------------------------------
  function stateOf(fieldset) {
    const out = {};
    const kind = fieldset.dataset.kind;
    const inputs = Array.from(fieldset.querySelectorAll("input[name^=r], textarea[name^=r]"));
    if (kind === "text") {
      const area = fieldset.querySelector("textarea.rv-answer");
      out.text = area ? area.value : "";
    } else if (fieldset.dataset.multiple) {
      out.choices = inputs.filter(function (i) { return i.checked; }).map(function (i) { return i.value; });
    } else {
      const numberBox = fieldset.querySelector("input.rv-number");
      if (numberBox) out.value = numberBox.value;
      else {
        const picked = inputs.find(function (i) { return i.checked; });
        out.picked = picked ? picked.value : null;
      }
    }
    const why = fieldset.querySelector("textarea.rv-rationale");
    if (why) out.rationale = why.value;
    return out;
  }

  function applyState(fieldset, state) {
    if (!state) return;
    const inputs = Array.from(fieldset.querySelectorAll("input[name^=r]"));
    if (state.text !== undefined) { const a = fieldset.querySelector("textarea.rv-answer"); if (a) a.value = state.text; }
    if (state.choices) inputs.forEach(function (i) { i.checked = state.choices.indexOf(i.value) >= 0; });
    if (state.picked !== undefined) inputs.forEach(function (i) { i.checked = i.value === state.picked; });
    if (state.value !== undefined) { const n = fieldset.querySelector("input.rv-number"); if (n) n.value = state.value; }
    if (state.rationale !== undefined) { const w = fieldset.querySelector("textarea.rv-rationale"); if (w) w.value = state.rationale; }
  }

  function saveDraft() {
    const id = itemId();
    if (!id) return;
    const draft = {};
    rubrics().forEach(function (f) { draft[f.dataset.rubric] = stateOf(f); });
    try { localStorage.setItem(draftKey(id), JSON.stringify(draft)); } catch (e) { /* storage full or off */ }
  }

  function restoreDraft() {
    const id = itemId();
    if (!id) return;
    let draft = null;
    try { draft = JSON.parse(localStorage.getItem(draftKey(id)) || "null"); } catch (e) { draft = null; }
    if (!draft || typeof draft !== "object") return;
    rubrics().forEach(function (f) { applyState(f, draft[f.dataset.rubric]); });
  }

  function clearDraft(id) { try { localStorage.removeItem(draftKey(id)); } catch (e) { /* ignore */ } }

  function labels() {
    return rubrics().map(function (f) {
      const state = stateOf(f);
      const label = { rubric_id: Number(f.dataset.rubric) };
      if (f.dataset.kind === "text") {
        if (!state.text || !state.text.trim()) return null; // a free-text rubric may be left out
        label.text = state.text;
      } else if (f.dataset.multiple) label.choices = state.choices;
      else if (f.dataset.kind === "numeric") {
        const raw = state.value !== undefined ? state.value : state.picked;
        label.value = raw === null || raw === "" ? null : Number(raw);
      } else if (state.picked !== null) label.choice = state.picked;
      if (state.rationale !== undefined && state.rationale.trim()) label.rationale = state.rationale;
      return label;
    }).filter(Boolean);
  }

  function missing() {
    for (const f of rubrics()) {
      const state = stateOf(f);
      const name = (f.querySelector("legend") || f).textContent.trim();
      if (f.dataset.kind !== "text") {
        const empty = f.dataset.multiple ? false
          : (state.value !== undefined ? state.value === "" : state.picked === null);
        if (empty) return { fieldset: f, message: "Pick an answer for " + name + "." };
      }
      if (f.dataset.rationale === "required" && !(state.rationale || "").trim()) {
        return { fieldset: f, message: "Say why for " + name + " (press r).", why: true };
      }
    }
    return null;
  }

  // --- the current rubric --------------------------------------------------------------------
  function active() { return stage.querySelector(".rv-rubric.active") || rubrics()[0] || null; }
  function activate(fieldset) {
    rubrics().forEach(function (f) { f.classList.toggle("active", f === fieldset); });
    if (fieldset) fieldset.scrollIntoView({ block: "nearest" });
  }
  function moveRubric(step) {
    const all = rubrics();
    if (!all.length) return;
    const at = all.indexOf(active());
    activate(all[Math.min(all.length - 1, Math.max(0, at + step))]);
  }
  function pick(n) {
    const fieldset = active();
    if (!fieldset) return;
    const options = Array.from(fieldset.querySelectorAll("input[type=radio], input[type=checkbox]"));
    if (!options.length) {
      const box = fieldset.querySelector("input.rv-number, textarea.rv-answer");
      if (box instanceof HTMLElement) box.focus();
      return;
    }
    const option = options[n - 1];
    if (!option) return;
    option.checked = option.type === "checkbox" ? !option.checked : true;
    saveDraft();
    if (option.type === "radio") {
      const all = rubrics();
      const next = all[all.indexOf(fieldset) + 1];
      if (next) activate(next);
    }
  }
  function focusRationale() {
    const fieldset = active();
    const why = fieldset && fieldset.querySelector("textarea.rv-rationale, textarea.rv-answer");
    const any = why || stage.querySelector("textarea.rv-rationale");
    if (any instanceof HTMLElement) any.focus();
  }

  // --- swapping items ------------------------------------------------------------------------
  function show(html) {
    stage.innerHTML = html; // a fragment the server rendered, every value escaped
    activate(rubrics()[0] || null);
    restoreDraft();
    window.scrollTo(0, 0);
    const first = stage.querySelector(".rv-rubric");
    if (first) first.classList.add("active");
  }

  async function request(url, options) {
    if (busy) return null;
    busy = true;
    stage.classList.add("loading");
    try {
      const response = await window.assayFetch(url, options || {});
      const text = await response.text();
      if (!response.ok) {
        let message = "The server answered " + response.status + ".";
        try { message = JSON.parse(text).error.message; } catch (e) {
          const doc = new DOMParser().parseFromString(text, "text/html");
          const p = doc.querySelector("main p");
          if (p && p.textContent) message = p.textContent;
        }
        flash(message);
        return null;
      }
      flash("");
      return { response: response, text: text };
    } catch (e) {
      flash("Could not reach the server; your draft is kept. Try again.");
      return null;
    } finally {
      busy = false;
      stage.classList.remove("loading");
    }
  }

  async function submit() {
    const it = item();
    const form = stage.querySelector("form.rv-form");
    if (!it || !form || !it.dataset.item) return;
    const gap = missing();
    if (gap) {
      flash(gap.message);
      activate(gap.fieldset);
      if (gap.why) focusRationale();
      return;
    }
    const id = it.dataset.item;
    const answer = await request(form.getAttribute("data-labels-url"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/html" },
      body: JSON.stringify({ labels: labels() }),
    });
    if (!answer) return;
    clearDraft(id);
    if (history[history.length - 1] !== id) history.push(id);
    show(answer.text);
  }

  async function skip() {
    const it = item();
    if (!it || !it.dataset.item) return;
    const answer = await request(it.dataset.base + "/items/" + it.dataset.item + "/skip", { method: "POST" });
    if (answer) show(answer.text);
  }

  async function back() {
    const current = itemId();
    let target = history.length ? history[history.length - 1] : null;
    if (target && target === current) target = history[history.length - 2] || null;
    if (!target) { flash("Nothing to go back to in this visit."); return; }
    const base = (item() && item().dataset.base) || stage.dataset.nextUrl.replace(/\/next$/, "");
    const answer = await request(base + "/items/" + target, { headers: { Accept: "text/html" } });
    if (answer) {
      history.splice(history.indexOf(target), 1);
      show(answer.text);
    }
  }

  async function undo() {
    const answer = await request(stage.dataset.undoUrl, { method: "POST" });
    if (answer) {
      history.pop();
      show(answer.text);
    }
  }

  async function correct(form) {
    const out = form.querySelector(".rv-correct-result");
    // Not form.dataset: a form's named fields shadow its properties (its "dataset" input).
    const answer = await request(form.getAttribute("data-url"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        dataset: form.elements.namedItem("dataset").value,
        expected: form.elements.namedItem("expected").value,
      }),
    });
    if (answer && out) {
      const found = JSON.parse(answer.text);
      out.textContent = "Added to " + found.dataset + " (version " + found.version + ").";
    }
  }

  // --- events --------------------------------------------------------------------------------
  stage.addEventListener("input", saveDraft);
  stage.addEventListener("change", saveDraft);
  stage.addEventListener("focusin", function (event) {
    const fieldset = event.target instanceof Element ? event.target.closest(".rv-rubric") : null;
    if (fieldset && !fieldset.classList.contains("active")) activate(fieldset);
  });
  stage.addEventListener("submit", function (event) {
    event.preventDefault();
    const form = event.target;
    if (form instanceof HTMLFormElement && form.classList.contains("rv-correct-form")) correct(form);
    else submit();
  });
  stage.addEventListener("click", function (event) {
    const button = event.target instanceof Element ? event.target.closest("button[data-action]") : null;
    if (!button) return;
    const action = button.dataset.action;
    if (action === "skip") skip();
    else if (action === "back") back();
    else if (action === "undo") undo();
  });
  document.addEventListener("click", function (event) {
    const help = event.target instanceof Element ? event.target.closest("button[data-action=help]") : null;
    const dialog = document.getElementById("shortcuts");
    if (help && dialog instanceof HTMLDialogElement) dialog.showModal();
  });

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    const writing = target instanceof Element && target.closest("textarea, input[type=text], input[type=number], input:not([type]), select");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (target instanceof Element && target.closest(".rv-correct-form")) return;
      event.preventDefault();
      submit();
      return;
    }
    if (writing || event.altKey || event.ctrlKey || event.metaKey) return;
    if (document.querySelector("dialog[open]")) return;
    const key = event.key;
    if (/^[0-9]$/.test(key)) { event.preventDefault(); pick(key === "0" ? 10 : Number(key)); return; }
    switch (key) {
      case "Enter": event.preventDefault(); submit(); break;
      case "r": event.preventDefault(); focusRationale(); break;
      case "s": event.preventDefault(); skip(); break;
      case "b": event.preventDefault(); back(); break;
      case "u": event.preventDefault(); undo(); break;
      case "]": event.preventDefault(); moveRubric(1); break;
      case "[": event.preventDefault(); moveRubric(-1); break;
      case "t": {
        const link = stage.querySelector("a.rv-trace");
        if (link instanceof HTMLAnchorElement) { event.preventDefault(); window.open(link.href, "_blank", "noopener"); }
        break;
      }
      case "c": {
        const details = stage.querySelector("details.rv-correct");
        if (details instanceof HTMLDetailsElement) {
          event.preventDefault();
          details.open = true;
          const box = details.querySelector("textarea");
          if (box instanceof HTMLElement) box.focus();
        }
        break;
      }
      default: return;
    }
  });

  activate(rubrics()[0] || null);
  restoreDraft();
})();
