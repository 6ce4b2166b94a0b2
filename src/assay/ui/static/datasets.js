// Datasets room: suggestions for the "add to dataset" form (fetched when it opens), Esc closes
// it. The partial may be included twice on a page, so this file may load twice: run once.
"use strict";

(function () {
  if (window.assayDatasetsLoaded) return;
  window.assayDatasetsLoaded = true;

  function fillNames(details) {
    const list = details.querySelector("datalist");
    const url = details.dataset.namesUrl;
    if (!list || !url || list.options.length || details.dataset.loaded) return;
    details.dataset.loaded = "1";
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (names) {
        names.forEach(function (name) {
          const option = document.createElement("option");
          option.value = String(name); // a property, never markup
          list.appendChild(option);
        });
      })
      .catch(function () { /* suggestions are a convenience; typing a name still works */ });
  }

  // "toggle" does not bubble; a capturing listener also sees forms inserted later (span pane).
  document.addEventListener("toggle", function (event) {
    const details = event.target;
    if (!(details instanceof HTMLDetailsElement) || !details.classList.contains("add-to-dataset")) return;
    if (details.open) {
      fillNames(details);
      const input = details.querySelector("input[name=dataset]");
      if (input instanceof HTMLElement) input.focus();
    }
  }, true);

  document.addEventListener("assay:close", function () {
    document.querySelectorAll("details.add-to-dataset[open], details.ds-create[open], details.ds-delete[open]").forEach(function (d) {
      d.open = false;
    });
  });

  document.addEventListener("keydown", function (event) {
    // Ctrl/Cmd+Enter saves a record form from a text area.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target instanceof Element) {
      const form = event.target.closest("form[data-record-form]");
      if (form instanceof HTMLFormElement) { event.preventDefault(); form.requestSubmit(); }
    }
  });
})();
