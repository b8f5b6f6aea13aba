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
export SAL_USE_VCLPLUGIN=svp
out=tests/fixtures/excel/libreoffice
mkdir -p "$out"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# Recalculate every formula on loading (LibreOffice's default keeps the saved
# results, and rust_xlsxwriter saves 0 placeholders), as Excel would.
mkdir -p "$profile/user"
cat > "$profile/user/registrymodifications.xcu" <<'XCU'
<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
XCU
for src in tests/fixtures/excel/{wide,long,bad}.xlsx; do
  for target in 'ods' 'xls:MS Excel 97' 'xlsx:Calc MS Excel 2007 XML'; do
    soffice -env:UserInstallation="file://$profile" --headless \
      --convert-to "$target" --outdir "$out" "$src" >/dev/null
  done
done
ls -l "$out"
