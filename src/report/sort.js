// Sort a table by the clicked heading: numbers as numbers, again to reverse.
for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("th").forEach((th, col) => {
    const button = document.createElement("button");
    button.textContent = th.textContent;
    th.replaceChildren(button);
    button.addEventListener("click", () => {
      const up = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      // A number's full value is in data-v (the cell shows it rounded).
      const key = (row) => row.cells[col].dataset.v ?? row.cells[col].textContent;
      // A failed trial's NaN sorts below every number.
      const num = (row) => { const v = parseFloat(key(row)); return Number.isNaN(v) ? -Infinity : v; };
      const cmp = th.hasAttribute("data-num")
        ? (a, b) => (num(a) > num(b)) - (num(a) < num(b))
        : (a, b) => key(a).localeCompare(key(b), undefined, { numeric: true });
      const body = table.tBodies[0];
      [...body.rows].sort((a, b) => (up ? cmp(a, b) : cmp(b, a))).forEach((row) => body.append(row));
    });
  });
}
