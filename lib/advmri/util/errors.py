"""Errors a user can fix, and the CLI convention for them.

Every bad input raises a :class:`UserError` (a ``ValueError``) whose message starts with the file or
parameter it is about: ``"<file or parameter>: <problem>"``. The CLIs print it as one line,
``error: <message>``, and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import difflib
import math
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol


class UserError(ValueError):
    """A bad input (parameter, file, configuration). The message names it."""

    fix = "Read the named file or parameter in the message; every subclass below says more."


class DiskFullError(UserError):
    """No space left where a result is written; the message names the path and the bytes needed."""

    fix = (
        "Free space on the named file system (or write elsewhere) and run the same command again; "
        "completed runs are kept."
    )


class ParameterError(UserError):
    """A parameter value outside its valid range, or an unknown parameter."""

    fix = (
        "Change the named parameter (on the command line, in the sweep YAML or the notebook's parameters cell) "
        "to one of the values the message lists."
    )


def did_you_mean(name: str, valid: Iterable[str], list_valid: bool = True) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, else a list of the valid names (``list_valid``: a
    caller whose message already lists them passes False and gets nothing)."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    close = close or [v for v in valid if len(name) >= 3 and (v.startswith(name) or name.startswith(v))][:1]
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (valid: {', '.join(valid)})" if list_valid else ""


def unknown_keys(keys: Iterable[str], valid: Iterable[str], where: str) -> None:
    """Raise naming the first key not in ``valid``, with the closest valid name."""
    valid = list(valid)
    for k in keys:
        if k not in valid:
            raise ParameterError(f"{where}: unknown key {k!r}{did_you_mean(str(k), valid)}")


def _num(name: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ParameterError(f"{name}: must be a number, got {v!r}")
    if not math.isfinite(v):
        raise ParameterError(f"{name}: must be finite, got {v}")
    return float(v)


def check_range(
    name: str, v: object, lo: float | None = None, hi: float | None = None, lo_open: bool = False, integer: bool = False
) -> None:
    """``lo <= v <= hi`` (``lo < v`` with ``lo_open``), finite, an int when ``integer``."""
    if integer and (isinstance(v, bool) or not isinstance(v, int)):
        raise ParameterError(f"{name}: must be an integer, got {v!r}")
    x = _num(name, v)
    if lo is not None and (x <= lo if lo_open else x < lo):
        raise ParameterError(f"{name}: must be {'>' if lo_open else '>='} {lo:g}, got {v}")
    if hi is not None and x > hi:
        raise ParameterError(f"{name}: must be <= {hi:g}, got {v}")


def check_choice(name: str, v: object, choices: Sequence[object]) -> None:
    """Raise :class:`ParameterError` naming ``name`` when ``v`` is not one of ``choices`` (with the closest one)."""
    if v not in choices:
        raise ParameterError(
            f"{name}: {v!r} is not one of {', '.join(map(repr, choices))}"
            + (did_you_mean(v, map(str, choices), list_valid=False) if isinstance(v, str) else "")
        )


PROG: dict[str, str] = {}  # module -> program name, set by the ``advmri`` console script (advmri.app.cli)


def prog(module: str) -> str:
    """The program name a CLI's ``--help`` shows: ``advmri <command>`` when called through the ``advmri`` console
    script, else ``python -m <module>``."""
    return PROG.get(module) or f"python -m {module}"


def one_line(e: BaseException) -> str:
    """The message of ``e`` on one line (whitespace collapsed), as the CLIs print it."""
    return " ".join(str(e).split())


class CliMain(Protocol):
    """A CLI entry point as :func:`cli` returns it: ``main()`` reads ``sys.argv``, ``main(argv)`` the given list."""

    def __call__(self, argv: list[str] | None = None) -> int: ...


def cli(main: Callable[[list[str] | None], int]) -> CliMain:
    """Wrap a CLI ``main(argv)``: a :class:`UserError` (or a missing file) becomes one line on stderr and
    exit status 2; any other exception one line and status 1. ``--debug`` re-raises (full traceback)."""

    def wrapped(argv: list[str] | None = None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        debug = "--debug" in argv
        argv = [a for a in argv if a != "--debug"]
        try:
            return main(argv)
        except (UserError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError) as e:
            if debug:
                raise
            msg = one_line(e)
            if isinstance(e, OSError) and e.filename and str(e.filename) not in msg:
                msg = f"{e.filename}: {msg}"
            print(f"error: {msg}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except Exception as e:  # noqa: BLE001 - a one-line report, the traceback with --debug
            if debug:
                raise
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(
                f"error: internal error {e.__class__.__name__}: {one_line(e)} "
                f"(at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}; --debug shows the traceback)",
                file=sys.stderr,
            )
            return 1

    wrapped.__doc__, wrapped.__name__ = main.__doc__, main.__name__
    return wrapped
