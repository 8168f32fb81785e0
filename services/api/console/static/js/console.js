// Convoforge console behaviour that htmx does not cover: keyboard shortcuts, select-all,
// confirmations and live progress over Server-Sent Events. No inline script anywhere (CSP).
"use strict";

(function () {
  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  // Keyboard: elements with data-key="x" are activated (links, buttons) or focused (fields).
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var dialog = document.getElementById("shortcuts");
    if (event.key === "Escape" && dialog && dialog.open) { dialog.close(); return; }
    if (typing(event.target)) return;
    if (event.key === "?") { event.preventDefault(); if (dialog) dialog.showModal(); return; }
    if (event.key === "/") {
      var search = document.querySelector("[data-shortcut='/']");
      if (search) { event.preventDefault(); search.focus(); }
      return;
    }
    var element = document.querySelector("[data-key='" + CSS.escape(event.key) + "']");
    if (!element) return;
    event.preventDefault();
    if (element.matches("input, textarea, select")) { element.focus(); return; }
    element.click();
  });

  // Select every row checkbox of a table from its header checkbox.
  document.addEventListener("change", function (event) {
    var all = event.target.closest("[data-select-all]");
    if (!all) return;
    var name = all.getAttribute("data-select-all");
    var form = all.closest("form");
    form.querySelectorAll("input[type=checkbox][name='" + name + "']").forEach(function (box) {
      box.checked = all.checked;
    });
  });

  // Buttons with data-confirm ask before their form is submitted.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
  });

  function pick(data, path) {
    return path.split(".").reduce(function (value, key) {
      return value === null || value === undefined ? undefined : value[key];
    }, data);
  }

  function format(value, kind) {
    if (value === null || value === undefined) return "—";
    if (kind === "percent") return Math.round(value) + "%";
    if (kind === "money") return "$" + Number(value).toFixed(value < 1 ? 4 : 2);
    if (kind === "label") return String(value).replace(/_/g, " ");
    if (kind === "seconds") return Math.round(value) + " s";
    return String(value);
  }

  function apply(root, data) {
    root.querySelectorAll("[data-field]").forEach(function (node) {
      var value = pick(data, node.getAttribute("data-field"));
      if (value === undefined) value = 0;
      node.textContent = format(value, node.getAttribute("data-format"));
    });
    root.querySelectorAll("[data-field-value]").forEach(function (node) {
      var value = pick(data, node.getAttribute("data-field-value"));
      if (typeof value === "number") node.value = value;
    });
    root.setAttribute("data-status", data.status);
  }

  // Live progress: [data-events-url] listens to the job's event stream and updates its fields;
  // at the end it reloads its own partial (data-refresh-url) to show the final actions.
  function listen(root) {
    if (!window.EventSource) return;
    var source = new EventSource(root.getAttribute("data-events-url"));
    source.addEventListener("progress", function (event) { apply(root, JSON.parse(event.data)); });
    source.addEventListener("end", function (event) {
      source.close();
      apply(root, JSON.parse(event.data));
      root.setAttribute("data-ended", "true");
      var url = root.getAttribute("data-refresh-url");
      if (url && window.htmx) {
        window.htmx.ajax("GET", url, { target: root, swap: "innerHTML" });
      }
    });
  }

  function start() {
    document.querySelectorAll("[data-events-url]").forEach(listen);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
