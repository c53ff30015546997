"""Pickling for worker processes: the script's own functions by reference where workers have them.

cloudpickle sends a function of ``__main__`` by value, and its code without
its file name: a worker's traceback then says ``File "<dynamic-code>"``, with
no source line. Workers started through the fork server or spawned have the
script loaded as their ``__main__`` (its top level, never what its
``__main__`` guard runs; see ``_forkserver``), so a top-level function of the
script travels as its name, its code, what it reads and a copy by value. A
worker uses its own function of that name only if that is the same: same
code, defaults and globals, as far as they can be told from here (a module,
or something imported, by name; a constant, as its value; another such
function of the script, the same way). Otherwise it uses the copy: a function
defined under the guard or since the fork server started, one reading a
global the program has changed since, or one no such test can vouch for (it
reads an array, a model). Lambdas, closures and functions of a script with no
file (``python -c``, stdin, a notebook) go by value, and code that goes by
value keeps its file name too, for the same tracebacks.
"""

from __future__ import annotations

import io
import marshal
import os
import pickle
import sys
import types
from collections import ChainMap
from typing import Any, ClassVar

import cloudpickle

#: What a worker tests its own value against: ``("absent",)``, ``("=",
#: constant)``, ``("module", name)``, ``("named", module, qualname)``, or for
#: a function of the script ``("main", qualname, code, defaults, keyword
#: defaults, ((global name, its token), ...))``.
Token = tuple[Any, ...]

_ABSENT = object()
_SCALARS = (int, float, complex, str, bytes, bool, type(None))
_CONTAINERS = (tuple, list, set, frozenset)
#: Larger containers are not vouched for: their token would double what the
#: copy by value costs to pickle and send.
_MAX_CONSTANT = 256


def dumps(obj: Any) -> bytes:
    """``obj`` pickled for worker processes (see the module's docstring)."""
    stream = io.BytesIO()
    _Pickler(stream, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return stream.getvalue()


def _code(code: types.CodeType) -> tuple[Any, ...]:
    """A code object whole, file name included: cloudpickle's drops it."""
    return marshal.loads, (marshal.dumps(code),)


class _ByValue(cloudpickle.Pickler):  # type: ignore[misc]  # untyped
    """cloudpickle's pickler, keeping the file names of the code it sends."""

    dispatch_table: ClassVar[ChainMap[Any, Any]] = ChainMap(
        {types.CodeType: _code}, cloudpickle.Pickler.dispatch_table
    )


class _Pickler(_ByValue):
    """Sends the script's top-level functions by reference, each with its copy."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is types.FunctionType and obj.__module__ == "__main__":
            token = _reference(obj)
            if token is not None:
                stream = io.BytesIO()
                _ByValue(stream, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
                return _script_function, (token, stream.getvalue())
        return super().reducer_override(obj)


def _script_function(token: Token, by_value: bytes) -> types.FunctionType:
    """In a worker: its own function ``token`` names, if it is the same; else the copy."""
    found = getattr(sys.modules.get("__main__"), token[1], None)
    if _matches(found, token):
        assert isinstance(found, types.FunctionType)
        return found
    copy: types.FunctionType = pickle.loads(by_value)
    return copy


def _reference(fn: types.FunctionType) -> Token | None:
    """The token of a top-level function of the script, if it can go by reference."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if (
        not isinstance(path, str)
        or os.path.normpath(fn.__code__.co_filename) != os.path.normpath(path)
        or not fn.__qualname__.isidentifier()  # a lambda, a nested function, a method
        or getattr(main, fn.__qualname__, None) is not fn
    ):
        return None
    return _function_token(fn, set())


def _function_token(fn: types.FunctionType, seen: set[int]) -> Token | None:
    if fn.__closure__ is not None or fn.__dict__:
        return None
    defaults, kwdefaults = fn.__defaults__, fn.__kwdefaults__
    if not (_constant(defaults) and _constant(kwdefaults)):
        return None
    reads: list[tuple[str, Any]] = []
    if id(fn) not in seen:  # a cycle: its globals are tested where it is met first
        seen.add(id(fn))
        for name in sorted(_names(fn.__code__)):
            token = _token(fn.__globals__.get(name, _ABSENT), seen)
            if token is None:
                return None
            reads.append((name, token))
    return ("main", fn.__qualname__, fn.__code__, defaults, kwdefaults, tuple(reads))


def _names(code: types.CodeType) -> set[str]:
    """Names ``code`` and the code nested in it read: globals, among others."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _token(value: Any, seen: set[int]) -> Token | None:
    """What a worker tests its own value against; ``None`` if nothing can tell."""
    if value is _ABSENT:
        return ("absent",)
    if _constant(value):
        return ("=", value)
    if isinstance(value, types.ModuleType):
        return ("module", value.__name__)
    if type(value) is types.FunctionType and value.__module__ == "__main__":
        return _function_token(value, seen)
    named = isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType))
    module = getattr(value, "__module__", None)
    if named and isinstance(module, str) and module != "__main__":
        return ("named", module, value.__qualname__)
    return None


def _constant(value: Any) -> bool:
    if type(value) in _SCALARS:
        return True
    if type(value) in _CONTAINERS:
        return len(value) <= _MAX_CONSTANT and all(map(_constant, value))
    if type(value) is dict:
        return _constant(tuple(value.items()))
    return False


def _matches(value: Any, token: Token) -> bool:
    """Whether a worker's ``value`` is what ``token`` says the program's is."""
    kind = token[0]
    if kind == "absent":
        return value is _ABSENT
    if kind == "=":
        try:
            return type(value) is type(token[1]) and bool(value == token[1])
        except Exception:  # an array's ambiguous truth, say
            return False
    if kind == "module":
        return isinstance(value, types.ModuleType) and value.__name__ == token[1]
    if kind == "named":
        names = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
        return names == token[1:]
    _, qualname, code, defaults, kwdefaults, reads = token
    return (
        type(value) is types.FunctionType
        and value.__qualname__ == qualname
        and value.__code__ == code
        and value.__closure__ is None
        and not value.__dict__
        and _matches(value.__defaults__, ("=", defaults))
        and _matches(value.__kwdefaults__, ("=", kwdefaults))
        and all(_matches(value.__globals__.get(name, _ABSENT), t) for name, t in reads)
    )
