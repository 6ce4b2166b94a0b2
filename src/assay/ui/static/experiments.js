// Experiments room: rows of an experiment or a comparison expand in place to their detail
// (full input, expected, output; or the side-by-side diff). Enter/o or a click opens, Esc closes.
"use strict";

(function () {
  function detailOf(row) {
    const next = row.nextElementSibling;
    return next && next.classList.contains("detail-row") ? next : null;
  }
  function loadDiff(detail) {
    // The server renders the diff escaped; it arrives as HTML for this one slot.
    const slot = detail.querySelector(".diff-slot[data-diff-url]");
    if (!slot || slot.dataset.loaded) return;
    slot.dataset.loaded = "1";
    fetch(slot.dataset.diffUrl, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) { slot.innerHTML = html; })
      .catch(function () {
        slot.dataset.loaded = "";
        slot.textContent = "The diff could not be loaded; close and reopen the row to retry.";
      });
  }
  function setOpen(row, open) {
    const detail = detailOf(row);
    if (!detail) return;
    if (open) loadDiff(detail);
    detail.hidden = !open;
    row.setAttribute("aria-expanded", open ? "true" : "false");
    row.classList.toggle("expanded", open);
  }

  document.addEventListener("assay:open", function (event) {
    const row = event.target;
    if (!(row instanceof HTMLElement) || !row.closest("[data-detail-rows]")) return;
    if (!detailOf(row)) return;
    event.preventDefault(); // expand in place instead of following data-href
    setOpen(row, row.getAttribute("aria-expanded") !== "true");
  });

  document.addEventListener("assay:close", function () {
    document.querySelectorAll("[data-detail-rows] tr[aria-expanded=true]").forEach(function (row) {
      setOpen(row, false);
    });
  });
})();
