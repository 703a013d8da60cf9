"""The HTML page's inline style and script, and the Content-Security-Policy that pins them.

Both are inlined into ``report.html`` so the page is one file that needs nothing else: no
network, no CDN, no sibling file. The policy allows exactly these two inline blocks (by hash)
and ``data:`` images, so a browser refuses, and reports on its console, anything the page
would otherwise fetch. The script does one thing: a click on a column heading sorts that
table (numbers numerically, text naturally, empty cells last; a second click reverses).
"""

from __future__ import annotations

import base64
import hashlib

STYLE = r"""
:root{--fg:#1d2027;--muted:#5a6170;--line:#d8dce3;--soft:#f4f6f9;--accent:#2f5d9e}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:var(--fg);background:#fff;max-width:1080px;margin:0 auto;padding:1.5em 1.25em 4em}
header{border-bottom:2px solid var(--line);padding-bottom:1em}
h1{font-size:1.6em;margin:.2em 0 .7em}
h2{font-size:1.25em;margin:2.2em 0 .6em;padding-bottom:.2em;border-bottom:1px solid var(--line)}
dl.glance{display:grid;grid-template-columns:max-content 1fr;gap:.4em 1.2em;margin:0}
dl.glance dt{font-weight:600;color:var(--muted)}
dl.glance dd{margin:0}
dl.glance dd.lead{font-size:1.02em}
dl.glance ul{margin:0;padding-left:1.2em}
.result{display:flex;flex-wrap:wrap;gap:.6em 3em;margin:0 0 1em}
.stat{display:flex;flex-direction:column}
.stat .label{color:var(--muted);font-weight:600}
.stat .value{font-size:2.6em;font-weight:700;line-height:1.1;color:var(--fg)}
.stat .detail{color:var(--muted);font-size:.9em}
p.note{margin:-.4em 0 1em;color:var(--muted);font-size:.92em}
.keyfigs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start;margin:0 0 1em}
.keyfigs figure{margin:0;flex:1 1 300px}
.keyfigs img{max-height:340px;width:auto}
nav.toc{background:var(--soft);border:1px solid var(--line);border-radius:6px;
 padding:.6em 1.2em;margin:1.2em 0 1em}
nav.toc h2{font-size:1em;margin:.2em 0 .3em;border:0;padding:0}
nav.toc ol{columns:2;column-gap:2em;margin:0 0 .4em;padding-left:1.4em}
nav.toc p{margin:.3em 0;color:var(--muted);font-size:.9em}
a{color:var(--accent)}
.scroll{overflow-x:auto;margin:1em 0}
table{border-collapse:collapse;font-size:.9em;font-variant-numeric:tabular-nums}
th,td{border:1px solid var(--line);padding:.25em .6em;text-align:left;vertical-align:top}
td.num{text-align:right}
thead th{background:var(--soft)}
th button{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:0;
 cursor:pointer;text-align:left;width:100%}
th button:focus-visible{outline:2px solid var(--accent)}
th button::after{content:" \2195";color:#9aa1ac;font-weight:400}
th[aria-sort=ascending] button::after{content:" \25B2";color:var(--accent)}
th[aria-sort=descending] button::after{content:" \25BC";color:var(--accent)}
tbody tr:nth-child(even){background:#fafbfc}
figure{margin:1.2em 0}
img{max-width:100%;height:auto}
figcaption{color:var(--muted);font-size:.9em}
pre{background:var(--soft);border:1px solid var(--line);padding:1em;overflow:auto;font-size:.85em}
details{margin:1em 0}
details summary{cursor:pointer;color:var(--accent)}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.92em}
@media print{nav.toc{display:none}th button::after{content:none}
 h2{break-after:avoid}figure,table{break-inside:avoid}}
"""

SCRIPT = r"""
(function () {
  "use strict";
  // a number that ends the cell or is followed by a space or "%": not an IP, not a hex id
  var NUMBER = /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?(?=$|\s|%)/i;
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});

  function text(row, col) {
    var cell = row.cells[col];
    return cell ? cell.textContent.trim() : "";
  }
  function blank(t) {
    return t === "" || t.toLowerCase() === "nan";
  }
  function number(t) {
    var m = NUMBER.exec(t);
    return m ? parseFloat(m[0]) : null;
  }
  // A column is numeric when every non-blank cell starts with a number ("0.25", "15.87 %",
  // "0.31 ± 0.02", "11 of 16"): those sort by that number, everything else as text.
  function numeric(rows, col) {
    var seen = false;
    for (var i = 0; i < rows.length; i++) {
      var t = text(rows[i], col);
      if (blank(t)) continue;
      if (number(t) === null) return false;
      seen = true;
    }
    return seen;
  }
  function sortTable(table, col, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var isNumber = numeric(rows, col);
    var keyed = rows.map(function (row, i) {
      var t = text(row, col);
      return {row: row, i: i, t: t, blank: blank(t), n: isNumber ? number(t) : null};
    });
    keyed.sort(function (a, b) {
      if (a.blank || b.blank) return a.blank === b.blank ? a.i - b.i : (a.blank ? 1 : -1);
      var c = isNumber ? a.n - b.n : collator.compare(a.t, b.t);
      return (ascending ? c : -c) || a.i - b.i;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () { sortTable(table, col, th); });
      if (numeric(rows, col)) {
        rows.forEach(function (row) { if (row.cells[col]) row.cells[col].classList.add("num"); });
      }
    });
  });
})();
"""


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


#: Nothing but the inline style, the inline script and embedded images may load.
CSP = (
    f"default-src 'none'; img-src data:; style-src {_sha256(STYLE)}; "
    f"script-src {_sha256(SCRIPT)}; base-uri 'none'; form-action 'none'"
)
