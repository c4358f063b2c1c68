#!/usr/bin/python3
"""Peers of bench_logistic: scikit-learn and SciPy on the same L2 logistic
regression, the same NPY files, the same start (zero) and tolerance.

hesse's objective (models/logistic_regression.hpp), theta = [w; b]:

    L(theta) = mean_i log(1 + exp(-s_i z_i)) + l2/2 |w|^2,  z = X w + b, s = 2y - 1

  * SciPy (L-BFGS-B, trust-ncg with hessp) minimise exactly L, implemented here
    in vectorised NumPy (one X @ w and one X.T @ r per value+gradient, one
    X @ v and one X.T @ u per Hessian-vector product, sigmoid cached at the
    last point). Stopping: L-BFGS-B gtol = TOL on |projected g|_inf (ftol = 0,
    so it cannot stop earlier on a small decrease); trust-ncg gtol = TOL on
    |g|_2 (stricter than |g|_inf by up to sqrt(d + 1)).
  * scikit-learn 1.2.1 LogisticRegression(C = 1/(n l2)): 'lbfgs' and
    'newton-cg' minimise sum_i log-loss + 1/(2C) |w|^2 = n L, so their
    tol (on |g|_inf of their objective) is n * TOL; 'newton-cholesky'
    normalises the sample weights to sum 1 and minimises L itself, tol = TOL
    (it also requires the Newton decrement 1/2 d^2 <= tol). 'lbfgs' keeps
    SciPy's default ftol (2.2e-9 relative), which scikit-learn does not expose.
Every peer's result is checked in hesse's scaling with the NumPy objective:
final value, |g|_inf, and max |theta - theta_hesse|.

  logistic_peers.py --make-synthetic DIR [--n 100000] [--d 100] [--seed 0]
      X ~ N(0, 1) [n, d]; w* ~ N(0, 1) / sqrt(d), b* = 0.5;
      y ~ Bernoulli(sigmoid(X w* + b*)); numpy.random.default_rng(seed) draws
      X, then w*, then the uniforms for y. Writes DIR/X.npy (float64 C order)
      and DIR/y.npy (int64).
  logistic_peers.py --features X.npy --labels y.npy --l2 L --tolerance TOL
      [--reps R] [--hesse-solution FILE.npy]
      prints one JSON object; times are medians of R fits (default 5),
      excluding loading the data.
"""
import argparse
import json
import statistics
import sys
import time
import warnings

import numpy as np
from scipy import optimize
from scipy.special import expit


def make_synthetic(directory, n, d, seed):
    import os
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d) / np.sqrt(d)
    y = (rng.random(n) < expit(X @ w + 0.5)).astype(np.int64)
    np.save(f"{directory}/X.npy", X)
    np.save(f"{directory}/y.npy", y)
    print(json.dumps({"written": directory, "n": n, "d": d, "seed": seed, "positive_fraction": float(y.mean())}))


class Objective:
    """hesse's L(theta) in NumPy with evaluation counters."""

    def __init__(self, X, y, l2):
        self.X, self.y, self.l2 = X, y.astype(np.float64), l2
        self.s = 2 * self.y - 1
        self.n, self.d = X.shape
        self.cached_x, self.cached_curvature = None, None
        self.counts = {"function": 0, "gradient": 0, "hessian_vector": 0}

    def value_and_gradient(self, theta):
        self.counts["function"] += 1
        self.counts["gradient"] += 1
        w, b = theta[:-1], theta[-1]
        z = self.X @ w + b
        value = np.logaddexp(0.0, -self.s * z).mean() + 0.5 * self.l2 * (w @ w)
        p = expit(z)
        r = (p - self.y) / self.n
        gradient = np.empty_like(theta)
        gradient[:-1] = self.X.T @ r + self.l2 * w
        gradient[-1] = r.sum()
        self.cached_x, self.cached_curvature = theta.copy(), p * (1 - p)
        return value, gradient

    def value(self, theta):
        return self.value_and_gradient(theta)[0]

    def hessp(self, theta, v):
        self.counts["hessian_vector"] += 1
        if self.cached_x is None or not np.array_equal(theta, self.cached_x):
            p = expit(self.X @ theta[:-1] + theta[-1])
            self.cached_x, self.cached_curvature = theta.copy(), p * (1 - p)
        u = self.cached_curvature * (self.X @ v[:-1] + v[-1]) / self.n
        out = np.empty_like(v)
        out[:-1] = self.X.T @ u + self.l2 * v[:-1]
        out[-1] = u.sum()
        return out


def count_sklearn_evaluations(fit):
    """Runs fit() once with LinearModelLoss's methods wrapped to count calls."""
    from sklearn.linear_model import _linear_loss
    cls = _linear_loss.LinearModelLoss
    counts = {"function": 0, "gradient": 0, "hessian_vector": 0, "hessian": 0}
    originals = {}

    def wrap(name, kinds, returns_hessp=False):
        original = getattr(cls, name)
        originals[name] = original

        def counted(self, *args, **kwargs):
            for kind in kinds:
                counts[kind] += 1
            result = original(self, *args, **kwargs)
            if returns_hessp:
                gradient, hessp = result

                def counted_hessp(v):
                    counts["hessian_vector"] += 1
                    return hessp(v)
                return gradient, counted_hessp
            return result
        setattr(cls, name, counted)

    wrap("loss", ["function"])
    wrap("loss_gradient", ["function", "gradient"])
    wrap("gradient", ["gradient"])
    wrap("gradient_hessian_product", ["gradient"], returns_hessp=True)
    wrap("gradient_hessian", ["gradient", "hessian"])
    try:
        fit()
    finally:
        for name, original in originals.items():
            setattr(cls, name, original)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--make-synthetic")
    parser.add_argument("--n", type=int, default=100000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features")
    parser.add_argument("--labels")
    parser.add_argument("--l2", type=float)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--hesse-solution")
    args = parser.parse_args()
    if args.make_synthetic:
        return make_synthetic(args.make_synthetic, args.n, args.d, args.seed)
    if not (args.features and args.labels):
        parser.error("--features and --labels are required")

    import sklearn
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info

    X = np.ascontiguousarray(np.load(args.features), dtype=np.float64)
    y = np.load(args.labels)
    n, d = X.shape
    l2 = args.l2 if args.l2 is not None else 1.0 / n
    tol = args.tolerance
    f = Objective(X, y, l2)
    reference = np.load(args.hesse_solution) if args.hesse_solution else None

    def check(theta):
        value, gradient = Objective(X, y, l2).value_and_gradient(theta)
        return {
            "final_value": float(value),
            "gradient_norm_inf": float(np.abs(gradient).max()),
            "converged": bool(np.abs(gradient).max() <= tol),
            "max_coef_diff_to_hesse_newton": None if reference is None else float(np.abs(theta - reference).max()),
        }

    results = {}

    def timed(run, reps):
        seconds, out = [], None
        for _ in range(reps):
            start = time.perf_counter()
            out = run()
            seconds.append(time.perf_counter() - start)
        return statistics.median(seconds), min(seconds), out

    # SciPy on the NumPy objective.
    x0 = np.zeros(d + 1)
    scipy_runs = {
        "scipy L-BFGS-B": lambda: optimize.minimize(
            f.value_and_gradient, x0, jac=True, method="L-BFGS-B",
            options={"gtol": tol, "ftol": 0.0, "maxiter": 100000, "maxfun": 1000000, "maxcor": 10}),
        "scipy trust-ncg": lambda: optimize.minimize(
            f.value_and_gradient, x0, jac=True, hessp=f.hessp, method="trust-ncg",
            options={"gtol": tol, "maxiter": 100000}),
    }
    for name, run in scipy_runs.items():
        median, fastest, res = timed(run, args.reps)
        for key in f.counts:
            f.counts[key] = 0
        res = run()  # one more run only to read the counts
        results[name] = {
            "seconds": median, "seconds_min": fastest, "iterations": int(res.nit),
            "function_evaluations": f.counts["function"], "gradient_evaluations": f.counts["gradient"],
            "hessian_vector_products": f.counts["hessian_vector"], "hessian_evaluations": 0,
            "termination": str(res.message), **check(res.x),
        }

    # scikit-learn: tolerance in each solver's own scaling (see the top).
    sklearn_tol = {"lbfgs": n * tol, "newton-cg": n * tol, "newton-cholesky": tol}
    for solver, solver_tol in sklearn_tol.items():
        def fit(solver=solver, solver_tol=solver_tol):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return LogisticRegression(C=1.0 / (n * l2), solver=solver, tol=solver_tol,
                                          max_iter=100000).fit(X, y)
        median, fastest, model = timed(fit, args.reps)
        counts = count_sklearn_evaluations(fit)
        theta = np.concatenate([model.coef_[0], model.intercept_])
        results[f"sklearn {solver}"] = {
            "seconds": median, "seconds_min": fastest, "iterations": int(model.n_iter_[0]),
            "function_evaluations": counts["function"], "gradient_evaluations": counts["gradient"],
            "hessian_vector_products": counts["hessian_vector"], "hessian_evaluations": counts["hessian"],
            "termination": f"tol {solver_tol:g} on its own scaling", **check(theta),
        }

    # The objective's products, for the diagnosis (theta = 0, v = 1).
    def product_ms(call):
        call()
        t = []
        for _ in range(15):
            start = time.perf_counter()
            call()
            t.append(time.perf_counter() - start)
        return statistics.median(t) * 1e3
    ones = np.ones(d + 1)
    product = {
        "value_and_gradient": product_ms(lambda: f.value_and_gradient(x0)),
        "hessian_vector": product_ms(lambda: f.hessp(x0, ones)),
    }
    blas = [{k: lib.get(k) for k in ("internal_api", "num_threads", "version")} for lib in threadpool_info()]
    print(json.dumps({
        "program": "logistic_peers.py", "features": args.features, "n": n, "d": d, "l2": l2, "tolerance": tol,
        "reps": args.reps, "numpy": np.__version__, "scipy": __import__("scipy").__version__,
        "sklearn": sklearn.__version__, "threadpools": blas, "numpy_product_ms": product,
        "solvers": results,
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())
