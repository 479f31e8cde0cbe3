"""Model configuration: every size and switch of the HRM x Mamba2 language model.

A plain dataclass so a checkpoint can store ``dataclasses.asdict(cfg)`` and rebuild it with
``ModelConfig(**d)``. Switches that only change the forward pass (deep supervision, halting,
cycle counts) create no parameters of their own, so a checkpoint trained with them off loads
with them on and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass

HRM_DESIGNS = ("pooled", "per_token")


@dataclass
class ModelConfig:
    vocab_size: int
    # decoder (Mamba2)
    d_model: int = 256
    n_layers: int = 8
    d_state: int = 64
    d_conv: int = 4
    expand: int = 2
    headdim: int = 64
    ngroups: int = 1
    chunk_size: int = 64
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    # 0: every row is a token. Else the tokenizer's size when the embedding has more rows (a
    # pretrained checkpoint padded to a multiple of 16): logits of rows >= it are -inf, never produced
    output_vocab: int = 0
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    dt_init_floor: float = 1e-4
    a_init_min: float = 1.0
    a_init_max: float = 16.0
    init_std: float = 0.02
    use_kernels: bool = True  # mamba_ssm fused kernels when installed and tensors are on CUDA
    # HRM core
    hrm_enabled: bool = True
    # "pooled": slots pooled once from the prompt, one memory vector per sequence (the seed design);
    # "per_token": a latent per position that re-reads the prompt every update (docs/training.md)
    hrm_design: str = "pooled"
    d_hrm: int = 128
    hrm_slots: int = 4
    hrm_heads: int = 4
    hrm_layers: int = 1  # post-norm slot blocks per module (H and L each)
    hrm_mlp_ratio: int = 2
    h_cycles: int = 2
    l_steps: int = 2
    hrm_bptt_steps: int = 1  # last n L and n H updates carry gradient; 1 = HRM one-step rule
    # TRM: every L update of a cycle whose H update carries gradient carries it too
    hrm_whole_cycle_grad: bool = False
    bridge_layer: int = -1  # decoder layer whose input receives the memory; -1 = n_layers // 2
    # gate = hrm_gate_min + (1 - hrm_gate_min) * sigmoid(head): a floor the learned gate cannot
    # shut below (0 = the seed's gate). Why: under Adam a small, consistent push on the gate head
    # closes the gate in tens of steps, and a shut gate also shuts the memory's own gradient
    hrm_gate_min: float = 0.0
    # auxiliary objectives
    deep_supervision: bool = False
    ds_weight: float = 0.1
    use_halting: bool = False
    halting_weight: float = 0.005
    halt_target: float = 1.0
    halt_epsilon: float = 0.0  # eval only: stop cycling once every sample's unhalted mass < eps

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def n_heads(self) -> int:
        return self.d_inner // self.headdim

    @property
    def conv_dim(self) -> int:
        return self.d_inner + 2 * self.ngroups * self.d_state

    @property
    def bridge_index(self) -> int:
        return self.n_layers // 2 if self.bridge_layer < 0 else self.bridge_layer

    def validate(self) -> None:
        """Fail early with the field name, not deep inside a reshape."""
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(f"ModelConfig: {msg}")

        for name in ("vocab_size", "d_model", "n_layers", "d_state", "d_conv", "expand",
                     "headdim", "ngroups", "chunk_size", "d_hrm", "hrm_slots", "hrm_heads",
                     "hrm_layers", "hrm_mlp_ratio", "h_cycles", "l_steps", "hrm_bptt_steps"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        need(self.d_inner % self.headdim == 0,
             f"expand*d_model={self.d_inner} is not a multiple of headdim={self.headdim}")
        need(self.n_heads % self.ngroups == 0,
             f"n_heads={self.n_heads} is not a multiple of ngroups={self.ngroups}")
        need(self.d_hrm % self.hrm_heads == 0,
             f"d_hrm={self.d_hrm} is not a multiple of hrm_heads={self.hrm_heads}")
        need(self.bridge_layer == -1 or 0 <= self.bridge_layer < self.n_layers,
             f"bridge_layer={self.bridge_layer} must be -1 or in [0, n_layers={self.n_layers})")
        need(0 <= self.output_vocab <= self.vocab_size,
             f"output_vocab={self.output_vocab} must be in [0, vocab_size={self.vocab_size}]")
        need(self.hrm_design in HRM_DESIGNS,
             f"hrm_design={self.hrm_design!r} must be one of {', '.join(HRM_DESIGNS)}")
        need(0 < self.dt_min <= self.dt_max, "need 0 < dt_min <= dt_max")
        need(0 < self.a_init_min <= self.a_init_max, "need 0 < a_init_min <= a_init_max")
        need(self.ds_weight >= 0 and self.halting_weight >= 0, "loss weights must be >= 0")
        need(0.0 <= self.halt_epsilon < 1.0, "halt_epsilon must be in [0, 1)")
        need(0.0 <= self.hrm_gate_min < 1.0, f"hrm_gate_min={self.hrm_gate_min} must be in [0, 1)")

    # ------------------------------------------------------------------ presets
    @classmethod
    def demo(cls, vocab_size: int, **overrides) -> "ModelConfig":
        """CPU-sized model (~0.6M params + embeddings): a few hundred steps in minutes."""
        base = dict(vocab_size=vocab_size, d_model=128, n_layers=4, d_state=32, headdim=32,
                    chunk_size=32, d_hrm=64, hrm_slots=4, hrm_heads=4)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def size_50m(cls, vocab_size: int = 32000, **overrides) -> "ModelConfig":
        """~50M parameters at a 32k vocabulary (tied embeddings): the benchmark's larger size."""
        base = dict(vocab_size=vocab_size, d_model=512, n_layers=20, d_state=64, headdim=64,
                    chunk_size=64, d_hrm=256, hrm_slots=4, hrm_heads=4)
        base.update(overrides)
        return cls(**base)
