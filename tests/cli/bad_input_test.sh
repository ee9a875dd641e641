#!/usr/bin/env bash
# Bad-input battery (RELIABILITY.md §5 A-C) over the real vit-train / vit-eval binaries. Each case
# checks the exit code, exactly one "error: " line on stderr that names the file or key, a valid
# final JSON record on stdout whose exit_code matches, and that a live run directory (its step
# checkpoints, latest.json, best.safetensors, config.json, classes.json) was not changed and still
# evaluates. Not here: faults and signals (fault_test.sh), the happy paths (cli_test.sh).
# usage: bad_input_test.sh BUILD_DIR   (prints "N passed, M failed"; exits non-zero on any failure)
set -u
B=$(cd "$1" && pwd); HERE=$(cd "$(dirname "$0")" && pwd)
T=$B/src/vit-train; E=$B/src/vit-eval
W=$(mktemp -d); trap 'chmod -R u+rwx "$W" 2>/dev/null; rm -rf "$W"' EXIT
pass=0; failed=0
ok() { pass=$((pass + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
# final_ok OUT CODE: the last stdout line is strict JSON, event final, exit_code CODE; all lines parse.
final_ok() { python3 - "$1" "$2" <<'PY'
import json, sys
lines = open(sys.argv[1], "rb").read().decode("utf-8").splitlines()
def strict(s):  # NaN/Infinity are not JSON
    return json.loads(s, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
recs = [strict(l) for l in lines]
r = recs[-1]
ok = r["event"] == "final" and r["exit_code"] == int(sys.argv[2]) and (r["error"] is None) == (r["exit_code"] == 0)
sys.exit(0 if ok else 1)
PY
}
# expect CODE NAME MENTION CMD...: exit code, final record, one error line containing MENTION.
expect() {
  local want=$1 name=$2 mention=$3; shift 3
  "$@" >"$W/$name.out" 2>"$W/$name.err" </dev/null; local rc=$?
  if [[ $rc != "$want" ]]; then bad "$name: exit $rc, want $want ($(grep -am1 '^error: ' "$W/$name.err"))"; return 1; fi
  final_ok "$W/$name.out" "$want" || { bad "$name: stdout is not JSON Lines ending in a final record with exit_code $want"; return 1; }
  if [[ $want != 0 ]]; then
    [[ $(grep -ac '^error: ' "$W/$name.err") == 1 ]] || { bad "$name: want exactly one 'error:' line on stderr"; return 1; }
    grep -a '^error: ' "$W/$name.err" | grep -qF -- "$mention" || { bad "$name: error line lacks '$mention': $(grep -a '^error: ' "$W/$name.err")"; return 1; }
  fi
  ok
}
python3 "$HERE/make_tiny_dataset.py" "$W/train" --per-class 16
python3 "$HERE/make_tiny_dataset.py" "$W/val" --per-class 4 --seed 1
CFG=$HERE/tiny.json
ARGS=(--config "$CFG" --data "$W/train" --val-data "$W/val")
run() { "$T" "${ARGS[@]}" "$@"; }

# A live run directory R (2 checkpoints) that every failing case below must leave alone.
R=$W/run
run --steps 2 --set train.checkpoint_every_steps=1 --set train.keep_checkpoints=3 --out "$R" >/dev/null 2>"$W/base.err" \
  || { echo "FAIL: base run: $(tail -n 3 "$W/base.err")"; echo "0 passed, 1 failed"; exit 1; }
snap() { (cd "$R" && sha256sum checkpoints/* best.safetensors config.json classes.json); }
snap >"$W/R.sha"
CK=$R/checkpoints/step-00000002.safetensors
intact() {  # intact NAME: R unchanged, and its latest checkpoint still evaluates
  snap | cmp -s - "$W/R.sha" || { bad "$1: run directory changed: $(snap | diff - "$W/R.sha" | head -n 2 | tr '\n' ' ')"; return 1; }
  ok
}
eval_latest() {
  local f; f=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["file"])' "$R/checkpoints/latest.json")
  [[ $f == /* ]] || f=$R/checkpoints/$f
  "$E" --checkpoint "$f" --data "$W/val" >/dev/null 2>&1 && ok || bad "$1: vit-eval on latest.json's checkpoint failed"
}

# ---------------- A. CLI and config ----------------
expect 64 noargs "" "$T"
"$T" --help >"$W/help.out" 2>/dev/null && grep -q -- --config "$W/help.out" && ok || bad "--help"
"$T" --version >"$W/ver.out" 2>/dev/null && grep -q vit-train "$W/ver.out" && ok || bad "--version"
expect 64 unknown_flag "--no-such-flag" run --no-such-flag 1 --out "$R"
expect 64 bad_opt "adamx" run --opt adamx --out "$R"
expect 64 bad_flag_value "--steps" run --steps many --out "$R"
expect 64 lookahead_k0 "--lookahead-k" run --lookahead-k 0 --out "$R"
expect 64 lookahead_alpha "--lookahead-alpha" run --lookahead-alpha 1.5 --out "$R"
expect 64 out_not_utf8 "--out" run --out "$W/run"$'\xae'
expect 64 data_not_utf8 "--data" run --data "$W/train"$'\xae' --out "$R"
expect 64 eval_noargs "" "$E"
expect 64 eval_both "exactly one" "$E" --checkpoint "$CK" --weights "$CK" --data "$W/val"
expect 64 eval_batch0 "--batch-size" "$E" --checkpoint "$CK" --data "$W/val" --batch-size 0
expect 66 cfg_missing "$W/missing.json" "$T" --config "$W/missing.json" --out "$R"
mkdir -p "$W/cfgdir"
expect 66 cfg_is_dir "$W/cfgdir" "$T" --config "$W/cfgdir" --out "$R"
cfg() {  # cfg NAME 'JSON': writes $W/NAME.json
  printf '%s' "$2" >"$W/$1.json"
}
cfg trailing_comma '{"model": {"dim": 16,}}'
expect 78 cfg_trailing_comma "line 1" "$T" --config "$W/trailing_comma.json" --out "$R"
cfg comment '{"model": {"dim": 16} // a comment
}'
expect 78 cfg_comment "comment.json" "$T" --config "$W/comment.json" --out "$R"
cfg empty ''
expect 78 cfg_empty "empty.json" "$T" --config "$W/empty.json" --out "$R"
cfg array '[1, 2]'
expect 78 cfg_array "array.json" "$T" --config "$W/array.json" --out "$R"
cfg nanlit '{"optim": {"lr": NaN}}'
expect 78 cfg_nan_literal "nanlit.json" "$T" --config "$W/nanlit.json" --out "$R"
printf '{"optim": {"lr": 0.1}}\xff' >"$W/binary.json"
expect 78 cfg_binary "binary.json" "$T" --config "$W/binary.json" --out "$R"
cfg typo '{"model": {"dpeth": 2}}'
expect 78 cfg_unknown_key "model.dpeth" "$T" --config "$W/typo.json" --out "$R" && { grep -q "depth" "$W/cfg_unknown_key.err" || bad "no 'did you mean depth'"; }
cfg dup '{"optim": {"lr": 0.1, "lr": 10}}'
expect 78 cfg_duplicate_key "optim.lr" "$T" --config "$W/dup.json" --out "$R"
cfg lrstr '{"optim": {"lr": "0.1"}}'
expect 78 cfg_string_number "optim.lr" "$T" --config "$W/lrstr.json" --out "$R"
cfg frac '{"train": {"epochs": 10.5}}'
expect 78 cfg_fractional_int "train.epochs" "$T" --config "$W/frac.json" --out "$R"
cfg negbs '{"train": {"batch_size": -1}}'
expect 78 cfg_negative_size "train.batch_size" "$T" --config "$W/negbs.json" --out "$R"
cfg huge '{"optim": {"lr": 1e400}}'
expect 78 cfg_out_of_range "huge.json: optim.lr: number overflow" "$T" --config "$W/huge.json" --out "$R"
cfg deep "$(python3 -c 'print("[" * 100000 + "]" * 100000)')"
expect 78 cfg_deep_nesting "deep.json" "$T" --config "$W/deep.json" --out "$R"
# per-key and cross-field rules through --set (the base config is valid); all run against R
sets=(
  "patch_not_dividing|patch_size|--set data.image_size=8 --set model.patch_size=3"
  "patch_too_big|patch_size|--set model.patch_size=16"
  "heads_not_dividing|heads|--set model.heads=5"
  "depth0|depth|--set model.depth=0"
  "heads0|heads|--set model.heads=0"
  "mlp_ratio0|mlp_ratio|--set model.mlp_ratio=0"
  "lr0|lr|--set optim.lr=0"
  "lr_negative|lr|--set optim.lr=-1"
  "wd_negative|weight_decay|--set optim.weight_decay=-0.1"
  "beta1|beta|--set optim.betas=[1.0,0.999]"
  "eps0|eps|--set optim.eps=0"
  "momentum|momentum|--opt sgd --set optim.momentum=1.5"
  "channels2|channels|--set data.channels=2"
  "mean_len|mean|--set data.mean=[0.5,0.5]"
  "nb_features0|nb_features|--set model.attention=\"favor\" --set model.favor.nb_features=0"
  "redraw_negative|redraw_interval|--set model.attention=\"favor\" --set model.favor.redraw_interval=-1"
  "set_unknown|model.nope|--set model.nope=1"
  "set_no_equals|model.dim|--set model.dim"
  "set_bad_type|model.dim|--set model.dim=\"big\""
  "set_null_required|model.dim|--set model.dim=null"
  "batch0|batch_size|--batch-size 0"
  "clip_negative|clip|--set optim.clip_grad_norm=-1"
)
for s in "${sets[@]}"; do
  IFS='|' read -r name mention extra <<<"$s"
  eval "expect 78 set_$name \"\$mention\" run --out \"\$R\" --resume auto $extra"
done
# all violations of a file reported at once, in one line
cfg many '{"optim": {"lr": -1, "weight_decay": -1}, "model": {"depth": 0}}'
expect 78 cfg_many_errors "many.json" "$T" --config "$W/many.json" --out "$R" \
  && { grep -a '^error: ' "$W/cfg_many_errors.err" | grep -q "weight_decay" && grep -a '^error: ' "$W/cfg_many_errors.err" | grep -q "depth" \
       || bad "cfg_many_errors: not every violation listed: $(grep -a '^error: ' "$W/cfg_many_errors.err")"; }
# output directory problems -> 73 before any image is decoded
touch "$W/afile"
expect 73 out_is_file "afile" run --out "$W/afile"
expect 73 out_under_file "afile" run --out "$W/afile/sub"
if [[ $(id -u) != 0 ]]; then
  mkdir -p "$W/ro"; chmod 555 "$W/ro"
  expect 73 out_not_writable "ro" run --out "$W/ro/run"
  chmod 755 "$W/ro"
fi
# a second process on a locked run dir -> 73; the holder is interrupted afterwards
"$T" "${ARGS[@]}" --epochs 100000 --out "$W/locked" >"$W/holder.out" 2>"$W/holder.err" & holder=$!
for _ in $(seq 100); do grep -q '"event":"start"' "$W/holder.out" 2>/dev/null && break; sleep 0.1; done
expect 73 run_dir_locked "lock" run --epochs 100000 --out "$W/locked" --resume auto
kill -INT $holder; wait $holder
# resume with a different architecture or data -> 78 / 65, and R untouched
expect 78 resume_other_model "model" run --out "$R" --resume auto --set model.dim=32
expect 78 resume_other_arch "model" run --out "$R" --resume auto --set model.attention=\"favor\"
mkdir -p "$W/train_more"; cp -r "$W/train/"* "$W/train_more/"; cp "$W/train/class_0/000.png" "$W/train_more/class_0/extra.png"
expect 65 resume_data_changed "$CK" "$T" --config "$CFG" --data "$W/train_more" --out "$R" --resume auto
mkdir -p "$W/train_2cls"; cp -r "$W/train/class_0" "$W/train/class_1" "$W/train_2cls/"
expect 65 resume_other_classes "$CK" "$T" --config "$CFG" --data "$W/train_2cls" --out "$R" --resume auto
intact after_config_cases
eval_latest after_config_cases

# ---------------- B. data folders and images ----------------
expect 66 data_missing "$W/nope" "$T" --config "$CFG" --data "$W/nope" --out "$R" --resume auto
mkdir -p "$W/noclasses"; touch "$W/noclasses/readme.txt"
expect 65 data_no_classes "$W/noclasses" "$T" --config "$CFG" --data "$W/noclasses" --out "$W/rd-a"
mkdir -p "$W/oneclass"; cp -r "$W/train/class_0" "$W/oneclass/"
expect 65 data_one_class "oneclass" "$T" --config "$CFG" --data "$W/oneclass" --out "$W/rd-b"
mkdir -p "$W/emptycls/a" "$W/emptycls/b"; cp "$W/train/class_0/000.png" "$W/emptycls/a/"; touch "$W/emptycls/b/notes.txt"
expect 65 data_empty_class "b" "$T" --config "$CFG" --data "$W/emptycls" --out "$W/rd-c"
expect 65 val_mismatch "train_2cls" "$T" --config "$CFG" --data "$W/train" --val-data "$W/train_2cls" --out "$W/rd-d"
# non-image files and a directory named like an image: skipped, no error. (Hidden folders are
# classes and hidden *.png files are images, as in torchvision's ImageFolder: by design, untested.)
mkdir -p "$W/noisy"; cp -r "$W/train/"* "$W/noisy/"
touch "$W/noisy/.DS_Store" "$W/noisy/labels.csv" "$W/noisy/class_1/notes.txt" "$W/noisy/class_0/._meta"
mkdir -p "$W/noisy/class_2/dir.png"
expect 0 data_hidden_and_junk "" "$T" --config "$CFG" --data "$W/noisy" --out "$W/rd-e" --steps 1
# odd and broken images
python3 "$HERE/make_bad_inputs.py" images "$W/img"
# address-space cap for the broken-image runs (4 GB; ASan reserves terabytes, so none under it)
VLIMIT=4000000; grep -q '^VIT_SANITIZE:STRING=.' "$B/CMakeCache.txt" 2>/dev/null && VLIMIT=unlimited
mkdir -p "$W/odd"; cp -r "$W/train/"* "$W/odd/"; cp "$W"/img/ok_* "$W/odd/class_1/"
expect 0 data_odd_but_valid "" "$T" --config "$CFG" --data "$W/odd" --out "$W/rd-f" --steps 1 --set data.max_bad_fraction=0
expect 0 data_odd_rgb "" "$T" --config "$CFG" --data "$W/odd" --out "$W/rd-g" --steps 1 --set data.channels=3 \
  --set data.mean=[0.5,0.5,0.5] --set data.std=[0.5,0.5,0.5] --val-data "$W/odd"
for f in "$W"/img/bad_*; do
  n=$(basename "$f"); n=${n%.*}
  mkdir -p "$W/b-$n"; cp -r "$W/train/"* "$W/b-$n/"; cp "$f" "$W/b-$n/class_2/"
  # max_bad_fraction 0: the one broken file is a data error naming it
  (ulimit -v "$VLIMIT"; exec "$T" --config "$CFG" --data "$W/b-$n" --out "$W/rd-$n" --steps 1 --set data.max_bad_fraction=0 \
    >"$W/$n.out" 2>"$W/$n.err"); rc=$?
  if [[ $rc == 65 ]] && final_ok "$W/$n.out" 65 && [[ $(grep -ac '^error: ' "$W/$n.err") == 1 ]] && grep -aq "$(basename "$f")" "$W/$n.err"; then ok
  else bad "image $n: exit $rc, want 65 naming the file ($(grep -am1 '^error: ' "$W/$n.err"))"; fi
  # tolerated fraction: a warning, training goes on
  expect 0 "tolerate_$n" "" "$T" --config "$CFG" --data "$W/b-$n" --out "$W/rd-t$n" --steps 1 --set data.max_bad_fraction=0.5
done
# unreadable file, dangling symlink, symlink loop, odd file names
mkdir -p "$W/links"; cp -r "$W/train/"* "$W/links/"
ln -s "$W/does-not-exist.png" "$W/links/class_0/dangling.png"
ln -s "$W/links/class_1" "$W/links/class_1/loop"
expect 0 data_symlinks "" timeout 60 "$T" --config "$CFG" --data "$W/links" --out "$W/rd-h" --steps 1 --set data.max_bad_fraction=0.5
if [[ $(id -u) != 0 ]]; then
  mkdir -p "$W/perm"; cp -r "$W/train/"* "$W/perm/"; chmod 000 "$W/perm/class_0/000.png"
  expect 65 data_unreadable "000.png" "$T" --config "$CFG" --data "$W/perm" --out "$W/rd-i" --steps 1 --set data.max_bad_fraction=0
fi
mkdir -p "$W/names"; cp -r "$W/train/"* "$W/names/"
cp "$W/train/class_0/000.png" "$W/names/class_0/with space.png"
cp "$W/train/class_0/000.png" "$W/names/class_0/$(printf 'new\nline.png')"
cp "$W/train/class_0/000.png" "$W/names/class_0/$(printf 'latin\xe9.png')"
mkdir -p "$W/names/clÃ¤ss"; cp "$W/train/class_0/"0*.png "$W/names/clÃ¤ss/"
expect 0 data_odd_names "" "$T" --config "$CFG" --data "$W/names" --out "$W/rd-j" --steps 1
expect 0 eval_odd_names "" "$E" --checkpoint "$W/rd-j/checkpoints/step-00000001.safetensors" --data "$W/names" \
  --predictions-csv "$W/names.csv"
printf 'x.png' >"$W/names/clÃ¤ss/bad.png"
expect 65 data_odd_names_bad "bad.png" "$T" --config "$CFG" --data "$W/names" --out "$W/rd-k" --steps 1 --set data.max_bad_fraction=0
# a class folder name that is not UTF-8 cannot live in JSON: refused up front, not after training
rm "$W/names/clÃ¤ss/bad.png"; mkdir -p "$W/names/$(printf 'cl\xe4ss')"; cp "$W/train/class_0/"0*.png "$W/names/$(printf 'cl\xe4ss')/"
expect 65 data_class_not_utf8 "UTF-8" "$T" --config "$CFG" --data "$W/names" --out "$W/rd-k" --steps 1 --set data.max_bad_fraction=0
# vit-eval on a folder with a class unknown to the checkpoint; case-different class names
mkdir -p "$W/val_case"; cp -r "$W/val/class_0" "$W/val/class_1" "$W/val_case/"; cp -r "$W/val/class_2" "$W/val_case/CLASS_2"
expect 65 eval_case_class "CLASS_2" "$E" --checkpoint "$CK" --data "$W/val_case"
expect 65 eval_case_class_byname "CLASS_2" "$E" --checkpoint "$CK" --data "$W/val_case" --map-classes-by-name
expect 66 eval_data_missing "$W/nope" "$E" --checkpoint "$CK" --data "$W/nope"
intact after_data_cases

# ---------------- C. checkpoints ----------------
expect 66 eval_ckpt_missing "$W/missing.safetensors" "$E" --checkpoint "$W/missing.safetensors" --data "$W/val"
expect 66 eval_ckpt_is_dir "$W/cfgdir" "$E" --checkpoint "$W/cfgdir" --data "$W/val"
python3 "$HERE/make_bad_inputs.py" checkpoints "$CK" "$W/ck" || bad "make_bad_inputs.py checkpoints"
while read -r name mention; do
  expect 65 "ck_$name" "$mention" "$E" --checkpoint "$W/ck/$name.safetensors" --data "$W/val"
done <"$W/ck/cases.txt"
[[ $(wc -l <"$W/ck/cases.txt") -ge 30 ]] && ok || bad "too few checkpoint cases"
# NaN weights: vit-eval loads them only with --allow-nonfinite; resume refuses them
expect 0 ck_nan_allowed "" "$E" --checkpoint "$W/ck/nan_weight.safetensors" --data "$W/val" --allow-nonfinite
for name in nan_weight negative_adam_v wrong_shape missing_tensor extra_tensor checksum_flip format_version_2 dup_key overlap; do
  [[ -f $W/ck/$name.safetensors ]] || continue
  mention=$(awk -v n="$name" '$1 == n {print $2}' "$W/ck/cases.txt")
  expect 65 "resume_$name" "$name.safetensors" run --out "$R" --resume "$W/ck/$name.safetensors" && \
    { grep -a '^error: ' "$W/resume_$name.err" | grep -qF -e "${mention:-$name.safetensors}" -e "${mention#model.}" \
      || bad "resume_$name: error does not name the tensor: $(grep -a '^error: ' "$W/resume_$name.err")"; }
done
# weights of another model's shape: the error names the weights file (and the tensor)
"$E" --checkpoint "$CK" --export-weights "$W/timm.safetensors" >/dev/null 2>&1 || bad "export weights"
sed 's/"dim": 16/"dim": 32/' "$CFG" >"$W/dim32.json"
expect 65 eval_weights_shape "timm.safetensors: state dict: wrong shape for" "$E" --weights "$W/timm.safetensors" \
  --config "$W/dim32.json" --data "$W/val"
expect 65 init_weights_shape "timm.safetensors: state dict: wrong shape for" run --out "$W/rd-w" --steps 1 \
  --init-weights "$W/timm.safetensors" --set model.dim=32
# truncation at every length 0..64 and at 50 pseudo-random cut points
size=$(stat -c %s "$CK")
cuts=$(python3 -c 'import random,sys; r=random.Random(7); n=int(sys.argv[1]); print(*(list(range(65)) + sorted(r.sample(range(65, n), 50))))' "$size")
tfail=0
for n in $cuts; do
  head -c "$n" "$CK" >"$W/cut.safetensors"
  "$E" --checkpoint "$W/cut.safetensors" --data "$W/val" >"$W/cut.out" 2>"$W/cut.err"; rc=$?
  if [[ $rc == 65 ]] && final_ok "$W/cut.out" 65 && [[ $(grep -ac '^error: ' "$W/cut.err") == 1 ]] && grep -q cut.safetensors "$W/cut.err"; then ok
  else bad "truncated at $n: exit $rc ($(grep -am1 '^error: ' "$W/cut.err"))"; tfail=1; fi
done
# --resume auto with a corrupt newest file: the previous valid file is used, with a warning
cp -r "$R" "$W/run2"; head -c 500 "$W/run2/checkpoints/step-00000002.safetensors" >"$W/t" && mv "$W/t" "$W/run2/checkpoints/step-00000002.safetensors"
expect 0 resume_auto_skips_corrupt "" "$T" --config "$CFG" --data "$W/train" --val-data "$W/val" --out "$W/run2" --resume auto --steps 3
tail -n 1 "$W/resume_auto_skips_corrupt.out" | grep -q 'step-00000001' && ok || bad "resume auto did not fall back to step 1"
grep -q 'step-00000002' "$W/resume_auto_skips_corrupt.err" && ok || bad "resume auto: no warning naming the corrupt file"
intact after_checkpoint_cases
eval_latest after_checkpoint_cases

echo "$pass passed, $failed failed"
[[ $failed == 0 ]]
