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
    Check("spec.image-extension-invalid", "error", "image_extension is not one TAO can use",
          "train builds image paths as <frame>.<image_extension> and refuses a decoder other than png/jpg/jpeg "
          "(case-insensitive): \".png\" with its dot looks for <frame>..png and stops at the first batch; "
          "dataset_convert lists files ending in image_extension and opens <frame><image_extension>, so one "
          "without its dot (\"png\") finds no file",
          "train spec: image_extension \"png\", \"jpg\" or \"jpeg\" without a dot; dataset_convert spec: "
          "\".png\", \".jpg\" or \".jpeg\" with the dot"),
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
    Check("layout.no-images", "error", "no image with the spec's extension in the image folder",
          "dataset_convert lists only files ending in the spec's extension: it writes empty TFRecords and train "
          "stops with zero steps per epoch",
          "copy the images into the image folder, named <frame>.<the spec's image_extension>"),
    Check("layout.symlink", "error", "a symbolic link in the dataset (not followed)",
          "TAO follows it inside the container, where its target is usually missing or another file; taoflow "
          "never reads through a link (it could expose any file of this machine), so the data is unchecked",
          "replace the link by the file it points to (cp -L), inside the dataset folder"),
    Check("layout.special-file", "error", "a FIFO, socket or device in the dataset (not opened)",
          "dataset_convert or the training reader blocks on it or fails; taoflow never opens one",
          "remove it; datasets hold regular files only"),
    Check("layout.stray-file", "warning", "a non-image file in the image folder",
          "ignored by dataset_convert (it lists files ending with the image extension)",
          "remove it, or keep it if you know it is harmless"),
    Check("pair.image-without-label", "error", "an image has no label file",
          "dataset_convert opens <label_dir>/<stem>.txt for every image it lists and crashes with FileNotFoundError",
          "add <stem>.txt (an empty file marks a negative image) or remove the image"),
    Check("pair.label-without-image", "warning", "a label file has no image",
          "ignored silently: its boxes never reach training",
          "add the image or remove the label file"),
    Check("pair.duplicate-frame", "warning", "two images share a frame id with different extensions",
          "only the one with the spec's extension (case-sensitive) is listed and converted; the other is ignored, "
          "and the label may describe it rather than the one TAO trains on",
          "keep one image per stem"),
    # --- images -----------------------------------------------------------------------------
    Check("image.unknown-format", "error", "the file is neither JPEG nor PNG",
          "dataset_convert reads its size with PIL (a BMP or GIF passes), then the training decoder fails on it "
          "mid-epoch: TensorFlow decodes PNG and JPEG there, not BMP",
          "convert the image to PNG or JPEG, or remove it"),
    Check("image.format-mismatch", "warning", "the bytes are one format, the extension says another",
          "trains: TensorFlow's decoder looks at the bytes, so a PNG named .jpg (or the reverse) decodes fine",
          "re-encode the file or rename it to its real format (and use one format for the dataset)"),
    Check("image.extension-mismatch", "warning", "the extension differs from the spec's image_extension",
          "ignored: dataset_convert lists only files ending in the spec's extension (case-sensitive), so this "
          "image and its label never reach training",
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
    Check("image.channels-unsupported", "warning", "a JPEG with other than 1 or 3 components (CMYK)",
          "trains: TensorFlow decodes a CMYK JPEG to 3 channels, but its colours may not be the ones you see",
          "convert the image to RGB (or grayscale)"),
    Check("image.channels-mismatch", "warning", "grayscale image for an RGB spec or the reverse",
          "trains: the decoder converts to output_image_channel; the network sees replicated or collapsed colour",
          "convert the images offline, or set output_image_channel to match the data"),
    Check("image.alpha", "warning", "the PNG has an alpha channel",
          "trains: the alpha is dropped when decoding to RGB; transparent areas show whatever colour lies under them",
          "flatten the image onto a background and save it as RGB"),
    Check("image.16-bit", "warning", "16-bit PNG",
          "trains: decoded to 8 bits per channel, so precision and possibly contrast differ from what you checked",
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
    Check("label.score-column", "error", "a label line has a 16th (score) field",
          "dataset_convert asserts 'Ground truth kitti labels should have only 15 fields' and stops; a score "
          "column is what KITTI result files carry",
          "drop the trailing score column before dataset_convert"),
    Check("label.class-missing", "error", "14 fields starting with a number: the class name is missing",
          "dataset_convert asserts 15 fields and stops (a number with all 15 fields is a legal class name, e.g. '1')",
          "put the class name first on every line"),
    Check("label.not-a-number", "error", "a numeric field does not parse",
          "dataset_convert stops converting the field with float() (a comma decimal, a word)",
          "write fields 2-15 as numbers (0 for unused 3-D fields)"),
    Check("label.not-finite", "error", "a box coordinate or the occlusion is NaN or infinite",
          "dataset_convert crashes taking int() of it (the conversion stops; shards may be half written)",
          "write finite numbers"),
    Check("label.not-finite-unused", "warning", "a field DetectNet_v2 does not use is NaN or infinite",
          "stored as is (alpha, truncation and the 3-D fields are not used to train); usually a broken export",
          "write finite numbers (0 for unused 3-D fields)"),
    Check("label.class-not-ascii", "error", "the class name has non-ASCII characters",
          "dataset_convert crashes on it after shards were written (half a conversion)",
          "use ASCII class names, and map them in target_class_mapping"),
    Check("label.line-too-long", "error", "a label line is longer than any KITTI line can be",
          "dataset_convert reads the whole file into memory and splits the line into fields: it fails the 15-field "
          "assert or runs out of memory; taoflow reads such lines in bounded pieces and skips them",
          "check the file: a KITTI line is 15 fields of about 100 characters"),
    Check("label.truncation-range", "warning", "truncation outside [0, 1]",
          "stored but unused by DetectNet_v2; usually a sign the columns are shifted",
          "write the truncation as a fraction in [0, 1] and check the column order"),
    Check("label.occlusion-range", "warning", "occlusion not in {0, 1, 2, 3}",
          "stored as int() of it (0.5 becomes 0), unused by DetectNet_v2; usually a sign the columns are shifted",
          "write occlusion as 0, 1, 2 or 3 and check the column order"),
    Check("label.box-degenerate", "warning", "x1 >= x2 or y1 >= y2 after int() (inverted or sub-pixel box)",
          "dataset_convert drops the object and only lists it in <output>_warning.json",
          "write boxes as left top right bottom in pixels with x1 < x2 and y1 < y2"),
    Check("label.box-outside-image", "warning", "the box lies entirely outside the image",
          "kept by dataset_convert (no bounds check); at training the crop filter removes it: it trains nothing",
          "check the coordinates (pixels, 0-based) and the image they belong to"),
    Check("label.box-exceeds-image", "warning", "the box extends beyond the image",
          "kept by dataset_convert; clipped at training; often a sign of labels made for another resolution",
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
