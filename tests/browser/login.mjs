// Signs in to Vigil's ward board over HTTPS in Debian's headless Chromium, as a clinician
// would: the board sends them to the sign-in page, they sign in, see their ward's patients,
// acknowledge an alert (the form carries the session's CSRF token), find another ward's
// patient refused, and sign out. The certificate is the test's own CA's, which Chromium does
// not know: the context ignores that, nothing else. A JSON line on stdout says what it saw.
// Usage: node login.mjs URL NAME PASSWORD OTHER_PATIENT OUT_DIR
import { launch } from "./chromium.mjs";

const [url, name, password, other, out] = process.argv.slice(2);
const browser = await launch();
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(url);
  const redirected = new URL(page.url()).pathname;
  await page.fill("input[name=name]", name);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click("button[type=submit]")]);
  await page.waitForFunction(() => document.getElementById("status").textContent === "live");
  const who = (await page.locator("form.who").textContent()).trim();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "vigil_session");
  // A row of theirs with an alert to acknowledge, as the live stream brings it.
  const row = page.locator("#patients tr:has(form.ack)").first();
  await row.waitFor({ timeout: 120_000 });
  const rows = await page.locator("#patients tr[data-patient]").evaluateAll((trs) => trs.map((tr) => tr.dataset.patient));
  const patient = await row.getAttribute("data-patient");
  await page.screenshot({ path: `${out}/signed-in-overview.png` });

  await page.goto(new URL(`/patients/${encodeURIComponent(patient)}`, url).href);
  await page.waitForFunction(() => document.getElementById("status").textContent === "live");
  const form = page.locator("ol.alerts form.ack").first();
  await form.waitFor({ timeout: 60_000 });
  const alertId = (await form.locator("xpath=ancestor::li[1]").getAttribute("id")).slice(2);
  const button = (await form.locator("button").textContent()).trim();
  await form.locator("input[name=note]").fill("seen at the bedside");
  await form.locator("button").click();
  const acked = page.locator(`li#a-${alertId} .acked`);
  await acked.waitFor({ timeout: 120_000 });
  const ackText = (await acked.textContent()).trim();

  const refused = await page.goto(new URL(`/patients/${encodeURIComponent(other)}`, url).href);
  const otherStatus = refused.status();

  await page.goto(url);
  await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click("form.who button")]);
  await page.goto(url);
  const afterSignOut = new URL(page.url()).pathname;
  console.log(JSON.stringify({ redirected, who, session: session && { secure: session.secure,
    httpOnly: session.httpOnly, sameSite: session.sameSite }, rows, patient, alertId, button,
    ackText, otherStatus, afterSignOut }));
} finally {
  await browser.close();
}
