"""Importing keras without paying for the plotting and notebook packages it imports.

keras imports ``matplotlib.pyplot`` (for ``keras.visualization``) and ``IPython`` (for
notebook display) at its own import when they are installed.  In a child, with a fresh
``MPLCONFIGDIR``, that is over a second of every child's start-up (pyplot builds a font
cache) for packages most submissions never touch.  While keras imports, those packages
are registered with the standard library's ``importlib.util.LazyLoader``: the module
objects exist, and each runs its own code the first time anything reads an attribute of
it.  A submission that plots still gets the real matplotlib, loaded then; keras' own
plotting functions find it the same way.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys

DEFERRED = ("matplotlib", "IPython")


class _LazyFinder(importlib.abc.MetaPathFinder):
    def __init__(self, roots: tuple[str, ...]):
        self.roots = roots

    def find_spec(self, fullname, path, target=None):
        if fullname.partition(".")[0] not in self.roots:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


@contextlib.contextmanager
def deferred_imports(roots: tuple[str, ...] = DEFERRED):
    """Packages under ``roots`` first imported inside this block load when first used."""
    finder = _LazyFinder(roots)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
