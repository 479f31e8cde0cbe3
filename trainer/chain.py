"""``python -m trainer.chain``: the blueprint's stages A → B → C, scaled down, on local real data.

    ../shared/data ─► tokenizer (WikiText-2 valid, vocab 8,192) ─► data/tokenizers/hrm.json
          │        ─► evaluation sets first: GSM8K test, MBPP test, HumanEval, ScienceQA test
          ▼           (every training build after them is decontaminated against them)
    for each stage: python -m trainer.run manifests/<stage>.toml --scale smoke --from SOURCE=PATH ...
          builds the stage's missing sources from the local inputs, plans its scaled mix, starts
          from the previous stage's best model (init_from), validates with dev evals, writes
          checkpoints, a best model and plots; its summary line is collected
    ─► one summary: per stage its "done at step ..." line and its last dev evals

What CI runs (``.ci/run``), and how a user tries every recipe end to end on a laptop CPU in
minutes. Nothing is downloaded: every input is a local file under ``--shared``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus.errors import UserError

REPO = Path(__file__).resolve().parents[1]
STAGES = ("stageA", "stageB", "stageB_scienceqa", "stageC")
VOCAB_SIZE = 8192
EVAL_MAX_SEQ_LEN = 512
# local inputs under --shared, per source name of the stage manifests
INPUTS = {"wiki": "wikitext2/valid.txt", "gsm8k": "gsm8k/train_sample.jsonl", "mbpp": "mbpp/mbpp.jsonl",
          "science_qa": "scienceqa"}
EVAL_SETS = (("gsm8k", "gsm8k/test.jsonl", ("--split", "test", "--role", "eval")),
             ("mbpp", "mbpp/mbpp.jsonl", ("--split", "test")),
             ("humaneval", "humaneval/HumanEval.jsonl.gz", ()),
             ("science_qa", "scienceqa", ("--split", "test")))
DEV_SUITES = "arith,halting,gsm8k"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.chain", description=__doc__.split("\n")[0])
    p.add_argument("--shared", default=str(REPO.parent / "shared" / "data"), help="the public samples (../shared/data)")
    p.add_argument("--work", default=None, help="data root and runs go under here (default: a new temp dir)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"manifests/<stage>.toml to run in order ({','.join(STAGES)})")
    p.add_argument("--dev-suites", default=DEV_SUITES, help="dev evals at every validation")
    p.add_argument("--dev-limit", type=int, default=4, help="items per dev suite dataset")
    p.add_argument("--steps", type=int, default=None, help="steps per stage (default: the smoke scale's)")
    return p


def main(argv: list[str] | None = None) -> int:
    from corpus.cli import run_cli

    args = _parser().parse_args(argv)
    return run_cli(lambda: run_chain(args))


def run_chain(args) -> int:
    started = time.perf_counter()
    shared = Path(args.shared).resolve()
    if not shared.is_dir():
        raise UserError(f"--shared {shared}: no such directory (the chain needs the public samples)")
    work = Path(args.work or tempfile.mkdtemp(prefix="blueprint-chain-")).resolve()
    root, runs = work / "data", work / "runs"
    runs.mkdir(parents=True, exist_ok=True)

    def say(text: str) -> None:
        print(f"[chain {time.perf_counter() - started:5.0f} s] {text}", flush=True)

    say(f"work dir {work}")
    tokenizer = _tokenizer(shared, root, say)
    _eval_sets(shared, root, tokenizer, say)
    summary, failed = [], []
    for stage in [s.strip() for s in args.stages.split(",") if s.strip()]:
        line, dev, code = _stage(stage, shared, root, runs, work, args, say)
        summary.append(f"{stage}: {line}" + (f"\n{stage}: {dev}" if dev else ""))
        if code != 0:
            failed.append(f"{stage} (exit {code})")
            break  # the next stage starts from this one's best model
    say("summary")
    print("\n".join(summary), flush=True)
    say(f"chain {'failed: ' + ', '.join(failed) if failed else 'finished'} in {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


def _tokenizer(shared: Path, root: Path, say) -> Path:
    from corpus.tokenizer import main as tokenizer_main

    path = root / "tokenizers" / "hrm.json"  # the stage manifests' data.tokenizer
    if not path.exists():
        say(f"tokenizer: WikiText-2 valid, vocab {VOCAB_SIZE:,}")
        if tokenizer_main(["train", "--from", str(shared / INPUTS["wiki"]), "--vocab-size", str(VOCAB_SIZE),
                           "--out", str(path), "--data-dir", str(root)]) != 0:
            raise UserError("training the chain's tokenizer failed (see above)")
    return path


def _eval_sets(shared: Path, root: Path, tokenizer: Path, say) -> None:
    """The benchmarks' evaluation splits, registered before any training build (in this process:
    one import of the validation stack for all four)."""
    from corpus.build import main as build_main

    for source, rel, flags in EVAL_SETS:
        argv = [source, "--from", str(shared / rel), *flags, "--tokenizer", str(tokenizer),
                "--max-seq-len", str(EVAL_MAX_SEQ_LEN), "--data-dir", str(root), "--quiet"]
        say(f"evaluation set: python -m corpus.build {' '.join(argv[:3 + len(flags)])}")
        if build_main(argv) != 0:
            raise UserError(f"evaluation build of {source} failed (see above)")


def stage_command(stage: str, shared: Path, root: Path, runs: Path, args) -> list[str]:
    """The scaled ``trainer.run`` of one stage, with local inputs for the sources it names."""
    from corpus.mixing.manifest import load_manifest

    manifest = REPO / "manifests" / f"{stage}.toml"
    names = [s.name for s in load_manifest(manifest).data.sources]
    cmd = [sys.executable, "-m", "trainer.run", str(manifest), "--scale", "smoke", "--data_dir", str(root),
           "--runs_dir", str(runs), "--dev_suites", args.dev_suites, "--dev_limit", str(args.dev_limit)]
    for name in names:
        if name in INPUTS:
            cmd += ["--from", f"{name}={shared / INPUTS[name]}"]
    if args.steps:
        cmd += ["--steps", str(args.steps)]
    return cmd


def _stage(stage: str, shared: Path, root: Path, runs: Path, work: Path, args, say) -> tuple[str, str, int]:
    """Run one stage, echoing its output; returns its summary line, last dev line and exit code."""
    cmd = stage_command(stage, shared, root, runs, args)
    say(f"== {stage}: {' '.join(cmd[1:])}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.setdefault("OMP_NUM_THREADS", "1")
    done, dev = "no summary line (the run did not finish)", ""
    with open(work / f"{stage}.log", "w") as log, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=work) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            if line.startswith("done at step") or "nothing to do" in line:  # finished, or finished before
                done = line.strip()
            elif line.startswith("dev "):
                dev = line.strip()
    return done, dev, proc.returncode


if __name__ == "__main__":
    sys.exit(main())
