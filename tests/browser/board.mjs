// Drives Vigil's ward board in Debian's headless Chromium, as a clinician would: opens the
// overview, waits for a patient to deteriorate (a medium or high band appearing live), opens
// their page, acknowledges the alert, and waits until the board shows the acknowledgement
// (which has gone through the engine). Screenshots go to OUT_DIR; a JSON line on stdout says
// what it did. Usage: node board.mjs URL OUT_DIR
import { launch } from "./chromium.mjs";

const [url, out] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("status").textContent === "live");
  const loadedAt = Number(await page.locator("body").getAttribute("data-last-id"));
  // A deterioration, live: the row of a medium or high band, swapped in by the live stream.
  const row = page.locator("tr.band-medium, tr.band-high").first();
  await row.waitFor({ timeout: 180_000 });
  const patient = await row.getAttribute("data-patient");
  const applied = await page.evaluate(() => window.vigilApplied.length);
  const band = (await row.locator("td.band").textContent()).trim();
  await page.screenshot({ path: `${out}/board-deterioration.png`, fullPage: false });

  // Their page, at a phone's width: charts and the alert history with its evidence.
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await phone.goto(new URL(`/patients/${encodeURIComponent(patient)}`, url).href);
  await phone.waitForFunction(() => document.getElementById("status").textContent === "live");
  const form = phone.locator("ol.alerts form.ack").first();
  await form.waitFor({ timeout: 60_000 });
  const item = form.locator("xpath=ancestor::li[1]");
  const alertId = (await item.getAttribute("id")).slice(2);
  const charts = await phone.locator("figure.chart svg").count();
  const evidenceRows = await item.locator("table.evidence tr").count();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  await form.locator("input[name=by]").fill("Dr Test");
  await form.locator("input[name=note]").fill("seen at the bedside");
  await form.locator("button").click();
  const acked = phone.locator(`li#a-${alertId} .acked`);
  await acked.waitFor({ timeout: 120_000 });
  const ackText = (await acked.textContent()).trim();
  await phone.screenshot({ path: `${out}/patient-acknowledged.png`, fullPage: true });
  console.log(JSON.stringify({ loadedAt, patient, band, applied, alertId, charts, evidenceRows,
    overflow, ackText }));
} finally {
  await browser.close();
}
