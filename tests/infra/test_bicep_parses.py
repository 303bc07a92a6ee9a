"""Every Bicep file in infra/ parses with pycep-parser 0.7.x (neither Bicep nor azd can be installed here)."""

from importlib.metadata import version

import pytest

from tests.infra.templates import INFRA, bicep_files, template


def test_pycep_parser_is_the_pinned_0_7_line():
    assert version("pycep-parser").startswith("0.7.")


def test_there_is_a_main_template_and_modules():
    names = {path.relative_to(INFRA).as_posix() for path in bicep_files()}
    assert "main.bicep" in names
    assert any(name.startswith("modules/") for name in names)


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path):
    parsed = template(path.relative_to(INFRA).as_posix())
    assert parsed.get("resources") or parsed.get("modules"), f"{path} declares nothing"


def test_every_module_the_main_template_deploys_is_a_local_file():
    main = template("main.bicep")
    for symbol, module in main["modules"].items():
        assert module["type"] == "local", f"{symbol}: registry modules hide their resources from checkov"
        assert (INFRA / module["detail"]["path"]).is_file(), symbol
