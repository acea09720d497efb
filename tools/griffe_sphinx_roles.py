"""Griffe extension for the docs build: Sphinx roles in docstrings become cross-references.

Docstrings written for ``help()`` and Sphinx say ``:class:`~sersk.AudioLoader```; mkdocstrings
renders Markdown, where that role would show as literal text. Before rendering, each role becomes
a link to the object's entry in the API reference (an optional mkdocs-autorefs reference: a target
the site does not document, e.g. an object of another library, stays plain code).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj):`(~?)([\w.]+)`")


def _lookup(package: griffe.Module, path: str) -> griffe.Object | griffe.Alias | None:
    if path != package.path and not path.startswith(package.path + "."):
        return None
    try:
        found = package.modules_collection[path]
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return found


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`name``` in the docstrings of a package to autorefs cross-references."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        exports = {}
        if pkg.path == "sersk":  # the package's public names live in submodules, re-exported lazily
            import sersk

            exports = {f"sersk.{name}": f"sersk.{module}.{name}" for name, module in sersk._EXPORTS.items()}
        for obj in _walk(pkg):
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = ROLE.sub(lambda m: self._reference(m, obj, pkg, exports), obj.docstring.value)

    @staticmethod
    def _reference(match: re.Match, obj: griffe.Object, pkg: griffe.Module, exports: dict[str, str]) -> str:
        short, name = match[1] == "~", match[2]
        title = name.rsplit(".", 1)[-1] if short else name
        scopes = [s for s in (obj, obj.parent, obj.module) if s is not None]
        for candidate in [exports.get(name, name), *(f"{s.path}.{name}" for s in scopes)]:
            found = _lookup(pkg, candidate)
            if found is not None:
                target = found.target_path if isinstance(found, griffe.Alias) else found.path
                return f'<autoref identifier="{target}" optional><code>{title}</code></autoref>'
        return f"`{title}`"


def _walk(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not isinstance(member, griffe.Alias):
            yield from _walk(member)
