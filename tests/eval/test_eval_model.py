"""The model-facing halves of the suites, against independent computations on a tiny real model:
prompt rendering = corpus rows, batched recurrent generation = ``model.generate`` per prompt,
perplexity = exp(mean NLL) of plain forwards, bits per byte, halting readout = the forward's
diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.eval import tiny_run
from trainer.eval.datasets import DataSources, EvalItem, Window, _raw_examples, _windows_from_text
from trainer.eval.generation import Sampling, generate_ids, text_generator
from trainer.eval.load import Evaluable
from trainer.eval.suites import halting, ppl

torch.set_num_threads(1)
ASCII_DOC = ("= Rivers =\n\nA river is a natural stream of water that flows toward an ocean, a lake or another "
             "river. Rivers carry sediment and shape valleys over long periods of time. ") * 6


@pytest.fixture(scope="module")
def info(tmp_path_factory):
    return tiny_run.train_tokenizer_file(tmp_path_factory.mktemp("tok") / "tokenizer.json")


def make_ev(info, gate: float = 0.7, seed: int = 0, **overrides) -> Evaluable:
    from trainer.model import HRMMamba2LM

    torch.manual_seed(seed)
    model = HRMMamba2LM(tiny_run.tiny_config(info.vocab_size, **overrides)).eval()
    if model.cfg.hrm_enabled:
        with torch.no_grad():
            model.bridge.memory_proj.weight.normal_(0.0, 0.3)
    return Evaluable(model=model, tokenizer=info, gate_scale=gate, device=torch.device("cpu"), max_seq_len=64)


def test_prompts_and_windows_are_rendered_as_corpus_rows(info):
    from corpus.rows import RowOptions, tokenize_examples

    ev = make_ev(info)
    examples = tiny_run.examples()
    rows = tokenize_examples([(f"r{i}", ex) for i, ex in enumerate(examples)], info,
                                RowOptions("gsm8k", 512, 0.0, 0), lambda f: 0)
    b = rows["train"]
    starts = np.concatenate([[0], np.cumsum(b.prompt_lens)])
    for i, ex in enumerate(examples):
        assert ev.encode_prompt(ex.prompt) == b.prompt_tokens[starts[i]:starts[i + 1]].tolist()
    path = ev.tokenizer.path.parent / "doc.txt"
    path.write_text(ASCII_DOC)
    (doc, _), = _raw_examples("wiki", [str(path)])  # the wiki source's own reading of the file
    assert doc.document and doc.prompt.strip() == ASCII_DOC.strip()
    rows = tokenize_examples([("d", doc)], info, RowOptions("wiki", 64, 0.0, 0), lambda f: 0)
    b = rows["train"]
    built = [(b.prompt_tokens[a:a + p].tolist() + b.target_tokens[c:c + t].tolist(), int(p)) for a, p, c, t in zip(
        np.concatenate([[0], np.cumsum(b.prompt_lens)[:-1]]), b.prompt_lens,
        np.concatenate([[0], np.cumsum(b.target_lens)[:-1]]), b.target_lens)]
    mine = _windows_from_text("wiki", [str(path)], ev, seq_len=64)
    assert [(w.tokens, w.prompt_len) for w in mine] == built and len(mine) >= 3


def test_batched_generation_equals_generate_on_each_prompt(info):
    ev = make_ev(info)
    prompts = [ev.encode_prompt(t) for t in ("Tom has", "A box holds 6 pens. How many", "x", "Sara had 10 dollars")]
    batched = generate_ids(ev.model, prompts, 12, gate_scale=ev.gate_scale, batch_size=3)
    for p, got in zip(prompts, batched):
        alone = ev.model.generate(torch.tensor([p]), 12, gate_scale=ev.gate_scale)[0, len(p):].tolist()
        assert got == alone and len(got) == 12
    # top-k 1 and a tiny nucleus are greedy whatever the temperature; a seed fixes sampling
    assert generate_ids(ev.model, prompts, 12, sampling=Sampling(1.5, top_k=1), gate_scale=0.7) == batched
    assert generate_ids(ev.model, prompts, 12, sampling=Sampling(1.0, top_p=1e-6), gate_scale=0.7) == batched
    one = generate_ids(ev.model, prompts, 12, sampling=Sampling(1.0, seed=3), gate_scale=0.7)
    assert one == generate_ids(ev.model, prompts, 12, sampling=Sampling(1.0, seed=3), gate_scale=0.7)
    assert one != batched  # a random model sampled at temperature 1 leaves the greedy path


def test_generation_stops_at_eos(info):
    ev = make_ev(info)
    prompts = [ev.encode_prompt("Tom has"), ev.encode_prompt("A box holds")]
    free = generate_ids(ev.model, prompts, 8, gate_scale=0.7)
    k = next(i for i in range(1, 8) if free[0][i] not in free[0][:i])  # a token row 0 first emits late
    eos = free[0][k]  # call it the end
    stopped = generate_ids(ev.model, prompts, 8, eos_id=eos, gate_scale=0.7)
    assert stopped[0] == free[0][:k] and k >= 1
    cut = free[1].index(eos) if eos in free[1] else 8
    assert stopped[1] == free[1][:cut]


def test_perplexity_is_exp_of_the_mean_token_nll_of_plain_forwards(info):
    ev = make_ev(info, gate=0.7)
    ids = ev.encode_text(ASCII_DOC)
    windows = [Window("a", ids[:40], 20), Window("b", ids[40:57], 3), Window("c", ids[57:120], 31),
               Window("d", ids[120:122], 1)]
    result = ppl.evaluate(windows, ppl.model_nll_fn(ev, batch_size=3), ppl.token_byte_lengths(info.tokenizer))
    total, count = 0.0, 0
    with torch.no_grad():
        for w in windows:  # one window at a time, no padding, the model's own loss
            t = torch.tensor([w.tokens])
            labels = torch.cat([t[:, 1:], torch.tensor([[-100]])], dim=1)
            out = ev.model(t, torch.tensor([w.prompt_len]), labels, gate_scale=0.7)
            total += float(out.lm_loss) * (len(w.tokens) - 1)
            count += len(w.tokens) - 1
    m = result.metrics
    assert m["tokens"] == count == 39 + 16 + 62 + 1
    assert m["nll"] == pytest.approx(total / count, rel=1e-5) and m["ppl"] == pytest.approx(math.exp(total / count), rel=1e-5)
    scored_bytes = sum(len(ev.decode(w.tokens[1:]).encode()) for w in windows)  # ASCII: no split characters
    assert m["bytes"] == scored_bytes
    assert m["bits_per_byte"] == pytest.approx(total / (math.log(2) * scored_bytes), rel=1e-5)


def test_bits_per_byte_counts_the_utf8_bytes_each_token_stands_for(info):
    text = "Café owners sell apple pie — 中文, naïve 🙂 text!"
    ids = info.tokenizer.encode(text, add_special_tokens=False).ids
    lengths = ppl.token_byte_lengths(info.tokenizer)
    assert int(lengths[ids].sum()) == len(text.encode("utf-8"))
    assert lengths[info.bos_id] == lengths[info.eos_id] == lengths[info.pad_id] == 0
    # a model that puts probability 1/2 on every scored token: 1 bit per token
    windows = [Window("w", [info.bos_id] + ids, 1)]
    result = ppl.evaluate(windows, lambda ws: [np.full(len(w.tokens) - 1, math.log(2)) for w in ws], lengths)
    assert result.metrics["ppl"] == pytest.approx(2.0)
    assert result.metrics["bits_per_byte"] == pytest.approx(len(ids) / len(text.encode("utf-8")))


@pytest.mark.parametrize("design", ["pooled", "per_token"])
def test_halting_readout_per_prompt_equals_the_forward_diagnostics(info, design):
    ev = make_ev(info, gate=0.6, hrm_design=design)
    items = [EvalItem(f"i{k}", text, "", tier=k % 2, group="arith") for k, text in
             enumerate(["Tom has 3 apples", "What is 12 + 7?", "x", "A box holds 6 pens. How many pens?"])]
    result = halting.evaluate(items, halting.model_probe(ev, batch_size=3))
    for it, rec in zip(items, result.records):
        ids = torch.tensor([ev.encode_prompt(it.prompt)])
        d = ev.model(ids, torch.tensor([ids.shape[1]]), gate_scale=0.6).diagnostics
        assert rec["halt_sum"] == pytest.approx(d["halt_sum_mean"], abs=1e-5)
        assert rec["expected_cycles"] == pytest.approx(d["expected_cycles"], abs=1e-5)
        assert rec["gate"] == pytest.approx(d["gate_mean"], abs=1e-6)
        assert sum(rec["dist"]) == pytest.approx(1.0) and len(rec["dist"]) == 3
    m = result.metrics
    for tier in (0, 1):
        sums = [r["halt_sum"] for r in result.records if r["tier"] == tier]
        assert m[f"tier{tier}/halt_sum_mean"] == pytest.approx(np.mean(sums)) and m[f"tier{tier}/n"] == 2
    assert m["p_cycle1"] + m["p_cycle2"] + m["p_cycle3"] == pytest.approx(1.0)
    assert 1.0 <= m["expected_cycles_mean"] <= 3.0 and not result.notes

    plain = make_ev(info, use_halting=False)
    off = halting.evaluate(items, halting.model_probe(plain))
    assert off.metrics["expected_cycles_mean"] == 3.0 and "halt_sum_mean" not in off.metrics
    assert "without use_halting" in off.notes[0]


def test_suites_run_on_a_model_through_the_runner(info, tmp_path):
    """run() wiring: data missing is a skip with the reason; a model's generations get scored."""
    from trainer.eval.runner import run_suites, write_results
    from trainer.eval.suites.base import Options

    ev = make_ev(info)
    ev.tag, ev.path = "tiny", tmp_path / "model.pt"
    data = tmp_path / "mini.jsonl"
    data.write_text('{"question": "What is 2 + 3?", "answer": "#### 5"}\n')
    sources = DataSources(raw_dir=tmp_path, paths={"gsm8k": [str(data)]})
    doc = run_suites(ev, ["gsm8k", "code", "arith"], sources,
                     Options(limit=2, max_new_tokens=4, arith_tasks=("arith",)))
    s = doc["suites"]
    assert s["gsm8k"].status == "ok" and s["gsm8k"].metrics["n"] == 1 and len(s["gsm8k"].records[0]["generation"]) > 0
    assert s["code"].status == "skipped" and "no humaneval evaluation data" in s["code"].reason
    assert s["arith"].metrics["n"] == 4 and s["arith"].metrics["overlap_checked"] == 0  # 2 items: 1 per tier
    generate_fn = text_generator(ev, 4)
    assert [r["generation"] for r in s["gsm8k"].records] == generate_fn(["What is 2 + 3?"])
    paths = write_results(doc, tmp_path / "out", "tiny")
    assert paths["json"].is_file() and (tmp_path / "out" / "tiny" / "arith.jsonl").read_text().count("\n") == 4
    assert "| code | skipped |" in paths["markdown"].read_text()
