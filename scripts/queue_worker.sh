#!/usr/bin/env bash
# queue_worker.sh QUEUE ID [DEADLINE]: take the first line of QUEUE not yet taken (QUEUE.taken, under a
# lock) and run it with one compute thread, until none is left. Two workers share a 2-core machine.
# After each finished line its --out folder is exported (no checkpoints) into results/<folder name>, so a
# finished run outlives the machine it ran on even before anyone commits it.
# DEADLINE (a time `date -d` reads, e.g. 05:30): the machine goes away then, and a run stopped by that
# cannot resume on the next one; a line whose plan estimate (`--dry-run`) ends after it is put aside in
# QUEUE.deferred (not taken) and the worker tries the next. Delete QUEUE.deferred on a new machine.
set -u
queue=$(realpath "$1"); id=$2; deadline=${3:+$(date -d "$3" +%s)}
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

minutes() {     # the plan's "total 42 min" / "total 1.5 h" / "total 30 s" of a dry-run, in whole minutes
  awk '/^total /{v=$2; u=$3; gsub(",", "", v); m = (u == "h") ? v * 60 : (u == "s") ? v / 60 : v;
       printf "%d\n", m + 0.999}'
}

while true; do
  cmd=$(flock "$queue.lock" python3 - "$queue" <<'PY'
import pathlib, sys
q = pathlib.Path(sys.argv[1])
t, d = pathlib.Path(str(q) + ".taken"), pathlib.Path(str(q) + ".deferred")
skip = set(t.read_text().splitlines()) if t.exists() else set()
skip |= set(d.read_text().splitlines()) if d.exists() else set()
for line in q.read_text().splitlines():
    if line.strip() and line not in skip:
        with t.open("a") as f:
            f.write(line + "\n")
        print(line)
        break
PY
)
  [ -z "$cmd" ] && exit 0
  if [ -n "$deadline" ]; then
    need=$(.venv/bin/$cmd --threads 1 --dry-run 2>/dev/null | minutes)
    if [ -z "$need" ] || [ $(( $(date +%s) + 60 * need )) -gt "$deadline" ]; then
      flock "$queue.lock" python3 - "$queue" "$cmd" <<'PY'
import pathlib, sys
q, line = pathlib.Path(sys.argv[1]), sys.argv[2]
t = pathlib.Path(str(q) + ".taken")
kept = [x for x in t.read_text().splitlines() if x != line]
t.write_text("".join(x + "\n" for x in kept))
with open(str(q) + ".deferred", "a") as f:
    f.write(line + "\n")
PY
      echo "$(date +%T) worker $id deferred (about ${need:-?} min, past the deadline): $cmd" >> "$queue.log"
      continue
    fi
  fi
  echo "$(date +%T) worker $id: $cmd" >> "$queue.log"
  if .venv/bin/$cmd --threads 1 >> "$queue.$id.out" 2>&1; then
    echo "$(date +%T) worker $id done" >> "$queue.log"
    out=$(sed -n 's/.*--out \([^ ]*\).*/\1/p' <<< "$cmd")
    [ -n "$out" ] && .venv/bin/bench export "$out" --to "results/$(basename "$out")" >> "$queue.$id.out" 2>&1
  else
    echo "$(date +%T) worker $id FAILED" >> "$queue.log"
  fi
done
