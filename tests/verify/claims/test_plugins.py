"""Plugins (issues 23, 24): a module in the current folder is found, a plugin that claims a built-in ID or
calls sys.exit is refused with one line naming it."""

import pytest

from logitrank.verify.claims import _check_api as api
from logitrank.verify.claims._registry import load_plugin, unregister


def test_a_module_in_the_current_folder_is_found(tmp_path, monkeypatch):
    (tmp_path / "here_claims.py").write_text(
        "from logitrank.verify import ClaimResult, register\n"
        "@register('HERE1', statement='found beside the command')\n"
        "def check(config):\n    return ClaimResult('HERE1', 'holds')\n")
    monkeypatch.chdir(tmp_path)
    try:
        load_plugin("here_claims")
        assert "HERE1" in api._CHECKS
    finally:
        unregister("HERE1")


def test_a_plugin_claiming_a_built_in_id_is_refused_naming_it(tmp_path):
    plugin = tmp_path / "steal_t3.py"
    plugin.write_text("from logitrank.verify import ClaimResult, register\n"
                      "@register('T3')\ndef check(config):\n    return ClaimResult('T3', 'holds')\n")
    before = api._CHECKS["T3"].fn
    with pytest.raises(ValueError, match=r"plugin '.*steal_t3.py' could not be loaded: .*claim T3 already has a check"):
        load_plugin(str(plugin))
    assert api._CHECKS["T3"].fn is before  # the built-in check stays


def test_a_plugin_calling_sys_exit_is_an_error_not_a_silent_exit(tmp_path):
    plugin = tmp_path / "quits.py"
    plugin.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(ValueError, match=r"plugin '.*quits.py' called sys.exit\(3\) while loading"):
        load_plugin(str(plugin))
