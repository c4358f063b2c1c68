#!/usr/bin/python3
"""PyTorch peer of hesse's mini-batch training benchmark: the same MLP
(784-128-64-10, ReLU, softmax cross-entropy averaged over the batch, float32),
the same initial parameters and the same batches, trained by torch.optim.
Prints one JSON object.

usage:
  /usr/bin/python3 bench/torch_training.py --data-dir DIR --optimizer adam|sgd
      --lr LR [--momentum M] --batch-size 128 --epochs N --threads 2
      --init params.npy --order order.npy --target-accuracy 0.87 --eval-every STEPS

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
optimizer.step(); seconds_per_epoch and mean_step_seconds count steps only.
Every --eval-every steps (and after the last step) the test accuracy is
measured outside the clock; seconds_to_target is the training time at the
first evaluation with accuracy >= --target-accuracy (null if none).
final_loss is the mean loss over the whole training set at the end.

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


def main():
    args = parse_args()
    if args.batch_size < 1 or args.epochs < 1 or args.threads < 1 or args.eval_every < 0:
        fail("--batch-size, --epochs and --threads must be >= 1, --eval-every >= 0")
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
    order = torch.from_numpy(order.astype(np.int64))

    network = make_network(sizes, np.load(args.init).astype(np.float32, copy=False))
    optimizer = make_optimizer(args, network.parameters())

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

    for epoch in range(args.epochs):
        for begin in range(0, n, args.batch_size):
            start = time.perf_counter()
            batch = order[epoch, begin:begin + args.batch_size]
            x, y = train_x.index_select(0, batch), train_y.index_select(0, batch)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(network(x), y)
            loss.backward()
            optimizer.step()
            train_seconds += time.perf_counter() - start
            steps += 1
            if args.eval_every > 0 and steps % args.eval_every == 0:
                record()
        if args.eval_every == 0:
            record()
    if not history or history[-1]["step"] != steps:
        record()
    final_accuracy = history[-1]["test_accuracy"]
    _, final_loss = evaluate(network, train_x, train_y)

    print(json.dumps({
        "optimizer": args.optimizer,
        "epochs": args.epochs,
        "steps": steps,
        "seconds_per_epoch": train_seconds / args.epochs,
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
        "history": history,
    }))


if __name__ == "__main__":
    main()
