"""conv1d, conv2d, the pools, layer_norm, batch_norm, dropout, sort and top_k
(dsl/ops/conv.py) through bp source: against PyTorch where it is installed
(the dev venv; CI's test extra has no torch, and those tests skip), and without
it: second derivatives against finite differences of bp's own gradient,
Jacobians through batching against one VJP per row, printed derivatives read
back, export run in a fresh process, and located errors.

The registry walks (tests/test_ops_forward.py, tests/test_ops_grad.py) check
every op of the family against loop references on the samples of
tests/ops_samples/conv.py; this file checks the builtins as a user calls them.
"""
from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

import dsl

try:
    import torch
    import torch.nn.functional as F
except ImportError:                      # CI's test extra: the PyTorch checks skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")   # PyTorch's own note


def T(a, grad=True):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def session(**arrays) -> dsl.Interpreter:
    bp = dsl.Interpreter()
    for k, v in arrays.items():
        bp[k] = np.asarray(v, dtype=np.float64)
    return bp


def close(a, b, rtol=1e-11):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.max(np.abs(b)))))


def _bp_padding(p):
    return f'"{p}"' if isinstance(p, str) else str(p)


# ── against PyTorch: values and first derivatives ────────────────────────

CONV_CASES = [  # nd, x shape, w shape, stride, padding, dilation, groups
    (2, (2, 3, 7, 6), (4, 3, 3, 2), 1, 0, 1, 1),
    (2, (2, 4, 8, 7), (6, 2, 3, 3), 2, 1, 1, 2),
    (2, (1, 2, 9, 8), (4, 2, 2, 3), (2, 1), (1, 2), (2, 1), 1),
    (2, (2, 3, 7, 6), (3, 3, 4, 3), 1, "same", 1, 1),
    (2, (2, 3, 9, 8), (3, 1, 3, 2), 1, "same", (2, 3), 3),
    (2, (3, 7, 6), (2, 3, 3, 3), 2, "valid", 1, 1),
    (1, (2, 3, 11), (4, 3, 3), 2, 1, 1, 1),
    (1, (2, 4, 10), (2, 2, 4), 1, "same", 2, 2),
    (1, (3, 9), (2, 3, 2), 1, 0, 3, 1),
]


@needs_torch
@pytest.mark.parametrize("nd, xs, ws, stride, padding, dilation, groups", CONV_CASES)
def test_conv_matches_torch_with_its_gradients(nd, xs, ws, stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    conv = F.conv1d if nd == 1 else F.conv2d
    xt, wt, bt = T(x), T(w), T(b)
    yt = conv(xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    u = rng.standard_normal(tuple(yt.shape))
    gx, gw, gb = torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(u))
    bp = session(x=x, w=w, b=b, u=u)
    args = f"stride={stride}, padding={_bp_padding(padding)}, dilation={dilation}, groups={groups}"
    bp.exec(f"def f(x, w, b) = sum(u * conv{nd}d(x, w, b, {args}))")
    close(bp.eval(f"conv{nd}d(x, w, b, {args})"), yt.detach().numpy())
    got = bp.eval("grad(f, wrt=(x, w, b))(x, w, b)")
    for mine, theirs in zip(got, (gx, gw, gb)):
        close(mine, theirs.numpy())


POOL_CASES = [  # x shape, kernel_size, stride, padding
    ((2, 3, 6, 6), 2, None, 0),
    ((2, 2, 7, 8), 3, 2, 1),
    ((2, 2, 7, 8), (2, 3), (1, 2), (1, 1)),
    ((3, 5, 5), 3, 1, 1),
]


@needs_torch
@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("xs, k, stride, padding", POOL_CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_pools_match_torch_with_their_gradients(pool, xs, k, stride, padding, ties):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, xs).astype(float) if ties else rng.standard_normal(xs)
    xt = T(x)
    kw = {} if stride is None else {"stride": stride}
    yt = getattr(F, pool)(xt, k, padding=padding, **kw)
    u = rng.standard_normal(tuple(yt.shape))
    gx, = torch.autograd.grad(yt, (xt,), torch.tensor(u))
    bp = session(x=x, u=u)
    args = f"{k}" + ("" if stride is None else f", stride={stride}") + f", padding={padding}"
    close(bp.eval(f"{pool}(x, {args})"), yt.detach().numpy())
    close(bp.eval(f"grad(x -> sum(u * {pool}(x, {args})))(x)"), gx.numpy())


@needs_torch
def test_max_pool2d_takes_torchs_argmax_at_nan_and_minus_inf():
    x = np.array([[[1.0, np.nan, 2.0, np.nan], [0.0, 3.0, -np.inf, -np.inf],
                   [-np.inf, -np.inf, 5.0, 4.0], [-np.inf, -np.inf, 1.0, 1.0]]])
    xt = T(x)
    yt = F.max_pool2d(xt, 2, stride=2, padding=1)
    u = np.arange(1.0, 1.0 + yt.numel()).reshape(tuple(yt.shape))
    gx, = torch.autograd.grad(yt, (xt,), torch.tensor(u))
    bp = session(x=x, u=u)
    close(bp.eval("max_pool2d(x, 2, stride=2, padding=1)"), yt.detach().numpy())
    close(bp.eval("grad(x -> sum(u * max_pool2d(x, 2, stride=2, padding=1)))(x)"), gx.numpy())


@needs_torch
def test_norms_dropout_sort_top_k_match_torch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5))
    w, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    m, v = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    gam, bet = rng.standard_normal(3), rng.standard_normal(3)
    bp = session(x=x, w=w, b=b, m=m, v=v, gam=gam, bet=bet)
    ln = F.layer_norm(T(x, False), (4, 5), T(w, False), T(b, False), eps=1e-5)
    close(bp.eval("layer_norm(x, axis=(-2, -1), weight=w, bias=b)"), ln.numpy())
    close(bp.eval("layer_norm(x)"), F.layer_norm(T(x, False), (5,)).numpy())
    bn = F.batch_norm(T(x, False), T(m, False), T(v, False), T(gam, False), T(bet, False),
                      False, 0.1, 1e-3)
    close(bp.eval("batch_norm(x, m, v, gam, bet, 0, 0.1, 1e-3)"), bn.numpy())
    close(bp.eval("batch_norm(x[:, :, 0, 0], m, v)"),
          F.batch_norm(T(x[:, :, 0, 0], False), T(m, False), T(v, False)).numpy())
    xs = torch.tensor(x)
    close(bp.eval("sort(x, axis=1)"), torch.sort(xs, dim=1, stable=True).values.numpy())
    vals, idx = bp.eval("top_k(x, 3)")
    tv, ti = torch.topk(xs, 3)                 # distinct entries: the indices are determined
    close(vals, tv.numpy())
    close(idx, ti.numpy().astype(float))
    # dropout: the scaling and the mask's derivative (torch's mask comes from its own RNG)
    y = bp.eval("dropout(x, 0.25, seed=4)")
    kept = y != 0
    close(y[kept], x[kept] / 0.75)
    close(bp.eval("grad(x -> sum(dropout(x, 0.25, seed=4)))(x)"), kept / 0.75)


# ── second derivatives ───────────────────────────────────────────────────

CNN = """
def net(x, w, v) {
    h = relu(conv2d(x, w, padding=1, stride=(1, 2)))
    p = max_pool2d(h, 2)
    a = avg_pool2d(tanh(conv2d(p, v, groups=2)), 1)
    return sum(sin(a) * layer_norm(a, axis=(-2, -1)))
}
"""


# d/dt of the gradient along (dx, dw, dv): a Jacobian wrt a scalar is one JVP
ALONG = """
def along(t) = grad(net, wrt=(x, w, v))(x + t*dx, w + t*dw, v + t*dv)
"""


def _cnn_arrays():
    rng = np.random.default_rng(5)
    return dict(x=rng.standard_normal((2, 2, 6, 8)), w=rng.standard_normal((4, 2, 3, 3)),
                v=rng.standard_normal((4, 2, 2, 1)))


@needs_torch
def test_hessian_vector_products_of_a_small_cnn_match_torch():
    arr = _cnn_arrays()
    rng = np.random.default_rng(6)
    dirs = {k: rng.standard_normal(a.shape) for k, a in arr.items()}
    bp = session(**arr, **{"d" + k: d for k, d in dirs.items()})
    bp.exec(CNN + ALONG)
    ours = bp.eval("jacobian(along)(0)")

    def net(x, w, v):
        h = F.relu(F.conv2d(x, w, padding=1, stride=(1, 2)))
        p = F.max_pool2d(h, 2)
        a = F.avg_pool2d(torch.tanh(F.conv2d(p, v, groups=2)), 1)
        return (torch.sin(a) * F.layer_norm(a, a.shape[-2:], eps=1e-5)).sum()
    primals = tuple(T(arr[k]) for k in "xwv")
    _, hvp = torch.autograd.functional.hvp(net, primals, tuple(torch.tensor(dirs[k]) for k in "xwv"))
    for mine, theirs in zip(ours, hvp):
        close(mine, theirs.numpy(), rtol=1e-9)


def test_second_derivatives_of_a_small_cnn_match_finite_differences_of_its_gradient():
    """No PyTorch: d/dt grad(net)(θ + t·d) by a 4th-order stencil on bp's own gradient
    against bp's forward-over-reverse and reverse-over-reverse products."""
    arr = _cnn_arrays()
    rng = np.random.default_rng(7)
    dirs = {k: rng.standard_normal(a.shape) for k, a in arr.items()}
    bp = session(**arr, **{"d" + k: d for k, d in dirs.items()})
    bp.exec(CNN + ALONG)
    grad = bp.function("grad(net, wrt=(x, w, v))")

    def at(t):
        return grad(*(arr[k] + t * dirs[k] for k in "xwv"))
    h = 1e-4
    fd = [(8 * (a - b) - (c - d)) / (12 * h) for a, b, c, d in zip(at(h), at(-h), at(2 * h), at(-2 * h))]
    fwd = bp.eval("jacobian(along)(0)")                        # forward over reverse
    bp.exec("def slope(x, w, v) = sum(grad(net, wrt=x)(x, w, v) * dx) + "
            "sum(grad(net, wrt=w)(x, w, v) * dw) + sum(grad(net, wrt=v)(x, w, v) * dv)")
    rev = bp.eval("grad(slope, wrt=(x, w, v))(x, w, v)")        # reverse over reverse
    for a, b, c in zip(fwd, rev, fd):
        close(a, c, rtol=1e-6)
        close(b, c, rtol=1e-6)


# ── Jacobians (batching) ─────────────────────────────────────────────────

@pytest.mark.parametrize("src", [
    "x -> conv2d(x, V, stride=2, padding=1)",
    "w -> conv2d(X, w, groups=2)",
    "x -> max_pool2d(x, 2, stride=1)",
    "x -> avg_pool2d(x, 3, stride=2, padding=1)",
    "x -> sort(x, axis=-1)",
    "w -> grad(q -> sum(sin(conv2d(X, q, groups=2))))(w)",
    "x -> grad(q -> sum(sin(conv2d(q, V, stride=2, padding=1))))(x)",
    "x -> grad(q -> sum(cos(max_pool2d(q, 2, stride=1))) + sum(avg_pool2d(q, 2)^2))(x)",
    "x -> grad(q -> sum(sin(sort(q)) * [1, 2, 3, 4]))(x)",
])
def test_jacobian_through_batching_matches_one_vjp_per_row(src):
    rng = np.random.default_rng(8)
    X = rng.standard_normal((1, 4, 4, 3))
    W = rng.standard_normal((4, 2, 2, 2))
    bp = session(X=X, W=W, V=rng.standard_normal((3, 4, 2, 2)), S=rng.standard_normal((2, 4)))
    arg = "W" if src.startswith("w") else ("S" if "sort" in src else "X")
    bp.exec(f"f = {src}")
    jac = bp.eval(f"jacobian(f)({arg})")
    out = bp.eval(f"f({arg})")
    rows = []
    for k in range(out.size):
        e = np.zeros(out.size)
        e[k] = 1.0
        bp["e"] = e.reshape(out.shape)
        rows.append(bp.eval(f"grad(z -> sum(f(z) * e))({arg})"))
    ref = np.array(rows).reshape(out.shape + bp.eval(arg).shape)
    close(jac, ref, rtol=1e-12)


# ── printed derivatives read back; export in a fresh process ─────────────

PRINTED = """
def loss(x: [2, 2, 6, 6], w: [3, 2, 3, 3], b: [3]) {
    h = relu(conv2d(x, w, b, padding="same"))
    p = max_pool2d(h, 2) + avg_pool2d(h, 2)
    return sum(sort(flatten(p))[-4:]) + sum(top_k(flatten(p), 2)[0]) + sum(conv1d(x[:, :, 0], w[:, :, 0], stride=2)^2)
}
"""


def test_printed_derivatives_read_back():
    rng = np.random.default_rng(9)
    bp = session(x=rng.standard_normal((2, 2, 6, 6)), w=rng.standard_normal((3, 2, 3, 3)),
                 b=rng.standard_normal(3))
    bp.exec(PRINTED)
    for transform in ("grad(loss, wrt=(x, w, b))", "grad(grad(loss, wrt=w), wrt=w)"):
        if "grad(grad" in transform:
            bp.exec("def gw(x: [2, 2, 6, 6], w: [3, 2, 3, 3], b: [3]) = sum(grad(loss, wrt=w)(x, w, b) * w)")
            transform = "grad(gw, wrt=(x, w, b))"
        text = bp.show(transform)
        assert "conv2d_vjp" in text and "max_pool2d_vjp" in text, text
        bp.exec(f"g = {text}")
        want = bp.eval(f"{transform}(x, w, b)")
        got = bp.eval("g(x, w, b)")
        for a, c in zip(got, want):
            close(a, c, rtol=1e-13)


def test_printed_functions_read_back():
    """The forward ops print as calls that read back: canonical attributes (one number
    for every axis, (lo, hi) pairs where padding is uneven), top_k's indices as
    top_k(x, k)[1], the macros as what they are made of."""
    rng = np.random.default_rng(10)
    bp = session(x=rng.standard_normal((2, 2, 6, 5)), w=rng.standard_normal((4, 1, 3, 2)))
    bp.exec('def f(x: [2, 2, 6, 5], w: [4, 1, 3, 2]) {\n'
            '  y = conv2d(x, w, padding="same", groups=2)\n'
            '  z = avg_pool2d(max_pool2d(y, (2, 1), stride=1, padding=(1, 0)), 2)\n'
            '  v = flatten(layer_norm(z, axis=(-2, -1)))\n'
            '  return sort(v)[0:3] + top_k(v, 3)[0] * top_k(v, 3)[1] + conv1d(x[:, :, 0], w[:, :, 0], groups=2)[0, 0, 0:3]\n'
            '}')
    text = bp.show("f")
    assert "top_k(" in text and "[1]" in text and "top_k_indices" not in text, text
    assert "conv2d(x, w, padding=(1, 1, 0, 1), groups=2)" in text, text    # "same", kernel 3×2
    bp.exec(f"g = {text}")
    close(bp.eval("g(x, w)"), bp.eval("f(x, w)"), rtol=1e-15)


def test_export_of_a_cnn_gradient_runs_in_a_fresh_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arr = _cnn_arrays()
    bp = session(**arr)
    bp.exec(CNN)
    bp.exec(PRINTED)
    bp["b"] = np.array([0.1, -0.2, 0.3])
    bp["x2"], bp["w2"] = arr["x"][:, :, :6, :6], np.random.default_rng(1).standard_normal((3, 2, 3, 3))
    bp.exec('export grad(net, wrt=(x, w, v)) to "net_grad.py"', filename=str(tmp_path / "m.bp"))
    bp.exec('export grad(loss, wrt=(x, w, b)) to "loss_grad.py"', filename=str(tmp_path / "m.bp"))
    source = (tmp_path / "net_grad.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert all(line in ("import numpy as np", "import math") for line in imports), imports
    cases = [("net_grad", "grad_net", [arr["x"], arr["w"], arr["v"]], "grad(net, wrt=(x, w, v))(x, w, v)"),
             ("loss_grad", "grad_loss", [bp.eval("x2"), bp.eval("w2"), bp.eval("b")],
              "grad(loss, wrt=(x, w, b))(x2, w2, b)")]
    for module, fn, args, expr in cases:
        call = ", ".join(f"np.array({a.tolist()!r})" for a in args)
        script = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import json, numpy as np, "
                  f"{module}; print(json.dumps([np.asarray(g).tolist() for g in {module}.{fn}({call})]))")
        out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                             check=True)
        theirs = json.loads(out.stdout)
        for a, c in zip(bp.eval(expr), theirs):
            close(a, np.array(c), rtol=1e-12)


# ── located errors ───────────────────────────────────────────────────────

@pytest.mark.parametrize("src, kind, words", [
    ('conv2d(ones(1, 2, 5, 5), ones(3, 2, 3, 3), padding="full")', dsl.BpValueError, "'same' or 'valid'"),
    ('conv2d(ones(1, 2, 5, 5), ones(3, 2, 3, 3), stride=2, padding="same")', dsl.BpValueError, "stride 1"),
    ("conv2d(ones(1, 2, 5, 5), ones(3, 2, 3, 3), ones(2))", dsl.BpShapeError, "bias"),
    ("conv2d(ones(1, 2, 5, 5), ones(3, 3, 3, 3))", dsl.BpShapeError, "channels"),
    ("conv2d(ones(1, 2, 5, 5), ones(3, 2, 3, 3), stride=0)", dsl.BpValueError, "stride"),
    ("conv2d(ones(1, 2, 5, 5), ones(3, 2, 3, 3), padding=(1, 2, 3))", dsl.BpValueError, "padding"),
    ("conv2d(ones(1, 2, 5, 5), ones(3, 2, 3, 3), nope=1)", dsl.BpTypeError, "no argument 'nope'"),
    ("conv1d(ones(1, 2, 5), ones(3, 2, 9))", dsl.BpShapeError, "larger"),
    ("max_pool2d(ones(1, 1, 4, 4), 2, padding=2)", dsl.BpValueError, "half"),
    ("avg_pool2d(ones(4), 2)", dsl.BpShapeError, "needs an input"),
    ("dropout(ones(3), 1.5)", dsl.BpValueError, "between 0 and 1"),
    ("top_k(ones(3), 4)", dsl.BpValueError, "from 0 to"),
    ("batch_norm(ones(2, 3), ones(2), ones(3))", dsl.BpShapeError, "channels"),
    ("batch_norm(ones(2, 3), ones(3), ones(3), training=1)", dsl.BpValueError, "inference"),
    ("sort(1)", dsl.BpShapeError, "rank"),
])
def test_mistakes_are_located_errors(src, kind, words):
    bp = dsl.Interpreter()
    with pytest.raises(kind) as info:
        bp.exec(f"y = {src}", filename="m.bp")
    err = info.value
    assert words in err.message, err.message
    assert str(err).startswith("m.bp:1:"), str(err)
