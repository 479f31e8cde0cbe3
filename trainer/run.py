"""``python -m trainer.run MANIFEST [--flag value ...]``: build or reuse the mix plan, then train.

    manifest ─► config (trainer/config.py) ─► plan (corpus.mixing) ─► model, optimizer
        │                                                             │
        └─ auto-resume: newest valid runs/<name>/checkpoints/*.pt ────┘
    loop: batch(step) ─► forward (gate_scale(step)) ─► backward ─► sum grads over ranks ─► clip ─► step
          every log_steps: console + metrics.jsonl    every val_every: val loss, patience, best-model, plots
          every checkpoint_every: step_N.pt (rotated)  last step: step_N.pt, final validation, final.pt

The step is the only clock: learning rate, gate and data are functions of it, so a resumed run
repeats an uninterrupted one exactly (on CPU). See docs/training.md.
"""

from __future__ import annotations

import sys

from trainer.config import RunConfig


def train(cfg: RunConfig) -> int:
    from trainer import session
    from trainer.schedule import gate_scale, lr_at

    s = session.start(cfg)  # world, device, plan, model, optimizer, data, checkpoints, resume
    if s is None:  # nothing to do (finished, stopped early, or dry run)
        return 0
    t, ev = cfg.train, cfg.eval
    if s.final_validation_pending:  # stopped during the final validation: the steps are all saved
        s.say(f"step {s.step} is the last: running its final validation again")
        s.stopped = s.validate(s.step, gate_scale(s.step - 1, t.hrm_gate_warmup_steps, t.gate_ramp_steps), final=True)
        s.finish()
        return 0
    log = s.log_window()
    for step in range(s.step, s.total_steps):
        batch = s.stream.next_batch()
        lr = lr_at(step, t.learning_rate, s.total_steps, t.warmup_steps, t.lr_scheduler, t.lr_min_ratio)
        gate = gate_scale(step, t.hrm_gate_warmup_steps, t.gate_ramp_steps)
        out = s.train_step(batch, lr, gate)
        s.advance()
        log.add(out, batch, lr, gate)
        done = step + 1
        if done % t.log_steps == 0 or done == s.total_steps:
            log.flush(done)
        stop, last = False, done == s.total_steps
        if last:  # before the final validation (it may be long): no finished step is lost to a stop there
            s.save_checkpoint(done, validation_pending=True)
        if done % ev.val_every == 0 or last:
            stop = s.validate(done, gate, final=last)
        if (done % s.checkpoint_every == 0 or stop) and not last:  # the last step's state goes to final.pt
            s.save_checkpoint(done, stopped=stop)
        if stop:
            s.stopped = True
            s.say(f"early stop at step {done}: validation loss rose {ev.eval_loss_patience} times in a row")
            break
    s.finish()
    return 0


def main(argv: list[str] | None = None) -> int:
    from corpus.cli import run_cli
    from trainer.config import load_config, parse_command_line

    argv = sys.argv[1:] if argv is None else argv
    return run_cli(lambda: train(load_config(parse_command_line(argv))))


if __name__ == "__main__":
    sys.exit(main())
