// The upload page in headless Chromium (Playwright driving Debian's
// chromium): sign in with a bureau's token, upload a bad workbook and see
// its errors by cell, upload 人社.xlsx and see the preview table, confirm.
// Usage: node upload.mjs URL TOKEN GOOD.xlsx BAD.xlsx MAPPING WHOLE_MAPPING OUT_DIR
// (MAPPING reads only the bureau's own indicators; WHOLE_MAPPING also
// another bureau's, which must be refused with their cells.)
// Prints one `ok`/`FAIL` line per check; exits 1 on any failure.
import { chromium } from "playwright-core";

const [url, token, good, bad, mappingName, wholeMapping, out] = process.argv.slice(2);
let failed = 0;
const check = (ok, what) => {
  console.log(`  ${ok ? "ok  " : "FAIL"}  ${what}`);
  if (!ok) failed++;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
const consoleLines = [];
// Chromium logs each 4xx answer (a wrong token: 401; a preview with errors:
// 422) and a DOM hint about password forms: expected; anything else (a CSP
// violation, a script) fails.
const expected = /^(verbose: |error: Failed to load resource: the server responded with a status of (401|422) )/;
page.on("console", (m) => {
  const line = `${m.type()}: ${m.text()}`;
  if (!expected.test(line)) consoleLines.push(line);
});
try {
  await page.goto(`${url}/upload`);
  check(page.url().startsWith(`${url}/login`), `not signed in: /upload leads to the sign-in form (${page.url()})`);
  await page.fill("#token", "wrong-token");
  await page.click("button[type=submit]");
  check((await page.textContent("body")).includes("口令不正确"), "a wrong token is refused in Chinese");
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  check(page.url() === `${url}/upload`, "signed in: back on /upload");
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "rw_session");
  check(session && session.httpOnly && session.sameSite === "Strict", "session cookie is HttpOnly, SameSite=Strict");
  check((await page.textContent("body")).includes("已登录：人社局"), "the page names the bureau");
  await page.screenshot({ path: `${out}/upload-form.png`, fullPage: true });

  // A bad workbook (long form): every error with its cell, nothing to confirm.
  await page.setInputFiles("#file", bad);
  await page.selectOption("#mapping", "");
  await page.click("form.box button[type=submit]");
  const badText = await page.textContent("body");
  check(badText.includes("本文件的数据均未保存"), "bad workbook: nothing stored");
  check(/bad\.xlsx:Sheet1![A-Z]+[0-9]+/.test(badText), "bad workbook: an error names its cell (bad.xlsx:Sheet1!…)");
  check((await page.$("input[name=upload]")) === null, "bad workbook: no confirm button");
  await page.screenshot({ path: `${out}/upload-errors.png`, fullPage: true });

  // 人社.xlsx read whole: the 医保 sheet is another bureau's, refused by cell.
  await page.goto(`${url}/upload`);
  await page.setInputFiles("#file", good);
  await page.selectOption("#mapping", wholeMapping);
  await page.click("form.box button[type=submit]");
  const refused = await page.textContent("body");
  check(/人社\.xlsx:医保季报![A-Z]+[0-9]+：“城乡居民医保参保率”不是人社局负责报送的指标/.test(refused),
    "another bureau's indicator is refused with its cell");
  check((await page.$("input[name=upload]")) === null, "refused: no confirm button");
  await page.screenshot({ path: `${out}/upload-refused.png` });

  // 人社.xlsx through 人社局's mapping: the preview table, then confirm.
  await page.goto(`${url}/upload`);
  await page.setInputFiles("#file", good);
  await page.selectOption("#mapping", mappingName);
  await page.click("form.box button[type=submit]");
  const heads = await page.$$eval("thead th", (ths) => ths.map((t) => t.textContent));
  check(JSON.stringify(heads) === JSON.stringify(["指标", "对象", "时间", "数值", "来源单元格"]), `preview table headers: ${heads}`);
  const rows = await page.$$eval("tbody tr", (trs) => trs.map((t) => t.textContent));
  check(rows.length > 10, `preview rows: ${rows.length}`);
  check(rows.some((r) => r.includes("城镇登记失业率") && r.includes("2021年月报!")), "a row shows the indicator's Chinese name and its source cell");
  await page.screenshot({ path: `${out}/upload-preview.png`, fullPage: false });
  await page.click("button:has-text(\"确认保存\")");
  await page.waitForLoadState();
  const stored = await page.textContent("body");
  check(stored.includes("已保存"), `confirmed: ${stored.match(/已保存[^。]*。/)?.[0]}`);
  await page.screenshot({ path: `${out}/upload-stored.png` });
} catch (e) {
  check(false, `browser run: ${e}`);
}
check(consoleLines.length === 0, `no console output${consoleLines.map((l) => "\n        " + l).join("")}`);
await browser.close();
process.exit(failed ? 1 : 0);
