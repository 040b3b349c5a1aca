"""Train vgg-mini on Fashion-MNIST from Python, with a progress line of our own.

Usage: python train.py OUT_DIR [EPOCHS] [TRAIN_IMAGES]
(default: 1 epoch on 10,000 images, as examples/cpp/train does; Debian's dataset-fashion-mnist.)
"""
import sys

import glassbox as gb


def main(out, epochs=1, images=10000):
    def progress(info):
        # Called after every batch, with the GIL held: any Python works here. Raising an
        # exception stops training; the files on disk stay the last good ones.
        if info["batch"] % 20 == 0 or info["batch"] == info["batches"]:
            print(f"epoch {info['epoch']}/{info['epochs']} batch {info['batch']}/{info['batches']}: "
                  f"loss {info['loss']:.4f}, accuracy {100 * info['accuracy']:.1f}%", flush=True)

    # The options are the program's (`glassbox train --help`), with underscores.
    result = gb.train(model="vgg-mini", data="fashion-mnist", epochs=epochs, train_limit=images, test_limit=2000,
                      batch_size=128, lr=0.05, seed=0, out_dir=out, progress=progress)
    for h in result["history"]:
        print(f"epoch {h['epoch']}: test accuracy {100 * h['test_acc']:.2f}% ({h['seconds']:.1f} s)")
    print("checkpoint:", result["model"])  # gb.load(...) it, or `glassbox explain --checkpoint` it


if __name__ == "__main__":
    args = sys.argv[1:]
    if not 1 <= len(args) <= 3:
        sys.exit(__doc__)
    main(args[0], *(int(a) for a in args[1:]))
