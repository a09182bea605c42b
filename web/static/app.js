// Small enhancements; every page works without this script.
// - Opens the collapsed fields around the field a URL's #anchor names, so links to a field deep
//   in a schema land on it.
// - The version selector goes to the version chosen (without the script: its Go button).
// - Copy buttons on install lines and manifests.
// - Expand all / collapse all over a page's field trees.
// - Filtering an API list as one types.
// - Typeahead suggestions in the search boxes, from the JSON API.
(function () {
  function reveal() {
    var id;
    try {
      id = decodeURIComponent(location.hash.slice(1));
    } catch (e) {
      return; // a malformed fragment (#%E0) names nothing
    }
    if (!id) return;
    var el = document.getElementById(id);
    if (!el) return;
    if (el.tagName === "DETAILS") el.open = true;
    for (var p = el.parentElement; p; p = p.parentElement) {
      if (p.tagName === "DETAILS") p.open = true;
      if (p.hasAttribute && p.hasAttribute("hidden") && p.getAttribute("role") === "tabpanel") {
        selectTab(p.id);
      }
    }
    el.scrollIntoView();
  }

  function selectTab(panelId) {
    var tab = document.querySelector('[role=tab][aria-controls="' + panelId + '"]');
    if (!tab) return;
    var list = tab.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      var panel = document.getElementById(t.getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    });
  }

  // Typeahead: as one types into a search box, the JSON API's first hits become the box's
  // suggestions (a <datalist>: the browser shows and picks them; submitting still searches).
  var suggestions = 0;
  function suggest(input) {
    var list = document.createElement("datalist");
    list.id = "search-suggestions-" + suggestions++;
    input.parentNode.appendChild(list);
    input.setAttribute("list", list.id);
    input.setAttribute("autocomplete", "off");
    var timer, asked = "";
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value.trim();
        if (q.length < 2 || q === asked) return;
        asked = q;
        fetch("/api/v1/search?page_size=8&q=" + encodeURIComponent(q))
          .then(function (r) { return r.ok ? r.json() : { hits: [] }; })
          .then(function (v) {
            if (input.value.trim() !== q) return;
            var seen = {};
            list.textContent = "";
            v.hits.forEach(function (h) {
              var text = h.type === "api" ? h.kind + "." + h.group : h.repository;
              if (seen[text]) return;
              seen[text] = true;
              var o = document.createElement("option");
              o.value = text;
              list.appendChild(o);
            });
          })
          .catch(function () {});
      }, 150);
    });
  }

  function setup() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
      var go = s.form.querySelector("button[type=submit]");
      if (go) go.hidden = true;
    });
    document.querySelectorAll("pre.copy").forEach(function (pre) {
      if (!navigator.clipboard) return;
      var b = document.createElement("button");
      b.type = "button";
      b.className = "copy-button";
      b.textContent = "Copy";
      b.addEventListener("click", function () {
        navigator.clipboard.writeText(pre.innerText).then(function () {
          b.textContent = "Copied";
          setTimeout(function () { b.textContent = "Copy"; }, 1500);
        });
      });
      pre.appendChild(b);
    });
    document.querySelectorAll("[data-expand]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () {
        var open = b.getAttribute("data-expand") === "all";
        var scope = document.getElementById(b.getAttribute("aria-controls")) || document;
        scope.querySelectorAll("details").forEach(function (d) { d.open = open; });
      });
    });
    document.querySelectorAll('input[type=search][name=q]').forEach(suggest);
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      var list = document.getElementById(input.getAttribute("data-filter"));
      if (!list) return;
      input.addEventListener("input", function () {
        var q = input.value.trim().toLowerCase();
        list.querySelectorAll("[data-filter-text]").forEach(function (li) {
          li.hidden = q !== "" && li.getAttribute("data-filter-text").toLowerCase().indexOf(q) < 0;
        });
        list.querySelectorAll(".api-nav-group").forEach(function (g) {
          g.hidden = !g.querySelector("[data-filter-text]:not([hidden])");
        });
      });
    });
    document.querySelectorAll("[role=tab]").forEach(function (t) {
      t.addEventListener("click", function (e) {
        e.preventDefault();
        selectTab(t.getAttribute("aria-controls"));
        history.replaceState(null, "", "#" + t.getAttribute("aria-controls"));
      });
      t.addEventListener("keydown", function (e) {
        if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
        var tabs = Array.prototype.slice.call(t.closest("[role=tablist]").querySelectorAll("[role=tab]"));
        var i = tabs.indexOf(t) + (e.key === "ArrowRight" ? 1 : -1);
        var next = tabs[(i + tabs.length) % tabs.length];
        selectTab(next.getAttribute("aria-controls"));
        next.focus();
      });
    });
    document.querySelectorAll('[role=tab][aria-selected="true"]').forEach(function (t) {
      selectTab(t.getAttribute("aria-controls"));
    });
    reveal();
  }
  window.addEventListener("hashchange", reveal);
  document.addEventListener("DOMContentLoaded", setup);
})();
