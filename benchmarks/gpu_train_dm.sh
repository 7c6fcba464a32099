#!/bin/bash
# Run on the device machine from the repository root, with the JPEG pack made by
#   python benchmarks/make_gpu_pack.py --data ../shared/data --out .gpu
# (carried as ".gpu"). Trains CFG (default dm-v14, the next run) into runs/$R and exports the weight averages of
# last.pt and the best validation to $OUT, split into 15 MB parts (join: cat f.part-* > f).
# The whole call fits the device's 600 s per-call limit: training gets what the probes leave of BUDGET_S (570),
# less RESERVE_S (90) for start-up, the last validation and the exports.
set -o pipefail
export PYTHONUNBUFFERED=1
# the device machine may lack platformdirs (blurvid imports it for the user cache): a stand-in then
if ! python3 -c "import platformdirs" 2>/dev/null; then
  mkdir -p /tmp/stub && printf 'def user_cache_dir(a, *k, **kw):\n    return "/tmp/cache"\n' > /tmp/stub/platformdirs.py
  export PYTHONPATH=$PWD:/tmp/stub${PYTHONPATH:+:$PYTHONPATH}
fi
CFG=${CFG:-weights/configs/dm-v14.json}
R=${R:-dm-v14}
D=${D:-.gpu}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch;print(torch.__version__, torch.cuda.is_available())"
# PROBE=1: first check and time the device's rendering of synthesis plans (benchmarks/render_check.py), then
# the network step (batch 32, 64, 128) apart from the loader, rendered by the workers and on the device
# (benchmarks/train_throughput.py)
if [ -n "${PROBE:-}" ]; then
  timeout 90 python3 benchmarks/render_check.py --config $CFG --data $D/sharp/bsd100 --batch 16 64 128 256 \
    --json $OUT/render_check.json 2>&1 | tee $OUT/render_check.log
  timeout 180 python3 benchmarks/train_throughput.py --config $CFG \
    --data $D/sharp/bsd100 --data $D/sharp/urban100 --data $D/sharp/sunhays80 --data $D/sharp/mcmaster \
    --clips $D/video/bmx-trees --clips $D/video/tennis --batch 64 128 256 --workers 14 --on-device both \
    --json $OUT/throughput.json 2>&1 | tee $OUT/throughput.log
fi
# a config that renders on the device trains with the workers' synthesis instead if the device cannot render
CPU_SYNTH=0
if grep -q '"synth_on_device": true' $CFG && ! timeout 60 python3 benchmarks/render_check.py --config $CFG \
    --data $D/sharp/bsd100 --batch 8 --compare 4 --repeat 1 > $OUT/render_gate.log 2>&1; then
  echo "device rendering failed (render_gate.log): synthesis stays on the CPU workers" | tee $OUT/fallback.log
  CPU_SYNTH=1
fi
# the whole call must end within the device's per-call limit (BUDGET_S, default 570 of its 600 s), exports
# included: the training budget is what the probes left, less RESERVE_S for start-up, validation and exports
python3 - "$CFG" /tmp/cfg_run.json "$CPU_SYNTH" $(( ${BUDGET_S:-570} - SECONDS - ${RESERVE_S:-90} )) <<'PY' || exit 1
import json, sys
cfg, out, cpu_synth, left = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
c = json.load(open(cfg))
if cpu_synth:
    c["synth_on_device"], c["reuse"] = False, 8
if left < 60:
    sys.exit(f"only {left} s left for training: not starting")
c["minutes"] = round(min(c.get("minutes") or left / 60, left / 60), 2)
print(f"training budget {c['minutes']} min")
json.dump(c, open(out, "w"))
PY
CFG=/tmp/cfg_run.json
# a warm machine keeps runs/ between calls, and a new run never replaces one: keep an earlier one aside
if [ -e runs/$R/last.pt ]; then mv runs/$R runs/$R.before-$(date +%s); fi
python3 -m blurvid train deblur --config $CFG --no-progress --out runs/$R \
  --data $D/sharp/bsd100 --data $D/sharp/urban100 --data $D/sharp/sunhays80 --data $D/sharp/mcmaster \
  --clips $D/video/bmx-trees --clips $D/video/tennis --val $D/sharp/kodak24 "$@" 2>&1 | tee $OUT/train.log
python3 -m blurvid train export runs/$R/last.pt --out $OUT/last --name ${R#dm-} --no-default 2>&1 | tee -a $OUT/train.log
python3 -m blurvid train export runs/$R --out $OUT/best --name ${R#dm-} --no-default 2>&1 | tee -a $OUT/train.log
cp runs/$R/metrics.jsonl $OUT/ 2>/dev/null
ls -la $OUT/* runs/$R | tee -a $OUT/train.log
# the device returns files up to 16 MB: split larger ones (join: cat f.part-* > f)
find $OUT -type f -size +15M | while read f; do split -b 15M -d "$f" "$f.part-" && rm "$f"; done
ls -la $OUT/*
