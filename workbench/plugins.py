"""One registry for every kind of plug-in: strategies, fusion heads, tasks.

A :class:`Registry` maps names to subclasses of one base class. Its decorator checks the class,
sets its ``name`` (unless the class declares one itself and the registry allows that) and files
it; built-in plug-ins live one module each in a package and are imported on the first look-up
of a name not registered yet, so importing the registry costs none of them. A target may also be
a ``"module:Class"`` string, imported on first use. This module imports nothing of the project.

Examples
--------
>>> class Base:
...     name = ""
>>> shapes = Registry("shape", Base)
>>> @shapes.register("circle")
... class Circle(Base):
...     pass
>>> shapes.get("circle") is Circle, Circle.name, shapes.names()
(True, 'circle', ['circle'])
>>> shapes.get("square")
Traceback (most recent call last):
...
ValueError: unknown shape 'square'; choose one of ['circle']
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Names -> subclasses of ``base`` (or ``"module:Class"`` paths), with lazy built-ins.

    Parameters
    ----------
    kind : str
        What is registered, for messages ("strategy", "fusion", "task").
    base : type
        The class every registered class must subclass.
    package : str, optional
        A package whose modules (but ``skip``) are the built-in plug-ins, imported on the first
        miss: the module named like the name looked up first, every module after that.
    skip : iterable of str
        Modules of ``package`` that are not plug-ins (``base``, helpers).
    keep_declared_name : bool
        A class that declares its own ``name`` attribute keeps it (strategies: a subclass may be
        registered under several names).
    """

    def __init__(self, kind: str, base: type, *, package: str | None = None, skip: tuple[str, ...] = (),
                 keep_declared_name: bool = False):
        self.kind, self.base, self.package = kind, base, package
        self.skip = frozenset(skip)
        self.keep_declared_name = keep_declared_name
        self._entries: dict[str, type | str] = {}
        self._all_loaded = package is None

    # -- registering ------------------------------------------------------------------------
    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator filing ``cls`` under ``name`` (replacing an earlier entry of that name)."""

        def deco(cls: T) -> T:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"{self.kind} {name!r} must be a {self.base.__name__} subclass, got {cls!r}")
            if not (self.keep_declared_name and cls.__dict__.get("_name_declared", False)):
                cls.name = name
            self._entries[name] = cls
            return cls

        return deco

    def register_path(self, name: str, target: str) -> None:
        """File a ``"module:Class"`` path under ``name``, imported on first use."""
        module, sep, cls_name = target.partition(":")
        if not sep or not module or not cls_name:
            raise ValueError(f"{self.kind} {name!r}: expected 'module:Class', got {target!r}")
        self._entries[name] = target

    def unregister(self, name: str) -> None:
        """Forget ``name`` (no error if it is not registered)."""
        self._entries.pop(name, None)

    # -- looking up -------------------------------------------------------------------------
    def _builtin_modules(self) -> list[str]:
        package = importlib.import_module(self.package)
        return [i.name for i in pkgutil.iter_modules(package.__path__) if i.name not in self.skip]

    def load_builtins(self, name: str | None = None) -> None:
        """Import the built-in module named ``name`` if there is one, else every built-in module once."""
        if self.package is None:
            return
        modules = self._builtin_modules()
        if name in modules:
            importlib.import_module(f"{self.package}.{name}")
            if name in self._entries:
                return
        if self._all_loaded:
            return
        self._all_loaded = True
        for module in modules:
            importlib.import_module(f"{self.package}.{module}")

    def names(self) -> list[str]:
        """Every registered name (built-ins included), in registration order."""
        self.load_builtins()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        if name not in self._entries and isinstance(name, str):
            self.load_builtins(name)
        return name in self._entries

    def get(self, name: str) -> T:
        """The class registered as ``name``; ``ValueError`` naming the choices when there is none."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {sorted(self.names())}")
        target = self._entries[name]
        if isinstance(target, str):
            module, _, cls_name = target.partition(":")
            target = getattr(importlib.import_module(module), cls_name)
            self._entries[name] = target
        return target  # type: ignore[return-value]
