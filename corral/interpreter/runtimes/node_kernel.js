// corral's JavaScript/TypeScript kernel: run with `node -e <this file's text> <language> <ts-module>`.
//
// Protocol: one JSON request a line on stdin ({"code", "env"}); events go to fd 3 as JSON lines
// ({"type":"ready"|"result"|"error"|"done"}); user output stays on the real stdout/stderr, which
// are pipes and therefore written synchronously by node, so everything a cell printed is in the
// pipe before its "done" line is written.
//
// State: cells run as classic scripts in this realm, so top-level const/let/class of one cell are
// visible to the next (the realm's global lexical scope) and the script's completion value is
// the cell's value. A cell using top-level await cannot be a script: it is parsed with the
// TypeScript compiler API, its top-level declarations become assignments to globals, its last
// expression becomes the return value, and it runs inside an async function.
(function () {
  'use strict';
  const fs = require('fs');
  const vm = require('vm');
  const util = require('util');
  const Module = require('module');
  const readline = require('readline');

  const language = process.argv[1] || 'javascript';
  const tsPath = process.argv[2] || 'typescript';
  let ts = null;
  let cellNumber = 0;
  let interruptCurrent = null;

  function loadTs() {
    if (ts === null) ts = require(tsPath);
    return ts;
  }

  function send(event) {
    fs.writeSync(3, JSON.stringify(event) + '\n');
  }

  globalThis.require = Module.createRequire(process.cwd() + '/');
  globalThis.module = { exports: {} };
  globalThis.exports = globalThis.module.exports;

  function transpile(code) {
    const t = loadTs();
    const out = t.transpileModule(code, {
      reportDiagnostics: true,
      compilerOptions: {
        target: t.ScriptTarget.ES2022,
        module: t.ModuleKind.CommonJS,
        esModuleInterop: true,
        sourceMap: false,
        alwaysStrict: false,
        noImplicitUseStrict: true,
      },
    });
    const errors = (out.diagnostics || []).filter((d) => d.category === t.DiagnosticCategory.Error);
    if (errors.length) {
      const text = errors.map((d) => t.flattenDiagnosticMessageText(d.messageText, '\n')).join('\n');
      const err = new SyntaxError(text);
      err.name = 'TypeScriptError';
      throw err;
    }
    return out.outputText.replace(/^"use strict";\s*/, '');
  }

  function bindingNames(t, node, out) {
    if (t.isIdentifier(node)) out.push(node.text);
    else if (t.isObjectBindingPattern(node) || t.isArrayBindingPattern(node)) {
      for (const el of node.elements) if (!t.isOmittedExpression(el)) bindingNames(t, el.name, out);
    }
  }

  // Rewrites a cell with top-level await into the body of an async function.
  function asyncBody(code) {
    const t = loadTs();
    const sf = t.createSourceFile('cell.js', code, t.ScriptTarget.Latest, true, t.ScriptKind.JS);
    const src = (node) => code.slice(node.getStart(sf), node.end);
    const parts = [];
    sf.statements.forEach((st, i) => {
      const last = i === sf.statements.length - 1;
      if (t.isVariableStatement(st)) {
        const assigns = [];
        for (const d of st.declarationList.declarations) {
          if (d.initializer) assigns.push('(' + src(d.name) + ' = (' + src(d.initializer) + '))');
          else {
            const names = [];
            bindingNames(t, d.name, names);
            for (const n of names) assigns.push('(' + n + ' = undefined)');
          }
        }
        if (assigns.length) parts.push('void (' + assigns.join(', ') + ');');
      } else if (t.isFunctionDeclaration(st) && st.name) {
        parts.push(src(st) + '\nglobalThis[' + JSON.stringify(st.name.text) + '] = ' + st.name.text + ';');
      } else if (t.isClassDeclaration(st) && st.name) {
        parts.push(st.name.text + ' = ' + src(st) + ';');
      } else if (last && t.isExpressionStatement(st)) {
        parts.push('return (' + src(st.expression) + ');');
      } else {
        parts.push(src(st));
      }
    });
    return '(async function () {\n' + parts.join('\n') + '\n}).call(globalThis)';
  }

  function interruptible(promise) {
    return new Promise((resolve, reject) => {
      interruptCurrent = () => {
        const err = new Error('Execution interrupted');
        err.name = 'KeyboardInterrupt';
        reject(err);
      };
      promise.then(resolve, reject);
    }).finally(() => { interruptCurrent = null; });
  }

  process.on('SIGINT', () => { if (interruptCurrent) interruptCurrent(); });

  // ES-module `import` declarations in a JavaScript cell become require() calls bound with
  // `var`, so the names stay visible to later cells as every other top-level binding does:
  // `import x from 'm'` (the module's default export, or the module itself for CommonJS),
  // `import * as ns from 'm'`, `import { a, b as c } from 'm'`, `import 'm'`. Node resolves 'm'
  // from the context's cwd. ES-module-only packages load with `await import('m')`.
  function rewriteImports(code) {
    const t = loadTs();
    const sf = t.createSourceFile('cell.js', code, t.ScriptTarget.Latest, true, t.ScriptKind.JS);
    let out = '';
    let at = 0;
    let changed = false;
    sf.statements.forEach((st, i) => {
      if (!t.isImportDeclaration(st) || !t.isStringLiteral(st.moduleSpecifier)) return;
      const spec = JSON.stringify(st.moduleSpecifier.text);
      const clause = st.importClause;
      const tmp = '__corral_import_' + cellNumber + '_' + i;
      let text;
      if (!clause) text = 'require(' + spec + ');';
      else {
        const parts = ['var ' + tmp + ' = require(' + spec + ');'];
        if (clause.name) {
          parts.push('var ' + clause.name.text + ' = ' + tmp + ' && ' + tmp + '.__esModule ? ' + tmp + '.default : ' + tmp + ';');
        }
        const nb = clause.namedBindings;
        if (nb && t.isNamespaceImport(nb)) parts.push('var ' + nb.name.text + ' = ' + tmp + ';');
        else if (nb) {
          for (const el of nb.elements) {
            const from = (el.propertyName || el.name).text;
            parts.push('var ' + el.name.text + ' = ' + tmp + '[' + JSON.stringify(from) + '];');
          }
        }
        text = parts.join(' ');
      }
      out += code.slice(at, st.getStart(sf)) + text;
      at = st.end;
      changed = true;
    });
    return changed ? out + code.slice(at) : null;
  }

  // `import()` inside a cell: resolved from the cwd like require(), then loaded by node itself.
  function importDynamically(specifier) {
    let target = specifier;
    try {
      const resolved = globalThis.require.resolve(specifier);
      if (resolved.startsWith('/')) target = require('url').pathToFileURL(resolved).href;
    } catch (_) { /* a builtin, or an ES-module-only package: let node resolve it */ }
    return import(target);
  }

  function compile(code, filename) {
    return new vm.Script(code, { filename, importModuleDynamically: importDynamically });
  }

  async function evaluate(code) {
    const filename = 'cell[' + cellNumber + ']';
    let script;
    try {
      script = compile(code, filename);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      const message = String(err.message);
      if (/import statement|\bimport\b/.test(message) && language === 'javascript') {
        const rewritten = rewriteImports(code);
        if (rewritten !== null) return evaluate(rewritten);
      }
      if (!/await/.test(message)) throw err;
      const wrapped = compile(asyncBody(code), filename);
      return interruptible(wrapped.runInThisContext({ breakOnSigint: true, displayErrors: false }));
    }
    return script.runInThisContext({ breakOnSigint: true, displayErrors: false });
  }

  function display(value) {
    if (value === undefined) return null;
    const bundle = { 'text/plain': typeof value === 'string' ? "'" + value + "'" : util.inspect(value, { depth: 4 }) };
    if (value !== null && typeof value === 'object') {
      if (typeof value._toHtml === 'function') bundle['text/html'] = String(value._toHtml());
      if (typeof value.toJSON !== 'function' && !Array.isArray(value)) {
        try { bundle['application/json'] = JSON.parse(JSON.stringify(value)); } catch (_) { /* not JSON */ }
      }
    }
    return bundle;
  }

  async function runCell(req) {
    cellNumber += 1;
    const env = req.env || {};
    const saved = {};
    for (const k of Object.keys(env)) { saved[k] = process.env[k]; process.env[k] = env[k]; }
    try {
      const code = language === 'typescript' ? transpile(req.code) : req.code;
      const value = await evaluate(code);
      const bundle = display(value);
      if (bundle) send({ type: 'result', data: bundle, main: true });
    } catch (err) {
      const isErr = err instanceof Error || (err && typeof err === 'object' && 'stack' in err);
      let name = isErr ? (err.name || 'Error') : 'Error';
      let value = isErr ? String(err.message) : util.inspect(err);
      if (isErr && /Script execution (was )?interrupted/.test(value)) { name = 'KeyboardInterrupt'; }
      send({ type: 'error', name, value, traceback: isErr && err.stack ? String(err.stack) : name + ': ' + value });
    } finally {
      for (const k of Object.keys(saved)) {
        if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
      }
      send({ type: 'done' });
    }
  }

  process.on('unhandledRejection', (reason) => {
    process.stderr.write('Unhandled promise rejection: ' + util.inspect(reason) + '\n');
  });
  process.on('uncaughtException', (err) => {
    process.stderr.write('Uncaught exception: ' + (err && err.stack ? err.stack : util.inspect(err)) + '\n');
  });

  const queue = [];
  let busy = false;
  async function pump() {
    if (busy) return;
    busy = true;
    while (queue.length) await runCell(queue.shift());
    busy = false;
  }
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  rl.on('line', (line) => {
    if (!line) return;
    let req;
    try { req = JSON.parse(line); } catch (_) { return; }
    queue.push(req);
    pump();
  });
  rl.on('close', () => process.exit(0));
  if (language === 'typescript') loadTs();
  send({ type: 'ready' });
})();
