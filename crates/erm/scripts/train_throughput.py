"""CPU training throughput of torchvision ResNet-18 at 64 x 64, batch 64, in PyTorch.

Usage: train_throughput.py [threads] [steps]. The same loop as the erm crate's
`train_throughput` example: forward, cross-entropy, backward, SGD step (momentum 0.9,
weight decay 1e-4) on random inputs, two warm-up steps, then timed steps.
"""

import sys
import time

import torch
import torchvision


def main(threads=2, steps=10, batch=64, side=64, warmup=2):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=2).train()
    optimiser = torch.optim.SGD(model.parameters(), lr=3e-3, momentum=0.9, weight_decay=1e-4)
    xs = torch.randn(batch, 3, side, side)
    ys = torch.randint(0, 2, (batch,))
    start = time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xs), ys)
        loss.backward()
        optimiser.step()
        loss.item()
    seconds = time.perf_counter() - start
    print(f"pytorch: resnet18 {side}x{side} batch {batch} threads {threads}: {steps} steps in "
          f"{seconds:.2f} s = {steps * batch / seconds:.1f} images/s")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
