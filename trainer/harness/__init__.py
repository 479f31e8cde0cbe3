"""Our checkpoints inside lm-evaluation-harness: the ``hrm`` model of ``lm_eval``.

    python -m trainer.harness --model hrm --model_args run=runs/NAME --tasks gsm8k,wikitext
    hrm-lm-eval ...                       (the same, as a console script of the package)

lm-eval 0.4.13 finds models in its registry only: an external one is registered with
``@register_model`` when its module is imported (its docs' "external library usage"; its CLI has
no option that imports a module, EleutherAI/lm-evaluation-harness#1621). ``trainer.harness``
therefore registers the adapter and hands every argument to lm-eval's own CLI unchanged; in
Python, ``import trainer.harness`` then ``lm_eval.simple_evaluate(model="hrm", model_args=...)``.

model_args: ``run`` (run name, run dir, best-model dir or checkpoint file, as for
``trainer.eval``), ``runs_dir``, ``data_dir``, ``tokenizer``, ``gate_scale``, ``max_length``
(default: the run's max_seq_len), ``max_gen_toks`` (256), ``add_bos`` (true: contexts start with
bos, as our corpus rows do; the rolling loglikelihood's first window is always conditioned on it).

* loglikelihood: one forward over context + continuation (cut to ``max_length`` from the left);
  the HRM reads the context (``prompt_lens`` = context length), as in training on a row.
* loglikelihood_rolling: lm-eval's disjoint rolling windows, each one forward.
* generate_until: our batched recurrent generation (trainer/eval/generation.py), greedy or
  sampled, cut at the first ``until`` string.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model

__all__ = ["HRMHarnessLM", "MODEL_NAME"]

MODEL_NAME = "hrm"


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")


@register_model(MODEL_NAME)
class HRMHarnessLM(TemplateLM):
    backend = "causal"

    def __init__(self, run: str, runs_dir: str = "runs", data_dir: str | None = None, tokenizer: str | None = None,
                 gate_scale: float | None = None, max_length: int | None = None, max_gen_toks: int = 256,
                 add_bos: bool | str = True, device: str | None = None, batch_size: int | str = 8, **_: Any):
        super().__init__()
        from trainer.eval.load import load_evaluable

        device = str(device or "cpu")
        if device.startswith("cuda") and not torch.cuda.is_available():
            device = "cpu"  # lm-eval's CLI asks for cuda by default; its hf model falls back the same way
        self.ev = load_evaluable(run, runs_dir=runs_dir, data_dir=data_dir, tokenizer=tokenizer, device=device,
                                 gate_scale=None if gate_scale is None else float(gate_scale))
        self._max_length = int(max_length or self.ev.max_seq_len)
        self.max_gen_toks = int(max_gen_toks)
        self.add_bos = _flag(add_bos)
        self._batch_size = int(batch_size) if str(batch_size).isdigit() else 8  # "auto": a fixed size

    # ------------------------------------------------------------------ what lm-eval asks about
    @property
    def eot_token_id(self) -> int:
        return self.ev.tokenizer.eos_id

    @property
    def prefix_token_id(self) -> int:
        return self.ev.tokenizer.bos_id

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def device(self) -> torch.device:
        return self.ev.device

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **_: Any) -> list[int]:
        ids = self.ev.encode_text(string)
        bos = self.add_bos if add_special_tokens is None else add_special_tokens
        return [self.prefix_token_id] + ids if bos else ids

    def tok_decode(self, tokens, **_: Any) -> str:
        return self.ev.decode(list(tokens))

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def _token_logprobs(self, ids: list[int], prompt_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p of ids[1:], greedy ids) for one sequence: one forward of ids[:-1]."""
        model = self.ev.model
        inp = torch.tensor([ids[:-1]], dtype=torch.long, device=self.device)
        lens = torch.tensor([max(1, min(prompt_len, len(ids) - 1))], device=self.device)
        logits = model(inp, lens, gate_scale=self.ev.gate_scale).logits[0].float()
        logp = F.log_softmax(logits, dim=-1)
        target = torch.tensor(ids[1:], dtype=torch.long, device=self.device)
        return logp.gather(1, target[:, None])[:, 0], logp.argmax(-1)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **_: Any) -> list[tuple[float, bool]]:
        out = []
        for _key, context, continuation in requests:
            whole = (list(context) + list(continuation))[-(self.max_length + 1):]
            n = len(continuation)
            logp, greedy = self._token_logprobs(whole, len(whole) - n)
            scored = torch.tensor(whole[-n:], device=self.device)
            out.append((float(logp[-n:].sum()), bool((greedy[-n:] == scored).all())))
            if _key is not None and hasattr(self, "cache_hook"):
                self.cache_hook.add_partial("loglikelihood", _key, out[-1])
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        out = []
        for (string,) in [r.args for r in requests]:
            total = 0.0
            windows = get_rolling_token_windows(token_list=self.ev.encode_text(string),
                                                prefix_token=self.prefix_token_id,
                                                max_seq_len=self.max_length, context_len=1)
            for context, continuation in map(make_disjoint_window, windows):
                total += self._loglikelihood_tokens([(None, context, continuation)])[0][0]
            out.append(total)
        return out

    # ------------------------------------------------------------------ generation
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Requests with the same generation settings are generated together, ``batch_size`` at a
        time (rows never see padding: trainer/eval/generation.py)."""
        import json

        from trainer.eval.generation import Sampling, generate_ids, truncate_at

        args = [r.args for r in requests]
        groups: dict[str, list[int]] = {}
        for i, (_context, gen_kwargs) in enumerate(args):
            groups.setdefault(json.dumps(gen_kwargs or {}, sort_keys=True, default=str), []).append(i)
        out: list[str] = [""] * len(args)
        for key, rows in groups.items():
            kwargs = json.loads(key)
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kwargs.get("max_gen_toks", self.max_gen_toks))
            temperature = float(kwargs.get("temperature", 0.0) or 0.0) if kwargs.get("do_sample") else 0.0
            sampling = Sampling(temperature=temperature, top_k=kwargs.get("top_k"), top_p=kwargs.get("top_p"))
            prompts = [self.tok_encode(args[i][0])[-self.max_length:] for i in rows]
            new = generate_ids(self.ev.model, prompts, max_new, sampling=sampling, eos_id=self.eot_token_id,
                               gate_scale=self.ev.gate_scale, batch_size=self.batch_size, device=self.device)
            for i, tokens in zip(rows, new):
                text = self.tok_decode(tokens)
                out[i] = truncate_at(text, until) if until else text
                if hasattr(self, "cache_hook"):
                    self.cache_hook.add_partial("generate_until", args[i], out[i])
        return out
