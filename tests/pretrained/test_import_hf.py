"""``python -m trainer.import_hf``: a transformers / mamba_ssm Mamba2 checkpoint as a run directory,
checked against transformers' own Mamba2ForCausalLM (logits and greedy tokens)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from corpus.errors import UserError
from tests.pretrained.conftest import PADDING_ROWS, REPO_ROOT

pytest.importorskip("transformers", reason="transformers is in the dev and hf extras")


def _hf(directory):
    from transformers import Mamba2ForCausalLM

    return Mamba2ForCausalLM.from_pretrained(directory).float().eval()


def _ours(run):
    from trainer.eval.load import load_evaluable

    return load_evaluable(run / "best-model")


def test_logits_and_greedy_tokens_equal_transformers(hf_checkpoint, imported_run):
    hf, ev = _hf(hf_checkpoint), _ours(imported_run)
    model, tok = ev.model, ev.tokenizer
    n_tokens = tok.vocab_size
    assert model.cfg.vocab_size == n_tokens + PADDING_ROWS and model.cfg.output_vocab == n_tokens
    assert model.cfg.hrm_enabled and not model.bridge.memory_proj.weight.any()  # the HRM starts shut
    ids = torch.tensor([tok.tokenizer.encode("Question: Tom has 3 apples and buys 4 more.").ids] * 2)
    ids[1, 3:] = torch.flip(ids[1, 3:], [0])
    with torch.no_grad():
        theirs = hf(ids).logits
        ours = model(ids, torch.full((2,), 4), gate_scale=1.0).logits  # gate open: still the checkpoint
    assert ours.shape == theirs.shape
    diff = (ours[..., :n_tokens] - theirs[..., :n_tokens]).abs().max().item()
    assert diff < 1e-4, diff
    assert torch.isinf(ours[..., n_tokens:]).all() and (ours[..., n_tokens:] < 0).all()  # padding never produced

    prompt = ids[:1, :6]
    with torch.no_grad():
        mine = model.generate(prompt, max_new_tokens=40)
        ref = hf.generate(prompt, max_new_tokens=40, do_sample=False, eos_token_id=None, pad_token_id=0,
                          suppress_tokens=list(range(n_tokens, n_tokens + PADDING_ROWS)))
    assert mine.tolist() == ref.tolist()


def test_run_directory_serves_generate_and_init_files(imported_run):
    best = imported_run / "best-model"
    record = json.loads((best / "import.json").read_text())
    assert record["layout"] == "transformers" and record["embedding_rows"] == record["tokenizer_vocab"] + PADDING_ROWS
    # GPT-NeoX-style specials mapped without a hand-written sidecar: pad = bos = eos = <|endoftext|>
    assert record["specials"] == {"pad": "<|endoftext|>", "bos": "<|endoftext|>", "eos": "<|endoftext|>"}
    sums = json.loads((best / "checksums.json").read_text())
    assert {"model.pt", "tokenizer.json", "tokenizer.specials.json", "import.json"} <= set(sums)
    done = subprocess.run([sys.executable, "-m", "trainer.generate", str(imported_run), "--prompt", "The quick",
                           "--max-new-tokens", "5", "--json", "--no-bos"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out["token_ids"]) <= 5 and max(out["token_ids"] or [0]) < record["tokenizer_vocab"]


def test_mamba_ssm_layout_gives_the_same_model(hf_checkpoint, imported_run, tmp_path):
    """mamba_ssm's config.json + pytorch_model.bin (vocab padded by pad_vocab_size_multiple)."""
    from safetensors.torch import load_file

    from trainer.import_hf import import_checkpoint

    hf_cfg = json.loads((hf_checkpoint / "config.json").read_text())
    state = load_file(str(hf_checkpoint / "model.safetensors"))
    state = {k.replace("backbone.embeddings.", "backbone.embedding."): v for k, v in state.items()}
    src = tmp_path / "mamba-ssm"
    src.mkdir()
    torch.save(state, src / "pytorch_model.bin")
    n_tokens = hf_cfg["vocab_size"] - PADDING_ROWS
    (src / "config.json").write_text(json.dumps({
        "d_model": hf_cfg["hidden_size"], "d_intermediate": 0, "n_layer": hf_cfg["num_hidden_layers"],
        "vocab_size": n_tokens, "pad_vocab_size_multiple": 32, "tie_embeddings": False,  # 300 tokens -> 320 rows
        "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
        "ssm_cfg": {"layer": "Mamba2", "d_state": hf_cfg["state_size"], "headdim": hf_cfg["head_dim"],
                    "ngroups": hf_cfg["n_groups"], "chunk_size": hf_cfg["chunk_size"]}}))
    run = tmp_path / "runs" / "from-mamba-ssm"
    import_checkpoint(str(src), run, tokenizer=str(hf_checkpoint), say=lambda m: None)
    a = torch.load(run / "best-model" / "model.pt", weights_only=True)
    b = torch.load(imported_run / "best-model" / "model.pt", weights_only=True)
    assert a["model_config"]["vocab_size"] == b["model_config"]["vocab_size"]
    for key, value in b["model"].items():
        if key.startswith("decoder."):
            assert torch.equal(a["model"][key], value), key


@pytest.mark.parametrize("change, field", [
    ({"use_bias": True}, "use_bias"),
    ({"time_step_limit": [0.0, 0.1]}, "time_step_limit"),
    ({"hidden_act": "gelu"}, "hidden_act"),
])
def test_transformers_fields_we_do_not_implement_are_refused(hf_checkpoint, change, field):
    from trainer.import_hf.layouts import detect

    config = json.loads((hf_checkpoint / "config.json").read_text())
    detect(config, "config.json")  # the checkpoint itself is accepted
    with pytest.raises(UserError, match=f"config.json: {field} = .*which this model does not implement"):
        detect({**config, **change}, "config.json")


def test_a_refusal_is_one_line_and_writes_nothing(hf_checkpoint, tmp_path):
    """The checkpoint's own config.json with a bias (refused before any weight is read)."""
    field = "use_bias"
    src = tmp_path / "hf"
    src.mkdir()
    config = json.loads((hf_checkpoint / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "use_bias": True}))
    done = subprocess.run([sys.executable, "-m", "trainer.import_hf", str(src), "--out", str(tmp_path / "run")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "does not implement" in lines[0], done.stderr
    assert not (tmp_path / "run" / "best-model").exists()


def test_attention_and_mlp_layers_are_refused(tmp_path):
    from trainer.import_hf.layouts import detect

    base = {"d_model": 64, "n_layer": 2, "vocab_size": 300, "ssm_cfg": {"layer": "Mamba2"}}
    with pytest.raises(UserError, match="attn_layer_idx.*attention layers"):
        detect({**base, "attn_layer_idx": [1]}, "config.json")
    with pytest.raises(UserError, match="d_intermediate.*MLP layers"):
        detect({**base, "d_intermediate": 128}, "config.json")
    with pytest.raises(UserError, match="not a Mamba2 checkpoint"):
        detect({"model_type": "llama"}, "config.json")


def test_trainer_eval_scores_an_import_with_both_gsm8k_scorings(imported_run, tmp_path):
    from trainer.eval.__main__ import main as eval_main

    problems = tmp_path / "gsm8k.jsonl"
    problems.write_text(json.dumps({"question": "Tom has 3 apples and buys 4 more. How many?",
                                    "answer": "3 + 4 = 7\n#### 7"}) + "\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "eval"
    assert eval_main([str(imported_run), "--suite", "gsm8k", "--from", f"gsm8k={problems}", "--eval-data", str(empty),
                      "--max-new-tokens", "8", "--quiet", "--threads", "1", "--out", str(out)]) == 0
    metrics = json.loads((out / "best-model.json").read_text())["suites"]["gsm8k"]["metrics"]
    assert {"lenient_accuracy", "lm_eval_strict_match", "lm_eval_flexible_extract"} <= set(metrics)
    assert "accuracy" not in metrics and metrics["n"] == 1
