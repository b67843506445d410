// "Check every row on this page" for a restore selection: the #select-page box in a table's
// header checks or clears every `pv` box of that table. A file rather than an inline script, so
// the Content-Security-Policy can forbid inline scripts (docs/security.md).

const all = document.getElementById("select-page");
if (all) {
  all.addEventListener("change", () => {
    all.closest("table").querySelectorAll('input[name="pv"]').forEach((box) => { box.checked = all.checked; });
  });
}
