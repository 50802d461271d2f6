# Step headers and step times for .ci/run and scripts/check.sh (sourced by both, after `cd` to the repo).
# A step lasts until the next `step` call or the end of the script. On exit, pass or fail, a table of
# step times and the total is printed, so the slow or the failing step is the last thing in the log.

_step_names=()
_step_seconds=()
_step_started=$SECONDS
_steps_started=$SECONDS
_steps_title="${0#./}"

_step_close() {
  if ((${#_step_names[@]} > ${#_step_seconds[@]})); then
    _step_seconds+=($((SECONDS - _step_started)))
  fi
}

_step_duration() {
  printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}

step() {
  _step_close
  _step_names+=("$*")
  _step_started=$SECONDS
  printf '\n==> %s\n' "$*"
}

_steps_summary() {
  local status=$? i
  _step_close
  printf '\n==> %s: step times\n' "$_steps_title"
  for i in "${!_step_names[@]}"; do
    printf '  %8s  %s\n' "$(_step_duration "${_step_seconds[$i]}")" "${_step_names[$i]}"
  done
  if ((status == 0)); then
    printf '  %8s  total\n' "$(_step_duration $((SECONDS - _steps_started)))"
  else
    printf '  %8s  total (stopped by a failure in the last step, exit %d)\n' \
      "$(_step_duration $((SECONDS - _steps_started)))" "$status"
  fi
}
trap _steps_summary EXIT
