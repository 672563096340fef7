"""Loading a province from ``province_configs/<code>/``: its enabled plugins and validated parameter files.

Separate from the pure parameter model (:mod:`.parameters`) because loading needs the plugin host: the
parameters a province may set are the ones its enabled plugins declare.
"""

from __future__ import annotations

from pathlib import Path

import pluggy

from aidgraph.core.policy.host import ProvincePlugins, build_plugin_manager, call_each, check_enabled
from aidgraph.core.policy.parameters import (
    Parameter,
    ParameterError,
    ParamSpec,
    ProvinceConfig,
    ProvinceParams,
    _read_toml,
    parse_parameter_file,
)
from aidgraph.core.storage.config import Settings, load_settings


def province_dir(code: str, settings: Settings | None = None) -> Path:
    settings = settings or load_settings()
    return Path(settings.province_configs_dir) / code


def available_provinces(settings: Settings | None = None) -> list[str]:
    """Codes of the province folders present (each holding a province.toml)."""
    settings = settings or load_settings()
    root = Path(settings.province_configs_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "province.toml").is_file())


def read_province_file(code: str, settings: Settings | None = None) -> tuple[Path, str, list[str]]:
    """Check ``province.toml``: returns (path, name, enabled plugin names)."""
    path = province_dir(code, settings) / "province.toml"
    data = _read_toml(path)
    province = data.get("province")
    if not isinstance(province, dict):
        raise ParameterError(path, "province", "missing [province] table with code and name")
    if province.get("code") != code:
        raise ParameterError(path, "province.code", f"must be {code!r} (the folder name), got {province.get('code')!r}")
    if not isinstance(province.get("name"), str) or not province["name"].strip():
        raise ParameterError(path, "province.name", "missing province name")
    extra = set(data) - {"province", "plugins"}
    if extra:
        raise ParameterError(path, sorted(extra)[0], "unknown table (expected [province] and [plugins])")
    plugins = data.get("plugins")
    enabled = plugins.get("enabled") if isinstance(plugins, dict) else None
    if not isinstance(enabled, list) or not all(isinstance(p, str) for p in enabled):
        raise ParameterError(path, "plugins.enabled", "must be a list of plugin names")
    if len(set(enabled)) != len(enabled):
        raise ParameterError(path, "plugins.enabled", "lists a plugin twice")
    return path, province["name"], list(enabled)


def load_province(code: str, settings: Settings | None = None, pm: pluggy.PluginManager | None = None
                  ) -> ProvinceConfig:
    """Load and validate province ``code``: enabled plugins and every parameter file.

    Raises :class:`ParameterError` naming the file and key on the first problem.
    """
    pm = pm or build_plugin_manager(settings)
    path, name, enabled = read_province_file(code, settings)
    check_enabled(pm, code, enabled, path)
    scoped = ProvincePlugins(pm, code, enabled)
    specs: dict[str, ParamSpec] = {}
    owners: dict[str, str] = {}
    for plugin_name, result in scoped.call_each("aidgraph_parameter_schemas"):
        for spec in result or []:
            if spec.key in specs and specs[spec.key] != spec:
                raise ParameterError(path, spec.key, f"declared differently by plugins {owners[spec.key]} and "
                                                     f"{plugin_name}")
            specs[spec.key] = spec
            owners[spec.key] = plugin_name
    inactive: set[str] = set()
    for plugin_name, result in call_each(pm, "aidgraph_parameter_schemas"):
        if plugin_name not in owners.values():
            inactive.update(spec.key for spec in result or [] if spec.key not in specs)
    directory = path.parent
    parameters: dict[str, Parameter] = {}
    files = sorted((directory / "parameters").glob("*.toml")) if (directory / "parameters").is_dir() else []
    for file in files:
        for key, parameter in parse_parameter_file(file, code, specs, inactive).items():
            if key in parameters:
                raise ParameterError(file, key, f"also defined in {parameters[key].file.name}")
            parameters[key] = parameter
    for key, spec in sorted(specs.items()):
        if spec.required and key not in parameters:
            raise ParameterError(directory / "parameters" / f"{spec.file_area}.toml", key,
                                 f"missing value: required by plugin {owners[key]} ({spec.description})")
    params = ProvinceParams(code, parameters, specs)
    problems = [p for result in scoped.hook.aidgraph_province_validate(params=params) for p in (result or [])]
    if problems:
        first_key = problems[0].split(":", 1)[0]
        file = parameters[first_key].file if first_key in parameters else directory
        raise ParameterError(file, first_key, "; ".join(problems))
    return ProvinceConfig(code=code, name=name, enabled=enabled, params=params, directory=directory, files=files,
                          inactive_keys=sorted(inactive))
