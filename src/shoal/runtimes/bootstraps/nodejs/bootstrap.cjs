'use strict';
/**
 * Shoal's Node.js language bootstrap: a Lambda Runtime API (2018-06-01) client.
 *
 * Started by the platform as `node [flags] bootstrap.cjs` inside the sandbox, with the working directory set to
 * the function's code and the reserved environment variables of a Lambda execution environment. It behaves like
 * the AWS Node.js runtime (aws-lambda-nodejs-runtime-interface-client, as used by nodejs18.x-22.x): handler
 * resolution (CommonJS and ES modules), the callback / promise programming model with
 * `context.callbackWaitsForEmptyEventLoop`, the error shapes (`trace`), the context object and the console log
 * format.
 *
 * It uses only Node's built-in modules and is on the cold-start path: everything it needs at start-up except
 * `net` is already in Node's own start-up snapshot (`fs`, `path`, `util`); the rest is loaded when
 * first needed.
 *
 * Invocation flow (as AWS's runtime): `/next` → call the handler → the result is posted when
 *   - a returned promise settles (async handlers never wait for the event loop);
 *   - the callback is called: at once when `callbackWaitsForEmptyEventLoop` is false, else when Node's event
 *     loop has nothing left to run ('beforeExit');
 *   - neither: when the event loop empties, `null` (or `Runtime.NodeJsExit` for an `async` handler whose promise
 *     never settled).
 * An uncaught exception or unhandled rejection is posted as the error of the current invocation (or of INIT) and
 * the process exits, as on AWS.
 *
 * Output written to stdout/stderr by Node is synchronous for pipes on Linux, so everything logged before a POST
 * is in the pipe when the platform drains it.
 */

const fs = require('fs');
const path = require('path');
const util = require('util');

const API_PREFIX = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const REQUEST_ID_SYMBOL = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID_SYMBOL = Symbol.for('aws.lambda.runtime.tenantId');
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';
const USER_AGENT = `aws-lambda-nodejs/${process.version}-shoal`;

// `require` for the function's modules. AWS's runtime is /var/runtime/index.mjs and requires user code through
// createRequire(import.meta.url): naming the same file here makes "Require stack:" in module-not-found messages
// read as on AWS. The file itself need not exist. (`module.constructor` is Module: requiring the public 'module'
// would load more of Node at start-up.)
const requireUser = module.constructor.createRequire(path.join(__dirname, 'index.mjs'));

// ------------------------------------------------------------------------------------------------------------
// Errors (the runtime's own types are named `Runtime.<Class>`, as AWS names them)

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class MalformedStreamingHandler extends Error {}
class InvalidStreamingOperation extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a ' +
        'Promise that was never settled. For more information, see ' +
        'https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
for (const cls of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  MalformedStreamingHandler,
  InvalidStreamingOperation,
  NodeJsExit,
  UnhandledPromiseRejection,
]) {
  cls.prototype.name = `Runtime.${cls.name}`;
}

function looksLikeError(obj) {
  return (
    obj &&
    typeof obj.name === 'string' &&
    typeof obj.message === 'string' &&
    typeof obj.stack === 'string' &&
    obj.name &&
    obj.message &&
    obj.stack
  );
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

/** The body posted to the Runtime API for an error: `{errorType, errorMessage, trace}`. */
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || looksLikeError(error)) {
      return {
        errorType: error.name?.replaceAll('\x7F', '%7F'),
        errorMessage: error.message?.replaceAll('\x7F', '%7F'),
        trace: error.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its ' +
        'message, name, and stack',
    };
  }
}

/** Errors with their non-enumerable name/message/stack made visible, for the text log format. */
function withEnumerableProperties(value) {
  if (!(value instanceof Error)) return value;
  const out = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
  if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
  return out;
}

function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

function serialize(body) {
  try {
    return JSON.stringify(body === undefined ? null : body);
  } catch (_) {
    throw new Error('Unable to stringify response body');
  }
}

// ------------------------------------------------------------------------------------------------------------
// Console: `<ISO time>\t<request id>\t<LEVEL>\t<message>` (or JSON), one line per record

const LEVELS = {
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
};

const structuredConsole = { logError: null };

function currentRequestId() {
  return globalThis[REQUEST_ID_SYMBOL];
}

function jsonErrorReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value?.constructor?.name ?? 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
}

function formatJson(level, params) {
  const record = { timestamp: new Date().toISOString(), level: level.name, requestId: currentRequestId() };
  if (params.length === 1) {
    record.message = params[0];
    try {
      return JSON.stringify(record, jsonErrorReplacer);
    } catch (_) {
      record.message = util.format(record.message);
      return JSON.stringify(record);
    }
  }
  record.message = util.format(...params);
  for (const param of params) {
    if (param instanceof Error) {
      record.errorType = param?.constructor?.name ?? 'UnknownError';
      record.errorMessage = param.message;
      record.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(record);
}

function formatText(level, params) {
  return `${new Date().toISOString()}\t${currentRequestId()}\t${level.name}\t${util.format(...params)}`;
}

function patchConsole() {
  const json = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const format = json ? formatJson : formatText;
  const minimum = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] ?? LEVELS.TRACE;
  // one log event per record: inner newlines become \r (the platform splits events on \n)
  const write = (level) => (message, ...params) => {
    process.stdout.write(format(level, [message, ...params]).replace(/\n/g, '\r') + '\n');
  };
  const nop = () => {};
  const logger = (level) => (level.priority >= minimum.priority ? write(level) : nop);
  console.trace = logger(LEVELS.TRACE);
  console.debug = logger(LEVELS.DEBUG);
  console.info = logger(LEVELS.INFO);
  console.log = console.info;
  console.warn = logger(LEVELS.WARN);
  console.error = logger(LEVELS.ERROR);
  console.fatal = write(LEVELS.FATAL);
  structuredConsole.logError = json
    ? (_message, err) => console.error(intoError(err))
    : (message, err) => console.error(message, toFormatted(intoError(err)));
}

// ------------------------------------------------------------------------------------------------------------
// Runtime API client: HTTP/1.1 over a keep-alive `net` connection. Node's `http` would do, but it costs ~3 ms
// more of every cold start (measured: docs/runtimes/nodejs.md); the Runtime API is four calls.

class HttpConnection {
  /** One keep-alive connection carrying one request at a time. Idle, it is unref'd: it must not keep the event
   * loop alive (the callback model waits for the loop to empty). */
  constructor(net, host, port, address) {
    this.address = address;
    this.open = true;
    this.busy = false;
    this.used = false; // a response came back on it: a failure before any byte may be a stale keep-alive
    this.gotBytes = false;
    this.buf = Buffer.allocUnsafe(65536);
    this.len = 0;
    this.pending = null;
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })));
  }

  request(method, urlPath, body, headers) {
    return new Promise((resolve, reject) => {
      this.busy = true;
      this.gotBytes = false;
      this.pending = { resolve, reject, head: null, at: 0, length: -1, chunked: false, parts: [] };
      let head = `${method} ${urlPath} HTTP/1.1\r\nHost: ${this.address}\r\nUser-Agent: ${USER_AGENT}\r\n`;
      if (body !== undefined) head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
      for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
      const socket = this.socket;
      socket.ref();
      socket.cork();
      socket.write(head + '\r\n', 'latin1');
      if (body !== undefined && body.length > 0) socket.write(body);
      socket.uncork();
    });
  }

  onData(chunk) {
    this.gotBytes = true;
    if (this.len + chunk.length > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + chunk.length));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.len);
    this.len += chunk.length;
    if (this.pending !== null) this.parse(this.pending);
  }

  parse(p) {
    const data = this.buf.subarray(0, this.len);
    while (p.head === null) {
      const end = data.indexOf('\r\n\r\n', p.at, 'latin1');
      if (end < 0) return;
      const lines = data.toString('latin1', p.at, end).split('\r\n');
      const status = /^HTTP\/1\.(\d) (\d{3})/.exec(lines[0]);
      if (status === null) {
        this.fail(new Error(`malformed response from the Runtime API: ${JSON.stringify(lines[0])}`));
        this.close();
        return;
      }
      const code = +status[2];
      if (code >= 100 && code < 200) {
        p.at = end + 4; // an interim response: the real one follows
        continue;
      }
      const headers = {};
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(':');
        if (colon > 0) headers[lines[i].slice(0, colon).trim().toLowerCase()] = lines[i].slice(colon + 1).trim();
      }
      const keepAlive = status[1] === '1' && !/close/i.test(headers.connection || '');
      p.head = { status: code, headers, keepAlive };
      p.at = end + 4;
      if (/chunked/i.test(headers['transfer-encoding'] || '')) p.chunked = true;
      else if (headers['content-length'] !== undefined) p.length = parseInt(headers['content-length'], 10);
      else if (code === 204 || code === 304) p.length = 0;
    }
    if (p.chunked) {
      for (;;) {
        const eol = data.indexOf('\r\n', p.at, 'latin1');
        if (eol < 0) return;
        const size = parseInt(data.toString('latin1', p.at, eol).split(';')[0], 16);
        if (Number.isNaN(size)) {
          this.fail(new Error('malformed chunked response from the Runtime API'));
          this.close();
          return;
        }
        if (size === 0) {
          const end = data.indexOf('\r\n\r\n', eol, 'latin1'); // after the trailers, if any
          if (end < 0) return;
          this.finish(Buffer.concat(p.parts), end + 4);
          return;
        }
        if (this.len < eol + 2 + size + 2) return;
        p.parts.push(data.subarray(eol + 2, eol + 2 + size));
        p.at = eol + 2 + size + 2;
      }
    }
    if (p.length >= 0 && this.len - p.at >= p.length) this.finish(data.subarray(p.at, p.at + p.length), p.at + p.length);
  }

  /** The response is complete: its body (a view of this.buf, which is handed over) and where the next starts. */
  finish(body, consumed) {
    const p = this.pending;
    const rest = this.buf.subarray(consumed, this.len);
    this.buf = Buffer.allocUnsafe(Math.max(65536, rest.length));
    rest.copy(this.buf);
    this.len = rest.length;
    this.pending = null;
    this.busy = false;
    this.used = true;
    if (p.head.keepAlive) this.socket.unref();
    else this.close();
    p.resolve({ status: p.head.status, headers: p.head.headers, body });
  }

  fail(err) {
    this.open = false;
    const p = this.pending;
    if (p === null) return;
    this.pending = null;
    this.busy = false;
    if (p.head !== null && p.length < 0 && !p.chunked && err.code === 'ECONNRESET') {
      // a body delimited by the end of the connection
      p.resolve({ status: p.head.status, headers: p.head.headers, body: Buffer.from(this.buf.subarray(p.at, this.len)) });
      return;
    }
    err.retriable = this.used && !this.gotBytes;
    p.reject(err);
  }

  close() {
    this.open = false;
    this.socket.destroy();
  }
}

class RuntimeClient {
  constructor(address) {
    const colon = address.lastIndexOf(':');
    let host = colon > 0 ? address.slice(0, colon) : address;
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    this.net = require('net');
    this.address = address;
    this.hostname = host;
    this.port = colon > 0 ? parseInt(address.slice(colon + 1), 10) : 80;
    this.connection = null;
  }

  /** One request; resolves to {status, headers (lower-case names), body (Buffer)}. A request made while another
   * is in flight (an uncaught exception reported during /next) gets a connection of its own. A keep-alive
   * connection the server closed under us is retried once on a fresh one. */
  request(method, urlPath, body, headers, retried) {
    let conn = this.connection;
    if (conn === null || !conn.open || conn.busy) {
      conn = new HttpConnection(this.net, this.hostname, this.port, this.address);
      if (this.connection === null || !this.connection.open) this.connection = conn;
    }
    const response = conn.request(method, urlPath, body, headers);
    if (conn !== this.connection) response.then(() => conn.close(), () => conn.close());
    return response.catch((err) => {
      if (!retried && err.retriable) return this.request(method, urlPath, body, headers, true);
      throw err;
    });
  }

  async nextInvocation() {
    const res = await this.request('GET', `${API_PREFIX}/invocation/next`);
    if (res.status !== 200) {
      throw new Error(`Failed to get next invocation. Http response code: ${res.status}. ${res.body}`);
    }
    return { bodyJson: res.body.toString('utf8'), headers: res.headers };
  }

  async _post(urlPath, body, headers) {
    const res = await this.request('POST', urlPath, body, headers);
    if (res.status >= 500) {
      throw new Error(`Runtime API ${urlPath} answered ${res.status}: ${res.body}`);
    }
    if (res.status < 200 || res.status >= 300) {
      process.stderr.write(`Runtime API ${urlPath} answered ${res.status}: ${res.body.subarray(0, 512)}\n`);
    }
  }

  postInvocationResponse(result, id, callback) {
    const body = serialize(result); // throws (synchronously) for what JSON cannot represent, as AWS does
    this._post(`${API_PREFIX}/invocation/${encodeURIComponent(id)}/response`, body, {
      'Content-Type': 'application/json',
    }).then(callback, fatal);
  }

  postInvocationError(error, id, callback) {
    const response = toRapidResponse(error);
    this._post(`${API_PREFIX}/invocation/${encodeURIComponent(id)}/error`, serialize(response), {
      'Content-Type': 'application/json',
      [ERROR_TYPE_HEADER]: headerValue(response.errorType),
    }).then(callback, fatal);
  }

  postInitError(error, callback) {
    const response = toRapidResponse(error);
    this._post(`${API_PREFIX}/init/error`, serialize(response), {
      'Content-Type': 'application/json',
      [ERROR_TYPE_HEADER]: headerValue(response.errorType),
    }).then(callback, (err) => {
      process.stderr.write(`Failed to report the init error to the Runtime API: ${err}\n`);
      callback();
    });
  }

  postStreamedResponse(body, contentType, id, callback) {
    this._post(`${API_PREFIX}/invocation/${encodeURIComponent(id)}/response`, body, {
      'Content-Type': contentType || 'application/octet-stream',
    }).then(callback, fatal);
  }
}

function headerValue(value) {
  return String(value ?? 'Unknown').replace(/[^\x20-\x7E]/g, '?') || 'Unknown';
}

function fatal(err) {
  process.stderr.write(`LAMBDA_RUNTIME Failed to talk to the Runtime API: ${err}\n`);
  process.exit(1);
}

// ------------------------------------------------------------------------------------------------------------
// Loading the handler: `dir/file.export.path`, file = file | file.js | file.mjs | file.cjs

function moduleRootAndHandler(fullHandlerString) {
  const handlerString = path.basename(fullHandlerString);
  return [fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString)), handlerString];
}

function splitHandlerString(handler) {
  const match = handler.match(/^([^.]*)\.(.*)$/);
  if (!match || match.length !== 3) throw new MalformedHandlerName('Bad handler');
  return [match[1], match[2]];
}

function resolveHandler(object, nestedProperty) {
  return nestedProperty.split('.').reduce((nested, key) => nested && nested[key], object);
}

function tryRequireFile(file, extension) {
  const target = file + (extension || '');
  return fs.existsSync(target) ? requireUser(target) : undefined;
}

async function tryImport(file, extension) {
  const target = file + (extension || '');
  return fs.existsSync(target) ? await import(require('url').pathToFileURL(target).href) : undefined;
}

/** Whether `.js` files in `folder` are ES modules: the nearest package.json says `"type": "module"`. */
function packageTypeIsModule(folder) {
  for (;;) {
    if (folder.endsWith('/node_modules')) return false;
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(pj));
        if (pkg) return pkg.type === 'module';
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    if (folder === '/') return false;
    folder = path.resolve(folder, '..');
  }
}

async function requireModule(appRoot, moduleRoot, moduleName) {
  const lambdaStylePath = path.resolve(appRoot, moduleRoot, moduleName);
  const extensionless = tryRequireFile(lambdaStylePath);
  if (extensionless) return extensionless;
  const esm = packageTypeIsModule(path.dirname(lambdaStylePath));
  if (!esm) {
    const loaded = tryRequireFile(lambdaStylePath, '.js');
    if (loaded) return loaded;
  }
  const loaded =
    (esm && (await tryImport(lambdaStylePath, '.js'))) ||
    (await tryImport(lambdaStylePath, '.mjs')) ||
    tryRequireFile(lambdaStylePath, '.cjs');
  if (loaded) return loaded;
  // not a file next to the task root: resolve it as Node would from there (node_modules, NODE_PATH)
  return requireUser(requireUser.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

/** AWS starts node with --expose-gc. That V8 flag makes Node reject its built-in code cache (5-9 ms more per
 * cold start, measured), so `gc` is exposed on first use instead. */
function installLazyGc() {
  if ('gc' in globalThis) return;
  const define = (value) =>
    Object.defineProperty(globalThis, 'gc', { value, writable: true, enumerable: true, configurable: true });
  Object.defineProperty(globalThis, 'gc', {
    enumerable: true,
    configurable: true,
    get() {
      require('v8').setFlagsFromString('--expose-gc');
      const gc = require('vm').runInNewContext('gc');
      define(gc);
      return gc;
    },
    set: define,
  });
}

function installGlobalAwsLambda() {
  const off = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (off === '1' || off === 'true') return;
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') {
        handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark, 10);
      }
      return handler;
    },
    HttpResponseStream,
  };
}

async function loadUserApp(appRoot, moduleRoot, moduleName) {
  installLazyGc();
  installGlobalAwsLambda();
  try {
    return await requireModule(appRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e.code !== undefined && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
}

async function loadHandler(appRoot, fullHandlerString) {
  if (fullHandlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. Use absolute paths when specifying root ` +
        'directories in handler names.',
    );
  }
  const [moduleRoot, moduleAndHandler] = moduleRootAndHandler(fullHandlerString);
  const [moduleName, handlerPath] = splitHandlerString(moduleAndHandler);
  const userApp = await loadUserApp(appRoot, moduleRoot, moduleName);
  const handlerFunc = resolveHandler(userApp, handlerPath);
  if (!handlerFunc) throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  if (typeof handlerFunc !== 'function') throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  return handlerFunc;
}

function handlerMetadata(handler) {
  let streaming = false;
  const mark = handler[HANDLER_STREAMING];
  if (mark !== undefined && mark !== null && mark !== false) {
    if (mark !== STREAM_RESPONSE) throw new MalformedStreamingHandler('Only response streaming is supported.');
    streaming = STREAM_RESPONSE;
  }
  let isAsync = false;
  try {
    isAsync = handler.constructor?.name === 'AsyncFunction';
  } catch (_) {}
  const hwm = parseInt(handler[HANDLER_HIGHWATERMARK], 10);
  return { streaming, isAsync, highWaterMark: Number.isNaN(hwm) ? undefined : hwm };
}

// ------------------------------------------------------------------------------------------------------------
// The 'beforeExit' hook: what to do when the event loop has nothing left to run

let beforeExitListener = () => {};
const onBeforeExit = {
  set: (listener) => (beforeExitListener = listener),
  reset: () => (beforeExitListener = () => {}),
};

// ------------------------------------------------------------------------------------------------------------
// Callback, context and completion of one invocation

/** [callback, callbackContext (succeed/fail/done + the wait flag), markCompleted]; only the first call of any
 * of callback/succeed/fail/done counts. */
function buildCallbackContext(client, id, scheduleNext) {
  const postError = (err, next) => {
    structuredConsole.logError('Invoke Error', err);
    client.postInvocationError(err, id, next);
  };
  let completed = false;
  const complete = (result, next) => {
    if (completed) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    completed = true;
    client.postInvocationResponse(result, id, next);
  };
  let waitForEmptyEventLoop = true;

  const callback = (err, result) => {
    onBeforeExit.reset();
    if (err !== undefined && err !== null) {
      postError(err, scheduleNext);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      onBeforeExit.set(() => setImmediate(() => complete(result, scheduleNext)));
    }
  };
  const done = (err, result) => {
    onBeforeExit.reset();
    if (err !== undefined && err !== null) postError(err, scheduleNext);
    else complete(result, scheduleNext);
  };
  const succeed = (result) => done(null, result);
  const fail = (err) => (err === undefined || err === null ? done('handled') : done(err, null));

  let finished = false;
  const once =
    (fn) =>
    (...args) => {
      if (!finished) {
        fn(...args);
        finished = true;
      }
    };
  const callbackContext = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: once(succeed),
    fail: once(fail),
    done: once(done),
  };
  return [once(callback), callbackContext, () => (completed = true)];
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

/** Adds the environment and invocation fields to the callback context: the `context` the handler gets. */
function attachEnvironmentData(callbackContext, headers) {
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) process.env._X_AMZN_TRACE_ID = trace;
  else delete process.env._X_AMZN_TRACE_ID;
  const env = process.env;
  const deadline = headers['lambda-runtime-deadline-ms'];
  return Object.assign(
    callbackContext,
    {
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    },
    {
      clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
      identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: headers['lambda-runtime-aws-request-id'],
      tenantId: headers['lambda-runtime-aws-tenant-id'],
      getRemainingTimeInMillis: () => deadline - Date.now(),
    },
  );
}

function isPromise(obj) {
  return obj && obj.then && typeof obj.then === 'function';
}

// ------------------------------------------------------------------------------------------------------------
// Response streaming (awslambda.streamifyResponse): the stream is collected and posted when it ends

const PRELUDE_SEPARATOR = Buffer.alloc(8);

class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType?.('application/vnd.awslambda.http-integration-response');
    underlyingStream.write(Buffer.from(JSON.stringify(prelude)));
    underlyingStream.write(PRELUDE_SEPARATOR);
    return underlyingStream;
  }
}

function createResponseStream(highWaterMark) {
  const { Writable } = require('stream');
  const chunks = [];
  const stream = new Writable({
    highWaterMark,
    write(chunk, encoding, cb) {
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding));
      cb();
    },
  });
  stream.setContentType = (contentType) => {
    stream.contentType = contentType;
  };
  stream.body = () => Buffer.concat(chunks);
  return stream;
}

// ------------------------------------------------------------------------------------------------------------
// The invocation loop. A class named Runtime that holds the handler: stack frames of handlers read
// `at Runtime.handler (/var/task/index.js:2:3)`, as on AWS.

class Runtime {
  constructor(client, handler, metadata, errorCallbacks) {
    this.client = client;
    this.handler = handler;
    this.metadata = metadata;
    this.errorCallbacks = errorCallbacks;
    this.handleOnce = metadata.streaming === STREAM_RESPONSE ? this.handleOnceStreaming : this.handleOnceBuffered;
  }

  scheduleIteration() {
    setImmediate(() => {
      this.handleOnce().then(
        () => {},
        (err) => {
          console.log(`Unexpected Top Level Error: ${err.toString()}`);
          this.errorCallbacks.uncaughtException(err);
        },
      );
    });
  }

  async next() {
    const { bodyJson, headers } = await this.client.nextInvocation();
    const id = headers['lambda-runtime-aws-request-id'];
    if (!id) throw new Error('invocation id is missing or invalid');
    globalThis[REQUEST_ID_SYMBOL] = id;
    globalThis[TENANT_ID_SYMBOL] = headers['lambda-runtime-aws-tenant-id'];
    return { bodyJson, headers, id };
  }

  async handleOnceBuffered() {
    const { bodyJson, headers, id } = await this.next();
    const [callback, callbackContext, markCompleted] = buildCallbackContext(
      this.client,
      id,
      this.scheduleIteration.bind(this),
    );
    try {
      this.setErrorCallbacks(id);
      this.setDefaultExitListener(id, markCompleted);
      const result = this.handler(JSON.parse(bodyJson), attachEnvironmentData(callbackContext, headers), callback);
      if (isPromise(result)) {
        result.then(callbackContext.succeed, callbackContext.fail).catch(callbackContext.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  async handleOnceStreaming() {
    const { bodyJson, headers, id } = await this.next();
    const scheduleNext = this.scheduleIteration.bind(this);
    const stream = createResponseStream(this.metadata.highWaterMark);
    let reported = false;
    const fail = (err) => {
      if (reported) return;
      reported = true;
      const error = typeof err === 'string' ? new InvalidStreamingOperation(err) : err;
      structuredConsole.logError('Invoke Error', error);
      this.client.postInvocationError(error, id, scheduleNext);
    };
    try {
      this.setErrorCallbacks(id);
      onBeforeExit.set(() => {
        if (!reported) fail(new NodeJsExit());
      });
      const context = attachEnvironmentData({ callbackWaitsForEmptyEventLoop: false }, headers);
      const result = this.handler(JSON.parse(bodyJson), stream, context);
      if (!isPromise(result)) {
        fail('Streaming does not support non-async handlers.');
        return;
      }
      if ((await result) !== undefined) console.warn('Streaming handlers ignore return values.');
      if (!stream.writableFinished) {
        await new Promise((resolve) => stream.once('finish', resolve).once('close', resolve));
      }
      if (!reported) {
        reported = true;
        onBeforeExit.reset();
        this.client.postStreamedResponse(stream.body(), stream.contentType, id, scheduleNext);
      }
    } catch (err) {
      fail(err);
    }
  }

  setErrorCallbacks(id) {
    this.errorCallbacks.uncaughtException = (error) =>
      this.client.postInvocationError(error, id, () => process.exit(129));
    this.errorCallbacks.unhandledRejection = (error) =>
      this.client.postInvocationError(error, id, () => process.exit(128));
  }

  /** Neither the callback nor a promise ended the invocation and the event loop is empty: a sync handler's
   * result is `null`; an async handler's promise can no longer settle (Runtime.NodeJsExit). */
  setDefaultExitListener(id, markCompleted) {
    onBeforeExit.set(() => {
      markCompleted();
      if (this.metadata.isAsync) {
        const error = new NodeJsExit();
        structuredConsole.logError('Invoke Error', error);
        this.client.postInvocationError(error, id, () => this.scheduleIteration());
      } else {
        this.client.postInvocationResponse(null, id, () => this.scheduleIteration());
      }
    });
  }
}

// ------------------------------------------------------------------------------------------------------------

async function run(client, errorCallbacks) {
  process.on('uncaughtException', (error) => {
    structuredConsole.logError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason, promise);
    structuredConsole.logError('Unhandled Promise Rejection', error);
    errorCallbacks.unhandledRejection(error);
  });
  onBeforeExit.reset();
  process.on('beforeExit', () => beforeExitListener());

  const appRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const handler = await loadHandler(appRoot, process.env._HANDLER || '');
  new Runtime(client, handler, handlerMetadata(handler), errorCallbacks).scheduleIteration();
}

/**
 * Shoal's pre-started runtime: started before any function is known (SHOAL_STANDBY_FD names the pipe from the
 * platform; the one to it is the next descriptor), it loads what every function needs, says it is ready (`R`),
 * then blocks until the platform sends, up to end-of-file, `{"env": {...}, "cwd": "..."}`: the function's
 * environment and working directory. By then the function's code is in place. Nothing read before that message
 * depends on the function.
 */
function standBy(fd) {
  require('net');
  require('url');
  fs.writeSync(fd + 1, 'R'); // kept open: the platform sees it close if this process ends
  const chunks = [];
  const buffer = Buffer.allocUnsafe(65536);
  for (;;) {
    const n = fs.readSync(fd, buffer, 0, buffer.length, null);
    if (n === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  fs.closeSync(fd);
  if (chunks.length === 0) process.exit(0); // never specialised: the platform let it go
  const { env, cwd } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, env);
  process.chdir(cwd);
  module.constructor._initPaths(); // NODE_PATH, as a runtime started with it reads it
}

function main() {
  if (process.env.SHOAL_STANDBY_FD) standBy(Number(process.env.SHOAL_STANDBY_FD));
  patchConsole();
  const client = new RuntimeClient(process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001');
  const errorCallbacks = {
    uncaughtException: (error) => client.postInitError(error, () => process.exit(129)),
    unhandledRejection: (error) => client.postInitError(error, () => process.exit(128)),
  };
  run(client, errorCallbacks).catch((error) => {
    structuredConsole.logError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
  });
}

main();
