"""One training session: everything ``trainer.run``'s loop touches, wired from the config.

:func:`start` resolves the device and ranks, builds or reuses the plan, builds the model and
optimizer, decides where to start (:mod:`trainer.resume`) and opens the data stream at that
step. The :class:`Session` methods are the loop's verbs: ``train_step``, ``validate``,
``save_checkpoint``, ``finish``. Only rank 0 writes files.
"""

from __future__ import annotations

import hashlib
import json
import math
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
from trainer.metrics import MetricsLog, truncate_after
from trainer.validate import Patience, validation_loss

# ModelConfig fields a run may change on the same weights (they create no parameters)
RUNTIME_MODEL_KEYS = {"h_cycles", "l_steps", "hrm_bptt_steps", "deep_supervision", "ds_weight", "use_halting",
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
    _batch_tokens: float = 0.0
    _batch_samples: float = 0.0
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
    def train_step(self, batch, lr: float, gate: float):
        """Forward, backward, sum gradients over ranks, clip, step. Each rank's loss is weighted
        by its share of the global batch's labelled tokens, so the update is the token mean of
        the whole global batch, as in a single process."""
        from trainer.optim import set_lr

        set_lr(self.optimizer, lr)
        n_local = batch.labelled
        n_global, self._batch_tokens, self._batch_samples = dist.all_sum(
            self.world, [float(n_local), float(batch.tokens), float(len(batch.ids))], self.device)
        weight = n_local / max(1.0, n_global)
        with self.autocast():
            out = self.model(batch.input_ids.to(self.device), batch.prompt_lens.to(self.device),
                             batch.labels.to(self.device), gate_scale=gate)
        loss = out.loss * weight
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        dist.sum_gradients(self.world, self.model)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        clip = self.cfg.train.grad_clip or float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif math.isfinite(grad_norm):
            self.optimizer.step()
        else:
            self.say(f"[yellow]step {self.step}: non-finite gradient norm, update skipped[/]")
        self.optimizer.zero_grad(set_to_none=True)
        terms = torch.stack([out.loss.detach(), out.lm_loss.detach(), out.ds_loss.detach(),
                             out.halt_loss.detach()]).float() * weight
        return {"terms": terms.tolist(), "diagnostics": out.diagnostics}, grad_norm

    def advance(self) -> None:
        """Count the step just taken (global samples and real tokens, summed over ranks)."""
        self.step += 1
        self.samples += int(self._batch_samples)
        self.tokens += int(self._batch_tokens)

    def log_window(self) -> "LogWindow":
        return LogWindow(self)

    def validate(self, step: int, gate: float) -> bool:
        """Validation loss over the val split (up to max_val_samples); returns whether to stop."""
        total, count = validation_loss(self.model, self.data.val_batches(), self.device, gate, self.autocast)
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
            self._plot()
        return stop

    def save_checkpoint(self, step: int, stopped: bool = False, final: bool = False) -> None:
        if self.world.is_main:
            self.ck.save(self.state(step, stopped), final=final)
        dist.barrier(self.world)

    def finish(self) -> None:
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
    def state(self, step: int, stopped: bool) -> dict[str, Any]:
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
            "stopped": stopped,
            "config": json.dumps(self.cfg.as_dict()),
        }

    def _save_best(self, step: int, loss: float) -> None:
        weights = {"model": self.model.state_dict(), "model_config": asdict(self.model.cfg),
                   "step": step, "val_loss": loss, "plan_id": self.plan.id}
        plan_info = {"plan_id": self.plan.id, "manifest_sha": self.cfg.manifest_sha,
                     "tokenizer_sha": self.plan.tokenizer_sha, "step": step, "val_loss": loss}
        self.ck.save_best(weights, {
            "config.json": json.dumps({**self.cfg.as_dict(), "model_config": asdict(self.model.cfg)}, indent=2).encode(),
            "plan.json": json.dumps(plan_info, indent=2).encode(),
            **self.data.tokenizer.files("tokenizer.json"),
        })

    def _plot(self) -> None:
        from trainer.plot import plot_run

        try:
            plot_run(self.cfg.run_dir)
        except UserError:
            pass


class LogWindow:
    """Accumulates steps between two log lines; one all-reduce per line."""

    def __init__(self, s: Session):
        self.s = s
        self._reset()

    def _reset(self) -> None:
        self.steps = 0
        self.terms = [0.0, 0.0, 0.0, 0.0]
        self.grad_norm = 0.0
        self.tokens = 0
        self.padded = 0
        self.gate = [0.0, math.inf, -math.inf]
        self.halt = [0.0, math.inf, -math.inf]
        self.ids = hashlib.sha256()
        self.t0 = time.perf_counter()
        self.lr = self.gate_scale = 0.0

    def add(self, out: dict, batch, grad_norm: float, lr: float, gate_scale: float) -> None:
        d = out["diagnostics"]
        self.steps += 1
        self.terms = [a + b for a, b in zip(self.terms, out["terms"])]
        self.grad_norm += grad_norm
        self.tokens += batch.tokens
        self.padded += batch.padded
        for acc, key in ((self.gate, "gate"), (self.halt, "halt_sum")):
            acc[0] += d[f"{key}_mean"]
            acc[1] = min(acc[1], d[f"{key}_min"])
            acc[2] = max(acc[2], d[f"{key}_max"])
        self.ids.update("\n".join(batch.ids).encode() + b"\n")
        self.lr, self.gate_scale = lr, gate_scale

    def flush(self, step: int) -> None:
        s, n = self.s, max(1, self.steps)
        sums = dist.all_sum(s.world, self.terms + [float(self.tokens), float(self.padded)], s.device)
        seconds = max(1e-9, time.perf_counter() - self.t0)
        if s.world.is_main:
            loss, lm, ds, halt = (x / n for x in sums[:4])
            s.metrics.train({
                "step": step, "loss": loss, "lm_loss": lm, "ds_loss": ds, "halt_loss": halt,
                "lr": self.lr, "grad_norm": self.grad_norm / n, "tokens_per_s": sums[4] / seconds,
                "pad_frac": 1.0 - sums[4] / max(1.0, sums[5]),
                "gate_scale": self.gate_scale, "gate_mean": self.gate[0] / n, "gate_min": self.gate[1],
                "gate_max": self.gate[2], "halt_sum_mean": self.halt[0] / n, "halt_sum_min": self.halt[1],
                "halt_sum_max": self.halt[2], "samples": s.samples, "tokens": s.tokens,
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
    from trainer.model import HRMMamba2LM
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
    data = RunData.open(cfg, world, say=lambda m: console.print(m) if world.is_main else None)
    plan = data.plan

    _seed(t.seed)
    model_cfg = build_model_config(cfg.model, data.tokenizer.vocab_size)
    model = HRMMamba2LM(model_cfg).to(device)
    optimizer = build_optimizer(model, t.optimizer, t.learning_rate, t.weight_decay, (t.beta1, t.beta2))
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
    if begin.state is not None:
        _load_weights(s, begin)
    if begin.kind == "resume":
        st = begin.state
        if st.get("stopped"):
            s.say(f"{begin.source} stopped early at step {st['step']}; nothing to do "
                  f"(--reset_progress or a new --run_name to train again)")
            return None
        optimizer.load_state_dict(st["optimizer"])
        if scaler is not None and st.get("scaler"):
            scaler.load_state_dict(st["scaler"])
        s.step, s.samples, s.tokens = int(st["step"]), int(st["samples_seen"]), int(st["tokens_seen"])
        s.patience.load_state_dict(st["patience"])
        set_rng_state(st["rng"])
    if begin.note:
        s.say(begin.note)
    if s.step >= total_steps:
        s.say(f"already at step {s.step} of {total_steps}: nothing to do (raise --steps to continue)")
        return None
    _header(s, model_cfg)
    if t.dry_run:
        _dry_run(s)
        return None
    if world.is_main:
        dropped = truncate_after(metrics.path, s.step)
        if dropped:
            s.say(f"metrics.jsonl: dropped {dropped} records written after step {s.step}")
        (cfg.run_dir / "config.json").write_text(json.dumps(cfg.as_dict(), indent=2))
        from trainer.tracking import open_trackers

        metrics.trackers = open_trackers(cfg.run_dir, t, cfg.run_name, cfg.as_dict(),
                                         s.step if begin.kind == "resume" else None,
                                         warn=lambda m: s.say(f"[yellow]{m}[/]"))
        s.unigram_entropy = data.unigram_entropy()
        metrics.write({"kind": "event", "step": s.step, "event": begin.kind, "plan_id": plan.id,
                       "unigram_entropy": s.unigram_entropy, "total_steps": total_steps})
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


def _header(s: Session, model_cfg) -> None:
    t, d = s.cfg.train, s.data
    params = sum(p.numel() for p in s.model.parameters())
    s.say(f"[bold]{s.cfg.run_name}[/]  plan {s.plan.id}  train positions {d.n_train:,}  val {d.n_val:,}  "
          f"max_seq_len {d.max_seq_len}  vocab {model_cfg.vocab_size}")
    s.say(f"model {params / 1e6:.2f}M params (d_model {model_cfg.d_model}, layers {model_cfg.n_layers}, "
          f"h_cycles {model_cfg.h_cycles} x l_steps {model_cfg.l_steps})  device {s.device}  ranks {s.world.world_size}  "
          f"optimizer {t.optimizer}  precision {t.mixed_precision}")
    s.say(f"steps {s.step} -> {s.total_steps}  batch {t.batch_size}  lr {t.learning_rate:g} {t.lr_scheduler}"
          f"  gate closed until step {t.hrm_gate_warmup_steps}, ramp {t.gate_ramp_steps}  run dir {s.cfg.run_dir}")


def _dry_run(s: Session) -> None:
    """One forward/backward on the first batch, nothing written: checks data, model and memory."""
    from trainer.schedule import gate_scale

    stream = s.data.train_stream(s.step, s.total_steps)
    batch = stream.next_batch()
    gate = gate_scale(s.step, s.cfg.train.hrm_gate_warmup_steps, s.cfg.train.gate_ramp_steps)
    out, grad_norm = s.train_step(batch, 0.0, gate)
    s.say(f"dry run: one batch {tuple(batch.input_ids.shape)} (pad {batch.pad_fraction:.0%}), "
          f"loss {out['terms'][0]:.4f}, grad norm {grad_norm:.3f}; nothing written")
    stream.close()
    dist.shutdown(s.world)
