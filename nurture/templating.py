"""Personalization tokens for email subjects and bodies.

Templates are Jinja, rendered in a sandbox::

    Hi {{ contact.firstname | default("there") }},
    Hi {{ contact.firstname or "there" }},          (same thing)
    {{ sender.name }} from {{ company.name }}

Only the names in ``ALLOWED_ROOTS`` may be referenced. Context values are
plain dicts of properties (``{"contact": {"firstname": "Ada"}}``).

Missing values, HubSpot style: a property that is absent, ``None`` or a blank
string counts as missing. With a fallback (``| default(...)`` or ``or``) the
fallback is used; without one the token renders as
``[[MISSING TOKEN - CONTACT.FIRSTNAME]]`` and its dotted name is listed in
``Rendered.missing`` so the caller can refuse to send.

Pure functions, no I/O. Errors are ``ValueError`` subclasses:
``TemplateSyntaxProblem`` (invalid template, also raised by ``render``),
``TemplateRenderProblem`` (failure while rendering) and its subclass
``TemplateSecurityProblem`` (sandbox violation).
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing as _jinja_missing

__all__ = [
    "ALLOWED_ROOTS",
    "Rendered",
    "TemplateRenderProblem",
    "TemplateSecurityProblem",
    "TemplateSyntaxProblem",
    "check_template",
    "missing_marker",
    "render",
]

ALLOWED_ROOTS: tuple[str, ...] = (
    "contact",
    "company",
    "sender",
    "deal",
    "ticket",
    "enrollment",
    "unsubscribe_url",
)

# Limits on operators a template author could use to exhaust worker memory/CPU.
_MAX_SEQUENCE_RESULT = 100_000  # items/characters produced by "*"
_MAX_POWER_BITS = 100_000  # approximate size of an integer produced by "**"


class TemplateSyntaxProblem(ValueError):
    """The template is invalid; ``problems`` holds "line N: ..." messages."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid template: " + "; ".join(self.problems))


class TemplateRenderProblem(ValueError):
    """Rendering failed (e.g. arithmetic on a missing value)."""


class TemplateSecurityProblem(TemplateRenderProblem):
    """The template tried something the sandbox forbids (e.g. ``__class__``)."""


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: tuple[str, ...]
    """Dotted names of tokens rendered without a value or fallback, in order of
    first appearance, e.g. ``("contact.firstname",)``."""


def missing_marker(name: str) -> str:
    """The text a missing token renders as: ``[[MISSING TOKEN - CONTACT.FIRSTNAME]]``."""
    return f"[[MISSING TOKEN - {name.upper()}]]"


# ------------------------------------------------------------------ public API


def check_template(source: str) -> list[str]:
    """Problems with ``source`` as "line N: ..." strings; an empty list means OK.

    Reports Jinja syntax errors (Jinja stops at the first), references to names
    other than ``ALLOWED_ROOTS``, access to ``_private`` attributes, and
    ``{% include %}``/``{% extends %}``/``{% import %}`` (there is no loader).
    """
    return list(_compile(source, False).problems)


def render(source: str, context: Mapping[str, Any], *, html: bool = False) -> Rendered:
    """Render ``source`` with ``context``.

    ``html=True`` turns on autoescaping (for HTML bodies); leave it off for
    subjects and plain-text bodies. Keys of ``context`` outside
    ``ALLOWED_ROOTS`` are ignored. Raises ``TemplateSyntaxProblem`` if
    ``check_template`` would report anything, ``TemplateRenderProblem`` /
    ``TemplateSecurityProblem`` if rendering fails.
    """
    if not isinstance(context, Mapping):
        raise TypeError(f"context must be a mapping, got {type(context).__name__}")
    compiled = _compile(source, bool(html))
    if compiled.template is None:
        raise TemplateSyntaxProblem(compiled.problems)

    recorded: list[str] = []
    token = _missing_recorder.set(recorded)
    try:
        text = compiled.template.render(_template_variables(context))
    except SecurityError as exc:
        raise TemplateSecurityProblem(_runtime_message(exc)) from exc
    except Exception as exc:
        # Anything raised while evaluating template expressions is a template
        # problem (bad arithmetic, calling a missing value, ...), not a bug here.
        raise TemplateRenderProblem(_runtime_message(exc)) from exc
    finally:
        _missing_recorder.reset(token)
    return Rendered(text=text, missing=tuple(recorded))


# ------------------------------------------------------------ missing tokens

# Per-render list of missing token names. A ContextVar keeps concurrent renders
# (threads or asyncio tasks) apart without any shared mutable state.
_missing_recorder: ContextVar[list[str] | None] = ContextVar("nurture_missing_tokens", default=None)


class _MissingToken(Undefined):
    """Undefined that knows its dotted path and records itself when rendered.

    Recording happens in ``__str__`` only, so a token consumed by a fallback
    (``default``, ``or``, ``{% if %}``) is not reported as missing.
    """

    __slots__ = ("_path",)

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = _jinja_missing,
        name: str | None = None,
        exc: type[Exception] = UndefinedError,
    ) -> None:
        if isinstance(obj, _MissingToken) and obj._is_violation:
            # Whatever is derived from a blocked access stays blocked.
            hint, exc = obj._undefined_hint, obj._undefined_exception
        super().__init__(hint, obj, name, exc)  # type: ignore[arg-type]
        self._path = _child_path(obj, name)

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        return f"token {self._path!r} has no value and no fallback"

    @property
    def _is_violation(self) -> bool:
        # The sandbox builds its "unsafe attribute" result with exc=SecurityError.
        return self._undefined_exception is not UndefinedError

    def __str__(self) -> str:
        if self._is_violation:
            self._fail_with_undefined_error()
        recorded = _missing_recorder.get()
        if recorded is not None and self._path not in recorded:
            recorded.append(self._path)
        return missing_marker(self._path)

    def __getattr__(self, name: str) -> Any:
        # Chain so that contact.address.city reports "contact.address.city"
        # instead of failing on the missing "address".
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        if self._is_violation:
            self._fail_with_undefined_error()
        return type(self)(obj=self, name=name)

    def __getitem__(self, key: Any) -> Any:
        if self._is_violation:
            self._fail_with_undefined_error()
        return type(self)(obj=self, name=key)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # contact.firstname.title() on a missing firstname: the last segment was
        # a method name, so report the value it was called on.
        if self._is_violation:
            self._fail_with_undefined_error()
        if isinstance(self._undefined_obj, _MissingToken):
            return self._undefined_obj
        return self

    def __repr__(self) -> str:
        return f"MissingToken({self._path!r})"


def _child_path(parent: Any, name: Any) -> str:
    segment = "?" if name is None else str(name)
    if isinstance(parent, (_Props, _MissingToken)):
        return f"{parent._path}.{segment}"
    return segment


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Props(Mapping[str, Any]):
    """Read-only view of a property dict that knows its dotted path."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self._data = data
        self._path = path

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        if isinstance(value, Mapping) and not isinstance(value, _Props):
            return _Props(value, f"{self._path}.{key}")
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(dict(self._data))


def _template_variables(context: Mapping[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for root in ALLOWED_ROOTS:
        # A root left out renders as a missing token via the environment.
        if root not in context or _is_blank(context[root]):
            continue
        value = context[root]
        variables[root] = _Props(value, root) if isinstance(value, Mapping) else value
    return variables


# --------------------------------------------------------------- environment


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """``default`` that also treats None and blank strings as missing.

    0 and False stay values (a numeric property of 0 is real data); pass
    ``boolean=True`` for Jinja's "any falsy value" behaviour.
    """
    if isinstance(value, Undefined) or _is_blank(value) or (boolean and not value):
        return default_value
    return value


class _TokenEnvironment(ImmutableSandboxedEnvironment):
    """Sandbox where property dicts expose properties, never dict methods."""

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, _Props):
            return self._property(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, _Props):
            return self._property(obj, argument)
        return super().getitem(obj, argument)

    def _property(self, props: _Props, key: Any) -> Any:
        try:
            value = props[key]
        except (KeyError, TypeError):
            if isinstance(key, str) and key.startswith("_"):
                # Keep the sandbox's rule: underscore names are off limits.
                return self.unsafe_undefined(props, key)
            return self.undefined(obj=props, name=key)
        if _is_blank(value):
            return self.undefined(obj=props, name=key)
        return value

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, (str, list, tuple))
                    and isinstance(count, int)
                    and len(seq) * count > _MAX_SEQUENCE_RESULT
                ):
                    raise SecurityError(f"'*' would produce more than {_MAX_SEQUENCE_RESULT} items")
        elif operator == "**":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and right > 0
                and max(abs(left).bit_length(), 1) * right > _MAX_POWER_BITS
            ):
                raise SecurityError("'**' result would be too large")
        return super().call_binop(context, operator, left, right)


@functools.lru_cache(maxsize=2)
def _environment(html: bool) -> _TokenEnvironment:
    env = _TokenEnvironment(
        autoescape=html,
        undefined=_MissingToken,
        keep_trailing_newline=True,  # an email body's final newline is content
    )
    # Templates may only see ALLOWED_ROOTS; drop range/dict/lipsum/cycler/...
    env.globals.clear()
    env.filters["default"] = _default
    env.filters["d"] = _default
    return env


@dataclass(frozen=True)
class _Compiled:
    template: Any  # jinja2.Template, or None when there are problems
    problems: tuple[str, ...]


@functools.lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> _Compiled:
    if not isinstance(source, str):
        raise TypeError(f"template source must be a str, got {type(source).__name__}")
    env = _environment(html)
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        return _Compiled(None, (_syntax_message(exc),))

    try:
        # Both steps generate code, which is where unknown filters/tests surface.
        problems = _static_problems(ast)
        if problems:
            return _Compiled(None, tuple(problems))
        template = env.from_string(ast)
    except TemplateSyntaxError as exc:
        return _Compiled(None, (_syntax_message(exc),))
    return _Compiled(template, ())


def _syntax_message(exc: TemplateSyntaxError) -> str:
    return f"line {exc.lineno}: {exc.message or 'syntax error'}"


def _static_problems(ast: nodes.Template) -> list[str]:
    found: list[tuple[int, str]] = []

    unknown = meta.find_undeclared_variables(ast) - set(ALLOWED_ROOTS)
    allowed = ", ".join(ALLOWED_ROOTS)
    for name_node in ast.find_all(nodes.Name):
        if name_node.ctx == "load" and name_node.name in unknown:
            found.append(
                (name_node.lineno, f"unknown name {name_node.name!r}; tokens must start with one of: {allowed}")
            )

    for attr_node in ast.find_all(nodes.Getattr):
        if attr_node.attr.startswith("_"):
            found.append((attr_node.lineno, f"access to {attr_node.attr!r} is not allowed"))
    for item_node in ast.find_all(nodes.Getitem):
        arg = item_node.arg
        if isinstance(arg, nodes.Const) and isinstance(arg.value, str) and arg.value.startswith("_"):
            found.append((item_node.lineno, f"access to {arg.value!r} is not allowed"))

    tags: tuple[tuple[type[nodes.Node], str], ...] = (
        (nodes.Extends, "extends"),
        (nodes.Include, "include"),
        (nodes.Import, "import"),
        (nodes.FromImport, "from ... import"),
    )
    for node_type, tag in tags:
        for tag_node in ast.find_all(node_type):
            found.append((tag_node.lineno, f"{{% {tag} %}} is not supported"))

    # One message per (line, problem), in source order.
    unique = sorted(set(found), key=lambda item: (item[0], found.index(item)))
    return [f"line {lineno}: {message}" for lineno, message in unique]


def _runtime_message(exc: BaseException) -> str:
    # Jinja rewrites tracebacks so template frames carry the template's line.
    lineno = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>":
            lineno = frame.lineno
    detail = str(exc) or type(exc).__name__
    return f"line {lineno}: {detail}" if lineno is not None else detail
