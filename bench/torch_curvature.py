#!/usr/bin/python3
"""PyTorch peer of bench/curvature.cpp: one gradient and one Hessian-vector
product of the same MLP (784-128-64-10, ReLU, softmax cross-entropy, mean over
a batch of 1000, float32, 2 threads, same init scale), timed the same way
(warm-up calls, then the median and minimum of `reps` calls). Prints one JSON
object.

  gradient              forward + torch.autograd.grad(loss, params)
  hvp_double_backward   forward, g = grad(loss, params, create_graph=True),
                        Hv = grad(sum_i g_i . v_i, params)   (Pearlmutter via
                        reverse-over-reverse; the fair peer of hesse's R-op)
  hvp_functorch         functorch.jvp(functorch.grad(f), params, v)
                        (forward-over-reverse), when functorch imports;
                        the loss written as logsumexp - gather, since
                        F.cross_entropy lacks forward AD of its backward in 1.13

--check DIR compares with the arrays `bench_curvature --dump DIR` wrote: the
loss, gradient, HVP and Gauss-Newton product at hesse's parameters and data,
recomputed here in float64, as relative errors.

Run with Debian's interpreter (/usr/bin/python3; python3-torch 1.13) and
OMP_WAIT_POLICY=PASSIVE.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--double", action="store_true")
    p.add_argument("--sizes", default="784-128-64-10")
    p.add_argument("--check", metavar="DIR", help="compare with bench_curvature --dump DIR")
    return p.parse_args()


def forward(params, x):
    """params: [W1, b1, W2, b2, ...] with W: [out, in]; x: [B, d] -> logits [B, k]."""
    h = x
    layers = len(params) // 2
    for l in range(layers):
        h = F.linear(h, params[2 * l], params[2 * l + 1])
        if l + 1 < layers:
            h = torch.relu(h)
    return h


def loss_fn(params, x, y):
    return F.cross_entropy(forward(params, x), y)


def init_params(sizes, dtype, gen):
    """hesse's Init::Auto: He normal before ReLU, Xavier uniform for the last layer, zero biases."""
    params = []
    for l in range(len(sizes) - 1):
        fan_in, fan_out = sizes[l], sizes[l + 1]
        if l + 2 < len(sizes):
            w = torch.randn(fan_out, fan_in, generator=gen, dtype=dtype) * (2.0 / fan_in) ** 0.5
        else:
            limit = (6.0 / (fan_in + fan_out)) ** 0.5
            w = (torch.rand(fan_out, fan_in, generator=gen, dtype=dtype) * 2 - 1) * limit
        params += [w, torch.zeros(fan_out, dtype=dtype)]
    return [t.requires_grad_() for t in params]


def timed(fns, warmup, reps):
    """Calls fns in turns (as bench_curvature does), so a change of load touches all alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples = [[] for _ in fns]
    for _ in range(reps):
        for fn, out in zip(fns, samples):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [{"median_ms": 1e3 * statistics.median(t), "min_ms": 1e3 * min(t)} for t in samples]


def unflatten(flat, sizes, dtype):
    """hesse's flat layout: per Dense layer W column-major [out, in], then b [out]."""
    params, at = [], 0
    for l in range(len(sizes) - 1):
        fan_in, fan_out = sizes[l], sizes[l + 1]
        w = flat[at:at + fan_in * fan_out].reshape(fan_in, fan_out).T
        at += fan_in * fan_out
        b = flat[at:at + fan_out]
        at += fan_out
        params += [torch.tensor(np.ascontiguousarray(w), dtype=dtype), torch.tensor(b.copy(), dtype=dtype)]
    assert at == flat.size, "parameter count mismatch"
    return params


def flatten(tensors):
    """Inverse of unflatten, as a float64 numpy vector."""
    out = []
    for l in range(len(tensors) // 2):
        out.append(tensors[2 * l].detach().double().numpy().T.reshape(-1))
        out.append(tensors[2 * l + 1].detach().double().numpy().reshape(-1))
    return np.concatenate(out)


def check(directory):
    """Loss, gradient, HVP and Gauss-Newton product in float64 at hesse's point."""
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    sizes = [int(s) for s in meta["sizes"].split("-")]
    batch = int(meta["batch"])
    np_dtype = np.float32 if meta["dtype"] == "float32" else np.float64
    load = lambda name: np.fromfile(os.path.join(directory, name), dtype=np_dtype)
    dt = torch.float64
    params = [t.requires_grad_() for t in unflatten(load("params.bin"), sizes, dt)]
    v = unflatten(load("v.bin"), sizes, dt)
    x = torch.tensor(load("features.bin").reshape(batch, sizes[0]), dtype=dt)
    y = torch.tensor(load("labels.bin"), dtype=torch.int64)

    loss = loss_fn(params, x, y)
    g = torch.autograd.grad(loss, params, create_graph=True)
    hv = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), params)

    # Gauss-Newton J^T H_l J v: J v by the double-vjp trick, H_l of the mean
    # softmax cross-entropy, then one vjp.
    out = forward(params, x)
    u = torch.zeros_like(out, requires_grad=True)
    jt_u = torch.autograd.grad(out, params, grad_outputs=u, create_graph=True)
    jv = torch.autograd.grad(jt_u, u, grad_outputs=v)[0]
    p = torch.softmax(out.detach(), dim=1)
    h_jv = p * (jv - (p * jv).sum(dim=1, keepdim=True)) / batch
    gnv = torch.autograd.grad(out, params, grad_outputs=h_jv)

    def rel(name, ref):
        mine = load(name).astype(np.float64)
        return float(np.linalg.norm(mine - ref) / max(np.linalg.norm(ref), 1e-300))

    return {
        "reference": "PyTorch float64 at hesse's parameters and data",
        "hesse_loss": meta["loss"],
        "torch_loss": float(loss),
        "loss_rel_diff": abs(meta["loss"] - float(loss)) / abs(float(loss)),
        "gradient_rel_diff": rel("grad.bin", flatten(g)),
        "hvp_rel_diff": rel("hv.bin", flatten(hv)),
        "gn_rel_diff": rel("gnv.bin", flatten(gnv)),
    }


def blas_libraries():
    """The BLAS and oneDNN libraries this process mapped (Debian's torch uses the
    libblas.so.3 alternative: netlib reference BLAS unless OpenBLAS/BLIS is chosen)."""
    found = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if any(k in os.path.basename(path) for k in ("blas", "blis", "mkl", "dnnl")):
                found.add(os.path.realpath(path))
    return sorted(found)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.double else torch.float32
    sizes = [int(s) for s in args.sizes.split("-")]
    gen = torch.Generator().manual_seed(0)
    params = init_params(sizes, dtype, gen)
    x = torch.rand(args.batch, sizes[0], generator=gen, dtype=dtype)
    y = torch.randint(0, sizes[-1], (args.batch,), generator=gen)
    v = [torch.randn(p.shape, generator=gen, dtype=dtype) for p in params]

    state = {}

    def gradient():
        loss = loss_fn(params, x, y)
        state["grad"] = torch.autograd.grad(loss, params)
        state["loss"] = float(loss)

    def hvp_double_backward():
        loss = loss_fn(params, x, y)
        g = torch.autograd.grad(loss, params, create_graph=True)
        state["hv"] = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), params)

    def value():
        with torch.no_grad():
            loss_fn(params, x, y)

    result = {
        "benchmark": "pytorch curvature products",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "blas_info": torch.__config__.show().split("BLAS_INFO=")[1].split(",")[0],
        "problem": {"network": args.sizes, "activation": "relu", "loss": "softmax-cross-entropy",
                    "batch": args.batch, "dtype": "float64" if args.double else "float32",
                    "data": "synthetic: features U[0,1], labels uniform, He/Xavier init as hesse (torch generator seed 0)"},
        "timing": {"method": "perf_counter; gradient, HVP, value (, functorch HVP) called in turns; median (and min) of reps after warmup untimed rounds",
                   "reps": args.reps, "warmup": args.warmup},
    }
    fns = [gradient, hvp_double_backward, value]
    hvp_jvp, functorch_error = None, None
    try:
        import functorch

        # F.cross_entropy has no forward-mode derivative of its backward in
        # 1.13 (nll_loss_backward), so the same loss written out.
        def f(ps):
            z = forward(ps, x)
            return (torch.logsumexp(z, dim=1) - z.gather(1, y[:, None]).squeeze(1)).mean()

        plain = [p.detach() for p in params]
        hvp_jvp = lambda: functorch.jvp(functorch.grad(f), (plain,), (v,))
        hvp_jvp()
        fns.append(hvp_jvp)
    except Exception as e:  # functorch missing or unsupported op: report, do not fail
        functorch_error = f"{type(e).__name__}: {e}"
    times = timed(fns, args.warmup, args.reps)
    t_grad, t_hvp, t_value = times[:3]
    res = {
        "gradient_ms": t_grad["median_ms"], "gradient_min_ms": t_grad["min_ms"],
        "hvp_double_backward_ms": t_hvp["median_ms"], "hvp_double_backward_min_ms": t_hvp["min_ms"],
        "value_ms": t_value["median_ms"],
        "hvp_over_gradient": t_hvp["median_ms"] / t_grad["median_ms"],
        "loss": state["loss"],
    }
    if hvp_jvp is not None:
        res["hvp_functorch_jvp_grad_ms"] = times[3]["median_ms"]
        res["hvp_functorch_jvp_grad_min_ms"] = times[3]["min_ms"]
    else:
        res["hvp_functorch_jvp_grad_error"] = functorch_error
    result["results"] = res
    result["libraries"] = blas_libraries()
    if args.check:
        result["check"] = check(args.check)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
