"""The reference engine: a suite of :class:`~corpus.quality.spec.Expectation` run by Great Expectations 1.x.

``python -m corpus.quality check`` (the audit CI runs over every version) validates with it; a
build uses the native engine (:mod:`corpus.quality.native`), which evaluates the same suites
and produces the same result dict (tests/quality/test_native_engine.py proves it, result for
result). One ephemeral context per runner (nothing written to a ``gx/`` project); results are
kept as GX's own JSON so the report can render them as Data Docs later
(:mod:`corpus.quality.report`). Importing GX costs ~4 s, so only this module does it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from corpus.quality.results import (RESULT_FORMAT, SuiteResult, condense, describe, error_result,  # noqa: F401
                                    failure, result_format)

ENGINE = "gx"


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)


class Runner:
    """An ephemeral GX context holding one suite per name; :meth:`run` validates a frame."""

    engine = ENGINE

    def __init__(self):
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.datasource = self.context.data_sources.add_pandas("facts")
        self._suites: dict[str, Any] = {}
        self._assets = 0

    def suite(self, name: str, expectations: list):
        """The suite ``name``, made from ``expectations`` (specs or GX objects) the first time it is asked for."""
        if name not in self._suites:
            objects = [e.to_gx() if hasattr(e, "to_gx") else e for e in expectations]
            self._suites[name] = self.context.suites.add(self.gx.ExpectationSuite(name=name, expectations=objects))
        return self._suites[name]

    def run(self, suite_name: str, expectations: list, frame, asset: str,
            index_column: str | None = "id") -> SuiteResult:
        """Validate ``frame`` (a :class:`~corpus.quality.frame.Frame` or a pandas DataFrame) against
        the suite ``suite_name`` (created from ``expectations``)."""
        suite = self.suite(suite_name, expectations)
        if hasattr(frame, "to_pandas"):
            frame = frame.to_pandas()
        self._assets += 1
        data_asset = self.datasource.add_dataframe_asset(f"{asset} #{self._assets}")
        batch = data_asset.add_batch_definition_whole_dataframe("frame")
        definition = self.context.validation_definitions.add(
            self.gx.ValidationDefinition(name=f"{asset} {suite_name} #{self._assets}", data=batch, suite=suite))
        res = definition.run(batch_parameters={"dataframe": frame},
                             result_format=result_format(frame.columns, index_column))
        return condense(suite_name, res.to_json_dict(), ENGINE)
