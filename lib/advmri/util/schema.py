"""Parameters declared once: a dataclass field carries type, default, range/choices and help text, and the
command-line options, the YAML validation and the error messages are derived from it::

    @dataclass(frozen=True)
    class Cfg:
        cores: int = option(2, "CPU cores per job", lo=1)

    add_arguments(parser, Cfg)                     # --cores N (default None: "not given")
    cfg = from_mapping(Cfg, yaml_block, "sweep.yaml: slurm")   # one-line errors naming the key
    cfg = replace(cfg, **given(namespace, Cfg))    # command line over YAML over defaults
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from advmri.util.errors import ParameterError, check_choice, check_range, unknown_keys

__all__ = [
    "OneLineParser",
    "option",
    "add_arguments",
    "from_mapping",
    "given",
    "describe",
    "validate",
    "cli_fields",
    "to_argv",
]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`ParameterError` s naming the parameter (one line through
    :func:`advmri.util.errors.cli`, exit status 2), not argparse's usage block."""

    def error(self, message: str) -> typing.NoReturn:
        import re

        m = re.match(r"argument (--[\w-]+)[^:]*: (.*)", message)
        if m:
            raise ParameterError(f"{m[1][2:].replace('-', '_')}: {m[2]}")
        m = re.match(r"the following arguments are required: (--[\w-]+)", message)
        if m:
            raise ParameterError(f"{m[1][2:].replace('-', '_')}: required ({message}; --help lists the options)")
        raise ParameterError(f"command line: {message} (--help lists the options)")


def option(
    default: Any,
    help: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple | None = None,
    flag: str | None = None,
    cli: bool = True,
    many: bool = False,
) -> Any:
    """A dataclass field with its help text and constraints (``flag``: the CLI name if not ``--field-name``;
    ``cli=False``: set only from YAML or code; ``many``: a sequence given as ``--flag A B C`` rather than by
    repeating the flag)."""
    meta = dict(help=help, lo=lo, hi=hi, choices=choices, flag=flag, cli=cli, many=many)
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for a sequence default")
    return dataclasses.field(default=default, metadata=meta)


def _base(tp: Any) -> tuple[type, bool]:
    """``(element type, is a sequence)`` of a field annotation (``X | None`` unwrapped)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _base(args[0])
    if origin in (tuple, list):
        return args[0], True
    return tp, False


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_arguments(
    parser: argparse.ArgumentParser | Any,
    cls: type,
    title: str | None = None,
    skip: frozenset[str] | set[str] = frozenset(),
) -> None:
    """One option per field of ``cls`` (defaults are None, so :func:`given` tells what the user set); fields in
    ``skip`` (already added by another schema sharing them) and ``cli=False`` fields get none."""
    group = parser.add_argument_group(title) if title else parser
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True) or f.name in skip:
            continue
        tp, seq = _base(hints[f.name])
        default = "" if f.default in (None, (), "") else f" (default: {f.default!r})"
        helptext = f"{f.metadata.get('help', '')}{default}".replace("%", "%%")
        if tp is bool:
            group.add_argument(
                _flag(f), dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=helptext
            )
        elif seq and f.metadata.get("many"):
            group.add_argument(
                _flag(f),
                dest=f.name,
                nargs="+",
                type=tp,
                default=None,
                choices=f.metadata.get("choices"),
                metavar=None if f.metadata.get("choices") else "VALUE",
                help=helptext,
            )
        elif seq:
            group.add_argument(
                _flag(f),
                dest=f.name,
                action="append",
                type=tp,
                default=None,
                metavar="VALUE",
                help=helptext + "; repeat for several",
            )
        else:
            group.add_argument(
                _flag(f),
                dest=f.name,
                type=tp,
                default=None,
                choices=f.metadata.get("choices"),
                metavar=None if f.metadata.get("choices") else f.name.upper(),
                help=helptext,
            )


def given(ns: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` set on the command line."""
    return {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if getattr(ns, f.name, None) is not None}


def _coerce(name: str, tp: type, v: Any) -> Any:
    if tp is bool:
        if not isinstance(v, bool):
            raise ParameterError(f"{name}: must be true or false, got {v!r}")
        return v
    if tp is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if tp is str and isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)  # e.g. memory: 8 in YAML
    if not isinstance(v, tp) or (tp is int and isinstance(v, bool)):
        raise ParameterError(f"{name}: must be {tp.__name__}, got {v!r}")
    return v


def validate(obj: Any, where: str = "") -> None:
    """Check every field of a dataclass instance against its declared type and constraints."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        v, name = getattr(obj, f.name), f"{where}{f.name}"
        if v is None:
            continue
        tp, seq = _base(hints[f.name])
        vals = v if seq else [v]
        if seq and not isinstance(v, (tuple, list)):
            raise ParameterError(f"{name}: must be a list, got {v!r}")
        for x in vals:
            _coerce(name, tp, x)
            if f.metadata.get("choices"):
                check_choice(name, x, f.metadata["choices"])
            if f.metadata.get("lo") is not None or f.metadata.get("hi") is not None:
                check_range(name, x, lo=f.metadata.get("lo"), hi=f.metadata.get("hi"), integer=tp is int)


def from_mapping(cls: type, values: dict | None, where: str) -> Any:
    """An instance of ``cls`` from a mapping (a YAML block): unknown keys name the closest field; values
    are type- and range-checked with the key in the message."""
    values = dict(values or {})
    if not isinstance(values, dict):
        raise ParameterError(f"{where}: must be a mapping")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown_keys(values, names, where)
    hints = _hints(cls)
    out = {}
    for k, v in values.items():
        tp, seq = _base(hints[k])
        if v is not None:
            v = (
                tuple(_coerce(f"{where}.{k}", tp, x) for x in (v if isinstance(v, list) else [v]))
                if seq
                else _coerce(f"{where}.{k}", tp, v)
            )
        out[k] = v
    obj = cls(**out)
    validate(obj, f"{where}.")
    return obj


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """``(field, CLI flag, default, help)`` for every field (the reference tables are generated from this)."""
    return [
        (f.name, _flag(f) if f.metadata.get("cli", True) else "", f.default, f.metadata.get("help", ""))
        for f in dataclasses.fields(cls)
    ]


def cli_fields(cls: type) -> list[str]:
    """The fields of ``cls`` that have a command-line option."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]


def to_argv(obj: Any, skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The command-line options that give every option field of the dataclass instance ``obj`` its value (the
    inverse of :func:`add_arguments` + :func:`given`; ``None`` values are left out, as they are the default)."""
    argv: list[str] = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if not f.metadata.get("cli", True) or f.name in skip or v is None:
            continue
        if isinstance(v, bool):
            argv.append(_flag(f) if v else "--no-" + _flag(f)[2:])
        elif isinstance(v, (tuple, list)):
            if f.metadata.get("many"):
                argv += [_flag(f), *map(repr_cli, v)]
            else:
                for x in v:
                    argv += [_flag(f), repr_cli(x)]
        else:
            argv += [_flag(f), repr_cli(v)]
    return argv


def repr_cli(v: Any) -> str:
    """A value as argparse reads it back exactly (``repr`` of a float round-trips)."""
    return repr(v) if isinstance(v, float) else str(v)
