"""`symrnn train`: a character language model on a text file (or the bundled corpus), with a
progress bar, periodic validation perplexity, atomic checkpoints, `--resume` and a loss plot.

    symrnn train --steps 500 --checkpoint lm.zip --plot loss.png
    symrnn train --steps 1000 --checkpoint lm.zip --resume       # continues where it stopped
    mpiexec -n 4 symrnn train -N 64 --steps 500                 # 4 ranks, 16 columns each

`-N` is the global batch; under mpiexec each rank trains on its share (symrnn.parallel) and
only rank 0 prints and writes. A resumed run draws the same windows and masks as an
uninterrupted one, so its loss curve continues the same curve. SYMRNN_TRAIN_KILL_AT=K kills
the process (SIGKILL) after step K: the tests' stand-in for a crash.
"""
from __future__ import annotations

import json
import os
import signal
import time

from runtime.errors import ConfigError
from symrnn.plotting import plot_loss_curve, pyplot

CONFIG_KEYS = ("text", "typ", "hidden", "embed", "zoneout", "dropout", "seq_len", "batch",
               "lr", "clip", "seed", "valid_fraction", "valid_windows", "backend")


def configure_train(p) -> None:
    from symrnn.cli.common import positive, positive_float, rates, sizes

    p.add_argument("--text", metavar="FILE", help="UTF-8 text to train on (default: the "
                   "bundled corpus, pydoc_data.topics)")
    p.add_argument("--typ", default="lstm", choices=["lstm", "gru", "rnn_tanh", "rnn_relu"])
    p.add_argument("--hidden", type=sizes, default=[256], help="per-layer sizes (256)")
    p.add_argument("--embed", type=positive, default=64, help="embedding size (64)")
    p.add_argument("--zoneout", type=rates, default=[0.0], help="one rate or one per layer")
    p.add_argument("--dropout", type=rates, default=[0.0], help="one rate or one per layer")
    p.add_argument("-T", "--seq-len", type=positive, default=64)
    p.add_argument("-N", "--batch", type=positive, default=32,
                   help="global batch: under mpiexec -n R each rank trains on N/R columns")
    p.add_argument("--steps", type=positive, help="windows to train on (default: one epoch)")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="Adam's step (3e-3)")
    p.add_argument("--clip", type=positive_float, default=5.0, help="global-norm clip (5)")
    p.add_argument("--valid-fraction", type=positive_float, default=0.1)
    p.add_argument("--valid-every", type=positive, default=100, help="steps (100)")
    p.add_argument("--valid-windows", type=int, default=50,
                   help="held-out windows per validation (50; 0: all)")
    p.add_argument("--checkpoint", metavar="FILE.zip", help="checkpoint path (an artifact)")
    p.add_argument("--checkpoint-every", type=positive, default=100, help="steps (100)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--plot", metavar="FILE.png", help="loss curve (needs matplotlib)")
    p.add_argument("--history", metavar="FILE.json", help="losses and validations as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)


def run_train(args) -> int:
    from symrnn.parallel import world
    from symrnn.parallel.comm import report_and_abort

    comm = world()
    try:
        return _train(args, comm)
    except Exception as e:
        if comm.size > 1:  # the other ranks would wait for this one forever
            report_and_abort(comm, e, "symrnn train")
        raise


def _train(args, comm) -> int:
    import symrnn as sym
    from symrnn.parallel.checkpoint import load_checkpoint, save_checkpoint

    if args.plot:
        pyplot("train: --plot")  # before training, not after it
    if args.resume and not args.checkpoint:
        raise ConfigError("train: --resume needs --checkpoint FILE.zip")
    if args.batch % comm.size:
        raise ConfigError(f"train: -N {args.batch} (the global batch) does not divide by "
                          f"{comm.size} ranks; give a multiple of {comm.size}")
    vocab, train_tokens, valid_tokens = _corpus(args)
    tr, vex = _trainer(args, comm, len(vocab), train_tokens)
    valid = sym.batchify(valid_tokens, args.batch)
    if args.valid_windows > 0:
        valid = valid[: args.valid_windows * args.seq_len + 1]
    config = {k: getattr(args, k) for k in CONFIG_KEYS}
    if args.resume and os.path.exists(args.checkpoint):
        load_checkpoint(tr, args.checkpoint, config)
    total = args.steps or tr.per_epoch
    say = print if tr.root else _quiet
    say(f"char LM: {args.typ} {args.hidden}, vocabulary {len(vocab)}, {len(train_tokens):,} "
        f"training tokens; T={args.seq_len}, global batch {args.batch} over {comm.size} "
        f"rank(s); step {tr.steps} of {total}")
    first = tr.steps
    seconds = _loop(args, tr, total, (vex, valid), say,
                    lambda: save_checkpoint(tr, args.checkpoint, config))
    _finish(args, tr, tr.steps - first, seconds, say)
    return 0


def _trainer(args, comm, vocab_size: int, tokens):
    """(Trainer over this rank's executor, the inference executor for validation)."""
    import symrnn as sym
    from symrnn.parallel import DataParallel
    from symrnn.parallel.training import Trainer

    lm = sym.CharLM(vocab_size, args.embed, args.hidden, typ=args.typ,
                    dropout=_rates(args.dropout), zoneout=_rates(args.zoneout), name="lm")
    local = args.batch // comm.size
    ex, links = lm.bind(args.seq_len, local, args.backend, seed=args.seed)
    vex, _ = lm.bind(args.seq_len, local, args.backend, train=False, head="loss")
    sym.init_params(ex, seed=args.seed)
    tr = Trainer(ex, sym.batchify(tokens, args.batch), links, optimizer=sym.Adam(args.lr),
                 clip=args.clip, dp=DataParallel(ex, comm))
    return tr, vex


def _loop(args, tr, total, valid, say, checkpoint) -> float:
    from symrnn.train import _close, _progress, _tick

    bar = _progress(total - tr.steps, "train", not args.no_progress and tr.root)
    kill_at = int(os.environ.get("SYMRNN_TRAIN_KILL_AT", "0") or 0)
    say = getattr(bar, "write", say)  # a line above tqdm's bar, not through it
    t0 = time.perf_counter()
    while tr.steps < total:
        loss, _ = tr.step()
        _tick(bar, loss)
        if kill_at and tr.steps == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if tr.steps % args.valid_every == 0 or tr.steps == total:
            record = {"step": tr.steps, **tr.validate(*valid)}
            tr.history.epochs.append(record)
            say(f"step {tr.steps}: loss {loss:.4f}  valid loss {record['valid_loss']:.4f}  "
                f"valid ppl {record['valid_ppl']:.3f}")
        if args.checkpoint and (tr.steps % args.checkpoint_every == 0 or tr.steps == total):
            checkpoint()
    _close(bar)
    return time.perf_counter() - t0


def _finish(args, tr, steps: int, seconds: float, say) -> None:
    tokens = steps * tr.global_batch * tr.seq_len
    say(f"{tr.steps} steps ({steps} in this run, {seconds:.1f} s): "
        f"{tokens / max(seconds, 1e-9):,.0f} tokens/s, "
        f"{100 * tr.comm_seconds / max(seconds, 1e-9):.1f}% waiting on communication")
    if not tr.root:
        return
    if args.history:
        with open(args.history, "w") as f:
            json.dump({"losses": tr.history.losses, "valid": tr.history.epochs}, f)
    if args.plot:
        plot_curve(tr.history, args.plot)
        say(f"loss curve: {args.plot}")


def plot_curve(history, path: str) -> None:
    """Training loss per step and validation loss at the steps it was measured."""
    points = [(r["step"], r["valid_loss"]) for r in history.epochs if "step" in r]
    plot_loss_curve(path, (range(1, len(history.losses) + 1), history.losses), points, "step",
                    "train: --plot")


def _corpus(args):
    from symrnn.data import CharVocab, pydoc_text, split_holdout

    if args.text is None:
        text = pydoc_text()
    else:
        try:
            with open(args.text, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"train: --text {args.text!r}: {e}") from None
    if not 0 < args.valid_fraction < 1:
        raise ConfigError(f"train: --valid-fraction must be in (0, 1), given "
                          f"{args.valid_fraction}")
    vocab = CharVocab.from_text(text)
    train_tokens, valid_tokens = split_holdout(vocab.encode(text), args.valid_fraction)
    need = (args.seq_len + 1) * args.batch
    if len(valid_tokens) < need:
        raise ConfigError(f"train: the held-out text has {len(valid_tokens)} characters, "
                          f"fewer than (T + 1) x N = {need}; give more text, a larger "
                          f"--valid-fraction or a smaller -T/-N")
    return vocab, train_tokens, valid_tokens


def _rates(values: list):
    return values[0] if len(values) == 1 else values


def _quiet(*_, **__) -> None:
    pass
