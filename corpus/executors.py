"""Who runs a build's tasks: processes on this machine (``local``) or Ray core tasks (``ray``).

An executor takes ``(index, records, key)`` tasks and yields each finished task's manifest
(:func:`corpus.build.run_task` writes the task's files; the executor only moves the work). The
shards do not depend on the executor: a task's output depends on its records alone. Ray is
imported only when asked for (``pip install 'hrm-corpus[ray]'``).
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

from corpus.errors import UserError


def make_executor(args, ctx, fn):
    """The executor ``args.executor`` names, running ``fn(ctx, index, records, key)`` (a
    module-level function: it travels by name) for the tasks of ``ctx`` (a build's TaskContext)."""
    if getattr(args, "executor", "local") == "ray":
        return RayExecutor(ctx, fn, args.workers, getattr(args, "ray_address", None))
    return LocalExecutor(ctx, fn, args.workers)


class LocalExecutor:
    """``--workers 1``: tasks one after another in this process (encoding overlaps writing in a
    thread); more: a pool of that many spawned processes, each running whole tasks. The pool
    also serves the near-dedup band step."""

    def __init__(self, ctx, fn, workers: int):
        self.ctx, self.fn = ctx, fn
        self.pool = None
        if workers > 1:
            import multiprocessing as mp

            self.pool = mp.get_context("spawn").Pool(workers, initializer=_init_pool_worker, initargs=(ctx, fn))

    def run(self, tasks: Iterable[tuple]) -> Iterator[dict]:
        if self.pool is None:
            for index, records, key in tasks:
                yield self.fn(self.ctx, index, records, key)
            return
        yield from self.pool.imap_unordered(_run_pool_task, tasks)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


_CTX: dict = {}


def _init_pool_worker(ctx, fn) -> None:
    from corpus.buildlock import die_with_parent

    die_with_parent()  # a killed build leaves no worker behind
    _CTX["ctx"], _CTX["fn"] = ctx, fn


def _run_pool_task(task: tuple) -> dict:
    return _CTX["fn"](_CTX["ctx"], *task)


RAY_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


class RayExecutor:
    """Each task a Ray core task (one CPU, retried when its worker dies). ``address`` joins a
    running cluster (every node needs this package and the build's inputs and data root at the
    same paths: a shared filesystem); without it a local cluster with ``workers`` CPUs starts
    for the build and stops after it. At most twice the cluster's CPUs are in flight, so the
    driver never holds much more input than the workers are busy with."""

    pool = None  # the near-dedup band step runs in the driver

    def __init__(self, ctx, fn, workers: int, address: str | None):
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'hrm-corpus[ray]'") from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            env = {"env_vars": dict(RAY_THREADS)}
            if address:
                ray.init(address=address, runtime_env=env, logging_level="warning", log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, runtime_env=env, logging_level="warning",
                         log_to_driver=False)
            self.started = True
        self.ctx_ref, self.fn = ray.put(ctx), fn
        self.remote = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=False)(_run_ray_task)
        self.window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))

    def run(self, tasks: Iterable[tuple]) -> Iterator[dict]:
        ray = self.ray
        pending: list = []
        for index, records, key in tasks:
            pending.append(self.remote.remote(self.fn, self.ctx_ref, index, records, key))
            while len(pending) >= self.window:
                done, pending = ray.wait(pending, num_returns=1)
                yield from self._get(done)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield from self._get(done)

    def _get(self, refs) -> list[dict]:
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as exc:  # the task's own error, as the local executor raises it
            cause = exc.as_instanceof_cause()
            if isinstance(cause, UserError):
                raise UserError(str(cause).splitlines()[0]) from None
            raise

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def _run_ray_task(fn, ctx, index: int, records: list, key: dict) -> dict:
    """A Ray worker's side of one task: threads kept to one CPU, then the build's own task."""
    for name, value in RAY_THREADS.items():
        os.environ.setdefault(name, value)
    return fn(ctx, index, records, key)
