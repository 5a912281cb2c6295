#!/usr/bin/env bash
# Throughput of `fercam analyze` (video seconds analysed per wall second, start-up included) on one
# archive: the plain local run with 1 and 2 processes, and --cluster local with 1 and 2 Ray workers.
#   bash tools/bench_cluster.sh [PYTHON]     (run from the project root; media from ../shared/media)
set -euo pipefail
PY=${1:-python}
MEDIA=../shared/media
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/archive"
for copy in 1 2; do  # six inputs, 58.6 s of video, 1 or 2 faces
  for clip in fer_woman2 fr_short_hamilton_clip fer_test; do cp "$MEDIA/$clip.mp4" "$WORK/archive/$clip-$copy.mp4"; done
done
VIDEO_S=$($PY -c "
import cv2, glob
print(sum(cv2.VideoCapture(p).get(7) / cv2.VideoCapture(p).get(5) for p in glob.glob('$WORK/archive/*.mp4')))")
run() {  # NAME ARGS...
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  $PY -m fercam analyze "$WORK/archive" -o "$WORK/out-$name" "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  $PY -c "w = $end - $start; print(f'$name: {$VIDEO_S:.1f} video s in {w:.1f} wall s = {$VIDEO_S / w:.2f} video s per wall s')"
}
run plain-1 --jobs 1
run plain-2 --jobs 2
run ray-1 --cluster local --jobs 1
run ray-2 --cluster local --jobs 2
