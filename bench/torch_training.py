#!/usr/bin/python3
"""PyTorch peer of hesse's mini-batch training benchmark: the same MLP
(784-128-64-10, ReLU, softmax cross-entropy averaged over the batch, float32),
the same initial parameters and the same batches, trained by torch.optim.
Prints one JSON object.

usage:
  /usr/bin/python3 bench/torch_training.py --data-dir DIR --optimizer adam|sgd
      --lr LR [--momentum M] --batch-size 128 --epochs N --threads 2
      --init params.npy --order order.npy --target-accuracy 0.87 --eval-every STEPS
      [--time-limit SECONDS] [--stop-at-target]
      [--timing-steps 300 --timing-warmup 20 --timing-rounds 3] [--timing-only]

DIR holds train_features.npy (float32 [n, d], or [n, 28, 28] flattened per
sample), train_labels.npy (integer [n]), test_features.npy and
test_labels.npy. --init is hesse's flat float32 parameter vector: per Dense
layer W [out, in] column-major, then b (torch's Linear.weight is the same
matrix row-major, so W = flat[...].reshape(in, out).T). --order holds the
sample order of every epoch (int64 [epochs, n]); epoch e's batches are
order[e] cut into consecutive runs of --batch-size, the last one shorter
(hesse's BatchSampler without drop_last), so both libraries see the same
batches.

Timing: a step is gathering the batch, forward, backward and
optimizer.step(); seconds_per_epoch and mean_step_seconds count steps only
(seconds_per_epoch = training seconds / fractional epochs run).
The test accuracy is measured outside the clock every --eval-every steps
(counted over the whole run), after the last batch of every epoch and after
the last step, as hesse's fit() does; seconds_to_target is the training time
at the first evaluation with accuracy >= --target-accuracy (null if none).
--stop-at-target ends the run there; --time-limit ends it once the training
time reaches the limit (both as fit()'s target_accuracy and
time_limit_seconds). final_loss is the mean loss over the whole training set
at the end.

--timing-steps N (0: off) first measures the step alone, as bench_training's
step_timing: from the initial parameters with a new optimizer, --timing-warmup
untimed steps then N timed ones on the same batch order; repeated
--timing-rounds times, the round with the median mean is reported under
"step_timing" (mean, median, min, every round's mean). The training run that
follows starts again from the initial parameters; --timing-only skips it and
prints the step timing alone (bench/run_training alternates such rounds with
bench_training's, so both programs are timed under the same machine load).

Run with Debian's interpreter (python3-torch 1.13 imports only under
/usr/bin/python3) and OMP_WAIT_POLICY=PASSIVE on a shared machine.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--optimizer", required=True,
                   choices=["sgd", "adam", "adamw", "rmsprop", "adagrad"])
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--momentum", type=float, default=0.0, help="sgd, rmsprop")
    p.add_argument("--nesterov", action="store_true", help="sgd")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="default: torch.optim's (0; 0.01 for adamw)")
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--eps", type=float, default=None, help="default: torch.optim's")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init", required=True, help="flat float32 parameters in hesse's layout")
    p.add_argument("--order", required=True, help="int64 [epochs, n] sample order per epoch")
    p.add_argument("--target-accuracy", type=float, default=0.87)
    p.add_argument("--eval-every", type=int, default=0,
                   help="steps between test evaluations (0: once per epoch)")
    p.add_argument("--sizes", default="784-128-64-10", help="layer sizes, ReLU between")
    p.add_argument("--time-limit", type=float, default=0.0,
                   help="training-time budget in seconds (0: none)")
    p.add_argument("--stop-at-target", action="store_true",
                   help="stop at the first evaluation that reaches --target-accuracy")
    p.add_argument("--timing-steps", type=int, default=0,
                   help="steps of the separate step-time measurement (0: none)")
    p.add_argument("--timing-warmup", type=int, default=20)
    p.add_argument("--timing-rounds", type=int, default=3)
    p.add_argument("--timing-only", action="store_true",
                   help="measure the step time (--timing-steps) and skip the training run")
    return p.parse_args()


def fail(message):
    print(f"torch_training.py: {message}", file=sys.stderr)
    sys.exit(2)


def load_split(directory, split):
    features_path = os.path.join(directory, f"{split}_features.npy")
    labels_path = os.path.join(directory, f"{split}_labels.npy")
    for path in (features_path, labels_path):
        if not os.path.exists(path):
            fail(f"{path}: no such file")
    features = np.load(features_path)
    labels = np.load(labels_path)
    if features.ndim < 2:
        fail(f"{features_path}: expected [n, d] features, got shape {features.shape}")
    features = features.reshape(features.shape[0], -1).astype(np.float32, copy=False)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        fail(f"{labels_path}: expected integer labels [n], got {labels.dtype} {labels.shape}")
    if labels.shape[0] != features.shape[0]:
        fail(f"{labels_path}: {labels.shape[0]} labels for {features.shape[0]} samples")
    return torch.from_numpy(np.ascontiguousarray(features)), torch.from_numpy(labels.astype(np.int64))


def make_network(sizes, flat):
    expected = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    if flat.ndim != 1 or flat.size != expected:
        fail(f"--init: {flat.size} parameters, the {'-'.join(map(str, sizes))} MLP has {expected}")
    layers, offset = [], 0
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = torch.nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            # hesse's W is column-major: element (i, j) at offset + j * fan_out + i.
            w = flat[offset:offset + fan_in * fan_out].reshape(fan_in, fan_out).T
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            offset += fan_in * fan_out
            linear.bias.copy_(torch.from_numpy(flat[offset:offset + fan_out]))
            offset += fan_out
        layers.append(linear)
        if index + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def make_optimizer(args, parameters):
    kwargs = {"lr": args.lr}
    if args.weight_decay is not None:
        kwargs["weight_decay"] = args.weight_decay
    if args.eps is not None and args.optimizer != "sgd":
        kwargs["eps"] = args.eps
    if args.optimizer == "sgd":
        return torch.optim.SGD(parameters, momentum=args.momentum, nesterov=args.nesterov, **kwargs)
    if args.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if args.optimizer == "adam" else torch.optim.AdamW
        return cls(parameters, betas=(args.beta1, args.beta2), **kwargs)
    if args.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, momentum=args.momentum, **kwargs)
    return torch.optim.Adagrad(parameters, **kwargs)


@torch.no_grad()
def evaluate(network, features, labels, chunk=4096):
    """(accuracy, mean loss) over all samples."""
    correct, loss = 0, 0.0
    for begin in range(0, features.shape[0], chunk):
        logits = network(features[begin:begin + chunk])
        y = labels[begin:begin + chunk]
        correct += int((logits.argmax(dim=1) == y).sum())
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
    return correct / features.shape[0], loss / features.shape[0]


def batches(order, n, batch_size):
    """Every batch of every epoch in order: (epoch, index of the batch in it, indices)."""
    for epoch in range(order.shape[0]):
        for begin in range(0, n, batch_size):
            yield epoch, begin // batch_size, order[epoch, begin:begin + batch_size]


def train_step(network, optimizer, train_x, train_y, batch):
    x, y = train_x.index_select(0, batch), train_y.index_select(0, batch)
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(network(x), y)
    loss.backward()
    optimizer.step()
    return loss


def step_timing(args, sizes, init, order, train_x, train_y):
    """Mean, median and min of --timing-steps steps after --timing-warmup, per round."""
    n = train_x.shape[0]
    rounds = []
    for _ in range(args.timing_rounds):
        network = make_network(sizes, init)
        optimizer = make_optimizer(args, network.parameters())
        times = []
        for _, _, batch in batches(order, n, args.batch_size):
            if len(times) == args.timing_warmup + args.timing_steps:
                break
            start = time.perf_counter()
            train_step(network, optimizer, train_x, train_y, batch)
            times.append(time.perf_counter() - start)
        timed = sorted(times[args.timing_warmup:])
        if not timed:
            fail("--timing-steps: the order holds no batch beyond the warm-up")
        k = len(timed)
        median = timed[k // 2] if k % 2 else 0.5 * (timed[k // 2 - 1] + timed[k // 2])
        rounds.append({"warmup_steps": args.timing_warmup, "steps": k,
                       "mean_step_seconds": sum(timed) / k, "median_step_seconds": median,
                       "min_step_seconds": timed[0], "max_step_seconds": timed[-1]})
    chosen = dict(sorted(rounds, key=lambda r: r["mean_step_seconds"])[len(rounds) // 2])
    chosen["round_means"] = [r["mean_step_seconds"] for r in rounds]
    return chosen


def main():
    args = parse_args()
    if args.batch_size < 1 or args.epochs < 1 or args.threads < 1 or args.eval_every < 0:
        fail("--batch-size, --epochs and --threads must be >= 1, --eval-every >= 0")
    if args.time_limit < 0 or args.timing_steps < 0 or args.timing_warmup < 0 or args.timing_rounds < 1:
        fail("--time-limit, --timing-steps and --timing-warmup must be >= 0, --timing-rounds >= 1")
    if args.timing_only and args.timing_steps == 0:
        fail("--timing-only needs --timing-steps N > 0")
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split("-")]
    train_x, train_y = load_split(args.data_dir, "train")
    test_x, test_y = load_split(args.data_dir, "test")
    n = train_x.shape[0]
    if train_x.shape[1] != sizes[0] or test_x.shape[1] != sizes[0]:
        fail(f"features have {train_x.shape[1]} (train) and {test_x.shape[1]} (test) columns, "
             f"the network takes {sizes[0]}")
    if int(train_y.max()) >= sizes[-1] or int(train_y.min()) < 0:
        fail(f"train labels must be in [0, {sizes[-1]})")
    order = np.load(args.order)
    if order.ndim != 2 or order.shape[0] < args.epochs or order.shape[1] != n:
        fail(f"{args.order}: shape {order.shape}, expected [>= {args.epochs}, {n}]")
    for e in range(args.epochs):
        if not np.array_equal(np.sort(order[e]), np.arange(n)):
            fail(f"{args.order}: epoch {e} is not a permutation of 0..{n - 1}")
    order = torch.from_numpy(order[:args.epochs].astype(np.int64))
    init = np.load(args.init).astype(np.float32, copy=False)

    timing = step_timing(args, sizes, init, order, train_x, train_y) if args.timing_steps > 0 else None
    if args.timing_only:
        print(json.dumps({"optimizer": args.optimizer, "lr": args.lr, "momentum": args.momentum,
                          "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                          "torch": torch.__version__, "step_timing": timing}))
        return

    network = make_network(sizes, init)
    optimizer = make_optimizer(args, network.parameters())
    steps_per_epoch = (n + args.batch_size - 1) // args.batch_size

    steps, train_seconds = 0, 0.0
    seconds_to_target = None
    history = []

    def record():
        nonlocal seconds_to_target
        accuracy, _ = evaluate(network, test_x, test_y)
        history.append({"step": steps, "train_seconds": train_seconds, "test_accuracy": accuracy})
        if seconds_to_target is None and accuracy >= args.target_accuracy:
            seconds_to_target = train_seconds
        return accuracy

    stop_reason = "epochs completed"
    for _, index, batch in batches(order, n, args.batch_size):
        start = time.perf_counter()
        train_step(network, optimizer, train_x, train_y, batch)
        train_seconds += time.perf_counter() - start
        steps += 1
        if (args.eval_every > 0 and steps % args.eval_every == 0) or index + 1 == steps_per_epoch:
            record()
            if args.stop_at_target and seconds_to_target is not None:
                stop_reason = "target accuracy reached"
                break
        if args.time_limit > 0 and train_seconds >= args.time_limit:
            stop_reason = "time limit"
            break
    if not history or history[-1]["step"] != steps:
        record()
    final_accuracy = history[-1]["test_accuracy"]
    _, final_loss = evaluate(network, train_x, train_y)

    print(json.dumps({
        "optimizer": args.optimizer,
        "epochs": steps / steps_per_epoch,
        "steps": steps,
        "stop_reason": stop_reason,
        "seconds": train_seconds,
        "seconds_per_epoch": train_seconds * steps_per_epoch / steps,
        "seconds_to_target": seconds_to_target,
        "reached_target": seconds_to_target is not None,
        "target_accuracy": args.target_accuracy,
        "final_test_accuracy": final_accuracy,
        "final_loss": final_loss,
        "mean_step_seconds": train_seconds / steps,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "momentum": args.momentum,
        "eval_every_steps": args.eval_every,
        "step_timing": timing,
        "history": history,
    }))


if __name__ == "__main__":
    main()
