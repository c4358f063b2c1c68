"""Independent reference for hesse's first-order optimizers: the same MLP,
start, batches and options trained by torch.optim in float32, one step per
batch.

usage: torch_first_order.py DIR ACTIVATION SIZES

DIR holds features.txt ([n, d]), labels.txt ([n], class indices), x0.txt
(flat parameters in hesse's layout: per Dense layer W [out, in]
column-major, then b), batches.txt (one batch of sample indices per line)
and cases.txt (one case per line: LABEL OPTIMIZER key=value ...). Writes
DIR/LABEL.txt for every case: the flat parameters after each step, one step
per line.
"""
import sys

import numpy as np
import torch

ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}


def make_network(sizes, activation):
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if index + 2 < len(sizes):
            layers.append(ACTIVATIONS[activation]())
    return torch.nn.Sequential(*layers)


def linears(network):
    return [m for m in network if isinstance(m, torch.nn.Linear)]


def set_flat(network, flat):
    offset = 0
    with torch.no_grad():
        for linear in linears(network):
            fan_out, fan_in = linear.weight.shape
            # hesse's W is column-major: element (i, j) at offset + j * fan_out + i.
            w = flat[offset:offset + fan_in * fan_out].reshape(fan_in, fan_out).T
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            offset += fan_in * fan_out
            linear.bias.copy_(torch.from_numpy(flat[offset:offset + fan_out]))
            offset += fan_out
    assert offset == flat.size


def get_flat(network):
    parts = []
    for linear in linears(network):
        parts.append(linear.weight.detach().numpy().T.reshape(-1))
        parts.append(linear.bias.detach().numpy())
    return np.concatenate(parts)


def make_optimizer(name, parameters, settings):
    flags = {key: bool(settings.pop(key)) for key in ("nesterov", "centered", "amsgrad")
             if key in settings}
    kwargs = dict(settings, **flags)
    if "beta1" in kwargs or "beta2" in kwargs:
        kwargs["betas"] = (kwargs.pop("beta1", 0.9), kwargs.pop("beta2", 0.999))
    classes = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
               "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
               "adamw": torch.optim.AdamW}
    return classes[name](parameters, **kwargs)


def main(directory, activation, sizes):
    sizes = [int(s) for s in sizes.split("-")]
    features = torch.from_numpy(np.loadtxt(f"{directory}/features.txt", ndmin=2, dtype=np.float32))
    labels = torch.from_numpy(np.loadtxt(f"{directory}/labels.txt", ndmin=1).astype(np.int64))
    x0 = np.loadtxt(f"{directory}/x0.txt", dtype=np.float32).reshape(-1)
    with open(f"{directory}/batches.txt") as f:
        batches = [torch.tensor([int(i) for i in line.split()]) for line in f if line.strip()]
    with open(f"{directory}/cases.txt") as f:
        cases = [line.split() for line in f if line.strip()]

    for label, name, *pairs in cases:
        settings = {key: float(value) for key, value in (p.split("=") for p in pairs)}
        network = make_network(sizes, activation)
        set_flat(network, x0)
        optimizer = make_optimizer(name, network.parameters(), settings)
        with open(f"{directory}/{label}.txt", "w") as out:
            for batch in batches:
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(network(features[batch]), labels[batch])
                loss.backward()
                optimizer.step()
                out.write(" ".join(f"{v:.9g}" for v in get_flat(network)) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:])
