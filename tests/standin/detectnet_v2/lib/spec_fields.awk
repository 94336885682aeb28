# Part of the stand-in TAO (a TEST DOUBLE, nothing else): reads a spec the way TAO does and prints
# every scalar it sets as "dotted.path<TAB>value", in file order (the shell takes the last one, as
# text_format.Merge keeps the last value of a field given twice), and every block as "path<TAB>{}".
#
# TAO reads a spec with open(path, "r").read() -- universal newlines, so \r\n and a bare \r are line
# ends -- and text_format.Merge (tao-source-facts.md §5): `#` comments run to the end of the line,
# blocks are `name {..}`, `name: {..}` or `name <..>`, values may be lists `[a, b]`, a field may end
# in `,` or `;`, adjacent strings are one string. Blocks on one line (`kitti_config { num_shards: 2 }`)
# read like blocks over many lines. String escapes \n \t \\ \" \' and octal are decoded; anything the
# stand-in cannot read is a ParseError on stderr and exit status 1.
# POSIX awk (mawk, busybox awk): it runs on the host and in the busybox image.

{ text = text $0 "\n" }

function fail(msg) {
  print "google.protobuf.text_format.ParseError: " msg > "/dev/stderr"
  failed = 1
  exit 1
}

function unquote(s,   q, out, k, c, d, m, n) {
  q = substr(s, 1, 1); out = ""; n = length(s) - 1
  for (k = 2; k <= n; k++) {
    c = substr(s, k, 1)
    if (c != "\\") { out = out c; continue }
    k++; c = substr(s, k, 1)
    if (c == "n") out = out "\n"
    else if (c == "t") out = out "\t"
    else if (c == "r") out = out "\r"
    else if (c ~ /[0-7]/) {
      d = c + 0; m = 1
      while (m < 3 && k < n && substr(s, k + 1, 1) ~ /[0-7]/) { k++; m++; d = d * 8 + substr(s, k, 1) }
      out = out sprintf("%c", d)
    } else out = out c
  }
  return out
}

function path_of(name,   p, k) {
  p = ""
  for (k = 1; k <= depth; k++) p = p stack[k] "."
  return p name
}

END {
  if (failed) exit 1
  gsub(/\r\n/, "\n", text)
  gsub(/\r/, "\n", text)
  n = length(text); i = 1; depth = 0; state = "name"; name = ""; inlist = 0
  while (i <= n) {
    c = substr(text, i, 1)
    if (c == " " || c == "\t" || c == "\n" || c == "\f" || c == "\v") { i++; continue }
    if (c == "#") {
      j = index(substr(text, i), "\n"); i = j ? i + j : n + 1; continue
    }
    rest = substr(text, i)
    if (c == "\"" || c == "'") {
      if (c == "\"") found = match(rest, /^"([^"\\\n]|\\.)*"/)
      else found = match(rest, /^'([^'\\\n]|\\.)*'/)
      if (!found) fail("unterminated string at offset " i)
      tok = unquote(substr(rest, 1, RLENGTH)); i += RLENGTH
      if (state != "value") fail("a string where a field name belongs at offset " i)
      if (joined) value = value tok; else value = tok
      joined = 1
      continue
    }
    if (joined) {                              # the end of a run of adjacent strings
      print path_of(name) "\t" value; joined = 0; state = inlist ? "value" : "name"
    }
    if (c ~ /[A-Za-z_0-9+.-]/) {
      match(rest, /^[A-Za-z0-9_+.-]+/); tok = substr(rest, 1, RLENGTH); i += RLENGTH
      if (state == "value") { print path_of(name) "\t" tok; state = inlist ? "value" : "name" }
      else if (state == "name") { name = tok; state = "colon" }
      else fail("unexpected " tok " at offset " i)
      continue
    }
    i++
    if (c == ":") { if (state != "colon") fail("unexpected : at offset " i); state = "value" }
    else if (c == "{" || c == "<") {
      if (state != "colon" && state != "value") fail("unexpected " c " at offset " i)
      print path_of(name) "\t{}"              # a block, even an empty one, is set (WhichOneof sees it)
      stack[++depth] = name; state = "name"
    } else if (c == "}" || c == ">") {
      if (depth == 0 || state != "name") fail("unexpected " c " at offset " i)
      depth--
      if (inlist && depth == listat) state = "value"      # the next message of a list
    } else if (c == "[") { if (state != "value") fail("unexpected [ at offset " i); inlist = 1 }
    else if (c == "]") { inlist = 0; state = "name" }
    else if (c == ",") { if (inlist) state = "value"; else if (state != "name") fail("unexpected , at offset " i) }
    else if (c == ";") { if (state != "name") fail("unexpected ; at offset " i) }
    else fail("unexpected " c " at offset " i)
  }
  if (joined) print path_of(name) "\t" value
  if (depth != 0) fail("a block is not closed")
}
