"""Shared helpers of the monitoring tests: province parameters read from the shipped files, feed writing."""

from __future__ import annotations

import csv
from pathlib import Path

from aidgraph.core.storage.config import builtin_province_configs
from aidgraph.core.monitoring.feeds import FEEDS
from aidgraph.core.policy import host
from aidgraph.core.policy.parameters import ProvinceParams, parse_parameter_file


def monitoring_params(province: str, drop: tuple[str, ...] = ()) -> ProvinceParams:
    """The province's shipped monitoring.toml, parsed by the real loader against the plugin's declarations."""
    import aidgraph.plugins.relapse_monitoring as plugin

    specs = {s.key: s for s in plugin.aidgraph_parameter_schemas()}
    path = builtin_province_configs() / province / "parameters" / "monitoring.toml"
    parameters = parse_parameter_file(path, province, specs)
    for key in drop:
        parameters.pop(key)
    return ProvinceParams(province, parameters, specs)


def indicators():
    import aidgraph.plugins.relapse_monitoring as plugin

    return plugin.aidgraph_monitoring_indicators()


def category_programs() -> dict[str, str]:
    """The low-income table (program key -> category) of the installed plugins, as a monitoring run reads it."""
    return host.category_programs(host.build_plugin_manager())


def write_feed(path: Path, kind: str, rows: list[list]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FEEDS[kind].names)
        writer.writerows(rows)
    return path
