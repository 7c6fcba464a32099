#!/usr/bin/env bash
# Every quality number in weights/README.md, from the installed checkpoints (or RUN_DM / RUN_VIDEO runs).
#   DATA=../shared/data benchmarks/eval_all.sh      # writes benchmarks/results/rerun/*.json
# The committed files in benchmarks/results/ are the evidence behind the model card (some of them of
# earlier checkpoints, as the card says): a rerun goes to its own folder to be compared with them,
# and never replaces them unless OUT=benchmarks/results is given.
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-benchmarks/results/rerun}
mkdir -p "$OUT"
dm_run=${RUN_DM:+--run $RUN_DM}
video_run=${RUN_VIDEO:+--run $RUN_VIDEO}

# deblurring: Levin real camera shake (aligned PSNR = best integer shift, the set's usual protocol)
# and the fixed kodak24 validation set (synthesis defaults, seed 1234)
blurvid eval deblur $dm_run --levin "$DATA/realblur/levin" --synth "$DATA/sharp/kodak24" \
  --count 24 --seed 1234 --size 256 --json "$OUT/deblur.json"
# real motion blur: GoPro-style averages of 9 consecutive video frames, against the centre frame
blurvid eval deblur $dm_run --clips "$DATA/video/bmx-trees" --clips "$DATA/video/tennis" \
  --json "$OUT/deblur_clips.json"
# the same kodak24 scenes without sensor noise (real photos and Levin measure ~0.5/255 noise)
blurvid eval deblur $dm_run --synth "$DATA/sharp/kodak24" --count 24 --seed 1234 --size 256 --no-noise \
  --json "$OUT/deblur_clean.json"

# video, ground-truth central frame (stage 2): synthetic kodak24 sequences and GoPro-style clips
blurvid eval video $video_run --synth "$DATA/sharp/kodak24" --count 24 --seed 1234 --size 256 \
  --clips "$DATA/video/bmx-trees" --clips "$DATA/video/tennis" --json "$OUT/video_gt.json"
# end to end: the DM's output as the central frame
blurvid eval video $video_run --center dm --synth "$DATA/sharp/kodak24" --count 24 --seed 1234 --size 256 \
  --clips "$DATA/video/bmx-trees" --clips "$DATA/video/tennis" --json "$OUT/video_dm.json"
# other frame counts without retraining
for n in 7 15; do
  blurvid eval video $video_run --synth "$DATA/sharp/kodak24" --count 24 --seed 1234 --size 256 --frames "$n" \
    --json "$OUT/video_gt_n$n.json"
done
