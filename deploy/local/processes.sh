# Background processes of the local scripts (services.sh, witness.sh), each known by a
# pid file; sourced, not run. A pid is only trusted while its command line still names
# the process: after a reboot the same pid may be someone else's.

alive() {  # the pid in file $1 runs, and its command line has $2: print the pid
  local pid
  [[ -f $1 ]] && pid=$(<"$1") && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" && printf '%s\n' "$pid"
}

stop_pidfile() {  # pid file, command line pattern, name said, seconds to wait before SIGKILL
  local pid
  pid=$(alive "$1" "$2") || { rm -f "$1"; return 0; }
  kill -TERM "$pid"
  for _ in $(seq 1 $(($4 * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$1"
  echo "$3: stopped"
}
