"""The personal-data scan over everything the test run logged."""

from pathlib import Path

from shared.personal_data import CPR_SHAPED


def scan(folder: Path) -> list[str]:
    """Every CPR-shaped string in the files under folder, as 'file:line: match' (the match masked)."""
    findings = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                for match in CPR_SHAPED.finditer(line):
                    masked = match.group()[:2] + "*" * (len(match.group()) - 2)
                    findings.append(f"{path.name}:{number}: {masked}")
    return findings
