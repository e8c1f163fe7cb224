// Screenshots of a running Aspire Dashboard with headless Chromium: its Traces page and the detail of one
// trace (by default the one with the most spans whose root span's name contains "SubmitResults": the lab
// order's results, through every hop). How the README's pictures were taken (deploy/local/README.md):
//
//   apt-get install -y chromium
//   npm install --prefix /tmp/playwright playwright-core@1.65.1     # the library only, no browser download
//   NODE_PATH=/tmp/playwright/node_modules node tools/Aspire.Dashboard/screenshot.cjs http://127.0.0.1:18888 docs/img
//
// Arguments: the dashboard's UI address, the output folder, and optionally the root span name to pick
// (SubmitResults). CHROMIUM names the browser (/usr/bin/chromium). Waits for the page's content, bounded.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('node:fs');
const path = require('node:path');

async function main() {
  const [ui = 'http://127.0.0.1:18888', out = '.', rootName = 'SubmitResults'] = process.argv.slice(2);
  fs.mkdirSync(out, { recursive: true });

  // The trace to open, from the dashboard's telemetry API: most spans among those whose root matches.
  const response = await fetch(`${ui}/api/telemetry/traces?limit=100000`);
  if (!response.ok) throw new Error(`${ui}/api/telemetry/traces answered ${response.status}`);
  const body = await response.json();
  const spans = new Map(); // traceId -> count
  const roots = new Map(); // traceId -> root span name
  for (const resource of body.data.resourceSpans) {
    for (const scope of resource.scopeSpans) {
      for (const span of scope.spans) {
        spans.set(span.traceId, (spans.get(span.traceId) ?? 0) + 1);
        if (!span.parentSpanId) roots.set(span.traceId, span.name);
      }
    }
  }
  const candidates = [...roots].filter(([, name]) => name.includes(rootName)).map(([id, name]) => ({ id, name, spans: spans.get(id) }));
  candidates.sort((a, b) => b.spans - a.spans);
  if (candidates.length === 0) throw new Error(`no trace has a root span named like ${rootName}; run the demo first`);
  const trace = candidates[0];
  console.log(`trace ${trace.id}: ${trace.name}, ${trace.spans} spans`);

  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 }, deviceScaleFactor: 1, colorScheme: 'light' });

    await page.goto(`${ui}/traces`);
    // Only the traces whose name contains rootName: background work (the outbox relay's queries) can fill the list.
    // The filter applies once the page's live connection is up: typed too early, it is lost, so type it again until
    // a matching row shows (bounded).
    const search = page.locator('input[name="traces-search"]');
    const deadline = Date.now() + 60000;
    for (;;) {
      await search.fill('');
      await search.pressSequentially(rootName);
      try {
        await page.getByText(rootName).first().waitFor({ timeout: 3000 });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
    }
    await page.screenshot({ path: path.join(out, 'aspire-dashboard-traces.png') });

    // Tall enough for every span row: the detail grid scrolls inside the page, so a full-page shot alone would cut it.
    await page.setViewportSize({ width: 1600, height: Math.min(260 + 32 * trace.spans, 3000) });
    await page.goto(`${ui}/traces/detail/${trace.id}`);
    await page.getByText(trace.name).first().waitFor({ timeout: 30000 });
    // The span rows render as the page settles; wait for the last one's service to show rather than for a fixed time.
    await page.waitForFunction((count) => document.querySelectorAll('[role="row"]').length >= count, Math.min(trace.spans, 10), { timeout: 30000 });
    await page.screenshot({ path: path.join(out, 'aspire-dashboard-trace.png'), fullPage: true });
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
