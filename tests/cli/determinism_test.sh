#!/usr/bin/env bash
# Determinism (RELIABILITY.md §5 F.70-71): the same seed gives byte-identical checkpoints and stdout
# when run twice, and identical tensors, metadata and stdout for --threads 1 vs 2 apart from the
# recorded thread count (train_state.threads, config train.threads, the start event's "threads").
# A different seed must change the weights (proves the seed is used).
# usage: determinism_test.sh BUILD_DIR   (prints "N passed, M failed"; exits non-zero on any failure)
set -u
B=$(cd "$1" && pwd); HERE=$(cd "$(dirname "$0")" && pwd)
T=$B/src/vit-train
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
pass=0; failed=0
ok() { pass=$((pass + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
python3 "$HERE/make_tiny_dataset.py" "$W/train" --per-class 16
python3 "$HERE/make_tiny_dataset.py" "$W/val" --per-class 4 --seed 1
# softmax ViT and Performer, AdamW and Lookahead(RAdam), dropout on: every kernel family runs
variants=("vit|" "favor|--set model.attention=\"favor\" --set model.favor.redraw_interval=2 --opt lookahead_radam --set model.dropout=0.1 --set model.attn_dropout=0.1 --set model.drop_path=0.1")
for v in "${variants[@]}"; do
  name=${v%%|*}; extra=${v#*|}
  for r in t1a t1b t2; do
    th=1; [[ $r == t2 ]] && th=2
    eval '"$T" --config "$HERE/tiny.json" --data "$W/train" --val-data "$W/val" --steps 6 --threads $th \
      --set train.checkpoint_every_steps=2 --out "$W/run" '"$extra" >"$W/$name-$r.out" 2>"$W/$name-$r.err" \
      || bad "$name $r: exit $? ($(grep -m1 error: "$W/$name-$r.err"))"
    mv "$W/run" "$W/$name-$r"  # every run writes to the same path: paths in stdout and config match
  done
  # same thread count twice: every checkpoint byte-identical, stdout byte-identical
  for f in "$W/$name-t1a"/checkpoints/step-*.safetensors "$W/$name-t1a/best.safetensors"; do
    g=${f/$name-t1a/$name-t1b}
    cmp -s "$f" "$g" && ok || bad "$name: $(basename "$f") differs between two identical runs"
  done
  cmp -s "$W/$name-t1a.out" "$W/$name-t1b.out" && ok || bad "$name: stdout differs between two identical runs"
  # 1 vs 2 threads: same bytes once the recorded thread count is normalised
  python3 - "$W/$name-t1a" "$W/$name-t2" <<'PY' && ok || bad "$name: 1 vs 2 threads differ"
import glob, json, os, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__")
    ts = json.loads(meta["train_state"]); ts.pop("threads", None); meta["train_state"] = ts
    cfg = json.loads(meta["config"]); cfg.get("train", {}).pop("threads", None); meta["config"] = cfg
    meta.pop("config_sha256", None)
    return meta, {k: b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]] for k, v in h.items()}
a, b = sys.argv[1], sys.argv[2]
bad = []
for f in sorted(glob.glob(a + "/checkpoints/step-*.safetensors")) + [a + "/best.safetensors"]:
    ma, ta = load(f); mb, tb = load(f.replace(a, b))
    diff = sorted(k for k in set(ta) | set(tb) if ta.get(k) != tb.get(k))
    if diff: bad.append("%s: tensors %s" % (os.path.basename(f), diff[:5]))
    if ma != mb: bad.append("%s: metadata %s" % (os.path.basename(f), sorted(k for k in ma if ma[k] != mb.get(k))))
def norm(p):
    out = []
    for l in open(p):
        r = json.loads(l); r.pop("threads", None); out.append(r)
    return out
if norm(a + ".out") != norm(b + ".out"): bad.append("stdout")
for x in bad: print("  thread-count dependence:", x)
sys.exit(1 if bad else 0)
PY
done
# a different seed changes the weights
"$T" --config "$HERE/tiny.json" --data "$W/train" --val-data "$W/val" --steps 6 --seed 4 --set train.checkpoint_every_steps=2 \
  --out "$W/run" >/dev/null 2>&1 || bad "seed 4 run failed"
mv "$W/run" "$W/seed4"
python3 - "$W/vit-t1a/checkpoints/step-00000006.safetensors" "$W/seed4/checkpoints/step-00000006.safetensors" <<'PY' && ok || bad "seed 3 and seed 4 gave the same weights"
import json, struct, sys
def t(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); h.pop("__metadata__")
    return {k: b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]] for k, v in h.items() if k.startswith("model.")}
a, b = t(sys.argv[1]), t(sys.argv[2])
sys.exit(0 if a.keys() == b.keys() and any(a[k] != b[k] for k in a) else 1)
PY
echo "$pass passed, $failed failed"
[[ $failed == 0 ]]
