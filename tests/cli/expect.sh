#!/bin/sh
# usage: expect.sh EXIT_CODE REGEX COMMAND [ARGS...]
# Runs COMMAND, and fails unless it exits with EXIT_CODE and its combined
# output matches the extended regular expression REGEX.
expected_code=$1
pattern=$2
shift 2
output=$("$@" 2>&1)
code=$?
printf '%s\n' "$output"
if [ "$code" -ne "$expected_code" ]; then
  echo "expect.sh: exit code $code, expected $expected_code" >&2
  exit 1
fi
if ! printf '%s\n' "$output" | grep -Eq -- "$pattern"; then
  echo "expect.sh: output does not match /$pattern/" >&2
  exit 1
fi
