"""A planner that splits large fleets per site on Dask and plans small ones in one LP.

``DecomposingPlanner`` has the planner's one method, ``plan(problem) -> Plan``, so the runtime
uses it like any other. Fleets with at least ``min_sites`` sites go to ``plan_decomposed`` on
one Dask client kept for the planner's life (a scheduler address, or a ``LocalCluster`` started
on first use); smaller fleets go to the single-LP planner, which is faster where it fits. So do
fleets the decomposition cannot split (a shed event over several sites needs a fleet baseline)
and any plan whose decomposition fails (a lost worker or scheduler): the fleet is never left
without a plan.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Protocol

from dask.distributed import Client, LocalCluster

from aggregator.domain import FleetProblem, Plan
from models.decomposition.dual import DecompositionSettings, local_cluster, plan_decomposed

log = logging.getLogger(__name__)


class _Planner(Protocol):
    def plan(self, problem: FleetProblem) -> Plan: ...


class DecomposingPlanner:
    def __init__(
        self,
        single: _Planner,
        settings: DecompositionSettings | None = None,
        *,
        min_sites: int = 2,
        scheduler: str | None = None,
    ) -> None:
        if min_sites < 2:
            raise ValueError(f"min_sites must be >= 2 (a split needs two sites), got {min_sites}")
        self.single = single
        self.settings = settings or DecompositionSettings()
        self.min_sites = min_sites
        self.scheduler = scheduler
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None
        self._lock = threading.Lock()

    def plan(self, problem: FleetProblem) -> Plan:
        if len(problem.sites) < self.min_sites:
            return self.single.plan(problem)
        if any(e.shed_kw is not None and len(problem.event_sites(e)) > 1 for e in problem.events):
            log.warning("a shed event spans several sites (needs a fleet baseline): one LP")
            return self.single.plan(problem)
        try:
            with self._lock:  # one decomposition at a time on the kept client
                result = plan_decomposed(problem, self.settings, scheduler=self._ensure_client())
        except Exception:  # a lost worker or scheduler must not leave the fleet without a plan
            log.exception("decomposed planning failed; planning the fleet as one LP")
            self.close()  # the next plan starts a fresh client
            return self.single.plan(problem)
        timings = dict(result.plan.timings_s or {})
        timings.update({f"decomposition_{k}": v for k, v in result.timings_s.items()})
        timings["decomposition_iterations"] = float(result.iterations)
        timings["decomposition_gap"] = result.gap
        return replace(result.plan, timings_s=timings)

    def _ensure_client(self) -> Client:
        if self._client is None:
            if self.scheduler is not None:
                self._client = Client(self.scheduler)  # type: ignore[no-untyped-call]
            else:
                self._cluster = local_cluster(self.settings)
                self._client = Client(self._cluster)  # type: ignore[no-untyped-call]
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
