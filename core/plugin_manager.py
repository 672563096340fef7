"""Building the plugin manager, and calling hooks for one province only.

:func:`build_plugin_manager` is the one factory (never run at import time): it adds the hookspecs of
:mod:`core.hookspecs`, registers the core's own default plugin and the built-in plugins (every package under
``plugins/``, found by name so the core never imports them statically), loads third-party plugins from the
``aidgraph`` entry-point group, and runs ``check_pending()`` so a plugin implementing a hook that does not
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
import importlib.util
import pkgutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from core import hookspecs

if TYPE_CHECKING:  # pragma: no cover
    from core.config import Settings

BUILTIN_PACKAGE = "plugins"
"""Where the built-in plugins live: one package per aid domain or province variant."""

CORE_PLUGIN_NAMES = ("core.workflow",)
"""The core's own default plugins: always registered and enabled in every province."""

EXCLUDED_BUILTINS: tuple[str, ...] = ()


class PluginError(RuntimeError):
    """A plugin that cannot be loaded or that conflicts with another (names the plugin and what is wrong)."""


@dataclass(frozen=True)
class GraphQLContribution:
    """Root-field pieces a plugin adds to the schema: strawberry ``@strawberry.type`` classes."""

    query: type | None = None
    mutation: type | None = None


@dataclass(frozen=True)
class PluginRecord:
    """What ``aidgraph plugins`` lists about one registered plugin."""

    name: str
    version: str
    origin: str  # "core", "built-in" or "entry point <dist>"
    provinces: tuple[str, ...] | None
    description: str


def builtin_plugin_names() -> list[str]:
    """Names of the packages under ``plugins/`` (the built-in plugins), found without importing them."""
    spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return []
    names = [m.name for m in pkgutil.iter_modules(list(spec.submodule_search_locations)) if m.ispkg]
    return sorted(n for n in names if not n.startswith("_") and n not in EXCLUDED_BUILTINS)


def _plugin_name_of(plugin: Any) -> str:
    name = getattr(plugin, "PLUGIN_NAME", None) or getattr(plugin, "__name__", None) or type(plugin).__name__
    return str(name).rsplit(".", 1)[-1]


def build_plugin_manager(settings: Settings | None = None, extra_plugins: Iterable[Any] = (),
                         builtins: Iterable[str] | None = None, entry_points: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the hookspecs, the core and built-in plugins, and third-party plugins.

    ``extra_plugins`` (modules or objects; name from ``PLUGIN_NAME`` or the module name) are registered after
    the built-ins, for tests and embedding. ``builtins`` limits the built-in packages (default: all).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    from core import enrollment  # the workflow's own parameters are declared like any plugin's

    pm.register(enrollment.WorkflowPlugin(), name="core.workflow")
    for name in builtin_plugin_names() if builtins is None else builtins:
        try:
            module = importlib.import_module(f"{BUILTIN_PACKAGE}.{name}")
        except Exception as e:  # noqa: BLE001 - re-raised with the plugin's name
            raise PluginError(f"built-in plugin {name!r} cannot be imported: {e}") from e
        _register(pm, module, name)
    for plugin in extra_plugins:
        _register(pm, plugin, _plugin_name_of(plugin))
    if entry_points:
        try:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
        except ValueError as e:
            raise PluginError(f"entry-point plugin conflicts with a registered one: {e}") from e
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise PluginError(f"plugin {pm.get_name(e.plugin)!r}: {e} (known hooks: "
                          f"{', '.join(hookspecs.HOOK_NAMES)})") from e
    return pm


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
    from core.parameters import ParameterError

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


def plugin_records(pm: pluggy.PluginManager) -> list[PluginRecord]:
    """Every registered plugin with its version and origin, for ``aidgraph plugins``."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    try:
        own_version = importlib.metadata.version("aidgraph")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        own_version = "0+unknown"
    records = []
    for name, plugin in pm.list_name_plugin():
        dist = dists.get(id(plugin))
        if dist is not None:
            version, origin = dist.version, f"entry point ({dist.project_name})"
        elif name in CORE_PLUGIN_NAMES:
            version, origin = own_version, "core"
        else:
            version, origin = getattr(plugin, "__version__", own_version), "built-in"
        doc = (getattr(plugin, "__doc__", None) or "").strip().splitlines()
        summary = doc[0].split(":", 1)[0].strip() if doc else ""
        records.append(PluginRecord(name=name, version=str(version), origin=origin,
                                    provinces=plugin_provinces(plugin), description=summary))
    return sorted(records, key=lambda r: (r.origin != "core", r.name))


# --- GraphQL contributions ---------------------------------------------------------------------------------


class DuplicateFieldError(PluginError):
    """Two contributors define the same root field."""


def _field_names(cls: type) -> list[str]:
    from strawberry.utils.str_converters import to_camel_case

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
