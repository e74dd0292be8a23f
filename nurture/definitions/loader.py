"""Read definition files (YAML), validate them, and say precisely what is wrong.

An error names the file, the field path and the problem, e.g.
``no-show.yaml: steps[2].delay: '2 days' is not a delay; write ... like 2d``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from nurture.definitions.sequence import SequenceDefinition

# One model per kind. The marketing workflow engine adds "workflow" here.
DEFINITION_MODELS: dict[str, type[BaseModel]] = {"sequence": SequenceDefinition}
Definition = Union[SequenceDefinition]

_UNION_TAGS = {"email", "call_task", "manual_email_task", "todo_task", "linkedin_connect_task", "linkedin_message_task"}


class DefinitionError(ValueError):
    """One or more problems in one definition file. ``problems`` are full one-line messages."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(problems))


def format_loc(loc: Iterable[Any]) -> str:
    out = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(previous, int) and part in _UNION_TAGS:
            pass  # pydantic names the union member it tried; users never wrote that
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out


def _problems(source: str, exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        msg = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix):]
        path = format_loc(err["loc"])
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check the spelling (see `nurture schema`)"
        if err["type"] == "missing":
            msg = "required field is missing"
        problems.append(f"{source}: {path}: {msg}" if path else f"{source}: {msg}")
    return problems


def parse_definition(data: Any, source: str = "<definition>") -> Definition:
    if not isinstance(data, dict):
        raise DefinitionError(source, [f"{source}: the file must hold a mapping with kind, id, name, ..."])
    kind = data.get("kind")
    model = DEFINITION_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(DEFINITION_MODELS))
        raise DefinitionError(source, [f"{source}: kind: {kind!r} is not a definition kind; use one of: {known}"])
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise DefinitionError(source, _problems(source, exc)) from None


def load_definition_text(text: str, source: str = "<definition>") -> Definition:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError(source, [f"{source}: {where}invalid YAML: {problem}"]) from None
    return parse_definition(data, source)


def load_definition_file(path: str | Path) -> Definition:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DefinitionError(str(path), [f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(str(path), [f"{path}: cannot read: {exc}"]) from None
    return load_definition_text(text, p.name if p.name else str(path))


def definition_json_schema() -> dict[str, Any]:
    """JSON Schema of every definition kind, for editors (``nurture schema``)."""
    schema = TypeAdapter(Definition).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Nurture definition"
    return schema


def definition_body(definition: Definition) -> dict[str, Any]:
    return definition.model_dump(mode="json", exclude_none=False)
