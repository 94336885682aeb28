# Part of the stand-in TAO (a TEST DOUBLE, nothing else): the number of records in a TFRecord file,
# read from `od -An -v -tu1 FILE` on stdin by walking the frames (uint64 length, 4-byte CRC, data,
# 4-byte CRC), as TensorFlow's reader counts the samples of a validation set. POSIX awk.
{ for (k = 1; k <= NF; k++) b[n++] = $k }
END {
  count = 0
  for (at = 0; at + 12 <= n; at += 16 + len) {
    len = 0
    for (k = 7; k >= 0; k--) len = len * 256 + b[at + k]
    count++
  }
  print count
}
