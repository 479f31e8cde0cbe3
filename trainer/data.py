"""The streaming loader: plan positions -> length-bucketed, right-padded batches.

    step s ─► window w = s // K (K = bucket_batches), batch k = s % K
    window w = global sample counters [w·K·B, (w+1)·K·B)      B = global batch size
    counter g ─► plan position g mod N (N train positions: epochs wrap around the plan)
    rank r reads the counters g ≡ r (mod world): distinct positions on every rank
    its K·B/world samples are sorted by length, cut into K batches, and the batch order is
    shuffled by (seed, w): padding stays low and the order stays random

Everything is a function of the step, so resuming needs only the step: the checkpoint's plan
cursor is the first position of the current window (where the reader reopens) and the batches
of that window already trained are skipped. Windows are built by ``dataset_workers`` processes
(torch DataLoader over window indices, results in order); samples come from the mixer's reader
(memory-mapped sidecars), so the corpus is never loaded into memory.

Labels are next-token targets aligned to positions (``labels[t] = tokens[t+1]``, -100 for
padding); with ``loss_on_prompt = false`` positions whose target is still inside the prompt are
ignored too, so only the target is learned.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from corpus.errors import UserError

IGNORE_INDEX = -100


@dataclass
class Row:
    """One plan sample as the loader needs it."""

    position: int
    id: str
    tokens: np.ndarray
    prompt_len: int


@dataclass
class Batch:
    input_ids: torch.Tensor  # [b, t] int64, right-padded with pad_id
    prompt_lens: torch.Tensor  # [b] int64
    labels: torch.Tensor  # [b, t] int64, -100 = ignored
    ids: list[str]
    positions: list[int]
    tokens: int  # real (unpadded) tokens
    padded: int  # b * t

    @property
    def pad_fraction(self) -> float:
        return 1.0 - self.tokens / max(1, self.padded)

    @property
    def labelled(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())

    @property
    def memory_labelled(self) -> int:
        """Labelled positions that receive the HRM's memory: deep supervision's population."""
        from trainer.model.bridge import receives_memory

        receiving = receives_memory(self.prompt_lens, self.labels.shape[1])
        return int(((self.labels != IGNORE_INDEX) & receiving).sum())


def collate(rows: Sequence[Row], pad_id: int, max_seq_len: int, loss_on_prompt: bool = True) -> Batch:
    """Right-pad ``rows`` to the longest (truncated to ``max_seq_len``) and build labels."""
    lengths = [min(len(r.tokens), max_seq_len) for r in rows]
    width = max(lengths)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
    prompt_lens = np.zeros(len(rows), dtype=np.int64)
    for i, (row, n) in enumerate(zip(rows, lengths)):
        tokens = np.asarray(row.tokens[:n], dtype=np.int64)
        ids[i, :n] = tokens
        labels[i, : n - 1] = tokens[1:]
        p = min(int(row.prompt_len), n)
        prompt_lens[i] = p
        if not loss_on_prompt and p > 1:
            labels[i, : p - 1] = IGNORE_INDEX  # position p-1 predicts the first target token
    return Batch(torch.from_numpy(ids), torch.from_numpy(prompt_lens), torch.from_numpy(labels),
                 [r.id for r in rows], [r.position for r in rows], int(sum(lengths)), len(rows) * width)


def bucket(rows: Sequence[Row], n_batches: int, seed: int, window: int) -> list[list[Row]]:
    """Sort by length (ties by position), cut into ``n_batches`` equal batches, shuffle their
    order with a generator seeded by ``(seed, window)``."""
    if len(rows) % n_batches:
        raise ValueError(f"{len(rows)} rows do not split into {n_batches} batches")
    per = len(rows) // n_batches
    ordered = sorted(rows, key=lambda r: (len(r.tokens), r.position))
    batches = [ordered[i * per:(i + 1) * per] for i in range(n_batches)]
    random.Random(f"{seed}:{window}").shuffle(batches)
    return batches


@dataclass(frozen=True)
class StreamSpec:
    """What every worker needs to rebuild a window on its own (picklable)."""

    data_root: str
    plan_id: str
    split: str
    n_positions: int  # N: the split's positions in the plan
    batch_size: int  # global
    bucket_batches: int  # K
    rank: int
    world_size: int
    seed: int
    pad_id: int
    max_seq_len: int
    loss_on_prompt: bool

    @property
    def window_samples(self) -> int:
        return self.batch_size * self.bucket_batches

    def window_start(self, window: int) -> int:
        """The plan cursor of a window: the position of its first sample."""
        return (window * self.window_samples) % self.n_positions

    def counters(self, window: int) -> range:
        start = window * self.window_samples
        return range(start + self.rank, start + self.window_samples, self.world_size)


class _Windows(torch.utils.data.Dataset):
    """Map-style dataset over window indices: item i is window ``first + i`` as K batches.

    Runs in ``dataset_workers`` processes; each opens the plan once (lazily, from the spec)."""

    def __init__(self, spec: StreamSpec, first: int, count: int):
        self.spec, self.first, self.count = spec, first, count
        self._plan = None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> list[Batch]:
        spec, window = self.spec, self.first + i
        if self._plan is None:
            self._plan = open_plan_readonly(spec.data_root, spec.plan_id)
        rows = read_rows(self._plan, spec.split, [g % spec.n_positions for g in spec.counters(window)])
        return [collate(b, spec.pad_id, spec.max_seq_len, spec.loss_on_prompt)
                for b in bucket(rows, spec.bucket_batches, spec.seed, window)]


class TrainStream:
    """Batches from step ``start_step`` on, in order, built ahead by worker processes."""

    def __init__(self, spec: StreamSpec, start_step: int, total_steps: int, workers: int):
        k = spec.bucket_batches
        first, last = start_step // k, (max(start_step, total_steps - 1)) // k
        self._skip = start_step % k
        self._loader = torch.utils.data.DataLoader(
            _Windows(spec, first, last - first + 1), batch_size=None, shuffle=False, num_workers=workers,
            prefetch_factor=4 if workers else None, collate_fn=_identity,
            generator=torch.Generator().manual_seed(0),  # never draw from the global RNG (exact resume)
        )
        self._it = iter(self._loader)
        self._pending: list[Batch] = []

    def next_batch(self) -> Batch:
        while not self._pending:
            self._pending = list(next(self._it))
            if self._skip:  # resuming inside a window: its first batches were already trained
                self._pending, self._skip = self._pending[self._skip:], 0
        return self._pending.pop(0)

    def close(self) -> None:
        self._it = None
        self._loader = None


def _identity(x):
    return x


# -- the mixer's plan, read by position ---------------------------------------------------------

def open_plan_readonly(data_root: str, plan_id: str):
    """Open an existing plan by id (workers: no building, no re-hashing)."""
    from corpus.mixing import open_plan

    return open_plan(data_root, plan_id, verify="none", build_missing=False)


def read_rows(plan, split: str, positions: Sequence[int]) -> list[Row]:
    """The samples at ``positions`` (in that order) through the mixer's reader: each run of
    evenly spaced positions is one ``PlanReader(start, world_size=stride)``."""
    from corpus.mixing import PlanReader

    out: list[Row] = []
    for start, stride, count in _runs(positions):
        for sample in PlanReader(plan, split, start=start, rank=0, world_size=stride).take(count):
            out.append(Row(sample.position, sample.id, sample.tokens, sample.prompt_len))
    if [r.position for r in out] != list(positions):
        raise RuntimeError(f"plan {plan.id} {split}: reader returned other positions than asked for")
    return out


def _runs(positions: Sequence[int]) -> Iterator[tuple[int, int, int]]:
    """Split a position list into (start, stride, count) arithmetic runs (wrap-arounds break them)."""
    i, n = 0, len(positions)
    while i < n:
        stride = positions[i + 1] - positions[i] if i + 1 < n else 1
        if stride < 1:
            stride = 1
            j = i + 1
        else:
            j = i + 1
            while j < n and positions[j] - positions[j - 1] == stride:
                j += 1
        yield positions[i], stride, j - i
        i = j


def unigram_entropy(rows: Sequence[Row], vocab_size: int, loss_on_prompt: bool = True) -> float:
    """Entropy (nats) of the tokens a model is scored on: the loss of the best model that ignores
    context. A trained LM must get well below it."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for r in rows:
        scored = np.asarray(r.tokens[1:] if loss_on_prompt else r.tokens[max(1, r.prompt_len):], dtype=np.int64)
        counts += np.bincount(scored, minlength=vocab_size)[:vocab_size]
    p = counts[counts > 0] / max(1, counts.sum())
    return float(-(p * np.log(p)).sum())


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cap_workers(requested: int) -> tuple[int, list[str]]:
    """``dataset_workers`` capped to the cores each local rank has: a recipe written for a
    40-core node must not start 40 loader processes (and their memory) on a laptop."""
    import os

    local_ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    cap = max(1, available_cores() // local_ranks)
    if requested <= cap:
        return requested, []
    per = f" per local rank ({local_ranks} ranks)" if local_ranks > 1 else ""
    return cap, [f"dataset_workers {requested} > {cap} available cores{per}: using {cap}"]


class RunData:
    """The plan of a run and the streams the loop reads from it."""

    def __init__(self, cfg, world, plan, data_root: str):
        t = cfg.train
        self.cfg, self.world, self.plan, self.data_root = cfg, world, plan, data_root
        self.tokenizer = plan.tokenizer
        self.n_train = len(plan.positions("train"))
        self.n_val = len(plan.positions("val"))
        self.max_seq_len = t.max_seq_len or plan.max_seq_len
        if self.n_train == 0:
            raise UserError(f"plan {plan.id} has no train positions")
        self.workers, self.notes = cap_workers(t.dataset_workers)

    @classmethod
    def open(cls, cfg, world, say=print) -> "RunData":
        """Rank 0 builds or reuses the manifest's plan (sources, tokenizer); the others then
        open it by id."""
        from corpus.mixing import open_plan
        from corpus.mixing.manifest import manifest_from_tables
        from corpus.paths import data_root
        from trainer import distributed as dist

        root = str(data_root(cfg.data_dir))
        plan_id = None
        if world.is_main:
            started = time.perf_counter()
            # the manifest as the run sees it: the file's tables with the command line's [data] changes
            plan = open_plan(root, manifest_from_tables(cfg.manifest_path, cfg.manifest, cfg.manifest_sha))
            say(f"plan {plan.id} ready in {time.perf_counter() - started:.1f} s ({plan.dir})")
            plan_id = plan.id
        plan_id = dist.broadcast_object(world, plan_id)
        if not world.is_main:
            plan = open_plan(root, plan_id, verify="none", build_missing=False)
        return cls(cfg, world, plan, root)

    def total_steps(self) -> int:
        t = self.cfg.train
        if t.steps is not None:
            return t.steps
        return max(1, math.ceil((t.epochs or 1.0) * self.n_train / t.batch_size))

    def spec(self) -> StreamSpec:
        t = self.cfg.train
        return StreamSpec(self.data_root, self.plan.id, "train", self.n_train, t.batch_size, t.bucket_batches,
                          self.world.rank, self.world.world_size, t.seed, self.tokenizer.pad_id,
                          self.max_seq_len, t.loss_on_prompt)

    def train_stream(self, start_step: int, total_steps: int) -> TrainStream:
        return TrainStream(self.spec(), start_step, total_steps, self.workers)

    def plan_cursor(self, step: int) -> int:
        """Where the reader reopens to resume at ``step``: the first position of its window."""
        return self.spec().window_start(step // self.cfg.train.bucket_batches)

    @property
    def val_samples(self) -> int:
        """How many val positions a validation reads (all ranks): the first ``max_val_samples``."""
        return min(self.n_val, self.cfg.eval.max_val_samples or self.n_val)

    def _val_batch_size(self) -> int:
        return (self.cfg.eval.eval_batch_size or self.cfg.train.batch_size) // self.world.world_size

    def val_batch_count(self) -> int:
        mine = len(range(self.world.rank, self.val_samples, self.world.world_size))
        return math.ceil(mine / self._val_batch_size())

    def val_rows(self) -> list[Row]:
        """This rank's share of the first ``max_val_samples`` val positions."""
        return read_rows(self.plan, "val", list(range(self.world.rank, self.val_samples, self.world.world_size)))

    def val_batches(self) -> Iterator[Batch]:
        """Sorted by length (order does not matter for a mean): least padding."""
        rows = sorted(self.val_rows(), key=lambda r: (len(r.tokens), r.position))
        size = self._val_batch_size()
        for i in range(0, len(rows), size):
            yield collate(rows[i:i + size], self.tokenizer.pad_id, self.max_seq_len, self.cfg.train.loss_on_prompt)

    def unigram_entropy(self) -> float | None:
        split, n = ("val", self.val_samples) if self.n_val else ("train", min(self.n_train, 2000))
        rows = read_rows(self.plan, split, list(range(n)))
        return unigram_entropy(rows, self.tokenizer.vocab_size, self.cfg.train.loss_on_prompt) if rows else None
