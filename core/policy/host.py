"""Building the plugin manager, and calling hooks for one province only.

:func:`build_plugin_manager` is the one factory (never run at import time): it adds the hookspecs of
:mod:`aidgraph.core.policy.hookspecs`, registers every plugin of the ``aidgraph`` entry-point group (the core's own default plugin, the built-in
plugins that the aidgraph distribution declares, then third-party distributions: the core imports none of
them by name), and runs ``check_pending()`` so a plugin implementing a hook that does not
exist fails at start-up with its name.

:class:`ProvincePlugins` is the province-scoped caller: its ``hook.<name>`` reaches only the plugins that the
province enables (pluggy's ``subset_hook_caller`` with every other plugin removed). Guangdong's rules can
therefore never apply to a Fujian household, with no ``if province == ...`` anywhere.

:func:`merge_graphql_fields` merges the strawberry Query/Mutation pieces of the core and of plugins and fails
on a duplicate field, naming both contributors.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from aidgraph.core.policy import hookspecs
from aidgraph.core.policy.contract import GraphQLContribution
from aidgraph.core.policy.parameters import ParameterError
from strawberry.utils.str_converters import to_camel_case

if TYPE_CHECKING:  # pragma: no cover
    from aidgraph.core.storage.config import Settings

OWN_DISTRIBUTION = "aidgraph"
"""The distribution whose ``aidgraph`` entry points are the core's and the built-in plugins."""

CORE_PLUGIN_NAMES = ("core.workflow",)
"""The core's own default plugins: always registered and enabled in every province."""



class PluginError(RuntimeError):
    """A plugin that cannot be loaded or that conflicts with another (names the plugin and what is wrong)."""


@dataclass(frozen=True)
class PluginRecord:
    """What ``aidgraph plugins`` lists about one registered plugin."""

    name: str
    version: str
    origin: str  # "core", "built-in" or "entry point <dist>"
    provinces: tuple[str, ...] | None
    description: str


def _distribution_name(ep: importlib.metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return None if dist is None else str(dist.metadata["Name"]).lower().replace("_", "-")


def _group() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME), key=lambda ep: ep.name)


def builtin_plugin_names() -> list[str]:
    """Names of the built-in plugins: the ``aidgraph`` entry points of the aidgraph distribution itself."""
    return [ep.name for ep in _group()
            if _distribution_name(ep) == OWN_DISTRIBUTION and ep.name not in CORE_PLUGIN_NAMES]


def _plugin_name_of(plugin: Any) -> str:
    name = getattr(plugin, "PLUGIN_NAME", None) or getattr(plugin, "__name__", None) or type(plugin).__name__
    return str(name).rsplit(".", 1)[-1]


def build_plugin_manager(settings: Settings | None = None, extra_plugins: Iterable[Any] = (),
                         builtins: Iterable[str] | None = None, entry_points: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the hookspecs, the core and built-in plugins, and third-party plugins.

    Every plugin comes from the ``aidgraph`` entry-point group: the core's own (``core.workflow``, always
    registered), the built-ins that the aidgraph distribution declares (``builtins`` limits them by name;
    default: all) and, when ``entry_points`` is true, those of other distributions. ``extra_plugins``
    (modules or objects; name from ``PLUGIN_NAME`` or the module name) are registered after the built-ins,
    for tests and embedding.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    wanted = None if builtins is None else set(builtins)
    own = [ep for ep in _group() if _distribution_name(ep) == OWN_DISTRIBUTION]
    if not any(ep.name in CORE_PLUGIN_NAMES for ep in own):
        raise PluginError("the aidgraph distribution declares no 'core.workflow' entry point: is aidgraph "
                          "installed (pip install -e .)?")
    for ep in own:
        if ep.name in CORE_PLUGIN_NAMES or wanted is None or ep.name in wanted:
            _register(pm, _load(ep), ep.name)
            _ORIGINS.setdefault(pm, {})[ep.name] = ("core" if ep.name in CORE_PLUGIN_NAMES else "built-in", None)
    for name in sorted((wanted or set()) - {ep.name for ep in own}):
        raise PluginError(f"no built-in plugin is named {name!r}")
    for plugin in extra_plugins:
        _register(pm, plugin, _plugin_name_of(plugin))
    if entry_points:
        for ep in _group():
            dist = _distribution_name(ep)
            if dist == OWN_DISTRIBUTION:
                continue
            if pm.has_plugin(ep.name):
                raise PluginError(f"entry-point plugin {ep.name!r} of {dist} conflicts with a registered one")
            _register(pm, _load(ep), ep.name)
            version = getattr(ep.dist, "version", None) if ep.dist is not None else None
            _ORIGINS.setdefault(pm, {})[ep.name] = (f"entry point ({ep.dist.metadata['Name'] if ep.dist else dist})",
                                           version)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise PluginError(f"plugin {pm.get_name(e.plugin)!r}: {e} (known hooks: "
                          f"{', '.join(hookspecs.HOOK_NAMES)})") from e
    return pm


_ORIGINS: weakref.WeakKeyDictionary[pluggy.PluginManager, dict[str, tuple[str, str | None]]] = (
    weakref.WeakKeyDictionary())
"""plugin manager -> {plugin name: (origin, version)} as registered, for ``aidgraph plugins``."""


def _load(ep: importlib.metadata.EntryPoint) -> Any:
    try:
        return ep.load()
    except Exception as e:  # noqa: BLE001 - re-raised with the plugin's name
        raise PluginError(f"plugin {ep.name!r} cannot be imported: {e}") from e


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    if pm.has_plugin(name):
        raise PluginError(f"two plugins are named {name!r}")
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as e:
        raise PluginError(f"plugin {name!r}: {e}") from e


def plugin_provinces(plugin: Any) -> tuple[str, ...] | None:
    """The provinces a plugin is written for (a province plugin's ``PROVINCES``), or None for any."""
    provinces = getattr(plugin, "PROVINCES", None)
    return tuple(provinces) if provinces else None


def check_enabled(pm: pluggy.PluginManager, province_code: str, enabled: list[str], file: Path) -> None:
    """Every enabled name is a registered plugin, and a province plugin is enabled only in its province."""

    for name in enabled:
        plugin = pm.get_plugin(name)
        if plugin is None:
            known = sorted(n for n, _ in pm.list_name_plugin() if n not in CORE_PLUGIN_NAMES)
            raise ParameterError(file, "plugins.enabled", f"unknown plugin {name!r} (installed: {', '.join(known)})")
        provinces = plugin_provinces(plugin)
        if provinces is not None and province_code not in provinces:
            raise ParameterError(file, "plugins.enabled", f"plugin {name!r} is written for province(s) "
                                                          f"{', '.join(provinces)}, not {province_code}")


class _ScopedHooks:
    def __init__(self, pm: pluggy.PluginManager, removed: list[Any]):
        self._pm = pm
        self._removed = removed
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._cache:
            if not hasattr(self._pm.hook, name):
                raise AttributeError(f"no hook named {name!r}")
            self._cache[name] = self._pm.subset_hook_caller(name, remove_plugins=self._removed)
        return self._cache[name]


class ProvincePlugins:
    """Hook calls that reach only the plugins ``enabled`` for ``province_code`` (plus the core's own)."""

    def __init__(self, pm: pluggy.PluginManager, province_code: str, enabled: Iterable[str]):
        self.pm = pm
        self.province_code = province_code
        self.enabled = tuple(enabled)
        keep = set(self.enabled) | set(CORE_PLUGIN_NAMES)
        self.removed_names = sorted(n for n, _ in pm.list_name_plugin() if n not in keep)
        self.hook = _ScopedHooks(pm, [pm.get_plugin(n) for n in self.removed_names])

    def call_each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Call ``hook_name`` on every enabled plugin, yielding (plugin name, answer) in call order."""
        removed = set(self.removed_names)
        for name, answer in call_each(self.pm, hook_name, **kwargs):
            if name not in removed:
                yield name, answer


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
    """Call every implementation of ``hook_name`` yielding (plugin name, non-None answer), in pluggy's order
    (last registered and ``tryfirst`` first). Used where the caller must know which plugin said what."""
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        args = {a: kwargs[a] for a in impl.argnames}
        answer = impl.function(**args)
        if answer is not None:
            yield impl.plugin_name, answer


def flatten(results: Iterable[list | None]) -> list:
    return [item for result in results for item in (result or [])]


def category_programs(pm: pluggy.PluginManager) -> dict[str, str]:
    """Program key -> low-income category (低收入人口) of every registered program that puts a household in one:
    the plugins' ``Program.category``, the same table the program catalogue's ``category_programs()`` reads."""
    return {p.key: p.category for p in flatten(pm.hook.aidgraph_programs()) if p.category is not None}


def plugin_records(pm: pluggy.PluginManager) -> list[PluginRecord]:
    """Every registered plugin with its version and origin, for ``aidgraph plugins``."""
    try:
        own_version = importlib.metadata.version(OWN_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        own_version = "0+unknown"
    records = []
    for name, plugin in pm.list_name_plugin():
        origin, version = _ORIGINS.get(pm, {}).get(name, ("extra", None))
        if version is None:
            version = own_version if origin == "core" else getattr(plugin, "__version__", own_version)
        doc = (getattr(plugin, "__doc__", None) or "").strip().splitlines()
        summary = doc[0].split(":", 1)[0].strip() if doc else ""
        records.append(PluginRecord(name=name, version=str(version), origin=origin,
                                    provinces=plugin_provinces(plugin), description=summary))
    return sorted(records, key=lambda r: (r.origin != "core", r.name))


def casbin_objects(settings: Settings | None = None, pm: pluggy.PluginManager | None = None
                   ) -> dict[str, frozenset[str]]:
    """The Casbin objects and actions every registered plugin declares (``aidgraph_casbin_objects``), merged.

    Pass the result to :func:`aidgraph.core.access.authz.known_objects` so that policy files may name them.
    """
    pm = pm or build_plugin_manager(settings)
    merged: dict[str, set[str]] = {}
    for answer in pm.hook.aidgraph_casbin_objects():
        for name, actions in answer or []:
            merged.setdefault(name, set()).update(actions)
    return {k: frozenset(v) for k, v in merged.items()}


# --- GraphQL contributions ---------------------------------------------------------------------------------


class DuplicateFieldError(PluginError):
    """Two contributors define the same root field."""


def _field_names(cls: type) -> list[str]:
    definition = getattr(cls, "__strawberry_definition__", None)
    if definition is None:
        raise PluginError(f"{cls!r} is not a strawberry type")
    return [f.graphql_name or to_camel_case(f.python_name) for f in definition.fields]


def graphql_contributions(pm: pluggy.PluginManager) -> list[tuple[str, GraphQLContribution]]:
    """(plugin name, contribution) of every plugin answering ``aidgraph_graphql_fields``."""
    return list(call_each(pm, "aidgraph_graphql_fields"))


def graphql_types(pm: pluggy.PluginManager) -> list[type]:
    return flatten(pm.hook.aidgraph_graphql_types())


def merge_graphql_fields(core_pieces: dict[str, list[tuple[str, type]]],
                         contributions: list[tuple[str, GraphQLContribution]]) -> dict[str, list[type]]:
    """Check and merge root-field pieces: ``{"query": [(contributor, cls)], "mutation": [...]}`` from the core
    plus the plugins' contributions. Returns the classes per root (core first). A root field defined twice is
    a :class:`DuplicateFieldError` naming both contributors."""
    merged: dict[str, list[tuple[str, type]]] = {"query": list(core_pieces.get("query", [])),
                                                 "mutation": list(core_pieces.get("mutation", []))}
    for plugin_name, contribution in contributions:
        for root in ("query", "mutation"):
            cls = getattr(contribution, root)
            if cls is not None:
                merged[root].append((f"plugin {plugin_name}", cls))
    for root, pieces in merged.items():
        owner: dict[str, str] = {}
        for contributor, cls in pieces:
            for name in _field_names(cls):
                if name in owner:
                    raise DuplicateFieldError(f"{root.capitalize()}.{name} is defined by both {owner[name]} and "
                                              f"{contributor}")
                owner[name] = contributor
    return {root: [cls for _, cls in pieces] for root, pieces in merged.items()}
