"""The Mamba2 language-model decoder: embedding, pre-norm residual Mamba2 layers, tied LM head.

It exposes its layers as ranges (``run(h, start, stop)``) because the HRM bridge adds memory
between two of them; the model class stitches the halves together. The residual stream stays in
the embedding dtype (fp32 under autocast: mixer outputs are added to it, not replacing it).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainer.model.config import ModelConfig
from trainer.model.mamba2 import Mamba2Mixer, MixerState
from trainer.model.norms import RMSNorm


class ResidualBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mixer = Mamba2Mixer(cfg)

    def forward(self, h: torch.Tensor, return_state: bool = False):
        if return_state:
            out, state = self.mixer(self.norm(h), return_state=True)
            return h + out, state
        return h + self.mixer(self.norm(h))

    def step(self, h: torch.Tensor, state: MixerState) -> tuple[torch.Tensor, MixerState]:
        out, state = self.mixer.step(self.norm(h), state)
        return h + out, state


class Mamba2Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(ResidualBlock(cfg) for _ in range(cfg.n_layers))
        self.norm_f = RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self._init_weights()
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embedding.weight

    @torch.no_grad()
    def _init_weights(self) -> None:
        """Embedding N(0, init_std); out_proj scaled by 1/sqrt(n_layers) so depth keeps the
        residual stream's variance in check (GPT-2 / mamba_ssm practice)."""
        nn.init.normal_(self.embedding.weight, std=self.cfg.init_std)
        if not self.cfg.tie_embeddings:
            nn.init.normal_(self.lm_head.weight, std=self.cfg.init_std)
        for layer in self.layers:
            layer.mixer.out_proj.weight.div_(math.sqrt(self.cfg.n_layers))

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(input_ids)

    def run(self, h: torch.Tensor, start: int, stop: int,
            states: list[MixerState] | None = None) -> torch.Tensor:
        """Layers [start, stop) over a whole sequence; appends each layer's final state to
        ``states`` when a list is given (prefill for generation)."""
        for layer in self.layers[start:stop]:
            if states is None:
                h = layer(h)
            else:
                h, state = layer(h, return_state=True)
                states.append(state)
        return h

    def step(self, h: torch.Tensor, start: int, stop: int,
             states: list[MixerState]) -> torch.Tensor:
        """Layers [start, stop) for one position; ``states`` is indexed by layer and updated."""
        for i in range(start, stop):
            h, states[i] = self.layers[i].step(h, states[i])
        return h

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(self.norm_f(h))
        used = self.cfg.output_vocab
        if 0 < used < self.cfg.vocab_size:  # a padded vocabulary: its extra rows are never produced
            padding = torch.arange(self.cfg.vocab_size, device=logits.device) >= used
            logits = logits.masked_fill(padding, float("-inf"))
        return logits
