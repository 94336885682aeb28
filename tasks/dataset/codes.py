"""The dataset validator's check codes: one table of code, severity, what TAO does, how to fix.

Codes are stable: reports, docs/preflight.md and users' suppress-lists refer to them, so a
code is never renamed or reused; a retired check keeps its row.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.errors import Problem, Severity


@dataclass(frozen=True)
class Check:
    code: str
    severity: Severity
    title: str
    #: What TAO does with the input if nothing stops it (why the check exists).
    tao_behaviour: str
    fix: str


_CHECKS = [
    # --- spec rules that depend on nothing but the spec ------------------------------------
    Check("spec.size-not-multiple-of-16", "error", "output width/height not a multiple of 16",
          "TAO's spec validator exits with 'Spec file validation failed' after the container started",
          "set augmentation_config.preprocessing.output_image_width/height to multiples of 16 (e.g. 1248x384)"),
    Check("spec.size-below-minimum", "warning", "output size below the documented 480x272 minimum",
          "TAO 5 trains, but NVIDIA documents W>=480 and H>=272 for DetectNet_v2; smaller grids detect poorly",
          "use an output size of at least 480x272 (multiples of 16)"),
    Check("spec.channels-invalid", "error", "output_image_channel is not 1 or 3",
          "the dataloader asserts on the channel count at the first batch",
          "set output_image_channel to 3 (RGB) or 1 (grayscale)"),
    Check("spec.image-extension-invalid", "error", "image_extension is not png, jpg or jpeg",
          "TAO builds every image path as <root>/<frame id>.<image_extension>; the decoder picks JPEG only for "
          "exactly 'jpg'/'jpeg', everything else is decoded as PNG",
          "set dataset_config.image_extension to \"png\", \"jpg\" or \"jpeg\" (lower case, no dot)"),
    # --- layout and pairing -----------------------------------------------------------------
    Check("layout.data-dir-missing", "error", "the data directory does not exist",
          "dataset_convert and train fail with a path error inside the container",
          "pass the local KITTI root (the folder that holds the image and label folders)"),
    Check("layout.image-dir-missing", "error", "no image folder under the data root",
          "dataset_convert lists <root>/<image_dir_name> and crashes",
          "put images in <root>/image_2 (or images), or pass --images SUB / set kitti_config.image_dir_name"),
    Check("layout.label-dir-missing", "error", "no label folder under the data root",
          "dataset_convert opens <root>/<label_dir_name>/<stem>.txt and crashes on the first image",
          "put labels in <root>/label_2 (or labels), or pass --labels SUB / set kitti_config.label_dir_name"),
    Check("layout.no-images", "error", "the image folder holds no images",
          "dataset_convert writes empty TFRecords; train stops with zero steps per epoch",
          "copy the images into the image folder"),
    Check("layout.stray-file", "warning", "a non-image file in the image folder",
          "ignored by dataset_convert (it lists files ending with the image extension)",
          "remove it, or keep it if you know it is harmless"),
    Check("pair.image-without-label", "error", "an image has no label file",
          "dataset_convert opens <label_dir>/<stem>.txt for every image and crashes with FileNotFoundError",
          "add <stem>.txt (an empty file marks a negative image) or remove the image"),
    Check("pair.label-without-image", "warning", "a label file has no image",
          "ignored silently: its boxes never reach training",
          "add the image or remove the label file"),
    Check("pair.duplicate-frame", "error", "two images share a frame id with different extensions",
          "only the one with the spec's extension is converted; the label may describe the other one",
          "keep one image per stem"),
    # --- images -----------------------------------------------------------------------------
    Check("image.unknown-format", "error", "the file is neither JPEG nor PNG",
          "the TensorFlow decoder fails mid-epoch with 'Invalid PNG data' / 'Invalid JPEG data'",
          "convert the image to PNG or JPEG, or remove it"),
    Check("image.format-mismatch", "error", "the bytes are one format, the extension says another",
          "TAO picks the decoder by extension only, so e.g. a PNG named .jpg fails to decode mid-training",
          "re-encode the file or rename it to its real format (and use one format for the dataset)"),
    Check("image.extension-mismatch", "error", "the extension differs from the spec's image_extension",
          "dataset_convert skips files not ending with the extension (case-sensitive) and train looks for "
          "<stem>.<image_extension>: the image is silently dropped or not found",
          "rename the files to the spec's extension (lower case) or change image_extension"),
    Check("image.unreadable", "error", "the image header cannot be read",
          "PIL raises in dataset_convert, or the decoder fails mid-epoch",
          "re-export the image; the file is empty, cut short or not an image"),
    Check("image.truncated", "error", "the image ends before its end marker",
          "the decoder fails mid-epoch ('Invalid JPEG data', 'PNG: truncated') after hours of GPU time",
          "re-copy or re-export the image"),
    Check("image.corrupt", "error", "the image does not decode (--deep)",
          "the decoder fails mid-epoch",
          "re-export the image"),
    Check("image.channels-unsupported", "error", "the image has a channel layout TAO cannot decode",
          "the JPEG decoder handles 1 or 3 components only (CMYK and others fail)",
          "convert the image to RGB (or grayscale)"),
    Check("image.channels-mismatch", "warning", "grayscale image for an RGB spec or the reverse",
          "the decoder converts to output_image_channel; the network trains on replicated or collapsed colour",
          "convert the images offline, or set output_image_channel to match the data"),
    Check("image.alpha", "warning", "the PNG has an alpha channel",
          "the alpha is dropped when decoding to RGB; transparent areas show whatever colour lies under them",
          "flatten the image onto a background and save it as RGB"),
    Check("image.16-bit", "warning", "16-bit PNG",
          "decoded to 8 bits per channel: precision and possibly contrast differ from what you checked",
          "convert to 8-bit PNG offline"),
    Check("image.size-mismatch", "warning", "image size differs from the spec's output size (auto-resize off)",
          "with enable_auto_resize false TAO pads every image to the largest in the dataset and crops the "
          "top-left output_image_width x output_image_height: no resizing, larger images lose content and boxes",
          "resize images and labels offline to the output size, or set enable_auto_resize: true"),
    # --- KITTI label lines ------------------------------------------------------------------
    Check("label.unreadable", "error", "the label file is not UTF-8 text",
          "dataset_convert crashes decoding the file",
          "save the label file as UTF-8 text"),
    Check("label.field-count", "error", "a label line does not have 15 fields",
          "dataset_convert asserts 'Ground truth kitti labels should have only 15 fields' and stops",
          "write 'class truncation occlusion alpha x1 y1 x2 y2 h w l x y z rotation_y'; class names without spaces"),
    Check("label.score-column", "warning", "a label line has a 16th (score) field",
          "dataset_convert asserts on anything but 15 fields; a score column is what KITTI result files carry",
          "drop the trailing score column before dataset_convert"),
    Check("label.class-missing", "error", "the first field is a number, not a class name",
          "the number becomes a class name, no mapping matches it and the object is dropped",
          "put the class name first on every line"),
    Check("label.not-a-number", "error", "a numeric field does not parse",
          "dataset_convert fails converting the field to float",
          "write fields 2-15 as numbers (0 for unused 3-D fields)"),
    Check("label.not-finite", "error", "a numeric field is NaN or infinite",
          "the box reaches the loss as NaN: training diverges or the object silently vanishes",
          "write finite numbers"),
    Check("label.truncation-range", "warning", "truncation outside [0, 1]",
          "stored but unused by DetectNet_v2; usually a sign the columns are shifted",
          "write the truncation as a fraction in [0, 1] and check the column order"),
    Check("label.occlusion-range", "warning", "occlusion not in {0, 1, 2, 3}",
          "stored but unused by DetectNet_v2; usually a sign the columns are shifted",
          "write occlusion as 0, 1, 2 or 3 and check the column order"),
    Check("label.box-degenerate", "error", "x1 >= x2 or y1 >= y2 (after TAO's truncation to int)",
          "dataset_convert skips the object and only records it in <output>_warning.json",
          "write boxes as left top right bottom in pixels with x1 < x2 and y1 < y2"),
    Check("label.box-outside-image", "error", "the box lies entirely outside the image",
          "the object is cropped away: it trains nothing, or teaches the wrong place",
          "check the coordinates (pixels, 0-based) and the image they belong to"),
    Check("label.box-exceeds-image", "warning", "the box extends beyond the image",
          "the box is clipped to the image; often a sign of labels made for another resolution",
          "clip the box to the image or fix the resolution the labels were made for"),
    Check("label.box-too-small", "warning", "box smaller than min_bbox_width/height",
          "filtered out by the dataloader: the object never reaches the loss",
          "drop tiny boxes or lower min_bbox_width/height"),
    # --- classes ----------------------------------------------------------------------------
    Check("class.unmapped", "warning", "label classes absent from target_class_mapping",
          "mapped to an 'unknown' sentinel and silently dropped from training (error with --strict)",
          "add the class to target_class_mapping, or accept that it is ignored (e.g. dontcare)"),
    Check("class.uppercase-mapping-key", "error", "a target_class_mapping key has upper-case letters",
          "dataset_convert lower-cases every class, so the key matches nothing: all its boxes drop, 0 mAP",
          "write target_class_mapping keys in lower case"),
    Check("class.target-set-mismatch", "error", "mapping targets differ from a per-class config's classes",
          "classes missing from cost_function/bbox_rasterizer/postprocessing/evaluation maps fail or train "
          "nothing for that class",
          "make target_class_mapping values, cost_function_config.target_classes and the bbox_rasterizer, "
          "postprocessing and evaluation maps name the same classes"),
    Check("class.no-instances", "warning", "a mapped class has no instance in the labels",
          "the class trains on nothing and its AP is 0",
          "add labelled examples or remove the class from the spec"),
    # --- training feasibility ---------------------------------------------------------------
    Check("train.no-validation-data", "error", "neither validation_fold nor validation_data_source",
          "train asserts 'Validation period is not 0, but no validation data found'",
          "set dataset_config.validation_fold (with dataset_convert -f / partitions) or validation_data_source"),
    Check("train.validation-smaller-than-batch", "error", "fewer validation images than batch_size_per_gpu",
          "validation runs N_val // batch_size_per_gpu = 0 batches: no mAP is ever computed",
          "add validation images or lower batch_size_per_gpu"),
    Check("train.logging-frequency", "error", "scalar_logging_frequency above the steps per epoch",
          "train raises 'Number of logging points ... must be <= ... steps per epoch'",
          "lower training_config.visualizer.scalar_logging_frequency (unset means 10) or add data"),
    Check("train.infrequent-logging", "error", "infrequent_logging_frequency above num_epochs",
          "train raises before the first step when the visualizer is enabled",
          "set infrequent_logging_frequency <= num_epochs"),
    Check("train.image-dir-not-root", "error", "image_directory_path is the image folder, not the KITTI root",
          "train opens <image_directory_path>/<image_dir_name>/<stem>.<ext>: every image is 'not found'",
          "point image_directory_path at the folder that holds the image folder"),
    Check("train.tfrecords-no-match", "error", "the tfrecords_path glob matches no file",
          "train asserts 'No files match pattern ...'",
          "run dataset_convert first, or fix the glob"),
    Check("train.tfrecords-not-shard", "error", "the tfrecords_path glob matches a file that is not a TFRecord",
          "the TFRecord reader fails on it (e.g. the converter's *_warning.json next to the shards)",
          "narrow the glob to the shards, e.g. <prefix>-fold-*"),
    Check("train.validation-fold-missing", "error", "no shard for validation_fold",
          "every file becomes training data and validation is empty, or the split is not the one meant",
          "set validation_fold to a fold dataset_convert wrote (fold-NNN-of-)"),
]

CHECKS: dict[str, Check] = {c.code: c for c in _CHECKS}


def problem(code: str, message: str, *, file: str | None = None, line: int | None = None,
            severity: Severity | None = None) -> Problem:
    """A finding for a known code, carrying the table's severity and fix."""
    check = CHECKS[code]
    return Problem(code, message, severity or check.severity, file=file, line=line, hint=check.fix)
