// The traces room: clean filter URLs, infinite scroll of the trace list, and the trace page's
// tree (collapse, filter) and span detail pane (fetched as an HTML fragment on demand).
// Keyboard movement comes from assay.js (assay:select / assay:open / assay:close events).
"use strict";

(function () {
  const FRAGMENT = { "X-Assay-Fragment": "1" };

  // --- filter forms: only the fields that are set go into the (shareable) URL -------------
  document.querySelectorAll("form[data-clean-submit]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("input, select").forEach(function (field) {
        if (field.name && !field.value) field.disabled = true;
      });
    });
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { form.requestSubmit(); });
    });
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-clean-submit] [disabled]").forEach(function (field) {
      field.disabled = false;
    });
  });

  // --- infinite scroll: the "next page" link is fetched as rows and appended ---------------
  const body = document.querySelector("tbody[data-more-rows]");
  function loadMore(link) {
    if (link.dataset.loading) return;
    link.dataset.loading = "1";
    link.textContent = "Loading…";
    fetch(link.href, { headers: FRAGMENT, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        const template = document.createElement("template");
        template.innerHTML = html;
        link.closest("tr").remove();
        body.append(template.content);
        watchNext();
      })
      .catch(function () {
        delete link.dataset.loading;
        link.textContent = "Could not load more rows; click to retry";
      });
  }
  function watchNext() {
    const link = body && body.querySelector("a[data-next]");
    if (!link) return;
    link.addEventListener("click", function (event) { event.preventDefault(); loadMore(link); });
    if ("IntersectionObserver" in window) {
      const observer = new IntersectionObserver(function (entries) {
        if (entries.some(function (entry) { return entry.isIntersecting; })) {
          observer.disconnect();
          loadMore(link);
        }
      }, { rootMargin: "300px" });
      observer.observe(link);
    }
  }
  watchNext();

  // --- trace page ----------------------------------------------------------------------------
  const tree = document.querySelector(".tree[data-span-url]");
  if (!tree) return;
  const layout = document.querySelector(".trace-layout");
  const pane = document.getElementById("detail");
  const filter = document.querySelector(".tree-filter");
  let timer = null;
  let inflight = null;

  function openPane() { layout.classList.remove("detail-closed", "no-detail"); }
  function closePane() { layout.classList.add("detail-closed"); }

  function showSpan(row) {
    const spanId = row.dataset.span;
    clearTimeout(timer);
    const current = pane.querySelector(".span-detail");
    if (current && current.dataset.span === spanId) { openPane(); return; }
    if (inflight) inflight.abort();
    inflight = new AbortController();
    pane.classList.add("loading");
    fetch(tree.dataset.spanUrl + encodeURIComponent(spanId), {
      headers: FRAGMENT, credentials: "same-origin", signal: inflight.signal,
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        pane.innerHTML = html;
        pane.classList.remove("loading");
        pane.scrollTop = 0;
        openPane();
        const url = new URL(window.location.href);
        url.searchParams.set("span", spanId);
        url.searchParams.delete("full");
        window.history.replaceState(null, "", url);
        pane.dispatchEvent(new CustomEvent("assay:detail-loaded", { bubbles: true }));
      })
      .catch(function (error) {
        if (error.name === "AbortError") return;
        pane.classList.remove("loading");
        pane.textContent = "Could not load this span (" + error.message + ").";
      });
  }

  tree.addEventListener("assay:open", function (event) {
    event.preventDefault();
    showSpan(event.target);
  });
  tree.addEventListener("assay:select", function (event) {
    clearTimeout(timer);
    const row = event.target;
    timer = setTimeout(function () { showSpan(row); }, 150);
  });
  document.addEventListener("assay:close", closePane);
  pane.addEventListener("click", function (event) {
    if (event.target instanceof Element && event.target.closest("[data-close]")) closePane();
  });

  // Collapse / expand and the name filter share one pass over the rows (pre-order, depth).
  function applyVisibility() {
    const needle = filter ? filter.value.trim().toLowerCase() : "";
    let hiddenBelow = Infinity;
    for (const row of tree.children) {
      const depth = Number(row.dataset.depth);
      let hide;
      if (needle) {
        const name = row.querySelector(".span-name");
        hide = !(name && name.textContent.toLowerCase().includes(needle));
      } else {
        if (depth <= hiddenBelow) hiddenBelow = Infinity;
        hide = depth > hiddenBelow;
        const toggle = row.querySelector("button.toggle");
        if (!hide && toggle && toggle.getAttribute("aria-expanded") === "false") hiddenBelow = depth;
      }
      row.hidden = hide;
      // Hidden rows leave keyboard movement (assay.js moves over [data-href] rows).
      if (hide && row.dataset.href) { row.dataset.hrefOff = row.dataset.href; delete row.dataset.href; }
      if (!hide && row.dataset.hrefOff) { row.dataset.href = row.dataset.hrefOff; delete row.dataset.hrefOff; }
    }
  }
  tree.addEventListener("click", function (event) {
    const toggle = event.target instanceof Element && event.target.closest("button.toggle");
    if (!toggle) return;
    const expanded = toggle.getAttribute("aria-expanded") === "true";
    toggle.setAttribute("aria-expanded", String(!expanded));
    toggle.setAttribute("aria-label", expanded ? "Expand" : "Collapse");
    applyVisibility();
  });
  document.querySelectorAll("[data-tree]").forEach(function (button) {
    button.addEventListener("click", function () {
      const expand = button.dataset.tree === "expand";
      tree.querySelectorAll("button.toggle").forEach(function (toggle, index) {
        // "Collapse all" keeps the root open so its children stay visible.
        const open = expand || index === 0;
        toggle.setAttribute("aria-expanded", String(open));
      });
      applyVisibility();
    });
  });
  if (filter) filter.addEventListener("input", applyVisibility);

  // "Next error" walks the failed spans in tree order, expanding what hides them.
  const nextError = document.querySelector("[data-next-error]");
  if (nextError) {
    nextError.addEventListener("click", function () {
      const failed = Array.from(tree.querySelectorAll(".row.failed"));
      if (!failed.length) return;
      const current = tree.querySelector(".row.selected");
      const after = failed.find(function (row) {
        return current && (current.compareDocumentPosition(row) & Node.DOCUMENT_POSITION_FOLLOWING);
      });
      const row = after || failed[0];
      if (filter) filter.value = "";
      tree.querySelectorAll("button.toggle").forEach(function (toggle) {
        toggle.setAttribute("aria-expanded", "true");
      });
      applyVisibility();
      if (current) current.classList.remove("selected");
      row.classList.add("selected");
      row.scrollIntoView({ block: "nearest" });
      showSpan(row);
    });
  }

  const selected = tree.querySelector(".row.selected");
  if (selected) selected.scrollIntoView({ block: "nearest" });
})();
