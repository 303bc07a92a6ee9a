"""checkov over infra/, in its own environment (.venv-checkov: checkov pins pycep-parser 0.5.1, older than the
tests'). checkov exits 0 on a file it could not parse, having checked nothing in it: parsing errors fail here."""

import json
import os
import re
import subprocess

import pytest

from tests.infra.templates import INFRA, ROOT, bicep_files

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CUSTOM_CHECK = "CKV_KS_1"  # infra/checkov/storage_shared_key.py: allowSharedKeyAccess is false
SKIP_COMMENT = re.compile(r"//\s*checkov:skip=([A-Z0-9_]+):(.+)$")


@pytest.fixture(scope="module")
def report():
    if not CHECKOV.exists():
        pytest.fail(
            f"{CHECKOV} is missing: run ./dev test, which creates .venv-checkov from infra/checkov/requirements.txt"
        )
    environment = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
    result = subprocess.run(
        [
            str(CHECKOV),
            "--framework",
            "bicep",
            "--skip-download",
            "--directory",
            "infra",
            "--external-checks-dir",
            "infra/checkov",
            "--output",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )
    assert "Cannot load external check" not in result.stderr, result.stderr
    try:
        parsed = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON report (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    reports = parsed if isinstance(parsed, list) else [parsed]
    assert [r.get("check_type") for r in reports] == ["bicep"], "checkov found no Bicep to check"
    return reports[0], result.returncode


def test_checkov_parsed_every_bicep_file(report):
    data, _ = report
    assert data["results"]["parsing_errors"] == [], "checkov (pycep 0.5.1) could not parse these files"
    assert data["summary"]["parsing_errors"] == 0
    assert data["summary"]["resource_count"] > 0


def test_checkov_finds_no_failed_check(report):
    data, exit_code = report
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in data["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert exit_code == 0


def test_the_custom_shared_key_check_ran_and_passed(report):
    data, _ = report
    passed = [c for c in data["results"]["passed_checks"] if c["check_id"] == CUSTOM_CHECK]
    assert passed, f"{CUSTOM_CHECK} did not run: infra/checkov was not loaded"
    assert {c["resource"] for c in passed} == {"Microsoft.Storage/storageAccounts.account"}


def test_every_skipped_check_has_a_reason_and_every_skip_comment_is_used(report, capsys):
    data, _ = report
    skipped = sorted(
        {
            (c["check_id"], c["file_path"].lstrip("/"), c["resource"], c["check_result"].get("suppress_comment", ""))
            for c in data["results"]["skipped_checks"]
        }
    )
    with capsys.disabled():  # shown in every run, -q included
        print(f"\ncheckov: {len(skipped)} checks skipped in infra/, each with its reason:")
        for check_id, path, resource, reason in skipped:
            print(f"  {check_id} {path} {resource}: {reason}")
    for check_id, _, resource, reason in skipped:
        assert len(reason) > 20 and reason != "No comment provided", f"{check_id} on {resource} needs a reason"
    declared = set()
    for path in bicep_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = SKIP_COMMENT.search(line.strip())
            if match:
                declared.add((match.group(1), path.relative_to(INFRA).as_posix()))
    reported = {(check_id, path) for check_id, path, _, _ in skipped}
    assert declared == reported, "a checkov:skip comment that skips nothing (or a skip without its comment)"
