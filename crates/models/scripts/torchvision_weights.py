"""Convert torchvision ResNet weights to a safetensors state dict with torchvision names.

Usage:
    torchvision_weights.py ARCH OUT_DIR            # ImageNet weights (downloads when online)
    torchvision_weights.py ARCH OUT_DIR --random --seed 0 --classes 2 [--small-stem]

Writes OUT_DIR/ARCH.safetensors (or ARCH-random.safetensors) and prints
`<sha256>  <path>`. Requires torch, torchvision==0.28.0 and safetensors in the interpreter
that runs it. `convert` is the single conversion routine; the models crate's parity test uses
it offline on randomly initialised networks.
"""

import argparse
import hashlib
import os
import sys

ARCHS = ("resnet18", "resnet34", "resnet50")


def build(arch, pretrained, classes=1000, small_stem=False, seed=0):
    """A torchvision ResNet in eval mode; the small stem is a 3x3 stride-1 conv, no max-pool."""
    import torch
    import torchvision

    if pretrained:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
        model = torchvision.models.get_model(arch, weights=weights)
    else:
        torch.manual_seed(seed)
        model = torchvision.models.get_model(arch, weights=None, num_classes=classes)
    if small_stem:
        model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = torch.nn.Identity()
    return model.eval()


def convert(model, path, metadata=None):
    """Write the model's state dict (floats as contiguous f32) to `path`; return its sha256."""
    import torch
    from safetensors.torch import save_file

    state = {}
    for name, value in model.state_dict().items():
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.to(torch.float32)
        state[name] = value.contiguous()
    save_file(state, path, metadata=metadata)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arch", choices=ARCHS)
    parser.add_argument("out_dir")
    parser.add_argument("--random", action="store_true", help="random init instead of ImageNet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--small-stem", action="store_true")
    args = parser.parse_args(argv)

    model = build(args.arch, not args.random, args.classes, args.small_stem, args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    suffix = "-random" if args.random else ""
    path = os.path.join(args.out_dir, f"{args.arch}{suffix}.safetensors")
    stem = "small" if args.small_stem else "imagenet"
    classes = model.fc.out_features
    metadata = {"arch": args.arch, "stem": stem, "classes": str(classes)}
    print(f"{convert(model, path, metadata)}  {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
