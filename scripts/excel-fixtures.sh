#!/usr/bin/env bash
# Regenerates the workbook fixtures: rust_xlsxwriter writes the .xlsx sources
# (examples/gen_excel_fixtures.rs), then LibreOffice (headless) opens each
# test source, computes its formulas and saves it as .ods, .xls and .xlsx under
# tests/fixtures/excel/libreoffice/. Commit the results; tests only read them.
#
# Needs LibreOffice Calc: `apt-get install libreoffice-calc-nogui`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --example gen_excel_fixtures
out=tests/fixtures/excel/libreoffice
mkdir -p "$out"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
for src in tests/fixtures/excel/{wide,long,bad}.xlsx; do
  for target in 'ods' 'xls:MS Excel 97' 'xlsx:Calc MS Excel 2007 XML'; do
    soffice -env:UserInstallation="file://$profile" --headless \
      --convert-to "$target" --outdir "$out" "$src" >/dev/null
  done
done
ls -l "$out"
