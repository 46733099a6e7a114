"""`python -m export` as a surface: a problem the user caused ends with one "error:" line and
exit status 2, anything else keeps its traceback; settings come from flags, else TURBO_*."""

import pytest

import export.__main__ as cli
from export import convert, standins
from pipelines.errors import HubUnreachable, InvalidRequest


def test_an_internal_error_keeps_its_traceback(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise ValueError("internal")  # as NNCF or numpy would raise it

    monkeypatch.setattr(cli, "export_model", broken)
    with pytest.raises(ValueError, match="internal"):
        cli.main(["tiny", "--models-dir", str(tmp_path)])


def test_a_user_error_is_one_line_and_exit_status_2(monkeypatch, tmp_path, capsys):
    def refused(*args, **kwargs):
        raise InvalidRequest("Tiny stand-in has no variant 'int4'")

    monkeypatch.setattr(cli, "export_model", refused)
    assert cli.main(["tiny", "--models-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: Tiny stand-in has no variant 'int4'\n"


@pytest.mark.parametrize("value", ["1", "on", "YES", "true"])
def test_hf_hub_offline_means_offline_for_export_as_for_serving(monkeypatch, tmp_path, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    with pytest.raises(HubUnreachable, match="HF_HUB_OFFLINE is set"):
        convert.check_hub("stabilityai/sdxl-turbo", tmp_path)


def test_standins_take_the_models_dir_from_the_flag_else_turbo_models_dir(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(standins, "build", lambda folder, verbose: calls.append((folder, verbose)))
    monkeypatch.setenv("TURBO_MODELS_DIR", str(tmp_path / "from-env"))
    assert cli.main(["standins"]) == 0
    assert cli.main(["standins", "--models-dir", str(tmp_path / "flag"), "-v"]) == 0
    assert calls == [(tmp_path / "from-env", False), (tmp_path / "flag", True)]
