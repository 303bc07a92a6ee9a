"""The Bicep templates in infra/, read with pycep-parser (0.7.x) for the infrastructure tests.

pycep writes an identifier and a string literal alike ('work' and `claimsInboxContainer` are both "..."), so
`resolve` treats a string that names a variable or parameter of the same file as a reference to it.
"""

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = "main.bicep"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"


class Unresolved(str):
    """A value known only at deployment (a parameter without default, an output, a function call)."""

    __slots__ = ()


def bicep_files() -> list[Path]:
    """Every Bicep file under infra/."""
    return sorted(INFRA.rglob("*.bicep"))


@cache
def _parser() -> BicepParser:
    return BicepParser()


@cache
def template(relative: str) -> dict[str, Any]:
    """A parsed template by its path under infra/ (e.g. 'modules/storage.bicep')."""
    return _parser().parse(file_path=INFRA / relative)


def text(relative: str) -> str:
    """A template's source text."""
    return (INFRA / relative).read_text(encoding="utf-8")


def unquote(key: str) -> str:
    """An object key as Bicep means it ('a-b' and a-b are the same key)."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def unwrap(config: Any) -> Any:
    """The body of a resource or module, under its `if (...)` condition or `for` loop."""
    while isinstance(config, dict) and "config" in config and set(config) <= {"config", "condition", "loop_type"}:
        config = config["config"]
    return config


def resources(relative: str, resource_type: str | None = None) -> dict[str, dict[str, Any]]:
    """Resources of a template (symbol -> pycep resource), optionally of one type."""
    found = template(relative).get("resources", {})
    return {name: r for name, r in found.items() if resource_type is None or r["type"] == resource_type}


def body(relative: str, symbol: str) -> dict[str, Any]:
    """A resource's or module's body (name, properties, params ...)."""
    tpl = template(relative)
    entry = tpl.get("resources", {}).get(symbol) or tpl["modules"][symbol]
    return unwrap(entry["config"])


def condition(relative: str, symbol: str) -> Any:
    """A resource's or module's `if (...)` condition, or None."""
    tpl = template(relative)
    entry = tpl.get("resources", {}).get(symbol) or tpl["modules"][symbol]
    config = entry["config"]
    return config.get("condition") if isinstance(config, dict) and set(config) <= {"config", "condition"} else None


def modules(relative: str = MAIN) -> dict[str, dict[str, Any]]:
    """Modules a template deploys (symbol -> pycep module)."""
    return template(relative).get("modules", {})


def module_path(relative: str, symbol: str) -> str:
    """The file (under infra/) a module symbol deploys."""
    base = (INFRA / relative).parent
    return str((base / modules(relative)[symbol]["detail"]["path"]).resolve().relative_to(INFRA))


def resolve(relative: str, value: Any, depth: int = 0) -> Any:
    """A value with the file's variables and parameter defaults substituted where pycep left their names, and
    the few functions the tests need evaluated (concat of arrays, loadTextContent)."""
    tpl = template(relative)
    variables = tpl.get("variables", {})
    parameters = tpl.get("parameters", {})
    if depth > 20:
        raise RecursionError(value)
    if isinstance(value, list):
        return [resolve(relative, v, depth + 1) for v in value]
    if isinstance(value, dict):
        call = function_call(value)
        if call and call[0] == "load_text_content":
            return ((INFRA / relative).parent / call[1]["file_path"]).read_text(encoding="utf-8")
        if call and call[0] == "concat":
            parts = [resolve(relative, part, depth + 1) for part in call[1].values()]
            if all(isinstance(part, list) for part in parts):
                return [item for part in parts for item in part]
        if set(value) <= {"function", "operator", "loop_type", "condition", "config"} and value:
            return Unresolved(json.dumps(value, sort_keys=True))
        return {unquote(k): resolve(relative, v, depth + 1) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    if value in variables:
        return resolve(relative, variables[value]["value"], depth + 1)
    if value in parameters:
        default = parameters[value].get("default")
        return Unresolved(value) if default is None else resolve(relative, default, depth + 1)
    if "${" in value:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            resolved = resolve(relative, name, depth + 1) if name in variables else None
            return resolved if isinstance(resolved, str) and not isinstance(resolved, Unresolved) else match.group(0)

        return re.sub(r"\$\{(\w+)\}", substitute, value)
    return value


def accessor_path(expression: Any) -> list[str]:
    """`a.b.c` or `a::b` as ['a', 'b', 'c']; [] for anything else."""
    if isinstance(expression, str):
        return [expression]
    operator = expression.get("operator") if isinstance(expression, dict) else None
    if not operator or operator["type"] not in ("property_accessor", "nested_resource_accessor"):
        return []
    left = accessor_path(operator["operands"]["operand_1"])
    right = accessor_path(operator["operands"]["operand_2"])
    return left + right if left and right else []


def function_call(expression: Any) -> tuple[str, dict[str, Any]] | None:
    """(function name, parameters) of a function call expression, or None."""
    if isinstance(expression, dict) and "function" in expression:
        return expression["function"]["type"], expression["function"]["parameters"]
    return None


def comment_above(relative: str, symbol: str) -> str:
    """The comment line directly above a resource declaration."""
    lines = text(relative).splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"resource\s+{re.escape(symbol)}\s+'", line):
            above = lines[index - 1].strip() if index else ""
            return above[2:].strip() if above.startswith("//") else ""
    raise LookupError(f"{relative}: no resource {symbol}")
