#!/usr/bin/env bash
# queue_worker.sh QUEUE ID: take the first line of QUEUE not yet taken (QUEUE.taken, under a lock) and run it
# with one compute thread, until none is left. Two workers share a 2-core machine. After each finished
# line its --out folder is exported (no checkpoints) into results/<folder name>, so a finished run
# outlives the machine it ran on even before anyone commits it.
set -u
queue=$(realpath "$1"); id=$2
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
while true; do
  cmd=$(flock "$queue.lock" python3 - "$queue" <<'PY'
import pathlib, sys
q = pathlib.Path(sys.argv[1])
t = pathlib.Path(str(q) + ".taken")
taken = set(t.read_text().splitlines()) if t.exists() else set()
for line in q.read_text().splitlines():
    if line.strip() and line not in taken:
        with t.open("a") as f:
            f.write(line + "\n")
        print(line)
        break
PY
)
  [ -z "$cmd" ] && exit 0
  echo "$(date +%T) worker $id: $cmd" >> "$queue.log"
  if .venv/bin/$cmd --threads 1 >> "$queue.$id.out" 2>&1; then
    echo "$(date +%T) worker $id done" >> "$queue.log"
    out=$(sed -n 's/.*--out \([^ ]*\).*/\1/p' <<< "$cmd")
    [ -n "$out" ] && .venv/bin/bench export "$out" --to "results/$(basename "$out")" >> "$queue.$id.out" 2>&1
  else
    echo "$(date +%T) worker $id FAILED" >> "$queue.log"
  fi
done
