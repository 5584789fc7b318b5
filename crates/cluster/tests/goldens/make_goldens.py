"""Writes the golden files that tests/goldens.rs compares against.

For each fixture below (small structured "heatmap" sets, generated here with a fixed numpy
seed), the rows are divided by their max |value| and clustered with the reference's own
procedure as the peer harness runs it (`spectral_partition` in /work/shared/peer/peer.py:
scikit-learn's SpectralClustering kNN affinity with n_neighbors = int(ln N), scipy lobpcg for
the 13 smallest eigenvalues of the normalised Laplacian, k = argmax(diff[1:10]) + 2, then
SpectralClustering(k, affinity="precomputed", assign_labels="cluster_qr"), seed 1).

Writes, per fixture NAME: NAME.safetensors (`x`: float32 [N, D], the raw rows) and
NAME.json (eigenvalues, k, labels, n_neighbors, versions).

Usage: ~/.cache/exmap/torch-2.13.0/bin/python make_goldens.py [PEER_DIR]
(needs scikit-learn, scipy, numpy, safetensors; installs them with pip when missing).
"""
import importlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/peer"

for module, package in [("sklearn", "scikit-learn"), ("scipy", "scipy"), ("numpy", "numpy"),
                        ("safetensors", "safetensors")]:
    try:
        importlib.import_module(module)
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", package])

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

sys.path.insert(0, PEER)
import peer  # noqa: E402


def blobs(rng, n, d, centres, spread):
    """Gaussian blobs of unequal sizes around random centres."""
    means = rng.normal(0.0, 1.0, size=(centres, d))
    sizes = rng.multinomial(n - centres * 10, np.ones(centres) / centres) + 10
    rows = [means[c] + spread * rng.normal(size=(s, d)) for c, s in enumerate(sizes)]
    return np.concatenate(rows)[rng.permutation(n)]


def prototypes(rng, n, side, count, noise):
    """Smooth 3 x side x side prototype maps times a random amplitude, plus white noise."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    maps = []
    for _ in range(count):
        cy, cx, width = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.3)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
        signs = rng.choice([-1.0, 1.0], size=3)
        maps.append(np.stack([s * blob for s in signs]).ravel())
    which = rng.integers(0, count, n)
    amplitude = rng.uniform(0.5, 1.5, size=(n, 1))
    return np.asarray(maps)[which] * amplitude + noise * rng.normal(size=(n, 3 * side * side))


def main():
    rng = np.random.default_rng(20240601)
    fixtures = {
        "blobs4": blobs(rng, 300, 32, 4, 0.15),
        "blobs7": blobs(rng, 420, 24, 7, 0.2),
        "prototypes6": prototypes(rng, 360, 4, 6, 0.05),
        "prototypes5_large": prototypes(rng, 1000, 3, 5, 0.05),
    }
    for name, x in fixtures.items():
        x = x.astype(np.float32)
        scale = np.abs(x).max(axis=1)
        xn = x / np.where(scale == 0, 1.0, scale)[:, None]
        labels, record = peer.spectral_partition(xn, seed=1)
        save_file({"x": x}, os.path.join(HERE, f"{name}.safetensors"))
        golden = {
            "made_by": "make_goldens.py: peer.spectral_partition (scikit-learn + scipy lobpcg), seed 1",
            "sklearn": sklearn.__version__,
            "scipy": scipy.__version__,
            "n": int(x.shape[0]),
            "d": int(x.shape[1]),
            "n_neighbors": record["n_neighbors"],
            "eigenvalues": [float(v) for v in record["eigenvalues"]],
            "k": int(record["k"]),
            "components": record["graph_components"],
            "labels": [int(v) for v in labels],
        }
        with open(os.path.join(HERE, f"{name}.json"), "w") as f:
            json.dump(golden, f, indent=1)
            f.write("\n")
        print(name, "k =", golden["k"], "sizes", np.bincount(labels).tolist())


if __name__ == "__main__":
    main()
