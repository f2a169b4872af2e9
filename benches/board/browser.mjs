// One browser on the board's overview for a duration: when the page showed each change
// (window.vigilApplied, set by board.js once the swapped-in rows are in the DOM).
// Usage: node browser.mjs URL SECONDS
import { launch } from "../../tests/browser/chromium.mjs";

const [url, seconds] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url);
  await page.waitForTimeout(Number(seconds) * 1000);
  const applied = await page.evaluate(() => window.vigilApplied);
  const rows = await page.locator("#patients tbody tr").count();
  console.log(JSON.stringify({ rows, applied }));
} finally {
  await browser.close();
}
