"""Variable-length batches (issue 12): `RNNFactory.step(..., sequence_length=s)` and
`cell.unroll(..., valid_length=s)` against PyTorch's pack_padded_sequence(enforce_sorted=False)
with copied weights (outputs with zeros past each length, final states, every gradient) on
the reference, fused and unrolled CPU and cuda-sim; fusion, masks, bad lengths."""
from collections import Counter

import numpy as np
import pytest

import symrnn as sym
from codegen.testing import load_sibling
from runtime.errors import SymRNNError
from runtime.program import unrolled_steps

checks = load_sibling(__file__, "feature_checks.py")
torch = pytest.importorskip("torch")
pack = torch.nn.utils.rnn
T, N, I, H = 5, 4, 3, 6
LENGTHS = np.array([3, 5, 1, 4], np.int32)  # unsorted; PyTorch refuses length 0
MODULES = {"lstm": ("LSTM", {}), "gru": ("GRU", {}),
           "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}), "lstm_proj": ("LSTM", {"proj_size": 4})}
NAMES = {"i2h_weight": "weight_ih", "h2h_weight": "weight_hh", "i2h_bias": "bias_ih",
         "h2h_bias": "bias_hh", "h2r_weight": "weight_hr"}


def varlen_symbol(typ, layers=2, bidirectional=False, **kw):
    proj = 4 if typ == "lstm_proj" else 0
    rnn = sym.RNNFactory([H] * layers, I, typ=typ.replace("_proj", ""), proj_size=proj,
                         bidirectional=bidirectional, name="m", **kw)
    outs = rnn.step(sym.Variable("data"), seq_len=T,
                    sequence_length=sym.Variable("lengths", dtype="int32"))
    last = outs[2] + outs[3] if typ.startswith("lstm") else outs[1]
    return rnn, sym.Group([outs[0][-1], *last])


def copy_weights(rnn, net, values: dict) -> None:
    params = dict(net.named_parameters())
    for layer in range(rnn.layer_num):
        for d in range(rnn.num_directions):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            for ours, theirs in NAMES.items():
                if theirs + suffix in params:
                    values[rnn.prefix(layer, d) + ours] = params[theirs + suffix]


def torch_run(net, typ, x, h0, c0, lengths):
    packed = pack.pack_padded_sequence(x, torch.tensor(lengths, dtype=torch.int64),
                                       enforce_sorted=False)
    y, state = net(packed, (h0, c0) if typ.startswith("lstm") else h0)
    y = pack.pad_packed_sequence(y, total_length=T)[0]
    finals = list(state) if typ.startswith("lstm") else [state]
    return [y] + [s[k] for s in finals for k in range(s.shape[0])]


@pytest.mark.parametrize("backend", ["reference", "fused", "unrolled"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
@pytest.mark.parametrize("typ", list(MODULES))
def test_matches_pytorch_packed_sequences(typ, bidirectional, backend):
    torch.manual_seed(0)
    cls, extra = MODULES[typ]
    net = getattr(torch.nn, cls)(I, H, num_layers=2, bidirectional=bidirectional,
                                 dtype=torch.float64, **extra)
    rnn, symbol = varlen_symbol(typ, 2, bidirectional)
    ex = checks.bind(symbol, backend, params={}, data=(T, N, I), lengths=(N,))
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(T, N, I)), requires_grad=True)
    D, P = rnn.num_directions, rnn.output_size(0)
    h0 = torch.tensor(rng.normal(size=(2 * D, N, P)), requires_grad=True)
    c0 = torch.tensor(rng.normal(size=(2 * D, N, H)), requires_grad=True)
    tensors = {"data": x}
    copy_weights(rnn, net, tensors)
    for k in range(2 * D):
        p = rnn.prefix(k // D, k % D)
        tensors[p + "init_h"] = h0[k]
        if typ.startswith("lstm"):
            tensors[p + "init_c"] = c0[k]
    assert set(ex.arg_dict) == set(tensors) | {"lengths"}
    ex.copy_params_from({n: t.detach().numpy() for n, t in tensors.items()})
    want = torch_run(net, typ, x, h0, c0, LENGTHS)
    R = [rng.normal(size=w.shape) for w in want]
    got, grads = checks.run(ex, R, lengths=LENGTHS)
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-10, err_msg=k)
    assert np.all(got[0][LENGTHS[None, :] <= np.arange(T)[:, None]] == 0)
    sum(torch.sum(b * torch.tensor(r)) for b, r in zip(want, R)).backward()
    assert "lengths" not in grads
    theirs = {n: t.grad for n, t in tensors.items() if t.is_leaf}
    for k in range(2 * D):
        p = rnn.prefix(k // D, k % D)
        theirs[p + "init_h"] = h0.grad[k]
        if typ.startswith("lstm"):
            theirs[p + "init_c"] = c0.grad[k]
    assert theirs.keys() == grads.keys()
    for name, grad in theirs.items():
        np.testing.assert_allclose(grads[name], grad.numpy(), rtol=1e-7, atol=1e-9,
                                   err_msg=name)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
def test_cell_unroll_with_valid_length_matches_pytorch(bidirectional):
    torch.manual_seed(1)
    net = torch.nn.LSTM(I, H, bidirectional=bidirectional, dtype=torch.float64)
    cells = [sym.LSTMCell(H, prefix=f"c{d}_", input_size=I) for d in range(1 + bidirectional)]
    cell = cells[0] if not bidirectional else sym.BidirectionalCell(*cells, output_prefix="b_")
    lengths = sym.Variable("lengths", dtype="int32")
    out, finals = cell.unroll(T, sym.Variable("data"), valid_length=lengths)
    ex = checks.bind(sym.Group([out, *finals]), "fused", params={}, data=(T, N, I),
                     lengths=(N,))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, N, I))
    values = {"data": x}
    params = dict(net.named_parameters())
    for d, c in enumerate(cells):
        for ours, theirs in NAMES.items():
            key = theirs + "_l0" + ("_reverse" if d else "")
            if key in params:
                values[c.prefix + ours] = params[key].detach().numpy()
        values[c.prefix + "init_h"] = values[c.prefix + "init_c"] = np.zeros((N, H))
    ex.copy_params_from(values)
    got = ex.forward(lengths=LENGTHS)
    want = torch_run(net, "lstm", torch.tensor(x), torch.zeros(1 + bidirectional, N, H,
                     dtype=torch.float64), torch.zeros(1 + bidirectional, N, H,
                     dtype=torch.float64), LENGTHS)
    # ours: out, then the final states [h, c] per direction; PyTorch's: y, h per direction,
    # then c per direction
    got = [got[0]] + [got[k] for k in ([1, 2] if not bidirectional else [1, 3, 2, 4])]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("backend", ["reference", "fused", "sim-fused"])
def test_length_zero_keeps_the_initial_state_and_masks_act_on_valid_steps(backend):
    _, symbol = varlen_symbol("lstm", 2, True, zoneout=0.4, dropout=0.3,
                              recurrent_dropout=0.3)
    ex = checks.bind(symbol, backend, data=(T, N, I), lengths=(N,))
    lengths = np.array([0, 5, 2, 3], np.int32)
    outs = ex.forward(is_train=True, seed=3, lengths=lengths)
    assert np.all(outs[0][:, 0] == 0) and np.all(outs[0][2:, 2] == 0)
    assert np.any(outs[0][:2, 2] != 0)
    for k, name in enumerate(["l0_init_h", "r0_init_h", "l1_init_h", "r1_init_h",
                              "l0_init_c", "r0_init_c", "l1_init_c", "r1_init_c"]):
        np.testing.assert_array_equal(outs[1 + k][0], ex.arg_dict["m_" + name][0])
        assert np.any(outs[1 + k][1:] != ex.arg_dict["m_" + name][1:])  # zoneout keeps some


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_backends_agree_with_masks(dtype):
    _, symbol = varlen_symbol("lstm", 2, True, zoneout=0.3, dropout=0.2, cell_clip=0.6)
    lengths = np.array([2, 5, 0, 4], np.int32)
    checks.check_backends_agree(symbol, dtype, {"lengths": lengths}, data=(T, N, I),
                                lengths=(N,))


@pytest.mark.parametrize("backend", ["reference", "fused", "sim-fused"])
def test_gradients_match_central_differences(backend):
    _, symbol = varlen_symbol("gru", 2, True, zoneout=0.2)
    ex = checks.bind(symbol, backend, data=(T, N, I), lengths=(N,))
    ex.copy_params_from(checks.random_params(ex, skip=("lengths",)))
    checks.check_finite_differences(ex, {"lengths": np.array([2, 5, 1, 3], np.int32)})


def test_fused_two_layer_varlen_lstm_has_one_kernel_per_layer_per_step():
    programs = {}
    for steps in (5, 9):
        rnn = sym.RNNFactory([H, H], I, name="m")
        out = rnn.step(sym.Variable("data"), seq_len=steps, ret_typ="out",
                       sequence_length=sym.Variable("lengths", dtype="int32"))[-1]
        programs[steps] = checks.bind(out, "fused", data=(steps, N, I),
                                      lengths=(N,)).program
        assert programs[steps].stats["launches_forward"] == 2 * steps
    assert set(programs[5].kernels) == set(programs[9].kernels)  # code does not grow with T


def _forward_step_kernel(lengths) -> tuple:
    """(inputs, outputs) of the kernel of most steps of a fused 1-layer LSTM's forward."""
    rnn = sym.RNNFactory([H], I, name="m")
    out = rnn.step(sym.Variable("data"), seq_len=6, ret_typ="out", sequence_length=lengths)[-1]
    shapes = {"data": (6, N, I)} | ({} if lengths is None else {"lengths": (N,)})
    program = checks.bind(out, "fused", **shapes).program
    launches = Counter(s.attrs["kernel"] for s in unrolled_steps(program.steps)
                       if s.kind == "kernel" and s.phase == "forward")
    kernel = program.kernels[launches.most_common(1)[0][0]]
    return kernel.n_in, kernel.n_out


def test_varlen_step_kernel_reads_one_lengths_block_and_writes_the_output_beside_the_states():
    """`h` and `c` share one lengths block, and each state's select runs in the kernel that
    computes the state: beside the full-length step, one more block read (the lengths) and
    `h_prev` (kept where a sample has ended), and as many written: the zeroed output where the
    full-length step writes its `h` a second time (codegen.passes.split_shared_parts: `h` is a
    part of both the output sequence and the previous states the weight gradient reads)."""
    plain_in, plain_out = _forward_step_kernel(None)
    lengths = sym.Variable("lengths", dtype="int32")
    assert _forward_step_kernel(lengths) == (plain_in + 2, plain_out)


def test_export_then_load(tmp_path):
    _, symbol = varlen_symbol("lstm", 2, True, zoneout=0.1)
    ex = checks.bind(symbol, "fused", "float32", data=(T, N, I), lengths=(N,))
    checks.check_export_roundtrip(ex, tmp_path / "varlen.zip", {"lengths": LENGTHS})


@pytest.mark.parametrize("lengths, needle", [
    (np.array([3, 6, 1, 2], np.int32), ("sequence_length\\[1\\] is 6, expected a length in "
                                       "\\[0, 5\\]")),
    (np.array([3, 1, -1, 2], np.int32), "sequence_length\\[2\\] is -1"),
    (np.array([3, 1, 2], np.int32), "lengths"),
    (np.array([3.5, 1, 2, 2]), ("'lengths' has dtype float64 but the executor was bound "
                               "with int32")),
])
def test_bad_lengths_are_refused_and_leave_the_executor_intact(lengths, needle):
    _, symbol = varlen_symbol("lstm", 1)
    ex = checks.bind(symbol, "fused", data=(T, N, I), lengths=(N,))
    good = ex.forward(is_train=True, lengths=LENGTHS)[0].copy()
    ex.backward([np.ones(o.shape) for o in ex.outputs])
    before = {k: v.copy() for k, v in ex.arg_dict.items()}
    grads = {k: v.copy() for k, v in ex.grad_dict.items()}
    with pytest.raises(SymRNNError, match=needle):
        ex.forward(is_train=True, lengths=lengths)
    for k, v in ex.arg_dict.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    for k, v in ex.grad_dict.items():
        np.testing.assert_array_equal(v, grads[k], err_msg=k)
    np.testing.assert_array_equal(ex.forward(is_train=True, lengths=LENGTHS)[0], good)


@pytest.mark.parametrize("lengths, needle", [
    (lambda: sym.Variable("lengths"), "dtype int32"),
    (lambda: sym.Variable("lengths", shape=(4, 1), dtype="int32"), "shape \\(N,\\)"),
    (lambda: 5, "single-output int32 Symbol"),
])
def test_bad_length_symbols_are_refused(lengths, needle):
    rnn = sym.RNNFactory([H], I, name="m")
    with pytest.raises(SymRNNError, match=f"'sequence_length' must.*{needle}"):
        rnn.step(sym.Variable("data"), seq_len=T, sequence_length=lengths())
    with pytest.raises(SymRNNError, match=f"'valid_length' must.*{needle}"):
        sym.LSTMCell(H, input_size=I).unroll(T, sym.Variable("data"), valid_length=lengths())


def test_lengths_of_the_wrong_batch_are_refused_at_bind():
    _, symbol = varlen_symbol("gru", 1)
    with pytest.raises(SymRNNError, match="lengths"):
        symbol.simple_bind(backend="cpu", data=(T, N, I), lengths=(N + 1,))
