"""Segment one image for one expression, from a run or from an exported
SavedModel; the `tf_rmi predict` and `tf_rmi figures` commands.

Library functions used by the command line and the tests; no flags here.

Both predictors return the same thing for an RGB image: `(mask bool [H, W],
probabilities float32 [H, W])`, the mask by the original's rule (upsampled
logits >= `inference.THRESHOLD`, mapped back with the inverse resize-and-pad)
and the sigmoid map mapped back with the same inverse geometry. `RunPredictor`
runs `tf_rmi.serving.inference`'s numpy pre- and post-processing, `SavedModelPredictor`
its graph twins inside the export; they agree (tests/serving/test_export.py).

The expression keeps the original's semantics (unknown words read as <unk>,
only the first T tokens read); `ExpressionReport` says what was read so that
the command line can warn about it, and `check_expression` refuses what cannot
be read at all (not UTF-8, blank) before anything is loaded or written.
"""
from __future__ import annotations

import dataclasses
import io
import os
import tempfile
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from tf_rmi.serving import inference


def check_expression(expression: Union[str, bytes, None]) -> str:
    """The expression as text, or ValueError naming what is wrong with it.

    Refused: None, bytes that are not UTF-8, text holding undecodable bytes
    (Python's surrogate escapes, which is how a non-UTF-8 command-line argument
    arrives), and empty or whitespace-only text.
    """
    if expression is None:
        raise ValueError("No expression: give a referring expression, "
                         "e.g. --expression=\"the man on the left\"")
    if isinstance(expression, (bytes, bytearray)):
        raw = bytes(expression)
    else:
        raw = expression.encode("utf-8", "surrogateescape") if any(
            "\udc80" <= ch <= "\udcff" for ch in expression) else None
    if raw is not None:
        try:
            expression = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"The expression {raw[:60]!r} is not valid UTF-8 text ({err.reason} at byte "
                f"{err.start}): give the expression as UTF-8 (check the terminal's or the "
                "script's encoding)") from None
    try:
        expression.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates that are not escaped bytes
        raise ValueError(f"The expression {expression[:60]!r} is not valid Unicode text "
                         f"({err.reason} at character {err.start})") from None
    if not expression.strip():
        raise ValueError("The expression is empty: give a referring expression, "
                         "e.g. --expression=\"the man on the left\"")
    return expression


@dataclasses.dataclass
class ExpressionReport:
    """What the model reads of an expression (the original's rules).

    tokens: every token of the original tokenizer; read: the first
    `num_words` of them (what the model sees); dropped: the rest; unknown:
    the read tokens outside the vocabulary (read as <unk>), or None when not
    known by name; num_unknown: their count (None when not known).
    """

    tokens: List[str]
    num_words: int
    unknown: Optional[List[str]] = None
    num_unknown: Optional[int] = None

    @property
    def read(self) -> List[str]:
        return self.tokens[:self.num_words]

    @property
    def dropped(self) -> List[str]:
        return self.tokens[self.num_words:]

    @property
    def read_text(self) -> str:
        """The part of the expression the model reads, as text."""
        from tf_rmi.viz.visualize import prefix_titles

        return prefix_titles(self.read)[-1] if self.read else ""

    def caption(self) -> str:
        """A figure title: the text read, and how many words were not."""
        text = self.read_text.strip()
        if self.dropped:
            text += (f" [+{len(self.dropped)} more words not read: the model reads the "
                     f"first {self.num_words}]")
        return text

    def warnings(self) -> List[str]:
        """One line per surprise: only punctuation, unknown words, words dropped."""
        out = []
        read = self.read
        if read and not any(any(ch.isalnum() for ch in t) for t in read):
            out.append(f"the expression has no words, only punctuation "
                       f"({' '.join(repr(t) for t in read)}), read as <unk>: the mask "
                       "does not come from a description")
        elif self.num_unknown:
            names = (": " + ", ".join(repr(t) for t in self.unknown[:10])
                     + (" ..." if len(self.unknown) > 10 else "")) if self.unknown else ""
            if self.num_unknown == len(read):
                out.append(f"none of the {len(read)} words read is in the model's vocabulary"
                           f"{names}; all are read as <unk>, so the mask does not follow "
                           "the description")
            else:
                out.append(f"{self.num_unknown} of the {len(read)} words read "
                           f"{'is' if self.num_unknown == 1 else 'are'} not in the model's "
                           f"vocabulary and read as <unk>{names}")
        if self.dropped:
            shown = " ".join(self.dropped[:8]) + (" ..." if len(self.dropped) > 8 else "")
            out.append(f"the expression has {len(self.tokens)} tokens but the model reads the "
                       f"first {self.num_words} (as the original release): {len(self.dropped)} "
                       f"dropped ({shown.strip()!r})")
        return out


def expression_report(expression: str, num_words: int, vocab=None) -> ExpressionReport:
    """An `ExpressionReport`; with a `Vocabulary`, the unknown words by name."""
    from tf_rmi.data import text

    tokens = text.tokenize(expression)
    report = ExpressionReport(tokens, num_words)
    if vocab is not None:
        report.unknown = [t for t in report.read if vocab.id_of(t) == vocab.unk_id]
        report.num_unknown = len(report.unknown)
    return report


def output_stem(image_path: str) -> str:
    """The output files' prefix for an image: its name with the extension kept
    (`scene.jpg` -> `scene_jpg`), so `scene.png` and `scene.jpg` do not write
    the same files."""
    name = os.path.basename(image_path.rstrip(os.sep)) or "image"
    stem, ext = os.path.splitext(name)
    return f"{stem}_{ext[1:]}" if ext[1:] else name


def load_image(path: str) -> np.ndarray:
    """uint8 [H, W, 3] RGB from an image file, with a clear error when unreadable.

    Grayscale is tiled, alpha dropped, palette expanded, 16-bit reduced to its
    high byte: the pixels the SavedModel's decoder gives for PNG, JPEG (accurate
    DCT), GIF and BMP files.
    """
    from PIL import Image, UnidentifiedImageError

    from tf_rmi.data.image_ops import MAX_IMAGE_PIXELS, to_rgb

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image {path} not found")
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"Image {path} is {width}x{height} = {width * height} pixels, over the "
                    f"limit of {MAX_IMAGE_PIXELS} (4096x4096): downscale it first")
            im.load()
            if im.mode in ("L", "RGB", "RGBA"):
                return to_rgb(np.asarray(im))
            if im.mode.startswith("I;16"):
                # The high byte, as tf.io.decode_image converts 16-bit PNGs.
                return to_rgb((np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8))
            return to_rgb(np.asarray(im.convert("RGB")))
    except ValueError as err:
        if str(err).startswith(f"Image {path} is "):
            raise
        raise ValueError(f"Cannot read image {path}: {err}. Give a JPEG or PNG file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"Cannot read image {path}: {err}. Give a JPEG or PNG file") from None


class RunPredictor:
    """Predictions from a run directory or checkpoint prefix (numpy pre/post-processing)."""

    def __init__(self, checkpoint: str, vocab_file: Optional[str] = None):
        from tf_rmi.data.text import Vocabulary
        from tf_rmi.training.run_dir import resolve_checkpoint, restore_model, run_vocab_file

        from tf_rmi.config import RunConfig

        run_dir, _ = resolve_checkpoint(checkpoint)
        # The vocabulary first: a missing one fails before the model is built.
        self.vocab = Vocabulary.from_file(vocab_file or
                                          run_vocab_file(run_dir, RunConfig.load(run_dir)))
        self.model, self.run_config, self.prefix = restore_model(checkpoint)
        if len(self.vocab) != self.model.config.vocab_size:
            raise ValueError(f"The vocabulary has {len(self.vocab)} words but the model embeds "
                             f"{self.model.config.vocab_size}: use the run's vocabulary")

    def report(self, expression: str) -> ExpressionReport:
        """What the model reads of `expression` (unknown words by name)."""
        return expression_report(expression, self.model.config.num_words, self.vocab)

    def __call__(self, image: np.ndarray, expression: str) -> Tuple[np.ndarray, np.ndarray]:
        """(mask bool [H, W], probabilities float32 [H, W]) for uint8 [H, W(, C)]."""
        cfg = self.model.config
        # ValueError (EmptySentenceError) for a blank expression, before the model runs.
        inputs = inference.prepare(image, expression, self.vocab, cfg.input_size, cfg.num_words)
        h, w = inputs.original_size
        out = self.model((inputs.image[None], inputs.words[None]))
        up = out["upsampled_logits"][0, ..., 0].numpy()
        return (inference.logits_to_mask(up, h, w),
                inference.unpad_map(out["probabilities"][0, ..., 0].numpy(), h, w))


class SavedModelPredictor:
    """Predictions from an exported SavedModel (everything runs in its graph)."""

    def __init__(self, path: str):
        import tensorflow as tf

        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise FileNotFoundError(f"No SavedModel in {path}: export one with "
                                    "`make export CKPT=<run> EXPORT_DIR=<dir>`")
        self.loaded = tf.saved_model.load(path)
        self.signatures = self.loaded.signatures
        self.serve = self.signatures["serving_default"]
        self.num_words = int(self.serve.structured_outputs["word_ids"].shape[0])
        self.last_outputs: Optional[dict] = None

    def run_bytes(self, image_bytes: bytes, expression: str, signature: str = "serving_default"):
        """Every output of `signature` as numpy, for encoded image bytes.

        Raises ValueError with the graph's message for bad input."""
        import tensorflow as tf

        fn = self.serve if signature == "serving_default" else self.signatures[signature]
        if isinstance(expression, str):
            # Undecodable command-line bytes arrive as surrogate escapes: give the
            # graph the bytes, whose UTF-8 check then names the expression.
            try:
                expression = expression.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                check_expression(expression)  # raises, naming the expression
        try:
            out = fn(image_bytes=tf.constant(image_bytes), expression=tf.constant(expression))
        except tf.errors.InvalidArgumentError as err:
            raise ValueError(_assert_message(err.message)) from None
        return {key: value.numpy() for key, value in out.items()}

    def predict_bytes(self, image_bytes: bytes,
                      expression: str) -> Tuple[np.ndarray, np.ndarray]:
        """(mask bool [H, W], probabilities float32 [H, W]) for encoded image bytes.

        Raises ValueError with the graph's message for bad input."""
        out = self.run_bytes(image_bytes, expression)
        self.last_outputs = out
        return out["mask"].astype(bool), out["probabilities"]

    def report(self, expression: str, outputs: Optional[dict] = None) -> ExpressionReport:
        """What the model reads of `expression`; the unknown-word count comes from
        the export's `num_unknown_words` output (exports from before it have
        none: the count stays None)."""
        report = expression_report(expression, self.num_words, self._asset_vocabulary())
        if outputs is not None and "num_unknown_words" in outputs:
            report.num_unknown = int(outputs["num_unknown_words"])
        return report

    def _asset_vocabulary(self):
        """The export's vocabulary asset as a `Vocabulary` (names the unknown
        words), or None when it cannot be read."""
        from tf_rmi.data.text import Vocabulary

        try:
            return Vocabulary.from_file(self.loaded.vocabulary.asset_path.numpy().decode())
        except (AttributeError, OSError, ValueError):
            return None

    @staticmethod
    def encode_png(image: np.ndarray) -> bytes:
        from PIL import Image

        from tf_rmi.data.image_ops import to_rgb

        buffer = io.BytesIO()
        Image.fromarray(to_rgb(image)).save(buffer, "PNG")
        return buffer.getvalue()

    def __call__(self, image: np.ndarray, expression: str) -> Tuple[np.ndarray, np.ndarray]:
        """As `predict_bytes`, for a uint8 image (sent to the graph as lossless PNG)."""
        return self.predict_bytes(self.encode_png(image), expression)


def _assert_message(message: str) -> str:
    """The readable part of a graph error: the Assert's text, or the kernel's
    message (e.g. "Invalid PNG data, size 60"), without TF's framing lines."""
    for line in message.splitlines():
        line = line.strip()
        if line.startswith("assertion failed:"):
            parts = [p.strip(" []") for p in line[len("assertion failed:"):].split("] [")]
            return " ".join(p for p in parts if p)
    for line in message.splitlines():
        line = line.strip()
        if line and not line.startswith(("Graph execution error", "Detected at node",
                                         "<stack traces", "[[")):
            return line
    return "invalid input"


def load_predictor(checkpoint: Optional[str] = None, saved_model: Optional[str] = None,
                   vocab_file: Optional[str] = None):
    """A RunPredictor (`checkpoint`: run dir or prefix; `vocab_file` defaults to
    the run's) or a SavedModelPredictor (its vocabulary is inside)."""
    if bool(checkpoint) == bool(saved_model):
        raise ValueError("Give exactly one of --checkpoint (a run directory or checkpoint "
                         "prefix) or --saved_model (an exported SavedModel directory)")
    return SavedModelPredictor(saved_model) if saved_model else RunPredictor(checkpoint,
                                                                             vocab_file)


def predict_mask(model_or_saved: Union[RunPredictor, SavedModelPredictor, str],
                 image: np.ndarray, expression: str) -> Tuple[np.ndarray, np.ndarray]:
    """(mask bool [H, W], probabilities float32 [H, W]) for a uint8 image.

    `model_or_saved`: a predictor, or a path: a SavedModel directory (has
    saved_model.pb), else a run directory / checkpoint prefix.
    """
    if isinstance(model_or_saved, str):
        is_saved = os.path.isfile(os.path.join(model_or_saved, "saved_model.pb"))
        model_or_saved = load_predictor(None if is_saved else model_or_saved,
                                        model_or_saved if is_saved else None)
    return model_or_saved(image, expression)


def write_files(files: Sequence[Tuple[str, np.ndarray]]) -> List[str]:
    """Writes (path, uint8 pixels) pairs as PNGs: all under temporary names
    first, then renamed, so an error leaves none of them half written."""
    from PIL import Image

    written = []
    try:
        for path, pixels in files:
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                       suffix=".tmp", dir=directory)
            os.close(fd)
            written.append((tmp, path))
            Image.fromarray(np.asarray(pixels, np.uint8)).save(tmp, "PNG")
            os.chmod(tmp, 0o666 & ~_umask())
        for tmp, path in written:
            os.replace(tmp, path)
    finally:
        for tmp, _ in written:
            if os.path.exists(tmp):
                os.remove(tmp)
    return [path for path, _ in files]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_outputs(image: np.ndarray, mask: np.ndarray, caption: str, output_dir: str,
                  stem: str) -> Tuple[str, str]:
    """`<stem>_mask.png` (0/255, the image's size) and `<stem>_overlay.png` (the
    image at full resolution with the mask tinted and outlined in a colour
    unlike the object, below a band holding `caption`). Both pictures are made
    before either file is written."""
    from tf_rmi.viz import visualize

    mask = np.asarray(mask, bool)
    pictures = [(os.path.join(output_dir, f"{stem}_mask.png"), mask.astype(np.uint8) * 255),
                (os.path.join(output_dir, f"{stem}_overlay.png"),
                 visualize.overlay_picture(image, mask, caption))]
    mask_path, overlay_path = write_files(pictures)
    return mask_path, overlay_path


def predict_to_files(image_path: str, expression: Union[str, bytes], output_dir: str,
                     checkpoint: Optional[str] = None,
                     saved_model: Optional[str] = None,
                     vocab_file: Optional[str] = None,
                     warn=None) -> Tuple[str, str]:
    """The `tf_rmi predict` command: mask and overlay PNGs for one image.

    Everything is checked (arguments, image, expression) before the model is
    loaded or anything is written; errors are ValueError / FileNotFoundError
    with a message naming the input. `warn(message)` (when given) receives one
    line per surprise in the expression (`ExpressionReport.warnings`): the
    prediction still follows the original's rules."""
    from tf_rmi.data import text

    if bool(checkpoint) == bool(saved_model):
        load_predictor(checkpoint, saved_model)  # raises the explanation
    expression = check_expression(expression)
    text.tokenize(expression)
    image = load_image(image_path)
    predictor = load_predictor(checkpoint, saved_model, vocab_file)
    if saved_model:
        with open(image_path, "rb") as f:
            data = f.read()
        if inference.sniff_image_format(data) is None:
            data = predictor.encode_png(image)  # e.g. TIFF/WebP: sent as PNG
        mask, _ = predictor.predict_bytes(data, expression)  # decoded in the graph
        report = predictor.report(expression, predictor.last_outputs)
    else:
        mask, _ = predictor(image, expression)
        report = predictor.report(expression)
    caption = report.caption()
    lines = report.warnings()
    if not np.any(mask):
        lines.append("the predicted mask is empty: the model found no pixel for this expression")
        caption += " [empty mask]"
    if warn is not None:
        for line in lines:
            warn(line)
    return write_outputs(image, mask, caption, output_dir, output_stem(image_path))


def figures_to_files(image_path: str, sentence: str, output_dir: str,
                     checkpoint: Optional[str] = None,
                     ground_truth: Optional[str] = None,
                     vocab_file: Optional[str] = None,
                     saved_model: Optional[str] = None, warn=None) -> List[str]:
    """The `tf_rmi figures` command: Fig. 6 (RMI) and Fig. 1/5 for one image and
    expression, plus a Fig. 7 row (image | ground truth | prediction, IoU)
    when a ground-truth mask image is given, from a run (`checkpoint`) or an
    export (`saved_model`, through its `explain` signature). Everything is
    checked before anything is written; `warn` gets the expression's warnings
    (`ExpressionReport.warnings`). Returns the written paths."""
    from tf_rmi.evaluation import metrics
    from tf_rmi.viz import visualize
    from tf_rmi.data import text

    if bool(checkpoint) == bool(saved_model):
        load_predictor(checkpoint, saved_model)  # raises the explanation
    sentence = check_expression(sentence)
    text.tokenize(sentence)  # EmptySentenceError before the model loads
    image = load_image(image_path)
    gt = None
    if ground_truth:
        gt = load_image(ground_truth)[..., 0] > 0
        if gt.shape != image.shape[:2]:
            raise ValueError(f"Ground truth {ground_truth} is {gt.shape[0]}x{gt.shape[1]} but "
                             f"the image is {image.shape[0]}x{image.shape[1]}")
    predictor = load_predictor(checkpoint, saved_model, vocab_file)
    if saved_model:
        with open(image_path, "rb") as f:
            data = f.read()
        if inference.sniff_image_format(data) is None:
            data = predictor.encode_png(image)
        outputs = visualize.saved_model_word_outputs(predictor, image, data, sentence)
        report = predictor.report(sentence, outputs["outputs"])
        image_domain = True
    else:
        outputs = visualize.word_outputs(predictor.model, predictor.vocab, image, sentence)
        report = predictor.report(sentence)
        image_domain = False
    if warn is not None:
        for line in report.warnings():
            warn(line)
    stem = output_stem(image_path)
    figures = []  # (path, matplotlib figure): drawn first, then all saved
    if "word_response_maps" in outputs:
        figures.append((os.path.join(output_dir, f"{stem}_fig6_response_maps.png"),
                        visualize.word_response_maps_figure(
                            outputs["image"], outputs["tokens"], outputs["word_response_maps"],
                            outputs["final_mask"], image_domain)))
    figures.append((os.path.join(output_dir, f"{stem}_fig5_per_word.png"),
                    visualize.segmentation_per_word_figure(outputs["image"], outputs["tokens"],
                                                           outputs["word_masks"])))
    if gt is not None:
        prediction = outputs["final_mask"]
        inter, union = metrics.intersection_and_union(prediction, gt)
        figures.append((os.path.join(output_dir, f"{stem}_fig7_result.png"),
                        visualize.results_grid_figure([{"image": image, "mask": gt,
                                                        "prediction": prediction,
                                                        "sentence": report.caption(),
                                                        "iou": inter / max(union, 1)}])))
    return visualize.save_figures(figures)
