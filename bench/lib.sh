# Shared by the bench scripts (sourced): the Python references' pinned environments.

# bench_venv REQUIREMENTS NAME: prints the path of a virtual environment holding exactly the
# pinned packages of REQUIREMENTS (`pip install --no-deps -r`, then `pip check`), made once under
# ~/.cache/mlops-bench-NAME-<hash of the file> (a changed file makes a new one).
bench_venv() {
  local req="$1" name="$2" venv
  venv="$HOME/.cache/mlops-bench-$name-$(sha256sum "$req" | cut -c1-16)"
  test -f "$venv/.complete" || {
    echo "creating the reference's environment $venv from $req" >&2
    rm -rf "$venv" && python3 -m venv "$venv" &&
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv --no-deps -r "$req" >&2 &&
      "$venv/bin/python" -m pip check >&2 && touch "$venv/.complete"
  }
  echo "$venv"
}
