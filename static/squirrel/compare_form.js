// The compare form's columns: "Add a snapshot" adds one more column menu (up to data-max), each
// added column has a remove button. The menus are all named "b": the server compares A with each.
const form = document.getElementById("compare-form");
const add = document.getElementById("add-column");
const template = document.getElementById("column-template");

function columns() {
  return form.querySelectorAll(".column-choice");
}

function renumber() {
  columns().forEach((field, index) => {
    const select = field.querySelector("select");
    const label = field.querySelector("label");
    if (index === 0) return;
    select.id = `id_b_${index + 1}`;
    label.htmlFor = select.id;
    label.textContent = `Column ${index + 1}`;
    const remove = field.querySelector(".remove-column");
    if (remove) remove.setAttribute("aria-label", `Remove column ${index + 1}`);
  });
  add.disabled = columns().length >= Number(add.dataset.max);
  // Several columns sort by name only: a two-way sort (by delta, status, ...) kept from the
  // current result would be refused.
  const sort = form.querySelector('input[type="hidden"][name="sort"]');
  if (sort && columns().length > 1 && !["name", "-name"].includes(sort.value)) sort.remove();
}

if (form && add && template) {
  add.addEventListener("click", () => {
    if (columns().length >= Number(add.dataset.max)) return;
    const field = template.content.firstElementChild.cloneNode(true);
    const all = columns();
    all[all.length - 1].after(field);
    renumber();
    field.querySelector("select").focus();
  });
  form.addEventListener("click", (event) => {
    const remove = event.target.closest(".remove-column");
    if (!remove) return;
    remove.closest(".column-choice").remove();
    renumber();
  });
  renumber();
}
