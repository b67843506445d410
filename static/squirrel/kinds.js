// Generated from squirrel_site/epics_values.py by `python manage.py write_kinds_js`: do not edit.
// How each value kind compares (squirrel_site/epics_values.py, KindSpec.compare).
export const COMPARE = Object.freeze({
  "float": "number",
  "int": "number",
  "enum": "enum",
  "string": "exact",
  "float_array": "number_array",
  "int_array": "number_array",
  "string_array": "exact_array",
  "structure": "structure"
});
