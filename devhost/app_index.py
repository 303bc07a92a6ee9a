"""Reads an app's function metadata the way the Functions worker does: names, triggers, bindings, handlers."""

import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func

_indexed: dict[int, list["FunctionSpec"]] = {}


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the app: its name, bindings and the user's handler."""

    name: str
    bindings: tuple[dict[str, Any], ...]
    handler: Callable[..., Any]

    @property
    def trigger(self) -> dict[str, Any]:
        """The function's trigger binding."""
        return next(b for b in self.bindings if b["type"].endswith("Trigger"))

    @property
    def trigger_type(self) -> str:
        """e.g. queueTrigger, timerTrigger, blobTrigger, httpTrigger."""
        return str(self.trigger["type"])


def load_app(spec: str) -> func.FunctionApp:
    """The FunctionApp object named by 'module:attribute'."""
    module_name, _, attribute = spec.partition(":")
    app = getattr(importlib.import_module(module_name), attribute or "app")
    if not isinstance(app, func.FunctionApp):
        raise TypeError(f"{spec} is not an azure.functions.FunctionApp")
    return app


def index(app: func.FunctionApp) -> list[FunctionSpec]:
    """The app's functions; `get_functions()` may run once per app object, so the result is kept."""
    if id(app) not in _indexed:
        _indexed[id(app)] = [
            FunctionSpec(
                name=function.get_function_name(),
                bindings=tuple(json.loads(function.get_function_json())["bindings"]),
                handler=function.get_user_function(),
            )
            for function in app.get_functions()
        ]
    return _indexed[id(app)]


def binding_problems(spec: FunctionSpec) -> list[str]:
    """What the worker would reject at load time: parameter names that are not arg_names, untyped outputs."""
    problems: list[str] = []
    signature = inspect.signature(spec.handler)
    names = {b["name"] for b in spec.bindings}
    params = set(signature.parameters)
    if names != params:
        problems.append(f"{spec.name}: parameters {sorted(params)} differ from binding names {sorted(names)}")
    for binding in spec.bindings:
        if binding.get("direction", "").upper() != "OUT" or binding["name"] == "$return":
            continue
        parameter = signature.parameters.get(binding["name"])
        annotation = getattr(parameter, "annotation", None)
        if getattr(annotation, "__origin__", None) is not func.Out:
            problems.append(f"{spec.name}: output {binding['name']} is not annotated func.Out[...]")
    return problems
