"""One expectation as data: its GX type, keyword arguments, description and severity.

Suites (:mod:`corpus.quality.suites`) are lists of these. Both engines read them: the native
one (:mod:`corpus.quality.native`, what a build runs) evaluates them directly, and
:meth:`Expectation.to_gx` builds the Great Expectations object the reference engine
(:mod:`corpus.quality.gx`) runs. Nothing here imports GX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class Expectation:
    type: str  # GX's snake_case type, e.g. "expect_column_values_to_be_between"
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    description: str = ""
    severity: str = "critical"

    def __post_init__(self):
        if not self.type.startswith("expect_"):
            raise ValueError(f"{self.type!r} is not an expectation type (expect_...)")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.type}: severity {self.severity!r} is not one of {SEVERITIES}")

    @property
    def gx_class(self) -> str:
        """``expect_column_values_to_be_between`` → ``ExpectColumnValuesToBeBetween``."""
        return "".join(part.capitalize() for part in self.type.split("_"))

    def to_gx(self):
        """The Great Expectations expectation instance (imports GX)."""
        import great_expectations.expectations as gxe

        return getattr(gxe, self.gx_class)(description=self.description or None, severity=self.severity,
                                           **self.kwargs)


def expect(type_: str, description: str, severity: str = "critical", **kwargs) -> Expectation:
    return Expectation(type_, kwargs, description, severity)
