# Part of the stand-in TAO (a TEST DOUBLE, nothing else): the work of NVIDIA's KITTIConverter
# (nvidia_tao_tf1/cv/detectnet_v2/dataio/kitti_converter_lib.py, dataset_converter_lib.py and
# common/dataio/converter_lib.py, tao-source-facts.md §6), run by scripts/dataset_convert.
#
# What it reproduces:
# - partitions: "random" takes the image folder's files ending in image_extension, sorted, and puts
#   the first int(val_split / 100 * N) frames in partition 0 (validation), the rest in partition 1
#   (num_partitions must be 2, 0 <= val_split < 100); "sequence" reads kitti_sequence_to_frames_file
#   (JSON {sequence: [frames]}), deals the sequences sorted by (-frames, name) round-robin into
#   num_partitions and reverses the list (one partition, in file order, when num_partitions <= 1);
# - shards: each non-empty partition in max(num_shards, 1) shards of len // shards frames, the last
#   taking the rest (so a small partition has empty shard files); an empty partition writes no file
#   and the next one takes its fold number (NVIDIA enumerates only the non-empty ones); file names
#   <-o>-fold-PPP-of-NNN-shard-SSSSS-of-MMMMM, without the fold part when num_partitions is 0 and
#   without the shard part when num_shards is 0;
# - records: TFRecord framing (uint64 length, masked CRC32C of it, data, masked CRC32C of the data),
#   each a serialized tf.train.Example with the features NVIDIA writes: frame/id ("<image_dir_name>/
#   <frame>"), frame/height, frame/width (read from the PNG/JPEG/BMP/GIF header, as PIL does),
#   target/object_class (lower-cased), target/truncation, target/occlusion (int), observation_angle,
#   coordinates_x1..y2, world_bbox_h/w/l/x/y/z/rot_y, and point_cloud/* when point_clouds_dir is set;
# - labels: universal newlines, blank lines skipped, every value a Python float (else ValueError),
#   exactly 15 fields (else AssertionError), box corners int()-ed; a box with x1 >= x2 or y1 >= y2 is
#   dropped and listed in <-o>_warning.json; a missing image or label file is a FileNotFoundError;
# - the counts NVIDIA logs: images per partition (kpi num_images), objects per target class.
# Not reproduced: the order of frames inside a partition (NVIDIA shuffles with Python's random, seed
# 42; the stand-in keeps them sorted, so which frame lands in which shard differs, the counts do not),
# sample_modifier_config and calibrations_dir (the shell script refuses them).
#
# Output: the shard files and the warning file; on `events` one line per step for the shell
# (status/log/kpi/categorical/print/fail, tab-separated, messages already JSON-escaped); exit 1
# after a "fail" event. POSIX awk (mawk, busybox awk); run with LC_ALL=C.

BEGIN {
  for (k = 1; k < 256; k++) ORD[sprintf("%c", k)] = k
  for (a = 0; a < 16; a++)
    for (b = 0; b < 16; b++) {
      r = 0
      for (bit = 1; bit < 16; bit *= 2) if (int(a / bit) % 2 != int(b / bit) % 2) r += bit
      XN[a, b] = r
    }
  crc_table()
  P149 = 1
  for (k = 0; k < 149; k++) P149 *= 2
  PARTS += 0; SHARDS += 0                      # an unset uint32 is 0
  sub(/[fF]$/, "", VAL_SPLIT)                  # text_format's float suffix
  VAL_SPLIT = pyfloat(VAL_SPLIT == "" ? "0" : VAL_SPLIT) ? NUMBER : 0
}

{ LISTING[++NLIST] = $0 }

END {
  convert()
  exit FAILED
}

# ---- events for the shell ------------------------------------------------------------------------
function jstr(s,   out, k, c) {
  out = ""
  for (k = 1; k <= length(s); k++) {
    c = substr(s, k, 1)
    if (c == "\\") out = out "\\\\"
    else if (c == "\"") out = out "\\\""
    else if (c == "\n") out = out "\\n"
    else if (c == "\t") out = out "\\t"
    else if (ORD[c] < 32) out = out sprintf("\\u%04x", ORD[c])
    else out = out c
  }
  return out
}
function event(kind, a, b) { print kind "\t" a "\t" b > EVENTS }
function status(level, message) { event("status", level, jstr(message)) }
function info(logger, message) { event("log", logger, jstr(message)) }
function fail(type, message) {
  event("fail", type, jstr(message))
  FAILED = 1
  exit 1
}
function pyrepr(s) { return "'" s "'" }
function enoent(path) { fail("FileNotFoundError", "[Errno 2] No such file or directory: " pyrepr(path)) }

# ---- paths ---------------------------------------------------------------------------------------
function join(a, b) {
  if (substr(b, 1, 1) == "/" || a == "") return b
  return (substr(a, length(a)) == "/" ? a : a "/") b
}
function shq(s) { gsub(/'/, "'\\''", s); return "'" s "'" }
function readable(path,   line, rc) {
  rc = (getline line < path)
  close(path)
  return rc >= 0
}

# ---- bytes: a byte string is " b1 b2 ..." in decimal -------------------------------------------
function nbytes(s,   t) { t = s; return gsub(/ /, " ", t) }
function text_bytes(s,   out, k) {
  out = ""
  for (k = 1; k <= length(s); k++) out = out " " ORD[substr(s, k, 1)]
  return out
}
function varint(v,   out) {         # v >= 0, below 2^53
  out = ""
  while (v >= 128) { out = out " " (v % 128 + 128); v = int(v / 128) }
  return out " " v
}
function varint64(v,   lo, hi, out) {   # an int64, negative ones as 10 bytes of two's complement
  if (v >= 0) return varint(v)
  v = -v; hi = int(v / 4294967296); lo = v - hi * 4294967296
  lo = 4294967296 - lo; hi = 4294967295 - hi
  if (lo == 4294967296) { lo = 0; hi++ }
  out = ""
  while (hi > 0 || lo >= 128) {
    out = out " " (lo % 128 + 128)
    lo = int(lo / 128) + (hi % 128) * 33554432; hi = int(hi / 128)
  }
  return out " " lo
}
function le(v, count,   out, k) {
  out = ""
  for (k = 0; k < count; k++) { out = out " " (v % 256); v = int(v / 256) }
  return out
}
function field(tag, payload) { return " " tag varint(nbytes(payload)) payload }

# ---- floats as Python reads them and as protobuf stores them (IEEE float32, nearest even) --------
function pyfloat(tok,   t) {        # sets NUMBER; "" when Python's float() would refuse tok
  t = tolower(tok)
  if (t ~ /^[+-]?nan$/) { NUMBER = "nan"; return 1 }
  if (t ~ /^[+]?inf(inity)?$/) { NUMBER = "inf"; return 1 }
  if (t ~ /^-inf(inity)?$/) { NUMBER = "-inf"; return 1 }
  if (t !~ /^[+-]?([0-9]+(_[0-9]+)*(\.([0-9]+(_[0-9]+)*)?)?|\.[0-9]+(_[0-9]+)*)(e[+-]?[0-9]+(_[0-9]+)*)?$/) return 0
  gsub(/_/, "", t)
  NUMBER = t + 0
  if (NUMBER == 0 && substr(t, 1, 1) == "-") NUMBER = "-0"      # float32 keeps the sign of a zero
  else if ((NUMBER "") ~ /inf/) NUMBER = NUMBER < 0 ? "-inf" : "inf"   # beyond a double: Python says inf
  return 1
}
function rne(y,   f, r) {
  f = int(y); r = y - f
  if (r > 0.5 || (r == 0.5 && f % 2 == 1)) f++
  return f
}
function f32bits(x,   s, a, e, mant) {
  if (x == "nan") return 2143289344
  if (x == "inf") return 2139095040
  if (x == "-inf") return 4286578688
  if (x == "-0") return 2147483648
  s = 0
  if (x < 0) { s = 2147483648; x = -x }
  if (x == 0) return 0
  a = x; e = 0
  while (a >= 2) { a /= 2; e++ }
  while (a < 1) { a *= 2; e-- }
  if (e < -126) {
    mant = rne(x * P149)
    return s + mant                 # 2^23 rounds up into the smallest normal: the same bits
  }
  mant = rne((a - 1) * 8388608)
  if (mant >= 8388608) { mant = 0; e++ }
  if (e > 127) return s + 2139095040
  return s + (e + 127) * 8388608 + mant
}
function f32value(x,   bits, e, mant, v) {   # the float32 a proto float field holds, as a number
  bits = f32bits(x)
  e = int(bits / 8388608) % 256; mant = bits % 8388608
  v = e == 0 ? mant / P149 : 1 + mant / 8388608
  for (; e > 127; e--) v *= 2                  # no `^`: busybox awk may be built without math
  for (; e < 127 && e > 0; e++) v /= 2
  return bits >= 2147483648 ? -v : v
}

# ---- CRC32C, byte-wise with nibble xor tables (POSIX awk has no bit operators) -------------------
function xor8(a, b) { return XN[int(a / 16), int(b / 16)] * 16 + XN[a % 16, b % 16] }
function crc_table(   i, c0, c1, c2, c3, j, odd) {
  for (i = 0; i < 256; i++) {
    c0 = i; c1 = c2 = c3 = 0
    for (j = 0; j < 8; j++) {
      odd = c0 % 2
      c0 = int(c0 / 2) + (c1 % 2) * 128; c1 = int(c1 / 2) + (c2 % 2) * 128
      c2 = int(c2 / 2) + (c3 % 2) * 128; c3 = int(c3 / 2)
      if (odd) { c0 = xor8(c0, 120); c1 = xor8(c1, 59); c2 = xor8(c2, 246); c3 = xor8(c3, 130) }   # 0x82F63B78
    }
    T0[i] = c0; T1[i] = c1; T2[i] = c2; T3[i] = c3
  }
}
function masked_crc(s,   d, n, k, i, c0, c1, c2, c3, crc) {
  n = split(s, d, " ")
  c0 = c1 = c2 = c3 = 255
  for (k = 1; k <= n; k++) {
    i = xor8(c0, d[k])
    c0 = xor8(T0[i], c1); c1 = xor8(T1[i], c2); c2 = xor8(T2[i], c3); c3 = T3[i]
  }
  crc = (255 - c0) + (255 - c1) * 256 + (255 - c2) * 65536 + (255 - c3) * 16777216
  return (int(crc / 32768) + (crc % 32768) * 131072 + 2726488792) % 4294967296
}
function write_record(file, data,   head, all, d, n, k) {
  head = le(nbytes(data), 8)
  all = head le(masked_crc(head), 4) data le(masked_crc(data), 4)
  n = split(all, d, " ")
  for (k = 1; k <= n; k++) printf "%c", d[k] + 0 > file
}

# ---- tf.train.Example ----------------------------------------------------------------------------
function bytes_list(values, count,   out, k) {      # Feature{bytes_list}: values[1..count]
  out = ""
  for (k = 1; k <= count; k++) out = out field(10, text_bytes(values[k]))
  return field(10, out)
}
function float_list(values, count,   out, k) {      # Feature{float_list}, packed
  out = ""
  for (k = 1; k <= count; k++) out = out le(f32bits(values[k]), 4)
  return field(18, count ? field(10, out) : "")
}
function int64_list(values, count,   out, k) {      # Feature{int64_list}, packed
  out = ""
  for (k = 1; k <= count; k++) out = out varint64(values[k])
  return field(26, count ? field(10, out) : "")
}
function entry(key, feature) { return field(10, field(10, text_bytes(key)) field(18, feature)) }

# ---- images: the size PIL reads from the header ------------------------------------------------
function read_bytes(path, offset, count,   cmd, line, parts, m, k, n) {
  cmd = "od -An -v -tu1 -j " offset " -N " count " " shq(path) " 2>/dev/null"
  n = 0
  while ((cmd | getline line) > 0) {
    m = split(line, parts, " ")
    for (k = 1; k <= m; k++) BYTE[n++] = parts[k] + 0
  }
  close(cmd)
  return n
}
function image_size(path,   n, offset, marker, steps) {
  if (!readable(path)) enoent(path)
  n = read_bytes(path, 0, 26)
  if (n >= 24 && BYTE[0] == 137 && BYTE[1] == 80 && BYTE[2] == 78 && BYTE[3] == 71) {
    WIDTH = ((BYTE[16] * 256 + BYTE[17]) * 256 + BYTE[18]) * 256 + BYTE[19]
    HEIGHT = ((BYTE[20] * 256 + BYTE[21]) * 256 + BYTE[22]) * 256 + BYTE[23]
    return
  }
  if (n >= 10 && BYTE[0] == 71 && BYTE[1] == 73 && BYTE[2] == 70) {                   # GIF
    WIDTH = BYTE[6] + BYTE[7] * 256; HEIGHT = BYTE[8] + BYTE[9] * 256
    return
  }
  if (n >= 26 && BYTE[0] == 66 && BYTE[1] == 77) {                                     # BMP
    if (BYTE[14] == 12) { WIDTH = BYTE[18] + BYTE[19] * 256; HEIGHT = BYTE[20] + BYTE[21] * 256; return }
    WIDTH = BYTE[18] + BYTE[19] * 256 + BYTE[20] * 65536 + BYTE[21] * 16777216
    HEIGHT = BYTE[22] + BYTE[23] * 256 + BYTE[24] * 65536 + BYTE[25] * 16777216
    if (HEIGHT >= 2147483648) HEIGHT = 4294967296 - HEIGHT                             # top-down
    return
  }
  if (n >= 2 && BYTE[0] == 255 && BYTE[1] == 216) {                                    # JPEG
    offset = 2
    for (steps = 0; steps < 10000; steps++) {
      if (read_bytes(path, offset, 9) < 2 || BYTE[0] != 255) break
      marker = BYTE[1]
      if (marker == 255) { offset++; continue }
      if (marker == 1 || (marker >= 208 && marker <= 215)) { offset += 2; continue }
      if (marker >= 192 && marker <= 207 && marker != 196 && marker != 200 && marker != 204) {
        HEIGHT = BYTE[5] * 256 + BYTE[6]; WIDTH = BYTE[7] * 256 + BYTE[8]
        return
      }
      offset += 2 + BYTE[2] * 256 + BYTE[3]
    }
  }
  fail("PIL.UnidentifiedImageError", "cannot identify image file " pyrepr(path))
}

# ---- one frame -----------------------------------------------------------------------------------
function read_labels(path,   line, text, lines, n, k, t) {
  if (!readable(path)) enoent(path)
  text = ""
  while ((getline line < path) > 0) text = text line "\n"
  close(path)
  gsub(/\r\n/, "\n", text); gsub(/\r/, "\n", text)           # open(label_file): universal newlines
  n = split(text, lines, "\n"); NLABELS = 0
  for (k = 1; k <= n; k++) {
    t = lines[k]
    sub(/^[ \t\f\v]+/, "", t); sub(/[ \t\f\v]+$/, "", t)
    if (t != "") LABEL[++NLABELS] = t
  }
}

function frame_example(frame, partition,   path, k, j, f, nf, hasnan, key, seen, x1, y1, x2, y2, nobj,
                       cls, trunc, occ, alpha, cx1, cy1, cx2, cy2, wh, ww, wl, wx, wy, wz, wr, label_file,
                       features, ids, one) {
  path = join(join(ROOT, IMAGES), frame EXT)
  image_size(path)
  label_file = join(join(ROOT, LABELS), frame ".txt")
  read_labels(label_file)
  # NVIDIA converts every value of every line to float before it checks any line.
  for (k = 1; k <= NLABELS; k++) {
    nf = split(LABEL[k], f, /[ \t\f\v]+/)
    key = f[1]; hasnan = 0
    for (j = 2; j <= nf; j++) {
      if (!pyfloat(f[j])) fail("ValueError", "could not convert string to float: " pyrepr(f[j]))
      VAL[k, j] = NUMBER
      key = key SUBSEP NUMBER
      if (NUMBER == "nan") hasnan = 1
    }
    NF_OF[k] = nf
    # labels.index(label): the first equal line (a NaN makes a line equal to no other)
    LINE_INDEX[k] = (key in seen && !hasnan) ? seen[key] : k - 1
    if (!(key in seen)) seen[key] = k - 1
  }
  nobj = 0
  for (k = 1; k <= NLABELS; k++) {
    if (NF_OF[k] != 15) fail("AssertionError", "Ground truth kitti labels should have only 15 fields.")
    for (j = 5; j <= 8; j++) {
      if (VAL[k, j] == "nan") fail("ValueError", "cannot convert float NaN to integer")
      if (VAL[k, j] ~ /inf/) fail("OverflowError", "cannot convert float infinity to integer")
    }
    x1 = int(VAL[k, 5]); y1 = int(VAL[k, 6]); x2 = int(VAL[k, 7]); y2 = int(VAL[k, 8])
    if (!(x1 < x2 && y1 < y2)) {
      WARNINGS[label_file "_" LINE_INDEX[k]] = x1 ", " y1 ", " x2 ", " y2
      if (!((label_file "_" LINE_INDEX[k]) in WARNED)) { WARNED[label_file "_" LINE_INDEX[k]] = 1; WARN_ORDER[++NWARN] = label_file "_" LINE_INDEX[k] }
      continue
    }
    split(LABEL[k], one, /[ \t\f\v]+/)
    if (!(one[1] in CLASS_MAP)) { CLASS_MAP[one[1]] = tolower(one[1]); CLASS_ORDER[++NCLASSMAP] = one[1] }
    nobj++
    cls[nobj] = tolower(one[1])
    if (VAL[k, 3] == "nan") fail("ValueError", "cannot convert float NaN to integer")
    if (VAL[k, 3] ~ /inf/) fail("OverflowError", "cannot convert float infinity to integer")
    trunc[nobj] = VAL[k, 2]; occ[nobj] = int(VAL[k, 3]); alpha[nobj] = VAL[k, 4]
    cx1[nobj] = VAL[k, 5]; cy1[nobj] = VAL[k, 6]; cx2[nobj] = VAL[k, 7]; cy2[nobj] = VAL[k, 8]
    wh[nobj] = VAL[k, 9]; ww[nobj] = VAL[k, 10]; wl[nobj] = VAL[k, 11]
    wx[nobj] = VAL[k, 12]; wy[nobj] = VAL[k, 13]; wz[nobj] = VAL[k, 14]; wr[nobj] = VAL[k, 15]
    OBJECTS[cls[nobj]]++; PART_OBJECTS[partition, cls[nobj]]++
    if (!(cls[nobj] in CLASS_SEEN)) { CLASS_SEEN[cls[nobj]] = 1; CLASSES[++NCLASSES] = cls[nobj] }
  }
  ids[1] = join(IMAGES, frame)
  features = entry("frame/id", bytes_list(ids, 1))
  ids[1] = HEIGHT; features = features entry("frame/height", int64_list(ids, 1))
  ids[1] = WIDTH; features = features entry("frame/width", int64_list(ids, 1))
  features = features entry("target/object_class", bytes_list(cls, nobj))
  features = features entry("target/truncation", float_list(trunc, nobj))
  features = features entry("target/occlusion", int64_list(occ, nobj))
  features = features entry("target/observation_angle", float_list(alpha, nobj))
  features = features entry("target/coordinates_x1", float_list(cx1, nobj))
  features = features entry("target/coordinates_y1", float_list(cy1, nobj))
  features = features entry("target/coordinates_x2", float_list(cx2, nobj))
  features = features entry("target/coordinates_y2", float_list(cy2, nobj))
  features = features entry("target/world_bbox_h", float_list(wh, nobj))
  features = features entry("target/world_bbox_w", float_list(ww, nobj))
  features = features entry("target/world_bbox_l", float_list(wl, nobj))
  features = features entry("target/world_bbox_x", float_list(wx, nobj))
  features = features entry("target/world_bbox_y", float_list(wy, nobj))
  features = features entry("target/world_bbox_z", float_list(wz, nobj))
  features = features entry("target/world_bbox_rot_y", float_list(wr, nobj))
  if (POINT_CLOUDS != "") {
    ids[1] = join(POINT_CLOUDS, frame); features = features entry("point_cloud/id", bytes_list(ids, 1))
    ids[1] = 4; features = features entry("point_cloud/num_input_channels", int64_list(ids, 1))
  }
  for (k = 1; k <= NLABELS; k++) for (j = 2; j <= NF_OF[k]; j++) delete VAL[k, j]
  return field(10, features)
}

# ---- partitions ----------------------------------------------------------------------------------
function splitext_root(name,   base, dot, k) {
  base = name; sub(/^\.+/, "", base)
  dot = 0
  for (k = length(base); k > 0; k--) if (substr(base, k, 1) == ".") { dot = k; break }
  if (!dot) return name
  return substr(name, 1, length(name) - length(base) + dot - 1)
}
function partition_random(   k, total, nval, frames, name, v) {
  if (PARTS != 2) fail("AssertionError", "Invalid number of partitions (" PARTS ") for random split mode.")
  v = VAL_SPLIT ~ /nan|inf/ ? -1 : f32value(VAL_SPLIT) / 100.
  if (!(0 <= v && v < 1)) fail("AssertionError", "Validation split must satisfy the criteria, 0 <= val_split < 100. ")
  if (NO_IMAGE_DIR != "") enoent(NO_IMAGE_DIR)
  total = 0
  for (k = 1; k <= NLIST; k++) {
    name = LISTING[k]
    if (length(name) >= length(EXT) && substr(name, length(name) - length(EXT) + 1) == EXT) frames[++total] = splitext_root(name)
  }
  nval = int(v * total)
  NPART = 2; PLEN[1] = nval; PLEN[2] = total - nval
  for (k = 1; k <= total; k++) if (k <= nval) PFRAME[1, k] = frames[k]; else PFRAME[2, k - nval] = frames[k]
  info("kitti_converter_lib", "Num images in\nTrain: " PLEN[2] "\tVal: " PLEN[1])
  event("kpi", "{\"num_images\": " total "}")
  status("RUNNING", "Num images in\nTrain: " PLEN[2] "\tVal: " PLEN[1])
  if (v == 0) {
    info("kitti_converter_lib", "Skipped validation data...")
    status("RUNNING", "Skipped validation data.")
  } else {
    note = "Validation data in partition 0. Hence, while choosing the validationset during training choose validation_fold 0."
    info("kitti_converter_lib", note)
    status("RUNNING", note)
  }
}

function json_sequences(path,   text, line, n, i, c, tok, state, name, k, rest) {
  if (!readable(path)) enoent(path)
  text = ""
  while ((getline line < path) > 0) text = text line "\n"
  close(path)
  n = length(text); i = 1; state = "open"; NSEQ = 0
  while (i <= n) {
    c = substr(text, i, 1)
    if (c ~ /[ \t\r\n]/) { i++; continue }
    if (c == "\"") {
      rest = substr(text, i)
      if (!match(rest, /^"([^"\\]|\\.)*"/)) fail("json.decoder.JSONDecodeError", "Unterminated string")
      tok = substr(rest, 2, RLENGTH - 2); i += RLENGTH
      gsub(/\\\//, "/", tok); gsub(/\\"/, "\"", tok); gsub(/\\\\/, "\\", tok)
      if (state == "key") {
        name = tok
        if (!(name in SEQ_AT)) { SEQ_AT[name] = ++NSEQ; SEQ_NAME[NSEQ] = name }
        SEQ_LEN[SEQ_AT[name]] = 0
        state = "colon"
      } else if (state == "frame") { k = SEQ_AT[name]; SEQ_FRAME[k, ++SEQ_LEN[k]] = tok; state = "more" }
      else fail("json.decoder.JSONDecodeError", "unexpected string")
      continue
    }
    i++
    if (c == "{" && state == "open") state = "key"
    else if (c == ":" && state == "colon") state = "list"
    else if (c == "[" && state == "list") state = "frame"
    else if (c == "," && state == "more") state = "frame"
    else if (c == "]" && (state == "more" || state == "frame")) state = "next"
    else if (c == "," && state == "next") state = "key"
    else if (c == "}" && (state == "next" || state == "key")) state = "done"
    else fail("json.decoder.JSONDecodeError", "the stand-in reads only {\"sequence\": [\"frame\", ...]}")
  }
  if (state != "done") fail("json.decoder.JSONDecodeError", "Expecting value")
}
function before(a, b) {     # sorted(..., key=lambda kv: (-len(kv[1]), kv[0]))
  if (SEQ_LEN[a] != SEQ_LEN[b]) return SEQ_LEN[a] > SEQ_LEN[b]
  return SEQ_NAME[a] < SEQ_NAME[b]
}
function partition_sequence(   order, k, j, t, p, total, count) {
  if (SEQFILE == "")
    fail("ValueError", "Kitti sequence to frames file is required for sequence wise paritioning. Please set this " \
         "as the relative path to the file from `root_directory_path`")
  json_sequences(join(ROOT, SEQFILE))
  total = 0
  if (PARTS > 1) {
    for (k = 1; k <= NSEQ; k++) order[k] = k
    for (k = 2; k <= NSEQ; k++) {
      t = order[k]
      for (j = k - 1; j >= 1 && before(t, order[j]); j--) order[j + 1] = order[j]
      order[j + 1] = t
    }
    NPART = PARTS
    for (p = 1; p <= NPART; p++) PLEN[p] = 0
    for (k = 1; k <= NSEQ; k++) {
      p = NPART - (k - 1) % NPART               # round-robin, then the partition list reversed
      for (j = 1; j <= SEQ_LEN[order[k]]; j++) PFRAME[p, ++PLEN[p]] = SEQ_FRAME[order[k], j]
      total += SEQ_LEN[order[k]]
    }
  } else {
    NPART = 1; PLEN[1] = 0
    for (k = 1; k <= NSEQ; k++)
      for (j = 1; j <= SEQ_LEN[k]; j++) PFRAME[1, ++PLEN[1]] = SEQ_FRAME[k, j]
    total = PLEN[1]
  }
  event("kpi", "{\"num_images\": " total "}")
  status("RUNNING", "Total number of images: " total)
}

# ---- the conversion ------------------------------------------------------------------------------
function object_counts(partition,   out, k, c, sep) {
  out = "\nWrote the following numbers of objects:"
  for (k = 1; k <= NCLASSES; k++) {
    c = CLASSES[k]
    if (partition == "" && OBJECTS[c]) out = out "\nb'" c "': " OBJECTS[c]
    if (partition != "" && PART_OBJECTS[partition, c]) out = out "\nb'" c "': " PART_OBJECTS[partition, c]
  }
  return out "\n"
}
function write_warnings(   k, v, out) {
  if (!NWARN) return
  info("dataset_converter_lib", "Writing the log_warning.json")
  out = "{"
  for (k = 1; k <= NWARN; k++) {
    split(WARNINGS[WARN_ORDER[k]], v, ", ")
    out = out (k > 1 ? "," : "") "\n  \"" jstr(WARN_ORDER[k]) "\": [\n    " v[1] ",\n    " v[2] ",\n    " v[3] ",\n    " v[4] "\n  ]"
  }
  printf "%s\n}", out > (PREFIX "_warning.json")
  close(PREFIX "_warning.json")
  info("dataset_converter_lib", "There were errors in the labels. Details are logged at " PREFIX "_waring.json")
}
function convert(   p, s, nshards, size, begin, end, out, k, fold, file, c, counts, sep, classmap, bad) {
  status("RUNNING", "Generating partitions")
  if (MODE == "sequence") partition_sequence()
  else if (MODE == "random") partition_random()
  else fail("NotImplementedError", "Unknown partition mode. Please stick to either random or sequence")

  nshards = SHARDS > 1 ? SHARDS : 1
  fold = 0
  for (p = 1; p <= NPART; p++) {
    if (PLEN[p] == 0) continue                 # _shard() skips it, so the next one gets its number
    size = int(PLEN[p] / nshards)
    for (s = 0; s < nshards; s++) {
      info("dataset_converter_lib", "Writing partition " fold ", shard " s)
      status("RUNNING", "Writing partition " fold ", shard " s)
      file = PREFIX
      if (PARTS != 0) file = sprintf("%s-fold-%03d-of-%03d", file, fold, PARTS)
      if (SHARDS != 0) file = sprintf("%s-shard-%05d-of-%05d", file, s, SHARDS)
      printf "" > file
      begin = s * size; end = (s + 1 < nshards) ? (s + 1) * size : PLEN[p]
      for (k = begin + 1; k <= end; k++) write_record(file, frame_example(PFRAME[p, k], fold))
      close(file)
    }
    info("dataset_converter_lib", object_counts(fold))
    fold++
  }

  info("dataset_converter_lib", "Cumulative object statistics")
  counts = ""; sep = ""
  for (k = 1; k <= NCLASSES; k++) {
    c = CLASSES[k]
    for (s = 1; s <= length(c); s++) if (ORD[substr(c, s, 1)] >= 128) {
      fail("UnicodeDecodeError", "'ascii' codec can't decode byte " sprintf("0x%02x", ORD[substr(c, s, 1)]) \
           " in position " (s - 1) ": ordinal not in range(128)")
    }
    counts = counts sep "\"" jstr(c) "\": " OBJECTS[c]; sep = ", "
  }
  event("categorical", "{\"num_objects\": {" counts "}}")
  status("RUNNING", "Cumulative object statistics")
  info("dataset_converter_lib", object_counts(""))
  classmap = "Class map. \nLabel in GT: Label in tfrecords file "
  for (k = 1; k <= NCLASSMAP; k++) classmap = classmap "\nb'" CLASS_ORDER[k] "': b'" CLASS_MAP[CLASS_ORDER[k]] "'"
  info("dataset_converter_lib", classmap)
  status("RUNNING", classmap)
  note = "For the dataset_config in the experiment_spec, please use labels in the tfrecords file, while writing the classmap.\n"
  event("print", jstr(note))
  status("RUNNING", note)
  info("dataset_converter_lib", "Tfrecords generation complete.")
  status("SUCCESS", "TFRecords generation complete.")
  write_warnings()
}
