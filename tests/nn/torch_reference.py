"""Independent reference for hesse's network derivatives: loss, gradient and
Hessian-vector product (double backward) of the same MLP in PyTorch, double.

usage: torch_reference.py DIR ACTIVATION LOSS SIZES
DIR holds features.txt ([n, d]), targets.txt ([n, t]), x.txt and v.txt (flat
parameters in hesse's layout: per Dense layer W [out, in] column-major, then
b). Writes DIR/reference.txt: the loss, the gradient, then H v, one per line.
"""
import sys

import numpy as np
import torch

ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": torch.relu,
    "leaky-relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": torch.nn.functional.softplus,
    "gelu": lambda z: torch.nn.functional.gelu(z),  # exact erf form
}


def unflatten(flat, sizes):
    layers, offset = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        # hesse stores W column-major: element (i, j) at offset + j * fan_out + i.
        w = flat[offset:offset + fan_in * fan_out].reshape(fan_in, fan_out).t()
        offset += fan_in * fan_out
        b = flat[offset:offset + fan_out]
        offset += fan_out
        layers.append((w, b))
    assert offset == flat.numel()
    return layers


def loss_of(flat, sizes, activation, loss, features, targets):
    h = features
    layers = unflatten(flat, sizes)
    for index, (w, b) in enumerate(layers):
        h = h @ w.t() + b
        if index + 1 < len(layers):
            h = ACTIVATIONS[activation](h)
    if loss == "mse":
        return torch.nn.functional.mse_loss(h, targets)
    if loss == "softmax-cross-entropy":
        return torch.nn.functional.cross_entropy(h, targets[:, 0].long())
    if loss == "binary-logistic":
        return torch.nn.functional.binary_cross_entropy_with_logits(h[:, 0], targets[:, 0])
    raise SystemExit(f"unknown loss {loss}")


def main(directory, activation, loss, sizes):
    sizes = [int(s) for s in sizes.split("-")]
    load = lambda name: torch.from_numpy(np.loadtxt(f"{directory}/{name}", ndmin=2)).double()
    features, targets = load("features.txt"), load("targets.txt")
    x = load("x.txt").reshape(-1).requires_grad_(True)
    v = load("v.txt").reshape(-1)
    value = loss_of(x, sizes, activation, loss, features, targets)
    (gradient,) = torch.autograd.grad(value, x, create_graph=True)
    (hv,) = torch.autograd.grad(gradient @ v, x)
    with open(f"{directory}/reference.txt", "w") as out:
        out.write(f"{value.item():.17g}\n")
        out.write(" ".join(f"{g:.17g}" for g in gradient.detach().numpy()) + "\n")
        out.write(" ".join(f"{h:.17g}" for h in hv.numpy()) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:])
