// The playground: edit a prompt, run it once with the answer streaming in, side by side for
// saved versions, over a dataset in the background; save a version, move a label.
// Everything a model or a record holds is inserted as text (textContent), never as HTML.
"use strict";

(function () {
  const root = document.getElementById("playground");
  if (!root) return;
  const base = root.dataset.base;
  const promptName = root.dataset.prompt || null;
  const loadedVersion = root.dataset.version ? Number(root.dataset.version) : null;

  function $(selector, within) { return (within || root).querySelector(selector); }
  function $all(selector, within) { return Array.from((within || root).querySelectorAll(selector)); }

  function status(message, isError) {
    const line = $("[data-status]");
    line.hidden = !message;
    line.textContent = message || "";
    line.classList.toggle("error", Boolean(isError));
  }

  function parseJson(text, what) {
    if (!text.trim()) return null;
    try { return JSON.parse(text); } catch (error) {
      throw new Error(what + " is not valid JSON: " + error.message);
    }
  }

  function draft() {
    const messages = $all("[data-message]").map(function (row) {
      return { role: $("[data-role]", row).value, content: $("[data-content]", row).value };
    });
    const out = { messages: messages, params: parseJson($("[data-params]").value, "Parameters") || {} };
    const model = $("[data-model]").value.trim();
    if (model) out.model = model;
    const tools = parseJson($("[data-tools]").value, "Tools");
    if (tools) out.tools = tools;
    const format = parseJson($("[data-response-format]").value, "Response format");
    if (format) out.response_format = format;
    return out;
  }

  // --- variables ------------------------------------------------------------------------
  const NAME = /\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)|\{%-?\s*(?:if|elif)\s+([A-Za-z_][A-Za-z0-9_]*)|\{%-?\s*for\s+[A-Za-z_][A-Za-z0-9_, ]*\s+in\s+([A-Za-z_][A-Za-z0-9_]*)/g;
  const KEYWORDS = new Set(["loop", "range", "dict", "namespace", "true", "false", "none", "True", "False", "None"]);

  function variableNames() {
    const names = new Set();
    $all("[data-content]").forEach(function (area) {
      let match;
      NAME.lastIndex = 0;
      while ((match = NAME.exec(area.value)) !== null) {
        const name = match[1] || match[2] || match[3];
        if (name && !KEYWORDS.has(name)) names.add(name);
      }
    });
    return Array.from(names);
  }

  function variableInput(name) {
    return $all("[data-variable]").find(function (input) { return input.dataset.variable === name; });
  }

  function refreshVariables() {
    const holder = $("[data-variables]");
    const wanted = variableNames();
    $all("[data-variable-row]").forEach(function (row) {
      if (!wanted.includes(row.dataset.variableRow) && !$("[data-variable]", row).value) row.remove();
    });
    wanted.forEach(function (name) {
      if (variableInput(name)) return;
      const row = document.createElement("label");
      row.dataset.variableRow = name;
      row.className = "pg-variable";
      const title = document.createElement("span");
      title.textContent = name;
      const input = document.createElement("textarea");
      input.rows = 2;
      input.dataset.variable = name;
      row.append(title, input);
      holder.append(row);
    });
    $("[data-no-variables]").hidden = $all("[data-variable]").length > 0;
    markEdited();
  }

  function variables() {
    const out = {};
    $all("[data-variable]").forEach(function (input) { out[input.dataset.variable] = input.value; });
    return out;
  }

  // --- edited or not ---------------------------------------------------------------------
  let initial = null;
  function snapshot() {
    try { return JSON.stringify(draft()); } catch (error) { return null; }
  }
  function markEdited() {
    const badge = $("[data-edited]");
    if (badge && initial !== null) badge.hidden = snapshot() === initial;
  }

  // --- messages -------------------------------------------------------------------------
  root.addEventListener("click", function (event) {
    const target = event.target;
    if (!(target instanceof HTMLElement)) return;
    if (target.matches("[data-remove-message]")) {
      const row = target.closest("[data-message]");
      if (row && $all("[data-message]").length > 1) row.remove();
      refreshVariables();
    } else if (target.matches("[data-add-message]")) {
      const template = document.getElementById("pg-message-template");
      $("[data-messages]").append(template.content.cloneNode(true));
      refreshVariables();
    }
  });
  root.addEventListener("input", function (event) {
    const target = event.target;
    if (target instanceof HTMLElement && target.matches("[data-content]")) refreshVariables();
    else markEdited();
  });

  // --- talking to the server -------------------------------------------------------------
  async function problem(response) {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      if (body && body.error && body.error.message) return body.error.message;
    } catch (ignored) { /* an HTML error page */ }
    const page = new DOMParser().parseFromString(text, "text/html");
    const said = page.querySelector("main p, .message, p");
    return "HTTP " + response.status + (said ? ": " + said.textContent.trim() : "");
  }

  async function postJson(path, body) {
    const response = await window.assayFetch(base + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(await problem(response));
    return response.json();
  }

  function choice() {
    const connection = $("[data-connection]");
    return { connection: connection ? connection.value : null, model: $("[data-model]").value.trim() || null };
  }

  function runBody(useDraft, version) {
    const body = Object.assign({ prompt: promptName, variables: variables(), params: {} }, choice());
    if (useDraft) {
      body.draft = draft();
      body.version = loadedVersion;
    } else {
      body.version = version;
    }
    return body;
  }

  function describe(done) {
    const parts = [];
    if (done.model) parts.push(done.model);
    if (done.latency_ms != null) parts.push(Math.round(done.latency_ms) + " ms");
    if (done.input_tokens != null) parts.push(done.input_tokens + " in / " + (done.output_tokens || 0) + " out tokens");
    if (done.cost) parts.push("$" + Number(done.cost).toFixed(5));
    return parts.join(" · ");
  }

  // Reads the answer as JSON lines: {"type": "text", "text"} pieces, then {"type": "done"}.
  async function stream(body, box) {
    const text = $("[data-text]", box);
    const meta = $("[data-meta]", box);
    text.textContent = "";
    meta.textContent = "running…";
    box.classList.remove("error");
    box.dataset.state = "running";
    box.dataset.chunks = "0";
    let response;
    try {
      response = await window.assayFetch(base + "/playground/run", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      meta.textContent = "The request failed: " + error.message;
      box.classList.add("error");
      box.dataset.state = "error";
      return;
    }
    if (!response.ok) {
      meta.textContent = await problem(response);
      box.classList.add("error");
      box.dataset.state = "error";
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let finished = false;
    function handle(line) {
      if (!line.trim()) return;
      const item = JSON.parse(line);
      if (item.type === "text") {
        text.append(document.createTextNode(item.text));
        box.dataset.chunks = String(Number(box.dataset.chunks) + 1);
      } else if (item.type === "done") {
        finished = true;
        if (item.error) {
          meta.textContent = item.error;
          box.classList.add("error");
          box.dataset.state = "error";
          return;
        }
        if (item.output !== null && typeof item.output === "object") {
          text.textContent = JSON.stringify(item.output, null, 2);
        } else if (!text.textContent && item.output) {
          text.textContent = String(item.output);
        }
        meta.textContent = describe(item);
        box.dataset.state = "done";
      }
    }
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        handle(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
      if (done) break;
    }
    handle(buffer);
    if (!finished) {
      meta.textContent = "The answer stopped before it was complete.";
      box.classList.add("error");
      box.dataset.state = "error";
    }
  }

  function guarded(action) {
    return function () {
      status("");
      Promise.resolve().then(action).catch(function (error) { status(error.message, true); });
    };
  }

  const runOnce = $("[data-run-once]");
  if (runOnce) {
    runOnce.addEventListener("click", guarded(function () {
      return stream(runBody(true, null), $("[data-output-once]"));
    }));
  }

  const runSide = $("[data-run-side]");
  if (runSide) {
    runSide.addEventListener("click", guarded(function () {
      const chosen = $all("[data-side-versions] input:checked").map(function (box) { return Number(box.value); });
      const max = 3;
      if (chosen.length < 2 || chosen.length > max) throw new Error("Pick two or three versions.");
      const columns = $("[data-side-columns]");
      columns.replaceChildren();
      return Promise.all(chosen.map(function (version) {
        const box = document.createElement("div");
        box.className = "pg-output";
        box.dataset.sideVersion = String(version);
        const title = document.createElement("h3");
        title.textContent = "v" + version;
        const pre = document.createElement("pre");
        pre.dataset.text = "";
        const meta = document.createElement("p");
        meta.className = "muted";
        meta.dataset.meta = "";
        box.append(title, pre, meta);
        columns.append(box);
        return stream(runBody(false, version), box);
      }));
    }));
  }

  // --- dataset records into the variables --------------------------------------------------
  const loadRecords = $("[data-load-records]");
  let records = [];
  if (loadRecords) {
    loadRecords.addEventListener("click", guarded(async function () {
      const dataset = $("[data-record-dataset]").value;
      const response = await fetch(base + "/playground/records?dataset=" + encodeURIComponent(dataset), {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(await problem(response));
      records = (await response.json()).records;
      const select = $("[data-record]");
      select.replaceChildren();
      records.forEach(function (record, index) {
        const option = document.createElement("option");
        option.value = String(index);
        const preview = JSON.stringify(record.input);
        option.textContent = record.record_id + ": " + (preview.length > 80 ? preview.slice(0, 79) + "…" : preview);
        select.append(option);
      });
      select.hidden = records.length === 0;
      if (records.length) fillFrom(records[0]);
      else status("This dataset has no records.");
    }));
    $("[data-record]").addEventListener("change", function (event) {
      const record = records[Number(event.target.value)];
      if (record) fillFrom(record);
    });
  }

  function fillFrom(record) {
    refreshVariables();
    Object.keys(record.variables).forEach(function (name) {
      const input = variableInput(name);
      if (!input) return;
      const value = record.variables[name];
      input.value = typeof value === "string" ? value : JSON.stringify(value);
    });
  }

  // --- dataset runs ------------------------------------------------------------------------
  const startRun = $("[data-run-dataset-start]");
  if (startRun) {
    startRun.addEventListener("click", guarded(async function () {
      const body = runBody(true, null);
      delete body.variables;
      body.dataset = $("[data-run-dataset]").value;
      const version = $("[data-run-dataset-version]").value;
      if (version) body.dataset_version = Number(version);
      body.scorers = $all("[data-scorers] input[name=scorer]:checked").map(function (box) { return box.value; });
      body.evaluators = $all("[data-scorers] input[name=evaluator]:checked").map(function (box) { return Number(box.value); });
      startRun.disabled = true;
      try {
        const started = await postJson("/playground/runs", body);
        await follow(started);
      } finally {
        startRun.disabled = false;
      }
    }));
  }

  function showProgress(run) {
    const panel = $("[data-progress]");
    panel.hidden = false;
    const bar = $("[data-progress-bar]");
    bar.max = Math.max(run.cases, 1);
    bar.value = run.done;
    let text = run.name + ": " + run.done + " of " + run.cases + " cases";
    if (run.errors) text += ", " + run.errors + " with an error";
    text += " (" + run.status + ")";
    $("[data-progress-text]").textContent = text;
    const link = $("[data-experiment-link]");
    link.href = run.url;
    link.hidden = false;
    const compare = $("[data-compare-link]");
    compare.hidden = !run.compare_url;
    if (run.compare_url) {
      compare.href = run.compare_url;
      compare.textContent = "compare with v" + run.previous.version + "'s run";
    }
  }

  async function follow(run) {
    showProgress(run);
    while (run.status === "running") {
      await new Promise(function (resolve) { setTimeout(resolve, 1000); });
      const response = await fetch(base + "/playground/runs/" + run.experiment_id, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(await problem(response));
      run = await response.json();
      showProgress(run);
    }
  }

  // --- save and promote ----------------------------------------------------------------------
  const save = $("[data-save]");
  if (save) {
    save.addEventListener("click", guarded(async function () {
      const name = $("[data-save-name]").value.trim();
      if (!name) throw new Error("Name the prompt to save it.");
      const saved = await postJson("/playground/save", {
        name: name, draft: draft(), message: $("[data-save-message]").value || null,
      });
      $("[data-promote-version]").value = String(saved.version);
      status(saved.created ? "Saved " + name + " v" + saved.version + "." : "Nothing changed since v" + saved.version + "; no new version.");
      const link = document.createElement("a");
      link.href = saved.url;
      link.textContent = " Open v" + saved.version;
      $("[data-status]").append(link);
    }));
  }
  const promote = $("[data-promote]");
  if (promote) {
    promote.addEventListener("click", guarded(async function () {
      const name = $("[data-save-name]").value.trim();
      const label = $("[data-promote-label]").value.trim();
      const version = Number($("[data-promote-version]").value);
      if (!name || !label || !version) throw new Error("Name the prompt, the label and the version.");
      const moved = await postJson("/playground/promote", { name: name, label: label, version: version });
      status(moved.moved ? "Label " + label + " now points at v" + version + "." : "Label " + label + " already pointed at v" + version + ".");
    }));
  }

  const connection = $("[data-connection]");
  const model = $("[data-model]");
  if (connection && model && !model.value) {
    const option = connection.selectedOptions[0];
    if (option && option.dataset.defaultModel) model.placeholder = option.dataset.defaultModel;
  }
  refreshVariables();
  initial = snapshot();
  markEdited();
})();
