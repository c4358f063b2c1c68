"""SciPy peer of bench/least_squares_expfit.cpp: the same exponential fit
y = a exp(b t) + c from the same data file and start (1, 0, 0), with
scipy.optimize.least_squares, method 'lm' (MINPACK lmder) and 'trf', an
analytic Jacobian and ftol = xtol = gtol = TOL. Prints one JSON object.

    /usr/bin/python3 bench/expfit_peers.py --data FILE [--reps R] [--tolerance TOL]
"""
import argparse
import json
import time

import numpy as np
import scipy
from scipy.optimize import least_squares


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--tolerance", type=float, default=1e-10)
    args = parser.parse_args()
    t, y = np.loadtxt(args.data, unpack=True)

    def residuals(p):
        return p[0] * np.exp(p[1] * t) + p[2] - y

    def jacobian(p):
        e = np.exp(p[1] * t)
        return np.column_stack([e, p[0] * t * e, np.ones_like(t)])

    out = {"scipy_version": scipy.__version__}
    for method in ("lm", "trf"):
        seconds = []
        for _ in range(args.reps):
            start = time.perf_counter()
            result = least_squares(residuals, [1.0, 0.0, 0.0], jac=jacobian, method=method,
                                   ftol=args.tolerance, xtol=args.tolerance, gtol=args.tolerance,
                                   max_nfev=100000)
            seconds.append(time.perf_counter() - start)
        seconds.sort()
        out[f"scipy_{method}"] = {
            "median_seconds": seconds[len(seconds) // 2],
            "min_seconds": seconds[0],
            "residual_evaluations": int(result.nfev),
            "jacobian_evaluations": int(result.njev) if result.njev is not None else None,
            "final_cost": float(result.cost),
            "termination": result.message,
            "status": int(result.status),
            "x": [float(v) for v in result.x],
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
