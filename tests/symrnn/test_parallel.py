"""DataParallel in one process: alone it is the identity; with a stand-in communicator of two
ranks (the peer holding the same gradients) the bucketed, hook-started reduction returns
the local gradients; errors. Under mpiexec: test_parallel_mpi.py."""
import importlib.util
import sys

import numpy as np
import pytest

import symrnn as sym
from runtime.errors import BackendUnavailable, BindError, ConfigError
from symrnn.parallel import DataParallel, RankFailed
from symrnn.parallel.buckets import final_steps, plan_buckets
from symrnn.parallel.comm import SingleComm, world, wrap

T, N, I = 4, 3, 2


class TwinComm(SingleComm):
    """Two ranks whose peer computed exactly what this one did: a sum doubles."""

    size = 2

    def __init__(self, fail_wait: bool = False):
        self.fail_wait, self.started = fail_wait, 0

    def iallreduce(self, buf):
        buf *= 2
        self.started += 1
        return object()

    def wait(self, requests, what):
        if self.fail_wait:
            raise RankFailed(f"{what}: the peer stalled (stand-in)")

    def allgather_bytes(self, data):
        return [data, data]


def stack(typ="lstm", zoneout=0.0):
    rnn = sym.RNNFactory([5, 4], data_dim=I, typ=typ, zoneout=zoneout, name=typ)
    return sym.Group([rnn.step(sym.Variable("data"), seq_len=T)[0][-1]])


def bound(req="write", typ="lstm"):
    ex = stack(typ).simple_bind(grad_req=req, data=(T, N, I))
    sym.init_params(ex, seed=0)
    return ex


def step(ex, backward, seed=1):
    rng = np.random.default_rng(seed)
    ex.forward(is_train=True, seed=5, data=rng.standard_normal((T, N, I)).astype(np.float32))
    backward(rng.standard_normal((T, N, 4)).astype(np.float32))


@pytest.mark.parametrize("req", ["write", "add"])
def test_alone_it_is_the_identity(req):
    plain, ex = bound(req), bound(req)
    dp = DataParallel(ex, comm=SingleComm())
    assert (dp.rank, dp.size) == (0, 1)
    dp.broadcast_params()
    for seed in (1, 2):
        step(plain, plain.backward, seed)
        step(ex, dp.backward, seed)
    for n, g in plain.grad_dict.items():
        np.testing.assert_array_equal(ex.grad_dict[n], g)


@pytest.mark.parametrize("typ", ["lstm", "gru"])
@pytest.mark.parametrize("req", ["write", "add"])
def test_twin_ranks_average_to_the_local_gradient(req, typ):
    plain, ex = bound(req, typ), bound(req, typ)
    comm = TwinComm()
    dp = DataParallel(ex, comm=comm, bucket_bytes=200, rank_seeds=False)
    assert len(dp.buckets) > 2
    for seed in (1, 2):
        step(plain, plain.backward, seed)
        step(ex, dp.backward, seed)
        assert dp.reducer.started_early == len(dp.buckets)  # every bucket from a hook
    assert comm.started == 2 * len(dp.buckets)
    for n, g in plain.grad_dict.items():
        np.testing.assert_array_equal(ex.grad_dict[n], g)


def test_plain_backward_is_untouched_by_the_hooks():
    plain, ex = bound(), bound()
    dp = DataParallel(ex, comm=TwinComm(), bucket_bytes=200)
    step(plain, plain.backward)
    step(ex, ex.backward)  # not through dp: no reduction
    assert not dp.reducer.active
    for n, g in plain.grad_dict.items():
        np.testing.assert_array_equal(ex.grad_dict[n], g)


def test_a_failed_reduction_leaves_the_gradients():
    ex = bound("add")
    step(ex, ex.backward)
    before = {n: g.copy() for n, g in ex.grad_dict.items()}
    dp = DataParallel(ex, comm=TwinComm(fail_wait=True))
    with pytest.raises(RankFailed, match="stalled"):
        step(ex, dp.backward)
    for n, g in before.items():
        np.testing.assert_array_equal(ex.grad_dict[n], g)


def test_buckets_follow_the_backward_schedule():
    ex = bound()
    final = final_steps(ex.program)
    assert set(final) == set(ex.grad_dict)
    dp = DataParallel(ex, comm=TwinComm(), bucket_bytes=200)
    order = [n for b in dp.buckets for n in b.names]
    assert [final[n] for n in order] == sorted(final[n] for n in order)
    for b in dp.buckets:
        assert len(b.names) == 1 or b.size * 4 <= 200


def test_plan_buckets_splits_by_size_and_dtype():
    grads = [("a", (10,), "float32"), ("b", (10,), "float32"), ("c", (3,), "float64")]
    buckets = plan_buckets(grads, bucket_bytes=60)
    assert [b.names for b in buckets] == [["a"], ["b"], ["c"]]
    assert [b.names for b in plan_buckets(grads, 80)] == [["a", "b"], ["c"]]


def test_no_mpi4py_alone_is_one_rank(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    comm = world()
    assert (comm.rank, comm.size) == (0, 1)


def test_several_ranks_without_mpi4py_is_backend_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(BackendUnavailable, match="2 ranks but mpi4py is not installed"):
        DataParallel(bound())


def test_bad_arguments():
    ex = bound()
    with pytest.raises(ConfigError, match="bucket_bytes"):
        DataParallel(ex, comm=SingleComm(), bucket_bytes=0)
    with pytest.raises(BackendUnavailable, match="'comm' must be an mpi4py communicator"):
        wrap("world")
    dp = DataParallel(ex, comm=SingleComm())
    with pytest.raises(ConfigError, match="'root' must be a rank in"):
        dp.broadcast_params(root=1)
    with pytest.raises(BindError, match="'nope' is not an argument"):
        dp.broadcast_params(names=["nope"])


def test_train_data_parallel_alone_matches_train():
    from symrnn.data import CharVocab

    vocab = CharVocab.from_text("abcdefghij")
    tokens = np.random.default_rng(0).integers(0, 10, 600).astype(np.int32)
    lm = sym.CharLM(len(vocab), 8, [16], name="lm")
    runs = []
    for parallel in (False, True):
        ex, links = lm.bind(8, 4)
        sym.init_params(ex, seed=3)
        runs.append(sym.train(ex, sym.batchify(tokens, 4), links, optimizer=sym.SGD(0.5),
                              progress=False, log=None, data_parallel=parallel).losses)
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-6)


def test_train_data_parallel_refuses_a_batch_that_is_not_the_executors():
    from symrnn.data import CharVocab

    lm = sym.CharLM(len(CharVocab.from_text("abcd")), 4, [8], name="lm")
    ex, links = lm.bind(4, 3)
    with pytest.raises(sym.ShapeError, match="global batch .* must be 1 ranks x"):
        sym.train(ex, sym.batchify(np.arange(100) % 4, 5), links, progress=False, log=None,
                  data_parallel=True)


def test_the_cuda_device_reduction_is_chosen_only_where_it_can_run():
    from symrnn.parallel.cuda import device_reducer

    class CudaEngine:  # a stand-in by name; device_reducer looks no further without NCCL
        pass

    assert device_reducer(SingleComm(), CudaEngine()) is None  # one rank: nothing to reduce
    assert device_reducer(TwinComm(), object()) is None  # not the cuda engine
    if importlib.util.find_spec("cupy") is None:
        assert device_reducer(TwinComm(), CudaEngine()) is None  # no NCCL, no CUDA-aware MPI


def test_the_device_reduction_runs_between_the_cuda_backward_and_the_download():
    """On cuda-sim, with a stand-in allreduce that doubles each span in device memory (as a
    sum over two ranks with equal gradients would): every gradient comes back doubled, so
    the spans cover each gradient exactly and the reduction runs before the download."""
    from symrnn.parallel.cuda import DeviceReducer

    rnn = sym.RNNFactory([6, 5], data_dim=4, typ="lstm", name="lstm")
    out, _, _, _ = rnn.step(sym.Variable("data"), seq_len=3)
    ex = sym.sum(out[-1] * out[-1]).simple_bind(backend="cuda-sim", data=(3, 2, 4))
    ex.arg_dict["data"][:] = np.random.default_rng(0).standard_normal((3, 2, 4))
    engine = ex.engine.train  # as DataParallel takes it
    heads = [np.ones(v.shape, np.float32) for _, v in engine.program.outputs]
    engine.forward(dict(ex.arg_dict), True, 7)
    plain = {n: g.copy() for n, g in engine.backward(heads).items()}

    def doubled(spans):
        for ptr, count, dtype in spans:
            host = np.empty(count, dtype)
            engine.device.memcpy_dtoh(host, ptr)
            engine.device.memcpy_htod(ptr, 2 * host)

    reduced = DeviceReducer(engine, doubled).backward(heads)
    assert set(reduced) == set(plain) and len(plain) >= 8
    for name, g in plain.items():
        np.testing.assert_array_equal(reduced[name], 2 * g, err_msg=name)
