// Open each staff page in Chromium as a person would and run axe-core on it.
// stdin: {"base": URL, "chromium": PATH, "visits": [{"name", "email", "password", "path",
//          "press": button name or null}]}; stdout: [{"name", "url", "violations": [...]}].
const fs = require('fs');
const { chromium } = require('playwright-core');

const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

async function visit(browser, base, v) {
  const context = await browser.newContext({ bypassCSP: true }); // only to inject axe
  const page = await context.newPage();
  if (v.email) {
    await page.goto(base + '/staff/login');
    await page.getByLabel('Email').fill(v.email);
    await page.getByLabel('Password').fill(v.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.goto(base + v.path);
  if (v.press) await page.getByRole('button', { name: v.press }).click();
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(() => axe.run(document, { resultTypes: ['violations'] }));
  const violations = result.violations.map(x => ({
    id: x.id, impact: x.impact, help: x.help,
    targets: x.nodes.map(n => n.target.join(' ')).slice(0, 5),
  }));
  const url = page.url();
  await context.close();
  return { name: v.name, url, violations };
}

(async () => {
  const job = JSON.parse(fs.readFileSync(0, 'utf8'));
  const browser = await chromium.launch({ executablePath: job.chromium, args: ['--no-sandbox'] });
  const out = [];
  try {
    for (const v of job.visits) out.push(await visit(browser, job.base, v));
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
})().catch(err => { console.error(err); process.exit(1); });
