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
        namespace["__init__"] = _init
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
