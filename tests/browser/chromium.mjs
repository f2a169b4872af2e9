// Debian's Chromium (/usr/bin/chromium, or VIGIL_CHROMIUM), headless, through playwright-core:
// a test tool's own browser download cannot work here. Without the background-networking
// flags Chromium keeps trying the closed network.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.VIGIL_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
