"""The catalogue of aid programs (救助项目) known to a deployment, filled from the plugins' registrations.

The core stores enrolments by ``program_key``; what a key means (its name, aid domain and the provinces
that enable it) comes from plugins. The catalogue is built once at start-up and read by the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgramInfo:
    key: str
    name: str
    domain: str
    province_code: str | None = None
    """The province whose configuration this entry describes (None: not tied to one province)."""
    category: str | None = None
    """The low-income category (``LowIncomeCategory``) a receiving enrolment puts the household in: the
    plugin's ``Program.category``, the one source of this fact for the read side too."""


@dataclass
class ProgramCatalogue:
    """Programs by key, and which keys each province enables."""

    programs: dict[str, ProgramInfo] = field(default_factory=dict)
    enabled: dict[str, list[str]] = field(default_factory=dict)

    def get(self, key: str, province_code: str | None = None) -> ProgramInfo:
        info = self.programs.get(key)
        if info is None:
            # An enrolment can outlive the plugin that created it; show its key rather than hide the record.
            return ProgramInfo(key=key, name=key, domain="unregistered", province_code=province_code)
        if province_code and info.province_code != province_code:
            return ProgramInfo(info.key, info.name, info.domain, province_code, info.category)
        return info

    def category_programs(self) -> dict[str, str]:
        """Program key -> low-income category, for the programs that put a household in one."""
        return {key: info.category for key, info in self.programs.items() if info.category is not None}

    def for_province(self, province_code: str) -> list[ProgramInfo]:
        return [self.get(k, province_code) for k in self.enabled.get(province_code, [])]
