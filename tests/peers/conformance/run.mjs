// Runs one invocation of the MCP conformance suite, then judges its results against the committed
// expected-failures list: a failing check is excused only when the list names its scenario (or the
// scenario and that check) with a reason; a listed failure that now passes fails the run too, so
// the list stays honest.
//
//   node run.mjs --label 2025-11-25 --out DIR -- server --url URL --requirements 2025-11-25
//   node run.mjs --label authorization --out DIR --echo -- authorization --url ISSUER ...
//
// `--echo` passes the suite's output through as it comes, for a driver that must act while the
// suite waits (the authorization-code grant prints a URL for a browser to open).
//
// `--label` picks the entries of expected-failures.json and names the run in the summary; what
// follows `--` goes to the suite unchanged, so other suite commands (such as `authorization
// --url ISSUER`) run the same way.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const suite = join(here, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');

function parseArgs(argv) {
  const split = argv.indexOf('--');
  if (split < 0) throw new Error('usage: run.mjs --label NAME --out DIR -- SUITE-ARGS...');
  const own = argv.slice(0, split);
  const options = { suiteArgs: argv.slice(split + 1) };
  for (let i = 0; i < own.length; i += 2) {
    if (own[i] === '--echo') {
      options.echo = true;
      i -= 1; // a flag: the next option starts right after it
      continue;
    }
    const [key, value] = [own[i], own[i + 1]];
    if (value === undefined) throw new Error(`${key} needs a value`);
    if (key === '--label') options.label = value;
    else if (key === '--out') options.out = value;
    else if (key === '--expected') options.expected = value;
    else throw new Error(`unknown option ${key}`);
  }
  if (!options.label || !options.out) throw new Error('--label and --out are required');
  options.expected ??= join(here, 'expected-failures.json');
  return options;
}

// The suite announces each scenario, then where it saved that scenario's checks; pairing the two
// lines gives scenario names as the suite spells them, whatever the folder naming.
function readResults(suiteOutput) {
  const scenarios = new Map();
  let current;
  for (const line of suiteOutput.split('\n')) {
    const running = line.match(/^=== Running scenario: (\S+) ===$/);
    if (running) current = running[1];
    const saved = line.match(/^Results saved to (.+)$/);
    if (saved && current) {
      const file = join(saved[1].trim(), 'checks.json');
      if (existsSync(file)) scenarios.set(current, JSON.parse(readFileSync(file, 'utf8')));
      current = undefined;
    }
  }
  return scenarios;
}

function loadExpected(file, label) {
  const all = JSON.parse(readFileSync(file, 'utf8'));
  const entries = all[label] ?? [];
  for (const entry of entries) {
    if (!entry.scenario || !entry.reason) {
      throw new Error(`${file}: every entry of "${label}" needs a scenario and a reason: ${JSON.stringify(entry)}`);
    }
  }
  return entries;
}

function judge(scenarios, expected) {
  const rows = [];
  const unexpected = [];
  const stale = [];
  const used = new Set();
  for (const [scenario, checks] of [...scenarios].sort(([a], [b]) => a.localeCompare(b))) {
    const failing = checks.filter((c) => c.status === 'FAILURE');
    const whole = expected.find((e) => e.scenario === scenario && !e.check);
    let verdict = 'pass';
    for (const check of failing) {
      const excuse = whole ?? expected.find((e) => e.scenario === scenario && e.check === check.id);
      if (excuse) {
        used.add(excuse);
        verdict = verdict === 'UNEXPECTED FAILURE' ? verdict : 'expected failure';
      } else {
        verdict = 'UNEXPECTED FAILURE';
        unexpected.push(`${scenario}:${check.id}: ${check.errorMessage ?? '(no message)'}`);
      }
    }
    const passed = checks.filter((c) => c.status === 'SUCCESS').length;
    const warned = checks.filter((c) => c.status === 'WARNING').length;
    rows.push({ scenario, verdict, passed, failed: failing.length, warned });
  }
  for (const entry of expected) {
    if (used.has(entry) || !scenarios.has(entry.scenario)) continue;
    const what = entry.check ? `${entry.scenario}:${entry.check}` : entry.scenario;
    const check = entry.check && scenarios.get(entry.scenario).find((c) => c.id === entry.check);
    // A listed check the scenario no longer reports cannot be judged; one that passes can.
    if (!entry.check || check) stale.push(`${what} now passes: remove it from expected-failures.json`);
  }
  return { rows, unexpected, stale };
}

/// Runs the suite to the end, collecting its output (and echoing it when asked).
function runSuite(args, echo) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [suite, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '', status: null, error: undefined };
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out.stdout += chunk;
      if (echo) process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk) => {
      out.stderr += chunk;
    });
    child.on('error', (error) => {
      out.error = error;
    });
    child.on('close', (status) => {
      out.status = status;
      resolve(out);
    });
  });
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  rmSync(options.out, { recursive: true, force: true });
  mkdirSync(options.out, { recursive: true });
  const run = await runSuite([...options.suiteArgs, '-o', options.out], options.echo);
  const log = join(options.out, 'suite.log');
  writeFileSync(log, `${run.stdout ?? ''}\n${run.stderr ?? ''}`);
  if (run.error) throw run.error;

  const scenarios = readResults(run.stdout ?? '');
  if (scenarios.size === 0) {
    console.error(`conformance ${options.label}: the suite produced no results (exit ${run.status}); its output is in ${log}`);
    process.exit(1);
  }
  const expected = loadExpected(options.expected, options.label);
  const { rows, unexpected, stale } = judge(scenarios, expected);

  const width = Math.max(...rows.map((r) => r.scenario.length));
  console.log(`conformance ${options.label} (${options.suiteArgs.join(' ')}):`);
  for (const row of rows) {
    const mark = row.verdict === 'pass' ? 'ok  ' : row.verdict === 'expected failure' ? 'xfail' : 'FAIL';
    const warned = row.warned ? `, ${row.warned} warning(s)` : '';
    const none = row.passed + row.failed === 0 ? ' (the scenario ran no checks)' : '';
    console.log(`  ${mark.padEnd(5)} ${row.scenario.padEnd(width)}  ${row.passed} checks passed, ${row.failed} failed${warned}${none}`);
  }
  const count = (verdict) => rows.filter((r) => r.verdict === verdict).length;
  const checksPassed = rows.reduce((n, r) => n + r.passed, 0);
  const checksFailed = rows.reduce((n, r) => n + r.failed, 0);
  console.log(
    `conformance ${options.label}: ${rows.length} scenarios: ${count('pass')} pass, ` +
      `${count('expected failure')} fail as expected (listed with reasons in expected-failures.json), ` +
      `${count('UNEXPECTED FAILURE')} fail unexpectedly; checks: ${checksPassed} pass, ${checksFailed} fail`,
  );
  for (const line of unexpected) console.error(`  unexpected failure: ${line}`);
  for (const line of stale) console.error(`  stale expected failure: ${line}`);
  if (unexpected.length || stale.length) {
    console.error(`conformance ${options.label}: see ${options.out} (suite.log and each scenario's checks.json)`);
    process.exit(1);
  }
}

await main();
