"""metrics.jsonl survives a kill (torn line ignored, cut back on resume); plots are real PNGs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from trainer.metrics import MetricsLog, read_metrics, truncate_after
from trainer.plot import plot_run


def write_run(run_dir, steps=20, scale=1.0):
    log = MetricsLog(run_dir / "metrics.jsonl")
    for step in range(1, steps + 1):
        log.write({"kind": "train", "step": step, "loss": scale * 5.0 / step, "lm_loss": 5.0 / step, "lr": 1e-3,
                   "tokens": 1000 * step, "eta_s": 3 * (steps - step),
                   "gate_scale": min(1.0, step / 10), "gate_mean": 0.1 * (step > 10), "gate_min": 0.0,
                   "gate_max": 0.2 * (step > 10), "halt_sum_mean": 1.0, "halt_sum_min": 0.9, "halt_sum_max": 1.1})
        if step % 5 == 0:
            log.write({"kind": "val", "step": step, "val_loss": 4.0 / step})
    log.close()


def test_torn_line_is_ignored_and_truncation_cuts_back(tmp_path):
    write_run(tmp_path)
    with open(tmp_path / "metrics.jsonl", "ab") as f:
        f.write(b'{"kind": "train", "step": 21, "lo')  # killed mid-write
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert len(records) == 24 and records[-1]["step"] == 20
    assert truncate_after(tmp_path / "metrics.jsonl", 10) == 12
    again = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in again if r["kind"] == "val"] == [5, 10] and max(r["step"] for r in again) == 10
    assert (tmp_path / "metrics.jsonl").read_bytes().endswith(b"\n")


def test_plots_written(tmp_path):
    write_run(tmp_path)
    paths = plot_run(tmp_path)
    assert sorted(p.name for p in paths) == ["gate.png", "halt.png", "loss.png", "lr.png", "val_loss.png"]
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] >= 600


def test_plot_command(tmp_path):
    write_run(tmp_path / "runs" / "r1")
    ok = subprocess.run([sys.executable, "-m", "trainer.plot", "r1", "--runs_dir", str(tmp_path / "runs")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.count(".png") == 5
    bad = subprocess.run([sys.executable, "-m", "trainer.plot", str(tmp_path / "nope")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: no run directory") and bad.stderr.count("\n") == 1


def test_overlay_puts_several_runs_on_one_set_of_axes(tmp_path):
    runs = tmp_path / "runs"
    for name, scale in (("stageA", 1.0), ("stageB", 0.8), ("stageC", 0.6)):
        write_run(runs / name, scale=scale)
    with open(runs / "stageB" / "metrics.jsonl", "ab") as f:  # a dev eval in one run only
        f.write(b'{"kind": "dev", "step": 10, "dev/arith/accuracy": 0.25}\n')
    proc = subprocess.run([sys.executable, "-m", "trainer.plot", "stageA", "stageB", "stageC", "--runs_dir",
                           str(runs)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names = sorted(Path(line).name for line in proc.stdout.split())
    assert names == ["dev_arith_accuracy.png", "gate.png", "halt.png", "lm_loss.png", "loss.png", "val_loss.png"]
    assert all((runs / "compare" / n).is_file() for n in names)
    import matplotlib.image

    loss = matplotlib.image.imread(runs / "compare" / "loss.png")
    assert loss.shape[1] >= 600 and loss.std() > 0.05  # drawn, not blank


def test_progress_note_in_the_loss_title(tmp_path):
    from trainer.metrics import format_eta
    from trainer.plot import _progress_note

    write_run(tmp_path)
    assert _progress_note(read_metrics(tmp_path / "metrics.jsonl")[-2:-1]) == " (20,000 tokens seen, ETA 0s)"
    assert (format_eta(41), format_eta(725), format_eta(11220)) == ("41s", "12m05s", "3h07m")
