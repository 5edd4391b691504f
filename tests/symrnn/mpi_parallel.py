"""Run under `mpiexec -n 2 python tests/symrnn/mpi_parallel.py CASE` (test_parallel.py does).

Each rank prints `rank R OK ...` lines; a failed check raises, which aborts every rank
(DataParallel's excepthook), so mpiexec exits non-zero.

    grads     half a batch per rank == the one-process gradient of the whole batch
    train     two ranks train the char LM to the one-process losses
    mismatch  ranks bound to different shapes: RankMismatch on every rank
    batch     a global batch that does not divide by the ranks: ShapeError on every rank
    dies      rank 1 raises mid-run: every rank is aborted (mpiexec exits non-zero)
    stalls    rank 1 stops answering: rank 0 raises RankFailed after its timeout
"""
import hashlib
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import symrnn as sym
from symrnn.parallel import DataParallel, RankFailed, RankMismatch

T, N, I = 5, 4, 3


def say(line: str) -> None:
    """One write per line, so that the ranks' lines do not interleave in mpiexec's output."""
    os.write(1, (line + "\n").encode())  # global batch N, split over the ranks


def stack(typ: str, zoneout: float):
    rnn = sym.RNNFactory([6, 5], data_dim=I, typ=typ, zoneout=zoneout, name=typ)
    out = rnn.step(sym.Variable("data"), seq_len=T)
    return sym.Group([out[0][-1]])


def params_of(ex):
    return [n for n in ex.grad_dict if n != "data" and "init" not in n]


def digest(arrays) -> bytes:
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).digest()


def check_grads(typ: str, zoneout: float, req: str, train: bool) -> None:
    net = stack(typ, zoneout)
    whole = net.simple_bind(grad_req=req, data=(T, N, I))
    mine = net.simple_bind(grad_req=req, data=(T, N // 2, I))
    dp = DataParallel(mine, bucket_bytes=600)  # several buckets, most started by hooks
    sym.init_params(mine, names=params_of(mine), seed=dp.rank + 7)  # differ until broadcast
    dp.broadcast_params()
    whole.copy_params_from({n: mine.arg_dict[n] for n in params_of(mine)}, True)
    rng = np.random.default_rng(3)
    rows = slice(dp.rank * N // 2, (dp.rank + 1) * N // 2)
    for _ in range(2 if req == "add" else 1):
        x = rng.standard_normal((T, N, I)).astype(np.float32)
        g = rng.standard_normal((T, N, 5)).astype(np.float32)
        whole.forward(is_train=train, data=x)
        whole.backward(g)
        mine.forward(is_train=train, data=x[:, rows])
        dp.backward(g[:, rows] * dp.size)  # the mean over ranks of size * half == the sum
    names = params_of(mine)
    assert len(dp.buckets) > 2 and dp.reducer.started_early >= len(dp.buckets) - 2, \
        (len(dp.buckets), dp.reducer.started_early)
    same = len(set(dp.comm.allgather_bytes(digest(mine.grad_dict[n] for n in names)))) == 1
    assert same, f"{typ} {req}: the ranks' gradients differ"
    if not train:  # inference-mode masks: the same for a row wherever it runs
        for n in names:
            want, got = whole.grad_dict[n], mine.grad_dict[n]
            err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-6)
            assert err < 1e-5, f"{typ} {req} {n}: relative difference {err:.2g}"
    say(f"rank {dp.rank} OK grads {typ} zoneout={zoneout} {req} "
        f"{'train' if train else 'inference'}-mode masks, {len(dp.buckets)} buckets, "
        f"{dp.reducer.started_early} started during the backward")


def case_grads() -> None:
    for typ, zoneout in (("lstm", 0.0), ("gru", 0.0), ("lstm", 0.3)):
        for req in ("write", "add"):
            check_grads(typ, zoneout, req, train=False)
    check_grads("lstm", 0.3, "write", train=True)


def char_lm_losses(batch: int, steps: int, data_parallel: bool):
    from symrnn.data import CharVocab, pydoc_text

    text = pydoc_text()[:20000]
    vocab = CharVocab.from_text(text)
    lm = sym.CharLM(len(vocab), 16, [32], name="lm")
    stream = sym.batchify(vocab.encode(text), 8)[: 16 * steps + 1]
    ex, links = lm.bind(16, batch)
    sym.init_params(ex, seed=1)
    history = sym.train(ex, stream, links, optimizer=sym.Adam(3e-3), clip=5.0,
                        progress=False, log=None, data_parallel=data_parallel)
    return np.array(history.losses), ex


def case_train() -> None:
    steps = 8
    parallel, _ = char_lm_losses(4, steps, True)
    from symrnn.parallel import world

    comm = world()
    if comm.rank == 0:
        alone, _ = char_lm_losses(8, steps, False)
        err = np.abs(parallel - alone).max()
        assert len(parallel) == len(alone) == steps and err < 1e-4, (parallel, alone)
        say(f"rank 0 OK train losses {np.round(parallel, 4).tolist()} match one process "
            f"(max difference {err:.2g})")
    say(f"rank {comm.rank} OK train")


def case_mismatch() -> None:
    from symrnn.parallel import world

    rank = world().rank
    ex = stack("lstm", 0.0).simple_bind(data=(T, 2 + rank, I))
    try:
        DataParallel(ex)
    except RankMismatch as e:
        say(f"rank {rank} OK mismatch RankMismatch: {e}")
        return
    raise AssertionError("ranks with different shapes were accepted")


def case_batch() -> None:
    from symrnn.data import CharVocab

    vocab = CharVocab.from_text("abcdefgh")
    lm = sym.CharLM(len(vocab), 4, [8], name="lm")
    ex, links = lm.bind(4, 3)
    stream = sym.batchify(np.arange(200) % 8, 7)
    try:
        sym.train(ex, stream, links, progress=False, log=None, data_parallel=True)
    except sym.ShapeError as e:
        say(f"rank {world_rank()} OK batch ShapeError: {e}")
        return
    raise AssertionError("a batch of 7 over 2 ranks was accepted")


def world_rank() -> int:
    from symrnn.parallel import world

    return world().rank


def case_dies() -> None:
    net = stack("gru", 0.0)
    ex = net.simple_bind(data=(T, 2, I))
    dp = DataParallel(ex, timeout=60)
    x = np.ones((T, 2, I), np.float32)
    for step in range(1000):
        if dp.rank == 1 and step == 3:
            raise RuntimeError("rank 1 fails on purpose at step 3")
        ex.forward(is_train=True, data=x)
        dp.backward(np.ones((T, 2, 5), np.float32))
    raise AssertionError("rank 0 was not aborted")


def case_stalls() -> None:
    net = stack("gru", 0.0)
    ex = net.simple_bind(data=(T, 2, I))
    dp = DataParallel(ex, timeout=2)
    x = np.ones((T, 2, I), np.float32)
    if dp.rank == 1:
        time.sleep(30)  # never joins the reduction; aborted by rank 0's failure
        return
    ex.forward(is_train=True, data=x)
    before = {n: g.copy() for n, g in ex.grad_dict.items()}
    try:
        dp.backward(np.ones((T, 2, 5), np.float32))
    except RankFailed as e:
        kept = all(np.array_equal(before[n], g) for n, g in ex.grad_dict.items())
        say(f"rank 0 OK stalls RankFailed: {e}; gradients kept: {kept}")
        assert kept
        raise  # uncaught: aborts rank 1, which is asleep
    raise AssertionError("the stalled rank was not detected")


if __name__ == "__main__":
    globals()[f"case_{sys.argv[1]}"]()
