"""Request files read as the tools that write them read them: autosave's `file` lines (quoted or
bare names and macros, spaces or commas between definitions, the line macro-expanded first) and
PSI snapshot's `!path, "macros"` includes and JSON header. The fixtures have the shapes
areaDetector's and PSI snapshot's repositories ship."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from pvs.importers import filesystem_include_loader, import_pvs, uploaded_include_loader
from pvs.models import PV

pytestmark = pytest.mark.django_db

MAGNETS = b"$(SEC):MAG:Q$(N):BDES\n$(SEC):MAG:Q$(N):BCTRL\n"


def addresses() -> list[str]:
    return sorted(PV.objects.values_list("setpoint_address", flat=True))


def req_import(top: str, files: dict[str, bytes], macros=None):
    report = import_pvs(
        "top.req", top.encode(), dry_run=False, macros=macros, include_loader=uploaded_include_loader(files)
    )
    assert report.ok, [str(problem) for problem in report.errors]
    return report


def errors_of(top: str, files: dict[str, bytes] | None = None, macros=None) -> list[str]:
    report = import_pvs(
        "top.req", top.encode(), dry_run=False, macros=macros, include_loader=uploaded_include_loader(files or {})
    )
    assert not PV.objects.exists()
    return [str(problem) for problem in report.errors]


# --- autosave `file` lines --------------------------------------------------------------------


def test_quoted_name_and_quoted_comma_separated_macros():
    req_import('file "magnets.req" "SEC=$(SEC),N=3"\n', {"magnets.req": MAGNETS}, macros={"SEC": "LI20"})

    assert addresses() == ["LI20:MAG:Q3:BCTRL", "LI20:MAG:Q3:BDES"]


def test_bare_name_and_space_separated_macros():
    req_import("file magnets.req SEC=LI20 N=3\n", {"magnets.req": MAGNETS})

    assert addresses() == ["LI20:MAG:Q3:BCTRL", "LI20:MAG:Q3:BDES"]


def test_comma_after_the_name_and_quoted_space_separated_macros():
    req_import('file magnets.req, "SEC=LI20 N=3"\n', {"magnets.req": MAGNETS})

    assert addresses() == ["LI20:MAG:Q3:BCTRL", "LI20:MAG:Q3:BDES"]


def test_quoted_name_without_a_space_before_it():
    req_import('file"magnets.req" SEC=LI20,N=3\n', {"magnets.req": MAGNETS})

    assert addresses() == ["LI20:MAG:Q3:BCTRL", "LI20:MAG:Q3:BDES"]


def test_the_whole_line_is_expanded_before_it_is_read():
    # The macro list itself comes from a macro, as an IOC's st.cmd often passes it on.
    req_import(
        "file $(KIND).req $(MAG_MACROS)\n",
        {"magnets.req": MAGNETS},
        macros={"KIND": "magnets", "MAG_MACROS": "SEC=LI21,N=7"},
    )

    assert addresses() == ["LI21:MAG:Q7:BCTRL", "LI21:MAG:Q7:BDES"]


def test_a_line_that_expands_to_a_comment_is_skipped():
    req_import("$(DISABLE)LI20:MAG:Q1:BDES\nLI20:MAG:Q2:BDES\n", {}, macros={"DISABLE": "#"})

    assert addresses() == ["LI20:MAG:Q2:BDES"]


def test_braces_and_defaults_in_included_files():
    req_import("file motor.req P=IOC:\n", {"motor.req": b"${P}$(M=m1).VAL\n${P}$(M=m1).VELO\n"})

    assert addresses() == ["IOC:m1.VAL", "IOC:m1.VELO"]


def test_a_comment_after_the_macros_is_ignored():
    req_import('file "magnets.req" SEC=LI20, N=3   # quadrupoles\n', {"magnets.req": MAGNETS})

    assert addresses() == ["LI20:MAG:Q3:BCTRL", "LI20:MAG:Q3:BDES"]


def test_areadetector_plugin_settings_with_nested_includes(tmp_path):
    # iocBoot/commonPlugin_settings.req and ADApp/Db/*_settings.req, cut down.
    (tmp_path / "commonPlugin_settings.req").write_text(
        'file "NDFileHDF5_settings.req",     P=$(P),  R=HDF1:\n'
        'file "NDROI_settings.req",          P=$(P),  R=ROI1:\n'
        '#file "NDFileMagick_settings.req",  P=$(P),  R=Magick1:\n'
        'file "NDGatherN_settings.req",      P=$(P),  R=Gather1:, N=1\n'
    )
    (tmp_path / "NDFileHDF5_settings.req").write_text(
        '$(P)$(R)NumRowChunks\n$(P)$(R)Compression\nfile "NDPluginFile_settings.req", P=$(P), R=$(R)\n\n'
    )
    (tmp_path / "NDPluginFile_settings.req").write_text("$(P)$(R)FilePath\n$(P)$(R)FileName\n")
    (tmp_path / "NDROI_settings.req").write_text("$(P)$(R)MinX\n$(P)$(R)SizeX\n")
    (tmp_path / "NDGatherN_settings.req").write_text("$(P)$(R)NDArrayPort_$(N)\n")
    top = tmp_path / "auto_settings.req"
    top.write_text('file "commonPlugin_settings.req", P=$(P)\n')

    report = import_pvs(
        str(top), top.read_bytes(), dry_run=False, macros={"P": "13SIM1:"}, include_loader=filesystem_include_loader
    )

    assert report.ok, [str(problem) for problem in report.errors]
    assert addresses() == [
        "13SIM1:Gather1:NDArrayPort_1",
        "13SIM1:HDF1:Compression",
        "13SIM1:HDF1:FileName",
        "13SIM1:HDF1:FilePath",
        "13SIM1:HDF1:NumRowChunks",
        "13SIM1:ROI1:MinX",
        "13SIM1:ROI1:SizeX",
    ]


def test_a_definition_without_a_value_is_an_error_on_its_line():
    assert errors_of('file magnets.req "SEC=LI20 N"\n', {"magnets.req": MAGNETS}) == [
        "top.req:1: Expected NAME=VALUE in the macro list, found 'N'."
    ]


def test_macro_references_inside_names_and_defaults_are_expanded():
    req_import("$(P$(N))$(M=$(DEFAULT_M)).VAL\n", {}, macros={"N": "1", "P1": "IOC:", "DEFAULT_M": "m2"})

    assert addresses() == ["IOC:m2.VAL"]


def test_macro_references_nested_too_deep_are_an_error_on_their_line():
    assert errors_of("A:1\n" + "$(" * 5000 + "X" + ")" * 5000 + "\n") == [
        "top.req:2: Macro references are nested more than 16 deep."
    ]


# --- PSI snapshot ---------------------------------------------------------------------------


def test_psi_include_with_quoted_macros(tmp_path):
    # tests/testfiles/SF_settings.req -> cfg/SF_BPM.req -> cfg/SF_BPM_PV.req, cut down.
    (tmp_path / "cfg").mkdir()
    (tmp_path / "SF_settings.req").write_text("# Loading BPM request file\n!./cfg/SF_BPM.req\n\n")
    (tmp_path / "cfg" / "SF_BPM.req").write_text(
        '!./SF_BPM_PV.req, "SYS=SINEG01-DBPM340"\n!./SF_BPM_PV.req, "SYS=SARUN20-DBPM070"\n'
    )
    (tmp_path / "cfg" / "SF_BPM_PV.req").write_text("$(SYS):X-OFFS\n$(SYS):Y-OFFS")
    top = tmp_path / "SF_settings.req"

    report = import_pvs(str(top), top.read_bytes(), dry_run=False, include_loader=filesystem_include_loader)

    assert report.ok, [str(problem) for problem in report.errors]
    assert addresses() == [
        "SARUN20-DBPM070:X-OFFS",
        "SARUN20-DBPM070:Y-OFFS",
        "SINEG01-DBPM340:X-OFFS",
        "SINEG01-DBPM340:Y-OFFS",
    ]


def test_psi_include_with_several_macros_and_the_parents_macros():
    req_import(
        "!bpm.req, 'SYS=$(AREA)-DBPM010,AXIS=X'\n", {"bpm.req": b"$(SYS):$(AXIS)-OFFS\n"}, macros={"AREA": "SINEG01"}
    )

    assert addresses() == ["SINEG01-DBPM010:X-OFFS"]


def test_psi_include_without_macros():
    req_import("!./cfg/SF_RF.req\n", {"SF_RF.req": b"SINSB01-RSYS:SET-ACC-VOLT\n"})

    assert addresses() == ["SINSB01-RSYS:SET-ACC-VOLT"]


PSI_HEADER = '{\n  "labels": {"labels": ["golden"]},\n  "filters": {"filters": ["SIN"]}\n}\n\n'


def test_psi_json_header_is_skipped():
    req_import(PSI_HEADER + "SIN:A\n", {})

    assert addresses() == ["SIN:A"]


def test_lines_after_a_psi_json_header_keep_their_numbers():
    assert errors_of(PSI_HEADER + "SIN:A\nSIN:B`\n") == ["top.req:7: PV 'SIN:B`': The address contains a quote."]


def test_a_psi_pv_line_ends_at_a_comma():
    req_import("SIN:A,\nSIN:B, anything\n", {})

    assert addresses() == ["SIN:A", "SIN:B"]


def test_a_psi_header_that_is_not_json_is_an_error():
    assert errors_of('{"labels": ["a": "b"]}\nSIN:A\n') == [
        "top.req:1: The JSON header (PSI snapshot's labels and filters) is not valid JSON: "
        "Expecting ',' delimiter: line 1 column 16 (char 15)"
    ]


def test_a_psi_include_without_a_path_is_an_error():
    assert errors_of('!, "SYS=A"\n') == ["top.req:1: '!' needs the path of the file to include."]


def test_the_admin_import_page_reads_a_psi_include(client, admin_user):
    client.force_login(admin_user)
    top = SimpleUploadedFile("SF_BPM.req", b'!./SF_BPM_PV.req, "SYS=SINEG01-DBPM340"\n')
    include = SimpleUploadedFile("SF_BPM_PV.req", b"$(SYS):X-OFFS\n")

    response = client.post(reverse("admin:pvs_pv_import"), {"file": top, "includes": [include], "apply": "1"})

    assert response.status_code == 302
    assert addresses() == ["SINEG01-DBPM340:X-OFFS"]
