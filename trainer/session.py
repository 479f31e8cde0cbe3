"""One training session: everything ``trainer.run``'s loop touches, wired from the config.

:func:`start` resolves the device and ranks, builds or reuses the plan, builds the model and
optimizer, decides where to start (:mod:`trainer.resume`) and opens the data stream at that
step. The :class:`Session` methods are the loop's verbs: ``train_step``, ``validate``,
``save_checkpoint``, ``finish``. Only rank 0 writes files.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from corpus.errors import UserError
from trainer import distributed as dist
from trainer.checkpoint import Checkpoints, rng_state, set_rng_state
from trainer.config import RunConfig, build_model_config
from trainer.metrics import MetricsLog
from trainer.model.lm import DIAGNOSTIC_KEYS
from trainer.schedule import gate_scale
from trainer.step import TERMS, StepOutput
from trainer.validate import Patience, progress, validation_loss

# ModelConfig fields a run may change on the same weights (they create no parameters)
RUNTIME_MODEL_KEYS = {"h_cycles", "l_steps", "hrm_bptt_steps", "hrm_whole_cycle_grad", "hrm_gate_min", "deep_supervision", "ds_weight", "use_halting",
                      "halting_weight", "halt_target", "halt_epsilon", "use_kernels"}
CHECKPOINT_FORMAT = 1


@dataclass
class Session:
    cfg: RunConfig
    world: dist.World
    device: torch.device
    plan: Any
    data: Any  # trainer.data.RunData: plan, tokenizer, streams
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: Any
    ck: Checkpoints
    metrics: MetricsLog
    console: Any
    total_steps: int
    step: int = 0
    samples: int = 0
    tokens: int = 0
    patience: Patience = field(default_factory=Patience)
    stream: Any = None
    unigram_entropy: float | None = None
    stopped: bool = False
    final_validation_pending: bool = False  # resumed from the checkpoint taken just before it
    run_lock: Any = None  # corpus.dirlock.DirLock on the run directory, held until the process ends
    _batch_tokens: int = 0  # this rank's real tokens in the step just taken
    _batch_samples: int = 0  # the global batch's rows (every rank trains the same number)
    _pending_tokens: int = 0  # this rank's real tokens not yet summed into ``tokens``
    _plotted_at: float | None = None  # monotonic time of the last plot refresh
    started: float = field(default_factory=time.perf_counter)

    @property
    def checkpoint_every(self) -> int:
        return self.cfg.train.checkpoint_every or self.cfg.eval.val_every

    def say(self, text: str) -> None:
        if self.world.is_main:
            self.console.print(text, highlight=False)

    def autocast(self):
        mp = self.cfg.train.mixed_precision
        if mp == "none":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if mp == "bf16" else torch.float16)

    # ------------------------------------------------------------------ the loop's verbs
    def train_step(self, batch, lr: float, gate: float) -> StepOutput:
        """One update (trainer/step.py): the same over any number of ranks, no host sync."""
        from trainer.step import train_step

        out, share = train_step(self.model, self.optimizer, self.scaler, self.world, self.device, batch, lr,
                                gate, self.cfg.train.grad_clip, self.autocast)
        self._batch_tokens, self._batch_samples = batch.tokens, len(batch.ids) * self.world.world_size
        return out

    def gate_at(self, step: int) -> float:
        """The gate scale that trained the weights last when ``step`` steps are done."""
        t = self.cfg.train
        return gate_scale(step - 1, t.hrm_gate_warmup_steps, t.gate_ramp_steps) if step > 0 else 0.0

    def advance(self) -> None:
        """Count the step just taken: global samples now, real tokens summed over ranks at the
        next :meth:`sync_counters` (a collective per step would stall the GPU)."""
        self.step += 1
        self.samples += self._batch_samples
        self._pending_tokens += self._batch_tokens

    def sync_counters(self) -> None:
        """Sum the tokens trained since the last call over ranks (every rank calls it: at each
        log line, checkpoint and the end)."""
        (total,) = dist.all_sum(self.world, [float(self._pending_tokens)], self.device)
        self.tokens += int(total)
        self._pending_tokens = 0

    def log_window(self) -> "LogWindow":
        return LogWindow(self)

    def validate(self, step: int, gate: float, final: bool = False) -> bool:
        """Validation loss over the val split (up to max_val_samples); returns whether to stop.
        The final one, and any long one, shows its progress."""
        n_batches = self.data.val_batch_count()
        label = f"{'final ' if final else ''}validation at step {step} ({self.data.val_samples:,} samples)"
        with progress(self.console, label, n_batches, enabled=self.world.is_main and (final or n_batches >= 20)) as tick:
            total, count = validation_loss(self.model, self.data.val_batches(), self.device, gate, self.autocast, tick)
        total, count = dist.all_sum(self.world, [total, count], self.device)
        if count == 0:
            self.say("[yellow]no validation tokens: the plan has no val positions[/]")
            return False
        loss = total / count
        improved, stop = self.patience.update(step, loss)
        if self.world.is_main:
            self.metrics.val({"step": step, "val_loss": loss, "val_tokens": int(count), "best": improved,
                              "bad_evals": self.patience.bad_evals, "patience": self.cfg.eval.eval_loss_patience})
            if improved and self.cfg.eval.save_best_model:
                self._save_best(step, loss)
            from trainer.eval.dev import run_dev_evals  # [eval] dev_suites; nothing when empty

            run_dev_evals(self, step, gate)
            self._plot(throttle=True)
        return stop

    def save_checkpoint(self, step: int, stopped: bool = False, final: bool = False,
                        validation_pending: bool = False) -> None:
        self.sync_counters()
        if self.world.is_main:
            self.ck.save(self.state(step, stopped, validation_pending), final=final)
        dist.barrier(self.world)

    def finish(self) -> None:
        self.sync_counters()
        if self.world.is_main:
            self.ck.save(self.state(self.step, stopped=self.stopped), final=True)
            self._plot()
            self.metrics.close()
            best = self.patience.best
            self.say(f"[bold]done[/] at step {self.step} in {time.perf_counter() - self.started:.0f} s: "
                     f"best validation loss {best if best is not None else float('nan'):.4f}"
                     + (f" (unigram entropy of the data {self.unigram_entropy:.4f} nats)" if self.unigram_entropy else ""))
            self.say(f"plots: {self.cfg.run_dir / 'plots'}/{{loss,val_loss,lr,gate,halt}}.png"
                     f"  (python -m trainer.plot {self.cfg.run_dir})")
            self.say(f"checkpoints: {self.ck.dir}  best model: {self.cfg.run_dir / 'best-model'}")
        dist.barrier(self.world)
        dist.shutdown(self.world)

    # ------------------------------------------------------------------ state
    def state(self, step: int, stopped: bool, validation_pending: bool = False) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "samples_seen": self.samples,
            "tokens_seen": self.tokens,
            "plan_cursor": self.data.plan_cursor(step),
            "plan_id": self.plan.id,
            "manifest_sha": self.cfg.manifest_sha,
            "world_size": self.world.world_size,
            "model": self.model.state_dict(),
            "model_config": asdict(self.model.cfg),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "rng": rng_state(),
            "patience": self.patience.state_dict(),
            "gate_scale": self.gate_at(step),
            "stopped": stopped,
            "validation_pending": validation_pending,  # the last step, saved before its final validation
            "config": json.dumps(self.cfg.as_dict()),
        }

    def _save_best(self, step: int, loss: float) -> None:
        weights = {"model": self.model.state_dict(), "model_config": asdict(self.model.cfg),
                   "step": step, "val_loss": loss, "plan_id": self.plan.id, "gate_scale": self.gate_at(step)}
        plan_info = {"plan_id": self.plan.id, "manifest_sha": self.cfg.manifest_sha,
                     "tokenizer_sha": self.plan.tokenizer_sha, "step": step, "val_loss": loss}
        self.ck.save_best(weights, {
            "config.json": json.dumps({**self.cfg.as_dict(), "model_config": asdict(self.model.cfg)}, indent=2).encode(),
            "plan.json": json.dumps(plan_info, indent=2).encode(),
            **self.data.tokenizer.files("tokenizer.json"),
        })

    PLOT_INTERVAL_S = 60.0  # at most one refresh a minute while training; drawing 8 PNGs takes ~1-3 s on a CPU

    def _plot(self, throttle: bool = False) -> None:
        """Redraw the run's plots; during training at most once per PLOT_INTERVAL_S (the end always)."""
        from trainer.plot import plot_run

        now = time.monotonic()
        if throttle and self._plotted_at is not None and now - self._plotted_at < self.PLOT_INTERVAL_S:
            return
        self._plotted_at = now
        try:
            plot_run(self.cfg.run_dir)
        except UserError:
            pass

        try:
            plot_run(self.cfg.run_dir)
        except UserError:
            pass


MEAN_KEYS = [i for i, k in enumerate(DIAGNOSTIC_KEYS) if k.endswith("_mean") or k == "expected_cycles"]
MIN_KEYS = [i for i, k in enumerate(DIAGNOSTIC_KEYS) if k.endswith("_min")]
MAX_KEYS = [i for i, k in enumerate(DIAGNOSTIC_KEYS) if k.endswith("_max")]


class LogWindow:
    """Accumulates steps between two log lines on the device; per line, one all-reduce for the
    sums, one for the extremes and one host sync (nothing per step)."""

    def __init__(self, s: Session):
        self.s = s
        self._reset()

    def _reset(self) -> None:
        self.steps = self.rows = self.tokens = self.padded = 0
        self.acc: torch.Tensor | None = None  # loss terms, row-weighted diagnostic means
        self.same: torch.Tensor | None = None  # grad norm, skipped updates
        self.mismatch: torch.Tensor | None = None
        self.low: torch.Tensor | None = None  # diagnostic minima
        self.high: torch.Tensor | None = None  # diagnostic maxima
        self.ids = hashlib.sha256()
        self.t0 = time.perf_counter()
        self.lr = self.gate_scale = 0.0

    def add(self, out: StepOutput, batch, lr: float, gate_scale: float) -> None:
        d = out.diagnostics.double()
        mismatch = out.rank_mismatch if out.rank_mismatch is not None else out.skipped * 0
        summed = torch.cat([out.terms.double(), d[MEAN_KEYS] * out.rows])  # differ per rank: summed
        same = torch.stack([out.grad_norm, out.skipped]).double()  # equal on every rank: not summed
        self.acc = summed if self.acc is None else self.acc + summed
        self.same = same if self.same is None else self.same + same
        self.mismatch = mismatch.double() if self.mismatch is None else torch.maximum(self.mismatch, mismatch.double())
        self.low = d[MIN_KEYS] if self.low is None else torch.minimum(self.low, d[MIN_KEYS])
        self.high = d[MAX_KEYS] if self.high is None else torch.maximum(self.high, d[MAX_KEYS])
        self.steps += 1
        self.rows += out.rows
        self.tokens += batch.tokens
        self.padded += batch.padded
        self.ids.update("\n".join(batch.ids).encode() + b"\n")
        self.lr, self.gate_scale = lr, gate_scale

    def flush(self, step: int) -> None:
        s, n = self.s, max(1, self.steps)
        s.sync_counters()
        counts = self.acc.new_tensor([float(self.rows), float(self.tokens), float(self.padded)])
        sums = dist.all_sum_tensor(s.world, torch.cat([self.acc, counts]))
        extremes = dist.all_max_tensor(s.world, torch.cat([self.same, self.mismatch[None], self.high, -self.low]))
        values = torch.cat([sums, extremes]).tolist()  # the one host sync of the window
        k, m = len(TERMS), len(MEAN_KEYS)
        terms, means, (rows, tokens, padded) = values[:k], values[k:k + m], values[k + m:k + m + 3]
        grad_norm, skipped, mismatch = values[k + m + 3:k + m + 6]
        high = values[k + m + 6:k + m + 6 + len(MAX_KEYS)]
        low = [-x for x in values[k + m + 6 + len(MAX_KEYS):]]
        if mismatch:
            raise RuntimeError(f"steps up to {step}: the ranks disagreed on which parameters have a gradient")
        seconds = max(1e-9, time.perf_counter() - self.t0)
        diag = {DIAGNOSTIC_KEYS[i]: v / max(1.0, rows) for i, v in zip(MEAN_KEYS, means)}
        diag.update({DIAGNOSTIC_KEYS[i]: v for i, v in zip(MIN_KEYS, low)})
        diag.update({DIAGNOSTIC_KEYS[i]: v for i, v in zip(MAX_KEYS, high)})
        if s.world.is_main:
            if skipped:
                s.say(f"[yellow]steps {step - self.steps + 1}-{step}: {int(skipped)} updates skipped "
                      f"(non-finite gradient norm)[/]")
            s.metrics.train({
                "step": step, **{name: v / n for name, v in zip(TERMS, terms)},
                "lr": self.lr, "grad_norm": grad_norm / n, "tokens_per_s": tokens / seconds,
                "pad_frac": 1.0 - tokens / max(1.0, padded), "gate_scale": self.gate_scale, **diag,
                "skipped": int(skipped), "samples": s.samples, "tokens": s.tokens,
                "ids_sha": self.ids.hexdigest()[:16], "elapsed_s": time.perf_counter() - s.started,
                "eta_s": (s.total_steps - step) * seconds / n,  # at this window's pace, validations aside
            })
        self._reset()


# -- setup ----------------------------------------------------------------------------------------

def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device {name}: CUDA is not available here (use --device cpu)")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise UserError(f"device {name!r}: use auto, cpu, cuda or cuda:N")
    return torch.device(name)


def start(cfg: RunConfig) -> Session | None:
    """Build a session at its starting step; None when there is nothing to train."""
    from rich.console import Console

    from trainer import resume
    from trainer.data import RunData
    from trainer.model import HRMMamba2LM, kernels
    from trainer.optim import build_optimizer

    t = cfg.train
    device_type = "cuda" if (t.device.startswith("cuda") or (t.device == "auto" and torch.cuda.is_available())) else "cpu"
    world = dist.init_world(device_type)
    device = resolve_device(t.device, world.local_rank)
    if t.mixed_precision == "fp16" and device.type != "cuda":
        raise UserError("mixed_precision fp16 needs CUDA (its grad scaler); use bf16 or none on CPU")
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    for name, size in (("batch_size", t.batch_size), ("eval_batch_size", cfg.eval.eval_batch_size or t.batch_size)):
        if size % world.world_size:
            raise UserError(f"{name} {size} does not split over {world.world_size} ranks (it is the global batch)")
    console = Console(highlight=False, soft_wrap=True)
    say = lambda m: console.print(m, highlight=False, markup=False) if world.is_main else None  # noqa: E731
    from trainer.import_hf.adopt import adopt_import, model_vocab

    imported = adopt_import(cfg)  # init_from a pretrained import: its tokenizer and architecture
    for note in cfg.notes:
        say(note)
    if device.type == "cpu" and t.mixed_precision == "bf16":
        from trainer.hardware import cpu_has_native_bf16

        if not cpu_has_native_bf16():
            say("note: mixed_precision bf16 on a CPU without native bf16 (no AVX512-BF16/AMX) is emulated, "
                "about 10x slower than fp32 here; --mixed_precision none trains in fp32")
    if world.is_main and not t.dry_run:  # one writer per run directory, for the life of the run
        from corpus.dirlock import hold, reclaim_temp_files

        run_lock = hold(cfg.run_dir, "run directory")
        reclaimed = reclaim_temp_files(cfg.run_dir, cfg.run_dir / "checkpoints")
        if reclaimed:
            say(f"removed {len(reclaimed)} temporary file(s) of killed writes: {', '.join(p.name for p in reclaimed[:3])}")
    else:
        run_lock = None
    data = RunData.open(cfg, world, say=say)
    for note in data.notes:
        say(note)
    plan = data.plan

    _seed(t.seed)
    model_cfg = build_model_config(cfg.model, model_vocab(imported, data.tokenizer.vocab_size))
    model = HRMMamba2LM(model_cfg).to(device)
    optimizer = build_optimizer(model, t.optimizer, t.learning_rate, t.weight_decay, (t.beta1, t.beta2),
                                fused=device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda") if t.mixed_precision == "fp16" else None
    total_steps = data.total_steps()
    ck = Checkpoints(cfg.run_dir, t.checkpoint_limit, warn=lambda m: console.print(f"[yellow]{m}[/]"))

    if world.is_main:
        ck.recover_best()
        begin = resume.decide(ck, plan.id, cfg.manifest_sha, t.reset_progress, t.init_from,
                              Path(t.runs_dir), is_main=not t.dry_run, start_over=t.start_over)
    else:
        begin = None
    begin = dist.broadcast_object(world, begin)
    metrics = MetricsLog(cfg.run_dir / "metrics.jsonl", console, enabled=world.is_main and not t.dry_run)
    s = Session(cfg, world, device, plan, data, model, optimizer, scaler, ck, metrics, console, total_steps,
                patience=Patience(cfg.eval.eval_loss_patience, cfg.eval.patience_grace_steps))
    s.run_lock = run_lock
    if begin.state is not None:
        _load_weights(s, begin)
    if begin.kind == "resume":
        st = begin.state
        if st.get("stopped"):
            s.say(f"{begin.source} stopped early at step {st['step']}; nothing to do "
                  f"(--reset_progress or a new --run_name to train again)")
            return None
        s.final_validation_pending = bool(st.get("validation_pending")) and int(st["step"]) >= total_steps
        optimizer.load_state_dict(st["optimizer"])
        if scaler is not None and st.get("scaler"):
            scaler.load_state_dict(st["scaler"])
        s.step, s.samples, s.tokens = int(st["step"]), int(st["samples_seen"]), int(st["tokens_seen"])
        s.patience.load_state_dict(st["patience"])
        set_rng_state(st["rng"])
    if begin.note:
        s.say(begin.note)
    if begin.kind in ("init_from", "reset"):
        warning = hard_reopen_warning(begin, t)
        if warning:
            s.say(f"[yellow]{warning}[/]")
    if s.step >= total_steps and not s.final_validation_pending:
        s.say(f"already at step {s.step} of {total_steps}: nothing to do (raise --steps to continue)")
        return None
    try:
        path = kernels.describe_path(model_cfg, device)
    except ValueError as exc:
        raise UserError(f"[model].{exc}") from None
    _header(s, model_cfg, path)
    if t.dry_run:
        _dry_run(s)
        return None
    if world.is_main:
        dropped = metrics.cut_after(s.step)
        if dropped:
            s.say(f"metrics.jsonl: dropped {dropped} records written after step {s.step}")
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        (cfg.run_dir / "config.json").write_text(json.dumps(cfg.as_dict(), indent=2))
        from trainer.tracking import open_trackers

        metrics.trackers = open_trackers(cfg.run_dir, t, cfg.run_name, cfg.as_dict(),
                                         s.step if begin.kind == "resume" else None,
                                         warn=lambda m: s.say(f"[yellow]{m}[/]"))
        s.unigram_entropy = data.unigram_entropy()
        metrics.write({"kind": "event", "step": s.step, "event": begin.kind, "plan_id": plan.id,
                       "unigram_entropy": s.unigram_entropy, "total_steps": total_steps,
                       "threads": torch.get_num_threads()})  # intra-op threads (trainer.ablate sets them)
    s.stream = data.train_stream(s.step, total_steps)
    model.train()
    return s


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _load_weights(s: Session, begin) -> None:
    state = begin.state
    saved_cfg = state.get("model_config") or {}
    now = asdict(s.model.cfg)
    changed = sorted(k for k, v in saved_cfg.items() if k in now and k not in RUNTIME_MODEL_KEYS and now[k] != v)
    if changed:
        diff = ", ".join(f"{k}: {saved_cfg[k]} -> {now[k]}" for k in changed)
        raise UserError(f"{begin.source}: weights do not fit [model] ({diff}); only {sorted(RUNTIME_MODEL_KEYS)} may change")
    try:
        s.model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"{begin.source}: weights do not fit the model: {str(exc).splitlines()[1].strip()}") from None


def hard_reopen_warning(begin, t) -> str | None:
    """Stage B/C start from weights trained with the gate open: closing it and reopening at full
    strength in one step is a shock the decoder has to absorb. Warn unless the gate ramps."""
    from trainer.resume import source_gate

    before = source_gate(begin.state, begin.source)
    if not before or t.gate_ramp_steps > 0:
        return None
    if t.hrm_gate_warmup_steps == 0 and before >= 1.0:
        return None  # the gate stays where the source left it
    start = f"closes the gate for {t.hrm_gate_warmup_steps} steps and reopens it" if t.hrm_gate_warmup_steps else "opens the gate"
    return (f"{begin.source} was trained with the gate open (scale {before:.2f}); this run {start} at full strength "
            f"in one step: set gate_ramp_steps (e.g. 500) to ramp it")


def _header(s: Session, model_cfg, mixer_path: str) -> None:
    t, d = s.cfg.train, s.data
    params = sum(p.numel() for p in s.model.parameters())
    s.say(f"[bold]{s.cfg.run_name}[/]  plan {s.plan.id}  train positions {d.n_train:,}  val {d.n_val:,}  "
          f"max_seq_len {d.max_seq_len}  vocab {model_cfg.vocab_size}")
    from corpus.mix import used_lines

    for line in used_lines(s.plan.sources):  # the data this run trains on, and how it was chosen
        s.say(f"  data {line}")
    s.say(f"model {params / 1e6:.2f}M params (d_model {model_cfg.d_model}, layers {model_cfg.n_layers}, "
          f"h_cycles {model_cfg.h_cycles} x l_steps {model_cfg.l_steps})  device {s.device}  ranks {s.world.world_size}  "
          f"optimizer {t.optimizer}  precision {t.mixed_precision}  mixer {mixer_path}")
    s.say(f"steps {s.step} -> {s.total_steps}  batch {t.batch_size}  lr {t.learning_rate:g} {t.lr_scheduler}"
          f"  gate closed until step {t.hrm_gate_warmup_steps}, ramp {t.gate_ramp_steps}  run dir {s.cfg.run_dir}")


def _dry_run(s: Session) -> None:
    """One forward/backward on the first batch, nothing written: checks data, model and memory."""
    stream = s.data.train_stream(s.step, s.total_steps)
    batch = stream.next_batch()
    out = s.train_step(batch, 0.0, s.gate_at(s.step + 1))
    s.say(f"dry run: one batch {tuple(batch.input_ids.shape)} (pad {batch.pad_fraction:.0%}), "
          f"loss {float(out.terms[0]):.4f}, grad norm {float(out.grad_norm):.3f}; nothing written")
    stream.close()
    dist.shutdown(s.world)
