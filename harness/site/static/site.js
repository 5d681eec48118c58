// backprop-bench site: sortable tables. Click a column header to sort by it; click again to
// reverse. A cell's data-sort attribute, when present, is its sort key (numbers sort as
// numbers: step times in seconds, speed-ups, UTC times); otherwise its text. Empty keys last.
(function () {
  "use strict";
  function key(cell) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    raw = raw.trim();
    var num = Number(raw);
    return raw === "" ? null : (isNaN(num) ? raw.toLowerCase() : num);
  }
  function compare(a, b) {
    if (a === null || b === null) return a === b ? 0 : (a === null ? 1 : -1);
    if (typeof a === typeof b) return a < b ? -1 : (a > b ? 1 : 0);
    return typeof a === "number" ? -1 : 1;  // numbers before words
  }
  function sortBy(table, th, column) {
    var body = table.tBodies[0];
    if (!body) return;
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var c1 = r1.cells[column], c2 = r2.cells[column];
      var order = compare(c1 ? key(c1) : null, c2 ? key(c2) : null);
      return ascending ? order : -order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  function enable(table) {
    if (!table.tHead || !table.tHead.rows.length) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      th.classList.add("sort-header");
      th.setAttribute("title", "sort by this column");
      th.addEventListener("click", function () { sortBy(table, th, column); });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), enable);
  });
})();
