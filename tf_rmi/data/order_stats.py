"""How close the training stream is to the original's per-epoch random permutation.

The original (`util/data_reader.py`) draws `np.random.permutation` of ALL
training samples every epoch. tf_rmi streams TFRecord shards instead
(`pipeline.shuffled_records`), so this module measures the difference:

- `same_image_ratio`: pairs of samples at most `max_lag` steps apart that
  show the same image, divided by what a uniformly random permutation of the
  same samples gives on average (`expected_same_image_pairs`). About 1 for a
  random permutation; the old file-order records (each ref's sentences
  together) give far more.
- `distinct_images_per_window`: mean number of distinct images among `window`
  consecutive samples, beside the value a uniform permutation gives
  (`expected_distinct_images`).
- `simulate_stream`: one epoch of the REAL `pipeline.shuffled_records` over
  shards that hold image ids instead of records (the same tf.data ops and seeds),
  for measuring at the scale of a real split without writing it.

`python -m tf_rmi.data.order_stats` prints the figures for a UNC-sized split
(see `main`); the README's fidelity notes quote them.
"""
from __future__ import annotations

import argparse
import collections
import math
from typing import Dict, List, Sequence

import numpy as np


def same_image_pairs(image_ids: Sequence, max_lag: int = 1) -> int:
    """Pairs (i, i+k), 1 <= k <= max_lag, whose image ids are equal."""
    ids = np.asarray(image_ids)
    return int(sum(np.sum(ids[k:] == ids[:-k]) for k in range(1, max_lag + 1)
                   if k < ids.size))


def expected_same_image_pairs(image_ids: Sequence, max_lag: int = 1) -> float:
    """E[same_image_pairs] over uniformly random permutations of `image_ids`:
    each of the sum_k (N - k) pairs shows one image with probability
    sum_i n_i (n_i - 1) / (N (N - 1)), n_i the samples of image i."""
    counts = np.asarray(list(collections.Counter(list(image_ids)).values()), np.float64)
    total = int(counts.sum())
    if total < 2:
        return 0.0
    p = float(np.sum(counts * (counts - 1)) / (total * (total - 1.0)))
    return p * sum(total - k for k in range(1, max_lag + 1) if k < total)


def same_image_ratio(image_ids: Sequence, max_lag: int = 1) -> float:
    """`same_image_pairs / expected_same_image_pairs`: about 1 for a random
    permutation (its standard deviation is about 1/sqrt(expected pairs))."""
    expected = expected_same_image_pairs(image_ids, max_lag)
    return same_image_pairs(image_ids, max_lag) / expected if expected > 0 else 0.0


def distinct_images_per_window(image_ids: Sequence, window: int) -> float:
    """Mean number of distinct image ids in non-overlapping windows of `window` samples."""
    ids = list(image_ids)
    windows = [ids[i:i + window] for i in range(0, len(ids) - window + 1, window)]
    return float(np.mean([len(set(w)) for w in windows])) if windows else 0.0


def expected_distinct_images(image_ids: Sequence, window: int) -> float:
    """E[distinct images among `window` samples drawn without replacement],
    sum over images of 1 - C(N - n_i, w) / C(N, w)."""
    counts = list(collections.Counter(list(image_ids)).values())
    total = sum(counts)
    w = min(window, total)

    def log_choose(n, k):
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)

    out = 0.0
    for n in counts:
        if total - n < w:
            out += 1.0
        else:
            out += 1.0 - math.exp(log_choose(total - n, w) - log_choose(total, w))
    return out


def simulate_stream(shards: Sequence[Sequence[int]], seed: int, shuffle_buffer: int,
                    epochs: int = 1) -> List[int]:
    """The integers of `shards` in the order the training pipeline reads records
    written in those shards (`pipeline.shuffled_records`, same seed, same
    buffer), for `epochs` epochs."""
    import tensorflow as tf

    from tf_rmi.data import pipeline

    lengths = [len(s) for s in shards]
    flat = np.concatenate([np.asarray(s, np.int64) for s in shards]) if shards else np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = tf.constant(flat, tf.int64)
    bounds = tf.constant(np.stack([starts[:-1], starts[1:]], axis=1), tf.int64)

    def read(bound):
        return tf.data.Dataset.from_tensor_slices(values[bound[0]:bound[1]])

    tf.random.set_seed(seed)  # train() sets the global seed the same way
    files = tf.data.Dataset.from_tensor_slices(bounds)
    stream = pipeline.shuffled_records(files, read, len(shards), seed, shuffle_buffer)
    options = tf.data.Options()
    options.deterministic = True
    stream = stream.repeat(epochs).with_options(options)
    return [int(v) for v in stream.as_numpy_iterator()]


def synthetic_split(num_images: int, refs_per_image: float, sentences_per_ref: float,
                    seed: int = 0) -> List[int]:
    """Image ids of a REFER-like training split in file order: each image's
    refs together, each ref's sentences together (Poisson sizes, at least 1)."""
    rng = np.random.RandomState(seed)
    out: List[int] = []
    for image in range(num_images):
        for _ in range(1 + rng.poisson(refs_per_image - 1)):
            out.extend([image] * (1 + rng.poisson(sentences_per_ref - 1)))
    return out


def measure(image_ids: Sequence[int], records_per_shard: int, shuffle_buffer: int,
            seed: int = 0, window: int = 1000, order_seed: int = 0,
            max_lag: int = 1) -> Dict[str, Dict[str, float]]:
    """The statistics of one epoch for records written in file order (the old
    preprocessing) and in a seeded random order (`train_order="random"`), and
    of a uniform permutation, all read as `pipeline.shuffled_records` would."""
    from tf_rmi.data import preprocess_lib

    ids = list(image_ids)
    ranges = preprocess_lib.shard_ranges(len(ids), preprocess_lib.default_num_shards(
        len(ids), records_per_shard))
    permuted = [ids[i] for i in preprocess_lib.training_permutation(len(ids), order_seed)]
    out = {}
    for name, written in (("file order", ids), ("random order", permuted)):
        stream = simulate_stream([written[lo:hi] for lo, hi in ranges], seed, shuffle_buffer)
        assert sorted(stream) == sorted(ids)  # one epoch = every record once
        out[name] = {"same_image_ratio": same_image_ratio(stream, max_lag),
                     "distinct_per_window": distinct_images_per_window(stream, window)}
    uniform = list(np.random.RandomState(seed + 1).permutation(ids))
    out["uniform permutation"] = {"same_image_ratio": same_image_ratio(uniform, max_lag),
                                  "distinct_per_window": distinct_images_per_window(uniform,
                                                                                    window)}
    out["expected (uniform)"] = {"same_image_ratio": 1.0,
                                 "distinct_per_window": expected_distinct_images(ids, window)}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # UNC (RefCOCO, splitBy unc) train: 16994 images, 42404 refs, 120624 sentences.
    parser.add_argument("--images", type=int, default=16994)
    parser.add_argument("--refs_per_image", type=float, default=42404 / 16994)
    parser.add_argument("--sentences_per_ref", type=float, default=120624 / 42404)
    parser.add_argument("--records_per_shard", type=int, default=256)
    parser.add_argument("--shuffle_buffer", type=int, default=1000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max_lag", type=int, default=1,
                        help="same-image pairs counted up to this distance")
    args = parser.parse_args(argv)
    ids = synthetic_split(args.images, args.refs_per_image, args.sentences_per_ref, args.seed)
    print(f"{len(ids)} samples of {len(set(ids))} images, {args.records_per_shard} per shard, "
          f"shuffle buffer {args.shuffle_buffer}, window {args.window}, lags 1-{args.max_lag} "
          f"({expected_same_image_pairs(ids, args.max_lag):.1f} same-image pairs expected)")
    print(f"{'':22s} {'same-image ratio':>17s} {'distinct images/window':>23s}")
    for name, values in measure(ids, args.records_per_shard, args.shuffle_buffer, args.seed,
                                args.window, max_lag=args.max_lag).items():
        print(f"{name:22s} {values['same_image_ratio']:17.3f} "
              f"{values['distinct_per_window']:23.1f}")


if __name__ == "__main__":
    main()
