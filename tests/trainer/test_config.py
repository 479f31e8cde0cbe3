"""Flags and manifest sections: the blueprint's recipes translate one to one; mistakes are one line."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from corpus.errors import UserError
from trainer.config import build_model_config, load_config, parse_command_line

# The three training commands of the blueprint, flags verbatim (only the program and --dataset differ).
STAGE_A = """--dataset {m} --batch_size 22 --steps 308212 --learning_rate 0.00025 --warmup_steps 4000
 --lr_scheduler cosine --lr_min_ratio 0.05 --grad_clip 5.0 --val_every 1500 --run_name hrm-gated-pretrain
 --checkpoint_limit 5 --mixed_precision bf16 --eval_batch_size 22 --log_steps 1 --dataset_workers 30
 --save_best_model --optimizer adamw_8bit --max_seq_len 512 --max_val_samples 20000 --eval_loss_patience 3
 --patience_grace_steps 10000 --hrm_gate_warmup_steps 8000"""
STAGE_B = """--dataset {m} --batch_size 22 --steps 180000 --learning_rate 0.0002 --warmup_steps 2000
 --lr_scheduler cosine --lr_min_ratio 0.05 --grad_clip 5.0 --val_every 1500 --run_name hrm-stageB
 --checkpoint_limit 5 --mixed_precision bf16 --eval_batch_size 22 --log_steps 1 --dataset_workers 30
 --save_best_model --optimizer adamw_8bit --max_seq_len 512 --max_val_samples 20000 --eval_loss_patience 3
 --patience_grace_steps 5000 --hrm_gate_warmup_steps 1000"""
STAGE_C = """--dataset {m} --batch_size 20 --steps 400000 --learning_rate 0.00018 --warmup_steps 3000
 --lr_scheduler cosine --lr_min_ratio 0.05 --grad_clip 5.0 --val_every 2000 --run_name hrm-stageC
 --checkpoint_limit 8 --mixed_precision bf16 --eval_batch_size 20 --log_steps 1 --dataset_workers 40
 --save_best_model --optimizer adamw_8bit --max_seq_len 512 --max_val_samples 25000 --eval_loss_patience 4
 --patience_grace_steps 8000 --deep_supervision 1 --ds_weight 0.1 --use_halting 1 --halting_weight 0.01"""

MANIFEST = """
[run]
name = "tiny"

[data]
seed = 1

[model]
preset = "demo"
d_model = 64

[train]
batch_size = 4
steps = 10
learning_rate = 0.001

[eval]
val_every = 5
save_best_model = false
"""


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(MANIFEST)
    return path


def config(argv):
    return load_config(parse_command_line(argv))


def test_manifest_sections_and_defaults(manifest):
    cfg = config([str(manifest)])
    assert cfg.run_name == "tiny" and cfg.train.batch_size == 4 and cfg.train.steps == 10
    assert cfg.eval.val_every == 5 and cfg.eval.save_best_model is False
    assert cfg.model["preset"] == "demo" and cfg.model["d_model"] == 64 and cfg.model["h_cycles"] is None
    model = build_model_config(cfg.model, vocab_size=100)
    assert model.d_model == 64 and model.n_layers == 4 and model.vocab_size == 100  # demo preset + override
    assert len(cfg.manifest_sha) == 64


@pytest.mark.parametrize("recipe", [STAGE_A, STAGE_B, STAGE_C], ids=["stageA", "stageB", "stageC"])
def test_blueprint_recipes_translate_one_to_one(manifest, recipe):
    cfg = config(shlex.split(recipe.format(m=manifest)))
    flat = {**cfg.train.model_dump(), **cfg.eval.model_dump(), **cfg.model}
    tokens = shlex.split(recipe.format(m=manifest))
    pairs = [(t[2:], tokens[i + 1]) for i, t in enumerate(tokens[:-1])
             if t.startswith("--") and not tokens[i + 1].startswith("--")]
    assert len(pairs) >= 20
    for name, value in pairs:
        if name == "dataset":
            continue
        expected = value == "1" if isinstance(flat[name], bool) else type(flat[name])(value)
        assert flat[name] == expected, name
    assert cfg.eval.save_best_model is True and cfg.train.optimizer == "adamw_8bit"
    assert cfg.run_name.startswith("hrm-")
    if recipe is STAGE_C:
        assert cfg.model["deep_supervision"] is True and cfg.model["use_halting"] is True
        assert cfg.model["halting_weight"] == 0.01


def test_every_issue_flag_exists(manifest):
    names = """batch_size steps epochs learning_rate warmup_steps lr_scheduler lr_min_ratio grad_clip val_every
    run_name checkpoint_limit mixed_precision eval_batch_size log_steps dataset_workers save_best_model optimizer
    max_seq_len max_val_samples eval_loss_patience patience_grace_steps hrm_gate_warmup_steps gate_ramp_steps
    deep_supervision ds_weight use_halting halting_weight halt_target h_cycles l_steps reset_progress dry_run
    seed device init_from""".split()
    from trainer.config import flag_sections

    assert set(names) <= set(flag_sections())


def test_flag_forms(manifest):
    cfg = config([str(manifest), "--lr_scheduler=linear", "--dry_run", "--reset_progress", "0", "--h-cycles", "3",
                  "--init_from", ""])
    assert cfg.train.lr_scheduler == "linear" and cfg.train.dry_run is True
    assert cfg.train.reset_progress is False and cfg.model["h_cycles"] == 3 and cfg.train.init_from is None


def test_shipped_manifests_validate():
    from pathlib import Path

    shipped = sorted((Path(__file__).resolve().parents[2] / "manifests").glob("*.toml"))
    assert {p.stem for p in shipped} >= {"demo", "stageA", "stageB", "stageC"}
    by_name = {p.stem: config([str(p)]) for p in shipped}
    assert by_name["stageB"].train.init_from == by_name["stageA"].run_name == "hrm-gated-pretrain"
    assert by_name["stageC"].train.init_from == by_name["stageB"].run_name
    assert by_name["stageC"].model["use_halting"] is True and by_name["stageA"].train.optimizer == "adamw_8bit"


@pytest.mark.parametrize("argv, message", [
    (["--batch_sise", "3"], "unknown flag --batch_sise (did you mean --batch_size?)"),
    (["--batch_size", "abc"], "--batch_size: Input should be a valid integer"),
    (["--lr_scheduler", "step"], "--lr_scheduler: Input should be 'cosine', 'linear' or 'constant'"),
    (["--optimizer", "sgd"], "--optimizer: Input should be 'adamw' or 'adamw_8bit'"),
    (["--mixed_precision", "fp8"], "--mixed_precision: Input should be 'none', 'bf16' or 'fp16'"),
    (["--lr_min_ratio", "1.5"], "--lr_min_ratio: Input should be less than or equal to 1"),
    (["--epochs", "2"], "[train]: give steps or epochs, not both"),
    (["--use_halting", "maybe"], "--use_halting: Input should be a valid boolean"),
    (["--batch_size"], "flag --batch_size needs a value"),
])
def test_flag_errors_are_one_line(manifest, argv, message):
    with pytest.raises(UserError) as err:
        config([str(manifest), *argv])
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("section, line, message", [
    ("train", "batch_sizee = 3", "[train].batch_sizee: unknown key (did you mean batch_size?)"),
    ("train", 'warmup_steps = "many"', "[train].warmup_steps: Input should be a valid integer"),
    ("eval", "max_val_samples = 0", "[eval].max_val_samples: Input should be greater than or equal to 1"),
    ("model", "vocab_size = 3", "[model].vocab_size: not allowed"),
    ("model", "n_layer = 3", "[model].n_layer: unknown key (did you mean n_layers?)"),
])
def test_manifest_errors_name_file_and_key(tmp_path, section, line, message):
    text = MANIFEST.replace(f"[{section}]\n", f"[{section}]\n{line}\n")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        config([str(path)])
    assert str(err.value).startswith(str(path)) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_model_config_errors_are_user_errors(manifest):
    cfg = config([str(manifest), "--headdim", "48"])
    with pytest.raises(UserError, match=r"\[model\]: ModelConfig: .*headdim"):
        build_model_config(cfg.model, vocab_size=100)


def test_command_line_shape(manifest):
    with pytest.raises(UserError, match="exactly one manifest"):
        parse_command_line([])
    with pytest.raises(UserError, match="manifest not found"):
        config(["nope.toml"])
    with pytest.raises(SystemExit):
        parse_command_line(["--help"])


def test_help_gives_every_flag_a_meaning_without_loading_torch():
    """--help lists each key of [train], [eval], [model] under its section with one line of meaning,
    and imports neither torch nor the model code (so it starts fast; bench/startup.py times it)."""
    import subprocess
    import sys

    from trainer.config import TrainSection, EvalSection, model_section
    from trainer.flags_help import MEANING

    keys = [*TrainSection.model_fields, *EvalSection.model_fields, *model_section().model_fields]
    assert [k for k in keys if not MEANING.get(k)] == [] and not set(MEANING) - set(keys)
    code = ("import sys\nfrom trainer.config import help_text\ntext = help_text('x')\n"
            "print(text)\nprint('TORCH' if 'torch' in sys.modules else 'LIGHT')")
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(repo),
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.rstrip().endswith("LIGHT")
    train, model = out.index("\n[train]\n"), out.index("\n[model]\n")
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("--hrm_gate_warmup_steps"))
    assert train < out.index("--batch_size") < model and "HRM gate closed" in line and "(default 0)" in line
