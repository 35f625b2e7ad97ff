"""Record classes: fields declared as annotations, like dataclasses.

    @struct
    class Attr:
        name: str
        kind: str
        default: Any = None

gives `Attr(name, kind, default=None)` (positional or keyword), a readable
repr, `__match_args__` for `match`, and by default immutability and
equality and hashing over the fields.  `struct(compare=False)` keeps
identity equality; `struct(frozen=False)` allows assignment; fields named
in `uncompared` are left out of equality, hashing and repr (a node's
source span).

Why not `dataclasses`: it generates and compiles each class's methods
when the module is imported, and imports `inspect`, which together cost
about a fifth of `bp -c "print 1"`.  Here the methods are shared and
nothing is compiled.  Imports nothing.
"""
from __future__ import annotations

_MISSING = object()
_set = object.__setattr__


def struct(cls=None, /, *, frozen: bool = True, compare: bool = True, slots: bool = True,
           uncompared: tuple[str, ...] = (), weakref: bool = False):
    def wrap(cls):
        return _make(cls, frozen, compare, slots, uncompared, weakref)
    return wrap if cls is None else wrap(cls)


def _make(cls, frozen, compare, slots, uncompared, weakref):
    own = tuple(cls.__dict__.get("__annotations__", {}))
    inherited = tuple(n for base in cls.__bases__ for n in getattr(base, "_fields", ()))
    names = inherited + own
    defaults = {}
    for base in cls.__bases__:
        defaults.update(getattr(base, "_defaults", {}))
    for name in own:
        if name in cls.__dict__:
            defaults[name] = cls.__dict__[name]
    namespace = {k: v for k, v in cls.__dict__.items()
                 if k not in own and k not in ("__dict__", "__weakref__")}
    if slots:
        namespace["__slots__"] = own + (("__weakref__",) if weakref else ())
    else:
        namespace.update(defaults)
    compared = tuple(n for n in names if n not in uncompared)
    namespace.update(_fields=names, _defaults=defaults, _compared=compared,
                     __match_args__=names, __reduce__=_reduce)
    if "__init__" not in cls.__dict__:      # a hot class may write its own, faster one
        arity = _BY_ARITY.get(len(names)) if not defaults else None
        namespace["__init__"] = _init if arity is None else arity(*names)
    if "__repr__" not in cls.__dict__:
        namespace["__repr__"] = _repr
    if frozen:
        namespace["__setattr__"] = _frozen_setattr
        namespace["__delattr__"] = _frozen_setattr
    if compare:
        namespace["__eq__"] = _eq
        namespace["__hash__"] = _hash if frozen else None
    new = type(cls)(cls.__name__, cls.__bases__, namespace)
    new.__qualname__ = cls.__qualname__
    return new


def _init(self, *args, **kwargs):
    fields = self._fields
    if len(args) > len(fields):
        raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, got {len(args)}")
    for name, value in zip(fields, args):
        _set(self, name, value)
    for name in fields[len(args):]:
        value = kwargs.pop(name, _MISSING)
        if value is _MISSING:
            value = self._defaults.get(name, _MISSING)
            if value is _MISSING:
                raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
        _set(self, name, value)
    if kwargs:
        raise TypeError(f"{type(self).__name__}() got unexpected arguments {sorted(kwargs)}")


# The __init__ of a class without defaults, by its number of fields: quick when
# every field is given positionally (as the parser builds its nodes and spans);
# any other call goes to _init, for its checks and messages.  Half the time of
# _init's loop, which a parse spends on every node and span.
_M = _MISSING


def _given(*args) -> list:
    return [a for a in args if a is not _M]


def _init1(f0):
    def __init__(self, a=_M, /, *more, **kwargs):
        if a is _M or more or kwargs:
            return _init(self, *_given(a), *more, **kwargs)
        _set(self, f0, a)
    return __init__


def _init2(f0, f1):
    def __init__(self, a=_M, b=_M, /, *more, **kwargs):
        if b is _M or more or kwargs:
            return _init(self, *_given(a, b), *more, **kwargs)
        _set(self, f0, a)
        _set(self, f1, b)
    return __init__


def _init3(f0, f1, f2):
    def __init__(self, a=_M, b=_M, c=_M, /, *more, **kwargs):
        if c is _M or more or kwargs:
            return _init(self, *_given(a, b, c), *more, **kwargs)
        _set(self, f0, a)
        _set(self, f1, b)
        _set(self, f2, c)
    return __init__


def _init4(f0, f1, f2, f3):
    def __init__(self, a=_M, b=_M, c=_M, d=_M, /, *more, **kwargs):
        if d is _M or more or kwargs:
            return _init(self, *_given(a, b, c, d), *more, **kwargs)
        _set(self, f0, a)
        _set(self, f1, b)
        _set(self, f2, c)
        _set(self, f3, d)
    return __init__


def _init5(f0, f1, f2, f3, f4):
    def __init__(self, a=_M, b=_M, c=_M, d=_M, e=_M, /, *more, **kwargs):
        if e is _M or more or kwargs:
            return _init(self, *_given(a, b, c, d, e), *more, **kwargs)
        _set(self, f0, a)
        _set(self, f1, b)
        _set(self, f2, c)
        _set(self, f3, d)
        _set(self, f4, e)
    return __init__


_BY_ARITY = {1: _init1, 2: _init2, 3: _init3, 4: _init4, 5: _init5}


def _reduce(self):
    return type(self), tuple(getattr(self, name) for name in self._fields)


def _frozen_setattr(self, name, value=None):
    raise AttributeError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")


def _values(self) -> tuple:
    return tuple(getattr(self, name) for name in self._compared)


def _eq(self, other):
    if type(other) is not type(self):
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self):
    return hash((type(self).__name__, *_values(self)))


def _repr(self) -> str:
    inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._compared)
    return f"{type(self).__name__}({inner})"
