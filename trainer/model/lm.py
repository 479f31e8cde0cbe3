"""HRM x Mamba2 language model: the decoder, the HRM reading the prompt, and the bridge between.

    input_ids -> embedding -> layers [0, k) -> h_k --+--> add gate * memory ---> layers [k, n) -> logits
                                                 |       (positions >= prompt_len - 1)
                            pool(h_k, prompt only) -> HRM cycles -> memory, gate, halting

With ``gate_scale == 0`` the memory is not added at all, so the logits are bit-identical to the
same decoder built with ``hrm_enabled=False``; the HRM then still runs (without grad) so the
diagnostics stay meaningful during the trainer's gate warm-up, and deep supervision is skipped
(with the gate shut every intermediate decode *is* the main decode).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trainer.model.bridge import Bridge, add_memory, receives_memory
from trainer.model.config import ModelConfig
from trainer.model.decoder import Mamba2Decoder
from trainer.model.halting import (HaltingHead, expected_cycles, halting_distribution,
                                   halting_penalty)
from trainer.model.hrm import HRMCore
from trainer.model.mamba2 import MixerState
from trainer.model.norms import at_least_fp32
from trainer.model.pool import PromptPool
from trainer.model.sampling import sample_next
from trainer.model.summary import parameter_summary
from trainer.model.token_hrm import PromptContext, TokenCore

IGNORE_INDEX = -100
# gate_*: the gate the decoder receives (sigmoid x gate_scale); gate_raw_*: the gate head's own
# sigmoid, what it has learned, also while the schedule still holds the gate shut (with
# hrm_gate_min > 0: after the floor, so a head that has shut reads exactly the floor)
DIAGNOSTIC_KEYS = ("gate_mean", "gate_min", "gate_max", "gate_raw_mean", "gate_raw_min",
                   "gate_raw_max", "halt_sum_mean", "halt_sum_min", "halt_sum_max", "expected_cycles")


@dataclass
class ModelOutput:
    logits: torch.Tensor  # [b, t, vocab]
    loss: torch.Tensor | None = None  # lm + ds_weight * ds + halt, when labels are given
    lm_loss: torch.Tensor | None = None
    ds_loss: torch.Tensor | None = None  # unweighted; zero when deep supervision is off
    halt_loss: torch.Tensor | None = None  # already scaled by halting_weight x mean gate
    # the main LM loss on the positions deep supervision scores (labelled and receiving memory),
    # so ``ds_loss - lm_mem_loss`` reads "how much worse the intermediate cycles decode"
    lm_mem_loss: torch.Tensor | None = None
    halt_penalty: torch.Tensor | None = None  # unscaled mean (halt sum - target)^2; 0 when off
    diagnostic_values: torch.Tensor | None = None  # [len(DIAGNOSTIC_KEYS)] on the model's device

    @property
    def diagnostics(self) -> dict[str, float]:
        """The diagnostics as floats (one device sync; the trainer keeps the tensor instead)."""
        return dict(zip(DIAGNOSTIC_KEYS, self.diagnostic_values.tolist()))


@dataclass
class HRMReadout:
    """What the HRM hands the decoder for one batch."""

    # [b, d_model] (pooled) or [b, t, d_model] (per_token, zeros before ``first_position``):
    # halting-weighted mix of cycle memories, or the last
    memory: torch.Tensor
    gate: torch.Tensor  # [b]: sigmoid gate x gate_scale
    cycle_memories: list[torch.Tensor]  # per cycle run (only filled when deep supervision needs them)
    halt_probs: torch.Tensor | None  # [b, cycles run], None when halting is off
    halt_dist: torch.Tensor | None
    gate_raw: torch.Tensor | None = None  # [b]: the gate head's sigmoid before gate_scale
    # [b, cycles run]: the same probabilities read from detached states; the halting penalty
    # uses these, so it trains the halting head only (docs/training.md, "halting penalty")
    penalty_probs: torch.Tensor | None = None
    # per_token only: halt_probs / halt_dist / penalty_probs are [b, w, cycles] over positions
    # first_position .. t-1, and ``receiving`` [b, w] marks those that receive memory
    receiving: torch.Tensor | None = None
    prompt: PromptContext | None = None  # per_token: what the latents read (kept for generation)


@dataclass
class DecodeState:
    """Recurrent state for generation: one MixerState per layer and the gated memory."""

    layers: list[MixerState]
    memory: torch.Tensor | None  # [b, d_model], added at the bridge layer of every new position
    # per_token design: the prompt the latents read and the gate [b]; each new position's memory
    # is computed from its own bridge-layer state
    prompt: PromptContext | None = None
    gate: torch.Tensor | None = None


def gated(gate: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """gate [b] times memory [b, d_model] or [b, t, d_model]."""
    return gate.view(-1, *([1] * (memory.dim() - 1))) * memory


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss over labels != -100 (0 when none count), computed in >= fp32."""
    total = F.cross_entropy(at_least_fp32(logits).reshape(-1, logits.shape[-1]), labels.reshape(-1),
                            ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (labels != IGNORE_INDEX).sum().clamp_min(1)


def lm_losses(logits: torch.Tensor, labels: torch.Tensor, subset: torch.Tensor,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss over labelled positions, mean over labelled positions in ``subset`` [b, t]):
    one cross entropy over the logits for both."""
    per_token = F.cross_entropy(at_least_fp32(logits).reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                ignore_index=IGNORE_INDEX, reduction="none").view(labels.shape)
    labelled = labels != IGNORE_INDEX
    both = labelled & subset
    return (per_token.sum() / labelled.sum().clamp_min(1),
            torch.where(both, per_token, 0.0).sum() / both.sum().clamp_min(1))


class HRMMamba2LM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.decoder = Mamba2Decoder(cfg)
        if cfg.hrm_enabled:
            self.pool = PromptPool(cfg)  # per_token: feeds the gate only
            self.core = HRMCore(cfg) if cfg.hrm_design == "pooled" else TokenCore(cfg)
            self.bridge = Bridge(cfg)
            self.halting = HaltingHead(cfg)

    # ------------------------------------------------------------------ configuration
    def set_cycles(self, h_cycles: int, l_steps: int) -> None:
        """Change the HRM's cycle counts for later calls; the weights do not depend on them."""
        if int(h_cycles) < 1 or int(l_steps) < 1:
            raise ValueError(f"set_cycles: need h_cycles >= 1 and l_steps >= 1, got {h_cycles}, {l_steps}")
        self.cfg.h_cycles, self.cfg.l_steps = int(h_cycles), int(l_steps)

    def parameter_summary(self) -> dict[str, int]:
        return parameter_summary(self)

    def num_parameters(self) -> int:
        return self.parameter_summary()["total"]

    @property
    def _split(self) -> int:
        return self.cfg.bridge_index if self.cfg.hrm_enabled else self.cfg.n_layers

    # ------------------------------------------------------------------ HRM
    def read_hrm(self, h_bridge: torch.Tensor, prompt_lens: torch.Tensor,
                 gate_scale: float, longest_prompt: int | None = None,
                 first_position: int = 0) -> HRMReadout:
        """Run the HRM on the prompt part of the bridge-layer hidden states (per_token: and on
        each position from ``first_position`` on; earlier ones get zero memory)."""
        cfg = self.cfg
        injection = self.pool(h_bridge, prompt_lens, longest_prompt)
        gate_raw = self.bridge.gate(injection)
        gate = gate_raw * gate_scale
        if cfg.hrm_design == "per_token":
            prompt = self.core.context(h_bridge, prompt_lens, longest_prompt)
            receiving = receives_memory(prompt_lens, h_bridge.shape[1])[:, first_position:]
            readout = self._read_positions(h_bridge[:, first_position:], prompt, receiving)
            pad = lambda m: F.pad(m, (0, 0, first_position, 0))  # noqa: E731
            readout.memory = pad(readout.memory)
            readout.cycle_memories = [pad(m) for m in readout.cycle_memories]
            readout.gate, readout.gate_raw, readout.prompt = gate, gate_raw, prompt
            return readout
        every_cycle = cfg.deep_supervision or cfg.use_halting
        stop_early = cfg.use_halting and cfg.halt_epsilon > 0 and not self.training
        states, halts = [], []
        unhalted = None
        for z_H in self.core.cycles(injection, cfg.h_cycles, cfg.l_steps, cfg.hrm_bptt_steps,
                                    every_cycle=every_cycle, whole_cycle=cfg.hrm_whole_cycle_grad):
            states.append(z_H)
            if cfg.use_halting:
                halts.append(self.halting(z_H))
                if stop_early:
                    unhalted = (1.0 - halts[-1]) * (1.0 if unhalted is None else unhalted)
                    if bool((unhalted < cfg.halt_epsilon).all()):
                        break
        halt_probs = halt_dist = penalty_probs = None
        if cfg.use_halting:
            halt_probs = torch.stack(halts, dim=1)
            penalty_probs = (torch.stack([self.halting(z.detach()) for z in states], dim=1)
                             if torch.is_grad_enabled() else halt_probs)
            halt_dist = halting_distribution(halt_probs)
            mixed = (torch.stack(states, dim=1) * halt_dist[:, :, None, None].to(states[0].dtype)).sum(1)
            memory = self.bridge.memory(mixed)  # linear: mix of memories == memory of the mix
        else:
            memory = self.bridge.memory(states[-1])
        cycle_memories = ([self.bridge.memory(z) for z in states[:-1]]
                          if cfg.deep_supervision else [])
        return HRMReadout(memory, gate, cycle_memories, halt_probs, halt_dist, gate_raw, penalty_probs)

    def _read_positions(self, h: torch.Tensor, prompt: PromptContext, receiving: torch.Tensor) -> HRMReadout:
        """Per-token design over positions h [b, w, d_model]; ``receiving`` [b, w] says which of
        them get memory (only those count for early halting). Gate fields are left to the caller."""
        cfg = self.cfg
        every_cycle = cfg.deep_supervision or cfg.use_halting
        stop_early = cfg.use_halting and cfg.halt_epsilon > 0 and not self.training
        states, halts = [], []
        unhalted = None
        for z_H in self.core.cycles(self.core.injection(h), prompt, cfg.h_cycles, cfg.l_steps,
                                    cfg.hrm_bptt_steps, every_cycle=every_cycle,
                                    whole_cycle=cfg.hrm_whole_cycle_grad):
            states.append(z_H)
            if cfg.use_halting:
                halts.append(self.halting.per_position(z_H))
                if stop_early:
                    unhalted = (1.0 - halts[-1]) * (1.0 if unhalted is None else unhalted)
                    if bool(((unhalted < cfg.halt_epsilon) | ~receiving).all()):
                        break
        halt_probs = halt_dist = penalty_probs = None
        if cfg.use_halting:
            halt_probs = torch.stack(halts, dim=-1)
            penalty_probs = (torch.stack([self.halting.per_position(z.detach()) for z in states], dim=-1)
                             if torch.is_grad_enabled() else halt_probs)
            halt_dist = halting_distribution(halt_probs)
            mixed = (torch.stack(states, dim=2) * halt_dist[..., None].to(states[0].dtype)).sum(2)
            memory = self.bridge.memory(mixed)
        else:
            memory = self.bridge.memory(states[-1])
        cycle_memories = [self.bridge.memory(z) for z in states[:-1]] if cfg.deep_supervision else []
        return HRMReadout(memory, None, cycle_memories, halt_probs, halt_dist, None, penalty_probs,
                          receiving=receiving)

    def _diagnostics(self, readout: HRMReadout | None, like: torch.Tensor) -> torch.Tensor:
        """[len(DIAGNOSTIC_KEYS)] on the device, no host sync (the trainer syncs per log line)."""
        if readout is None:
            return at_least_fp32(like.new_zeros(len(DIAGNOSTIC_KEYS)))
        with torch.no_grad():
            gate, raw = readout.gate, readout.gate_raw
            values = [gate.mean(), gate.min(), gate.max(), raw.mean(), raw.min(), raw.max()]
            if readout.halt_probs is not None and readout.receiving is not None:
                # per_token: over the positions that receive memory
                where = readout.receiving
                sums = readout.halt_probs.to(gate.dtype).sum(-1)
                count = where.sum().clamp_min(1)
                cycles = expected_cycles(readout.halt_dist.to(gate.dtype))
                values += [torch.where(where, sums, 0.0).sum() / count,
                           torch.where(where, sums, float("inf")).amin(),
                           torch.where(where, sums, float("-inf")).amax(),
                           torch.where(where, cycles, 0.0).sum() / count]
            elif readout.halt_probs is not None:
                sums = readout.halt_probs.to(gate.dtype).sum(1)
                values += [sums.mean(), sums.min(), sums.max(),
                           expected_cycles(readout.halt_dist.to(gate.dtype)).mean()]
            else:
                zero = gate.new_zeros(())
                values += [zero, zero, zero, torch.full_like(zero, float(self.cfg.h_cycles))]  # no copy
            return torch.stack(values)

    # ------------------------------------------------------------------ training forward
    def forward(self, input_ids: torch.Tensor, prompt_lens: torch.Tensor,
                labels: torch.Tensor | None = None, gate_scale: float = 1.0) -> ModelOutput:
        """input_ids [b, t] (right-padded); prompt_lens [b]; labels [b, t] next-token targets
        aligned to positions (-100 = ignore); gate_scale in [0, 1] from the trainer's schedule."""
        cfg = self.cfg
        gate_scale = float(gate_scale)
        length = input_ids.shape[1]
        # prompt_lens on the CPU (as the trainer passes them) give the pool its slice without a sync
        longest = (min(int(prompt_lens.max()), length) if prompt_lens.numel() else 0) if not prompt_lens.is_cuda else None
        # per_token: positions before the shortest prompt's last one never receive memory, so the
        # HRM need not run there (known without a sync only when prompt_lens are on the CPU)
        first = (max(int(prompt_lens.min()) - 1, 0) if prompt_lens.numel() else 0) if longest is not None else 0
        first = min(first, max(length - 1, 0))
        prompt_lens = prompt_lens.to(input_ids.device, non_blocking=True).clamp(0, length)
        split = self._split
        h = self.decoder.run(self.decoder.embed(input_ids), 0, split)

        readout = None
        h_top = h
        if cfg.hrm_enabled:
            if gate_scale == 0.0:
                with torch.no_grad():  # diagnostics only; the decoder is left untouched
                    readout = self.read_hrm(h, prompt_lens, 0.0, longest, first)
            else:
                readout = self.read_hrm(h, prompt_lens, gate_scale, longest, first)
                h_top = add_memory(h, gated(readout.gate, readout.memory), prompt_lens)
        logits = self.decoder.logits(self.decoder.run(h_top, split, cfg.n_layers))

        zero = at_least_fp32(logits.new_zeros(()))
        halt_loss = halt_penalty = zero
        if readout is not None and readout.halt_probs is not None and gate_scale != 0.0:
            halt_penalty = halting_penalty(readout.penalty_probs, cfg.halt_target, readout.receiving)
            halt_loss = cfg.halting_weight * readout.gate.mean().detach() * halt_penalty
        out = ModelOutput(logits=logits, halt_loss=halt_loss, halt_penalty=halt_penalty,
                          diagnostic_values=self._diagnostics(readout, logits))
        if labels is None:
            return out

        # deep supervision scores only positions that receive memory: before prompt_len - 1 an
        # intermediate decode is the main decode bit for bit, and would dilute ds_loss
        receiving = receives_memory(prompt_lens, length)
        memory_labels = labels.masked_fill(~receiving, IGNORE_INDEX)
        out.lm_loss, out.lm_mem_loss = lm_losses(logits, labels, receiving)
        out.ds_loss = zero
        if readout is not None and readout.cycle_memories and gate_scale != 0.0:
            # same gate, same decoder top half, memory of each intermediate cycle
            losses = [token_cross_entropy(self.decoder.logits(self.decoder.run(
                add_memory(h, gated(readout.gate, m), prompt_lens), split, cfg.n_layers)), memory_labels)
                for m in readout.cycle_memories]
            out.ds_loss = torch.stack(losses).mean()
        out.loss = out.lm_loss + cfg.ds_weight * out.ds_loss + halt_loss
        return out

    # ------------------------------------------------------------------ recurrent generation
    def prefill(self, prompt_ids: torch.Tensor, gate_scale: float = 1.0,
                ) -> tuple[torch.Tensor, DecodeState]:
        """Whole prompt [b, p] in the chunked form -> (logits of the last position, state)."""
        b, p = prompt_ids.shape
        if p < 1:
            raise ValueError("prefill: the prompt must have at least one token")
        lens = torch.full((b,), p, dtype=torch.long, device=prompt_ids.device)
        split = self._split
        states: list[MixerState] = []
        h = self.decoder.run(self.decoder.embed(prompt_ids), 0, split, states)
        memory = prompt = gate = None
        if self.cfg.hrm_enabled and float(gate_scale) != 0.0:
            readout = self.read_hrm(h, lens, float(gate_scale), p, p - 1)
            h = add_memory(h, gated(readout.gate, readout.memory), lens)
            if readout.prompt is not None:
                prompt, gate = readout.prompt, readout.gate
            else:
                memory = gated(readout.gate, readout.memory)
        h = self.decoder.run(h, split, self.cfg.n_layers, states)
        return self.decoder.logits(h[:, -1]), DecodeState(layers=states, memory=memory, prompt=prompt, gate=gate)

    def step(self, token_ids: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """One new token per sample [b] -> logits [b, vocab]; ``state`` is advanced in place."""
        split = self._split
        h = self.decoder.step(self.decoder.embed(token_ids), 0, split, state.layers)
        if state.memory is not None:
            h = h + state.memory.to(h.dtype)
        elif state.prompt is not None:  # per_token: this position's own latent
            every = torch.ones(h.shape[0], 1, dtype=torch.bool, device=h.device)
            memory = self._read_positions(h[:, None], state.prompt, every).memory[:, 0]
            h = h + (state.gate[:, None] * memory).to(h.dtype)
        h = self.decoder.step(h, split, self.cfg.n_layers, state.layers)
        return self.decoder.logits(h)

    @torch.no_grad()
    def generate(self, prompt_ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
                 top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
                 generator: torch.Generator | None = None, gate_scale: float = 1.0) -> torch.Tensor:
        """Prompt [b, p] (all rows the same length) -> [b, p + new] with the prompt in front.

        Constant work per new token (recurrent step form). After a row emits ``eos_id`` it is
        filled with ``eos_id``; generation stops early once every row has.
        """
        logits, state = self.prefill(prompt_ids, gate_scale)
        pieces = [prompt_ids]
        finished = torch.zeros(prompt_ids.shape[0], dtype=torch.bool, device=prompt_ids.device)
        for i in range(max_new_tokens):
            token = sample_next(logits, temperature, top_k, top_p, generator)
            if eos_id is not None:
                token = torch.where(finished, torch.full_like(token, eos_id), token)
                finished |= token == eos_id
            pieces.append(token[:, None])
            if i == max_new_tokens - 1 or (eos_id is not None and bool(finished.all())):
                break
            logits = self.step(token, state)
        return torch.cat(pieces, dim=1)
