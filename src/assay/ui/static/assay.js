// Assay's shared behaviour: clickable rows and keyboard navigation. No inline scripts anywhere:
// the Content-Security-Policy forbids them, so model output can never run as code.
"use strict";

(function () {
  function rows() {
    return Array.from(document.querySelectorAll("[data-rows] tr[data-href], [data-rows] [data-href].row"));
  }
  function selected() {
    return document.querySelector("[data-rows] .selected");
  }
  function select(row) {
    const current = selected();
    if (current) current.classList.remove("selected");
    if (!row) return;
    row.classList.add("selected");
    row.scrollIntoView({ block: "nearest" });
    row.dispatchEvent(new CustomEvent("assay:select", { bubbles: true }));
  }
  function move(step) {
    const all = rows();
    if (!all.length) return;
    const index = all.indexOf(selected());
    const next = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, index + step));
    select(all[next]);
  }
  function open(row) {
    if (!row) return;
    const event = new CustomEvent("assay:open", { bubbles: true, cancelable: true });
    if (row.dispatchEvent(event)) window.location.href = row.dataset.href;
  }

  document.addEventListener("click", function (event) {
    const target = event.target;
    if (!(target instanceof Element)) return;
    if (target.closest("a, button, input, select, textarea, label, summary")) return;
    const row = target.closest("[data-rows] [data-href]");
    if (row) {
      select(row);
      open(row);
    }
  });

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (target instanceof Element && target.closest("input, textarea, select, [contenteditable]")) {
      if (event.key === "Escape" && target instanceof HTMLElement) target.blur();
      return;
    }
    if (event.metaKey || event.ctrlKey || event.altKey) return;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter": case "o": if (selected()) { event.preventDefault(); open(selected()); } break;
      case "Escape":
        document.dispatchEvent(new CustomEvent("assay:close"));
        break;
      case "/": {
        const search = document.querySelector("input[type=search]");
        if (search instanceof HTMLElement) { event.preventDefault(); search.focus(); }
        break;
      }
      case "?": {
        const help = document.getElementById("shortcuts");
        if (help instanceof HTMLDialogElement) help.showModal();
        break;
      }
      default: return;
    }
  });

  // fetch() with the page's CSRF token, for the few interactions that are not plain forms.
  window.assayFetch = function (url, options) {
    const token = document.querySelector("meta[name=csrf-token]");
    const init = Object.assign({ credentials: "same-origin" }, options || {});
    init.headers = Object.assign({}, init.headers || {}, token ? { "X-CSRF-Token": token.content } : {});
    return fetch(url, init);
  };
})();
