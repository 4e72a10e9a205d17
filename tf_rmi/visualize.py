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
from typing import Dict, List, Optional, Sequence

import numpy as np

THRESHOLD = 1e-9  # the original's test-time threshold on the upsampled logits


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def panel_count(fig) -> int:
    """Number of panels that show an image (axes left empty by the grid are not)."""
    return sum(1 for ax in fig.axes if ax.images)


def save_figure(fig, path: str) -> int:
    """Writes the figure as PNG under a temporary name, then renames it; closes it.
    Returns its `panel_count`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    panels = panel_count(fig)
    tmp = path + ".tmp.png"
    try:
        fig.savefig(tmp, dpi=80, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        pyplot().close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return panels


def unpad_map(padded: np.ndarray, h: int, w: int) -> np.ndarray:
    """float32 [h, w]: a continuous [S, S] padded-domain map mapped back to the
    image with the original's inverse geometry (the whole map resized
    bilinearly as 2017 skimage by max(h/S, w/S), centre crop), as the masks
    and the SavedModel's `probabilities` / `word_response_maps`."""
    from tf_rmi.data.image_ops import skimage_resize

    padded = np.asarray(padded, np.float64)
    if padded.ndim != 2 or padded.shape[0] != padded.shape[1]:
        raise ValueError(f"A padded-domain map must be [S, S], got shape {padded.shape}")
    size = padded.shape[0]
    resized = int(np.round(size * max(h / size, w / size)))
    crop = ((resized - h) // 2, (resized - w) // 2, h, w)
    return skimage_resize(padded, (resized, resized), crop=crop).astype(np.float32)


def overlay(image: np.ndarray, mask: np.ndarray, color=(255, 40, 40), alpha=0.5) -> np.ndarray:
    """uint8 [H, W, 3]: the image with the mask tinted."""
    from tf_rmi.data.image_ops import to_rgb

    out = to_rgb(np.asarray(image)).astype(np.float64)
    mask = np.asarray(mask, bool)
    if mask.shape != out.shape[:2]:
        raise ValueError(f"Mask of shape {mask.shape} does not fit image {out.shape[:2]}")
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, np.float64)
    return out.astype(np.uint8)


def prefix_titles(tokens: Sequence[str]) -> List[str]:
    """The expression up to each token: words joined by spaces, separator
    pieces (", ") appended as they are."""
    titles, text = [], ""
    for token in tokens:
        joiner = " " if token[:1].isalnum() and text and not text[-1].isspace() else ""
        text += joiner + token
        titles.append(text)
    return titles


def _grid(n: int, max_cols: int = 5):
    plt = pyplot()
    cols = max(1, min(n, max_cols))
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)


def plot_overlay(image: np.ndarray, mask: np.ndarray, title: str, path: str) -> int:
    """One panel: the image with the mask tinted, titled (the predict command)."""
    plt = pyplot()
    h, w = np.asarray(image).shape[:2]
    fig, ax = plt.subplots(figsize=(6, max(1.0, 6 * h / max(w, 1))))
    ax.imshow(overlay(image, mask))
    ax.set_title(title, fontsize=10, wrap=True)
    ax.axis("off")
    return save_figure(fig, path)


def plot_word_response_maps(image: np.ndarray, tokens: Sequence[str],
                            response_maps: np.ndarray, final_mask: np.ndarray,
                            path: str) -> int:
    """Fig. 6 style: per word, its response map as a heatmap over the image,
    titled with the expression up to that word; then the final mask.

    image: uint8 [H, W, 3]; tokens: the n non-pad tokens; response_maps:
    [n, S, S] padded-domain maps of those steps, in order (mapped back with
    `unpad_map`); final_mask: bool [H, W]. Returns the panel count (n + 1).
    """
    h, w = image.shape[:2]
    n = len(tokens)
    if len(response_maps) != n:
        raise ValueError(f"{len(response_maps)} response maps for {n} words")
    fig, axes = _grid(n + 1)
    for ax, title, resp in zip(axes, prefix_titles(tokens), response_maps):
        ax.imshow(image)
        ax.imshow(unpad_map(resp, h, w), cmap="jet", alpha=0.5)
        ax.set_title(title, fontsize=8)
    axes[n].imshow(overlay(image, final_mask))
    axes[n].set_title("final mask", fontsize=8)
    return save_figure(fig, path)


def plot_segmentation_per_word(image: np.ndarray, tokens: Sequence[str],
                               masks: Sequence[np.ndarray], path: str) -> int:
    """Fig. 1/5 style: the segmentation (bool [H, W]) after each of the n
    words, titled with the expression up to it. Returns the panel count (n)."""
    n = len(tokens)
    if len(masks) != n:
        raise ValueError(f"{len(masks)} masks for {n} words")
    fig, axes = _grid(n)
    for ax, title, mask in zip(axes, prefix_titles(tokens), masks):
        ax.imshow(overlay(image, mask))
        ax.set_title(title, fontsize=8)
    return save_figure(fig, path)


def plot_results_grid(samples: Sequence[Dict], path: str) -> int:
    """Fig. 7 style: one row per sample: image | ground truth | prediction (| CRF).

    Each sample: image uint8 [H, W, 3], mask and prediction bool [H, W],
    sentence, iou, and optionally crf_prediction / crf_iou (the column appears
    when any sample has one). Returns the panel count.
    """
    if not samples:
        raise ValueError("No samples to plot")
    plt = pyplot()
    with_crf = any("crf_prediction" in s for s in samples)
    cols = 4 if with_crf else 3
    fig, axes = plt.subplots(len(samples), cols, figsize=(3 * cols, 3 * len(samples)),
                             squeeze=False)
    for row, s in zip(axes, samples):
        for ax in row:
            ax.axis("off")
        row[0].imshow(s["image"])
        row[0].set_title(s["sentence"][:60], fontsize=8)
        row[1].imshow(overlay(s["image"], s["mask"], color=(40, 200, 40)))
        row[1].set_title("ground truth", fontsize=8)
        row[2].imshow(overlay(s["image"], s["prediction"]))
        row[2].set_title(f"prediction, IoU {s['iou']:.2f}", fontsize=8)
        if "crf_prediction" in s:
            row[3].imshow(overlay(s["image"], s["crf_prediction"]))
            row[3].set_title(f"DenseCRF, IoU {s.get('crf_iou', 0.0):.2f}", fontsize=8)
    return save_figure(fig, path)


def write_eval_figures(samples: Sequence[Dict], out_dir: str) -> str:
    """The Fig. 7 grid of evaluation samples, as `<out_dir>/fig7_results.png`."""
    path = os.path.join(out_dir, "fig7_results.png")
    plot_results_grid(samples, path)
    return path


def word_outputs(model, vocab, image: np.ndarray, sentence: str) -> Dict:
    """What the figures show, for one image and expression.

    Returns {"image": uint8 [H, W, 3], "tokens": the n non-pad tokens,
    "final_mask": bool [H, W], "word_masks": n x bool [H, W] (the segmentation
    had the expression ended at each word), and for RMI "word_response_maps":
    float32 [n, S, S] (padded domain)}.
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
    steps = [t for t in range(cfg.num_words) if words[t] != 0]
    result = {"image": rgb, "tokens": tokens[:len(steps)]}
    if cfg.model == "RMI":
        out = model.segment(visual, words[None], return_word_maps=True)
        word_up = resize_bilinear(out["word_logits"][0], (cfg.input_size, cfg.input_size),
                                  cfg.upsample).numpy()
        result["word_masks"] = [image_ops.inverse_resize_and_pad(
            word_up[t, ..., 0] >= THRESHOLD, h, w) for t in steps]
        result["word_response_maps"] = out["word_response_maps"][0].numpy()[steps]
    else:
        out = model.segment(visual, words[None])
        result["word_masks"] = []
        for t in steps:
            # <pad> steps are skipped wherever they sit, so zeroing the ids
            # after t is the expression ended at word t.
            partial = words.copy()
            partial[t + 1:] = 0
            up = model.segment(visual, tf.constant(partial[None]))["upsampled_logits"]
            result["word_masks"].append(
                image_ops.inverse_resize_and_pad(up[0, ..., 0].numpy() >= THRESHOLD, h, w))
    result["final_mask"] = image_ops.inverse_resize_and_pad(
        out["upsampled_logits"][0, ..., 0].numpy() >= THRESHOLD, h, w)
    return result


def word_response_figure(model, vocab, image: np.ndarray, sentence: str, path: str) -> int:
    """Fig. 6 for one image and expression (RMI only). Returns the panel count."""
    if model.config.model != "RMI":
        raise ValueError(f"Word response maps (Fig. 6) exist only for RMI models: this is "
                         f"the {model.config.model} baseline, which has no multimodal LSTM "
                         "state per word; use the per-word segmentation figure instead")
    outputs = word_outputs(model, vocab, image, sentence)
    return plot_word_response_maps(outputs["image"], outputs["tokens"],
                                   outputs["word_response_maps"], outputs["final_mask"], path)


def expression_figures(model, vocab, image: np.ndarray, sentence: str, out_dir: str,
                       stem: str = "expression") -> Dict[str, str]:
    """Fig. 6 (RMI only) and Fig. 1/5 style figures for one image and expression:
    `<stem>_fig6_response_maps.png`, `<stem>_fig5_per_word.png`.

    Returns {"fig6": path, "fig5": path} (fig6 only for RMI models).
    """
    outputs = word_outputs(model, vocab, image, sentence)
    paths = {}
    if "word_response_maps" in outputs:
        paths["fig6"] = os.path.join(out_dir, f"{stem}_fig6_response_maps.png")
        plot_word_response_maps(outputs["image"], outputs["tokens"],
                                outputs["word_response_maps"], outputs["final_mask"],
                                paths["fig6"])
    paths["fig5"] = os.path.join(out_dir, f"{stem}_fig5_per_word.png")
    plot_segmentation_per_word(outputs["image"], outputs["tokens"], outputs["word_masks"],
                               paths["fig5"])
    return paths


def figures_to_files(image_path: str, sentence: str, output_dir: str, checkpoint: str,
                     ground_truth: Optional[str] = None,
                     vocab_file: Optional[str] = None) -> List[str]:
    """The `tf_rmi figures` command: Fig. 6 (RMI) and Fig. 1/5 for one image and
    expression, plus a Fig. 7 row (image | ground truth | prediction, IoU)
    when a ground-truth mask image is given. Returns the written paths."""
    from tf_rmi import metrics
    from tf_rmi.data import text
    from tf_rmi.predict import RunPredictor, load_image

    if not checkpoint:
        raise ValueError("--checkpoint is required (a run directory or checkpoint prefix); "
                         "figures need the model's per-word states, which a SavedModel's "
                         "serving signature does not expose")
    text.tokenize(sentence)  # EmptySentenceError before the model loads
    image = load_image(image_path)
    gt = None
    if ground_truth:
        gt = load_image(ground_truth)[..., 0] > 0
        if gt.shape != image.shape[:2]:
            raise ValueError(f"Ground truth {ground_truth} is {gt.shape[0]}x{gt.shape[1]} but "
                             f"the image is {image.shape[0]}x{image.shape[1]}")
    predictor = RunPredictor(checkpoint, vocab_file)
    stem = os.path.splitext(os.path.basename(image_path))[0]
    paths = expression_figures(predictor.model, predictor.vocab, image, sentence,
                               output_dir, stem)
    if gt is not None:
        prediction, _ = predictor(image, sentence)
        inter, union = metrics.intersection_and_union(prediction, gt)
        paths["fig7"] = os.path.join(output_dir, f"{stem}_fig7_result.png")
        plot_results_grid([{"image": image, "mask": gt, "prediction": prediction,
                            "sentence": sentence, "iou": inter / max(union, 1)}],
                          paths["fig7"])
    return list(paths.values())
