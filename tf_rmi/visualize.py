"""Figures in the style of the paper (matplotlib, Agg backend, PNG, atomic writes).

- Fig. 6: for each word, the RMI response map (the transformed multimodal LSTM
  state, upsampled, averaged over channels) as a heatmap over the image, titled
  with the expression up to that word; then the final mask.
- Fig. 1/5: the segmentation after each word.
- Fig. 7: a grid of image | ground truth | prediction (| DenseCRF) with the
  expression and IoU.
"""
from __future__ import annotations

import os
from typing import Dict, List, Sequence

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str) -> str:
    """Writes the figure under a temporary name, then renames it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=80, bbox_inches="tight")
    os.replace(tmp, path)
    _pyplot().close(fig)
    return path


def unpad_map(padded: np.ndarray, h: int, w: int) -> np.ndarray:
    """float [h, w]: a continuous [S, S] map cropped to the image window and
    resized back to the original size (bilinear), for heatmaps."""
    from scipy import ndimage

    from tf_rmi.data.image_ops import resize_pad_geometry

    size = padded.shape[0]
    new_h, new_w, top, left = resize_pad_geometry(h, w, size)
    window = np.asarray(padded, np.float64)[top:top + new_h, left:left + new_w]
    return ndimage.zoom(window, (h / new_h, w / new_w), order=1)[:h, :w]


def overlay(image: np.ndarray, mask: np.ndarray, color=(255, 40, 40), alpha=0.5) -> np.ndarray:
    """uint8 [H, W, 3]: the image with the mask tinted."""
    out = np.asarray(image, np.float64).copy()
    mask = np.asarray(mask, bool)
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, np.float64)
    return out.astype(np.uint8)


def _prefix_titles(tokens: Sequence[str]) -> List[str]:
    titles, text = [], ""
    for token in tokens:
        text = text + token if not token[:1].isalnum() else (text + " " + token).strip()
        titles.append(text)
    return titles


def plot_word_response_maps(image: np.ndarray, tokens: Sequence[str],
                            response_maps: np.ndarray, final_mask: np.ndarray,
                            path: str) -> int:
    """Fig. 6 style. response_maps: [n_words, S, S] padded-domain maps of the
    non-pad steps, in order; final_mask: bool [H, W]. Returns the panel count
    (n_words + 1)."""
    plt = _pyplot()
    h, w = image.shape[:2]
    n = len(tokens)
    if len(response_maps) != n:
        raise ValueError(f"{len(response_maps)} response maps for {n} words")
    cols = min(n + 1, 5)
    rows = -(-(n + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (title, resp) in enumerate(zip(_prefix_titles(tokens), response_maps)):
        ax = axes.flat[k]
        ax.imshow(image)
        ax.imshow(unpad_map(resp, h, w), cmap="jet", alpha=0.5)
        ax.set_title(title, fontsize=8)
    axes.flat[n].imshow(overlay(image, final_mask))
    axes.flat[n].set_title("final mask", fontsize=8)
    _save(fig, path)
    return n + 1


def plot_segmentation_per_word(image: np.ndarray, tokens: Sequence[str],
                               masks: Sequence[np.ndarray], path: str) -> int:
    """Fig. 1/5 style: the segmentation (bool [H, W]) after each word. Returns n_words."""
    plt = _pyplot()
    n = len(tokens)
    cols = min(n, 5)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (title, mask) in enumerate(zip(_prefix_titles(tokens), masks)):
        axes.flat[k].imshow(overlay(image, mask))
        axes.flat[k].set_title(title, fontsize=8)
    _save(fig, path)
    return n


def plot_results_grid(samples: Sequence[Dict], path: str) -> int:
    """Fig. 7 style: one row per sample: image | ground truth | prediction (| CRF).

    Each sample: image uint8 [H,W,3], mask, prediction (bool [H,W]), sentence,
    iou, and optionally crf_prediction / crf_iou. Returns the panel count.
    """
    plt = _pyplot()
    with_crf = any("crf_prediction" in s for s in samples)
    cols = 4 if with_crf else 3
    fig, axes = plt.subplots(len(samples), cols, figsize=(3 * cols, 3 * len(samples)),
                             squeeze=False)
    panels = 0
    for row, s in zip(axes, samples):
        for ax in row:
            ax.axis("off")
        row[0].imshow(s["image"])
        row[0].set_title(s["sentence"][:60], fontsize=8)
        row[1].imshow(overlay(s["image"], s["mask"], color=(40, 200, 40)))
        row[1].set_title("ground truth", fontsize=8)
        row[2].imshow(overlay(s["image"], s["prediction"]))
        row[2].set_title(f"prediction, IoU {s['iou']:.2f}", fontsize=8)
        panels += 3
        if with_crf and "crf_prediction" in s:
            row[3].imshow(overlay(s["image"], s["crf_prediction"]))
            row[3].set_title(f"DenseCRF, IoU {s.get('crf_iou', 0.0):.2f}", fontsize=8)
            panels += 1
    _save(fig, path)
    return panels


def write_eval_figures(samples: Sequence[Dict], out_dir: str) -> str:
    """The Fig. 7 grid of evaluation samples, as `<out_dir>/fig7_results.png`."""
    path = os.path.join(out_dir, "fig7_results.png")
    plot_results_grid(samples, path)
    return path


def expression_figures(model, vocab, image: np.ndarray, sentence: str, out_dir: str,
                       stem: str = "expression") -> Dict[str, str]:
    """Fig. 6 (RMI only) and Fig. 1/5 style figures for one image and expression.

    Returns {"fig6": path, "fig5": path} (fig6 only for RMI models).
    """
    import tensorflow as tf

    from tf_rmi.data import image_ops, text
    from tf_rmi.models.segmenter import resize_bilinear

    cfg = model.config
    rgb = image_ops.to_rgb(image)
    h, w = rgb.shape[:2]
    tokens = text.tokenize(sentence)[:cfg.num_words]
    words = vocab.encode(sentence, cfg.num_words)
    padded = image_ops.resize_and_pad(rgb, cfg.input_size)
    visual = model.visual_features(image_ops.caffe_preprocess(padded)[None])
    paths = {}
    steps = [t for t in range(cfg.num_words) if words[t] != 0]
    if cfg.model == "RMI":
        out = model.segment(visual, words[None], return_word_maps=True)
        size = (cfg.input_size, cfg.input_size)
        word_up = resize_bilinear(tf.reshape(out["word_logits"][0], (cfg.num_words,) +
                                             tuple(out["word_logits"].shape[2:])), size).numpy()
        masks = [image_ops.inverse_resize_and_pad(word_up[t, ..., 0] >= 1e-9, h, w)
                 for t in steps]
        final = image_ops.inverse_resize_and_pad(
            out["upsampled_logits"][0, ..., 0].numpy() >= 1e-9, h, w)
        maps = out["word_response_maps"][0].numpy()[steps]
        paths["fig6"] = os.path.join(out_dir, f"{stem}_fig6_response_maps.png")
        plot_word_response_maps(rgb, tokens[:len(steps)], maps, final, paths["fig6"])
    else:
        masks = []
        for t in steps:
            # Zeroed ids are skipped steps, so this is the expression ended at word t.
            partial = words.copy()
            partial[t + 1:] = 0
            up = model.segment(visual, partial[None])["upsampled_logits"][0, ..., 0].numpy()
            masks.append(image_ops.inverse_resize_and_pad(up >= 1e-9, h, w))
    paths["fig5"] = os.path.join(out_dir, f"{stem}_fig5_per_word.png")
    plot_segmentation_per_word(rgb, tokens[:len(steps)], masks, paths["fig5"])
    return paths
