"""Figures in the style of the paper (matplotlib, Agg backend, PNG, atomic writes).

- Fig. 6: for each word, the RMI response map (the transformed multimodal LSTM
  state, upsampled, averaged over channels) as a heatmap over the image, titled
  with the expression up to that word; then the final mask.
- Fig. 1/5: the segmentation after each word.
- Fig. 7: a grid of image | ground truth | prediction (| DenseCRF) with the
  expression and IoU.

Masks are drawn by `overlay`: a light tint and a solid outline in the palette
colour farthest from the object's own colours (a red object gets no red mask),
at the image's resolution.

The model's input and the masks and maps at the image's size come from
`tf_rmi.serving.inference` (the same pre- and post-processing as evaluation and
prediction); this module imports nothing from `predict` or `eval_lib` (the
`tf_rmi figures` command, which loads a predictor, is `predict.figures_to_files`).
"""
from __future__ import annotations

import os
import textwrap
from typing import Dict, List, Sequence

import numpy as np

from tf_rmi.serving import inference


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


def save_figures(figures: Sequence) -> List[str]:
    """Saves (path, figure) pairs: every PNG under a temporary name first, then
    all renamed, so an error leaves none half written. Closes the figures."""
    written = []
    try:
        for path, fig in figures:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            tmp = path + ".tmp.png"
            written.append((tmp, path))
            fig.savefig(tmp, dpi=80, bbox_inches="tight")
        for tmp, path in written:
            os.replace(tmp, path)
    finally:
        for _, fig in figures:
            pyplot().close(fig)
        for tmp, _ in written:
            if os.path.exists(tmp):
                os.remove(tmp)
    return [path for path, _ in figures]


# Mask colours: the one farthest from the pixels under and around the mask is
# used, so that a red object's mask is not drawn in red.
PALETTE = ((255, 0, 0), (0, 255, 0), (0, 80, 255), (255, 255, 0), (255, 0, 255),
           (0, 255, 255))


def contour_width(h: int, w: int) -> int:
    """Contour thickness in pixels: about 0.5 % of the longer side, at least 1,
    so that it stays visible when a large image is shown small."""
    return max(1, int(round(max(h, w) / 200)))


def mask_boundary(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """bool [H, W]: the mask's pixels within `width` (chessboard distance) of
    its outside, the image border counting as outside: an inner contour."""
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    if not mask.any():
        return mask.copy()
    inner = ndimage.minimum_filter(mask, size=2 * width + 1, mode="constant", cval=0)
    return mask & ~inner


def contrast_color(image: np.ndarray, mask: np.ndarray, palette=PALETTE) -> tuple:
    """The palette colour farthest from the pixels inside and along the mask (by
    the 10th percentile of RGB distances, so a colour close to a large part
    of the object loses); the whole image when the mask is empty."""
    from scipy import ndimage

    from tf_rmi.data.image_ops import to_rgb

    rgb = to_rgb(np.asarray(image))
    mask = np.asarray(mask, bool)
    if mask.any():
        width = contour_width(*mask.shape)
        region = ndimage.maximum_filter(mask, size=2 * width + 1, mode="constant", cval=0)
    else:
        region = np.ones(mask.shape, bool)
    index = np.flatnonzero(region)
    if len(index) > 20000:
        index = index[np.linspace(0, len(index) - 1, 20000).astype(np.int64)]
    pixels = rgb.reshape(-1, 3)[index].astype(np.float64)
    scores = [np.percentile(np.linalg.norm(pixels - np.asarray(c, np.float64), axis=1), 10)
              for c in palette]
    return tuple(palette[int(np.argmax(scores))])


def overlay(image: np.ndarray, mask: np.ndarray, color=None, alpha=0.4,
            contour: bool = True) -> np.ndarray:
    """uint8 [H, W, 3] at the image's resolution: the mask tinted and outlined.

    `color` None picks `contrast_color` (a colour unlike the object); the
    outline (`contour_width` pixels, drawn solid on the mask's edge) shows the
    mask's extent even where the tint is hard to see."""
    from tf_rmi.data.image_ops import to_rgb

    out = to_rgb(np.asarray(image)).copy()
    mask = np.asarray(mask, bool)
    if mask.shape != out.shape[:2]:
        raise ValueError(f"Mask of shape {mask.shape} does not fit image {out.shape[:2]}")
    if color is None:
        color = contrast_color(out, mask)
    tint = alpha * np.asarray(color, np.float32)
    for top in range(0, out.shape[0], 512):  # bounded float memory for huge images
        rows, m = out[top:top + 512], mask[top:top + 512]
        rows[m] = np.round((1 - alpha) * rows[m].astype(np.float32) + tint).astype(np.uint8)
    if contour:
        out[mask_boundary(mask, contour_width(*mask.shape))] = np.asarray(color, np.uint8)
    return out


def _wrap(text: str, fits) -> List[str]:
    """Greedy line wrap of `text`'s words; a word wider than a line is cut."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if fits(candidate):
            line = candidate
            continue
        if line:
            lines.append(line)
        while len(word) > 1 and not fits(word):
            cut = len(word) - 1
            while cut > 1 and not fits(word[:cut]):
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines


def captioned(picture: np.ndarray, caption: str) -> np.ndarray:
    """uint8 [band + H, W, 3]: `picture` unchanged below a white band holding
    `caption` (wrapped to the width; font size follows the width)."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = picture.shape[:2]
    size = int(np.clip(w / 40, 10, 48))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin = max(2, size // 3)
    lines = _wrap(caption, lambda text: draw.textlength(text, font=font) <= w - 2 * margin)
    line_h = int(size * 1.25)
    band = Image.new("RGB", (w, 2 * margin + line_h * max(1, len(lines))), "white")
    pen = ImageDraw.Draw(band)
    for i, text_line in enumerate(lines):
        pen.text((margin, margin + i * line_h), text_line, fill="black", font=font)
    return np.concatenate([np.asarray(band), np.asarray(picture, np.uint8)], axis=0)


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


def overlay_picture(image: np.ndarray, mask: np.ndarray, caption: str) -> np.ndarray:
    """What `tf_rmi predict` writes as `<stem>_overlay.png`: `overlay` at the
    image's full resolution below a caption band (`captioned`)."""
    return captioned(overlay(image, mask), caption)


def write_png(pixels: np.ndarray, path: str) -> str:
    """Writes uint8 pixels as PNG under a temporary name, then renames it."""
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    try:
        Image.fromarray(np.asarray(pixels, np.uint8)).save(tmp, "PNG")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def plot_overlay(image: np.ndarray, mask: np.ndarray, title: str, path: str) -> int:
    """The predict command's overlay: `overlay_picture` as a PNG. Returns 1 (panels)."""
    write_png(overlay_picture(image, mask, title), path)
    return 1


def plot_word_response_maps(image: np.ndarray, tokens: Sequence[str],
                            response_maps: np.ndarray, final_mask: np.ndarray,
                            path: str, image_domain: bool = False) -> int:
    """Fig. 6 style: per word, its response map as a heatmap over the image,
    titled with the expression up to that word, one colour bar for all of
    them; then the final mask.

    image: uint8 [H, W, 3]; tokens: the n non-pad tokens; response_maps:
    [n, S, S] padded-domain maps of those steps, in order (mapped back with
    `inference.unpad_map`), or [n, H, W] already at the image's size with
    `image_domain` (the SavedModel's `explain`); final_mask: bool [H, W].
    Returns the panel count (n + 1).
    """
    return save_figure(word_response_maps_figure(image, tokens, response_maps, final_mask,
                                                 image_domain), path)


def word_response_maps_figure(image: np.ndarray, tokens: Sequence[str],
                              response_maps: np.ndarray, final_mask: np.ndarray,
                              image_domain: bool = False):
    """The matplotlib figure of `plot_word_response_maps` (not saved): the heat
    maps share one colour scale, shown by a colour bar beside them."""
    h, w = image.shape[:2]
    n = len(tokens)
    if len(response_maps) != n:
        raise ValueError(f"{len(response_maps)} response maps for {n} words")
    maps = [np.asarray(r, np.float32) if image_domain else inference.unpad_map(r, h, w)
            for r in response_maps]
    lo = min((float(m.min()) for m in maps), default=0.0)
    hi = max((float(m.max()) for m in maps), default=1.0)
    if hi <= lo:
        hi = lo + 1e-6
    fig, axes = _grid(n + 1)
    heat = None
    for ax, title, resp in zip(axes, prefix_titles(tokens), maps):
        ax.imshow(image)
        heat = ax.imshow(resp, cmap="jet", alpha=0.5, vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=8)
    axes[n].imshow(overlay(image, final_mask))
    axes[n].set_title("final mask", fontsize=8)
    if heat is not None:
        bar = fig.colorbar(heat, ax=axes[:n], shrink=0.8, pad=0.02)
        bar.set_label("response (channel mean)", fontsize=8)
        bar.solids.set_alpha(1.0)
    return fig


def plot_segmentation_per_word(image: np.ndarray, tokens: Sequence[str],
                               masks: Sequence[np.ndarray], path: str) -> int:
    """Fig. 1/5 style: the segmentation (bool [H, W]) after each of the n
    words, titled with the expression up to it. Returns the panel count (n)."""
    return save_figure(segmentation_per_word_figure(image, tokens, masks), path)


def segmentation_per_word_figure(image: np.ndarray, tokens: Sequence[str],
                                 masks: Sequence[np.ndarray]):
    """The matplotlib figure of `plot_segmentation_per_word` (not saved)."""
    n = len(tokens)
    if len(masks) != n:
        raise ValueError(f"{len(masks)} masks for {n} words")
    fig, axes = _grid(n)
    for ax, title, mask in zip(axes, prefix_titles(tokens), masks):
        ax.imshow(overlay(image, mask))
        ax.set_title(title, fontsize=8)
    return fig


def plot_results_grid(samples: Sequence[Dict], path: str) -> int:
    """Fig. 7 style: one row per sample: image | ground truth | prediction (| CRF).

    Each sample: image uint8 [H, W, 3], mask and prediction bool [H, W],
    sentence, iou, and optionally crf_prediction / crf_iou (the column appears
    when any sample has one). Returns the panel count.
    """
    return save_figure(results_grid_figure(samples), path)


def results_grid_figure(samples: Sequence[Dict]):
    """The matplotlib figure of `plot_results_grid` (not saved)."""
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
        row[0].set_title("\n".join(textwrap.wrap(s["sentence"], 45, max_lines=2,
                                                  placeholder=" ...")), fontsize=8)
        row[1].imshow(overlay(s["image"], s["mask"]))
        row[1].set_title("ground truth", fontsize=8)
        row[2].imshow(overlay(s["image"], s["prediction"]))
        row[2].set_title(f"prediction, IoU {s['iou']:.2f}", fontsize=8)
        if "crf_prediction" in s:
            row[3].imshow(overlay(s["image"], s["crf_prediction"]))
            row[3].set_title(f"DenseCRF, IoU {s.get('crf_iou', 0.0):.2f}", fontsize=8)
    return fig


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

    from tf_rmi.data import text
    from tf_rmi.models.segmenter import resize_bilinear

    cfg = model.config
    inputs = inference.prepare(image, sentence, vocab, cfg.input_size, cfg.num_words)
    h, w = inputs.original_size
    words = inputs.words
    tokens = text.tokenize(sentence)[:cfg.num_words]
    visual = model.visual_features(inputs.image[None])
    steps = [t for t in range(cfg.num_words) if words[t] != 0]
    result = {"image": inputs.rgb, "tokens": tokens[:len(steps)]}
    if cfg.model == "RMI":
        out = model.segment(visual, words[None], return_word_maps=True)
        word_up = resize_bilinear(out["word_logits"][0], (cfg.input_size, cfg.input_size),
                                  cfg.upsample).numpy()
        result["word_masks"] = [inference.logits_to_mask(word_up[t, ..., 0], h, w)
                                for t in steps]
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
            result["word_masks"].append(inference.logits_to_mask(up[0, ..., 0].numpy(), h, w))
    result["final_mask"] = inference.logits_to_mask(
        out["upsampled_logits"][0, ..., 0].numpy(), h, w)
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


def saved_model_word_outputs(predictor, image: np.ndarray, image_bytes: bytes,
                             sentence: str) -> Dict:
    """`word_outputs` from an exported SavedModel (`tf_rmi.serving.predict.SavedModelPredictor`).

    RMI exports: the `explain` signature's per-word maps and masks (already at
    the image's size: "word_response_maps" is then [n, H, W]). LSTM exports have
    no per-word state; the per-word masks come from `segment_batch` on the
    expression cut after each word (as `word_outputs` does for the baseline).
    """
    from tf_rmi.data import image_ops

    out = predictor.run_bytes(image_bytes, sentence, signature="explain")
    words = out["word_ids"]
    steps = [t for t in range(len(words)) if words[t] != 0]
    result = {"image": image_ops.to_rgb(image), "final_mask": out["mask"].astype(bool),
              "tokens": [out["tokens"][t].decode("utf-8") for t in steps], "outputs": out}
    if "word_response_maps" in out:
        result["word_masks"] = [out["word_masks"][t].astype(bool) for t in steps]
        result["word_response_maps"] = out["word_response_maps"][steps]
        return result
    import tensorflow as tf

    h, w = result["image"].shape[:2]
    size = int(predictor.signatures["segment_batch"].structured_input_signature[1]
               ["images"].shape[1])
    _, model_image = inference.preprocess_image(result["image"], size)
    partial = np.zeros((len(steps), len(words)), np.int32)
    for row, t in enumerate(steps):
        partial[row, :t + 1] = words[:t + 1]
    images = np.repeat(model_image[None], len(steps), axis=0)
    up = predictor.signatures["segment_batch"](
        images=tf.constant(images, tf.float32), words=tf.constant(partial))["upsampled_logits"]
    result["word_masks"] = [inference.logits_to_mask(u[..., 0], h, w) for u in up.numpy()]
    return result
